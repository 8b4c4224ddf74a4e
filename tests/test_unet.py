"""U-Net builder: shapes, probability output, size checks, save/load round trip."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from scae_tf.config import UnetConfig
from scae_tf.models import build_unet, model_summary


@pytest.mark.parametrize("downsample", [1, 2])
def test_output_is_probability_map_of_input_size(downsample):
    model = build_unet((64, 64, 1), UnetConfig(base_filters=4, depth=3, input_downsample=downsample))
    x = np.random.default_rng(0).random((2, 64, 64, 1)).astype(np.float32)
    y = model(x).numpy()
    assert y.shape == (2, 64, 64, 1)
    assert y.min() >= 0.0 and y.max() <= 1.0


def test_default_unet_is_small():
    summary = model_summary(build_unet((256, 256, 1), UnetConfig()))
    assert 0.2e6 <= summary["params"] <= 0.6e6
    assert summary["gflops"] < 1.0


def test_rejects_sizes_not_divisible():
    with pytest.raises(ValueError, match="divisible"):
        build_unet((48, 48, 1), UnetConfig(depth=4, input_downsample=2))  # needs multiples of 32


def test_save_load_round_trip(tmp_path):
    model = build_unet((32, 32, 1), UnetConfig(base_filters=4, depth=2))
    x = np.random.default_rng(2).random((1, 32, 32, 1)).astype(np.float32)
    model.save(tmp_path / "unet.keras")
    loaded = keras.models.load_model(tmp_path / "unet.keras", compile=False)
    np.testing.assert_array_equal(loaded(x).numpy(), model(x).numpy())
