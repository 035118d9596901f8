"""`sam2 export format=onnx` and the ONNX Runtime backend (issue 20).

Random-weight SAM 2.1 tiny exported at imgsz=256 (backbone 64/32/16 maps): each graph against
the PyTorch model on inputs it was not traced with, the image predictor and the tracker through
ONNX Runtime against PyTorch. The demo model exported through the CLI at its own 384 px: the
same click, box and tracking quality as in PyTorch, and the same masks from `sam2 annotate`
(local and Ray), `sam2 track` and the interactive predictor. Bad folders and paths: one line each.
"""

import shutil

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")

from sam2cli.cli.app import main  # noqa: E402
from sam2cli.engine.heads import mask_as_output, sam_heads  # noqa: E402
from sam2cli.engine.image_predictor import ImagePredictor  # noqa: E402
from sam2cli.engine.loader import load_model  # noqa: E402
from sam2cli.engine.onnx_backend import OnnxSAM2  # noqa: E402
from sam2cli.model.sam2 import Memory  # noqa: E402

SIZE = 256
LOGITS_TOL, IOU_TOL = 1e-3, 2e-3


@pytest.fixture(scope="module")
def tiny(tiny_ckpt, tmp_path_factory):
    """(PyTorch model, ONNX model) of the random tiny checkpoint at 256 px."""
    from sam2cli.engine.export.job import ExportOptions, export_onnx
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


def test_both_backends_are_the_same_protocol(tiny, feats):
    """The engine's seam (engine/backend.py): same sizes and counts, and the decoder graph's
    object pointers are the PyTorch decode's (the host code picks among them)."""
    from sam2cli.engine.backend import Backend
    net, onnx = tiny
    assert isinstance(net, Backend) and isinstance(onnx, Backend)
    assert (net.kind, onnx.kind) == ("pytorch", "onnxruntime")
    assert onnx.mask_input_size == net.mask_input_size == SIZE // 4 and onnx.device == torch.device("cpu")
    assert onnx.num_params == net.num_params
    assert [name for name, _ in onnx.named_children()] == ["mask_downsample"]  # the graphs do the rest
    f = feats[0]
    coords, labels = torch.rand(2, 3, 2, generator=torch.Generator().manual_seed(4)) * SIZE, torch.ones(2, 3).int()
    with torch.inference_mode():
        for multimask in (False, True):
            a = net.decode(f.top, f.high_res, coords, labels, multimask=multimask)
            b = onnx.decode(f.top, f.high_res, coords, labels, multimask=multimask)
            close(a.obj_ptr, b.obj_ptr, LOGITS_TOL)


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
            a = sam_heads(net, f.top, f.high_res, coords, labels, mask, multimask)
            b = sam_heads(onnx, f.top, f.high_res, coords, labels, mask, multimask)
            close(a.logits, b.logits, LOGITS_TOL)
            close(a.multi_logits, b.multi_logits, LOGITS_TOL)
            close(a.ious, b.ious, IOU_TOL)
            close(a.obj_ptr, b.obj_ptr, LOGITS_TOL)
        binary = (torch.rand(1, 1, SIZE, SIZE, generator=g) > 0.7).float()
        a, b = mask_as_output(net, f.top, f.high_res, binary), mask_as_output(onnx, f.top, f.high_res, binary)
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
    assert all(blk.fast for blk in net.image_encoder.trunk.blocks)  # restored
    for name in ("s0", "s1", "top"):
        close(getattr(a, name), getattr(b, name), 1e-4)


# ----------------------------------------------------------------------------- tracking

N_FRAMES = 6


def added_mid_video_and_refined(p, s, out):
    """Two clicks on frame 0, a box added on frame 2, a refinement click on frame 4, tracked again."""
    out.append(p.add_new_points_or_box(s, frame_idx=0, obj_id=1, points=[[60, 120], [250, 200]], labels=[1, 0]))
    out.append(p.add_new_points_or_box(s, frame_idx=2, obj_id=2, box=[200, 40, 270, 110]))
    out.extend(p.propagate_in_video(s))
    out.append(p.add_new_points_or_box(s, frame_idx=4, obj_id=1, points=[[130, 100]], labels=[0],
                                       clear_old_points=False))
    out.extend(p.propagate_in_video(s))


