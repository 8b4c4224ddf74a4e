"""Small U-Net segmenter: object (screw) probability per pixel.

Encoder/decoder with skip connections, two 3x3 convs per level, filters doubling per level
from ``base_filters``. ``input_downsample`` > 1 runs the whole net at a coarser resolution
(average pooling in, bilinear resize out): finding a part on a plain background needs no
fine detail, and it divides training and inference cost by its square. BatchNorm-free
and TFLite/int8-friendly like the CAE.
"""

from __future__ import annotations

import keras
from keras import layers

from scae_tf.config import UnetConfig
from scae_tf.models.cae import check_input_shape


def _double_conv(x, filters: int, name: str):
    for j in range(2):
        x = layers.Conv2D(filters, 3, padding="same", name=f"{name}_conv{j}")(x)
        x = layers.ReLU(name=f"{name}_act{j}")(x)
    return x


def build_unet(input_shape: tuple[int, int, int], config: UnetConfig | None = None) -> keras.Model:
    """U-Net for ``input_shape`` = (H, W, C) -> (H, W, 1) sigmoid object probability."""
    config = config or UnetConfig()
    down = config.input_downsample
    check_input_shape(input_shape, config.depth + (down.bit_length() - 1), "U-Net")
    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    if down > 1:
        x = layers.AveragePooling2D(down, name="input_pool")(x)
    skips = []
    for i in range(config.depth):
        x = _double_conv(x, config.base_filters * 2**i, f"enc{i}")
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"enc{i}_pool")(x)
    x = _double_conv(x, config.base_filters * 2**config.depth, "bottleneck")
    for i in reversed(range(config.depth)):
        filters = config.base_filters * 2**i
        x = layers.Conv2DTranspose(filters, 2, strides=2, padding="same", name=f"dec{i}_up")(x)
        x = layers.Concatenate(name=f"dec{i}_skip")([x, skips[i]])
        x = _double_conv(x, filters, f"dec{i}")
    x = layers.Conv2D(1, 1, name="logits")(x)
    if down > 1:
        x = layers.UpSampling2D(down, interpolation="bilinear", name="output_resize")(x)
    outputs = layers.Activation("sigmoid", name="object_probability")(x)
    return keras.Model(inputs, outputs, name="unet")
