"""Tests for sam2cli.core.prompts.normalize_prompts."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from sam2cli.core.prompts import ObjectPrompt, normalize_prompts
from sam2cli.errors import UsageError


def _pts(objs: list[ObjectPrompt]) -> list[list[list[float]]]:
    return [o.points.tolist() for o in objs]


def _lbl(objs: list[ObjectPrompt]) -> list[list[int]]:
    return [o.labels.tolist() for o in objs]


def test_nothing_given() -> None:
    assert normalize_prompts() == []
    assert normalize_prompts(points=[], bboxes=None, masks=np.zeros((0, 4, 4))) == []


def test_single_point() -> None:
    objs = normalize_prompts(points=[10, 20])
    assert len(objs) == 1
    o = objs[0]
    assert o.points.shape == (1, 2) and o.points.dtype == np.float32
    assert o.labels.dtype == np.int32 and o.labels.tolist() == [1]
    assert o.box is None and o.mask is None


def test_points_one_per_object() -> None:
    objs = normalize_prompts(points=[[1, 2], [3, 4]], labels=[1, 0])
    assert _pts(objs) == [[[1, 2]], [[3, 4]]]
    assert _lbl(objs) == [[1], [0]]


def test_points_several_per_object() -> None:
    objs = normalize_prompts(points=[[[1, 2], [3, 4]]], labels=[[1, 0]])
    assert len(objs) == 1
    assert _pts(objs) == [[[1, 2], [3, 4]]]
    assert _lbl(objs) == [[1, 0]]


def test_ragged_points_per_object() -> None:
    objs = normalize_prompts(points=[[[1, 2], [3, 4]], [[5, 6]]], labels=[[1, 0], [1]])
    assert _pts(objs) == [[[1, 2], [3, 4]], [[5, 6]]]
    assert _lbl(objs) == [[1, 0], [1]]


@pytest.mark.parametrize("labels", [1, [1], [[1]], np.array([0]), torch.tensor(1)])
def test_single_point_label_forms(labels: object) -> None:
    objs = normalize_prompts(points=[10, 20], labels=labels)
    assert len(objs) == 1 and objs[0].labels.shape == (1,)


def test_labels_forms_follow_points() -> None:
    # one object, two points: flat labels accepted too
    assert _lbl(normalize_prompts(points=[[[1, 2], [3, 4]]], labels=[1, 0])) == [[1, 0]]
    # two objects, one point each, labels nested per point
    assert _lbl(normalize_prompts(points=[[1, 2], [3, 4]], labels=[[1], [0]])) == [[1], [0]]
    # (N, 1, 2) points with flat labels
    assert _lbl(normalize_prompts(points=[[[1, 2]], [[3, 4]]], labels=[0, 1])) == [[0], [1]]


def test_missing_labels_default_foreground() -> None:
    objs = normalize_prompts(points=[[[1, 2], [3, 4], [5, 6]]])
    assert _lbl(objs) == [[1, 1, 1]]


def test_numpy_and_torch_same_meaning() -> None:
    for conv in (np.array, torch.tensor):
        assert len(normalize_prompts(points=conv([1.0, 2.0]))) == 1
        assert len(normalize_prompts(points=conv([[1.0, 2.0], [3.0, 4.0]]))) == 2
        objs = normalize_prompts(points=conv([[[1.0, 2.0], [3.0, 4.0]]]), labels=conv([[1, 0]]))
        assert len(objs) == 1 and objs[0].points.shape == (2, 2)


def test_label_count_mismatch() -> None:
    with pytest.raises(UsageError, match="got 3 points but 2 labels for object 0; give one label"):
        normalize_prompts(points=[[[1, 2], [3, 4], [5, 6]]], labels=[[1, 0]])
    with pytest.raises(UsageError, match="got 2 points but 3 labels"):
        normalize_prompts(points=[[1, 2], [3, 4]], labels=[1, 0, 1])
    with pytest.raises(UsageError, match="got 1 points but 2 labels for object 1"):
        normalize_prompts(points=[[[1, 2]], [[3, 4]]], labels=[[1], [1, 0]])
    with pytest.raises(UsageError, match="labels"):
        normalize_prompts(points=[[[1, 2]], [[3, 4]]], labels=[[1]])


@pytest.mark.parametrize("bad", [2, -1, [[1, 0.5]]])
def test_label_values(bad: object) -> None:
    pts = [[[1, 2], [3, 4]]] if isinstance(bad, list) else [1, 2]
    with pytest.raises(UsageError, match="1 \\(foreground\\) or 0 \\(background\\)"):
        normalize_prompts(points=pts, labels=bad)


def test_labels_without_points() -> None:
    with pytest.raises(UsageError, match="without points"):
        normalize_prompts(labels=[1], bboxes=[0, 0, 5, 5])


def test_boxes() -> None:
    objs = normalize_prompts(bboxes=[1, 2, 30, 40])
    assert len(objs) == 1
    assert objs[0].box.dtype == np.float32 and objs[0].box.tolist() == [1, 2, 30, 40]
    assert objs[0].points is None and objs[0].labels is None
    objs = normalize_prompts(bboxes=np.array([[1, 2, 3, 4], [5, 6, 7, 8]]))
    assert [o.box.tolist() for o in objs] == [[1, 2, 3, 4], [5, 6, 7, 8]]
    assert len(normalize_prompts(bboxes=torch.tensor([[1.0, 2.0, 3.0, 4.0]]))) == 1


@pytest.mark.parametrize("box", [[10, 0, 5, 5], [0, 10, 5, 5]])
def test_inverted_box(box: list[int]) -> None:
    with pytest.raises(UsageError, match="xyxy"):
        normalize_prompts(bboxes=box)


@pytest.mark.parametrize("box", [[1, 2, 3], [[1, 2, 3, 4, 5]], [[[1, 2, 3, 4]]]])
def test_bad_box_shape(box: object) -> None:
    with pytest.raises(UsageError, match=r"x1, y1, x2, y2"):
        normalize_prompts(bboxes=box)


def test_masks() -> None:
    m = np.zeros((4, 5), bool)
    m[1, 1] = True
    objs = normalize_prompts(masks=m)
    assert len(objs) == 1
    assert objs[0].mask.dtype == np.float32 and objs[0].mask.shape == (4, 5)
    assert objs[0].mask[1, 1] == 1.0 and objs[0].mask.sum() == 1.0
    objs = normalize_prompts(masks=np.zeros((3, 8, 8), np.float32))
    assert len(objs) == 3
    with pytest.raises(UsageError, match="masks"):
        normalize_prompts(masks=np.zeros(5))


def test_points_and_boxes_combine() -> None:
    objs = normalize_prompts(
        points=[[[5, 5], [6, 6]], [[15, 15], [16, 16]]],
        labels=[[1, 0], [1, 1]],
        bboxes=[[0, 0, 10, 10], [10, 10, 20, 20]],
    )
    assert len(objs) == 2
    assert objs[1].box.tolist() == [10, 10, 20, 20]
    assert objs[1].points.tolist() == [[15, 15], [16, 16]]
    assert objs[0].labels.tolist() == [1, 0]


def test_object_count_mismatch() -> None:
    with pytest.raises(UsageError, match="points describe 2 objects but bboxes describe 3; give one entry per object"):
        normalize_prompts(points=[[1, 2], [3, 4]], bboxes=[[0, 0, 1, 1]] * 3)
    with pytest.raises(UsageError, match="bboxes describe 1 objects but masks describe 2"):
        normalize_prompts(bboxes=[0, 0, 1, 1], masks=np.zeros((2, 4, 4)))


def test_image_bounds() -> None:
    hw = (480, 640)
    assert len(normalize_prompts(points=[640, 480], bboxes=[0, 0, 640, 480], image_hw=hw)) == 1
    with pytest.raises(UsageError, match=r"point \(700, 20\) of object 0 is outside the 640x480"):
        normalize_prompts(points=[700, 20], image_hw=hw)
    with pytest.raises(UsageError, match="outside"):
        normalize_prompts(points=[10, -1], image_hw=hw)
    with pytest.raises(UsageError, match=r"box 0 \[0, 0, 641, 10\] is outside the 640x480"):
        normalize_prompts(bboxes=[0, 0, 641, 10], image_hw=hw)
    with pytest.raises(UsageError, match="mask 0 is 5x4 .* but the image is 640x480"):
        normalize_prompts(masks=np.zeros((4, 5)), image_hw=hw)
    assert len(normalize_prompts(masks=np.zeros((480, 640)), image_hw=hw)) == 1


@pytest.mark.parametrize(
    "points",
    [
        "abc",
        [1, 2, 3],
        [["a", "b"]],
        [[1, 2], [3]],
        [[[1, 2, 3]]],
        [[[[1, 2]]]],
        {"x": 1},
        [1, None],
        [float("nan"), 2],
    ],
)
def test_garbage_points(points: object) -> None:
    with pytest.raises(UsageError) as info:
        normalize_prompts(points=points)
    msg = str(info.value)
    assert "\n" not in msg and "points" in msg


def test_garbage_labels() -> None:
    with pytest.raises(UsageError, match="labels"):
        normalize_prompts(points=[1, 2], labels="x")
    with pytest.raises(UsageError, match="labels"):
        normalize_prompts(points=[[1, 2], [3, 4]], labels=[[1], [0, 1]])


def test_bools_and_none_are_not_numbers() -> None:
    with pytest.raises(UsageError, match="points must be numbers, got True"):
        normalize_prompts(points=[[True, 5]])
    with pytest.raises(UsageError, match="labels must be numbers, got False"):
        normalize_prompts(points=[1, 2], labels=[False])
    with pytest.raises(UsageError, match="bboxes must be numbers, got None"):
        normalize_prompts(bboxes=[0, 0, None, 5])
    assert _lbl(normalize_prompts(points=[1, 2], labels=np.array([True]))) == [[1]]  # a numpy bool array is 0/1


def test_one_object_checks_are_those_of_normalize_prompts() -> None:
    """object_prompt (a prompts-file entry) and normalize_prompts (Python / CLI) share each check."""
    from sam2cli.core.prompts import object_prompt

    p = object_prompt(points=[[1, 2], [3, 4]], labels=[1, 0], box=[0, 0, 5, 5])
    assert p.points.dtype == np.float32 and p.labels.tolist() == [1, 0] and p.box.tolist() == [0, 0, 5, 5]
    assert object_prompt(points=[7, 8]).labels.tolist() == [1]
    assert object_prompt(mask=np.ones((3, 4), bool)).mask.dtype == bool  # the mask keeps its dtype
    same = [
        (dict(box=[5, 0, 1, 1]), dict(bboxes=[5, 0, 1, 1]), "[5, 0, 1, 1] has x2 < x1 or y2 < y1"),
        (dict(points=[[1, 2]], labels=[3]), dict(points=[[[1, 2]]], labels=[[3]]), "label 3 is not allowed"),
        (dict(points=[[1, 2]], labels=[1, 0]), dict(points=[[[1, 2]]], labels=[[1, 0]]), "got 1 points but 2 labels"),
        (dict(labels=[1], box=[0, 0, 1, 1]), dict(labels=[1], bboxes=[0, 0, 1, 1]), "labels were given without points"),
        (dict(points=[[1, float("inf")]]), dict(points=[[[1, float("inf")]]]), "points contain NaN or infinite"),
    ]
    for one, api, message in same:
        with pytest.raises(UsageError, match=re.escape(message)):
            object_prompt(**one)
        with pytest.raises(UsageError, match=re.escape(message)):
            normalize_prompts(**api)
    with pytest.raises(UsageError, match=re.escape("box must be 4 numbers, got [1, 2, 3]")):
        object_prompt(box=[1, 2, 3])
    with pytest.raises(UsageError, match=re.escape("points have shape (1, 3)")):
        object_prompt(points=[[1, 2, 3]])
    with pytest.raises(UsageError, match="points are not a regular list"):
        object_prompt(points=[[1, 2], [3]])


def test_check_inside_names_image_or_video_frame() -> None:
    from sam2cli.core.prompts import ObjectPrompt, check_inside

    check_inside(ObjectPrompt(points=np.array([[64, 48]], np.float32)), (48, 64))  # the far edge is inside
    with pytest.raises(UsageError, match=r"point \(65, 2\) is outside the 64x48 \(WxH\) frame"):
        check_inside(ObjectPrompt(points=np.array([[65, 2]], np.float32)), (48, 64), video=True)
    with pytest.raises(UsageError, match=r"^the mask is 4x3 \(WxH\) but the video is 64x48"):
        check_inside(ObjectPrompt(mask=np.zeros((3, 4), bool)), (48, 64), video=True)
    with pytest.raises(UsageError, match=r"^box 2 \[0, 0, 9, 60\] is outside the 64x48 \(WxH\) image"):
        check_inside(ObjectPrompt(box=np.array([0, 0, 9, 60], np.float32)), (48, 64), index=2)


def test_prompts_become_model_points_in_one_place() -> None:
    """engine.transforms.point_prompt: a box is two corners labelled 2 and 3 before the clicks, and
    coordinates scale as the reference does, float32 x / W * size (not x * (size / W))."""
    from sam2cli.engine.transforms import point_prompt

    hw, size = (333, 517), 1024
    coords, labels = point_prompt([[100, 50], [7, 300]], [1, 0], [10, 20, 300, 250], hw, size)
    assert coords.shape == (1, 4, 2) and coords.dtype == torch.float32
    assert labels.dtype == torch.int32 and labels.tolist() == [[2, 3, 1, 0]]
    xy = torch.tensor([[10, 20], [300, 250], [100, 50], [7, 300]], dtype=torch.float32)
    expect = torch.stack([xy[:, 0] / hw[1], xy[:, 1] / hw[0]], -1) * size
    assert torch.equal(coords[0], expect)
    x = torch.arange(hw[1] + 1, dtype=torch.float32)
    ours, _ = point_prompt(torch.stack([x, x * 0], -1), None, None, hw, size)
    assert torch.equal(ours[0, :, 0], x / hw[1] * size)
    assert not torch.equal(ours[0, :, 0], x * torch.tensor(size / hw[1], dtype=torch.float32))  # the two differ

    batch, blab = point_prompt(np.zeros((3, 2, 2)), None, np.zeros((3, 4)), hw, size)  # N objects
    assert batch.shape == (3, 4, 2) and blab.tolist() == [[2, 3, 1, 1]] * 3
    assert point_prompt(None, None, None, hw, size) == (None, None)
    objs = normalize_prompts(points=[[[1, 2], [3, 4]]], labels=[[1, 0]], bboxes=[0, 0, 9, 9])
    _, olab = point_prompt(objs[0].points, objs[0].labels, objs[0].box, hw, size)
    assert olab.tolist() == [[2, 3, 1, 0]]
