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
class VideoAnnotateOptions:
    """`sam2 annotate` on videos: detect every det_stride frames, track with SAM 2's memory."""
    det_stride: int = 10              # detect on frame 0 and every det_stride-th frame
    new_iou: float = 0.5              # a detection no tracked object covers this well starts an object
    reprompt_iou: float = 1.0         # a matched detection re-prompts its object below this box IoU
    max_lost: int = 30                # frames an object may be absent (or unmatched) before it ends
    vid_stride: int = 1               # every vid_stride-th frame goes into the dataset
    non_overlap: bool = False         # each pixel keeps only its highest-scoring object
    save: bool = True                 # an overlay mp4 per video
    save_masks: bool = False          # DAVIS palette PNGs per video


@dataclass(frozen=True)
class AnnotateOptions:
    """`sam2 annotate`: detector boxes -> SAM 2 masks -> YOLO labels for a folder of images."""
    data: Optional[str] = None
    sam_model: str = "sam2.1_b.pt"
    sam_imgsz: Optional[int] = None   # SAM's input size (None: the model's own); imgsz is the detector's
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
    video: VideoAnnotateOptions = field(default_factory=VideoAnnotateOptions)



@dataclass(frozen=True)
class EverythingOptions:
    """Segment-everything (no prompt): the reference SAM2AutomaticMaskGenerator's parameters."""
    points_per_side: int = 32
    points_per_batch: int = 64
    pred_iou_thresh: float = 0.8
    stability_score_thresh: float = 0.95
    stability_score_offset: float = 1.0
    mask_threshold: float = 0.0
    box_nms_thresh: float = 0.7
    crop_n_layers: int = 0
    crop_nms_thresh: float = 0.7
    crop_overlap_ratio: float = 512 / 1500
    crop_n_points_downscale_factor: int = 1
    min_mask_region_area: int = 0
    use_m2m: bool = False


@dataclass(frozen=True)
class ModelOptions:
    """Which model runs, where and how."""
    model: str = "sam2.1_b.pt"        # checkpoint name or path, config name, or an export folder
    device: Optional[str] = None      # None: cuda, then mps, then cpu
    half: bool = False                # bf16/fp16 where the hardware computes it natively
    imgsz: Optional[int] = None       # None: the model's own input size


@dataclass(frozen=True)
class VideoOptions:
    """How a tracking session runs (the video predictors, `sam2 track`, the app)."""
    net: ModelOptions = field(default_factory=ModelOptions)
    vid_stride: int = 1
    max_frames: Optional[int] = None  # calling the predictor yields at most this many frames
    non_overlap: bool = False
    tracker: str = "sam2"             # sam2 (the reference), samurai or dam4sam
    fill_hole_area: int = 8           # the reference's hole filling, in low-res mask pixels


@dataclass(frozen=True)
class PromptOptions:
    """Prompts given on the command line, in pixels (README, prompt nesting); masks is a path."""
    points: Any = None
    labels: Any = None
    bboxes: Any = None
    masks: Optional[str] = None
    frame: int = 0                    # track: the frame they are on
    obj_ids: Any = None               # track: their object ids


@dataclass(frozen=True)
class SourceRunOptions:
    """What predict and track share: a source, a model, prompts, the writers and the run folder."""
    source: Any = None                # image, folder, glob, .txt list, -, video, frame folder, webcam, URL
    vid_stride: int = 1
    max_frames: Optional[int] = None  # track: per pass, the prompted frame included
    net: ModelOptions = field(default_factory=ModelOptions)
    prompt: PromptOptions = field(default_factory=PromptOptions)
    outputs: OutputOptions = field(default_factory=OutputOptions)
    run_dir: RunDirOptions = field(default_factory=RunDirOptions)


@dataclass(frozen=True)
class PredictOptions(SourceRunOptions):
    """`sam2 predict`: images, folders, lists and videos -> masks."""
    multimask_output: bool = False
    verbose: bool = False
    everything: EverythingOptions = field(default_factory=EverythingOptions)


