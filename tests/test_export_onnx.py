"""`sam2 export format=onnx` and the ONNX Runtime backend (issue 20).

Random-weight SAM 2.1 tiny exported at imgsz=256 (backbone 64/32/16 maps): each graph against
the PyTorch model on inputs it was not traced with, the image predictor and the tracker through
ONNX Runtime against PyTorch. The demo model exported through the CLI at its own 384 px: the
same click, box and tracking quality as in PyTorch. Bad folders and paths: one line each.
"""

import shutil

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")

from sam2cli.cli.app import main  # noqa: E402
from sam2cli.engine.image_predictor import ImagePredictor  # noqa: E402
from sam2cli.engine.loader import load_model  # noqa: E402
from sam2cli.engine.onnx_backend import OnnxSAM2  # noqa: E402
from sam2cli.model.sam2 import Memory  # noqa: E402

SIZE = 256
LOGITS_TOL, IOU_TOL = 1e-3, 2e-3


@pytest.fixture(scope="module")
def tiny(tiny_ckpt, tmp_path_factory):
    """(PyTorch model, ONNX model) of the random tiny checkpoint at 256 px."""
    from sam2cli.engine.export import ExportOptions, export_onnx
    folder = export_onnx(ExportOptions(model=str(tiny_ckpt), imgsz=SIZE,
                                       output=str(tmp_path_factory.mktemp("tiny") / "t_onnx")), log=lambda s: None)
    net, _ = load_model(tiny_ckpt, "cpu", SIZE)
    onnx, _ = load_model(folder, "cpu")
    assert isinstance(onnx, OnnxSAM2)
    return net, onnx


@pytest.fixture(scope="module")
def demo_folder(tmp_path_factory):
    """The demo model exported through the command line, as users run it."""
    out = tmp_path_factory.mktemp("demo") / "sam2_demo_onnx"
    assert main(["export", "model=sam2_demo.pt", "format=onnx", f"output={out}"]) == 0
    return out


def close(a, b, tol):
    assert a.shape == b.shape, (a.shape, b.shape)
    diff = float((a.float() - b.float()).abs().max())
    assert diff <= tol, diff


# ----------------------------------------------------------------------------- graphs

@pytest.fixture(scope="module")
def feats(tiny):
    net, onnx = tiny
    x = torch.randn(1, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(5))
    with torch.inference_mode():
        return net.encode_image(x), onnx.encode_image(x)


def test_image_encoder_graph(feats):
    f, g = feats
    for name in ("s0", "s1", "top", "top_pos"):
        close(getattr(f, name), getattr(g, name), LOGITS_TOL)


@pytest.mark.parametrize("case", ["click", "clicks+box", "five objects", "mask only", "mask+click", "no prompt",
                                  "many clicks"])
