"""Prompts files (JSON / YAML), their checks against the video, and the command-line shorthand."""

import json
import re

import cv2
import numpy as np
import pytest

from sam2cli.errors import UsageError
from sam2cli.io.prompt_file import PromptEntry, load_prompts, prompts_from_args, validate_prompts

H, W = 48, 64


def write_json(tmp_path, data, name="prompts.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def mask_png(tmp_path):
    mask = np.zeros((H, W), np.uint8)
    mask[10:20, 5:15] = 1  # 0/1 values: nonzero is foreground
    (tmp_path / "masks").mkdir()
    cv2.imwrite(str(tmp_path / "masks" / "m.png"), mask)
    return mask.astype(bool)


EXAMPLE = [
    {"frame": 0, "obj_id": 5, "points": [[10, 20]], "labels": [1]},
    {"frame": 3, "obj_id": 2, "box": [1, 2, 30, 40]},
    {"frame": 6, "obj_id": 1, "points": [[5, 6], [7, 8]], "labels": [1, 0]},
    {"frame": 2, "obj_id": 3, "mask": "masks/m.png"},
    {"points": [[1.5, 2.5]]},
]


def check_example(entries, mask):
    assert [(e.frame, e.obj_id, e.index) for e in entries] == [(0, 5, 0), (3, 2, 1), (6, 1, 2), (2, 3, 3), (0, 1, 4)]
    first, box, two, masked, defaults = entries
    assert first.points.dtype == np.float32 and first.points.shape == (1, 2)
    assert first.labels.dtype == np.int32 and first.labels.tolist() == [1]
    assert first.box is None and first.mask is None
    assert box.points is None and box.box.dtype == np.float32 and box.box.tolist() == [1, 2, 30, 40]
    assert two.points.tolist() == [[5, 6], [7, 8]] and two.labels.tolist() == [1, 0]
    assert masked.mask.dtype == bool and np.array_equal(masked.mask, mask)
    assert defaults.labels.tolist() == [1] and defaults.points.tolist() == [[1.5, 2.5]]
    validate_prompts(entries, num_frames=10, height=H, width=W)


def test_json_file(tmp_path, mask_png):
    check_example(load_prompts(write_json(tmp_path, EXAMPLE)), mask_png)


def test_yaml_file(tmp_path, mask_png):
    text = """
- {frame: 0, obj_id: 5, points: [[10, 20]], labels: [1]}
- frame: 3
  obj_id: 2
  box: [1, 2, 30, 40]
- {frame: 6, obj_id: 1, points: [[5, 6], [7, 8]], labels: [1, 0]}
- {frame: 2, obj_id: 3, mask: masks/m.png}
- points: [[1.5, 2.5]]
"""
    for name in ("p.yaml", "p.yml"):
        (tmp_path / name).write_text(text)
        check_example(load_prompts(tmp_path / name), mask_png)


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"frame": 3, "obj_id": 2, "bbox": [1, 2, 3, 4]},
         "prompts.json entry 2 (frame 3, obj_id 2): unknown key 'bbox'; allowed: frame, obj_id, points, labels, box, mask"),
        ({"frame": -1, "points": [[1, 2]]}, "prompts.json entry 2: frame must be a whole number >= 0, got -1"),
        ({"obj_id": "a", "points": [[1, 2]]}, "prompts.json entry 2: obj_id must be a whole number >= 0, got 'a'"),
        ({"frame": 1}, "prompts.json entry 2 (frame 1, obj_id 1): give points, a box or a mask"),
        ({"points": [[1, 2]], "labels": [1, 0]}, "got 1 points but 2 labels"),
        ({"points": [[1, 2]], "labels": [2]}, "label 2 is not allowed"),
        ({"labels": [1], "box": [0, 0, 1, 1]}, "labels were given without points"),
        ({"points": [[1, 2, 3]]}, "points have shape (1, 3)"),
        ({"points": [["a", 2]]}, "points must be numbers"),
        ({"points": [[1, 2], [3]]}, "points are not a regular list"),
        ({"box": [1, 2, 3]}, "box must be 4 numbers, got [1, 2, 3]"),
        ({"box": [5, 2, 3, 4]}, "box [5, 2, 3, 4] has x2 < x1 or y2 < y1"),
        ({"mask": "masks/m.png", "points": [[1, 2]]}, "a mask cannot be combined with points or a box"),
        ({"mask": "nope.png"}, "mask file not found"),
        ({"mask": 3}, "mask must be the path of a mask image"),
        ("frame 0", "an entry must be a mapping"),
        ({"frame": 0, "obj_id": 1, "box": [0, 0, 5, 5]}, "the same frame and obj_id as prompts.json entry 1"),
    ],
)
def test_entry_errors(tmp_path, mask_png, entry, message):
    path = write_json(tmp_path, [{"points": [[1, 1]]}, entry])
    with pytest.raises(UsageError) as info:
        load_prompts(path)
    text = str(info.value)
    assert message in text and "\n" not in text
    assert text.startswith("prompts.json entry 2")


