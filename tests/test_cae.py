"""CAE builder: shapes, sizes, FLOP count, save/load round trip."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from scae_tf.config import CaeConfig
from scae_tf.models import build_cae, count_flops, model_summary
from scae_tf.models.cae import stage_filters


@pytest.mark.parametrize("shape", [(32, 96, 1), (64, 64, 1), (32, 32, 3)])
def test_output_shape_and_range(shape):
    model = build_cae(shape, CaeConfig(base_filters=4, max_filters=8, latent_filters=4, depth=3, channels=shape[2]))
    x = np.random.default_rng(0).random((2, *shape)).astype(np.float32)
    y = model(x).numpy()
    assert y.shape == (2, *shape)
    assert y.min() >= 0.0 and y.max() <= 1.0


def test_nearest_upsampling_variant_builds():
    model = build_cae((32, 64, 1), CaeConfig(base_filters=4, depth=2, latent_filters=4, upsampling="nearest"))
    assert model.output_shape == (None, 32, 64, 1)
    assert not any(isinstance(layer, keras.layers.Conv2DTranspose) for layer in model.layers)


def test_rejects_sizes_not_divisible_by_two_to_depth():
    with pytest.raises(ValueError, match="divisible"):
        build_cae((40, 96, 1), CaeConfig(depth=4))


def test_default_canonical_crop_cae_is_light():
    model = build_cae((128, 384, 1), CaeConfig())
    summary = model_summary(model)
    assert 0.3e6 <= summary["params"] <= 1.0e6
    assert stage_filters(CaeConfig()) == [16, 32, 64, 128]
    # FLOPs grow with the pixel count, parameters do not.
    bigger = build_cae((256, 384, 1), CaeConfig())
    assert count_flops(bigger) == pytest.approx(2 * count_flops(model), rel=0.01)
    assert bigger.count_params() == model.count_params()


def test_count_flops_by_hand():
    inputs = keras.Input((8, 8, 2))
    x = keras.layers.Conv2D(3, 3, strides=2, padding="same")(inputs)  # 4x4x3 out
    x = keras.layers.Conv2DTranspose(5, 3, strides=2, padding="same")(x)  # 4x4 in, 8x8x5 out
    model = keras.Model(inputs, x)
    conv = 2 * (4 * 4) * 9 * 2 * 3 + 4 * 4 * 3
    transpose = 2 * (4 * 4) * 9 * 3 * 5 + 8 * 8 * 5
    assert count_flops(model) == conv + transpose


def test_save_load_round_trip(tmp_path):
    model = build_cae((32, 64, 1), CaeConfig(base_filters=4, max_filters=8, latent_filters=4, depth=3))
    x = np.random.default_rng(1).random((1, 32, 64, 1)).astype(np.float32)
    path = tmp_path / "cae.keras"
    model.save(path)
    loaded = keras.models.load_model(path, compile=False)
    np.testing.assert_array_equal(loaded(x).numpy(), model(x).numpy())
