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


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> Path:
    """A tiny synthetic screw category (128 px; 6 train, 2 test good, 2 per defect type), made once."""
    from scae_tf.synthetic import generate_dataset

    return generate_dataset(tmp_path_factory.mktemp("synthetic") / "screw", seed=7, size=128, n_train=6, n_test_good=2, n_per_defect=2)
