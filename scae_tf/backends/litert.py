"""TFLite back-end: a bundle's ``.tflite`` models on LiteRT, without TensorFlow.

Inspection PCs install ``ai-edge-litert`` (the ``edge`` extra). ``tflite-runtime`` is the
older standalone package; ``tf.lite`` is accepted so a training workstation can run a bundle
too, but TensorFlow is only imported when neither runtime is installed.

Full-integer (int8) models take and return int8 tensors; ``LiteModel`` quantises the float
input with the input tensor's scale/zero point and dequantises the output, so callers see the
same float32 contract whatever the export precision.
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import Any

import numpy as np

from scae_tf.errors import ScaeError

log = logging.getLogger(__name__)

# (module, attribute path) in order of preference.
CANDIDATES = (
    ("ai_edge_litert.interpreter", "Interpreter"),
    ("tflite_runtime.interpreter", "Interpreter"),
    ("tensorflow", "lite.Interpreter"),
)


def interpreter_class() -> tuple[Any, str]:
    """Return (Interpreter class, name of the package that provided it)."""
    for module_name, attribute in CANDIDATES:
        try:
            found: Any = importlib.import_module(module_name)
        except ImportError:
            continue
        for part in attribute.split("."):
            found = getattr(found, part)
        return found, module_name.split(".")[0]
    raise ScaeError("no TFLite interpreter installed; install the edge extra: pip install 'scae-tf[edge]' (ai-edge-litert)")


def _builtin_kernels(interpreter_type: Any) -> Any:
    """The runtime's op resolver without default delegates (XNNPACK), or None if it has none."""
    resolver = getattr(importlib.import_module(interpreter_type.__module__), "OpResolverType", None)
    return getattr(resolver, "BUILTIN_WITHOUT_DEFAULT_DELEGATES", None)


class LiteModel:
    """A loaded TFLite model: ``model(x)`` maps a (H, W) or (H, W, C) float32 image to its output."""

    def __init__(self, model: str | Path | bytes, threads: int = 2, name: str = "model"):
        interpreter_type, self.runtime = interpreter_class()
        source = {"model_content": bytes(model)} if isinstance(model, bytes | bytearray) else {"model_path": str(model)}
        self.name = name
        try:
            self.interpreter = interpreter_type(**source, num_threads=threads)
            self.interpreter.allocate_tensors()
        except RuntimeError as err:
            without_delegates = _builtin_kernels(interpreter_type)
            if "XNNPACK" not in str(err) or without_delegates is None:
                raise
            # XNNPACK refuses some int8 graphs at prepare time (e.g. a requantisation scale out of its range
            # after a short training); the built-in kernels run them, more slowly, equal up to int8 rounding
            log.warning("%s: XNNPACK cannot run this model (%s); using the built-in kernels", name, str(err).splitlines()[0])
            self.interpreter = interpreter_type(**source, num_threads=threads, experimental_op_resolver_type=without_delegates)
            self.interpreter.allocate_tensors()
        inputs = self.interpreter.get_input_details()
        outputs = self.interpreter.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ValueError(f"{name}: expected one input and one output, got {len(inputs)} and {len(outputs)}")
        self._input, self._output = inputs[0], outputs[0]
        self.input_shape = tuple(int(d) for d in self._input["shape"])
        self.output_shape = tuple(int(d) for d in self._output["shape"])
        if self.input_shape[0] != 1:
            raise ValueError(f"{name}: expected a batch-1 model, input shape is {self.input_shape}")

    @property
    def input_dtype(self) -> np.dtype:
        return np.dtype(self._input["dtype"])

    @property
    def quantized_io(self) -> bool:
        return np.issubdtype(self.input_dtype, np.integer)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """(H, W[, C]) float -> model output without the batch axis (and without a channel axis of 1)."""
        x = np.asarray(image, dtype=np.float32)
        if x.ndim == len(self.input_shape) - 2:
            x = x[..., None]
        x = x[None]
        if x.shape != self.input_shape:
            raise ValueError(f"{self.name}: input shape {x.shape[1:]} does not match the model's {self.input_shape[1:]}")
        self.interpreter.set_tensor(self._input["index"], _quantize(x, self._input))
        self.interpreter.invoke()
        y = _dequantize(self.interpreter.get_tensor(self._output["index"]), self._output)[0]
        return y[..., 0] if y.ndim == 3 and y.shape[-1] == 1 else y


def _quantize(x: np.ndarray, detail: dict) -> np.ndarray:
    dtype = np.dtype(detail["dtype"])
    if not np.issubdtype(dtype, np.integer):
        return x.astype(dtype, copy=False)
    scale, zero_point = detail["quantization"]
    info = np.iinfo(dtype)
    return np.clip(np.rint(x / scale + zero_point), info.min, info.max).astype(dtype)


def _dequantize(y: np.ndarray, detail: dict) -> np.ndarray:
    if not np.issubdtype(y.dtype, np.integer):
        return y.astype(np.float32, copy=False)
    scale, zero_point = detail["quantization"]
    return ((y.astype(np.float32) - zero_point) * scale).astype(np.float32)


class LiteBackend:
    """U-Net and CAE as TFLite interpreters; float32 in and out, batch of one."""

    def __init__(self, segmenter: LiteModel, cae: LiteModel, precision: str = "fp32"):
        self.segmenter = segmenter
        self.cae = cae
        self.precision = precision

    @classmethod
    def from_models(
        cls, segmenter: str | Path | bytes, cae: str | Path | bytes, threads: int = 2, precision: str = "fp32"
    ) -> LiteBackend:
        """Load from .tflite paths or bytes (``Bundle.backend``; export checks parity before writing the bundle)."""
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
