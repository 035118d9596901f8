"""key=value command-line arguments: parse, merge with cfg/default.yaml and a cfg= file, check.

    sam2 predict model=sam2.1_l.pt source=img.jpg points=[[400,370],[900,370]] half=true

Every subcommand calls `resolve(argv)` and gets the full, checked argument dict back:
defaults, then the keys of a `cfg=FILE.yaml` file, then the command line (last one wins).
Every problem raises `UsageError` with a one-line message that says how to fix it.
"""

from __future__ import annotations

import ast
import difflib
import re
from pathlib import Path
from typing import Any, Callable, Iterable

import yaml

from sam2cli.errors import SAM2Error, UsageError
from sam2cli.model.registry import cfg_dir

EXAMPLE = "sam2 predict model=sam2.1_b.pt source=img.jpg"
_WORDS = {"true": True, "false": False, "null": None, "none": None}

# Keys whose default is null but which, when set, hold one kind of value.
# Other null-default keys (points, labels, bboxes, obj_ids, classes, compare, det_labels) take anything.
NULLABLE_TYPES: dict[str, type] = {
    "source": str, "cfg": str, "format": str, "masks": str, "prompts": str, "name": str,
    "data": str, "output_dir": str, "shard": str, "max_frames": int, "imgsz": int, "output": str,
    "task": str,
}
# Text keys that also take a list, kept as one comma-joined text (train's data=[images.yaml,videos/]).
JOINED = {"data"}
# Keys that take one value, or a list of them: one per `data=` entry (train's batch=[4,16]).
PER_DATASET = {"batch"}


def _at_least(n: int) -> tuple[Callable[[Any], bool], str]:
    return (lambda v: v >= n), f"must be >= {n}"


def _between(lo: float, hi: float) -> tuple[Callable[[Any], bool], str]:
    return (lambda v: lo <= v <= hi), f"must be between {lo} and {hi}"


RANGES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "imgsz": ((lambda v: v > 0 and v % 16 == 0), "must be a positive multiple of 16, e.g. 1024"),
    "vid_stride": _at_least(1), "points_per_side": _at_least(1), "points_per_batch": _at_least(1),
    "crop_n_layers": _at_least(0), "crop_n_points_downscale_factor": _at_least(1),
    "crop_overlap_ratio": ((lambda v: 0 <= v < 1), "must be >= 0 and < 1"),
    "min_mask_region_area": _at_least(0), "frame": _at_least(0), "max_frames": _at_least(1),
    "line_width": _at_least(1), "max_det": _at_least(1), "workers": _at_least(1),
    "runs": _at_least(1), "warmup": _at_least(0), "batch": _at_least(1), **{k: _between(0, 1) for k in ("pred_iou_thresh", "stability_score_thresh", "box_nms_thresh",
                                   "crop_nms_thresh", "conf", "iou")},
}
CHOICES: dict[str, tuple[str, ...]] = {
    "direction": ("forward", "backward", "both"),
    "tracker": ("sam2", "samurai", "dam4sam"),
    "mask_format": ("binary", "palette"),
    "format": ("jsonl", "json", "onnx"),  # or null; json: benchmark rows; onnx: sam2 export
    "engine": ("local", "ray"),
    "task": ("vos", "image", "interactive"),  # or null: sam2 val picks it from the data
}
_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


# ----------------------------------------------------------------------------- defaults

def default_path() -> Path:
    """cfg/default.yaml, installed or in a source checkout."""
    return cfg_dir() / "default.yaml"


def load_defaults() -> dict:
    """All arguments with their default values, read from cfg/default.yaml."""
    path = default_path()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise SAM2Error(f"cannot read the default arguments {path} ({_one_line(e)}): reinstall sam2cli")
    if not isinstance(data, dict):
        raise SAM2Error(f"{path} does not hold key: value pairs: reinstall sam2cli")
    return data


# ----------------------------------------------------------------------------- parsing

def parse_value(text: str) -> Any:
    """'1024' -> 1024, '0.5' -> 0.5, 'true'/'False' -> bool, 'null'/'None' -> None,
    '[[400,370],[900,370]]' -> nested list, "'a b'" -> 'a b'; anything else stays a string."""
    s = text.strip()
    if s.lower() in _WORDS:
        return _WORDS[s.lower()]
    try:
        return ast.literal_eval(s)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        pass
    if s[:1] in "[{":  # yaml flow collections, e.g. [a.jpg, b.jpg] or [true, false]
        try:
            value = yaml.safe_load(s)
        except yaml.YAMLError:
            value = None
        if isinstance(value, (list, dict)):
            return value
    return s


def parse_args(argv: Iterable[str], defaults: dict) -> dict:
    """The overrides given by `argv` (key=value items): the keys of a cfg= file first,
    then the command line on top (a repeated key: the last one wins). Values are parsed,
    not yet type-checked (see check_types)."""
    cli: dict[str, Any] = {}
    for item in argv:
        key, value = _split(item, defaults)
        cli[key] = value
    merged: dict[str, Any] = {}
    if cli.get("cfg") is not None:
        merged.update(load_cfg_file(cli["cfg"], defaults))
    merged.update(cli)
    return merged


