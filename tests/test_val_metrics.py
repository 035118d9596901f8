"""The metrics of `sam2 val` (and of `sam2 train`'s validation) on hand-made cases whose answers
are worked out on paper: shifted squares, empty masks, the boundary tolerance at the diagonal
rule, recall at 0.5, decay over four quarters, frame exclusion, and the click protocol."""

import math

import numpy as np
import pytest

from sam2cli.engine.clicks import clicks_to_reach, corrective_click, curve_auc, interior_point, tight_box
from sam2cli.engine.metrics import (boundary_f, boundary_map, decay_bins, eval_frame_indices, iou,
                                        sequence_stats, tolerance_px)


def square(shape, x0, y0, n):
    m = np.zeros(shape, bool)
    m[y0:y0 + n, x0:x0 + n] = True
    return m


def shifted_f(n, d, r):
    """F of an n-pixel square against itself shifted d > r pixels sideways (worked out by hand):
    each boundary is the 4n-pixel outline of the square. The shifted outline's pixels without a
    partner within r: its whole far side (n + 1 with the corner), its near side but for r + 1 pixels
    at each end (n + 1 - 2(r + 1)), and d - r - 1 more on the far end of the bottom row:
    2n + 2d - 4r - 2. The same count holds the other way, so precision = recall = F."""
    return (2 * n - 2 * d + 4 * r + 2) / (4 * n)


def test_shifted_squares_region_similarity():
    gt = square((480, 640), 100, 100, 100)
    for d in (0, 5, 8, 40):
        pred = square((480, 640), 100 + d, 100, 100)
        assert iou(pred, gt) == pytest.approx((100 - d) / (100 + d))  # n(n-d) / n(n+d)
    assert iou(square((480, 640), 300, 300, 50), gt) == 0.0


def test_empty_masks():
    empty, obj = np.zeros((60, 80), bool), square((60, 80), 10, 10, 20)
    assert iou(empty, empty) == 1.0 and boundary_f(empty, empty) == 1.0  # nothing to find, nothing found
    assert iou(empty, obj) == 0.0 and boundary_f(empty, obj) == 0.0      # missed object
    assert iou(obj, empty) == 0.0 and boundary_f(obj, empty) == 0.0      # object where there is none


def test_boundary_map_is_the_outline_half_a_pixel_towards_the_origin():
    m = square((20, 20), 5, 6, 4)  # columns 5..8, rows 6..9
    b = boundary_map(m)
    assert b.sum() == 16  # 4n
    ys, xs = np.nonzero(b)
    assert xs.min() == 4 and xs.max() == 8 and ys.min() == 5 and ys.max() == 9  # [x0-1, x1] x [y0-1, y1]
    assert not b[7:9, 5:8].any()  # the inside is not boundary
    # the image border is not a boundary: a full mask has none, a mask on the last row only its side edges
    assert not boundary_map(np.ones((8, 8), bool)).any()
    assert boundary_map(np.ones((1, 5), bool)).sum() == 0


@pytest.mark.parametrize("shape, r", [((480, 640), 7), ((240, 320), 4), ((480, 854), 8)])
def test_boundary_tolerance_follows_the_diagonal_rule(shape, r):
    assert tolerance_px(shape) == r == math.ceil(0.008 * math.hypot(*shape))
    n = 100
    gt = square(shape, 60, 60, n)
    assert boundary_f(square(shape, 60 + r, 60, n), gt) == 1.0  # every pixel has a partner r away
    assert boundary_f(square(shape, 60, 60 + r, n), gt) == 1.0
    for d in (r + 1, r + 5):
        assert boundary_f(square(shape, 60 + d, 60, n), gt) == pytest.approx(shifted_f(n, d, r))
    if r == 7:
        assert boundary_f(square(shape, 68, 60, n), gt) == pytest.approx(0.535)  # 214 / 400


def test_f_is_symmetric_and_crop_free():
    """F does not depend on where in the frame the pair sits (the crop is exact), and is symmetric."""
    gt, pred = square((480, 640), 60, 60, 100), square((480, 640), 70, 63, 90)
    f = boundary_f(pred, gt)
    assert boundary_f(gt, pred) == pytest.approx(f)
    moved = boundary_f(np.roll(pred, (200, 300), (0, 1)), np.roll(gt, (200, 300), (0, 1)))
    assert moved == pytest.approx(f)
    # at the image's corner (masks touching the border) the border is still not a boundary
    assert boundary_f(square((480, 640), 0, 0, 50), square((480, 640), 0, 0, 50)) == 1.0