def test_file_errors(tmp_path):
    cases = {
        "bad.json": ("[{\"frame\": 0,", "bad.json is not valid JSON"),
        "bad.yaml": ("- [unclosed", "bad.yaml is not valid YAML"),
        "obj.json": ('{"frame": 0}', "obj.json must hold a list of prompt entries"),
        "empty.yaml": ("", "empty.yaml must hold a list of prompt entries"),
        "none.json": ("[]", "none.json has no prompt entries"),
        "p.txt": ("[]", "must be .json, .yaml or .yml"),
    }
    for name, (text, message) in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(UsageError, match=re.escape(message)):
            load_prompts(tmp_path / name)
    with pytest.raises(UsageError, match="prompts file not found"):
        load_prompts(tmp_path / "missing.json")


def test_validate_prompts(tmp_path, mask_png):
    entries = load_prompts(write_json(tmp_path, [{"frame": 40, "points": [[1, 2]]}]))
    with pytest.raises(UsageError, match=re.escape(
        "prompts.json entry 1 (frame 40, obj_id 1): frame 40 is past the end of the video (30 frames)"
    )):
        validate_prompts(entries, 30, H, W)
    validate_prompts(entries, None, H, W)  # live stream: frames unchecked

    cases = [
        ({"points": [[W + 1, 2]]}, r"point \(65, 2\) is outside the 64x48 \(WxH\) frame"),
        ({"box": [0, 0, 10, H + 5]}, r"box \[0, 0, 10, 53\] is outside"),
        ({"mask": "masks/m.png"}, r"the mask is 64x48 \(WxH\) but the video is 32x24"),
    ]
    for entry, message in cases:
        entries = load_prompts(write_json(tmp_path, [entry]))
        size = (24, 32) if "mask" in entry else (H, W)
        with pytest.raises(UsageError, match=message):
            validate_prompts(entries, 30, *size)


def test_prompts_from_args():
    one = prompts_from_args(points=[[10, 20]], labels=[1], frame=0)
    assert len(one) == 1 and isinstance(one[0], PromptEntry)
    assert (one[0].frame, one[0].obj_id) == (0, 1)
    assert one[0].points.tolist() == [[10, 20]] and one[0].labels.tolist() == [1] and one[0].box is None

    two = prompts_from_args(points=[[10, 20], [30, 40]], labels=[1, 0], frame=5, obj_ids=[7, 9])
    assert [(e.frame, e.obj_id, e.index) for e in two] == [(5, 7, 0), (5, 9, 1)]
    assert two[1].labels.tolist() == [0]

    several = prompts_from_args(points=[[[1, 2], [3, 4]]], labels=[[1, 0]], bboxes=[0, 0, 9, 9])
    assert several[0].points.shape == (2, 2) and several[0].box.tolist() == [0, 0, 9, 9]
    assert prompts_from_args(bboxes=[[0, 0, 5, 5], [1, 1, 6, 6]])[1].obj_id == 2
    assert prompts_from_args(obj_ids=None) == []

    with pytest.raises(UsageError, match="describe 2 objects but 1 obj_ids were given"):
        prompts_from_args(points=[[1, 2], [3, 4]], obj_ids=[1])
    with pytest.raises(UsageError, match="obj_id 3 is given twice"):
        prompts_from_args(points=[[1, 2], [3, 4]], obj_ids=[3, 3])
    with pytest.raises(UsageError, match="frame must be a whole number >= 0"):
        prompts_from_args(points=[1, 2], frame=-2)
    with pytest.raises(UsageError, match="got 1 points but 2 labels"):
        prompts_from_args(points=[[[1, 2]]], labels=[[1, 0]])
    err = prompts_from_args(points=[[1, 2]], frame=50)
    with pytest.raises(UsageError, match=r"prompt 1 \(frame 50, obj_id 1\): frame 50 is past the end"):
        validate_prompts(err, 10, H, W)


def test_an_entry_is_an_object_prompt_on_a_frame(tmp_path):
    from sam2cli.core.prompts import ObjectPrompt

    entry = PromptEntry(4, 7, mask=np.ones((H, W), bool), index=2)  # frame, obj_id first, as the tracker builds it
    assert isinstance(entry, ObjectPrompt) and (entry.frame, entry.obj_id, entry.index) == (4, 7, 2)
    assert entry.points is None and entry.where == "prompt 3 (frame 4, obj_id 7)"
    loaded = load_prompts(write_json(tmp_path, [{"frame": 1, "obj_id": 2, "points": [[3, 4]]}]))[0]
    assert isinstance(loaded, ObjectPrompt) and loaded.source == "prompts.json"


def test_file_and_command_line_report_a_bad_value_alike(tmp_path):
    """One validator: the message a file entry gets is the command line's, with where it is in front."""
    cases = [
        ({"box": [5, 2, 3, 4]}, dict(bboxes=[5, 2, 3, 4]), "[5, 2, 3, 4] has x2 < x1 or y2 < y1"),
        ({"points": [[1, 2]], "labels": [2]}, dict(points=[1, 2], labels=[2]), "label 2 is not allowed"),
        ({"points": [[True, 2]]}, dict(points=[True, 2]), "points must be numbers, got True"),
    ]
    for entry, args, message in cases:
        with pytest.raises(UsageError, match=re.escape(message)) as from_file:
            load_prompts(write_json(tmp_path, [entry]))
        with pytest.raises(UsageError, match=re.escape(message)) as from_args:
            prompts_from_args(**args)
        assert str(from_file.value).startswith("prompts.json entry 1 (frame 0, obj_id 1): ")
        assert not str(from_args.value).startswith("prompt")
