"""``LiteBackend``: the back-end contract (segment / reconstruct) on TFLite models."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from scae_tf.runtime.bundle import Bundle, open_bundle
from scae_tf.runtime.lite_model import LiteModel


class LiteBackend:
    """U-Net and CAE as TFLite interpreters; float32 in and out, batch of one."""

    def __init__(self, segmenter: LiteModel, cae: LiteModel, precision: str = "fp32"):
        self.segmenter = segmenter
        self.cae = cae
        self.precision = precision

    @classmethod
    def from_bundle(cls, bundle: str | Path | Bundle, threads: int = 2) -> LiteBackend:
        """Load a bundle (verified unless an already opened ``Bundle`` is passed)."""
        if not isinstance(bundle, Bundle):
            bundle = open_bundle(bundle)
        return cls(
            LiteModel(bundle.model_file("segmenter"), threads, "segmenter"),
            LiteModel(bundle.model_file("cae"), threads, "cae"),
            bundle.precision,
        )

    @classmethod
    def from_models(
        cls, segmenter: str | Path | bytes, cae: str | Path | bytes, threads: int = 2, precision: str = "fp32"
    ) -> LiteBackend:
        """Load from .tflite paths or bytes (export uses this for parity before writing the bundle)."""
        return cls(LiteModel(segmenter, threads, "segmenter"), LiteModel(cae, threads, "cae"), precision)

    @property
    def runtime(self) -> str:
        return self.segmenter.runtime

    def segment(self, image: np.ndarray) -> np.ndarray:
        """(seg_size, seg_size) float32 gray in [0, 1] -> object probability, same shape."""
        return self.segmenter(image)

    def reconstruct(self, crop: np.ndarray) -> np.ndarray:
        """(crop_height, crop_width) normalised crop -> its reconstruction, same shape."""
        return self.cae(crop)