@dataclass(frozen=True)
class TrackOptions(SourceRunOptions):
    """`sam2 track`: prompted objects through a video."""
    prompts: Optional[str] = None     # a prompts file (json/yaml), else the command-line prompts
    direction: str = "forward"        # forward, backward or both
    reverse: bool = False             # deprecated alias of direction="backward"
    non_overlap: bool = False
    tracker: str = "sam2"             # sam2 (the reference), samurai or dam4sam
    fill_hole_area: int = 8

    @property
    def video(self) -> "VideoOptions":
        """How its tracking session runs."""
        return VideoOptions(net=self.net, vid_stride=self.vid_stride, max_frames=self.max_frames,
                            non_overlap=self.non_overlap, tracker=self.tracker, fill_hole_area=self.fill_hole_area)


@dataclass(frozen=True)
class ValOptions:
    """`sam2 val`: a model on a labelled dataset, with the community's metrics."""
    data: Any = None                  # DAVIS/SA-V folder, YOLO data.yaml, COCO json, images/ + masks/
    task: Optional[str] = None        # vos, image or interactive; None: from the data
    multimask_output: bool = False    # single-click predictions keep the best of 3 masks
    save_masks: bool = False          # vos: predicted masks in the input's layout under run_dir/masks
    max_clicks: int = 20              # interactive: the click budget (NoC counts it when never reached)
    tracker: str = "sam2"             # vos: sam2 (the reference), samurai or dam4sam
    format: Optional[str] = None      # jsonl: the summary as one JSON line on stdout
    net: ModelOptions = field(default_factory=ModelOptions)
    run_dir: RunDirOptions = field(default_factory=RunDirOptions)


@dataclass(frozen=True)
class ExportOptions:
    """`sam2 export`: a checkpoint -> a checked folder of ONNX graphs."""
    model: str = "sam2.1_b.pt"
    output: Optional[str] = None      # folder; None: <checkpoint stem>_onnx beside the checkpoint
    imgsz: Optional[int] = None       # None: the model's own input size
    half: bool = False                # fp16 graphs (for a GPU)
    int8: bool = False                # int8 matmuls (for the CPU)
    opset: int = 17
    format: Optional[str] = None      # onnx (the only one)
    device: Optional[str] = None      # ignored: export runs on the CPU

    @property
    def precision(self) -> str:
        return "int8" if self.int8 else ("fp16" if self.half else "fp32")


@dataclass(frozen=True)
class BenchmarkOptions:
    """`sam2 benchmark`: timings of one or more models, beside the reference or PyTorch."""
    model: Any = "sam2.1_b.pt"        # a name, a comma-separated list or a list
    compare: Any = None               # reference, pytorch, or both
    runs: int = 5
    warmup: int = 1
    device: Optional[str] = None
    half: bool = False
    imgsz: Optional[int] = None
    multimask_output: bool = False
    points_per_side: int = 32         # the segment-everything grid
    points_per_batch: int = 64
    format: Optional[str] = None      # json/jsonl: one JSON line per model on stdout


@dataclass(frozen=True)
class AppOptions:
    """`sam2 app`: a local web app to annotate a video or images (README, Web app)."""
    source: Any = None                # a video file, a frame folder, an image folder, a glob or one image
    vid_stride: int = 1
    tracker: str = "sam2"             # video mode: sam2 (the reference), samurai or dam4sam
    fill_hole_area: int = 8
    host: str = "127.0.0.1"           # any other host needs the access token printed in the URL
    port: int = 8765                  # taken: the next free one; 0: any free port
    open: bool = False                # open the page in the browser
    token: Optional[str] = None       # the access token (None: random where one is needed)
    verbose: bool = False
    net: ModelOptions = field(default_factory=ModelOptions)
    everything: EverythingOptions = field(default_factory=EverythingOptions)
    run_dir: RunDirOptions = field(default_factory=RunDirOptions)
