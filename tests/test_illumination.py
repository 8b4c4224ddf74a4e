"""Illumination normalisation: global brightness/contrast changes must not reach the CAE."""

from __future__ import annotations

import numpy as np
import pytest

from scae_tf.errors import ScaeError
from scae_tf.illumination import (
    IlluminationReference,
    fit_illumination_reference,
    normalize_illumination,
    object_statistics,
)
from scae_tf.imageio import read_image
from scae_tf.pose import estimate_pose, warp_to_crop
from scae_tf.segmentation_targets import classical_object_mask

REFERENCE = IlluminationReference(object_level=0.35, object_spread=0.2, background_median=0.8)
CHANGES = [(0.9, 0.0), (1.1, 0.0), (1.0, 0.1), (1.0, -0.1), (0.9, 0.05), (1.1, -0.05)]


def camera(image: np.ndarray, gain: float, offset: float) -> np.ndarray:
    """A global brightness/contrast change as a camera would record it (clipped, 8-bit)."""
    return (np.round(np.clip(gain * image + offset, 0.0, 1.0) * 255.0) / 255.0).astype(np.float32)


def synthetic_crop(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    crop = np.full((48, 144), 0.78, np.float32) + rng.normal(0, 0.01, (48, 144)).astype(np.float32)
    mask = np.zeros((48, 144), bool)
    mask[16:32, 10:134] = True
    stripes = 0.35 + 0.1 * np.sin(np.arange(144) / 3.0)[None, :]
    crop[mask] = (stripes + rng.normal(0, 0.02, (48, 144)))[mask]
    return np.clip(crop, 0, 1), mask


@pytest.mark.parametrize(("gain", "offset"), CHANGES)
def test_global_change_cancels_on_synthetic_crop(gain, offset):
    crop, mask = synthetic_crop()
    base = normalize_illumination(camera(crop, 1.0, 0.0), mask, REFERENCE)
    changed = normalize_illumination(camera(crop, gain, offset), mask, REFERENCE)
    assert changed.dtype == np.float32 and changed.shape == crop.shape
    assert np.abs(changed - base).max() < 0.02


def test_normalised_object_matches_reference_and_stays_in_range():
    crop, mask = synthetic_crop(1)
    out = normalize_illumination(crop * 0.5, mask, REFERENCE)
    level, spread = object_statistics(out, mask)
    assert abs(level - REFERENCE.object_level) < 1e-3
    assert abs(spread - REFERENCE.object_spread) < 1e-3
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_flat_crop_is_not_amplified():
    flat = np.full((20, 30), 0.5, np.float32)
    out = normalize_illumination(flat, np.ones((20, 30), bool), REFERENCE)
    assert np.isfinite(out).all() and np.ptp(out) == 0.0


def test_fit_reference_uses_medians_over_crops():
    crops, masks = zip(*(synthetic_crop(seed) for seed in range(5)), strict=True)
    ref = fit_illumination_reference(list(crops), list(masks))
    assert 0.2 < ref.object_level < 0.4
    assert ref.object_spread > 0
    assert abs(ref.background_median - 0.78) < 0.01
    assert IlluminationReference.from_dict(ref.to_dict()) == ref


def test_malformed_reference_is_a_user_error():
    with pytest.raises(ScaeError):
        IlluminationReference.from_dict({"object_level": 0.3})
    with pytest.raises(ScaeError):
        IlluminationReference.from_dict({"object_level": 0.3, "object_spread": 0.0, "background_median": 0.8})


@pytest.mark.real_data
def test_global_change_cancels_on_real_screws(real_data_root):
    paths = sorted((real_data_root / "train" / "good").glob("*.png"))[:3]
    for path in paths:
        work = read_image(path)
        mask = classical_object_mask(work)
        pose = estimate_pose(mask, (128, 384), 0.9)
        crop_mask = warp_to_crop(mask, pose)
        base = normalize_illumination(warp_to_crop(work, pose), crop_mask, REFERENCE)
        for gain, offset in CHANGES:
            changed = normalize_illumination(warp_to_crop(camera(work, gain, offset), pose), crop_mask, REFERENCE)
            assert np.abs(changed - base).max() < 0.03, (path.name, gain, offset)
