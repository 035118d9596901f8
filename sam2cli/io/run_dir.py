"""Run folders: ``runs/predict``, ``runs/predict2``, ... (a new one per run unless reused)."""

from __future__ import annotations

from pathlib import Path

from sam2cli.io.writer_args import PathLike


def increment_dir(project: PathLike, name: str = "predict", exist_ok: bool = False) -> Path:
    """Create and return ``project/name``, or ``name2``, ``name3``, ... when it already exists.

    With ``exist_ok=True`` the existing ``project/name`` is reused.
    """
    base = Path(project)
    if exist_ok:
        path = base / name
        path.mkdir(parents=True, exist_ok=True)
        return path
    base.mkdir(parents=True, exist_ok=True)
    n = 1
    while True:
        path = base / (name if n == 1 else f"{name}{n}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            n += 1
