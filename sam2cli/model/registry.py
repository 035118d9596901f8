"""The model registry: every cfg/models/*.yaml (not starting with '_') is one model config.

A model yaml may `inherit:` base files (merged in order, the model's own keys last). The variants
are data; `config.py` beside this file is their schema.
"""

import difflib
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Dict, Union

import yaml

from sam2cli.errors import SAM2Error, UsageError
from .config import ModelConfig

_REPO_CFG = Path(__file__).resolve().parents[2] / "cfg"


def cfg_dir() -> Path:
    """The directory holding default.yaml, weights.yaml and models/, installed or in a checkout."""
    try:
        pkg = Path(str(resources.files("sam2cli.cfg")))
        if (pkg / "models").is_dir():
            return pkg
    except (ImportError, TypeError, ModuleNotFoundError):
        pass
    return _REPO_CFG


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def read_config_file(path: Path) -> dict:
    """A model yaml with its `inherit:` chain resolved (relative to its own folder)."""
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        raise SAM2Error(f"cannot read model config {path}: {e}") from e
    merged: dict = {}
    for base in data.get("inherit", []):
        merged = _merge(merged, read_config_file(path.parent / base))
    return _merge(merged, data)


def load_config_file(path: Union[str, Path]) -> ModelConfig:
    path = Path(path)
    try:
        return ModelConfig.from_dict(read_config_file(path))
    except (KeyError, TypeError) as e:
        raise SAM2Error(f"model config {path} is invalid: {e}") from e


@lru_cache(maxsize=None)
def registry() -> Dict[str, ModelConfig]:
    """Config name -> ModelConfig for every model in cfg/models."""
    models = sorted(p for p in (cfg_dir() / "models").glob("*.yaml") if not p.name.startswith("_"))
    return {cfg.name: cfg for cfg in map(load_config_file, models)}


def get_config(name: str) -> ModelConfig:
    """Look a config up by name (`sam2.1_hiera_t`), alias (`sam2.1_t.pt`) or yaml path."""
    if name.endswith((".yaml", ".yml")) and Path(name).is_file():
        return load_config_file(name)
    reg = registry()
    key = Path(name).name
    for cfg in reg.values():
        if key in (cfg.name, cfg.name + ".yaml") or key in cfg.aliases or key + ".pt" in cfg.aliases:
            return cfg
    close = difflib.get_close_matches(key, list(reg) + [a for c in reg.values() for a in c.aliases], n=3)
    hint = f" Similar: {', '.join(close)}." if close else f" Known: {', '.join(reg)}."
    raise UsageError(f"unknown model config '{name}'.{hint}")
