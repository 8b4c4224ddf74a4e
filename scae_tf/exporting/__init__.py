"""Keras -> TFLite export (``scae export``): conversion (fp32 / fp16 / int8), parity, bundle.

Needs TensorFlow (training workstation). The bundle it writes (``scae_tf.artifacts.Bundle``) is
run on inspection PCs without TensorFlow.
"""

from scae_tf.exporting.bundle import export_bundle
from scae_tf.exporting.convert import convert_model

__all__ = ["convert_model", "export_bundle"]
