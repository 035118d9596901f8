#!/usr/bin/env bash
# CI plumbing: prove that a plain (non-editable) install works. Builds the wheel, installs it into a
# fresh venv that borrows the test environment's packages (torch and the other dependencies, so
# nothing large is downloaded twice) but not its editable sam2cli, then runs the README's first
# command from a folder outside the checkout. The sample image is not in the wheel (the wheel
# ships the code, cfg/ and the demo model); the check copies it beside itself.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python -m pip wheel -q --no-deps --no-build-isolation -w "$work/dist" "$repo"
python -m venv "$work/venv"
py="$work/venv/bin/python"
"$py" -m pip install -q --no-deps --no-index "$work"/dist/sam2cli-*.whl
# the test environment's site-packages, appended as a plain path: its .pth files (the editable
# sam2cli's finder among them) are not run, so sam2cli can only come from the wheel
deps=$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
vsite=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$deps" > "$vsite/zz_test_env_deps.pth"
cd "$work"
cp "$repo/scripts/samples/shapes.jpg" .
"$py" - "$vsite" <<'PY'
import sys, sam2cli, sam2cli.core  # noqa: E401  (sam2cli.core was missing from the wheel once)
assert sam2cli.__file__.startswith(sys.argv[1]), f"sam2cli came from {sam2cli.__file__}, not the wheel"
PY
"$work/venv/bin/sam2" --help > /dev/null
"$work/venv/bin/sam2" info model=sam2_demo.pt
"$work/venv/bin/sam2" predict model=sam2_demo.pt source=shapes.jpg 'points=[[150,170]]' 'labels=[1]'
test -s runs/predict/shapes.jpg || { echo "check_wheel: the predict run wrote no overlay" >&2; exit 1; }
echo "check_wheel: the wheel installs and runs the README's first command"
