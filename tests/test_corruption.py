"""Synthetic corruptions for defect-removal training (scae_tf.corruption)."""

from __future__ import annotations

import numpy as np
import pytest

from scae_tf.corruption import CORRUPTION_KINDS, corrupt, corrupt_batch, random_region, structure_weights


def _crop(height: int = 64, width: int = 192) -> np.ndarray:
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:height, 0:width]
    part = ((yy > 16) & (yy < 48) & (xx > 20) & (xx < 170)).astype(np.float32)
    return (0.8 - 0.5 * part + 0.02 * rng.normal(size=(height, width))).clip(0, 1).astype(np.float32)


@pytest.mark.parametrize("kind", CORRUPTION_KINDS)
def test_each_kind_changes_the_crop_only_where_its_mask_says(kind):
    crop = _crop()
    out, mask = corrupt(crop, np.random.default_rng(0), kinds=(kind,), count=(1, 1))
    assert out.shape == crop.shape and out.dtype == np.float32
    assert 0.0 <= out.min() and out.max() <= 1.0
    changed = np.abs(out - crop) > 1e-4
    assert changed.any(), f"{kind} changed nothing"
    assert not (changed & (mask <= 0)).any(), f"{kind} changed pixels outside its mask"
    assert changed.mean() < 0.2  # a local corruption, not a new image


def test_corruption_is_reproducible_and_keeps_channels():
    crop = np.repeat(_crop()[..., None], 3, axis=2)
    a, _ = corrupt(crop, np.random.default_rng(7))
    b, _ = corrupt(crop, np.random.default_rng(7))
    assert a.shape == crop.shape
    np.testing.assert_array_equal(a, b)


def test_regions_land_mostly_on_structure():
    crop = _crop()
    weights = structure_weights(crop)
    assert weights.sum() == pytest.approx(1.0)
    rng = np.random.default_rng(1)
    part = np.zeros(crop.shape, bool)
    part[10:55, 14:176] = True  # the part and its outline
    hits = [random_region(crop.shape, rng, weights=weights) for _ in range(60)]
    on_part = np.mean([float((h * part).sum() / max(h.sum(), 1e-6)) for h in hits])
    assert on_part > 0.6  # the part covers about 37 % of this crop


def test_batch_probability():
    crops = np.stack([_crop()[..., None]] * 40)
    assert np.array_equal(corrupt_batch(crops, 0, 0.0), crops)
    changed = np.abs(corrupt_batch(crops, 0, 0.5) - crops).reshape(40, -1).max(axis=1) > 1e-4
    assert 8 <= changed.sum() <= 32
    assert np.abs(corrupt_batch(crops, 0, 1.0) - crops).reshape(40, -1).max(axis=1).min() > 1e-4
