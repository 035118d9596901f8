"""What a training run starts from: the model (checkpoint, config, or a run to resume) and the
train/val datasets, all validated before the first step."""

from pathlib import Path
from typing import Optional, Tuple

import torch

from sam2cli.errors import UsageError
from sam2cli.engine.loader import load_model
from sam2cli.model.config import ModelConfig
from sam2cli.model.sam2 import SAM2Model
from .options import TrainOptions
from .scratch_init import init_for_scratch


def find_last(project: str) -> Path:
    runs = sorted(Path(project).glob("train*/weights/last.pt"), key=lambda p: p.stat().st_mtime)
    if not runs:
        raise UsageError(f"resume=True but no {project}/train*/weights/last.pt exists; give resume=path/to/last.pt")
    return runs[-1]


def load_train_model(opts: TrainOptions, device) -> Tuple[SAM2Model, int, Optional[dict]]:
    """-> (model on device, first epoch, resume state or None)."""
    if opts.resume:
        last = find_last(opts.run_dir.project) if opts.resume is True else Path(opts.resume)
        state = torch.load(last, map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or "epoch" not in state:
            raise UsageError(f"{last} is not a sam2cli training checkpoint (no epoch); use model= to fine-tune it")
        model, _ = load_model(last, device)
        state["run_dir"] = str(last.parent.parent)
        return model, int(state["epoch"]) + 1, state
    model, _ = load_model(opts.model, device, opts.imgsz, from_config=scratch_model)
    if not isinstance(model, SAM2Model):
        raise UsageError(f"model={opts.model} is an ONNX export, which cannot be trained; "
                         "fine-tune the checkpoint it was exported from")
    return model, 0, None


def scratch_model(cfg: ModelConfig) -> SAM2Model:
    """A config's architecture, initialised to be trained from scratch."""
    model = SAM2Model(cfg)
    init_for_scratch(model)
    return model


def open_splits(opts: TrainOptions):
    """-> (train datasets, val datasets, is_video per dataset), one per `data=` entry (a list, or
    paths joined by commas: the first sets the epoch, see schedule.py); malformed data fails here,
    before training."""
    from sam2cli.io.datasets import VideoDataset, check_dataset, open_dataset
    entries = opts.data if isinstance(opts.data, (list, tuple)) else str(opts.data or "").split(",")
    entries = [str(e).strip() for e in entries if str(e).strip()]
    if not entries:
        raise UsageError("data= is required: a YOLO data.yaml, a COCO instances .json or a DAVIS folder "
                         "(or several joined by commas, to train on them together)")
    trains, vals = [], []
    for entry in entries:
        for split, out in (("train", trains), ("val", vals)):
            ds = open_dataset(entry, split)
            if isinstance(ds, VideoDataset):
                ds.clip_len, ds.max_objects = opts.clip_len, opts.step.max_objects
            check_dataset(ds)
            out.append(ds)
    return trains, vals, [isinstance(ds, VideoDataset) for ds in trains]
