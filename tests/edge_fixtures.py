"""Tiny Keras models and bundles for the edge tests (export, runtime, inspect).

The models have the real models' structure in miniature (strided Conv2D down,
Conv2DTranspose / UpSampling2D up, sigmoid output), so conversion exercises the same ops.
"""

from __future__ import annotations

import json
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
    from scae_tf.artifacts import FORMAT_VERSION, write_bundle
    from scae_tf.config import RunConfig, save_json
    from scae_tf.exporting.convert import convert_model

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


def tiny_run_config():
    """A RunConfig small enough to train and export in seconds (64 px work images)."""
    from scae_tf.config import CaeConfig, PostprocessConfig, PreprocessConfig, RunConfig, UnetConfig

    return RunConfig(
        preprocess=PreprocessConfig(work_size=64, seg_size=32, crop_height=32, crop_width=96),
        cae=CaeConfig(base_filters=8, depth=2, latent_filters=8),
        unet=UnetConfig(base_filters=4, depth=2),
        postprocess=PostprocessConfig(patch_size=8, patch_stride=4, zones=2, stats_downsample=1),
    )


def make_tiny_run(run_dir: Path, data_root: Path, n_validation: int = 4, epochs: int = 60) -> Path:
    """A run dir like ``scae train`` writes, built with the real model builders on a synthetic dataset.

    The U-Net is fitted to classical masks and the CAE to canonical crops for a few seconds only:
    parity and verdict agreement need working masks, not good detectors.
    """
    import keras

    from scae_tf.backends.keras_backend import KerasBackend
    from scae_tf.calibration import calibrate
    from scae_tf.config import save_json
    from scae_tf.data.layout import list_dataset
    from scae_tf.imageio import read_image, resize
    from scae_tf.models.cae import build_cae
    from scae_tf.models.unet import build_unet
    from scae_tf.preprocessing import Preprocessor, fit_preprocess_state
    from scae_tf.segmentation_targets import classical_object_mask

    keras.utils.set_random_seed(0)
    config = tiny_run_config()
    pre = config.preprocess
    run_dir.mkdir(parents=True, exist_ok=True)
    paths = [s.path for s in list_dataset(data_root, "train")]
    train, validation = paths[:-n_validation], paths[-n_validation:]
    works = [resize(read_image(p), pre.work_size) for p in paths]
    masks = [classical_object_mask(w) for w in works]
    state = fit_preprocess_state(works[: len(train)], masks[: len(train)], pre)
    state.save(run_dir / "preprocessing.json")
    preprocessor = Preprocessor(state)

    seg_x = np.stack([preprocessor.seg_input(w) for w in works])[..., None]
    seg_y = np.stack([resize(m, pre.seg_size) for m in masks]).astype(np.float32)[..., None]
    unet = build_unet((pre.seg_size, pre.seg_size, 1), config.unet)
    unet.compile(keras.optimizers.Adam(1e-2), "binary_crossentropy")
    unet.fit(seg_x, seg_y, epochs=epochs, batch_size=len(seg_x), verbose=0)
    crops = np.stack([preprocessor.canonical(w, m)[0] for w, m in zip(works, masks, strict=True)])[..., None]
    cae = build_cae((pre.crop_height, pre.crop_width, 1), config.cae)
    cae.compile(keras.optimizers.Adam(3e-3), "mse")
    cae.fit(crops[: len(train)], crops[: len(train)], epochs=epochs, batch_size=len(train), verbose=0)
    unet.save(run_dir / "segmenter.keras")
    cae.save(run_dir / "cae.keras")

    calibration = calibrate(KerasBackend(unet, cae), preprocessor, config.postprocess, works[len(train):])
    calibration.save(run_dir / "calibration.json")
    save_json(config, run_dir / "config.json")
    split = {"version": 1, "train": [str(p) for p in train], "validation": [str(p) for p in validation]}
    split["calibration"] = split["validation"]
    (run_dir / "split.json").write_text(json.dumps(split, indent=2))
    return run_dir


def cached_tiny_run(base: Path) -> tuple[Path, Path]:
    """(dataset root, run dir) under pytest's session temp ``base``, built once per session.

    Several test modules share it; a marker file makes a half-built run (a crashed test) rebuild.
    """
    import shutil

    from scae_tf.synthetic import generate_dataset

    root = base / "edge-tiny"
    data, run = root / "screw", root / "run"
    if not (root / "done").is_file():
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        generate_dataset(data, seed=7, size=128, n_train=10, n_test_good=3, n_per_defect=2)
        make_tiny_run(run, data)
        (root / "done").write_text("ok\n")
    return data, run


def cached_bundle(base: Path, precision: str) -> Path:
    """The tiny run exported at ``precision`` (once per session)."""
    from scae_tf.exporting import export_bundle

    _, run = cached_tiny_run(base)
    out = base / "edge-tiny" / f"bundle-{precision}"
    if not out.is_dir():
        export_bundle(run, out, precision)
    return out
