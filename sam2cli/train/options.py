"""Typed options of `sam2 train`. The command line builds them from its arguments
(`sam2cli.cli.args.options_from`); field names are the arguments' names (cfg/default.yaml)."""

from dataclasses import dataclass, field
from typing import Any, Optional, Union

from sam2cli.engine.options import RunDirOptions


@dataclass(frozen=True)
class StepOptions:
    """What one training step does to its samples."""
    augment: bool = True              # flip, scale jitter and colour jitter
    n_correct: int = 7                # corrective clicks after the first prompt
    max_objects: int = 3              # objects per image or clip
    seed: int = 0                     # with (dataset, pass, index): each sample's generator


@dataclass(frozen=True)
class TrainOptions:
    model: str = "sam2.1_b.pt"        # checkpoint, or a config name to train from scratch
    data: Any = None                  # data.yaml, COCO json, DAVIS folder, or a list of them
    imgsz: Optional[int] = None
    device: Optional[str] = None
    half: bool = False
    resume: Union[bool, str, None] = None
    epochs: int = 20
    batch: Any = 4                    # per step over all processes; a list: one per data entry
    lr0: float = 1e-4
    lrf: float = 0.1
    warmup_steps: int = 100
    weight_decay: float = 0.1
    clip_grad: float = 0.1
    freeze: Any = None                # parameter-name prefix(es)
    clip_len: int = 8
    val_samples: int = 200
    step: StepOptions = field(default_factory=StepOptions)
    run_dir: RunDirOptions = field(default_factory=RunDirOptions)
