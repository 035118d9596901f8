"""What `sam2 val` writes: the DAVIS CSVs, per-object CSVs, the JSON summary, plots and the table.

* ``global_results.csv`` -- DAVIS 2017's layout: ``J&F-Mean,J-Mean,J-Recall,J-Decay,F-Mean,F-Recall,F-Decay``,
  one row, 3 decimals; ``per-sequence_results.csv`` -- ``Sequence,J-Mean,F-Mean``, one row per
  object named ``<video>_<object id>``.
* ``objects.csv`` (images) -- per object: its image, index and IoUs; ``clicks.csv`` (interactive)
  -- mIoU after each click.
* ``summary.json`` -- everything above plus the settings and timings.
* ``jf_per_sequence.png`` / ``miou_vs_clicks.png`` -- drawn with matplotlib when it is installed.
Every file is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from rich.console import Console
from rich.table import Table

from sam2cli.io.atomic import write_bytes_atomic, write_text_atomic
from .vos import ObjectScores

GLOBAL_COLUMNS = ["J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay"]


def _csv_text(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def _f3(v: float) -> str:
    return "nan" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"


def write_davis_csvs(run_dir: Path, g: Dict[str, float], objects: Sequence[ObjectScores]) -> List[Path]:
    paths = [run_dir / "global_results.csv", run_dir / "per-sequence_results.csv"]
    write_text_atomic(paths[0], _csv_text(GLOBAL_COLUMNS, [[_f3(g[k]) for k in GLOBAL_COLUMNS]]))
    rows = [[o.sequence, _f3(o.stats()["J-Mean"]), _f3(o.stats()["F-Mean"])] for o in objects]
    write_text_atomic(paths[1], _csv_text(["Sequence", "J-Mean", "F-Mean"], rows))
    return paths


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence]) -> Path:
    return write_text_atomic(path, _csv_text(header, rows))


def write_json(path: Path, data: dict) -> Path:
    return write_text_atomic(path, json.dumps(_clean(data), indent=2) + "\n")


def _clean(v):
    """NaN -> null (JSON has no NaN)."""
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    return v


def _pyplot():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        return plt
    except ImportError:
        return None


def _save_figure(plt, fig, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return write_bytes_atomic(path, buf.getvalue())


def plot_jf(path: Path, names: Sequence[str], jf: Sequence[float]) -> Optional[Path]:
    """A bar per sequence (object) of its J&F; None when matplotlib is not installed."""
    plt = _pyplot()
    if plt is None:
        return None
    fig, ax = plt.subplots(figsize=(max(4.0, 0.35 * len(names) + 1.5), 3.6))
    ax.bar(range(len(names)), jf, color="#3a78c2")
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=90, fontsize=7)
    ax.set_ylim(0, 1)
    ax.set_ylabel("J&F")
    ax.set_title(f"J&F per sequence (mean {sum(jf) / max(len(jf), 1):.3f})")
    return _save_figure(plt, fig, path)


def plot_clicks(path: Path, miou: Sequence[float]) -> Optional[Path]:
    """mIoU against the number of clicks; None when matplotlib is not installed."""
    plt = _pyplot()
    if plt is None:
        return None
    fig, ax = plt.subplots(figsize=(5, 3.6))
    ax.plot(range(1, len(miou) + 1), miou, marker="o", ms=3)
    for t in (0.85, 0.90):
        ax.axhline(t, color="grey", lw=0.6, ls="--")
    ax.set_xlabel("clicks")
    ax.set_ylabel("mIoU")
    ax.set_ylim(0, 1)
    ax.set_xticks(range(1, len(miou) + 1, max(1, len(miou) // 10)))
    ax.set_title("mIoU vs clicks")
    return _save_figure(plt, fig, path)


def print_table(console: Console, title: str, metrics: Dict[str, float], rows: Sequence[Sequence] = (),
                row_header: Sequence[str] = ()) -> None:
    """The headline metrics (and optional per-sequence rows) as a rich table on stderr."""
    if rows:
        per = Table(*row_header, title="per sequence", title_justify="left")
        for r in rows:
            per.add_row(*[v if isinstance(v, str) else _f3(v) for v in r])
        console.print(per)
    t = Table(*metrics.keys(), title=title, title_justify="left")
    t.add_row(*[v if isinstance(v, str) else (str(v) if isinstance(v, int) else _f3(v)) for v in metrics.values()])
    console.print(t)
