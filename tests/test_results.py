"""Tests for sam2cli.core.results."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from sam2cli.core.results import Boxes, Masks, Results, mask_to_polygon, masks_to_boxes


def _rect(h: int, w: int, x1: int, y1: int, x2: int, y2: int) -> np.ndarray:
    m = np.zeros((h, w), bool)
    m[y1:y2, x1:x2] = True
    return m


def test_masks_to_boxes_rectangles_and_empty() -> None:
    masks = np.stack([_rect(20, 30, 2, 3, 10, 7), np.zeros((20, 30), bool), _rect(20, 30, 0, 0, 30, 20)])
    boxes = masks_to_boxes(masks)
    assert boxes.dtype == np.float32 and boxes.shape == (3, 4)
    assert boxes.tolist() == [[2, 3, 10, 7], [0, 0, 0, 0], [0, 0, 30, 20]]


def test_masks_to_boxes_single_pixel_and_2d() -> None:
    m = np.zeros((5, 5), bool)
    m[4, 1] = True
    assert masks_to_boxes(m).tolist() == [[1, 4, 2, 5]]
    assert masks_to_boxes(np.zeros((0, 5, 5), bool)).shape == (0, 4)


def test_masks_to_boxes_circle() -> None:
    m = np.zeros((100, 100), np.uint8)
    cv2.circle(m, (50, 40), 20, 1, -1)
    assert masks_to_boxes(m[None]).tolist() == [[30, 20, 71, 61]]


def test_polygon_rectangle() -> None:
    poly = mask_to_polygon(_rect(20, 30, 2, 3, 10, 7))
    assert poly.dtype == np.float32 and poly.shape[1] == 2
    assert poly[:, 0].min() == 2 and poly[:, 0].max() == 9
    assert poly[:, 1].min() == 3 and poly[:, 1].max() == 6
    assert len(poly) == 4  # CHAIN_APPROX_SIMPLE keeps the corners


def test_polygon_picks_largest_and_handles_empty() -> None:
    m = _rect(50, 50, 1, 1, 4, 4) | _rect(50, 50, 20, 20, 45, 40)
    poly = mask_to_polygon(m)
    assert poly[:, 0].min() == 20 and poly[:, 1].max() == 39
    assert mask_to_polygon(np.zeros((5, 5), bool)).shape == (0, 2)


def test_polygon_circle_area() -> None:
    m = np.zeros((100, 100), np.uint8)
    cv2.circle(m, (50, 50), 30, 1, -1)
    poly = mask_to_polygon(m)
    assert abs(cv2.contourArea(poly) - np.pi * 30**2) / (np.pi * 30**2) < 0.05


def test_masks_container() -> None:
    data = np.stack([_rect(10, 20, 0, 0, 5, 5), np.zeros((10, 20), bool)])
    masks = Masks(data)
    assert len(masks) == 2 and masks.shape == (2, 10, 20) and masks.data.dtype == bool
    assert len(masks.xy) == 2 and masks.xy[1].shape == (0, 2)
    xyn = masks.xyn[0]
    assert np.allclose(xyn[:, 0].max(), 4 / 20) and np.allclose(xyn[:, 1].max(), 4 / 10)
    assert len(masks[:1]) == 1


def test_boxes_container() -> None:
    boxes = Boxes(np.array([[0, 0, 10, 20], [5, 5, 7, 9]]), [0.9, 0.5])
    assert len(boxes) == 2
    assert boxes.conf.dtype == np.float32 and boxes.cls.tolist() == [0, 0] and boxes.id is None
    assert boxes.xywh.tolist() == [[5, 10, 10, 20], [6, 7, 2, 4]]
    sub = Boxes(boxes.xyxy, boxes.conf, id=[3, 4])[1:]
    assert sub.id.tolist() == [4] and len(sub) == 1


def test_results_from_masks() -> None:
    img = np.zeros((20, 30, 3), np.uint8)
    masks = np.stack([_rect(20, 30, 2, 3, 10, 7), np.zeros((20, 30), bool)])
    res = Results.from_masks(img, masks, [0.8, 0.1], path="a.jpg", frame=3, obj_ids=[1, 2], cls=[0, 1])
    assert len(res) == 2 and res.orig_shape == (20, 30)
    assert res.boxes.xyxy.tolist() == [[2, 3, 10, 7], [0, 0, 0, 0]]
    assert res.boxes.conf.tolist() == pytest.approx([0.8, 0.1])
    assert res.boxes.id.tolist() == [1, 2] and res.boxes.cls.tolist() == [0, 1]
    assert res.masks.data.dtype == bool and res.path == "a.jpg" and res.frame == 3
    assert res.speed == {} and isinstance(res.names, dict)
    text = repr(res)
    assert "a.jpg" in text and "objects=2" in text and "\n" not in text


def test_results_empty_and_mismatch() -> None:
    img = np.zeros((8, 9, 3), np.uint8)
    res = Results(img)
    assert len(res) == 0 and res.masks is None and res.boxes is None
    empty = Results.from_masks(img, np.zeros((0, 8, 9), bool), np.zeros(0))
    assert len(empty) == 0 and empty.boxes.xyxy.shape == (0, 4)
    with pytest.raises(ValueError):
        Results.from_masks(img, np.zeros((1, 4, 4), bool), [1.0])
