"""The loaded Keras models as a back-end (segment / reconstruct), for calibration data and parity."""

from __future__ import annotations

import numpy as np


class KerasModels:
    """Keras U-Net and CAE behind the back-end contract, each wrapped in a batch-1 ``tf.function``.

    ``tf.function`` rather than ``model.predict``: predict on a single image is ~5x slower.
    """

    def __init__(self, segmenter, cae):
        import tensorflow as tf

        self.segmenter, self.cae = segmenter, cae
        self._segment = tf.function(lambda x: segmenter(x, training=False))
        self._reconstruct = tf.function(lambda x: cae(x, training=False))

    @staticmethod
    def _call(fn, image: np.ndarray) -> np.ndarray:
        x = np.asarray(image, dtype=np.float32)
        x = x[None, ..., None] if x.ndim == 2 else x[None]
        y = np.asarray(fn(x))[0]
        return y[..., 0] if y.shape[-1] == 1 else y

    def segment(self, image: np.ndarray) -> np.ndarray:
        return self._call(self._segment, image)

    def reconstruct(self, crop: np.ndarray) -> np.ndarray:
        return self._call(self._reconstruct, crop)
