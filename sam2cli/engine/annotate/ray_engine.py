"""`sam2 annotate … engine=ray workers=N`: the annotate job on a Ray cluster, through Ray Data.

    sam2 annotate data=/shared/ds/images det_model=yolo11x.pt sam_model=sam2.1_b.pt engine=ray workers=8

The driver lists what still needs labels (as the local engine does) and sends only that list, in
blocks of `BLOCK`: `from_items` -> `map_batches(decode)` in CPU tasks -> `map_batches(Annotator)` in a
pool of `workers` actors, each holding one detector and one SAM and running `annotate_image` +
`write_image`, the local engine's code. Cluster choice, fault handling and throughput figures are
described in the README, *Many GPUs*.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Optional

import numpy as np
from rich.console import Console
from rich.markup import escape

from sam2cli.errors import UsageError
from sam2cli.io.image import load_image
from ..options import AnnotateOptions
from .image import Item, Summary, annotate_image, clean_stale_temps, sidecar_path, write_image
from ..progress import rated_progress

RAY_HINT = 'engine=ray needs the ray extra: pip install "sam2cli[ray]"'
BLOCK = 4  # images per Ray Data block (one decode task each)
BATCH = 4  # images per actor call: a retry redoes at most this many
DECODE_CPUS = 0.25  # logical CPUs a decode task asks for (light work; leaves room beside the actors)
_TEST_HOOKS: dict = {}  # tests only: {"delay": seconds per image, "pid_dir": folder for actor pid files}


def import_ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise UsageError(RAY_HINT) from None
    return ray


def _is_cuda(device: str) -> bool:
    return device.startswith("cuda") or device.isdigit()


def _abs_if_file(value: Any) -> Any:
    """A model/labels argument that names an existing path becomes absolute (actors run elsewhere)."""
    if value in (None, ""):
        return value
    p = Path(str(value)).expanduser()
    return os.path.abspath(p) if p.exists() else value


def worker_options(opts: AnnotateOptions) -> tuple[AnnotateOptions, str]:
    """The options the actors rebuild the detector and SAM from, with portable paths, and SAM's
    model as named (a node that cannot see the resolved file resolves the name itself). SAM's
    checkpoint is resolved (downloaded if need be) here, once: put the weights directory
    (``$SAM2CLI_WEIGHTS_DIR``) on the shared filesystem and no node downloads it again. An
    exported folder is used as it is."""
    from sam2cli.io.weights import resolve_weights

    det = replace(opts.detector, det_model=_abs_if_file(opts.detector.det_model),
                  det_labels=_abs_if_file(opts.detector.det_labels))
    sam = Path(opts.sam_model).expanduser()
    sam = sam if sam.is_dir() else Path(resolve_weights(opts.sam_model))
    return replace(opts, detector=det, sam_model=os.path.abspath(sam)), opts.sam_model


# ----------------------------------------------------------------------------- remote side

def decode(batch: dict) -> dict:
    """CPU task: read and decode a block of images (corrupt ones carry their error instead)."""
    rgbs, hs, ws, errors = [], [], [], []
    for path in batch["path"]:
        try:
            rgb = load_image(str(path))
            rgbs.append(rgb.tobytes())
            hs.append(rgb.shape[0])
            ws.append(rgb.shape[1])
            errors.append("")
        except Exception as e:  # reported by the driver, the run goes on (as in the local engine)
            rgbs.append(b"")
            hs.append(0)
            ws.append(0)
            errors.append(str(e) or type(e).__name__)
    out = dict(batch)
    out["rgb"] = np.array(rgbs + [None], dtype=object)[:-1]  # 1-D array of bytes, never 2-D
    out["h"], out["w"] = np.array(hs, np.int64), np.array(ws, np.int64)
    out["error"] = np.array(errors, dtype=object)
    return out


class Annotator:
    """One Ray actor: a detector and a SAM predictor, loaded once; annotates and writes batches."""

    def __init__(self, opts: AnnotateOptions, sam_model_name: str, device: str, out_dir: str,
                 sam_imgsz: Optional[int], threads: int = 1, detector: Any = None, hooks: Optional[dict] = None):
        import ray
        import torch

        torch.set_num_threads(threads)  # CPU work: the CPUs this actor asked for (Ray's default is floor(num_cpus))

        self.classes, self.max_det, self.save_json = opts.detector.classes, opts.detector.max_det, opts.save_json
        self.json_dir = Path(out_dir) if opts.save_json else None
        self.hooks = hooks or {}
        ctx = ray.get_runtime_context()
        self.actor_id = ctx.get_actor_id() or f"pid{os.getpid()}"
        self.where = f"{ray.util.get_node_ip_address()} pid {os.getpid()}"
        self.restarted = bool(getattr(ctx, "was_current_actor_reconstructed", False))
        self.sent_names: dict = {}
        self.init_error: Optional[BaseException] = None
        try:  # a failure here is deterministic: report it through the results, not by dying (no restart loop)
            from .detectors import build_detector
            from ..image_predictor import ImagePredictor
            from ..loader import load_model

            self.detector = detector or build_detector(replace(opts.detector, device=device))
            sam = opts.sam_model if Path(opts.sam_model).exists() else sam_model_name
            net, _ = load_model(sam, device or None, sam_imgsz)
            self.predictor = ImagePredictor(net, half=opts.half)
        except Exception as e:
            self.init_error = e
        if self.hooks.get("pid_dir"):
            Path(self.hooks["pid_dir"], str(os.getpid())).write_text(self.actor_id)

    def _names_update(self) -> str:
        names = dict(getattr(self.detector, "names", {}) or {})
        new = {int(k): str(v) for k, v in names.items() if self.sent_names.get(k) != v}
        self.sent_names.update(names)
        return json.dumps(new) if new else ""

    def __call__(self, batch: dict) -> dict:
        n = len(batch["path"])
        rows: dict[str, list] = {k: [] for k in ("rel", "images", "objects", "dropped", "empty", "error", "fatal",
                                                 "seconds", "worker", "where", "restarted", "names")}
        for k in range(n):
            t0 = time.perf_counter()
            rel, error, fatal, st, lines, names = str(batch["rel"][k]), str(batch["error"][k]), b"", {}, [], ""
            if self.init_error is not None:
                fatal = _pickle_error(self.init_error)
            elif not error:
                h, w = int(batch["h"][k]), int(batch["w"][k])
                rgb = np.frombuffer(batch["rgb"][k], np.uint8).reshape(h, w, 3).copy()
                it = Item(int(batch["index"][k]), Path(rel), Path(str(batch["path"][k])), Path(str(batch["label"][k])))
                try:
                    lines, records, st = annotate_image(self.detector, self.predictor, rgb, it.rel, self.classes,
                                                        self.max_det, self.save_json)
                    if self.hooks.get("delay"):
                        time.sleep(float(self.hooks["delay"]))
                    write_image(it, lines, records, (h, w), self.json_dir)
                except Exception as e:
                    from sam2cli.errors import SAM2Error
                    if not isinstance(e, SAM2Error):
                        raise
                    fatal = _pickle_error(e)
                names = self._names_update()
            done = not error and not fatal
            rows["rel"].append(rel)
            rows["images"].append(int(done))
            rows["objects"].append(int(st.get("objects", 0)))
            rows["dropped"].append(int(st.get("dropped", 0)))
            rows["empty"].append(int(done and not lines))
            rows["error"].append(error)
            rows["fatal"].append(fatal)
            rows["seconds"].append(time.perf_counter() - t0)
            rows["worker"].append(self.actor_id)
            rows["where"].append(self.where)
            rows["restarted"].append(self.restarted)
            rows["names"].append(names)
        out = {k: np.array(v + [None], dtype=object)[:-1] for k, v in rows.items()}
        for k in ("images", "objects", "dropped", "empty"):
            out[k] = np.array(rows[k], np.int64)
        out["seconds"] = np.array(rows["seconds"], np.float64)
        out["restarted"] = np.array(rows["restarted"], bool)
        return out


def _pickle_error(e: BaseException) -> bytes:
    try:
        return pickle.dumps(e)
    except Exception:
        from sam2cli.errors import SAM2Error
        return pickle.dumps(SAM2Error(f"{type(e).__name__}: {e}"))


# ----------------------------------------------------------------------------- driver side

class RayEngine:
    """The annotate job on Ray: ``RayEngine(opts, out_dir).run(items, console, summary) -> Summary``."""

    def __init__(self, opts: AnnotateOptions, out_dir: Optional[Path] = None, sam_imgsz: Optional[int] = None,
                 detector: Any = None, names: Optional[dict] = None):
        """``detector``: an object to ship to every actor instead of building one there from ``opts``;
        ``names``: a dict the detectors' class names are merged into (for the COCO categories)."""
        self.opts, self.save_json = opts, opts.save_json
        self.out_dir = Path(out_dir) if out_dir is not None else Path(".")
        self.sam_imgsz = sam_imgsz
        self.detector, self.names = detector, names
        self.workers = int(opts.workers or 1)
        gpw = opts.gpus_per_worker
        if gpw is None or isinstance(gpw, bool) or not isinstance(gpw, (int, float)) or gpw < 0:
            raise UsageError(f"gpus_per_worker={gpw} is not valid: expected a number >= 0, e.g. 1 or 0.5")
        self.gpus_per_worker = float(gpw)

    # -- cluster
    def _connect(self, ray: Any) -> bool:
        """Connect to (or start) Ray; True when this call started it (and so stops it)."""
        if ray.is_initialized():
            return False
        address = self.opts.ray_address or os.environ.get("RAY_ADDRESS") or None
        verbose = self.opts.verbose
        kw = dict(log_to_driver=verbose, logging_level="INFO" if verbose else "WARNING")
        try:
            if address:
                ray.init(address=str(address), **kw)
            else:
                ray.init(include_dashboard=False, **kw)
        except ConnectionError as e:
            raise UsageError(f"cannot reach the Ray cluster at ray_address={address} ({e}): start it "
                             "(ray up / ray start --head) or leave ray_address and RAY_ADDRESS unset "
                             "for a local Ray") from None
        return True

    def _resources(self, ray: Any, console: Console, workers: int) -> tuple[dict, str, int]:
        """The actors' resource request, the device they load models on and their torch CPU threads."""
        device = str(self.opts.device or "").strip().lower()
        gpus = float(ray.cluster_resources().get("GPU", 0))
        want_gpu = self.gpus_per_worker > 0 and (_is_cuda(device) or (device == "" and gpus > 0))
        if want_gpu:
            if gpus < self.gpus_per_worker * workers:
                console.print(f"[yellow]ray: {workers} worker(s) x {self.gpus_per_worker:g} GPU asked, "
                              f"the cluster has {gpus:g} GPU(s) now: workers wait for GPUs (autoscaler)[/]",
                              highlight=False)
            return {"num_gpus": self.gpus_per_worker, "num_cpus": 1}, "cuda", 1  # Ray sets CUDA_VISIBLE_DEVICES
        # CPU only: share the CPUs of the nodes, leaving room for the decode tasks beside the actors
        per_node = [float(n.get("Resources", {}).get("CPU", 0)) for n in ray.nodes() if n.get("Alive")]
        cpus, node_max = sum(per_node) or 1.0, max(per_node, default=1.0)
        num_cpus = max(0.25, min(node_max - DECODE_CPUS, (cpus - 2 * DECODE_CPUS) / workers))
        return {"num_cpus": num_cpus}, ("cpu" if device in ("", "cpu") else device), max(1, round(num_cpus))

    # -- run
    def run(self, items: list[Item], console: Console, summary: Optional[Summary] = None) -> Summary:
        s = summary or Summary()
        if not items:
            return s
        ray = import_ray()
        wopts = worker_options(self.opts)  # a missing checkpoint fails here, before Ray starts
        t_start = time.perf_counter()
        started = self._connect(ray)
        try:
            self._run(ray, items, console, s, wopts, time.perf_counter() - t_start)
        finally:
            dests = [it.label for it in items] + [sidecar_path(self.out_dir, it.rel) for it in items] * self.save_json
            clean_stale_temps(dests)  # what writes in killed workers left behind
            if started:
                ray.shutdown()
        return s

    def _run(self, ray: Any, items: list[Item], console: Console, s: Summary,
             wopts: tuple[AnnotateOptions, str], init_s: float) -> None:
        from ray.data import ActorPoolStrategy, DataContext

        ctx = DataContext.get_current()  # our progress bar replaces Ray Data's (and its INFO logs)
        saved = {k: getattr(ctx, k) for k in ("enable_progress_bars", "print_on_execution_start") if hasattr(ctx, k)}
        quiet = _Quiet() if not self.opts.verbose else None
        for k in saved:
            setattr(ctx, k, quiet is None)
        try:
            size = max(1, min(self.workers, -(-len(items) // BATCH)))  # no idle actors for a short list
            resources, device, threads = self._resources(ray, console, size)
            rows = [{"index": it.index, "rel": it.rel.as_posix(), "path": os.path.abspath(it.path),
                     "label": os.path.abspath(it.label)} for it in items]
            nblocks = max(1, -(-len(rows) // BLOCK))
            ds = ray.data.from_items(rows, **_blocks_kw(ray, nblocks))
            ds = ds.map_batches(decode, batch_size=None, batch_format="numpy", num_cpus=DECODE_CPUS)
            ctor = dict(opts=wopts[0], sam_model_name=wopts[1], device=device, out_dir=os.path.abspath(self.out_dir),
                        sam_imgsz=self.sam_imgsz, threads=threads, detector=self.detector, hooks=dict(_TEST_HOOKS))
            ds = ds.map_batches(Annotator, batch_size=BATCH, batch_format="numpy", fn_constructor_kwargs=ctor,
                                compute=ActorPoolStrategy(size=size), **resources)
            per: dict[str, dict] = {}
            t0 = time.perf_counter()
            done, first = 0, None
            with rated_progress(console, f"annotate (ray, {size} worker(s))", len(items), "image", t0=t0) as advance:
                for r in ds.iter_rows():
                    if r["fatal"]:
                        raise pickle.loads(r["fatal"])
                    rel = str(r["rel"])
                    if r["error"]:
                        s.failures.append((rel, str(r["error"])))
                        console.print(f"[yellow]skipped[/] {escape(rel)}: {escape(str(r['error']))}", highlight=False)
                    s.images += int(r["images"])
                    s.objects += int(r["objects"])
                    s.dropped += int(r["dropped"])
                    s.empty += int(r["empty"])
                    if r["names"] and self.names is not None:
                        for k, v in json.loads(r["names"]).items():
                            self.names.setdefault(int(k), v)
                    w = per.setdefault(str(r["worker"]), {"images": 0, "busy": 0.0, "where": [], "restarted": False})
                    w["images"] += int(r["images"])
                    w["busy"] += float(r["seconds"])
                    w["restarted"] |= bool(r["restarted"])
                    if r["where"] not in w["where"]:
                        w["where"].append(str(r["where"]))
                    done += 1
                    first = first or time.perf_counter()
                    advance()
            wall = time.perf_counter() - t0
            console.print(throughput_line(s.images, wall, init_s, size, per, (first or t0) - t0), highlight=False)
        finally:
            for k, v in saved.items():
                setattr(ctx, k, v)
            if quiet is not None:
                quiet.close()


class _Quiet(logging.Filter):
    """While installed: Ray Data logs warnings and errors only, and not that its progress bars are off."""

    def __init__(self) -> None:
        super().__init__()
        self.logger = logging.getLogger("ray.data")
        self.level = self.logger.level
        self.logger.setLevel(logging.WARNING)
        self.progress = logging.getLogger("ray.data._internal.progress")
        self.progress.addFilter(self)

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR

    def close(self) -> None:
        self.logger.setLevel(self.level)
        self.progress.removeFilter(self)


def _blocks_kw(ray: Any, n: int) -> dict:
    import inspect
    params = inspect.signature(ray.data.from_items).parameters
    return {"override_num_blocks": n} if "override_num_blocks" in params else {"parallelism": n}


def throughput_line(images: int, wall: float, init_s: float, workers: int, per: dict, first_s: float = 0.0) -> str:
    """``ray: N image(s) in T s with W worker(s), R img/s total …; worker 1 (…): …`` (per worker: over
    its busy time, i.e. detector + SAM + writes; their sum is the pool's steady-state rate)."""
    parts = [f"ray: {images} image(s) in {wall:.1f} s with {workers} worker(s), {images / max(wall, 1e-9):.2f} img/s "
             f"total (start-up included: first results after {first_s:.1f} s; Ray connect {init_s:.1f} s)"]
    for k, (_, w) in enumerate(sorted(per.items(), key=lambda kv: kv[1]["where"][0]), 1):
        rate = w["images"] / w["busy"] if w["busy"] > 0 else 0.0
        restarts = ", restarted" if w["restarted"] or len(w["where"]) > 1 else ""
        parts.append(f"worker {k} ({w['where'][-1]}{restarts}): {w['images']} image(s), {rate:.2f} img/s busy")
    return escape("; ".join(parts))
