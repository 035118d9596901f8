"""Plumbing: the package list, which pyproject.toml cannot compute. The code packages are found
under sam2cli/ (so a new sub-package can never be left out of the wheel); cfg/ and weights/ sit at
the top of the checkout and install as sam2cli.cfg, sam2cli.cfg.models, sam2cli.cfg.trackers and
sam2cli.weights."""

from setuptools import find_packages, setup

DATA_PACKAGES = {"sam2cli.cfg": "cfg", "sam2cli.cfg.models": "cfg/models", "sam2cli.cfg.trackers": "cfg/trackers",
                 "sam2cli.weights": "weights"}

setup(
    packages=find_packages(include=["sam2cli", "sam2cli.*"]) + list(DATA_PACKAGES),
    package_dir=DATA_PACKAGES,
    package_data={"sam2cli.cfg": ["*.yaml"], "sam2cli.cfg.models": ["*.yaml"], "sam2cli.cfg.trackers": ["*.yaml"],
                  "sam2cli.weights": ["*.pt"],
                  "sam2cli.engine.app": ["static/*", "static/**/*"]},
)
