"""The two back-ends of the inspection path behind one contract.

``keras_backend.KerasBackend`` runs a run dir's ``.keras`` models (``tf.function``, needs
TensorFlow, imported only when that module is); ``litert.LiteBackend`` runs a bundle's
``.tflite`` models on LiteRT without TensorFlow. Which one a folder needs is decided by the
artifact (``scae_tf.artifacts``: ``RunDir.backend`` / ``Bundle.backend``); a new model format is
one more module here plus the artifact that loads it.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np


class Backend(Protocol):
    """Batch of one, float32 in and out (a quantised back-end converts inside)."""

    def segment(self, image: np.ndarray) -> np.ndarray:
        """(seg_size, seg_size) float32 gray in [0, 1] -> (seg_size, seg_size) object probability."""
        ...

    def reconstruct(self, crop: np.ndarray) -> np.ndarray:
        """(crop_height, crop_width) float32 normalised crop -> its reconstruction, same shape."""
        ...
