"""key=value argument parsing: values, types, ranges, cfg files, error messages."""

import re

import pytest
import yaml

from sam2cli.cli.args import (
    check_types,
    default_path,
    format_defaults,
    load_defaults,
    parse_args,
    parse_value,
    resolve,
)
from sam2cli.errors import SAM2Error, UsageError

DEFAULTS = load_defaults()


# ----------------------------------------------------------------------------- defaults file

EXPECTED_DEFAULTS = {
    "model": "sam2.1_b.pt", "source": None, "device": "", "half": False, "imgsz": None,
    "verbose": False, "cfg": None, "format": None,
    "points": None, "labels": None, "bboxes": None, "masks": None, "multimask_output": False,
    "prompts": None, "frame": 0, "obj_ids": None,
    "vid_stride": 1, "reverse": False, "direction": "forward", "non_overlap": False, "max_frames": None,
    "fill_hole_area": 8, "tracker": "sam2", "sam_imgsz": None,
    "det_stride": 10, "new_iou": 0.5, "reprompt_iou": 1.0, "max_lost": 30,
    "points_per_side": 32, "points_per_batch": 64, "pred_iou_thresh": 0.8,
    "stability_score_thresh": 0.95, "stability_score_offset": 1.0, "mask_threshold": 0.0,
    "box_nms_thresh": 0.7, "crop_n_layers": 0, "crop_nms_thresh": 0.7,
    "crop_overlap_ratio": 512 / 1500, "crop_n_points_downscale_factor": 1,
    "min_mask_region_area": 0, "use_m2m": False,
    "project": "runs", "name": None, "exist_ok": False, "save": True, "save_txt": False,
    "save_conf": False, "save_json": False, "save_masks": False, "mask_format": "binary",
    "line_width": 2, "show_boxes": False,
    "data": None, "det_model": "yolo11x.pt", "sam_model": "sam2.1_b.pt", "conf": 0.25, "iou": 0.45,
    "max_det": 300, "classes": None, "output_dir": None, "det_labels": None, "overwrite": False,
    "shard": None, "engine": "local", "workers": 1, "ray_address": None, "gpus_per_worker": 1.0,
    "epochs": 20, "batch": 4, "lr0": 0.0001, "lrf": 0.1, "warmup_steps": 100, "weight_decay": 0.1,
    "clip_grad": 0.1, "freeze": None, "seed": 0, "augment": True, "n_correct": 7, "max_objects": 3,
    "clip_len": 8, "val_samples": 200, "resume": None,
    "task": None,
    "compare": None, "runs": 5, "warmup": 1,
    "output": None, "int8": False, "opset": 17,
    "host": "127.0.0.1", "port": 8765, "open": False, "token": None,
}


def test_defaults_match_the_spec():
    assert DEFAULTS == EXPECTED_DEFAULTS
    for key, value in EXPECTED_DEFAULTS.items():
        assert type(DEFAULTS[key]) is type(value), key


def test_defaults_pass_their_own_checks():
    assert check_types(DEFAULTS, DEFAULTS) == DEFAULTS
    assert resolve([]) == DEFAULTS


def test_every_key_line_has_a_comment():
    for line in default_path().read_text(encoding="utf-8").splitlines():
        if re.match(r"^\w+:", line):
            assert re.search(r"\s#\s*\S", line), f"no comment: {line!r}"


# ----------------------------------------------------------------------------- values

