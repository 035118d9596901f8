"""`sam2 predict`: images, folders, globs, lists and videos -> masks and the writers."""

import logging
from dataclasses import asdict

from rich.console import Console

from sam2cli.errors import UsageError
from sam2cli.io.image import load_mask
from sam2cli.io.sources import open_source
from .options import PredictOptions
from .run import Run
from sam2cli.core.prompts import normalize_prompts

LOGGER = logging.getLogger("sam2cli")


def run_predict(opts: PredictOptions, console: Console) -> int:
    """Run predict; returns the exit code (1 when some inputs failed)."""
    if opts.source is None:
        raise UsageError("source= is required, e.g. sam2 predict model=sam2.1_b.pt source=img.jpg points=[[400,370]]")
    p = opts.prompt
    prompts = dict(points=p.points, labels=p.labels, bboxes=p.bboxes, masks=load_mask(p.masks) if p.masks else None)
    prompted = bool(normalize_prompts(**prompts))  # checks the prompt structure before the model loads
    source = open_source(opts.source, opts.vid_stride, opts.max_frames)
    if prompted and source.kind in ("video", "stream"):
        raise UsageError("prompts on a video are tracked with 'sam2 track'; run "
                         f"sam2 track source={opts.source} with the same prompts")

    from .sam import SAM  # heavy imports only once the arguments are known to be good
    net = opts.net
    model = SAM(net.model, device=net.device, half=net.half, imgsz=net.imgsz)
    run = Run("predict", opts.run_dir, opts.outputs, console, unit="image" if source.kind == "images" else "frame")
    everything = asdict(opts.everything) if not prompted else {}
    with run.guard(), run.progress(source.length) as advance:
        for frame in source:
            r = model.predict_image(frame.image, None, frame.path, frame.index if frame.is_video else None,
                                    multimask_output=opts.multimask_output, **prompts, **everything)
            run.outputs.write(r, frame.fps)
            run.count(len(r))
            advance()
            if opts.verbose:
                LOGGER.info("%s%s: %d masks", frame.path, "" if not frame.is_video else f" frame {frame.index}", len(r))
    run.summary(f"{run.done} {run.unit}(s), {run.masks} mask(s), {run.rate() if run.done else 'nothing to do'}")
    if source.failed:
        console.print(f"[yellow]{len(source.failed)} input(s) failed:[/] " + "; ".join(f"{path} ({why})" for path, why in source.failed[:5]))
        return 1
    return 0
