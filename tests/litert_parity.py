"""Reusable check that a TFLite model computes what its Keras model computes.

Used by the tests of every exported model (CAE, U-Net)::

    from litert_parity import assert_litert_parity
    stats = assert_litert_parity(model, convert_model(model, "fp32"), images, atol=1e-4)

``inputs`` are float32 images without the batch axis, (N, H, W[, C]) or a list of them; int8
models are fed through the runtime's quantisation, exactly as on an inspection PC.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from scae_tf.backends.litert import LiteModel


def assert_litert_parity(
    keras_model, tflite_path_or_bytes: str | Path | bytes, inputs: np.ndarray | Sequence[np.ndarray], atol: float
) -> dict[str, float]:
    """Assert max |Keras - LiteRT| <= ``atol`` on every input; return {"max_abs", "mean_abs", "images"}."""
    lite = LiteModel(tflite_path_or_bytes, threads=2, name=getattr(keras_model, "name", "model"))
    max_abs, total, count = 0.0, 0.0, 0
    for index, x in enumerate(inputs):
        x = np.asarray(x, dtype=np.float32)
        batch = x[None] if x.ndim == len(lite.input_shape) - 1 else x[None, ..., None]
        expected = np.asarray(keras_model(batch, training=False), dtype=np.float32)[0]
        got = lite(x)
        if expected.ndim == 3 and expected.shape[-1] == 1:
            expected = expected[..., 0]
        assert got.shape == expected.shape, f"input {index}: LiteRT output {got.shape} != Keras {expected.shape}"
        assert np.isfinite(got).all(), f"input {index}: LiteRT output has NaN/inf"
        diff = np.abs(got - expected)
        max_abs = max(max_abs, float(diff.max()))
        total += float(diff.sum())
        count += diff.size
    assert count, "no inputs given"
    assert max_abs <= atol, f"LiteRT differs from Keras by up to {max_abs:.3g} (atol {atol:.3g}, mean {total / count:.3g})"
    return {"max_abs": max_abs, "mean_abs": total / count, "images": len(inputs)}