@pytest.mark.parametrize("text, expected", [
    ("1024", 1024),
    ("-3", -3),
    ("0.5", 0.5),
    ("-0.25", -0.25),
    ("1e-3", 0.001),
    ("true", True), ("True", True), ("TRUE", True), ("false", False), ("False", False),
    ("null", None), ("None", None), ("none", None), ("NULL", None),
    ("[[400,370],[900,370]]", [[400, 370], [900, 370]]),
    ("[[400, 370], [900, 370]]", [[400, 370], [900, 370]]),
    ("[1,0]", [1, 0]),
    ("[-1.5,2]", [-1.5, 2]),
    ("(1,2)", (1, 2)),
    ("{'a': 1}", {"a": 1}),
    ("'quoted string'", "quoted string"),
    ('"sam2.1_b.pt"', "sam2.1_b.pt"),
    ("sam2.1_b.pt", "sam2.1_b.pt"),
    ("weights/sam2.1_b.pt", "weights/sam2.1_b.pt"),
    ("https://x/y.mp4", "https://x/y.mp4"),
    ("cuda:0", "cuda:0"),
    ("0/4", "0/4"),
    ("[true,false]", [True, False]),
    ("[a.jpg, b.jpg]", ["a.jpg", "b.jpg"]),
    ("plain words with spaces", "plain words with spaces"),
    ("", ""),
])
def test_parse_value(text, expected):
    value = parse_value(text)
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize("argv, key, expected", [
    (["imgsz=512"], "imgsz", 512),
    (["imgsz=512.0"], "imgsz", 512),                  # integral float -> int
    (["imgsz=null"], "imgsz", None),                  # the model's own input size
    (["conf=1"], "conf", 1.0),                         # int -> float for a float key
    (["mask_threshold=-2.5"], "mask_threshold", -2.5),  # negative number
    (["frame=-0"], "frame", 0),
    (["half=true"], "half", True),
    (["half=False"], "half", False),
    (["save=false"], "save", False),
    (["name=null"], "name", None),
    (["max_frames=None"], "max_frames", None),
    (["max_frames=10"], "max_frames", 10),
    (["points=[[400,370],[900,370]]"], "points", [[400, 370], [900, 370]]),
    (["points=[[400, 370], [900, 370]]"], "points", [[400, 370], [900, 370]]),  # spaces in one argv item
    (["labels=[1,0]"], "labels", [1, 0]),
    (["bboxes=[-10,20,300,400]"], "bboxes", [-10, 20, 300, 400]),
    (["model=weights/sam2.1_b.pt"], "model", "weights/sam2.1_b.pt"),
    (["model=sam2.1_l.pt"], "model", "sam2.1_l.pt"),
    (["source=https://x/y.mp4"], "source", "https://x/y.mp4"),
    (["source=https://x/y.mp4?a=b&c=d"], "source", "https://x/y.mp4?a=b&c=d"),  # split on the first '='
    (["source=img.jpg"], "source", "img.jpg"),
    (["source=0"], "source", "0"),
    (["device=0"], "device", "0"),
    (["device=0,1"], "device", "0,1"),
    (["device=cuda:1"], "device", "cuda:1"),
    (["device="], "device", ""),
    (["name=2"], "name", "2"),
    (["name=1.10"], "name", "1.10"),                   # the text as typed, not str(1.1)
    (["project=my runs"], "project", "my runs"),
    (["direction=BOTH"], "direction", "both"),
    (["format=jsonl"], "format", "jsonl"),
    (["format=null"], "format", None),
    (["mask_format=palette"], "mask_format", "palette"),
    (["engine=ray"], "engine", "ray"),
    (["shard=0/4"], "shard", "0/4"),
    (["shard=3/4"], "shard", "3/4"),
    (["classes=[0,2]"], "classes", [0, 2]),
    (["points-per-side=16"], "points_per_side", 16),  # dashes in a key name are underscores
    (["imgsz=512", "imgsz=768"], "imgsz", 768),       # repeated key: last wins
    (["conf=0"], "conf", 0.0),
    (["conf=1.0"], "conf", 1.0),                      # range ends are inclusive
])
def test_resolve_values(argv, key, expected):
    args = resolve(argv)
    assert args[key] == expected
    assert type(args[key]) is type(expected)
    assert set(args) == set(DEFAULTS)


def test_parse_args_returns_only_the_overrides():
    assert parse_args(["imgsz=512", "half=true"], DEFAULTS) == {"imgsz": 512, "half": True}
    assert parse_args([], DEFAULTS) == {}


def test_resolve_with_custom_defaults():
    assert resolve(["a=3"], {"a": 1, "b": "x"}) == {"a": 3, "b": "x"}


# ----------------------------------------------------------------------------- errors

def _usage_error(argv, defaults=None):
    with pytest.raises(UsageError) as info:
        resolve(argv, defaults)
    assert info.value.exit_code == 2
    return str(info.value)


def test_unknown_key_suggests_similar():
    msg = _usage_error(["modle=sam2.1_l.pt"])
    assert msg.startswith("'modle' is not a valid argument.")
    assert "Similar: model=sam2.1_b.pt" in msg


def test_unknown_key_without_similar_points_to_sam2_cfg():
    msg = _usage_error(["zqxwv=1"])
    assert "'zqxwv' is not a valid argument" in msg
    assert "sam2 cfg" in msg


def test_unknown_key_shows_at_most_three_suggestions():
    msg = _usage_error(["save_tx=true"])
    assert "Similar:" in msg
    assert "save_txt=false" in msg
    assert msg.split("Similar:")[1].count("=") <= 3


def test_bad_bool():
    assert _usage_error(["half=maybe"]) == "half=maybe is not valid: expected true or false"
    assert "expected true or false" in _usage_error(["half=1"])  # only true/false


