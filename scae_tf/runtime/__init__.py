"""Edge runtime: open a verified TFLite bundle and run it without TensorFlow.

``open_bundle`` checks the manifest, its format version and the sha256 of every file before
anything is loaded, so a truncated copy or a hand-edited calibration fails loudly instead of
giving wrong verdicts. ``LiteBackend`` implements the back-end contract of
docs/architecture.md on a TFLite interpreter (ai-edge-litert, else tflite-runtime, else
tf.lite). Nothing here imports TensorFlow unless both TFLite runtimes are missing.
"""

from scae_tf.runtime.bundle import (
    BUNDLE_FILES,
    FORMAT_VERSION,
    MANIFEST_NAME,
    PRECISIONS,
    Bundle,
    open_bundle,
    sha256_file,
)
from scae_tf.runtime.interpreter import interpreter_class
from scae_tf.runtime.lite_backend import LiteBackend
from scae_tf.runtime.lite_model import LiteModel

__all__ = [
    "BUNDLE_FILES",
    "FORMAT_VERSION",
    "MANIFEST_NAME",
    "PRECISIONS",
    "Bundle",
    "LiteBackend",
    "LiteModel",
    "interpreter_class",
    "open_bundle",
    "sha256_file",
]
