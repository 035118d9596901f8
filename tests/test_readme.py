"""The README's commands are the ones newcomers and CI run."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = next(line for line in (ROOT / ".ci" / "run").read_text().splitlines() if "pytest" in line)
    readme_cmd = next(line for line in readme.splitlines() if "pytest" in line and line.startswith("pip install"))
    # CI adds -q to pip for shorter logs; otherwise the same command
    assert ci.replace("pip install -q", "pip install") == readme_cmd


def test_readme_sample_exists():
    assert (ROOT / "scripts" / "samples" / "shapes.jpg").is_file()


def test_readme_first_command_runs_offline_on_the_bundled_demo(tmp_path):
    """The README's first command, as typed (minus the install), in a fresh directory with an
    empty weights directory: the bundled demo model resolves without a download and the run
    writes its overlay."""
    import os
    import shlex
    import subprocess
    import sys

    readme = (ROOT / "README.md").read_text()
    first = next(line for line in readme.splitlines() if line.startswith("pip install -e . && sam2 "))
    argv = shlex.split(first.split("&& ", 1)[1])
    assert "model=sam2_demo.pt" in argv
    argv = [a.replace("source=", f"source={ROOT}/", 1) if a.startswith("source=") else a for a in argv]
    env = dict(os.environ, SAM2CLI_WEIGHTS_DIR=str(tmp_path / "empty"))
    code = "import sys; from sam2cli.cli.app import entry; sys.argv = sys.argv[1:]; entry()"
    run = subprocess.run([sys.executable, "-c", code, *argv], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "runs" / "predict" / "shapes.jpg").is_file()