@pytest.mark.parametrize("argv, fragment", [
    (["imgsz=abc"], "expected a whole number"),
    (["imgsz=512.5"], "expected a whole number"),
    (["vid_stride=null"], "expected a whole number"),
    (["conf=high"], "expected a number"),
    (["conf=true"], "expected a number"),
    (["model=[1,2]"], "expected a text value"),
    (["direction=up"], "expected one of forward, backward, both"),
    (["mask_format=rle"], "expected one of binary, palette"),
    (["format=csv"], "expected one of null, jsonl"),
    (["engine=spark"], "expected one of local, ray"),
    (["shard=4/4"], "expected i/n with 0 <= i < n"),
    (["shard=1"], "expected i/n with 0 <= i < n"),
    (["shard=a/b"], "expected i/n with 0 <= i < n"),
])
def test_wrong_type_or_choice(argv, fragment):
    assert fragment in _usage_error(argv)


@pytest.mark.parametrize("argv, rule", [
    (["imgsz=1000"], "positive multiple of 16"),
    (["imgsz=0"], "positive multiple of 16"),
    (["imgsz=-1024"], "positive multiple of 16"),
    (["vid_stride=0"], ">= 1"),
    (["points_per_side=0"], ">= 1"),
    (["points_per_batch=0"], ">= 1"),
    (["pred_iou_thresh=1.5"], "between 0 and 1"),
    (["stability_score_thresh=-0.1"], "between 0 and 1"),
    (["box_nms_thresh=2"], "between 0 and 1"),
    (["crop_nms_thresh=-1"], "between 0 and 1"),
    (["conf=1.01"], "between 0 and 1"),
    (["iou=-0.5"], "between 0 and 1"),
    (["crop_n_layers=-1"], ">= 0"),
    (["line_width=0"], ">= 1"),
    (["workers=0"], ">= 1"),
    (["runs=0"], ">= 1"),
    (["warmup=-1"], ">= 0"),
    (["max_frames=0"], ">= 1"),
])
def test_out_of_range(argv, rule):
    msg = _usage_error(argv)
    assert msg.startswith(argv[0] + " is out of range")
    assert rule in msg


@pytest.mark.parametrize("item", ["foo", "predict", "imgsz", "", "=5", "my key=1"])
def test_bare_word(item):
    msg = _usage_error([item])
    assert msg == f"'{item}' is not a key=value argument. Example: sam2 predict model=sam2.1_b.pt source=img.jpg"


def test_dashed_key_says_how_to_write_it():
    msg = _usage_error(["--model=sam2.1_l.pt"])
    assert "model=sam2.1_l.pt" in msg


# ----------------------------------------------------------------------------- cfg files

def _write(path, data):
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data, encoding="utf-8")
    return path


def test_cfg_file_merge_and_precedence(tmp_path):
    cfg = _write(tmp_path / "my.yaml", {"imgsz": 512, "half": True, "model": "sam2.1_t.pt", "device": 0})
    args = resolve([f"cfg={cfg}", "imgsz=768"])
    assert args["imgsz"] == 768            # command line wins over the file
    assert args["half"] is True            # from the file
    assert args["model"] == "sam2.1_t.pt"  # from the file
    assert args["device"] == "0"           # file values are type-checked too
    assert args["cfg"] == str(cfg)
    assert args["conf"] == 0.25            # untouched default


def test_cfg_file_applies_before_earlier_cli_keys(tmp_path):
    cfg = _write(tmp_path / "my.yaml", {"imgsz": 512})
    assert resolve(["imgsz=768", f"cfg={cfg}"])["imgsz"] == 768  # position does not matter


def test_cfg_file_unknown_key_names_the_file(tmp_path):
    cfg = _write(tmp_path / "bad.yaml", {"modle": "x.pt"})
    msg = _usage_error([f"cfg={cfg}"])
    assert "'modle'" in msg and str(cfg) in msg and "Similar: model=" in msg


def test_cfg_file_bad_value_names_the_file(tmp_path):
    cfg = _write(tmp_path / "bad.yaml", "half: maybe\n")
    msg = _usage_error([f"cfg={cfg}"])
    assert "half=maybe" in msg and str(cfg) in msg and "expected true or false" in msg


def test_missing_cfg_file(tmp_path):
    missing = tmp_path / "nope.yaml"
    msg = _usage_error([f"cfg={missing}"])
    assert str(missing) in msg and "not found" in msg


@pytest.mark.parametrize("content, fragment", [
    ("imgsz: [1, 2\nhalf: true\n", "not valid yaml"),
    ("- a\n- b\n", "key: value"),
    ("cfg: other.yaml\n", "nested cfg"),
])
def test_broken_cfg_file(tmp_path, content, fragment):
    cfg = _write(tmp_path / "broken.yaml", content)
    assert fragment in _usage_error([f"cfg={cfg}"])


def test_empty_cfg_file(tmp_path):
    cfg = _write(tmp_path / "empty.yaml", "# nothing\n")
    assert {**resolve([f"cfg={cfg}"]), "cfg": None} == resolve([])  # every default unchanged


# ----------------------------------------------------------------------------- messages are one line

