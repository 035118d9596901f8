"""Training-free tracker policies, `tracker=sam2|samurai|dam4sam` (engine/tracker.py asks them).

    policy = make_policy("samurai")                  # hyperparameters from cfg/trackers/samurai.yaml
    policy = make_policy("dam4sam", box_ratio=0.6)   # one overridden
    tracker = Tracker(model, policy=policy)

`sam2` is the reference's rule, exactly. `samurai` (policies/samurai.py) chooses among the
decoder's 3 candidates with a Kalman filter's box and keeps only confident frames in memory;
`dam4sam` (policies/dam4sam.py) keeps recent appearances that skip absent frames plus anchor
frames taken when an alternative candidate reveals a look-alike. The protocol and the per-object
state are in policies/base.py; the filter and box helpers in policies/kalman.py.
"""

from functools import lru_cache
from typing import Dict

import yaml

from sam2cli.errors import UsageError
from .base import Policy
from .dam4sam import Dam4Sam
from .kalman import KalmanBox, box_iou, mask_box
from .samurai import Samurai

POLICIES = {"sam2": Policy, "samurai": Samurai, "dam4sam": Dam4Sam}

__all__ = ["POLICIES", "Policy", "Samurai", "Dam4Sam", "KalmanBox", "box_iou", "mask_box", "make_policy",
           "tracker_params"]


@lru_cache(maxsize=None)
def _params_file(name: str) -> Dict:
    from sam2cli.model.registry import cfg_dir
    path = cfg_dir() / "trackers" / f"{name}.yaml"
    if not path.is_file():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise UsageError(f"{path} must be a mapping of hyperparameters")
    return data


def tracker_params(name: str) -> Dict:
    """The hyperparameters of a policy as cfg/trackers/<name>.yaml gives them (sam2: none)."""
    return {k: v for k, v in _params_file(name).items() if k != "name"}


def make_policy(name: str, **overrides) -> Policy:
    """A fresh policy for one tracker (one video): `name` is sam2, samurai or dam4sam; keyword
    arguments override the yaml's hyperparameters."""
    key = str(name or "sam2").strip().lower()
    if key not in POLICIES:
        raise UsageError(f"tracker={name!r} is not a tracker policy: choose {', '.join(POLICIES)}")
    params = {**tracker_params(key), **overrides}
    try:
        return POLICIES[key](**params)
    except TypeError as e:
        raise UsageError(f"tracker={key}: bad hyperparameters in cfg/trackers/{key}.yaml or overrides ({e})") from None
