"""Locate the files under cfg/ whether sam2cli runs installed or from a source checkout."""

from importlib import resources
from pathlib import Path

_REPO_CFG = Path(__file__).resolve().parents[2] / "cfg"


def cfg_dir() -> Path:
    """The directory holding default.yaml, weights.yaml and models/."""
    try:
        pkg = Path(str(resources.files("sam2cli.cfg")))
        if (pkg / "models").is_dir():
            return pkg
    except (ImportError, TypeError, ModuleNotFoundError):
        pass
    return _REPO_CFG
