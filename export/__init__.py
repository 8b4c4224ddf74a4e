"""Keras -> TFLite export: conversion (fp32 / fp16 / int8), parity checks, bundle writing.

Needs TensorFlow (training workstation). The bundle it writes is read by ``scae_tf.runtime``
on inspection PCs without TensorFlow.
"""

from export.bundle import export_bundle
from export.convert import PRECISIONS, convert_model
from scae_tf.keras_backend import load_keras_model

__all__ = ["PRECISIONS", "convert_model", "export_bundle", "load_keras_model"]
