"""Stage 1: train the U-Net on classical object masks of the good training images.

Good images carry no object masks, so the targets come from
``scae_tf.segmentation_targets.classical_object_mask`` (thresholding and morphology). The
U-Net trained on them with strong augmentation gives smoother, more robust masks than the
rule it learned from, and crucially keeps a defect (a dent, a scratch, a missing thread) inside
the part, where a threshold could cut it out.
"""

from __future__ import annotations

import logging
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from scae_tf.config import RunConfig
from scae_tf.losses import BceDiceLoss
from scae_tf.models import build_unet, model_summary
from scae_tf.training.augment import augment_segmenter
from scae_tf.training.resumable import StageState, fit_resumable, repeats

log = logging.getLogger(__name__)

STAGE = "segmenter"


def segmenter_dataset(
    inputs: np.ndarray, targets: np.ndarray, batch_size: int, training: bool, seed: int, min_steps: int = 0
) -> tf.data.Dataset:
    ds = tf.data.Dataset.from_tensor_slices((inputs, targets))
    if training:
        ds = ds.shuffle(len(inputs), seed=seed, reshuffle_each_iteration=True).repeat(repeats(len(inputs), batch_size, min_steps))
        ds = ds.map(augment_segmenter, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def build_compiled_segmenter(
    config: RunConfig, object_prior: float | None = None, input_shape: tuple[int, int, int] | None = None
) -> keras.Model:
    """The U-Net, compiled; ``object_prior`` (share of object pixels in the targets) sets the output
    bias, so the first epochs start from "object where the prior says" instead of p = 0.5 everywhere
    and a small part is not lost to the background class while the features form."""
    size = config.preprocess.seg_size
    model = build_unet(input_shape or (size, size, 1), config.unet)
    if object_prior is not None:
        prior = float(np.clip(object_prior, 0.01, 0.99))
        model.get_layer("logits").bias.assign(np.full((1,), np.log(prior / (1.0 - prior)), np.float32))
    model.compile(
        optimizer=keras.optimizers.Adam(config.training.learning_rate),
        loss=BceDiceLoss(),
        metrics=[keras.metrics.BinaryIoU(target_class_ids=[1], threshold=0.5, name="iou")],
    )
    return model


def train_segmenter(
    config: RunConfig,
    train: tuple[np.ndarray, np.ndarray],
    validation: tuple[np.ndarray, np.ndarray],
    checkpoints: Path,
    strategy: tf.distribute.Strategy,
    verbose: int,
    callbacks: list[keras.callbacks.Callback] | None = None,
) -> tuple[keras.Model, StageState]:
    """``train`` / ``validation``: (seg inputs, targets), float32 (N, H, W, C) and (N, H, W, 1)."""
    t = config.training
    model, state = fit_resumable(
        STAGE,
        checkpoints,
        strategy,
        lambda: build_compiled_segmenter(config, float(np.mean(train[1])), tuple(train[0].shape[1:])),
        segmenter_dataset(*train, t.batch_size, True, t.seed, t.min_steps_per_epoch),
        segmenter_dataset(*validation, t.batch_size, False, t.seed),
        epochs=t.segmenter_epochs,
        patience=t.patience,
        learning_rate=t.learning_rate,
        verbose=verbose,
        callbacks=callbacks,
    )
    summary = model_summary(model)
    log.info("segmenter: %d params, %.3f GFLOPs per image", summary["params"], summary["gflops"])
    return model, state


def predict_probabilities(model: keras.Model, inputs: np.ndarray, batch_size: int = 16) -> np.ndarray:
    """(N, S, S) object probabilities; a plain call per batch (no predict overhead, no distribution)."""
    out = [model(inputs[i : i + batch_size], training=False).numpy()[..., 0] for i in range(0, len(inputs), batch_size)]
    return np.concatenate(out, axis=0)


def iou(pred: np.ndarray, target: np.ndarray) -> float:
    """Intersection over union of two bool masks (1.0 when both are empty)."""
    union = np.logical_or(pred, target).sum()
    return 1.0 if union == 0 else float(np.logical_and(pred, target).sum() / union)
