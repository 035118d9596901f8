"""Find checkpoint files on disk, or download known ones.

``resolve_weights(name)`` turns what the user passed as ``model=`` into a file:
an existing path is used as is; a bare name is looked up in ``weights_dir()``
and ``./weights/``; a known checkpoint name (``cfg/weights.yaml``) is downloaded
into ``weights_dir()``.

Where weights live (``weights_dir()``), first match wins:
  1. the ``SAM2CLI_WEIGHTS_DIR`` environment variable;
  2. ``weights_dir:`` in ``settings.yaml`` inside ``$SAM2CLI_CONFIG_DIR``
     (default ``~/.config/sam2cli/``); a relative value is taken relative to
     that config directory;
  3. the repository's ``weights/`` directory when running from a source checkout;
  4. ``~/.cache/sam2cli/weights``.

Download mirrors / tests: set ``SAM2CLI_DOWNLOAD_BASE`` (e.g.
``http://127.0.0.1:8000/``) and every known URL is rewritten to
``$SAM2CLI_DOWNLOAD_BASE/<file name>``; sizes and checksums from the table
still apply.  ``known_weights()`` returns the table after that rewrite.
"""

from __future__ import annotations

import difflib
import hashlib
import http.client
import os
import urllib.error
import urllib.request
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Optional, Union

import yaml

from sam2cli.errors import SAM2Error, UsageError

_REPO_ROOT = Path(__file__).resolve().parents[2]
_TIMEOUT_S = 30.0
_CHUNK = 1 << 20


# --------------------------------------------------------------------------- table
@lru_cache(maxsize=1)
def _read_table_text() -> str:
    """Text of weights.yaml: package resource first, source checkout second."""
    try:
        return resources.files("sam2cli.cfg").joinpath("weights.yaml").read_text(encoding="utf-8")
    except (ImportError, OSError, TypeError, AttributeError):
        pass
    path = _REPO_ROOT / "cfg" / "weights.yaml"
    try:
        return path.read_text(encoding="utf-8")
    except OSError as e:
        raise SAM2Error(f"cannot read the checkpoint table {path} ({e.strerror or e}); reinstall sam2cli.") from e


def known_weights() -> dict[str, dict[str, Any]]:
    """Known checkpoint names -> {url, size, sha256}, with SAM2CLI_DOWNLOAD_BASE applied."""
    try:
        table = yaml.safe_load(_read_table_text())
    except yaml.YAMLError as e:
        raise SAM2Error(f"the checkpoint table weights.yaml is malformed ({_one_line(e)}); reinstall sam2cli.") from e
    if not isinstance(table, dict):
        raise SAM2Error("the checkpoint table weights.yaml is not a mapping; reinstall sam2cli.")
    base = os.environ.get("SAM2CLI_DOWNLOAD_BASE")
    out: dict[str, dict[str, Any]] = {}
    for name, entry in table.items():
        entry = dict(entry or {})
        if base:
            entry["url"] = base.rstrip("/") + "/" + str(name)
        out[str(name)] = {"url": entry.get("url"), "size": entry.get("size"), "sha256": entry.get("sha256")}
    return out


# ------------------------------------------------------------------------ settings
def config_dir() -> Path:
    """Directory holding settings.yaml: $SAM2CLI_CONFIG_DIR or ~/.config/sam2cli."""
    env = os.environ.get("SAM2CLI_CONFIG_DIR")
    return Path(env).expanduser() if env else Path.home() / ".config" / "sam2cli"


def load_settings() -> dict[str, Any]:
    """Contents of settings.yaml in config_dir(); an empty dict when the file is absent."""
    path = config_dir() / "settings.yaml"
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise SAM2Error(f"cannot read settings file {path} ({_one_line(e)}); fix or delete it.") from e
    except yaml.YAMLError as e:
        raise SAM2Error(f"settings file {path} is not valid YAML ({_one_line(e)}); fix or delete it.") from e
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SAM2Error(f"settings file {path} must be a YAML mapping (key: value lines); fix or delete it.")
    return data


def weights_dir() -> Path:
    """Directory that checkpoints are looked up in and downloaded to (see module docstring)."""
    env = os.environ.get("SAM2CLI_WEIGHTS_DIR")
    if env:
        return Path(env).expanduser()
    value = load_settings().get("weights_dir")
    if value is not None:
        if not isinstance(value, (str, os.PathLike)) or not str(value).strip():
            raise SAM2Error(
                f"weights_dir in {config_dir() / 'settings.yaml'} must be a directory path, got {value!r}; fix it."
            )
        p = Path(value).expanduser()
        return p if p.is_absolute() else config_dir() / p
    repo_weights = _REPO_ROOT / "weights"
    if repo_weights.is_dir() and (_REPO_ROOT / "pyproject.toml").is_file():
        return repo_weights
    return Path.home() / ".cache" / "sam2cli" / "weights"


# ---------------------------------------------------------------------- resolution
def bundled_weights_dir() -> Path:
    """Weights shipped with the package (the demo model): weights/ installed as sam2cli.weights."""
    try:
        pkg = Path(str(resources.files("sam2cli.weights")))
        if pkg.is_dir():
            return pkg
    except (ImportError, TypeError, ModuleNotFoundError):
        pass
    return _REPO_ROOT / "weights"


