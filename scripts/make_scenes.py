"""Write the procedural training scenes of the demo model (both layouts `sam2 train` reads).

    python scripts/make_scenes.py --out data/scenes --images 2000 --val 200 --videos 100 --frames 24 --size 128 --seed 0

writes ``<out>/yolo/`` (Ultralytics segmentation: images/, labels/, data.yaml) and ``<out>/davis/``
(DAVIS 2017: JPEGImages/, Annotations/, ImageSets/2017/{train,val}.txt). Same seed, same files.
The generator is :mod:`sam2cli.train.scenes`.

``--hard CASES`` (``all`` or a comma list of lookalike, twin, fast, same_class, long) also writes
``<out>/hard/``, a DAVIS folder of ``--per-case`` clips of each hard case for the tracker
policies (:mod:`sam2cli.train.scenes_hard`), ``--frames`` frames long (``long``: ``--long-frames``):

    python scripts/make_scenes.py --out hard_tune --images 0 --val 0 --videos 0 --hard all --per-case 2 --frames 48 --seed 11
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sam2cli.train.scenes import write_davis_dataset, write_yolo_dataset  # noqa: E402
from sam2cli.train.scenes_hard_data import HARD_CASES, write_hard_dataset  # noqa: E402


def _size(text: str) -> tuple[int, int]:
    """``128`` or ``96x128`` (height x width)."""
    parts = text.lower().split("x")
    try:
        vals = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be N or HxW, got {text!r}") from None
    if len(vals) == 1:
        vals = vals * 2
    if len(vals) != 2 or min(vals) < 16:
        raise argparse.ArgumentTypeError(f"size must be N or HxW with sides >= 16, got {text!r}")
    return vals[0], vals[1]


class _Plain:
    """A one-line progress report on stderr (rewritten in place on a terminal)."""

    def __init__(self, label: str) -> None:
        self.label, self.t0, self.last = label, time.perf_counter(), 0.0
        self.tty = sys.stderr.isatty()

    def __call__(self, done: int, total: int) -> None:
        now = time.perf_counter()
        if done < total and now - self.last < (0.2 if self.tty else 5.0):
            return
        self.last = now
        rate = done / max(now - self.t0, 1e-9)
        eta = (total - done) / max(rate, 1e-9)
        end = "\n" if done >= total or not self.tty else ""
        sys.stderr.write(f"\r{self.label} {done}/{total} ({rate:.1f}/s, ETA {eta:.0f}s){end}")
        sys.stderr.flush()


def _run(label: str, fn, rich: bool, **kw) -> None:
    if rich:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        with Progress("[bold]{task.description}", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      console=Console(stderr=True)) as bar:
            task = bar.add_task(label, total=None)
            fn(progress=lambda done, total: bar.update(task, completed=done, total=total), **kw)
    else:
        fn(progress=_Plain(label), **kw)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("data/scenes"), help="output folder (default data/scenes)")
    ap.add_argument("--images", type=int, default=2000, help="training images (default 2000)")
    ap.add_argument("--val", type=int, default=200, help="validation images (default 200)")
    ap.add_argument("--videos", type=int, default=100, help="videos; the last 10%% are validation (default 100)")
    ap.add_argument("--val-videos", type=int, default=None, help="validation videos (default 10%% of --videos)")
    ap.add_argument("--frames", type=int, default=24, help="frames per video (default 24)")
    ap.add_argument("--size", type=_size, default=(128, 128), help="N or HxW (default 128)")
    ap.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    ap.add_argument("--hard", default="", help="hard tracking cases to write under <out>/hard/: all, or a comma "
                    f"list of {', '.join(HARD_CASES)} (default none)")
    ap.add_argument("--per-case", type=int, default=2, help="clips of each hard case (default 2)")
    ap.add_argument("--long-frames", type=int, default=160, help="frames of a 'long' hard clip (default 160)")
    ap.add_argument("--plain", action="store_true", help="plain progress lines instead of rich bars")
    args = ap.parse_args(argv)
    for name in ("images", "val", "videos", "frames", "per_case"):
        if getattr(args, name) < 0:
            ap.error(f"--{name.replace('_', '-')} must be >= 0")
    hard = list(HARD_CASES) if args.hard.strip() == "all" else [c.strip() for c in args.hard.split(",") if c.strip()]
    bad = [c for c in hard if c not in HARD_CASES]
    if bad:
        ap.error(f"--hard: unknown case(s) {', '.join(bad)}; expected all or some of {', '.join(HARD_CASES)}")
    use_rich = not args.plain and sys.stderr.isatty()
    if use_rich:
        try:
            import rich  # noqa: F401
        except ImportError:
            use_rich = False
    t0 = time.perf_counter()
    if args.images or args.val:
        _run("images", write_yolo_dataset, use_rich, root=args.out / "yolo", n_train=args.images,
             n_val=args.val, size=args.size, seed=args.seed)
    if args.videos:
        _run("videos", write_davis_dataset, use_rich, root=args.out / "davis", n_videos=args.videos,
             n_frames=args.frames, size=args.size, seed=args.seed, n_val=args.val_videos)
    if hard and args.per_case:
        _run("hard videos", write_hard_dataset, use_rich, root=args.out / "hard", cases=hard,
             per_case=args.per_case, size=args.size, seed=args.seed, n_frames=args.frames,
             long_frames=args.long_frames)
    sys.stderr.write(f"wrote {args.out} in {time.perf_counter() - t0:.1f}s\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
