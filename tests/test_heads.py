"""The SAM heads over a backend (engine/heads.py): the multimask choice and its `choose` hook.

The reference parity of the heads is in test_parity_modules.py (PyTorch) and
test_export_onnx.py (ONNX Runtime); here, on a small random model, what `choose` changes."""

import pytest
import torch

from sam2cli.engine.backend import Backend
from sam2cli.engine.heads import best_iou, mask_as_output, sam_heads
from sam2cli.model.registry import get_config
from sam2cli.model.sam2 import SAM2Model

B = 3


@pytest.fixture(scope="module")
def setup():
    """(model, features, pix, coords, labels): a random demo-sized model, its objects present."""
    torch.manual_seed(0)
    model = SAM2Model(get_config("sam2_demo")).eval()
    with torch.no_grad():
        model.sam_mask_decoder.pred_obj_score_head.layers[-1].bias.fill_(10.0)  # every object present
    s = model.image_size
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        f = model.encode_image(torch.randn(1, 3, s, s, generator=g))
        pix = model.condition_on_memory(f, [], [], 1)
    coords = torch.rand(B, 1, 2, generator=g) * s
    labels = torch.ones(B, 1, dtype=torch.int32)
    return model, f, pix, coords, labels


def test_pytorch_model_is_a_backend(setup):
    model = setup[0]
    assert isinstance(model, Backend) and model.kind == "pytorch"
    assert model.mask_input_size == model.image_size // 4 and model.device == torch.device("cpu")
    assert model.num_params == sum(p.numel() for p in model.parameters())


def test_default_choice_is_the_best_predicted_iou(setup):
    model, f, pix, coords, labels = setup
    with torch.no_grad():
        d = model.decode(pix, f.high_res, coords, labels, multimask=True)
        out = sam_heads(model, pix, f.high_res, coords, labels, multimask=True)
    best = d.iou.argmax(-1)
    rows = torch.arange(B)
    assert torch.equal(out.logits, d.masks[rows, best][:, None])
    assert torch.equal(out.obj_ptr, d.obj_ptr[rows, best])
    assert torch.equal(best_iou(d.masks, d.iou, d.obj_score), best)


def test_choose_picks_the_mask_and_its_pointer(setup):
    model, f, pix, coords, labels = setup
    seen = []

    def worst(logits, ious, obj_score):
        seen.append((logits.shape, ious.shape, obj_score.shape))
        return ious.argmin(-1)
    with torch.no_grad():
        d = model.decode(pix, f.high_res, coords, labels, multimask=True)
        out = sam_heads(model, pix, f.high_res, coords, labels, multimask=True, choose=worst)
    h = model.mask_input_size
    assert seen == [((B, 3, h, h), (B, 3), (B, 1))]
    pick, rows = d.iou.argmin(-1), torch.arange(B)
    assert not torch.equal(pick, d.iou.argmax(-1))  # the hook changed the answer
    assert torch.equal(out.logits, d.masks[rows, pick][:, None])
    assert torch.equal(out.obj_ptr, d.obj_ptr[rows, pick])
    assert torch.equal(out.multi_logits, d.masks) and torch.equal(out.ious, d.iou)  # all candidates kept


def test_choose_is_not_asked_for_a_single_mask(setup):
    model, f, pix, coords, labels = setup

    def fail(*args):
        raise AssertionError("called")
    with torch.no_grad():
        out = sam_heads(model, pix, f.high_res, coords, labels, multimask=False, choose=fail)
    assert out.logits.shape == (B, 1, model.mask_input_size, model.mask_input_size)


def test_choose_must_answer_one_index_per_row(setup):
    model, f, pix, coords, labels = setup
    with torch.no_grad(), pytest.raises(ValueError, match=r"\(3,\) tensor"):
        sam_heads(model, pix, f.high_res, coords, labels, multimask=True, choose=lambda m, i, s: i.argmax())


def test_gradients_reach_the_pointer_projection_and_the_mask_downsampler(setup):
    """Training calls the heads: the chosen pointer and a mask prompt's pointer keep their graph."""
    model, f, pix, coords, labels = setup
    model.zero_grad()
    out = sam_heads(model, pix, f.high_res, coords, labels, multimask=True)
    (out.obj_ptr.sum() + out.logits.mean()).backward()
    assert model.obj_ptr_proj.layers[0].weight.grad.abs().sum() > 0
    mask = torch.zeros(1, 1, model.image_size, model.image_size)
    mask[..., 40:120, 60:200] = 1
    model.zero_grad()
    mask_as_output(model, f.top, f.high_res, mask).obj_ptr.sum().backward()
    assert model.mask_downsample.weight.grad.abs().sum() > 0
