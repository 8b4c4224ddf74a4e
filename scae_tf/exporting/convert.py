"""Keras model -> TFLite flatbuffer with a fixed batch of 1.

Why batch 1: on 2 CPU cores a dynamic-batch TFLite model was measured 1.5-40x slower than
the same model with a static batch, and inspection handles one image at a time.

Precisions:

* ``fp32``: float32 weights and activations (reference, parity to ~1e-6).
* ``fp16``: float16 weights (half the size), computed in float32 on CPUs.
* ``int8``: full integer quantisation, weights and activations int8, with **int8 input and
  output tensors** so the model also runs on integer-only accelerators; the runtime
  (``scae_tf.backends.litert.LiteModel``) quantises inputs and dequantises outputs with the scales
  stored in the model. Activation ranges come from a representative dataset of good training
  images. Dynamic-range int8 is deliberately not offered: with Conv2DTranspose it was
  measured 70x slower than float32.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable

import numpy as np

from scae_tf.artifacts.names import PRECISIONS
from scae_tf.errors import ScaeError

RepresentativeData = Callable[[], Iterable[np.ndarray]]


def batch1_shape(model) -> tuple[int, ...]:
    """The model's input shape with the batch fixed to 1; other dims must be static."""
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ScaeError(f"model {model.name!r} must have one input and one output to be exported")
    dims = tuple(model.inputs[0].shape[1:])
    if any(d is None for d in dims):
        raise ScaeError(f"model {model.name!r} has a dynamic input shape {dims}; export needs a fixed size")
    return (1, *(int(d) for d in dims))


def convert_model(model, precision: str, representative: RepresentativeData | None = None) -> bytes:
    """Convert ``model`` to a batch-1 TFLite flatbuffer at ``precision``.

    ``representative`` (int8 only) yields float32 inputs of the model's shape without the batch
    axis (H, W) or (H, W, C), drawn through the same pre-processing as at inference.
    """
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    if precision not in PRECISIONS:
        raise ScaeError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    shape = batch1_shape(model)

    @tf.function(input_signature=[tf.TensorSpec(shape, tf.float32, name="image")])
    def serve(image):
        return model(image, training=False)

    # Freezing turns Keras 3 variables into constants; the int8 calibrator cannot read variables.
    frozen = convert_variables_to_constants_v2(serve.get_concrete_function())
    converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen], model)
    if precision == "fp16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif precision == "int8":
        if representative is None:
            raise ValueError("int8 export needs a representative dataset")

        def batches():
            for x in representative():
                x = np.asarray(x, dtype=np.float32)
                yield [x.reshape(shape)]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = batches
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    try:
        with warnings.catch_warnings():  # "statistics for quantized inputs" is expected: ranges come from calibration
            warnings.simplefilter("ignore", UserWarning)
            return bytes(converter.convert())
    except Exception as err:  # noqa: BLE001 - converter errors are opaque; name the model and precision
        raise ScaeError(f"TFLite conversion of model {model.name!r} to {precision} failed: {err}") from err
