"""`sam2 export format=onnx`: a checkpoint -> a folder of four ONNX graphs that checks itself.

    sam2 export model=sam2.1_t.pt format=onnx            # -> sam2.1_t_onnx/ beside the checkpoint
    sam2 export model=sam2.1_t.pt imgsz=512 int8=True output=exports/t512
    sam2 export model=sam2.1_t.pt half=True              # fp16 graphs, for the CUDA/TensorRT providers

The folder is built under a temporary name beside its destination and renamed when it is
complete and checked, so a failed or interrupted export never leaves a half-written folder.
"""

import secrets
import shutil
import warnings
from pathlib import Path
from typing import Any, Callable, Dict

import numpy as np
import torch

from sam2cli.errors import SAM2Error, UsageError
from sam2cli.io.onnx_folder import GRAPHS, MANIFEST, files_of, is_export_folder, manifest_text, sha256_file
from sam2cli.model.export_graphs import (DecoderGraph, ImageEncoderGraph, MemoryAttentionGraph,
                                         MemoryEncoderGraph, unchunked)
from sam2cli.model.sam2 import SAM2Model
from .check import check_export
from ..loader import load_model
from ..options import ExportOptions
from ..progress import rated_progress

FP16_TOLERANCE = 1e-2           # fp16 graphs: max |diff| / max(1, max |fp32|) per output, on the CPU
MIN_OPSET, MAX_OPSET = 17, 20   # LayerNorm is a single op from 17; 20 is the tracing exporter's last
INT8_GRAPHS = ("image_encoder", "memory_attention")  # where the matmuls are


