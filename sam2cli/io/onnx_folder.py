"""An ONNX export folder: four graphs, the host tensors, and `sam2.yaml` describing them.

    sam2.1_t_onnx/
        image_encoder.onnx  decoder.onnx  memory_encoder.onnx  memory_attention.onnx
        host_tensors.npz    # the few small tensors the host code uses (no_mem_embed, ...)
        sam2.yaml           # variant, version, image size, model config, SHA-256 of every file

Nothing in the folder is used before its SHA-256 matches the manifest, so an edited, swapped or
truncated graph is refused with one line instead of being run.
"""

import hashlib
from pathlib import Path
from typing import Any, Dict

import yaml

from sam2cli.errors import SAM2Error

MANIFEST = "sam2.yaml"
FORMAT = "sam2cli-onnx"
FORMAT_VERSION = 1
GRAPHS = ("image_encoder", "decoder", "memory_encoder", "memory_attention")
HOST_TENSORS = "host_tensors.npz"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def is_export_folder(path: Path) -> bool:
    return Path(path).is_dir() and (Path(path) / MANIFEST).is_file()


def files_of(folder: Path) -> Dict[str, Path]:
    """Role -> path of every file the manifest pins (the four graphs and the host tensors)."""
    folder = Path(folder)
    out = {g: folder / f"{g}.onnx" for g in GRAPHS}
    out["host_tensors"] = folder / HOST_TENSORS
    return out


def manifest_text(meta: Dict[str, Any], folder: Path) -> str:
    """sam2.yaml for a folder whose files are all written: `meta` plus the SHA-256 of each file."""
    data = {"format": FORMAT, "format_version": FORMAT_VERSION, **meta,
            "files": {role: {"file": p.name, "sha256": sha256_file(p)} for role, p in files_of(folder).items()}}
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100)


def read_manifest(folder: Path) -> Dict[str, Any]:
    """The checked manifest of an export folder; every file present with the recorded SHA-256."""
    folder = Path(folder)
    path = folder / MANIFEST
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise SAM2Error(f"cannot read {path} ({type(e).__name__}); export the model again with "
                        "`sam2 export model=<checkpoint> format=onnx`") from e
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("files"), dict):
        raise SAM2Error(f"{path} is not a sam2cli ONNX manifest; export the model again with "
                        "`sam2 export model=<checkpoint> format=onnx`")
    if data.get("format_version") != FORMAT_VERSION:
        raise SAM2Error(f"{path} has format version {data.get('format_version')}, this sam2cli reads "
                        f"{FORMAT_VERSION}; export the model again with this version")
    for role, p in files_of(folder).items():
        entry = data["files"].get(role) or {}
        if not p.is_file():
            raise SAM2Error(f"{folder} is missing {p.name}; export the model again (sam2 export ... format=onnx)")
        if entry.get("sha256") != sha256_file(p):
            raise SAM2Error(f"{p} does not match the SHA-256 in {MANIFEST} (edited, swapped or truncated); "
                            "export the model again instead of using it")
    return data
