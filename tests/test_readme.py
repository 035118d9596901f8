"""The README's commands are the ones newcomers and CI run."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    readme_cmd = next(line for line in readme.splitlines() if "pytest" in line and line.startswith("pip install"))
    # CI adds -q to pip for shorter logs; otherwise the same command
    assert ci.replace("pip install -q", "pip install") == readme_cmd


def test_readme_sample_exists():
    assert (ROOT / "scripts" / "samples" / "shapes.jpg").is_file()
