"""The wheel holds the whole tool: every package under sam2cli/, the cfg/ yaml files and the demo
model (a hand-kept package list once left out sam2cli.core, so `pip install .` could not import
it; scripts/check_wheel.sh then installs the wheel and runs the README's first command in CI)."""

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_holds_every_package_and_the_data(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(tmp_path), str(ROOT)], check=True, capture_output=True, timeout=600)
    wheel = next(tmp_path.glob("sam2cli-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    packages = {p.relative_to(ROOT).as_posix() for p in (ROOT / "sam2cli").rglob("__init__.py")}
    assert packages and not packages - names, f"missing from the wheel: {sorted(packages - names)}"
    data = {f"sam2cli/cfg/{p.relative_to(ROOT / 'cfg').as_posix()}" for p in (ROOT / "cfg").rglob("*.yaml")}
    data |= {"sam2cli/weights/sam2_demo.pt"}
    data |= {f"sam2cli/{p.relative_to(ROOT / 'sam2cli').as_posix()}"
             for p in (ROOT / "sam2cli").rglob("static/*") if p.is_file()}
    assert not data - names, f"data missing from the wheel: {sorted(data - names)}"
