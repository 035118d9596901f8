"""Typed options of the engine's commands. The command line builds them from its arguments
(`sam2cli.cli.args.options_from`); Python callers build them directly:

    run_annotate(AnnotateOptions(data="ds/images", detector=DetectorOptions(det_model="yolo11n.pt")))

Field names are the command line's argument names (cfg/default.yaml), so `sam2 cfg` documents
every field here.
"""

from dataclasses import dataclass, field
from typing import Any, Optional


@dataclass(frozen=True)
class RunDirOptions:
    """Where a run's files go: project/name, then name2, name3, ... unless exist_ok."""
    project: str = "runs"
    name: Optional[str] = None        # None: the command's name
    exist_ok: bool = False


@dataclass(frozen=True)
class OutputOptions:
    """What a predict or track run writes (README, Outputs)."""
    save: bool = True                 # overlay images / mp4
    save_txt: bool = False            # YOLO segmentation labels
    save_conf: bool = False           # ... with each mask's score
    save_json: bool = False           # predictions.json (COCO RLE)
    save_masks: bool = False          # mask PNGs
    mask_format: str = "binary"       # binary or palette PNGs
    line_width: int = 2
    show_boxes: bool = False
    format: Optional[str] = None      # jsonl (or json): one record per image or frame on stdout

    @property
    def saves_files(self) -> bool:
        return self.save or self.save_txt or self.save_json or self.save_masks

    @property
    def jsonl(self) -> bool:
        return self.format in ("jsonl", "json")


@dataclass(frozen=True)
class DetectorOptions:
    """The detector that supplies annotate's boxes: existing labels, a torchvision name or an
    Ultralytics model."""
    det_model: Optional[str] = "yolo11x.pt"
    det_labels: Optional[str] = None  # folder of YOLO detection labels used instead of a model
    conf: float = 0.25
    iou: float = 0.45
    max_det: int = 300
    classes: Optional[list] = None    # class ids to keep
    device: Optional[str] = None
    half: bool = False
    imgsz: Optional[int] = None       # None: 640


@dataclass(frozen=True)
class AnnotateOptions:
    """`sam2 annotate`: detector boxes -> SAM 2 masks -> YOLO labels for a folder of images."""
    data: Optional[str] = None
    sam_model: str = "sam2.1_b.pt"
    detector: DetectorOptions = field(default_factory=DetectorOptions)
    output_dir: Optional[str] = None  # None: beside the images (images/ -> labels/)
    shard: Optional[str] = None       # "i/n"
    overwrite: bool = False
    save_json: bool = False
    engine: Optional[str] = "local"   # local or ray
    workers: int = 1
    ray_address: Optional[str] = None
    gpus_per_worker: Any = 1.0        # checked by the Ray engine (a number >= 0)
    device: Optional[str] = None
    half: bool = False
    verbose: bool = False

