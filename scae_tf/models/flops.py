"""Analytic parameter and FLOP counts of the conv nets (one multiply-add = 2 FLOPs).

Counted per layer from the built shapes, so it works for any input size without
profiling; element-wise ops (activations, pooling, resizing) are ignored, they are a few
per cent of the convolutions.
"""

from __future__ import annotations

import keras


def _spatial(shape) -> int:
    return int(shape[1]) * int(shape[2])


def count_flops(model: keras.Model) -> int:
    """Forward FLOPs for a batch of one (Conv2D, Conv2DTranspose, Dense, incl. bias)."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2DTranspose):
            kh, kw, cout, cin = layer.kernel.shape
            macs = _spatial(layer.input.shape) * kh * kw * cin * cout
            bias = _spatial(layer.output.shape) * cout if layer.use_bias else 0
        elif isinstance(layer, keras.layers.Conv2D):
            kh, kw, cin_per_group, cout = layer.kernel.shape
            macs = _spatial(layer.output.shape) * kh * kw * cin_per_group * cout
            bias = _spatial(layer.output.shape) * cout if layer.use_bias else 0
        elif isinstance(layer, keras.layers.Dense):
            cin, cout = layer.kernel.shape
            macs = cin * cout
            bias = cout if layer.use_bias else 0
        else:
            continue
        total += 2 * int(macs) + int(bias)
    return total


def model_summary(model: keras.Model) -> dict[str, float]:
    """Parameters and forward GFLOPs (batch of one), for logs and reports."""
    return {"params": int(model.count_params()), "gflops": count_flops(model) / 1e9}
