"""Shared fixtures: the real MVTec dev split (skipped when ../shared is absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
REAL_DEV = Path(os.environ.get("SCAE_REAL_DATA", REPO.parent / "shared" / "data" / "mvtec_screw_dev"))


@pytest.fixture(scope="session")
def real_data_root() -> Path:
    if not (REAL_DEV / "train" / "good").is_dir():
        pytest.skip(f"real MVTec screw dev split not found at {REAL_DEV}")
    return REAL_DEV
