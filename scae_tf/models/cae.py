"""Convolutional autoencoder (CAE-MSSIM): a symmetric, light conv encoder/decoder.

Only ops that convert cleanly to TFLite and quantise to full int8 (Conv2D, Conv2DTranspose
or nearest UpSampling2D + Conv2D, ReLU (fused into the conv by the converter), sigmoid) and no BatchNorm, so the exported
model is the trained one with nothing folded. Each stage halves the resolution with a
strided 3x3 conv and refines with a second 3x3 conv; filters double per stage up to
``max_filters``; a 1x1 bottleneck (``latent_filters``) limits what the code can carry, so
defects that the good training parts never showed are not reproduced.
"""

from __future__ import annotations

import keras
from keras import layers

from scae_tf.config import CaeConfig


def stage_filters(config: CaeConfig) -> list[int]:
    return [min(config.base_filters * 2**i, config.max_filters) for i in range(config.depth)]


def _conv(x, filters: int, name: str, strides: int = 1, kernel: int = 3):
    x = layers.Conv2D(filters, kernel, strides=strides, padding="same", name=name)(x)
    return layers.ReLU(name=f"{name}_act")(x)


def _up(x, filters: int, name: str, upsampling: str):
    if upsampling == "transpose":
        x = layers.Conv2DTranspose(filters, 3, strides=2, padding="same", name=name)(x)
        return layers.ReLU(name=f"{name}_act")(x)
    if upsampling == "nearest":
        x = layers.UpSampling2D(2, interpolation="nearest", name=f"{name}_resize")(x)
        return _conv(x, filters, name)
    raise ValueError(f"cae.upsampling must be 'transpose' or 'nearest', got {upsampling!r}")


def check_input_shape(input_shape: tuple[int, int, int], depth: int, what: str = "CAE") -> None:
    height, width = input_shape[0], input_shape[1]
    factor = 2**depth
    if height % factor or width % factor:
        raise ValueError(f"{what} input {height}x{width} must be divisible by 2**depth = {factor}")


def build_cae(input_shape: tuple[int, int, int], config: CaeConfig | None = None) -> keras.Model:
    """CAE for ``input_shape`` = (H, W, C), H and W divisible by 2**depth; output in [0, 1]."""
    config = config or CaeConfig()
    check_input_shape(input_shape, config.depth)
    filters = stage_filters(config)
    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    for i, f in enumerate(filters):
        x = _conv(x, f, f"enc{i}_down", strides=2)
        x = _conv(x, f, f"enc{i}_conv")
    x = _conv(x, config.latent_filters, "latent", kernel=1)
    for i in reversed(range(config.depth)):
        x = _conv(x, filters[i], f"dec{i}_conv")
        x = _up(x, filters[i - 1] if i > 0 else filters[0], f"dec{i}_up", config.upsampling)
    outputs = layers.Conv2D(input_shape[2], 3, padding="same", activation="sigmoid", name="reconstruction")(x)
    return keras.Model(inputs, outputs, name="cae")
