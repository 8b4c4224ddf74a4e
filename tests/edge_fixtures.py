"""Tiny Keras models and bundles for the edge tests (export, runtime, inspect).

The models have the real models' structure in miniature (strided Conv2D down,
Conv2DTranspose / UpSampling2D up, sigmoid output), so conversion exercises the same ops.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def tiny_segmenter(size: int = 32, seed: int = 0):
    """U-Net-like: a fixed 'bright pixels are object' path plus a random conv/upsampling branch."""
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((size, size, 1))
    down = keras.layers.Conv2D(4, 3, strides=2, padding="same", activation="relu")(inputs)
    up = keras.layers.UpSampling2D()(down)
    merged = keras.layers.Concatenate()([inputs, up])
    logits = keras.layers.Conv2D(1, 1, name="logits")(merged)
    outputs = keras.layers.Activation("sigmoid")(logits)
    model = keras.Model(inputs, outputs, name="tiny_unet")
    # Object = brighter than 0.5, so masks are meaningful; the random branch only perturbs slightly.
    kernel = np.zeros((1, 1, 5, 1), np.float32)
    kernel[0, 0, 0, 0] = 20.0
    kernel[0, 0, 1:, 0] = 0.05
    model.get_layer("logits").set_weights([kernel, np.array([-10.0], np.float32)])
    return model


def tiny_cae(height: int = 16, width: int = 48, seed: int = 0):
    """CAE-like: two stride-2 stages down, Conv2DTranspose back up, sigmoid output."""
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((height, width, 1))
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(inputs)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(x)
    x = keras.layers.Conv2DTranspose(8, 3, strides=2, padding="same", activation="relu")(x)
    x = keras.layers.Conv2DTranspose(8, 3, strides=2, padding="same", activation="relu")(x)
    outputs = keras.layers.Conv2D(1, 3, padding="same", activation="sigmoid")(x)
    return keras.Model(inputs, outputs, name="tiny_cae")


def random_images(count: int, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((count, *shape), dtype=np.float32)


def write_plain_bundle(out: Path, segmenter, cae, precision: str = "fp32") -> dict:
    """A bundle of two tiny models with placeholder JSON files (runtime tests need no pipeline)."""
    from export.bundle import write_bundle
    from export.convert import convert_model
    from scae_tf.config import RunConfig, save_json
    from scae_tf.runtime.bundle import FORMAT_VERSION

    sources = out.parent / f"{out.name}-sources"
    sources.mkdir(parents=True, exist_ok=True)
    save_json(RunConfig(), sources / "config.json")
    for name in ("preprocessing.json", "calibration.json"):
        (sources / name).write_text('{"placeholder": true}\n')
    seg_rep = random_images(8, tuple(segmenter.inputs[0].shape[1:3]), seed=1)
    cae_rep = random_images(8, tuple(cae.inputs[0].shape[1:3]), seed=2)
    models = {
        "segmenter": convert_model(segmenter, precision, lambda: iter(seg_rep)),
        "cae": convert_model(cae, precision, lambda: iter(cae_rep)),
    }
    manifest = {"format_version": FORMAT_VERSION, "precision": precision}
    copies = {name: sources / name for name in ("config.json", "preprocessing.json", "calibration.json")}
    return write_bundle(out, models, copies, manifest)
