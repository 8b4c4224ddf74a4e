"""The model of good texture: a surface's scratch, spot or stain stands out against its grain; calibration.json carries it."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from test_calibration import IdentityPreprocessor

from scae_tf.calibration import Calibration, calibrate, good_references
from scae_tf.config import PostprocessConfig
from scae_tf.references import part_residual
from scae_tf.residual import residual_map
from scae_tf.texture import COLOUR_FEATURES, FEATURES, TextureModel, texture_features

SIDE = 96


def brushed(rng: np.random.Generator) -> np.ndarray:
    """Brushed metal: horizontal streaks of random strength on a slowly varying illumination."""
    streaks = cv2.GaussianBlur(rng.standard_normal((SIDE, SIDE)).astype(np.float32), (0, 0), sigmaX=12.0, sigmaY=0.7)
    light = np.linspace(0.45, 0.55, SIDE, dtype=np.float32)[None, :]
    return np.clip(light + 0.5 * streaks + 0.005 * rng.standard_normal((SIDE, SIDE)), 0, 1).astype(np.float32)


@pytest.fixture(scope="module")
def model() -> TextureModel:
    rng = np.random.default_rng(0)
    return TextureModel.fit([brushed(rng) for _ in range(12)])


def test_features_are_per_pixel_and_ignore_a_change_of_illumination():
    surface = brushed(np.random.default_rng(1))
    features = texture_features(surface)
    assert features.shape == (SIDE, SIDE, FEATURES) and features.dtype == np.float32
    brighter = texture_features(surface + 0.1)  # the same grain under more light
    assert np.allclose(features[16:-16, 16:-16], brighter[16:-16, 16:-16], atol=1e-5)
    colour = texture_features(np.repeat(surface[..., None], 3, axis=2))  # a neutral colour surface
    assert colour.shape == (SIDE, SIDE, COLOUR_FEATURES)
    assert np.allclose(features, colour[..., :FEATURES], atol=1e-6) and np.abs(colour[..., FEATURES:]).max() < 1e-6


def test_a_colour_model_finds_a_stain_that_barely_changes_the_brightness():
    rng = np.random.default_rng(5)
    tint = np.asarray([0.9, 0.7, 0.5], np.float32)
    model = TextureModel.fit([brushed(rng)[..., None] * tint for _ in range(8)])
    good = brushed(rng)[..., None] * tint
    stained = good.copy()
    stained[40:56, 40:56] += np.asarray([-0.06, 0.03, 0.03], np.float32)  # hue shifts, the gray level stays
    assert abs(float(stained.mean(axis=2)[40:56, 40:56].mean() - good.mean(axis=2)[40:56, 40:56].mean())) < 1e-6
    inner = (slice(8, -8), slice(8, -8))
    assert model.distance(stained)[48, 48] > 3 * model.distance(good)[inner].max()
    with pytest.raises(ValueError, match="colour crops"):
        model.distance(good.mean(axis=2))


def test_a_scratch_across_the_grain_and_a_spot_stand_out_where_an_unseen_good_surface_does_not(model):
    rng = np.random.default_rng(2)
    good = brushed(rng)
    scratched, spotted = good.copy(), good.copy()
    cv2.line(scratched, (30, 70), (60, 30), float(good.mean()) + 0.08, 1)  # faint, across the grain
    cv2.circle(spotted, (48, 48), 4, float(good.mean()) - 0.1, -1)
    quiet = model.distance(good)
    inner = (slice(8, -8), slice(8, -8))
    assert quiet.shape == (SIDE, SIDE) and quiet.dtype == np.float32 and quiet.min() >= 0
    assert model.distance(scratched)[inner].max() > 3 * quiet[inner].max()
    assert model.distance(spotted)[48, 48] > 3 * quiet[inner].max()


def test_texture_in_the_residual_and_in_calibration_json(model, tmp_path):
    rng = np.random.default_rng(3)
    crop = brushed(rng)
    rough = cv2.GaussianBlur(crop, (0, 0), 2.0)  # a CAE that rebuilds the grain only roughly
    on, off = PostprocessConfig(texture_model=True, reference_neighbours=0), PostprocessConfig(reference_neighbours=0)
    cae_alone = residual_map(crop, rough, off)
    assert np.array_equal(part_residual(crop, rough, off, model), cae_alone)  # switched off
    assert np.allclose(part_residual(crop, rough, on, model), np.sqrt(cae_alone * model.distance(crop)), atol=1e-7)

    config = PostprocessConfig(texture_model=True, reference_neighbours=0, patch_size=8, patch_stride=4, zones=1, per_position_zscore=False)
    preprocessor = IdentityPreprocessor()
    works = [brushed(rng) for _ in range(8)]
    texture = good_references(BlurBackend(), preprocessor, works[:4], texture=True)
    assert isinstance(texture, TextureModel)
    calibration = calibrate(BlurBackend(), preprocessor, config, works[4:], references=texture)
    calibration.save(tmp_path / "calibration.json")
    again = Calibration.load(tmp_path / "calibration.json")
    assert isinstance(again.references, TextureModel)
    assert np.allclose(again.references.precision, texture.precision) and np.allclose(again.references.mean, texture.mean)
    assert json.loads((tmp_path / "calibration.json").read_text())["references"]["kind"] == "texture"
    with pytest.raises(ValueError, match="texture model"):
        TextureModel.from_dict({"mean": [0.0] * FEATURES, "precision": [[np.nan] * FEATURES] * FEATURES})


class BlurBackend:
    def segment(self, image):
        return np.ones(image.shape[:2], np.float32)

    def reconstruct(self, crop):
        return cv2.GaussianBlur(crop, (0, 0), 2.0)
