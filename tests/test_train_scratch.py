"""Training from scratch: the decoder must learn to follow its prompt (issue 8, the demo model).

With PyTorch's default initialisation SAM's decoder ignores where the click is; init_for_scratch
(applied by `sam2 train model=<config>`) fixes that without touching names or shapes."""

import torch
import torch.nn.functional as F

from sam2cli.model.registry import get_config, registry
from sam2cli.model.checkpoint import build_model
from sam2cli.model.sam2 import SAM2Model
from sam2cli.train.losses import SAM2Loss, StepPred
from sam2cli.train.scratch_init import init_for_scratch


def disk_iou_after_training(model: SAM2Model, steps: int) -> float:
    """Blank image; the target is a disk of radius 12 px around a random click."""
    size = model.image_size
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    loss_fn = SAM2Loss()
    yy, xx = torch.meshgrid(torch.arange(size * 1.0), torch.arange(size * 1.0), indexing="ij")
    gen = torch.Generator().manual_seed(0)
    image = torch.zeros(1, 3, size, size)
    ious = []
    for step in range(steps):
        pts = torch.rand(16, 1, 2, generator=gen) * (size - 28) + 14
        gt = ((xx - pts[:, 0, 0, None, None]) ** 2 + (yy - pts[:, 0, 1, None, None]) ** 2 < 144)[:, None]
        f = model.encode_image(image)  # trained too: the whole model, as `sam2 train` does
        out = model.decode(f.top + model.no_mem_embed.reshape(1, -1, 1, 1), f.high_res, pts,
                           torch.ones(16, 1, dtype=torch.int32), None, multimask=False)
        logits = F.interpolate(out.masks, size=(size, size), mode="bilinear", align_corners=False)
        loss = loss_fn([[StepPred(logits, out.iou, out.obj_score)]], gt[None])["core_loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step >= steps - 20:
            pred = logits.detach() > 0
            ious.append(float(((pred & gt).sum((1, 2, 3)) / (pred | gt).sum((1, 2, 3)).clamp(min=1)).mean()))
    return sum(ious) / len(ious)


def test_from_scratch_decoder_learns_where_the_click_is():
    torch.manual_seed(0)
    model = SAM2Model(get_config("sam2_demo"))
    model.set_image_size(128)  # the mechanism, not the resolution, is under test: keep CI fast
    init_for_scratch(model)
    iou = disk_iou_after_training(model, 200)
    print(f"disk IoU after 200 steps: {iou:.3f}")
    assert iou > 0.3  # PyTorch default init: 0.0


def test_scratch_init_keeps_official_names_and_tokens_distinct(tmp_path):
    torch.manual_seed(0)
    model = SAM2Model(get_config("sam2_demo")).eval()
    before = {k: v.shape for k, v in model.state_dict().items()}
    init_for_scratch(model)
    assert {k: v.shape for k, v in model.state_dict().items()} == before
    torch.save({"model": model.state_dict()}, tmp_path / "m.pt")
    build_model(None, tmp_path / "m.pt", registry().values())  # strict load, variant detected
    seen = {}
    model.sam_mask_decoder.transformer.layers[0].register_forward_hook(lambda m, i, o: seen.update(q=o[0][0]))
    f = model.encode_image(torch.randn(1, 3, model.image_size, model.image_size))
    model.decode(f.top, f.high_res, torch.tensor([[[20.0, 30.0]]]), torch.ones(1, 1, dtype=torch.int32))
    q = F.normalize(seen["q"], dim=-1)
    n = q.shape[0]
    assert float((q @ q.T).sum() - n) / (n * n - n) < 0.5  # tokens keep their identity