def both_directions_with_a_mask(p, s, out):
    """A click and a mask prompt on the middle frame, tracked forward, then backward."""
    import cv2
    mask = np.zeros((240, 320), np.uint8)
    cv2.rectangle(mask, (200, 50), (270, 120), 1, -1)
    out.append(p.add_new_points_or_box(s, frame_idx=3, obj_id=1, points=[[96, 120]], labels=[1]))
    out.append(p.add_new_mask(s, frame_idx=3, obj_id=4, mask=mask.astype(bool)))
    out.extend(p.propagate_in_video(s))
    out.extend(p.propagate_in_video(s, reverse=True))


@pytest.mark.parametrize("script", [added_mid_video_and_refined, both_directions_with_a_mask],
                         ids=lambda f: f.__name__)
def test_tracking_through_onnx(tiny, frames_dir, script):
    """The video predictor (shared tracking logic) on both backends: same masks frame by frame."""
    from sam2cli.engine.video_predictor import SAM2VideoPredictor
    results = []
    for model in tiny:
        p = SAM2VideoPredictor(model=model)
        state, out = p.init_state(str(frames_dir)), []
        script(p, state, out)
        results.append([(f, list(ids), torch.as_tensor(l).float()) for f, ids, l in out])
    ious = []
    assert [(f, ids) for f, ids, _ in results[0]] == [(f, ids) for f, ids, _ in results[1]]
    for (_, _, a), (_, _, b) in zip(*results):
        ious += [mask_iou((a[k, 0] > 0).numpy(), (b[k, 0] > 0).numpy()) for k in range(a.shape[0])]
    print(f"tracking through ONNX Runtime: {len(ious)} frame-objects, mean IoU {np.mean(ious):.6f}, "
          f"min {min(ious):.6f}")
    assert np.mean(ious) >= 0.995 and min(ious) >= 0.98


# ----------------------------------------------------------------------------- command line, bad input

SAMPLE = "scripts/samples/shapes.jpg"


def run_cli(capsys, *args):
    """main(args) -> (exit code, stdout, stderr lines)."""
    import os
    from pathlib import Path
    cwd = os.getcwd()
    os.chdir(Path(__file__).resolve().parents[1])
    try:
        code = main(list(args))
    finally:
        os.chdir(cwd)
    out, err = capsys.readouterr()
    return code, out, [line for line in err.splitlines() if line.strip()]


def test_cli_export_writes_a_checked_folder(demo_folder, capsys, tmp_path):
    import yaml
    from sam2cli.io.onnx_folder import sha256_file
    meta = yaml.safe_load((demo_folder / "sam2.yaml").read_text())
    assert meta["variant"] == "sam2_demo" and meta["image_size"] == 384 and meta["version"] == "2.1"
    for role, entry in meta["files"].items():
        assert sha256_file(demo_folder / entry["file"]) == entry["sha256"], role
    assert not [p for p in demo_folder.parent.iterdir() if p.name.startswith(".")]  # no temp folder left
    code, out, _ = run_cli(capsys, "predict", f"model={demo_folder}", f"source={SAMPLE}", "points=[[150,170]]",
                           "labels=[1]", "format=jsonl", f"project={tmp_path}")
    assert code == 0 and out.count('"obj_id"') == 1  # stdout: only the record


def broken_copy(demo_folder, tmp_path, name="broken"):
    dest = tmp_path / name
    shutil.copytree(demo_folder, dest)
    return dest


def predict_error(capsys, model, tmp_path):
    code, out, err = run_cli(capsys, "predict", f"model={model}", f"source={SAMPLE}", "points=[[150,170]]",
                             "labels=[1]", f"project={tmp_path}")
    assert len(err) == 1 and not out, err
    return code, err[0]


def test_missing_graph_is_one_line(demo_folder, capsys, tmp_path):
    folder = broken_copy(demo_folder, tmp_path)
    (folder / "decoder.onnx").unlink()
    code, line = predict_error(capsys, folder, tmp_path)
    assert code == 1 and "missing decoder.onnx" in line


