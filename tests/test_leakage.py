"""Leakage measure (scae_tf.evaluation.leakage): 1 for a CAE that copies, 0 for one that removes."""

from __future__ import annotations

import numpy as np
import pytest

from scae_tf.config import PostprocessConfig
from scae_tf.evaluation.leakage import crop_leakage, summarise


def _crop() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:64, 0:192]
    mask = (yy > 12) & (yy < 52) & (xx > 16) & (xx < 176)
    crop = np.where(mask, 0.35 + 0.05 * np.sin(xx / 3.0), 0.8) + 0.01 * rng.normal(size=mask.shape)
    return crop.astype(np.float32), mask


class _Pipeline:
    def __init__(self, reconstruct):
        self.config = PostprocessConfig()
        self.backend = type("Backend", (), {"reconstruct": staticmethod(reconstruct)})()


@pytest.mark.parametrize("kind", ["scratch", "pit", "contamination"])
def test_identity_copies_everything_and_a_fixed_part_nothing(kind):
    crop, mask = _crop()
    copier = crop_leakage(_Pipeline(lambda x: x), crop, mask, kind, np.random.default_rng(1))
    assert copier.copied == pytest.approx(1.0, abs=1e-5)
    remover = crop_leakage(_Pipeline(lambda x: crop), crop, mask, kind, np.random.default_rng(1))
    assert remover.copied == pytest.approx(0.0, abs=1e-6)
    assert remover.contrast > 5 * max(copier.contrast, 1e-3)  # the defect stands out only when removed


def test_half_copy_is_measured_as_half():
    crop, mask = _crop()
    half = crop_leakage(_Pipeline(lambda x: 0.5 * (x + crop)), crop, mask, "dent", np.random.default_rng(2))
    assert half.copied == pytest.approx(0.5, abs=1e-4)


def test_summary_reports_medians_per_kind():
    crop, mask = _crop()
    rng = np.random.default_rng(3)
    samples = [crop_leakage(_Pipeline(lambda x: crop), crop, mask, k, rng) for k in ("pit", "pit", "scratch")]
    report = summarise(samples, ("pit", "scratch", "dent"))
    assert report["all"]["n"] == 3 and report["per_kind"]["pit"]["n"] == 2
    assert report["per_kind"]["dent"] == {"n": 0, "copied": None, "contrast": None}
