"""Validation metrics of `sam2 train`: the ones `sam2 val` reports (one implementation, so the two
never disagree). See :mod:`sam2cli.engine.metrics` for the definitions (DAVIS 2017's)."""

from sam2cli.engine.metrics import boundary_f, iou  # noqa: F401  (re-exported)

__all__ = ["iou", "boundary_f"]
