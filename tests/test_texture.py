"""The model of good texture: a surface's scratch, spot or stain stands out against its grain; calibration.json carries it."""

from __future__ import annotations

import dataclasses
import json

import cv2
import numpy as np
import pytest
from test_calibration import IdentityPreprocessor

from scae_tf import texture as texture_module
from scae_tf.calibration import Calibration, calibrate, good_references
from scae_tf.config import PostprocessConfig
from scae_tf.references import part_residual
from scae_tf.residual import residual_map
from scae_tf.synthetic.fabric import render_fabric
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
    assert np.allclose(part_residual(crop, rough, on, model), model.distance(crop))  # weight 1 (default): the texture alone
    halves = dataclasses.replace(on, texture_weight=0.5)
    assert np.allclose(part_residual(crop, rough, halves, model), np.sqrt(cae_alone * model.distance(crop)), atol=1e-7)

    config = PostprocessConfig(texture_model=True, reference_neighbours=0, patch_size=8, patch_stride=4, zones=1, per_position_zscore=False)
    preprocessor = IdentityPreprocessor()
    works = [brushed(rng) for _ in range(8)]
    texture = good_references(BlurBackend(), preprocessor, works[:4], texture=True)
    assert isinstance(texture, TextureModel)
    calibration = calibrate(BlurBackend(), preprocessor, config, works[4:], references=texture)
    calibration.save(tmp_path / "calibration.json")
    again = Calibration.load(tmp_path / "calibration.json")
    assert isinstance(again.references, TextureModel)
    for field in ("weights", "means", "precisions"):
        assert np.allclose(getattr(again.references, field), getattr(texture, field))
    assert json.loads((tmp_path / "calibration.json").read_text())["references"]["kind"] == "texture"
    with pytest.raises(ValueError, match="texture model"):
        TextureModel.from_dict({"mean": [0.0] * FEATURES, "precision": [[np.nan] * FEATURES] * FEATURES})
    wrong = FEATURES + 3  # neither today's count nor an older model's
    with pytest.raises(ValueError, match=rf"means of {FEATURES} .*\({FEATURES - 1} or {COLOUR_FEATURES - 1} in a model fitted before"):
        TextureModel(np.ones(1), np.zeros((1, wrong)), np.eye(wrong)[None])


def test_a_colour_surface_judged_by_its_texture_alone_is_calibrated_without_running_the_cae():
    class NoCae(BlurBackend):
        def reconstruct(self, crop):
            raise AssertionError("the CAE was run")

    rng = np.random.default_rng(6)
    tint = np.asarray([0.9, 0.7, 0.5], np.float32)
    works = [brushed(rng)[..., None] * tint for _ in range(8)]
    config = PostprocessConfig(texture_model=True, reference_neighbours=0, patch_size=8, patch_stride=4, zones=1, per_position_zscore=False)
    texture = good_references(BlurBackend(), IdentityPreprocessor(), works[:4], texture=True)
    alone = calibrate(NoCae(), IdentityPreprocessor(), config, works[4:], references=texture)
    assert alone.colour is None and np.isfinite(alone.threshold)  # no colour balance: it weighs the CAE's errors
    mixed = calibrate(BlurBackend(), IdentityPreprocessor(), dataclasses.replace(config, texture_weight=0.5), works[4:], references=texture)
    assert mixed.colour is not None


def test_a_single_gaussian_as_older_calibration_files_hold_it_gives_the_squared_mahalanobis_distance():
    rng = np.random.default_rng(6)
    crops = [brushed(rng) for _ in range(6)]
    one = TextureModel.fit(crops, components=1)
    assert one.components == 1
    older = TextureModel.from_dict({"kind": "texture", "mean": one.means[0].tolist(), "precision": one.precisions[0].tolist()})
    features = texture_features(crops[0]).reshape(-1, FEATURES).astype(np.float64) - one.means[0]
    expected = np.einsum("ij,jk,ik->i", features, one.precisions[0], features).reshape(SIDE, SIDE)
    np.testing.assert_allclose(older.distance(crops[0]), expected, rtol=1e-3, atol=1e-3)


