#!/usr/bin/env bash
# Every wheel scripts/gpu_check.py needs on a GPU machine without a network (Python 3.12, torch
# already there; none of av, pycocotools, sam2, hydra-core or iopath), into .whl/ (git-ignored):
#
#   bash scripts/gpu_wheels.sh          # here, with PyPI
#   python3 scripts/gpu_check.py        # there, with .whl carried: it installs them into /tmp/site
#
# Binary wheels are downloaded for CPython 3.12 manylinux x86_64; the three packages PyPI has
# only as source (Meta's sam2, iopath, antlr4-python3-runtime) are built here as pure-Python
# wheels (sam2 without its CUDA extension; the check gives the reference our hole filling).
# typer, rich, pyyaml, opencv-python-headless, tqdm, portalocker, packaging, pillow, numpy and
# torch are already on the GPU machines (/work/.library/device/KINDS.md), so they are not carried.
set -euo pipefail
cd "$(dirname "$0")/.."
out=.whl
rm -rf "$out"
mkdir -p "$out"
py=${PYTHON:-python3}

# binary (or universal) wheels for the GPU machine's Python
$py -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d "$out" \
    "av==18.1.0" "pycocotools==2.0.11" "hydra-core==1.3.8" "omegaconf==2.3.1"

# source-only packages, built as pure-Python wheels (no build isolation: setuptools from here)
SAM2_BUILD_CUDA=0 $py -m pip wheel -q --no-deps --no-build-isolation -w "$out" \
    "sam2==1.1.0" "iopath==0.1.10" "antlr4-python3-runtime==4.9.3"

# sam2cli itself (gpu_check.py imports the checkout first; the wheel gives `sam2` on the PATH);
# the in-tree build folders it leaves are removed unless they were there before
left=()
for d in build sam2cli.egg-info; do [ -e "$d" ] || left+=("$d"); done
$py -m pip wheel -q --no-deps --no-build-isolation -w "$out" .
for d in "${left[@]}"; do rm -rf "$d"; done

for w in "$out"/*.whl; do
    case "$w" in *-py3-none-any.whl|*cp312*|*abi3*) ;; *) echo "not for CPython 3.12: $w" >&2; exit 1 ;; esac
done
ls -1 "$out"
total=$(du -sb "$out" | cut -f1)
echo "$(du -sh "$out" | cut -f1) in $out ($total bytes)"
if [ "$total" -gt $((64 * 1024 * 1024)) ]; then
    echo "over the 64 MiB that travels to the GPU machine" >&2
    exit 1
fi
echo "with the checkout, $(( (total + $(git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)) / 1048576 )) MiB travel (limit 64)"