def _split(item: str, defaults: dict) -> tuple[str, Any]:
    key, sep, text = str(item).partition("=")
    key = key.strip()
    if not sep or not key or any(c.isspace() for c in key):
        raise UsageError(f"'{_clip(item)}' is not a key=value argument. Example: {EXAMPLE}")
    if key.startswith("-"):
        bare = key.lstrip("-").replace("-", "_")
        raise UsageError(f"'{_clip(key)}' has dashes: write arguments as key=value, e.g. {_clip(bare)}={_clip(text)}")
    key = _known_key(key, defaults)
    value = parse_value(text)
    kind, _ = _kind(key, defaults)
    if kind is str and _is_numberish(value):
        value = text.strip()  # device=0 -> '0', name=1.10 -> '1.10', device=0,1 -> '0,1'
    return key, value


def load_cfg_file(path: Any, defaults: dict) -> dict:
    """The checked key: value pairs of a yaml cfg file; unknown keys are an error naming the file."""
    p = Path(str(path)).expanduser()
    if not p.is_file():
        what = "is a directory" if p.is_dir() else "not found"
        raise UsageError(f"cfg file {p} {what}: give cfg= the path of an existing .yaml file")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise UsageError(f"cfg file {p} is not valid yaml ({_one_line(e)}): fix the file")
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read cfg file {p} ({_one_line(e)}): check the file")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageError(f"cfg file {p} must hold 'key: value' lines, not a {type(data).__name__}: fix the file")
    out: dict[str, Any] = {}
    for raw_key, value in data.items():
        key = _known_key(str(raw_key), defaults, where=f" in {p}")
        if key == "cfg":
            raise UsageError(f"cfg file {p} sets cfg itself: nested cfg files are not supported, remove that line")
        out[key] = _check_one(key, value, defaults, where=f" in {p}")
    return out


# ----------------------------------------------------------------------------- checking

def check_types(args: dict, defaults: dict) -> dict:
    """A copy of `args` with each value checked against its default's type and allowed range.
    Integral floats become int for int keys, ints become float for float keys, numbers become
    strings for string keys. Raises UsageError for the first bad value."""
    return {key: _check_one(_known_key(key, defaults), value, defaults) for key, value in args.items()}


def _kind(key: str, defaults: dict) -> tuple[type | None, bool]:
    """(expected type or None for anything, whether null is allowed)."""
    default = defaults.get(key)
    if default is None:
        return NULLABLE_TYPES.get(key), True
    return type(default), False


def _check_one(key: str, value: Any, defaults: dict, where: str = "") -> Any:
    if key in PER_DATASET and isinstance(value, (list, tuple)) and value:
        return [_check_one(key, v, defaults, where) for v in value]
    kind, nullable = _kind(key, defaults)
    shown = f"{key}={_fmt(value)}{where}"
    if kind is None or (value is None and nullable):
        return value
    if kind is bool:
        if not isinstance(value, bool):
            raise UsageError(f"{shown} is not valid: expected true or false")
    elif kind is int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise UsageError(f"{shown} is not valid: expected a whole number{' or null' if nullable else ''}")
    elif kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UsageError(f"{shown} is not valid: expected a number")
        value = float(value)
    elif kind is str:
        if key in JOINED and isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            value = ",".join(value)  # data=[a,b] is data=a,b
        if _is_numberish(value):
            value = ",".join(map(str, value)) if isinstance(value, tuple) else str(value)
        if not isinstance(value, str):
            raise UsageError(f"{shown} is not valid: expected a text value{' or null' if nullable else ''}")
    if key in CHOICES and isinstance(value, str):
        choice = value.strip().lower()
        if choice not in CHOICES[key]:
            allowed = (("null",) if nullable else ()) + CHOICES[key]
            raise UsageError(f"{shown} is not valid: expected one of {', '.join(allowed)}")
        value = choice
    if key in RANGES and isinstance(value, (int, float)) and not isinstance(value, bool):
        ok, rule = RANGES[key]
        if not ok(value):
            raise UsageError(f"{shown} is out of range: {rule}")
    if key == "shard" and isinstance(value, str):
        m = _SHARD.match(value)
        if not m or not int(m[1]) < int(m[2]):
            raise UsageError(f"{shown} is not valid: expected i/n with 0 <= i < n, e.g. shard=0/4")
        value = f"{int(m[1])}/{int(m[2])}"
    return value


def _known_key(key: str, defaults: dict, where: str = "") -> str:
    if key in defaults:
        return key
    if key.replace("-", "_") in defaults:  # points-per-side=16 is points_per_side=16
        return key.replace("-", "_")
    close = difflib.get_close_matches(key.lower().replace("-", "_"), list(defaults), n=3, cutoff=0.6)
    if close:
        hint = "Similar: " + ", ".join(f"{k}={_fmt(defaults[k])}" for k in close)
    else:
        hint = "See 'sam2 cfg' for all arguments"
    raise UsageError(f"'{_clip(key)}'{where} is not a valid argument. {hint}")


