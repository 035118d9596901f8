"""The export's self-check: each graph, loaded the way users load it, against the PyTorch model.

The inputs are not the ones the graphs were traced with (other numbers of objects, points,
memory frames and pointers), so a shape the tracer fixed by mistake shows up here.
"""

from pathlib import Path
from typing import Dict

import torch

from sam2cli.model.sam2 import Memory, SAM2Model
from ..heads import sam_heads
from ..onnx_backend import load_onnx_model


def worst(a: torch.Tensor, b: torch.Tensor, relative: bool = False) -> float:
    """max |a - b|, or with `relative` divided by max(1, max |a|) (a: the PyTorch side); inf where
    b is not finite (an fp16 overflow), so that max() over outputs keeps it."""
    if not torch.isfinite(b).all():
        return float("inf")
    diff = float((a.float() - b.float()).abs().max())
    return diff / max(1.0, float(a.float().abs().max())) if relative else diff


@torch.no_grad()
def check_export(net: SAM2Model, folder: Path, relative: bool = False) -> Dict[str, Dict[str, float]]:
    """Graph -> output -> max |ONNX Runtime - PyTorch| on one set of inputs (relative: divided by
    max(1, max |PyTorch|), the measure for fp16 graphs, whose error grows with the values)."""
    onnx = load_onnx_model(folder, "cpu")

    def diff(a: torch.Tensor, b: torch.Tensor) -> float:
        return worst(a, b, relative)
    s = net.image_size
    g = torch.Generator().manual_seed(1)
    out: Dict[str, Dict[str, float]] = {}

    x = torch.randn(1, 3, s, s, generator=g)
    f, fo = net.encode_image(x), onnx.encode_image(x)
    out["image_encoder"] = {k: diff(getattr(f, k), getattr(fo, k)) for k in ("s0", "s1", "top")}

    coords = torch.rand(3, 2, 2, generator=g) * s                     # 3 objects, 2 clicks each
    labels = torch.tensor([[1, 0], [1, 1], [2, 3]], dtype=torch.int32)
    a = net.decode(f.top, f.high_res, coords, labels, multimask=True)
    b = onnx.decode(f.top, f.high_res, coords, labels, multimask=True)
    mask = torch.randn(1, 1, s, s, generator=g) * 4
    ha = sam_heads(net, f.top, f.high_res, coords[:1], labels[:1], mask, multimask=False)
    hb = sam_heads(onnx, f.top, f.high_res, coords[:1], labels[:1], mask, multimask=False)
    out["decoder"] = {"masks": max(diff(a.masks, b.masks), diff(ha.logits, hb.logits)),
                      "iou": max(diff(a.iou, b.iou), diff(ha.ious, hb.ious)),
                      "obj_score": diff(a.obj_score, b.obj_score),
                      "obj_ptr": max(diff(a.obj_ptr, b.obj_ptr), diff(ha.obj_ptr, hb.obj_ptr))}

    high = ha.high_res(s)
    ma = net.encode_memory(f.top, high, ha.obj_score, from_points=True)
    mb = onnx.encode_memory(f.top, high, ha.obj_score, from_points=True)
    out["memory_encoder"] = {"features": diff(ma.features, mb.features), "pos": diff(ma.pos, mb.pos)}

    recent = Memory(ma.features.roll(1, -1), ma.pos)                   # a second, different memory
    memories = [(0, ma), (2, recent), (1, ma)]
    ptrs = [(0, ha.obj_ptr), (1, ha.obj_ptr.flip(-1))]
    ca = net.condition_on_memory(f, memories, ptrs, 15)
    cb = onnx.condition_on_memory(f, memories, ptrs, 15)
    out["memory_attention"] = {"conditioned": diff(ca, cb)}
    return out