def test_edited_graph_is_refused_by_its_sha256(demo_folder, capsys, tmp_path):
    folder = broken_copy(demo_folder, tmp_path)
    with open(folder / "memory_encoder.onnx", "ab") as f:
        f.write(b"\0")
    code, line = predict_error(capsys, folder, tmp_path)
    assert code == 1 and "memory_encoder.onnx does not match the SHA-256" in line


def pin(folder, role, src):
    """Put `src` in the folder as `role` and record its hash, as a user editing sam2.yaml would."""
    import yaml
    from sam2cli.io.onnx_folder import sha256_file
    shutil.copy(src, folder / f"{role}.onnx")
    meta = yaml.safe_load((folder / "sam2.yaml").read_text())
    meta["files"][role]["sha256"] = sha256_file(folder / f"{role}.onnx")
    (folder / "sam2.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))


def test_graphs_from_another_model_are_one_line(demo_folder, tiny, capsys, tmp_path):
    # a single graph given as the model
    code, line = predict_error(capsys, demo_folder / "decoder.onnx", tmp_path)
    assert code == 1 and "single ONNX graph" in line and f"model={demo_folder}" in line
    # the tiny model's image encoder (256 px, 256 channels) inside the demo's folder, hash updated
    folder = broken_copy(demo_folder, tmp_path, "mixed")
    pin(folder, "image_encoder", tiny[1].folder / "image_encoder.onnx")
    code, line = predict_error(capsys, folder, tmp_path)
    assert code == 1 and "image_encoder.onnx" in line and "imgsz=384" in line
    # an ONNX graph that is not a sam2cli graph at all
    import onnx
    from onnx import TensorProto, helper
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "other", [x],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    onnx.save(helper.make_model(graph), tmp_path / "other.onnx")
    folder = broken_copy(demo_folder, tmp_path, "foreign")
    pin(folder, "decoder", tmp_path / "other.onnx")
    code, line = predict_error(capsys, folder, tmp_path)
    assert code == 1 and "is not a sam2cli decoder graph" in line


def test_export_to_a_file_is_one_line(capsys, tmp_path):
    target = tmp_path / "taken.txt"
    target.write_text("not a folder")
    code, out, err = run_cli(capsys, "export", "model=sam2_demo.pt", "format=onnx", f"output={target}")
    assert code == 2 and len(err) == 1 and "is a file" in err[0]
    assert target.read_text() == "not a folder" and sorted(p.name for p in tmp_path.iterdir()) == ["taken.txt"]
    code, out, err = run_cli(capsys, "export", "model=sam2_demo.pt", "format=jsonl", f"output={tmp_path / 'x'}")
    assert code == 2 and len(err) == 1 and "format=onnx" in err[0]


# ----------------------------------------------------------------------------- the demo model, exported

def test_demo_model_keeps_its_quality_through_onnx(demo_folder, tmp_path):
    """The demo test's click and box protocol on 12 unseen scenes, and one tracked video with an
    occlusion: the exported model scores what the PyTorch model scores, within 0.005."""
    from sam2cli import SAM
    from test_demo_model import click_and_box_ious, scene_images, track_one_click
    scenes = scene_images(12)
    torch_model, onnx_model = SAM("sam2_demo.pt", device="cpu"), SAM(str(demo_folder), device="cpu")
    (tc, tb), (oc, ob) = click_and_box_ious(torch_model, scenes), click_and_box_ious(onnx_model, scenes)
    print(f"demo through ONNX Runtime: click mIoU {np.mean(oc):.4f} (PyTorch {np.mean(tc):.4f}), "
          f"box {np.mean(ob):.4f} ({np.mean(tb):.4f})")
    assert abs(np.mean(oc) - np.mean(tc)) <= 0.005 and abs(np.mean(ob) - np.mean(tb)) <= 0.005
    (tmp_path / "t").mkdir(), (tmp_path / "o").mkdir()
    (tj, _, _) = track_one_click(0, tmp_path / "t")
    (oj, hidden, _) = track_one_click(0, tmp_path / "o", model=str(demo_folder))
    print(f"demo tracking J through ONNX Runtime {oj:.4f} (PyTorch {tj:.4f})")
    assert abs(oj - tj) <= 0.005 and all(hidden)


def test_missing_gpu_provider_names_the_package(demo_folder, capsys, tmp_path):
    import onnxruntime as ort
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has the CUDA provider")
    code, out, err = run_cli(capsys, "predict", f"model={demo_folder}", "device=cuda", f"source={SAMPLE}",
                             "points=[[150,170]]", "labels=[1]", f"project={tmp_path}")
    assert code == 1 and len(err) == 1 and "pip install onnxruntime-gpu" in err[0]


def test_segment_everything_through_onnx(demo_folder):
    """No prompt: the 8x8 grid of single clicks decoded in batches, filtered and NMS'd the same way."""
    from sam2cli import SAM
    from sam2cli.engine.everything import generate_masks
    from test_demo_model import EVERYTHING_PARAMS, scene_images
    image = scene_images(1)[0][0]
    outs = []
    for model in (SAM("sam2_demo.pt", device="cpu"), SAM(str(demo_folder), device="cpu")):
        model.predictor.set_image(image)
        outs.append(generate_masks(model.predictor, image, image_is_set=True, points_per_side=8, **EVERYTHING_PARAMS))
    (a, sa), (b, sb) = outs
    assert len(a) == len(b) > 0 and np.abs(sa - sb).max() <= IOU_TOL
    assert min(mask_iou(x, y) for x, y in zip(a, b)) >= 0.999


@pytest.mark.slow
def test_full_size_tiny(tiny_ckpt, tmp_path):
    """SAM 2.1 tiny at its own 1024 px: every graph within the limits, and the image predictor."""
    from sam2cli.engine.export.job import ExportOptions, export_onnx
    from sam2cli.engine.export.check import check_export
    folder = export_onnx(ExportOptions(model=str(tiny_ckpt), output=str(tmp_path / "t1024")), log=lambda s: None)
    net, onnx = load_model(tiny_ckpt, "cpu")[0], load_model(folder, "cpu")[0]
    worst = check_export(net, folder)
    assert worst["decoder"]["iou"] <= IOU_TOL
    assert max(v for d in worst.values() for v in d.values()) <= LOGITS_TOL, worst
    image = np.random.default_rng(1).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    ours, theirs = ImagePredictor(net), ImagePredictor(onnx)
    ours.set_image(image)
    theirs.set_image(image)
    for kw in PREDICT_CASES.values():
        a, b = ours.predict(multimask_output=False, **kw)[0], theirs.predict(multimask_output=False, **kw)[0]
        assert min(mask_iou(x, y) for x, y in zip(a.reshape(-1, *a.shape[-2:]), b.reshape(-1, *b.shape[-2:]))) >= 0.999


def test_sam2_0_memory_graphs(tmp_path):
    """SAM 2.0's settings (no pointer temporal encoding, no no-object spatial embedding) traced
    into the memory graphs: the same results as the PyTorch model."""
    import onnxruntime as ort
    from sam2cli.engine.export.job import graph_specs, trace_graph
    from sam2cli.engine.onnx_backend import INPUTS
    from sam2cli.model.registry import get_config
    from sam2cli.model.sam2 import SAM2Model
    torch.manual_seed(2)
    net = SAM2Model(get_config("sam2_hiera_t").with_image_size(SIZE)).eval()
    net.set_image_size(SIZE)
    assert not net.cfg.add_tpos_enc_to_obj_ptrs and net.no_obj_embed_spatial is None
    specs = graph_specs(net)
    g = torch.Generator().manual_seed(3)
    f = net.encode_image(torch.randn(1, 3, SIZE, SIZE, generator=g))
    with torch.no_grad():
        for name in ("memory_encoder", "memory_attention"):
            trace_graph(name, specs[name], tmp_path / f"{name}.onnx", 17)
        logits, score = torch.randn(1, 1, SIZE, SIZE, generator=g) * 4, torch.tensor([[-1.0]])
        mem = net.encode_memory(f.top, logits, score, from_points=False)
        enc = ort.InferenceSession(str(tmp_path / "memory_encoder.onnx"), providers=["CPUExecutionProvider"])
        assert [i.name for i in enc.get_inputs()] == INPUTS["memory_encoder"]  # none dropped as unused
        feats, _ = enc.run(None, {"pix_feat": f.top.numpy(), "mask_logits": logits.numpy(),
                                  "obj_score": score.numpy(), "binarize": np.zeros(1, np.float32)})
        close(mem.features, torch.from_numpy(feats), LOGITS_TOL)
        ptrs = [(0, torch.randn(1, 256, generator=g)), (3, torch.randn(1, 256, generator=g))]
        want = net.condition_on_memory(f, [(0, mem), (2, mem)], ptrs, 15)
        att = ort.InferenceSession(str(tmp_path / "memory_attention.onnx"), providers=["CPUExecutionProvider"])
        assert [i.name for i in att.get_inputs()] == INPUTS["memory_attention"]
        got = att.run(None, {"top": f.top.numpy(), "top_pos": f.top_pos.numpy(),
                             "mem": torch.stack([mem.features] * 2, 1).numpy(),
                             "mem_pos": torch.stack([mem.pos] * 2, 1).numpy(),
                             "mem_tpos": np.array([6, 1]), "ptrs": torch.stack([p for _, p in ptrs], 1).numpy(),
                             "ptr_pos": np.array([0, 3 / 15], np.float32)})[0]
    close(want, torch.from_numpy(got), LOGITS_TOL)


# ----------------------------------------------------------------------------- the export in every command

def demo_dataset(root, n=4):
    """root/images: n unseen demo scenes (128 px PNGs); root/boxes: their objects' tight boxes as
    YOLO detection labels (class = scene kind), the detector annotate takes from files."""
    import cv2
    from test_demo_model import scene_images, tight_box
    (root / "images").mkdir(parents=True)
    (root / "boxes").mkdir()
    for i, (image, masks, classes) in enumerate(scene_images(n)):
        cv2.imwrite(str(root / "images" / f"s{i}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        h, w = image.shape[:2]
        lines = []
        for m, c in zip(masks, classes):
            x0, y0, x1, y1 = tight_box(m)
            lines.append(f"{c} {(x0 + x1) / 2 / w:.6f} {(y0 + y1) / 2 / h:.6f} {(x1 - x0) / w:.6f} {(y1 - y0) / h:.6f}")
        (root / "boxes" / f"s{i}.txt").write_text("\n".join(lines) + "\n")
    return root


def annotate(ds, sam_model, out, *argv):
    """`sam2 annotate` as users run it (the detector: box files) -> the labels folder."""
    code = main(["annotate", f"data={ds / 'images'}", f"sam_model={sam_model}", "device=cpu",
                 f"det_labels={ds / 'boxes'}", f"output_dir={out}", "save_json=True", *argv])
    assert code == 0
    return out


def annotation_masks(out):
    """{(image, object index): (class, mask)} from annotate's COCO records."""
    import json
    from sam2cli.io.coco_rle import rle_to_mask
    masks = {}
    for path in sorted(out.glob(".coco/*.json")):
        for k, rec in enumerate(json.loads(path.read_text())["annotations"]):
            masks[(path.stem, k)] = (rec["category_id"], rle_to_mask(rec["segmentation"]))
    return masks


def same_masks(a, b, limit=0.99):
    """Same keys and classes, every mask IoU >= limit; returns the IoUs."""
    assert a.keys() == b.keys() and a
    assert all(a[k][0] == b[k][0] for k in a)
    ious = [mask_iou(a[k][1], b[k][1]) for k in a]
    assert min(ious) >= limit, sorted(ious)[:3]
    return ious


def test_annotate_with_an_export_writes_the_pytorch_labels(demo_folder, tmp_path):
    """`sam2 annotate` (local engine) with sam_model=<export>: the same objects, classes and masks
    (IoU >= 0.99 each) as with the checkpoint it came from; polygons within a pixel."""
    ds = demo_dataset(tmp_path / "ds")
    a = annotate(ds, "sam2_demo.pt", tmp_path / "torch")
    b = annotate(ds, demo_folder, tmp_path / "onnx")
    ious = same_masks(annotation_masks(a), annotation_masks(b))
    print(f"annotate through ONNX Runtime: {len(ious)} objects, min mask IoU {min(ious):.4f}")
    for txt in sorted(a.glob("*.txt")):
        la, lb = txt.read_text().splitlines(), (b / txt.name).read_text().splitlines()
        assert [x.split()[0] for x in la] == [x.split()[0] for x in lb]
        for x, y in zip(la, lb):
            pa, pb = np.array(x.split()[1:], float), np.array(y.split()[1:], float)
            if len(pa) == len(pb):  # same vertices: within a pixel of the 128-px image
                assert np.abs(pa - pb).max() <= 1 / 128 + 1e-6


def test_annotate_with_an_export_on_ray(demo_folder, tmp_path):
    """engine=ray with sam_model=<export>: the folder reaches the actors as it is, and they write the
    local engine's masks."""
    ray = pytest.importorskip("ray")
    ds = demo_dataset(tmp_path / "ds", n=2)
    local = annotate(ds, demo_folder, tmp_path / "local")
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    try:
        remote = annotate(ds, demo_folder, tmp_path / "ray", "engine=ray", "workers=1")
    finally:
        if started:
            ray.shutdown()
    same_masks(annotation_masks(local), annotation_masks(remote), limit=1.0)


def demo_clip(path, n=6):
    """An unseen demo video (128 px, 2-3 objects) as an h264 mp4, and its first frame's masks."""
    from media import write_mp4
    from sam2cli.train.scenes import item_rng
    from sam2cli.train.scenes_video import make_video
    frames, masks, _ = make_video(item_rng(987_654, 1, 1), 128, n_frames=n, n_objects=(2, 3))
    return write_mp4(path, frames), masks[0]


def test_track_with_an_export_gives_the_pytorch_masks(demo_folder, tmp_path, monkeypatch):
    """`sam2 track` with model=<export>: the checkpoint's masks on every frame and object (IoU >= 0.99),
    clicks on two objects on the first frame of an h264 clip."""
    import json
    from sam2cli.io.coco_rle import rle_to_mask
    from test_demo_model import interior_point
    clip, first = demo_clip(tmp_path / "clip.mp4")
    points = [[float(v) for v in interior_point(m)] for m in first[:2]]
    prompts = [{"frame": 0, "obj_id": k + 1, "points": [p], "labels": [1]} for k, p in enumerate(points)]
    (tmp_path / "p.json").write_text(json.dumps(prompts))
    monkeypatch.chdir(tmp_path)
    out = {}
    for name, model in (("torch", "sam2_demo.pt"), ("onnx", demo_folder)):
        assert main(["track", f"model={model}", f"source={clip}", "prompts=p.json", "device=cpu", "save_json=True",
                     "save=False", f"name={name}", "exist_ok=True"]) == 0
        records = json.loads((tmp_path / "runs" / name / "predictions.json").read_text())
        out[name] = {(r["frame"], r["obj_id"]): (0, rle_to_mask(r["segmentation"])) for r in records}
    assert {f for f, _ in out["torch"]} == set(range(6))
    ious = same_masks(out["torch"], out["onnx"])
    print(f"sam2 track through ONNX Runtime: {len(ious)} frame-objects, min IoU {min(ious):.4f}")


def test_interactive_predictor_with_an_export(demo_folder):
    """The dynamic interactive predictor on an export: a box and a click registered on different
    frames, then tracked; the checkpoint's masks on every frame (IoU >= 0.99)."""
    from sam2cli.engine.interactive import SAM2DynamicInteractivePredictor
    from sam2cli.train.scenes import item_rng
    from sam2cli.train.scenes_video import make_video
    from test_demo_model import interior_point, tight_box
    frames, masks, _ = make_video(item_rng(987_654, 1, 2), 128, n_frames=5, n_objects=(2, 3))
    results = []
    for model in ("sam2_demo.pt", str(demo_folder)):
        p = SAM2DynamicInteractivePredictor(overrides=dict(model=model, device="cpu"))
        out = [p(frames[0], bboxes=[list(tight_box(masks[0, 0]))], obj_ids=[0]),
               p(frames[1], points=[list(interior_point(masks[1, 1]))], labels=[1], obj_ids=[1])]
        out += [p(f) for f in frames[2:]]
        results.append([{(t, int(i)): (0, m) for i, m in zip(r.boxes.id, r.masks.data)} for t, r in enumerate(out)])
    ious = [iou for a, b in zip(*results) for iou in same_masks(a, b)]
    assert len(ious) == 1 + 2 * 4


# ----------------------------------------------------------------------------- half=True

def test_half_export_is_fp16_inside_and_close_to_pytorch(demo_folder, tmp_path, caplog):
    """half=True: fp16 weights and activations, fp32 inputs and outputs (the same host code), under
    60% of the fp32 folder; the export's own check passed at its relative tolerance. On the CPU it
    runs (through casts, with one warning) and gives the PyTorch masks for clicks (mean IoU >= 0.99)
    and for tracking (mean IoU >= 0.98)."""
    import logging
    import onnx
    import yaml
    from sam2cli import SAM
    from sam2cli.engine.video_predictor import SAM2VideoPredictor
    from test_demo_model import interior_point, scene_images
    out = tmp_path / "demo_half"
    assert main(["export", "model=sam2_demo.pt", "format=onnx", "half=True", f"output={out}"]) == 0
    assert yaml.safe_load((out / "sam2.yaml").read_text())["precision"] == "fp16"
    size = {f: sum(p.stat().st_size for p in f.glob("*.onnx")) for f in (demo_folder, out)}
    assert size[out] < 0.6 * size[demo_folder], size
    graph = onnx.load(str(out / "image_encoder.onnx")).graph
    assert {i.type.tensor_type.elem_type for i in [*graph.input, *graph.output]} == {onnx.TensorProto.FLOAT}
    assert {t.data_type for t in graph.initializer if t.dims and np.prod(t.dims) > 64} == {onnx.TensorProto.FLOAT16}
    with caplog.at_level(logging.WARNING, logger="sam2cli"):
        half, full = SAM(str(out), device="cpu"), SAM("sam2_demo.pt", device="cpu")
    assert "fp16 graphs" in caplog.text and "device=cuda" in caplog.text
    ious = []
    for image, masks, _ in scene_images(4):
        for m in (half, full):
            m.predictor.set_image(image)
        for mask in masks:
            kw = dict(point_coords=[interior_point(mask)], point_labels=[1], multimask_output=False)
            ious.append(mask_iou(half.predictor.predict(**kw)[0][0], full.predictor.predict(**kw)[0][0]))
    # the smallest objects are a dozen pixels at 128 px, where one pixel is 8% of IoU
    assert np.mean(ious) >= 0.99 and min(ious) >= 0.9, sorted(ious)[:3]
    clip, first = demo_clip(tmp_path / "clip.mp4")
    tracked = []
    for model in (half.model, full.model):
        p = SAM2VideoPredictor(model=model)
        state = p.init_state(str(clip))
        for k, m in enumerate(first[:2]):
            p.add_new_points_or_box(state, frame_idx=0, obj_id=k + 1, points=[interior_point(m)], labels=[1])
        tracked.append([(l[:, 0] > 0).numpy() for _, _, l in p.propagate_in_video(state)])
    track = [mask_iou(a[k], b[k]) for a, b in zip(*tracked) for k in range(len(a))]
    print(f"fp16 through ONNX Runtime (CPU): click IoU mean {np.mean(ious):.4f} min {min(ious):.4f} over {len(ious)}, "
          f"tracking mean {np.mean(track):.4f} min {min(track):.4f}")
    assert np.mean(track) >= 0.98


def test_half_and_int8_together_is_one_line(capsys, tmp_path):
    code, out, err = run_cli(capsys, "export", "model=sam2_demo.pt", "half=True", "int8=True",
                             f"output={tmp_path / 'x'}")
    assert code == 2 and len(err) == 1 and "pick one" not in err[0] and "not both" in err[0]
    assert not (tmp_path / "x").exists()
