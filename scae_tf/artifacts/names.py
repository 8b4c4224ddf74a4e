"""File names of a run dir and a bundle: the only place they are spelled out.

A run dir is written by ``scae train`` (Keras models, TensorFlow needed to run it), a bundle by
``scae export`` (TFLite models, runs without TensorFlow). Code elsewhere asks ``RunDir`` /
``Bundle`` for paths instead of joining these names itself.
"""

from __future__ import annotations

# Shared by run dirs and bundles.
CONFIG = "config.json"  # the full typed RunConfig
PREPROCESSING = "preprocessing.json"  # learned pre-processing state (crop scale, illumination reference)
CALIBRATION = "calibration.json"  # calibrated post-processor statistics and threshold

# Run dir only.
SPLIT = "split.json"  # which good images trained the models and which were held out
CHECKPOINTS = "checkpoints"  # folder: per-stage epoch checkpoints for resuming
TRAIN_LOG = "train.log"
TRAINING_SUMMARY = "training_summary.json"  # written last: a run dir with it is finished
KERAS_MODELS = {"segmenter": "segmenter.keras", "cae": "cae.keras"}
RUN_FILES = (CONFIG, PREPROCESSING, CALIBRATION, *KERAS_MODELS.values(), SPLIT)  # needed to export a run


def curves_png(stage: str) -> str:
    """Training-curve figure of one stage ("segmenter", "cae")."""
    return f"curves_{stage}.png"


# Bundle only.
MANIFEST = "manifest.json"  # format version, precision, sizes, sha256 of every other file, parity figures
TFLITE_MODELS = {"segmenter": "segmenter.tflite", "cae": "cae.tflite"}
COPIED_FROM_RUN = (CONFIG, PREPROCESSING, CALIBRATION)
BUNDLE_FILES = (*TFLITE_MODELS.values(), *COPIED_FROM_RUN)  # every file the manifest hashes

# TFLite precisions a bundle can be exported at (see scae_tf.exporting.convert).
PRECISIONS = ("fp32", "fp16", "int8")
