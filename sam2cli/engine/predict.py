"""`sam2 predict`: images, folders, globs, lists and videos -> masks and the writers."""

import logging
import time
from typing import Any, Dict

from rich.console import Console
from rich.markup import escape

from sam2cli.errors import UsageError
from sam2cli.io.image import load_mask
from sam2cli.io.sources import open_source
from sam2cli.io.run_dir import increment_dir
from .outputs import RunOutputs
from .progress import interrupts_as_keyboard, progress_bar, rate_text
from sam2cli.core.prompts import normalize_prompts

EVERYTHING_KEYS = ("points_per_side", "points_per_batch", "pred_iou_thresh", "stability_score_thresh",
                   "stability_score_offset", "mask_threshold", "box_nms_thresh", "crop_n_layers",
                   "crop_nms_thresh", "crop_overlap_ratio", "crop_n_points_downscale_factor",
                   "min_mask_region_area", "use_m2m")  # multimask_output: the generator's own default (True)
LOGGER = logging.getLogger("sam2cli")


def run_predict(args: Dict[str, Any], console: Console) -> int:
    """Run predict; returns the exit code (1 when some inputs failed)."""
    if args["source"] is None:
        raise UsageError("source= is required, e.g. sam2 predict model=sam2.1_b.pt source=img.jpg points=[[400,370]]")
    prompt_masks = load_mask(args["masks"]) if args["masks"] else None
    prompts = dict(points=args["points"], labels=args["labels"], bboxes=args["bboxes"], masks=prompt_masks)
    prompted = bool(normalize_prompts(**prompts))  # checks the prompt structure before the model loads
    source = open_source(args["source"], args["vid_stride"], args["max_frames"])
    if prompted and source.kind in ("video", "stream"):
        raise UsageError("prompts on a video are tracked with 'sam2 track'; run "
                         f"sam2 track source={args['source']} with the same prompts")

    from .sam import SAM  # heavy imports only once the arguments are known to be good
    model = SAM(args["model"], device=args["device"] or None, half=args["half"], imgsz=args["imgsz"])
    saving = any(args[k] for k in ("save", "save_txt", "save_json", "save_masks"))
    run_dir = increment_dir(args["project"], args["name"] or "predict", args["exist_ok"]) if saving else None
    outputs = RunOutputs(run_dir, args)
    everything = {k: args[k] for k in EVERYTHING_KEYS} if not prompted else {}
    unit = "image" if source.kind == "images" else "frame"
    n_images = n_objects = 0
    t_start = time.perf_counter()
    try:
        with interrupts_as_keyboard(), progress_bar(console) as bar:
            task = bar.add_task("predict", total=source.length, rate="")
            for frame in source:
                r = model.predict_image(frame.image, None, frame.path, frame.index if frame.is_video else None,
                                        multimask_output=args["multimask_output"], **prompts, **everything)
                outputs.write(r, frame.fps)
                n_images += 1
                n_objects += len(r)
                bar.update(task, advance=1, rate=rate_text(n_images, time.perf_counter() - t_start, unit))
                if args["verbose"]:
                    LOGGER.info("%s%s: %d masks", frame.path, "" if not frame.is_video else f" frame {frame.index}", len(r))
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: keep what is finished, say where it is
        outputs.close() if n_images else outputs.abort()
        where = f"; the finished ones are saved in {escape(str(run_dir))}" if run_dir and n_images else ""
        console.print(f"interrupted after {n_images} {unit}(s){where}", highlight=False)
        raise
    except BaseException:
        outputs.abort()
        raise
    outputs.close()
    rate = rate_text(n_images, time.perf_counter() - t_start, unit) if n_images else "nothing to do"
    where = f", saved to {run_dir}" if run_dir else ""
    console.print(f"{n_images} {unit}(s), {n_objects} mask(s), {rate}{where}")
    if source.failed:
        console.print(f"[yellow]{len(source.failed)} input(s) failed:[/] " + "; ".join(f"{p} ({r})" for p, r in source.failed[:5]))
        return 1
    return 0
