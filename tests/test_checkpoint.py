"""Checkpoint loading: formats, variant detection from tensors, and one-line errors."""

import os
import pickle

import pytest
import torch

from sam2cli.errors import CheckpointError
from sam2cli.model.registry import get_config, registry
from sam2cli.model.checkpoint import build_model, read_state_dict, signature
from sam2cli.model.sam2 import SAM2Model


def load(path):
    return build_model(None, path, registry().values())


@pytest.fixture(scope="module")
def tiny_sd():
    torch.manual_seed(0)
    return SAM2Model(get_config("sam2.1_hiera_t")).state_dict()


def one_line_error(path, match):
    with pytest.raises(CheckpointError) as e:
        load(path)
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg and len(msg) < 400, msg
    assert match in msg, msg
    return msg


@pytest.mark.parametrize("name", sorted(registry()))
def test_signature_of_every_official_variant_is_unique_and_detected(name):
    cfg = registry()[name]
    with torch.device("meta"):
        sd = SAM2Model(cfg).state_dict()
    found = [c.name for c in registry().values()
             if (c.trunk.embed_dim, tuple(c.trunk.stages), c.version,
                 tuple(c.trunk.window_pos_embed_bkg_spatial_size)) == signature(sd)]
    assert found == [name]


def test_official_format_bare_state_dict_and_fp16_all_load(tiny_sd, tmp_path):
    official, bare, half = tmp_path / "a.pt", tmp_path / "b.pt", tmp_path / "sam2_hiera_large.pt"
    torch.save({"model": tiny_sd}, official)
    torch.save(tiny_sd, bare)
    # Ultralytics-style fp16 storage, under a misleading file name: the tensors decide.
    torch.save({"model": {k: v.half() if v.is_floating_point() else v for k, v in tiny_sd.items()}}, half)
    m1, m2, m3 = load(official), load(bare), load(half)
    assert m1.cfg.name == m2.cfg.name == m3.cfg.name == "sam2.1_hiera_t"
    p = dict(m3.named_parameters())
    assert p["no_obj_ptr"].dtype == torch.float32  # fp16 weights are cast to the model dtype
    assert torch.equal(dict(m1.named_parameters())["no_obj_ptr"], tiny_sd["no_obj_ptr"])
    assert torch.allclose(p["no_obj_ptr"], tiny_sd["no_obj_ptr"], atol=1e-3)


def test_sam2_0_is_told_apart_by_its_keys(tiny_sd, tmp_path):
    sd20 = {k: v for k, v in tiny_sd.items()
            if k not in ("no_obj_embed_spatial", "obj_ptr_tpos_proj.weight", "obj_ptr_tpos_proj.bias")}
    torch.save({"model": sd20}, tmp_path / "sam2.1_hiera_tiny.pt")  # 2.0 tensors, 2.1 name
    m = load(tmp_path / "sam2.1_hiera_tiny.pt")
    assert m.cfg.name == "sam2_hiera_t" and m.cfg.version == "2.0"


def test_truncated_file(tiny_sd, tmp_path):
    full = tmp_path / "full.pt"
    torch.save({"model": tiny_sd}, full)
    cut = tmp_path / "sam2.1_t.pt"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    one_line_error(cut, "truncated or corrupt")


def test_empty_and_missing_and_garbage_files(tmp_path):
    (tmp_path / "empty.pt").write_bytes(b"")
    one_line_error(tmp_path / "empty.pt", "empty")
    one_line_error(tmp_path / "nope.pt", "not found")
    (tmp_path / "garbage.pt").write_bytes(os.urandom(4096))
    with pytest.raises(CheckpointError) as e:
        load(tmp_path / "garbage.pt")
    assert "\n" not in str(e.value) and "garbage.pt" in str(e.value)


def test_foreign_checkpoint(tmp_path):
    path = tmp_path / "resnet.pt"
    torch.save({"model": {"conv1.weight": torch.zeros(3, 3), "fc.bias": torch.zeros(2)}}, path)
    one_line_error(path, "is not a SAM 2 checkpoint")
    torch.save({"epoch": 3, "lr": 0.1}, path)
    one_line_error(path, "is not a SAM 2 checkpoint")


class _Exploit:
    def __reduce__(self):
        return (os.system, (f"touch {_Exploit.marker}",))


def test_pickled_code_is_never_run(tmp_path):
    _Exploit.marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:
        pickle.dump({"model": _Exploit()}, f)
    with pytest.raises(CheckpointError):
        read_state_dict(path)
    assert not _Exploit.marker.exists()


def test_missing_and_misshapen_tensors_are_summarised(tiny_sd, tmp_path):
    sd = dict(tiny_sd)
    del sd["sam_mask_decoder.iou_prediction_head.layers.0.weight"]
    sd["no_mem_embed"] = torch.zeros(1, 1, 128)
    path = tmp_path / "broken.pt"
    torch.save({"model": sd}, path)
    msg = one_line_error(path, "1 missing (e.g. sam_mask_decoder.iou_prediction_head.layers.0.weight)")
    assert "1 wrong shape (e.g. no_mem_embed)" in msg


def test_unknown_variant(tiny_sd, tmp_path):
    sd = dict(tiny_sd)
    sd["image_encoder.trunk.patch_embed.proj.weight"] = torch.zeros(80, 3, 7, 7)
    path = tmp_path / "odd.pt"
    torch.save(sd, path)
    one_line_error(path, "unknown SAM 2 variant (trunk width 80")
