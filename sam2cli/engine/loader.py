"""Turn what the user passes as `model=` into a ready backend (engine/backend.py) on a device: a
checkpoint becomes a SAM2Model, a folder written by `sam2 export format=onnx` the ONNX Runtime
backend (OnnxSAM2)."""

import logging
from pathlib import Path
from typing import Callable, Optional, Tuple, Union

from sam2cli.errors import SAM2Error
from sam2cli.model.config import ModelConfig
from sam2cli.model.registry import get_config, registry
from sam2cli.io.onnx_folder import MANIFEST, is_export_folder, sha256_file
from sam2cli.io.weights import resolve_weights
from sam2cli.model.checkpoint import build_model
from sam2cli.model.sam2 import SAM2Model
from .backend import Backend
from .device import select_device


def load_model(model: Union[str, Path], device=None, imgsz: Optional[int] = None, *,
               from_config: Optional[Callable[[ModelConfig], SAM2Model]] = None
               ) -> Tuple[Backend, Optional[Path]]:
    """The one loader: what `model=` names -> (backend on device in eval mode, its file or None).

    A checkpoint is resolved (path, weights dir, download), its variant detected from the tensors
    and loaded strictly. An export folder is verified (SHA-256 of every graph) and opened in ONNX
    Runtime. A config name (`sam2.1_hiera_t`, or a model .yaml) is built by `from_config` where the
    caller allows one: random weights for benchmarks, a from-scratch init for training."""
    text = str(model).strip()  # "" is left to resolve_weights: "no model given"
    if from_config is not None and (text.endswith((".yaml", ".yml")) or (
            text in registry() and not Path(text).expanduser().is_file())):
        net = from_config(get_config(text))
        if imgsz and imgsz != net.image_size:
            net.set_image_size(imgsz)
        return net.to(select_device(device)).eval(), None
    if text:
        given = Path(text).expanduser()
        if is_export_folder(given):
            from .onnx_backend import load_onnx_model
            net = load_onnx_model(given, device)
            if imgsz and imgsz != net.image_size:
                net.set_image_size(imgsz)  # one line: exported at another size
            if net.manifest.get("precision") == "fp16" and net.provider == "CPUExecutionProvider":
                logging.getLogger("sam2cli").warning(
                    f"{given} holds fp16 graphs, which ONNX Runtime's CPU provider runs through casts to fp32, "
                    "slower than fp32 graphs: they are for device=cuda; on a CPU export fp32 or int8=True")
            return net, given
        check_not_onnx(given)
    path = resolve_weights(model)
    net = build_model(None, path, registry().values())
    if imgsz and imgsz != net.image_size:
        net.set_image_size(imgsz)
    dev = select_device(device)
    return net.to(dev).eval(), path


def check_not_onnx(given: Path) -> None:
    """A single graph or a folder without a manifest is not a model: one line saying what is."""
    if given.suffix.lower() == ".onnx" and given.is_file():
        hint = f"model={given.parent}" if is_export_folder(given.parent) else "the folder `sam2 export` wrote"
        raise SAM2Error(f"{given} is a single ONNX graph, not a model: pass {hint} (it holds {MANIFEST} "
                        "and the four graphs), or export one with `sam2 export model=<checkpoint> format=onnx`")
    if given.is_dir():
        raise SAM2Error(f"model={given} is a folder without {MANIFEST}: pass a checkpoint file, or a folder "
                        "written by `sam2 export model=<checkpoint> format=onnx`")


def export_source(folder: Path, manifest: dict) -> Path:
    """The checkpoint an export folder was made from, to run the same weights on PyTorch: beside
    the folder (where `sam2 export` puts it by default), else resolved by name like any checkpoint.
    The file must have the SHA-256 the export recorded (folders from before it was recorded: unchecked)."""
    folder, name = Path(folder), str(manifest.get("source") or "")
    if not name:
        raise SAM2Error(f"{folder / MANIFEST} does not name the checkpoint it was exported from; export it again")
    beside = folder.parent / name
    try:
        path = beside if beside.is_file() else resolve_weights(name)
    except SAM2Error as e:
        raise SAM2Error(f"{folder} was exported from {name}, which is neither beside it nor in the weights folder "
                        f"({e}); put the checkpoint beside the folder") from e
    want = manifest.get("source_sha256")
    if want and sha256_file(path) != want:
        raise SAM2Error(f"{path} is not the checkpoint {folder} was exported from (its SHA-256 differs from "
                        f"source_sha256 in {MANIFEST}); put the original {name} beside the folder")
    return Path(path)


def size_mb(path: Path) -> float:
    """A checkpoint's size, or an export folder's (all its files), in MB."""
    path = Path(path)
    files = [path] if path.is_file() else [f for f in path.rglob("*") if f.is_file()]
    return sum(f.stat().st_size for f in files) / 1e6


def count_params(model: Backend) -> int:
    """Parameters of the model (an ONNX export: of the model it was exported from)."""
    return int(model.num_params)