def _is_numberish(value: Any) -> bool:
    """A number (not a bool), or a tuple of numbers such as device=0,1 parses to."""
    if isinstance(value, tuple):
        return bool(value) and all(_is_numberish(v) for v in value)
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# ----------------------------------------------------------------------------- public entry

def resolve(argv: Iterable[str], defaults: dict | None = None) -> dict:
    """Defaults, then cfg= file, then the command line; every key present and checked."""
    base = load_defaults() if defaults is None else dict(defaults)
    merged = {**base, **parse_args(list(argv), base)}
    return check_types(merged, base)


ALWAYS_USED = frozenset({"cfg", "verbose"})  # read by the command line itself, for every command


def option_keys(cls: type) -> set:
    """The argument names a command's typed options read, nested options included."""
    import dataclasses
    keys = set()
    for f in dataclasses.fields(cls):
        nested = f.default_factory if f.default_factory is not dataclasses.MISSING else None
        keys |= option_keys(nested) if dataclasses.is_dataclass(nested) else {f.name}
    return keys


def command_options(cls: type, argv: Iterable[str], command: str) -> Any:
    """`cls` built from the arguments (as `resolve` then `options_from`); a known key given on
    the command line that the command does not read is one warning line naming the command
    (keys from a cfg= file are not: one file may serve several commands)."""
    argv = list(argv)
    base = load_defaults()
    given = {_split(item, base)[0] for item in argv}
    unused = sorted(given - option_keys(cls) - ALWAYS_USED)
    if unused:
        import logging
        logging.getLogger("sam2cli").warning(
            f"sam2 {command} does not use {', '.join(unused)}: ignored (its arguments: sam2 help {command})")
    return options_from(cls, resolve(argv, base))


# ----------------------------------------------------------------------------- display

def _fmt(value: Any) -> str:
    """A value as a user would type it, on one line, clipped."""
    if value is None:
        s = "null"
    elif isinstance(value, bool):
        s = "true" if value else "false"
    elif isinstance(value, str):
        s = value if value else "''"
    elif isinstance(value, (list, tuple, dict)):
        s = repr(value).replace(" ", "")
    else:
        s = repr(value)
    return _clip(s)


def _clip(text: Any, limit: int = 60) -> str:
    s = str(text)
    if not s.isprintable():
        s = repr(s)[1:-1]
    return s if len(s) <= limit else s[: limit - 3] + "..."


def _one_line(error: Any) -> str:
    return _clip(" ".join(str(error).split()), 160)


def _yaml_inline(value: Any) -> str:
    def plain(v: Any) -> Any:
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {str(k): plain(x) for k, x in v.items()}
        return v if v is None or isinstance(v, (bool, int, float, str)) else str(v)

    out = yaml.safe_dump(plain(value), default_flow_style=True, width=10**9, sort_keys=False).strip()
    return out[:-3].strip() if out.endswith("\n...") else out


_LINE = re.compile(r"^(?P<key>[A-Za-z_]\w*):[^#]*?(?P<comment>\s#.*)?$")


def format_defaults(defaults: dict | None = None) -> str:
    """cfg/default.yaml with its comments, for `sam2 cfg`. With `defaults`, the values on the
    key lines are replaced by those (e.g. the resolved arguments); extra keys go at the end."""
    text = default_path().read_text(encoding="utf-8")
    if defaults is None:
        return text
    file_values = yaml.safe_load(text) or {}
    lines, seen = [], set()
    for line in text.splitlines():
        m = _LINE.match(line)
        key = m["key"] if m else None
        if key in defaults:
            seen.add(key)
            new, old = defaults[key], file_values.get(key)
            if type(new) is not type(old) or new != old:
                head = f"{key}: {_yaml_inline(new)}"
                comment = (m["comment"] or "").lstrip()
                col = m.start("comment") + 1 if m["comment"] else 0
                line = f"{head:<{col - 1}} {comment}" if comment else head
        lines.append(line)
    extra = [f"{k}: {_yaml_inline(v)}" for k, v in defaults.items() if k not in seen]
    if extra:
        lines += ["", "# --- other ---", *extra]
    return "\n".join(lines) + "\n"


def options_from(cls: type, args: dict) -> Any:
    """The engine's typed options (a dataclass of `sam2cli.engine.options`) from resolved
    arguments: each field takes the argument of its name ('' where the field's default is None
    becomes None); a nested options field is built from the same arguments."""
    import dataclasses

    kw: dict = {}
    for f in dataclasses.fields(cls):
        nested = f.default_factory if f.default_factory is not dataclasses.MISSING else None
        if dataclasses.is_dataclass(nested):
            kw[f.name] = options_from(nested, args)
        elif f.name in args:
            value = args[f.name]
            kw[f.name] = None if value == "" and f.default is None else value
    return cls(**kw)