def resolve_weights(name: Union[str, os.PathLike], download: bool = True) -> Path:
    """Turn a path or checkpoint name into an existing file, downloading known names."""
    raw = os.fspath(name)
    if not str(raw).strip():
        raise UsageError("no model given; pass model=<checkpoint name or path>, e.g. model=sam2.1_b.pt.")
    path = Path(raw).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        raise SAM2Error(f"model {raw!r} is a directory, not a checkpoint file; pass the .pt file inside it.")
    base = path.name
    wdir = weights_dir()
    for candidate in (wdir / base, Path.cwd() / "weights" / base, bundled_weights_dir() / base):
        if candidate.is_file():
            return candidate
    table = known_weights()
    if len(path.parts) > 1:
        hint = f" ({base} is a known checkpoint: pass just model={base} to download it)" if base in table else ""
        raise SAM2Error(f"no such file: {raw}{hint}")
    if base in table:
        entry = table[base]
        dest = wdir / base
        if not download:
            raise SAM2Error(
                f"model {base!r} is not in {wdir} and downloading is disabled; "
                f"download {entry['url']} and put it at {dest}, or pass model=/path/to/file."
            )
        return _download_known(base, entry, dest)
    known = sorted(table)
    similar = difflib.get_close_matches(base, known, n=3, cutoff=0.6)
    msg = f"model {raw!r} not found: no such file, and it is not a known checkpoint name (known: {', '.join(known)}"
    if similar:
        msg += f"; similar: {', '.join(similar)}"
    raise SAM2Error(msg + ")")


def _download_known(name: str, entry: dict[str, Any], dest: Path) -> Path:
    if not entry.get("url"):
        raise SAM2Error(f"known checkpoint {name} has no url in weights.yaml; reinstall sam2cli.")
    download(entry["url"], dest, size=entry.get("size"), sha256=entry.get("sha256"))
    return dest


# ------------------------------------------------------------------------ download
def download(url: str, dest: Union[str, os.PathLike], size: Optional[int] = None, sha256: Optional[str] = None) -> Path:
    """Stream url to dest via dest.part, check size/sha256, then atomically rename."""
    dest = Path(dest)
    part = dest.with_suffix(dest.suffix + ".part")
    offline = (
        f"Download it on a machine with internet access and put it at {dest}, or pass model=/path/to/file."
    )
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SAM2Error(
            f"cannot create weights directory {dest.parent} ({_one_line(e)}); "
            "set SAM2CLI_WEIGHTS_DIR to a writable directory."
        ) from e
    try:
        try:
            got, digest, expected = _fetch(url, part, dest.name)
        except _WriteError as e:
            raise SAM2Error(
                f"cannot write {part} ({_one_line(e.__cause__ or e)}); "
                "free disk space or set SAM2CLI_WEIGHTS_DIR to a writable directory."
            ) from e
        except (OSError, ValueError, http.client.HTTPException) as e:
            raise SAM2Error(f"could not download {dest.name} from {url} ({_reason(e)}). {offline}") from e
        want = size if size is not None else expected
        if want is not None and got != int(want):
            raise SAM2Error(
                f"downloaded {dest.name} is {got} bytes, expected {int(want)}; "
                "the download was incomplete or corrupt — try again."
            )
        if sha256 and digest.lower() != str(sha256).lower():
            raise SAM2Error(
                f"downloaded {dest.name} has sha256 {digest}, expected {sha256}; "
                "the download was incomplete or corrupt — try again."
            )
        try:
            os.replace(part, dest)
        except OSError as e:
            raise SAM2Error(f"cannot move {part} to {dest} ({_one_line(e)}); check permissions.") from e
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return dest


class _WriteError(OSError):
    """Local write failure while downloading (as opposed to a network failure)."""


def _fetch(url: str, part: Path, label: str) -> tuple[int, str, Optional[int]]:
    """Download url into part; return (bytes written, sha256 hex, Content-Length or None)."""
    from rich.console import Console
    from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn,
                               TimeRemainingColumn, TransferSpeedColumn)

    req = urllib.request.Request(url, headers={"User-Agent": "sam2cli"})
    h = hashlib.sha256()
    got = 0
    with urllib.request.urlopen(req, timeout=_TIMEOUT_S) as resp:
        length = resp.headers.get("Content-Length")
        expected = int(length) if length and length.strip().isdigit() else None
        progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(),
            TransferSpeedColumn(), TimeRemainingColumn(),
            console=Console(stderr=True), transient=True,
        )
        try:
            f = open(part, "wb")
        except OSError as e:
            raise _WriteError(str(e)) from e
        with f, progress:
            task = progress.add_task(label, total=expected)
            while True:
                chunk = resp.read(_CHUNK)
                if not chunk:
                    break
                try:
                    f.write(chunk)
                except OSError as e:
                    raise _WriteError(str(e)) from e
                h.update(chunk)
                got += len(chunk)
                progress.update(task, advance=len(chunk))
    return got, h.hexdigest(), expected


def _reason(e: BaseException) -> str:
    """Short reason for a network failure."""
    if isinstance(e, urllib.error.HTTPError):
        return f"HTTP {e.code} {e.reason}".strip()
    if isinstance(e, urllib.error.URLError):
        r = e.reason
        return _one_line(r) if isinstance(r, BaseException) else str(r)
    return _one_line(e)


def _one_line(e: object) -> str:
    """Message of an exception (or anything) collapsed onto a single line."""
    if isinstance(e, OSError) and e.strerror:
        text = e.strerror
    else:
        text = str(e) or type(e).__name__
    return " ".join(text.split())