def test_recall_counts_frames_strictly_above_half():
    mean, recall, _ = sequence_stats([0.5, 0.51, 1.0, 0.0])
    assert mean == pytest.approx(0.5025) and recall == 0.5


def test_decay_over_four_quarters():
    # 9 frames: quarters [0:3], [2:5], [4:7], [6:9] (neighbours share their end frame)
    assert decay_bins(9) == [(0, 3), (2, 5), (4, 7), (6, 9)]
    assert sequence_stats([1, 1, 1, .5, .5, .5, 0, 0, 0])[2] == pytest.approx(1.0)
    # 8 frames: edges round(1, 2.75, 4.5, 6.25, 8) - 1 = 0, 2, 4 (4.5 rounds up), 5, 7
    assert decay_bins(8) == [(0, 3), (2, 5), (4, 6), (5, 8)]
    assert sequence_stats([1, 1, 1, 1, .5, .5, 0, 0])[2] == pytest.approx(1 - 1 / 6)
    # a steady sequence does not decay; an improving one decays negatively
    assert sequence_stats([0.7] * 13)[2] == 0.0
    assert sequence_stats(np.linspace(0, 1, 17))[2] < 0
    # one or two frames: the quarters collapse onto them
    assert sequence_stats([0.3])[2] == 0.0 and sequence_stats([0.9, 0.4])[2] == pytest.approx(0.5)
    assert all(math.isnan(v) for v in sequence_stats([]))


def test_first_and_last_annotated_frames_are_not_scored():
    assert list(eval_frame_indices(10)) == list(range(1, 9))
    assert list(eval_frame_indices(3)) == [1]
    assert list(eval_frame_indices(2)) == [0, 1] and list(eval_frame_indices(1)) == [0]


def test_interior_point_and_box():
    m = np.zeros((50, 80), bool)
    m[10:31, 20:41] = True  # 21 x 21: the centre is farthest from the edges
    assert interior_point(m) == (30.0, 20.0)
    assert tight_box(m) == (20.0, 10.0, 41.0, 31.0)
    m[10:31, 20:61] = True  # 41 x 21: the middle row ties from x=30 to 50; the first one wins
    assert interior_point(m) == (30.0, 20.0)
    # the image border counts as boundary: a mask filling the image is clicked in its middle
    assert interior_point(np.ones((9, 9), bool)) == (4.0, 4.0)


def test_corrective_click_goes_to_the_largest_error_region():
    gt = np.zeros((100, 100), bool)
    gt[10:60, 10:60] = True
    pred = gt.copy()
    pred[10:60, 10:30] = False       # missed: 50 x 20 = 1000 px
    pred[70:90, 70:80] = True        # false: 20 x 10 = 200 px
    (x, y), label = corrective_click(gt, pred)
    assert label == 1 and 10 <= x < 30 and 10 <= y < 60
    pred2 = gt.copy()
    pred2[10:20, 10:20] = False      # missed: 100 px
    pred2[60:95, 60:95] = True       # false: 1225 px
    (x, y), label = corrective_click(gt, pred2)
    assert label == 0 and (x, y) == (77.0, 77.0)
    # two missed pieces: the larger one is clicked, not the deeper-looking smaller one
    pred3 = gt.copy()
    pred3[10:60, 10:13] = False      # a 50 x 3 sliver: 150 px
    pred3[40:50, 40:50] = False      # a 10 x 10 hole: 100 px
    (x, y), label = corrective_click(gt, pred3)
    assert label == 1 and 10 <= x < 13


def test_noc_and_auc():
    ious = [0.5, 0.8, 0.86, 0.91, 0.95]
    assert clicks_to_reach(ious, 0.85, 20) == 3 and clicks_to_reach(ious, 0.90, 20) == 4
    assert clicks_to_reach([0.5] * 20, 0.90, 20) == 20  # never reached: the maximum counts
    assert curve_auc([1.0] * 20) == 1.0 and curve_auc([0.0, 1.0]) == 0.5
    assert curve_auc([0.2, 0.4, 0.6]) == pytest.approx(0.4)