@pytest.mark.parametrize("multimask", [False, True])
def test_decoder_graph(tiny, feats, case, multimask):
    """Dynamic objects and points (0 to 12 points, 1 to 5 objects), with and without a mask input."""
    net, onnx = tiny
    f = feats[0]
    g = torch.Generator().manual_seed(hash(case) % 1000)
    n, p = {"click": (1, 1), "clicks+box": (2, 4), "five objects": (5, 1), "many clicks": (1, 12)}.get(case, (1, 1))
    coords = labels = mask = None
    if "mask" not in case or "click" in case:
        coords = torch.rand(n, p, 2, generator=g) * SIZE
        labels = torch.randint(0, 2, (n, p), generator=g, dtype=torch.int32)
        if "box" in case:
            labels[:, :2] = torch.tensor([2, 3], dtype=torch.int32)
    if case == "no prompt":
        coords = labels = None
    if "mask" in case:
        mask = torch.randn(n, 1, SIZE // 4, SIZE // 4, generator=g) * 4
    with torch.inference_mode():
        a = net.decode(f.top, f.high_res, coords, labels, mask, multimask)
        b = onnx.decode(f.top, f.high_res, coords, labels, mask, multimask)
    close(a.masks, b.masks, LOGITS_TOL)
    close(a.iou, b.iou, IOU_TOL)
    close(a.obj_score, b.obj_score, LOGITS_TOL)


@pytest.mark.parametrize("prompt", ["points", "none", "mask"])
def test_sam_heads_and_object_pointer(tiny, feats, prompt):
    net, onnx = tiny
    f = feats[0]
    g = torch.Generator().manual_seed(3)
    coords = labels = mask = None
    if prompt == "points":
        coords, labels = torch.rand(1, 2, 2, generator=g) * SIZE, torch.tensor([[1, 0]], dtype=torch.int32)
    if prompt == "mask":
        mask = torch.randn(1, 1, SIZE, SIZE, generator=g) * 4
    with torch.inference_mode():
        for multimask in (False, True):
            a = net.sam_heads(f.top, f.high_res, coords, labels, mask, multimask)
            b = onnx.sam_heads(f.top, f.high_res, coords, labels, mask, multimask)
            close(a.logits, b.logits, LOGITS_TOL)
            close(a.multi_logits, b.multi_logits, LOGITS_TOL)
            close(a.ious, b.ious, IOU_TOL)
            close(a.obj_ptr, b.obj_ptr, LOGITS_TOL)
        binary = (torch.rand(1, 1, SIZE, SIZE, generator=g) > 0.7).float()
        a, b = net.mask_as_output(f.top, f.high_res, binary), onnx.mask_as_output(f.top, f.high_res, binary)
    close(a.logits, b.logits, LOGITS_TOL)
    close(a.obj_ptr, b.obj_ptr, LOGITS_TOL)


@pytest.mark.parametrize("from_points", [True, False])
@pytest.mark.parametrize("score", [2.0, -2.0])
def test_memory_encoder_graph(tiny, feats, from_points, score):
    net, onnx = tiny
    f = feats[0]
    logits = torch.randn(1, 1, SIZE, SIZE, generator=torch.Generator().manual_seed(4)) * 5
    s = torch.tensor([[score]])
    with torch.inference_mode():
        a, b = net.encode_memory(f.top, logits, s, from_points), onnx.encode_memory(f.top, logits, s, from_points)
    close(a.features, b.features, LOGITS_TOL)
    close(a.pos, b.pos, LOGITS_TOL)


@pytest.mark.parametrize("n_mem,n_ptr", [(1, 0), (1, 1), (3, 2), (7, 16), (0, 2)])
def test_memory_attention_graph(tiny, feats, n_mem, n_ptr):
    """Any number of memory frames (conditioning and recent, in the tracker's order) and pointers."""
    net, onnx = tiny
    f = feats[0]
    g = torch.Generator().manual_seed(n_mem * 31 + n_ptr)
    m, h = net.cfg.mem_dim, SIZE // 16
    agos = [0] + list(range(6, 0, -1))
    memories = [(agos[i], Memory(torch.randn(1, m, h, h, generator=g), torch.randn(1, m, h, h, generator=g)))
                for i in range(n_mem)]
    ptrs = [(d - 2, torch.randn(1, net.cfg.d_model, generator=g)) for d in range(n_ptr)]  # signed distances
    with torch.inference_mode():
        a = net.condition_on_memory(f, memories, ptrs, 15)
        b = onnx.condition_on_memory(f, memories, ptrs, 15)
    close(a, b, LOGITS_TOL)


# ----------------------------------------------------------------------------- image predictor

def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = (a | b).sum()
    return 1.0 if union == 0 else float((a & b).sum() / union)


PREDICT_CASES = {
    "click": dict(point_coords=[[150, 100]], point_labels=[1]),
    "clicks": dict(point_coords=[[150, 100], [60, 200], [250, 40]], point_labels=[1, 0, 1]),
    "box": dict(box=[40, 30, 220, 190]),
    "box+click": dict(box=[40, 30, 220, 190], point_coords=[[100, 100]], point_labels=[0]),
    "objects": dict(point_coords=[[[150, 100]], [[60, 200]], [[250, 40]]], point_labels=[[1], [1], [1]]),
}


@pytest.mark.parametrize("multimask", [False, True])
def test_image_predictor_through_onnx(tiny, multimask):
    net, onnx = tiny
    image = np.random.default_rng(0).integers(0, 255, (240, 320, 3), dtype=np.uint8)
    ours, theirs = ImagePredictor(net), ImagePredictor(onnx)
    ours.set_image(image)
    theirs.set_image(image)
    for name, kw in PREDICT_CASES.items():
        a, sa, low = ours.predict(multimask_output=multimask, **kw)
        b, sb, _ = theirs.predict(multimask_output=multimask, **kw)
        assert np.abs(sa - sb).max() <= IOU_TOL, name
        assert min(mask_iou(x, y) for x, y in zip(a.reshape(-1, *a.shape[-2:]), b.reshape(-1, *b.shape[-2:]))) >= 0.999
        # the previous low-res logits as a mask prompt, with a click
        a, _, _ = ours.predict(point_coords=[[150, 100]], point_labels=[1], mask_input=low[:1] if low.ndim == 3
                               else low[0, :1], multimask_output=False)
        b, _, _ = theirs.predict(point_coords=[[150, 100]], point_labels=[1], mask_input=low[:1] if low.ndim == 3
                                 else low[0, :1], multimask_output=False)
        assert mask_iou(a[0], b[0]) >= 0.999, name


def test_unchunked_hiera_is_the_same_function(tiny):
    """The export traces Hiera without its cache-sized chunks; that path equals the chunked one."""
    from sam2cli.model.export_graphs import unchunked
    net = tiny[0]
    x = torch.randn(1, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(8))
    with torch.inference_mode():
        a = net.encode_image(x)
        with unchunked(net):
            b = net.encode_image(x)
    assert all(blk.chunked for blk in net.image_encoder.trunk.blocks)  # restored
    for name in ("s0", "s1", "top"):
        close(getattr(a, name), getattr(b, name), 1e-4)
