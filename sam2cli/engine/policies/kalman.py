"""Boxes of low-resolution masks and a constant-velocity Kalman filter on one box.

Boxes are (x0, y0, x1, y1) floats in mask pixels, x1 and y1 exclusive: a one-pixel mask at (x, y)
is the box (x, y, x + 1, y + 1).
"""

from typing import Optional, Sequence, Tuple

import numpy as np
import torch

Box = Tuple[float, float, float, float]


def mask_box(mask: torch.Tensor) -> Optional[Box]:
    """The box of a (h, w) bool mask, None when it is empty."""
    rows, cols = mask.any(1), mask.any(0)
    if not bool(rows.any()):
        return None
    ys, xs = torch.nonzero(rows)[:, 0], torch.nonzero(cols)[:, 0]
    return float(xs[0]), float(ys[0]), float(xs[-1]) + 1.0, float(ys[-1]) + 1.0


def box_area(b: Optional[Box]) -> float:
    return 0.0 if b is None else max(b[2] - b[0], 0.0) * max(b[3] - b[1], 0.0)


def box_iou(a: Optional[Box], b: Optional[Box]) -> float:
    """IoU of two boxes; 0 when either is None or both are empty."""
    if a is None or b is None:
        return 0.0
    iw = max(min(a[2], b[2]) - max(a[0], b[0]), 0.0)
    ih = max(min(a[3], b[3]) - max(a[1], b[1]), 0.0)
    inter = iw * ih
    union = box_area(a) + box_area(b) - inter
    return inter / union if union > 0 else 0.0


def box_union(boxes: Sequence[Box]) -> Box:
    """The smallest box holding every box of a non-empty list."""
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


class KalmanBox:
    """A constant-velocity Kalman filter on a box as z = (cx, cy, aspect w/h, h).

    State x = (cx, cy, a, h, and their velocities per frame); F adds each velocity to its
    coordinate, H reads the first four. The noise scales with the box height h, as in SORT-style
    trackers: std_pos * h for a position (initial uncertainty twice that), std_vel * h for a
    velocity (initial uncertainty ten times that); the aspect gets fixed small noises.

        kf = KalmanBox(box)          # from a first measurement, velocities 0
        pred = kf.predict()          # the box expected on the next frame (x <- F x)
        kf.update(measured_box)      # corrected by the box measured there
    """

    ASPECT_STD = (1e-2, 1e-5, 1e-1)  # aspect: process (position, velocity) and measurement stds

    def __init__(self, box: Box, std_pos: float = 1 / 20, std_vel: float = 1 / 160):
        self.std_pos, self.std_vel = float(std_pos), float(std_vel)
        z = self.measure(box)
        self.x = np.concatenate([z, np.zeros(4)])
        h = z[3]
        p, v = 2 * self.std_pos * h, 10 * self.std_vel * h
        self.P = np.diag(np.square([p, p, self.ASPECT_STD[0], p, v, v, self.ASPECT_STD[1], v]))
        self.F = np.eye(8)
        self.F[:4, 4:] = np.eye(4)
        self.H = np.eye(4, 8)

    @staticmethod
    def measure(box: Box) -> np.ndarray:
        """xyxy -> (cx, cy, aspect, h)."""
        x0, y0, x1, y1 = box
        h = max(y1 - y0, 1e-6)
        return np.array([(x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / h, h])

    @property
    def box(self) -> Box:
        """The state's box, xyxy."""
        cx, cy, a, h = self.x[:4]
        h = max(h, 1e-6)
        w = max(a, 0.0) * h
        return cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2

    def predict(self) -> Box:
        """One frame ahead: x <- F x, P <- F P F^T + Q; returns the predicted box."""
        h = self.x[3]
        p, v = self.std_pos * h, self.std_vel * h
        Q = np.diag(np.square([p, p, self.ASPECT_STD[0], p, v, v, self.ASPECT_STD[1], v]))
        self.x = self.F @ self.x
        self.P = self.F @ self.P @ self.F.T + Q
        return self.box

    def update(self, box: Box) -> None:
        """Correct the prediction with a measured box (the standard gain K = P H^T S^-1)."""
        h = self.x[3]
        p = self.std_pos * h
        R = np.diag(np.square([p, p, self.ASPECT_STD[2], p]))
        S = self.H @ self.P @ self.H.T + R
        K = self.P @ self.H.T @ np.linalg.inv(S)
        self.x = self.x + K @ (self.measure(box) - self.H @ self.x)
        self.P = (np.eye(8) - K @ self.H) @ self.P