@pytest.mark.parametrize("argv", [
    ["modle=x"], ["zqxwv=1"], ["half=maybe"], ["imgsz=1000"], ["foo"], ["--model=x"],
    ["conf=1.5"], ["direction=up"], ["shard=9/4"], ["cfg=/definitely/missing.yaml"],
    ["imgsz=a\nb"], ["source=[1,\n2]"], ["line\nbreak"], ["x" * 500 + "=1"], ["half=" + "y" * 500],
])
def test_every_usage_error_is_one_line(argv):
    msg = _usage_error(argv)
    assert "\n" not in msg and "\r" not in msg and msg.strip() == msg and len(msg) < 300


def test_broken_yaml_error_is_one_line(tmp_path):
    cfg = _write(tmp_path / "broken.yaml", "a: [1,\n  b: {\n")
    msg = _usage_error([f"cfg={cfg}"])
    assert "\n" not in msg
    assert isinstance(UsageError(msg), SAM2Error)


# ----------------------------------------------------------------------------- sam2 cfg

def test_format_defaults_is_the_commented_file():
    text = format_defaults()
    assert text == default_path().read_text(encoding="utf-8")
    assert yaml.safe_load(text) == DEFAULTS
    assert format_defaults(DEFAULTS) == text


def test_format_defaults_with_resolved_values_keeps_comments():
    args = resolve(["imgsz=512", "points=[[400,370]]", "device=cuda:0", "name=2"])
    text = format_defaults(args)
    assert yaml.safe_load(text) == args
    line = next(ln for ln in text.splitlines() if ln.startswith("imgsz:"))
    assert line.startswith("imgsz: 512 ") and "# model input size" in line
    assert yaml.safe_load(format_defaults({**args, "extra": (1, 2)}))["extra"] == [1, 2]


def test_every_typed_option_is_an_argument_with_the_same_default():
    """The engine's typed options are the command line's arguments by name: a field the CLI
    cannot set, or whose default differs from cfg/default.yaml's, is a bug."""
    import dataclasses

    from sam2cli.cli.args import load_defaults, options_from
    from sam2cli.engine import options
    from sam2cli.train.options import TrainOptions

    defaults = load_defaults()
    python_only = {"max_clicks"}  # val's click budget: fixed by the protocol, settable from Python

    def leaves(cls):
        for f in dataclasses.fields(cls):
            if f.default_factory is not dataclasses.MISSING and dataclasses.is_dataclass(f.default_factory):
                yield from leaves(f.default_factory)
            else:
                yield f

    classes = [c for c in vars(options).values() if dataclasses.is_dataclass(c)] + [TrainOptions]
    for cls in classes:
        for f in leaves(cls):
            if f.name in python_only:
                continue
            assert f.name in defaults, f"{cls.__name__}.{f.name} is not a command-line argument"
            want = defaults[f.name]
            assert f.default == (None if want == "" else want), (cls.__name__, f.name, f.default, want)
        built = options_from(cls, defaults)
        assert built == cls(), cls.__name__  # the CLI's defaults give the options' defaults


@pytest.mark.parametrize("command, cls, argv, unused", [
    ("predict", "PredictOptions", ["epochs=3", "source=x.jpg"], ["epochs"]),
    ("track", "TrackOptions", ["det_model=a.pt", "int8=True", "tracker=samurai"], ["det_model", "int8"]),
    ("export", "ExportOptions", ["int8=True", "verbose=True"], []),
    ("val", "ValOptions", ["tracker=dam4sam", "data=d"], []),
])
def test_a_key_the_command_does_not_use_is_one_warning_naming_it(caplog, command, cls, argv, unused):
    from sam2cli.cli.args import command_options
    from sam2cli.engine import options
    with caplog.at_level("WARNING", logger="sam2cli"):
        opts = command_options(getattr(options, cls), argv, command)
    lines = [r.getMessage() for r in caplog.records]
    if unused:
        assert len(lines) == 1 and lines[0].startswith(f"sam2 {command} does not use {', '.join(unused)}:"), lines
    else:
        assert lines == []
    assert type(opts).__name__ == cls


def test_an_unknown_key_stays_a_usage_error():
    from sam2cli.cli.args import command_options
    from sam2cli.engine.options import PredictOptions
    with pytest.raises(UsageError, match="epoch"):
        command_options(PredictOptions, ["epoch=3"], "predict")


def test_sam2_predict_epochs_warns_in_the_cli(tmp_path, caplog):
    from sam2cli.cli.app import main
    with caplog.at_level("WARNING", logger="sam2cli"):
        rc = main(["predict", "model=sam2_demo.pt", f"source={tmp_path / 'missing.jpg'}", "epochs=3"])
    assert rc == 1  # the missing source still fails, after the warning
    assert [r.getMessage() for r in caplog.records if "does not use" in r.getMessage()] == [
        "sam2 predict does not use epochs: ignored (its arguments: sam2 help predict)"]