def bricks(rng: np.random.Generator, pit: bool = False) -> np.ndarray:
    """A grain of two kinds: flat, finely grained brick faces between bright mortar joints at a random offset."""
    image = 0.4 + 0.01 * cv2.GaussianBlur(rng.standard_normal((SIDE, SIDE)).astype(np.float32), (0, 0), 1.0)
    offset = int(rng.integers(0, 24))
    for y in range(offset % 24, SIDE, 24):
        image[y : y + 3] = 0.8
        for x in range((offset + (y // 24) * 11) % 32, SIDE, 32):
            image[y : y + 24, x : x + 3] = 0.8
    if pit:
        cv2.circle(image, (60, 50), 2, 0.3, -1)  # a faint pit on a face, darker by a quarter of a joint's contrast
    return np.clip(image + 0.003 * rng.standard_normal((SIDE, SIDE)), 0, 1).astype(np.float32)


def test_a_mixture_finds_a_pit_on_a_grain_of_two_kinds_that_one_gaussian_misses():
    """One Gaussian around the faces and the joints spans the joints' edges, and a pit on a face falls inside that
    spread; a mixture keeps a flat face's features apart from a joint's."""
    rng = np.random.default_rng(7)
    good = [bricks(rng) for _ in range(10)]
    pitted = bricks(np.random.default_rng(70), pit=True)
    unseen = [bricks(np.random.default_rng(71 + i)) for i in range(3)]

    def contrast(model: TextureModel) -> float:  # the pit's distance over the highest an unseen good surface shows
        inner = (slice(12, -12), slice(12, -12))
        quiet = max(float(cv2.blur(model.distance(u), (5, 5))[inner].max()) for u in unseen)
        return float(cv2.blur(model.distance(pitted), (5, 5))[48:53, 58:63].max()) / quiet

    one, mixture = TextureModel.fit(good, components=1), TextureModel.fit(good)
    assert mixture.components == 16 and np.isclose(mixture.weights.sum(), 1.0)
    assert contrast(one) < 1.0 < contrast(mixture)
    assert mixture.distance(unseen[0]).min() >= 0.0
    assert TextureModel.fit(good[:1], components=16).components < 16  # too few samples for that many Gaussians
    with pytest.raises(ValueError, match="at least one Gaussian"):
        TextureModel.fit(good, components=0)


class BlurBackend:
    def segment(self, image):
        return np.ones(image.shape[:2], np.float32)

    def reconstruct(self, crop):
        return cv2.GaussianBlur(crop, (0, 0), 2.0)


def test_the_blot_sized_brightness_finds_a_faint_stain_on_a_weave_and_older_models_score_without_it(monkeypatch):
    """A faint stain is larger than a yarn and has no edge: the fine brightness and the structure tensor see the weave
    vary as much; the mean brightness of a few yarns against their surroundings does not (the synthetic fabric at
    256 px, the size its benchmark runs at)."""
    goods = [render_fabric(np.random.default_rng(i), 256).image for i in range(6)]
    unseen = [render_fabric(np.random.default_rng(100 + i), 256).image for i in range(6)]
    stains = [render_fabric(np.random.default_rng(200 + i), 256, "stain") for i in range(6)]

    def contrasts(model: TextureModel) -> list[float]:  # each stain's distance over the highest an unseen good weave shows
        quiet = max(float(cv2.blur(model.distance(u), (5, 5)).max()) for u in unseen)
        return [float(cv2.blur(model.distance(s.image), (5, 5))[s.defect_mask].max()) / quiet for s in stains]

    with_blots = TextureModel.fit(goods, components=4)
    without = texture_module.texture_features
    monkeypatch.setattr(texture_module, "texture_features", lambda crop, blots=True: without(crop, blots=False))
    before = TextureModel.fit(goods, components=4)  # as models were fitted before the blot-sized brightness
    monkeypatch.undo()
    assert with_blots.blots and with_blots.means.shape[1] == FEATURES
    assert not before.blots and before.means.shape[1] == FEATURES - 1
    assert min(contrasts(with_blots)) > 1.0  # every stain above every unseen good weave
    assert sum(c < 1.0 for c in contrasts(before)) >= 3  # half of them hidden without it
    again = TextureModel.from_dict(json.loads(json.dumps(before.to_dict())))  # an older calibration.json still scores
    assert np.array_equal(again.distance(unseen[0]), before.distance(unseen[0]))
