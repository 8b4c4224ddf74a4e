"""Stage 2: train the CAE on canonical crops of the good training images.

The crops come from the trained segmenter's masks (pose, crop, illumination normalisation
by ``scae_tf.preprocessing.Preprocessor``), i.e. exactly what the CAE will see at inspection.
"""

from __future__ import annotations

import logging
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from scae_tf.config import RunConfig
from scae_tf.corruption import corrupt_batch
from scae_tf.errors import ScaeError
from scae_tf.losses import loss_from_config, min_side
from scae_tf.models import build_cae, model_summary
from scae_tf.training.augment import augment_crop
from scae_tf.training.resumable import StageState, fit_resumable, repeats

log = logging.getLogger(__name__)

STAGE = "cae"


def max_shift(config: RunConfig) -> int:
    """Shift augmentation: 3 % of the crop height (4 px at 128)."""
    return max(1, round(0.03 * config.preprocess.crop_height))


def crop_dataset(
    crops: np.ndarray,
    batch_size: int,
    training: bool,
    seed: int,
    shift: int,
    min_steps: int = 0,
    corruption: float = 0.0,
) -> tf.data.Dataset:
    """(input, target) batches; with ``corruption`` > 0 that share of inputs is corrupted
    (``scae_tf.corruption``) while the target stays the clean crop: defect-removal training.

    Validation crops are corrupted once with a fixed seed, so the validation loss (early
    stopping, best checkpoint) measures removal on the same inputs every epoch.
    """
    if not training:
        inputs = corrupt_batch(crops, seed + 1, corruption) if corruption > 0 else crops
        ds = tf.data.Dataset.from_tensor_slices((inputs, crops))
        return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
    ds = tf.data.Dataset.from_tensor_slices(crops)
    ds = ds.shuffle(len(crops), seed=seed, reshuffle_each_iteration=True).repeat(repeats(len(crops), batch_size, min_steps))
    ds = ds.map(lambda c: augment_crop(c, shift), num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size)
    if corruption > 0:
        ds = ds.map(lambda clean: (_corrupted(clean, corruption), clean), num_parallel_calls=tf.data.AUTOTUNE)
    else:
        ds = ds.map(lambda clean: (clean, clean))
    return ds.prefetch(tf.data.AUTOTUNE)


def _corrupted(clean: tf.Tensor, probability: float) -> tf.Tensor:
    seed = tf.random.uniform([], 0, 2**31 - 1, dtype=tf.int64)
    out = tf.numpy_function(lambda c, s: corrupt_batch(c, int(s), probability), [clean, seed], tf.float32, stateful=True)
    return tf.ensure_shape(out, clean.shape)


def check_loss_fits(config: RunConfig, where: Path) -> None:
    """MS-SSIM needs every scale to hold the Gaussian window: say so before training starts."""
    needed = min_side(config.loss.scales, config.loss.filter_size)
    side = min(config.preprocess.crop_height, config.preprocess.crop_width)
    if side < needed:
        raise ScaeError(
            f"the canonical crop ({config.preprocess.crop_height}x{config.preprocess.crop_width}) is too small for "
            f"MS-SSIM with loss.scales={config.loss.scales} and loss.filter_size={config.loss.filter_size} "
            f"(needs >= {needed} px); use a larger --image-size or fewer scales / a smaller filter in --config",
            where,
        )


def build_compiled_cae(config: RunConfig) -> keras.Model:
    p = config.preprocess
    model = build_cae((p.crop_height, p.crop_width, config.cae.channels), config.cae)
    model.compile(
        optimizer=keras.optimizers.Adam(config.training.learning_rate),
        loss=loss_from_config(config.loss),
        metrics=[keras.metrics.MeanSquaredError(name="mse")],
    )
    return model


def train_cae(
    config: RunConfig,
    train_crops: np.ndarray,
    validation_crops: np.ndarray,
    checkpoints: Path,
    strategy: tf.distribute.Strategy,
    verbose: int,
    callbacks: list[keras.callbacks.Callback] | None = None,
) -> tuple[keras.Model, StageState]:
    """Crops: float32 (N, crop_height, crop_width, 1)."""
    t = config.training
    shift = max_shift(config)
    model, state = fit_resumable(
        STAGE,
        checkpoints,
        strategy,
        lambda: build_compiled_cae(config),
        crop_dataset(train_crops, t.batch_size, True, t.seed, shift, t.min_steps_per_epoch, t.corruption),
        crop_dataset(validation_crops, t.batch_size, False, t.seed, shift, corruption=t.corruption),
        epochs=t.epochs,
        patience=t.patience,
        learning_rate=t.learning_rate,
        verbose=verbose,
        callbacks=callbacks,
    )
    summary = model_summary(model)
    log.info("cae: %d params, %.3f GFLOPs per image", summary["params"], summary["gflops"])
    return model, state
