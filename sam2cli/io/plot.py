"""A PNG of training curves from results.csv, drawn with OpenCV (no plotting dependency)."""

import csv
import math
from pathlib import Path

import cv2
import numpy as np

from .overlay import save_image


def plot_results(csv_path: Path, png_path: Path, panel=(320, 200)) -> Path:
    """One small line chart per numeric column (except epoch), in a grid."""
    rows = list(csv.DictReader(open(csv_path)))
    keys = [k for k in rows[0] if k not in ("epoch", "seconds")] if rows else []
    cols = 4
    grid_rows = max(1, math.ceil(len(keys) / cols))
    pw, ph = panel
    canvas = np.full((ph * grid_rows, pw * cols, 3), 255, np.uint8)
    for i, key in enumerate(keys):
        vals = [float(r[key]) for r in rows if r.get(key) not in (None, "")]
        x0, y0 = (i % cols) * pw, (i // cols) * ph
        cv2.putText(canvas, key, (x0 + 8, y0 + 18), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        if not vals:
            continue
        lo, hi = min(vals), max(vals)
        span = hi - lo or 1.0
        pts = [(x0 + 20 + int(j * (pw - 40) / max(1, len(vals) - 1)), y0 + ph - 20 - int((v - lo) / span * (ph - 50)))
               for j, v in enumerate(vals)]
        cv2.polylines(canvas, [np.array(pts, np.int32)], False, (30, 90, 200), 2, cv2.LINE_AA)
        cv2.putText(canvas, f"{vals[-1]:.4g}", (x0 + pw - 80, y0 + 18), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                    (80, 80, 80), 1, cv2.LINE_AA)
    return save_image(png_path, canvas)