def graph_specs(net: SAM2Model) -> Dict[str, Dict[str, Any]]:
    """Per graph: the wrapper, example inputs for tracing, names and dynamic axes."""
    s, c, m = net.image_size, net.cfg.d_model, net.cfg.mem_dim
    h = s // net.cfg.backbone_stride
    g = torch.Generator().manual_seed(0)
    top = torch.randn(1, c, h, h, generator=g)
    objects, points = {0: "objects"}, {0: "objects", 1: "points"}
    return {
        "image_encoder": dict(module=ImageEncoderGraph(net), args=(torch.randn(1, 3, s, s, generator=g),), axes={}),
        "decoder": dict(
            module=DecoderGraph(net),
            # 2 objects of 3 points (a box and its padding point), with mask inputs: no axis is 1
            args=(top, torch.randn(1, c // 8, 4 * h, 4 * h, generator=g),
                  torch.randn(1, c // 4, 2 * h, 2 * h, generator=g),
                  torch.rand(2, 3, 2, generator=g) * s, torch.tensor([[2, 3, -1], [1, 0, -1]], dtype=torch.int32),
                  torch.randn(2, 1, 4 * h, 4 * h, generator=g), torch.ones(1)),
            axes={"coords": points, "labels": points, "mask_input": {0: "masks"}, "masks": objects, "iou": objects,
                  "obj_score": objects, "obj_ptr": objects}),
        "memory_encoder": dict(
            module=MemoryEncoderGraph(net),
            args=(top, torch.randn(1, 1, s, s, generator=g), torch.ones(1, 1), torch.ones(1)), axes={}),
        "memory_attention": dict(
            module=MemoryAttentionGraph(net),
            args=(top, torch.randn(1, c, h, h, generator=g), torch.randn(1, 2, m, h, h, generator=g),
                  torch.randn(1, 2, m, h, h, generator=g), torch.tensor([net.cfg.num_maskmem - 1, 0]),
                  torch.randn(1, 3, c, generator=g), torch.tensor([0.0, 1.0, 2.0]) / 15),
            axes={"mem": {1: "frames"}, "mem_pos": {1: "frames"}, "mem_tpos": {0: "frames"},
                  "ptrs": {1: "pointers"}, "ptr_pos": {0: "pointers"}}),
    }


def trace_graph(name: str, spec: Dict[str, Any], path: Path, opset: int) -> None:
    from ..onnx_backend import INPUTS, OUTPUTS
    with warnings.catch_warnings():  # the tracer's notes on shapes fixed by the image size
        warnings.simplefilter("ignore")
        torch.onnx.export(spec["module"].eval(), spec["args"], str(path), dynamo=False, opset_version=opset,
                          input_names=INPUTS[name], output_names=OUTPUTS[name], dynamic_axes=spec["axes"],
                          do_constant_folding=True)


def quantize_int8(path: Path) -> None:
    """Dynamic int8 quantisation of the graph's matmuls with constant weights, in place."""
    import logging
    from onnxruntime.quantization import QuantType, quantize_dynamic
    tmp = path.with_name(path.stem + ".int8.onnx")
    logging.disable(logging.WARNING)  # its advice to pre-process the graph is not the user's business
    try:
        quantize_dynamic(str(path), str(tmp), op_types_to_quantize=["MatMul", "Gemm"], weight_type=QuantType.QInt8)
    finally:
        logging.disable(logging.NOTSET)
    tmp.replace(path)


def convert_fp16(path: Path) -> None:
    """fp16 weights and activations, in place, by ONNX Runtime's own converter. Inputs and outputs
    stay fp32 (the converter puts casts at the edges), so the host code is the same for every export."""
    import logging
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16
    logging.disable(logging.WARNING)  # its notes on shape inference are not the user's business
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = convert_float_to_float16(onnx.load(str(path)), keep_io_types=True)
    finally:
        logging.disable(logging.NOTSET)
    onnx.save(model, str(path))


def host_tensors(net: SAM2Model) -> Dict[str, np.ndarray]:
    """The small tensors the host code uses directly (see OnnxSAM2)."""
    t = {"no_mem_embed": net.no_mem_embed, "no_obj_ptr": net.no_obj_ptr,
         "mask_downsample.weight": net.mask_downsample.weight, "mask_downsample.bias": net.mask_downsample.bias}
    return {k: v.detach().float().cpu().numpy() for k, v in t.items()}


def destination(opts: ExportOptions, ckpt: Path) -> Path:
    dest = Path(opts.output).expanduser() if opts.output else ckpt.parent / f"{ckpt.stem}_onnx"
    if dest.exists() and not dest.is_dir():
        raise UsageError(f"output={dest} is a file: give a folder for the export (it is created if missing)")
    if dest.is_dir() and any(dest.iterdir()) and not is_export_folder(dest):
        raise UsageError(f"output={dest} is a folder with other files in it: give a new or empty folder")
    return dest


def check_options(opts: ExportOptions) -> None:
    if opts.half and opts.int8:
        raise UsageError("half=True and int8=True are two precisions: export fp16 graphs (half=True, for a GPU) "
                         "or int8 matmuls (int8=True, for the CPU), not both")
    if not MIN_OPSET <= int(opts.opset) <= MAX_OPSET:
        raise UsageError(f"opset={opts.opset} is out of range: must be between {MIN_OPSET} and {MAX_OPSET}")
    try:
        import onnx  # noqa: F401  (the int8 quantiser reads and writes graphs with it)
        import onnxruntime  # noqa: F401
    except ImportError as e:
        raise SAM2Error(f"export needs {e.name}: pip install 'sam2cli[onnx]' (onnx and onnxruntime)") from e


def export_onnx(opts: ExportOptions, log: Callable[[str], None] = print,
                step: Callable[[str], None] = lambda name: None) -> Path:
    """Write and check the export folder; returns its path. `step(name)` is called as each part
    starts (progress); `log` gets the summary lines (the worst differences)."""
    check_options(opts)
    net, ckpt = load_model(opts.model, "cpu", opts.imgsz)
    dest = destination(opts, Path(ckpt))
    tmp = dest.parent / f".{dest.name}.tmp{secrets.token_hex(4)}"
    tmp.mkdir(parents=True)
    try:
        with torch.no_grad(), unchunked(net):
            for name, spec in graph_specs(net).items():
                step(f"export {name}")
                trace_graph(name, spec, files_of(tmp)[name], opts.opset)
                if opts.int8 and name in INT8_GRAPHS:
                    quantize_int8(files_of(tmp)[name])
                if opts.half:
                    convert_fp16(files_of(tmp)[name])
        np.savez(files_of(tmp)["host_tensors"], **host_tensors(net))
        meta = {"variant": net.cfg.name, "version": net.cfg.version, "image_size": net.image_size,
                "source": Path(ckpt).name, "source_sha256": sha256_file(Path(ckpt)),
                "precision": opts.precision, "opset": int(opts.opset),
                "int8_graphs": list(INT8_GRAPHS) if opts.int8 else [],
                "params": sum(p.numel() for p in net.parameters()), "config": config_dict(net)}
        (tmp / MANIFEST).write_text(manifest_text(meta, tmp), encoding="utf-8")
        step("check against PyTorch")
        worst = check_export(net, tmp, relative=opts.half)
        what = "max|diff|/max(1,max|ref|)" if opts.half else "max|diff|"
        for name in GRAPHS:
            log(f"{name}: " + ", ".join(f"{k} {what} {v:.2e}" for k, v in worst[name].items()))
        if not opts.int8:  # fp16: relative to each output's size; an fp16 overflow (inf) fails too
            limit = FP16_TOLERANCE if opts.half else 1e-2
            bad = [f"{n}.{k} {v:.2e}" for n, d in worst.items() for k, v in d.items() if not v <= limit]
            if bad:
                raise SAM2Error(f"the exported graphs differ from the PyTorch model ({', '.join(bad)}); "
                                "this is a bug: report it with the model name")
        replace_folder(tmp, dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


def config_dict(net: SAM2Model) -> Dict[str, Any]:
    """The ModelConfig at the export's input size, as plain yaml data (ModelConfig.from_dict reads it)."""
    from dataclasses import asdict

    def plain(v):
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return [plain(x) for x in v] if isinstance(v, (list, tuple)) else v
    cfg = plain(asdict(net.cfg.with_image_size(net.image_size)))
    cfg.pop("extra", None)  # free-form notes, not used at run time
    return cfg


def replace_folder(tmp: Path, dest: Path) -> None:
    """Move the finished folder onto dest; an older export there is removed only after that."""
    old = None
    if dest.exists():
        old = dest.parent / f".{dest.name}.old{secrets.token_hex(4)}"
        dest.rename(old)
    tmp.rename(dest)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def run_export(opts: ExportOptions, console) -> int:
    """`sam2 export`: the folder, with a progress bar and the worst differences it was checked at."""
    import time
    if opts.format not in (None, "", "onnx"):
        raise UsageError(f"sam2 export writes format=onnx, not format={opts.format} (jsonl/json are predict's and "
                         "benchmark's output formats)")
    if opts.device not in (None, "", "cpu"):
        console.print(f"export runs on the CPU (device={opts.device} is ignored); the folder runs on any "
                      "ONNX Runtime provider", highlight=False)
    t0 = time.perf_counter()
    lines = []
    with rated_progress(console, "export", len(GRAPHS) + 1, "graph", t0=t0) as advance:
        def step(name: str) -> None:
            advance(0 if name == f"export {GRAPHS[0]}" else 1, description=name)
        dest = export_onnx(opts, log=lines.append, step=step)
    console.print(f"exported {opts.model} ({opts.precision}, opset {opts.opset}) to {dest} "
                  f"in {time.perf_counter() - t0:.1f} s; ONNX Runtime vs PyTorch, worst differences:", highlight=False)
    for line in lines:
        console.print(f"  {line}", highlight=False)
    return 0
