"""SAM2DynamicInteractivePredictor: one memory bank across independent images.

Register objects with prompts on any image, then query new images: each registered object is
found from its memory (the prompted images are its conditioning memories, recent queries its
recent memories). Prompting an existing id again refines it. The bank is bounded: at most
`max_cond` prompted memories and num_maskmem - 1 recent ones per object.

Images are independent pictures, not frames of one video, so they are resized as the image
predictor resizes them (bilinear, antialiased), not with the reference video loader's PIL bicubic:
on a first image with no memory the result is `SAM(...)`'s. One difference is kept on purpose, the
reference video predictor's rule for a first prompt: a single click decodes 3 candidates and keeps
the one with the best predicted IoU (what `SAM(..., multimask_output=True)` scores highest), where
`SAM(...)` returns its single-mask output; two or more clicks or a box give the same mask in both.

    predictor = SAM2DynamicInteractivePredictor(overrides=dict(model="sam2.1_t.pt"), max_obj_num=3)
    predictor(source="a.jpg", bboxes=[[10, 10, 100, 120]], obj_ids=[0])
    results = predictor(source="b.jpg")           # object 0 found from memory
"""

from typing import Optional, Sequence

import torch

from sam2cli.errors import UsageError
from sam2cli.io.image import load_image
from sam2cli.core.prompts import normalize_prompts
from sam2cli.core.results import Results
from .device import autocast
from .loader import load_model
from .options import VideoOptions
from .session import TrackingSession, frame_results
from .tracker import ObjectTrack
from .transforms import binary_mask_prompt, point_prompt, upsample_logits
from .video_predictor import video_options


class SAM2DynamicInteractivePredictor:
    def __init__(self, overrides: Optional[dict] = None, max_obj_num: int = 3, max_cond: int = 8, model=None, *,
                 options: Optional[VideoOptions] = None):
        opts = options if options is not None else video_options(overrides)
        net = opts.net
        self.model = model if model is not None else load_model(net.model, net.device, net.imgsz)[0]
        # one session holds the bank; its images are independent, resized as the image predictor resizes
        self.session = TrackingSession(self.model, size=(1, 1), half=net.half, fill_hole_area=opts.fill_hole_area,
                                       tracker=opts.tracker, resample="bilinear")
        self.max_obj_num = int(max_obj_num)
        self.max_cond = int(max_cond)
        self.t = -1  # index of the last image seen: the memory bank's clock

    @property
    def device(self) -> torch.device:
        return self.session.device

    @property
    def objects(self):
        return self.session.objects

    def reset(self) -> None:
        self.session.reset()
        self.t = -1

    @torch.inference_mode()
    def __call__(self, source, points=None, labels=None, bboxes=None, masks=None,
                 obj_ids: Optional[Sequence[int]] = None, update_memory: bool = True) -> Results:
        image = load_image(source)
        hw = image.shape[:2]
        prompts = normalize_prompts(points, labels, bboxes, masks, image_hw=hw)
        if prompts:
            ids = list(range(len(prompts))) if obj_ids is None else [int(i) for i in obj_ids]
            if len(ids) != len(prompts):
                raise UsageError(f"got {len(prompts)} prompted objects but {len(ids)} obj_ids")
            for i in ids:
                if not 0 <= i < self.max_obj_num:
                    raise UsageError(f"obj_id {i} is out of range: ids must be 0..{self.max_obj_num - 1} "
                                     f"(max_obj_num={self.max_obj_num})")
        elif not self.objects:
            raise UsageError("no object is registered yet: the first call needs prompts "
                             "(points, bboxes or masks) and obj_ids")
        self.t += 1
        t, size, tracker, s = self.t, self.model.image_size, self.session.tracker, self.session
        feats = s.features(t, image)  # the image predictor's resize: see the module docstring
        with autocast(self.device, s.half):
            prompted = {}
            for obj_id, p in zip(ids if prompts else [], prompts):
                obj = self.objects.get(obj_id) or ObjectTrack(obj_id)
                pts = mask = None
                if p.mask is not None:
                    mask = binary_mask_prompt(p.mask, size, self.device)
                else:
                    pts = point_prompt(p.points, p.labels, p.box, hw, size, self.device)
                out = tracker.prompt_image(feats, obj, t, points=pts, mask=mask)
                if update_memory or obj_id not in self.objects:
                    tracker.commit(obj, lambda _: feats)
                    tracker.keep_newest(obj, max_cond=self.max_cond)
                else:
                    tracker.discard(obj, t)
                self.objects[obj_id] = obj
                prompted[obj_id] = out
            outs = {}
            for obj_id, obj in self.objects.items():
                if obj_id in prompted:
                    outs[obj_id] = prompted[obj_id]
                    continue
                if update_memory:
                    out = tracker.track(feats, obj, t)
                    tracker.keep_newest(obj, max_cond=self.max_cond)
                else:
                    out = tracker.peek(feats, obj, t)
                outs[obj_id] = out
        ids_sorted = sorted(outs)
        logits = upsample_logits(torch.cat([outs[i].logits for i in ids_sorted]), hw)
        path = str(source) if isinstance(source, str) else None
        return frame_results(image, logits, ids_sorted, [outs[i] for i in ids_sorted], path=path)
