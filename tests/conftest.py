"""Shared fixtures: where the real datasets are, and how their absence is handled.

Tests that read ``../shared/data`` skip with a reason on a user's machine
(where the folder is absent) and fail in CI (``CI=true``), where skipping
would hide a regression.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def _require(path: Path, what: str) -> Path:
    if path.is_dir():
        return path
    msg = f"{what} not found at {path} (the shared datasets sit beside the project root)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{msg}; CI must have them")
    pytest.skip(msg)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The ``../shared/data`` folder."""
    return _require(SHARED_DATA, "shared data folder")


@pytest.fixture(scope="session")
def jtsc_root(shared_data: Path) -> Path:
    """Root of the JTSC set (``Dataset 1``)."""
    return _require(shared_data / "segmentation_WBC", "JTSC dataset")


@pytest.fixture(scope="session")
def all_idb2_root(shared_data: Path) -> Path:
    """Root of ALL-IDB2."""
    return _require(shared_data / "ALL_IDB2", "ALL-IDB2 dataset")


@pytest.fixture(scope="session")
def bloodseg_root(shared_data: Path) -> Path:
    """Root of SMC_IDB / BloodSeg."""
    return _require(shared_data / "BloodSeg", "BloodSeg (SMC_IDB) dataset")


# The suite runs on the CPU even on a GPU machine: its bit-exact assertions hold only there
# (leukolib.device.select_device reads this when a caller names no device). Tests of the GPU
# path name their device and carry the ``gpu`` marker.
os.environ["LEUKOLIB_DEVICE"] = "cpu"


def pytest_collection_modifyitems(config, items):
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
