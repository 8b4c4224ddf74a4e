"""A colour part's squared error with its colour differences weighted as much as its brightness ones
(scae_tf/colour.py): a stain of another hue but the same brightness stands out of a part whose CAE misses
the brightness more than the hue, the weights are fitted on good parts and travel in calibration.json, and
gray parts and older files keep the plain channel mean."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pytest

from scae_tf.calibration import LEGACY_FIELD_VALUES, Calibration, calibrate
from scae_tf.colour import MAX_WEIGHT, OPPONENT, ColourBalance, fit_colour_balance, opponent
from scae_tf.config import PostprocessConfig, to_dict
from scae_tf.errors import ScaeError
from scae_tf.references import GoodReferences, part_residual
from scae_tf.residual import residual_map

SHAPE = (48, 64)
MASK = np.zeros(SHAPE, bool)
MASK[6:42, 6:58] = True
PART_COLOUR = np.float32([0.55, 0.35, 0.2])  # a brown cap
POST = PostprocessConfig(patch_size=8, patch_stride=4, zones=2, analysis_dilation=0, threshold_method="quantile", reference_neighbours=0)


def colour_part(rng: np.random.Generator, stain: bool = False) -> np.ndarray:
    """A flat colour part on a dark background with brightness grain (the same in all three channels)."""
    image = np.full(SHAPE + (3,), 0.08, np.float32)
    grain = 1.0 + 0.15 * rng.standard_normal(SHAPE).astype(np.float32)
    image[MASK] = (PART_COLOUR[None, :] * grain[MASK][:, None]).astype(np.float32)
    if stain:
        image[20:26, 30:36] = stained(image[20:26, 30:36])
    return np.clip(image, 0, 1)


def stained(window: np.ndarray) -> np.ndarray:
    """The same brightness, another hue: red turned towards green."""
    shift = np.float32([-0.06, 0.06, 0.0])
    return window + shift


def smooth(image: np.ndarray) -> np.ndarray:
    """Stands in for the CAE: the grain is lost, the colour kept."""
    out = image.copy()
    out[MASK] = PART_COLOUR
    return out


def test_weights_of_one_give_the_channel_mean_and_the_basis_is_orthonormal():
    np.testing.assert_allclose(OPPONENT @ OPPONENT.T, np.eye(3), atol=1e-6)
    difference = np.random.default_rng(0).standard_normal((5, 7, 3)).astype(np.float32)
    np.testing.assert_allclose(ColourBalance(1.0, 1.0).squared_error(difference), (difference**2).mean(axis=2), rtol=1e-5)
    components = opponent(difference)
    weighted = ColourBalance(4.0, 7.0).squared_error(difference)
    np.testing.assert_allclose(weighted, (components[..., 0] ** 2 + 4 * components[..., 1] ** 2 + 7 * components[..., 2] ** 2) / 3, rtol=1e-5)


def test_weights_are_the_ratio_of_brightness_to_colour_error_on_good_parts():
    rng = np.random.default_rng(1)
    samples = []
    for _ in range(6):
        crop = colour_part(rng)
        noise = 0.015 * rng.standard_normal(SHAPE)[..., None] + 0.01 * rng.standard_normal(SHAPE + (3,))
        samples.append((crop, (crop + noise).astype(np.float32), MASK))
    balance = fit_colour_balance(samples)
    # brightness: 3 * 0.015^2 + 0.01^2 per pixel, each colour component 0.01^2
    expected = (3 * 0.015**2 + 0.01**2) / 0.01**2
    assert balance.red_green == pytest.approx(expected, rel=0.1) and balance.yellow_blue == pytest.approx(expected, rel=0.1)
    gray = [(crop[..., 0], reconstruction[..., 0], mask) for crop, reconstruction, mask in samples]
    assert fit_colour_balance(gray) is None
    quiet = [(crop, (crop + 0.05 * rng.standard_normal(SHAPE)[..., None]).astype(np.float32), MASK) for crop, _, _ in samples]
    assert fit_colour_balance(quiet) == ColourBalance(MAX_WEIGHT, MAX_WEIGHT)  # colour errors ~0: sensor noise is not amplified without bound
    assert fit_colour_balance([(c, c, m) for c, _, m in samples]) is None  # nothing to measure: no weights
    assert ColourBalance.from_dict(balance.to_dict()) == balance
    with pytest.raises(ValueError):
        ColourBalance(0.0, 1.0)
    with pytest.raises(ValueError):
        ColourBalance(1.0, 2 * MAX_WEIGHT)


def test_a_stain_of_another_hue_stands_out_once_the_colour_is_balanced():
    rng = np.random.default_rng(2)
    balance = fit_colour_balance((part, smooth(part), MASK) for part in (colour_part(rng) for _ in range(8)))
    assert balance.red_green > 5  # the grain is brightness only: colour errors are rare on good parts

    def contrast(colour: ColourBalance | None) -> float:
        part = colour_part(np.random.default_rng(3), stain=True)
        residual = residual_map(part, smooth(part), POST, colour)
        rest = MASK.copy()
        rest[18:28, 28:38] = False
        return float(residual[21:25, 31:35].mean() / np.percentile(residual[rest], 99))

    plain, balanced = contrast(None), contrast(balance)
    assert plain < 1.0  # the channel mean: the stain is within the grain's brightness errors
    assert balanced > 2.0 * plain and balanced > 1.5


@dataclass
class Prepared:
    found: bool
    crop: np.ndarray
    crop_mask: np.ndarray
    reason: str = ""


class ColourBackend:
    def segment(self, work):
        return work.mean(axis=2) > 0.2

    def reconstruct(self, crop):
        return smooth(crop)


class IdentityPreprocessor:
    def prepare_image(self, segment, image, **_):
        mask = segment(image)
        return Prepared(bool(mask.any()), image.astype(np.float32), mask, "" if mask.any() else "no part found")

    def reconstruct(self, reconstruct, crop, mask=None):
        return reconstruct(crop)

    def analysis_box(self, crop_mask):
        return None


def test_calibration_fits_the_weights_for_colour_parts_only_and_keeps_them(tmp_path):
    rng = np.random.default_rng(4)
    works = [colour_part(rng) for _ in range(10)]
    calibration = calibrate(ColourBackend(), IdentityPreprocessor(), POST, works)
    assert calibration.colour is not None and calibration.colour.red_green > 5
    path = tmp_path / "calibration.json"
    calibration.save(path)
    loaded = Calibration.load(path)
    assert loaded.colour == calibration.colour
    # the stain: scored with the weights (the pipeline passes the calibration's) it stands out
    part = colour_part(np.random.default_rng(5), stain=True)
    with_weights = part_residual(part, smooth(part), POST, None, colour=loaded.colour)
    without = part_residual(part, smooth(part), POST, None)
    assert with_weights[22, 32] / np.median(with_weights[MASK]) > 2 * without[22, 32] / np.median(without[MASK])

    gray_works = [w.mean(axis=2) for w in works]

    class GrayBackend(ColourBackend):
        def segment(self, work):
            return work > 0.2

        def reconstruct(self, crop):
            return np.where(MASK, float(PART_COLOUR.mean()), crop).astype(np.float32)

    assert calibrate(GrayBackend(), IdentityPreprocessor(), POST, gray_works).colour is None
    off = PostprocessConfig(**{**to_dict(POST), "colour_balance": False})
    assert calibrate(ColourBackend(), IdentityPreprocessor(), off, works).colour is None

    data = json.loads(path.read_text())
    data["colour"] = {"red_green": -1.0, "yellow_blue": 1.0}
    path.write_text(json.dumps(data))
    with pytest.raises(ScaeError, match="corrupt calibration"):
        Calibration.load(path)


def test_a_file_written_before_the_balance_keeps_the_channel_mean(tmp_path):
    rng = np.random.default_rng(6)
    off = PostprocessConfig(**{**to_dict(POST), "colour_balance": False})
    calibration = calibrate(ColourBackend(), IdentityPreprocessor(), off, [colour_part(rng) for _ in range(8)])
    data = calibration.to_dict()
    del data["config"]["colour_balance"]
    del data["colour"]
    path = tmp_path / "old.json"
    path.write_text(json.dumps(data))
    loaded = Calibration.load(path)
    assert loaded.config.colour_balance is LEGACY_FIELD_VALUES["colour_balance"] is False
    assert loaded.colour is None


def test_references_take_the_balanced_difference_too():
    rng = np.random.default_rng(7)
    references = GoodReferences.from_crops(np.stack([colour_part(rng) for _ in range(4)]))
    part = colour_part(np.random.default_rng(8), stain=True)
    balance = ColourBalance(MAX_WEIGHT, MAX_WEIGHT)
    plain = references.residual(part, 2, 0, 0.0)
    weighted = references.residual(part, 2, 0, 0.0, colour=balance)
    assert weighted.shape == plain.shape == SHAPE
    stain, rest = (slice(20, 26), slice(30, 36)), MASK.copy()
    rest[18:28, 28:38] = False
    assert weighted[stain].mean() / np.median(weighted[rest]) > 2 * plain[stain].mean() / np.median(plain[rest])
