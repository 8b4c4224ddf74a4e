"""Keras back-end of the inspection pipeline: the trained ``.keras`` models of a run dir.

Implements ``scae_tf.backends.Backend``: batch of one, float32 in and out.
Each model is wrapped in a ``tf.function`` with a fixed input signature, traced once;
``model.predict`` would rebuild a dataset per call and is ~5x slower for one image.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

import scae_tf.losses  # noqa: F401  - registers MSSSIMLoss for models saved with compile info
from scae_tf.errors import ScaeError


def load_keras_model(path: str | Path) -> keras.Model:
    """Load a ``.keras`` model for inference (no optimizer state; custom loss registered)."""
    path = Path(path)
    if not path.is_file():
        raise ScaeError("model not found; point to a run dir written by `scae train` (or finish its training)", path)
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as err:  # noqa: BLE001 - any load failure is a bad or foreign file
        raise ScaeError(f"cannot load the Keras model ({err.__class__.__name__}: {err}); retrain or restore it", path) from None


def _single_image_fn(model: keras.Model):
    height, width, channels = model.input_shape[1:]
    signature = [tf.TensorSpec([1, height, width, channels], tf.float32)]

    @tf.function(input_signature=signature, reduce_retracing=True)
    def run(x):
        return model(x, training=False)

    return run, (height, width, channels)


class KerasBackend:
    """``segment`` (seg input -> object probability) and ``reconstruct`` (crop -> reconstruction)."""

    def __init__(self, segmenter: keras.Model, cae: keras.Model):
        self.segmenter, self.cae = segmenter, cae
        self._segment, self.seg_shape = _single_image_fn(segmenter)
        self._reconstruct, self.crop_shape = _single_image_fn(cae)

    @staticmethod
    def _batch(image: np.ndarray, shape: tuple[int, int, int], what: str) -> tf.Tensor:
        image = np.asarray(image, dtype=np.float32)
        if image.ndim == 2:
            image = image[..., None]
        if image.shape != shape:
            raise ValueError(f"{what} expects {shape[0]}x{shape[1]}x{shape[2]} input, got shape {image.shape}")
        return tf.constant(image[None])

    def segment(self, image: np.ndarray) -> np.ndarray:
        """(seg_size, seg_size) float32 in [0, 1] -> (seg_size, seg_size) float32 object probability."""
        out = self._segment(self._batch(image, self.seg_shape, "segment"))
        return out.numpy()[0, ..., 0].astype(np.float32, copy=False)

    def reconstruct(self, crop: np.ndarray) -> np.ndarray:
        """(crop_height, crop_width) float32 crop -> its reconstruction, same shape."""
        out = self._reconstruct(self._batch(crop, self.crop_shape, "reconstruct")).numpy()[0]
        return (out[..., 0] if out.shape[-1] == 1 and np.asarray(crop).ndim == 2 else out).astype(np.float32, copy=False)
