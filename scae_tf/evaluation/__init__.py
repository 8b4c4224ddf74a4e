"""``scae evaluate``: metrics, baselines, shortcut check, patch-level figures, plots and report.html.

Needs matplotlib for the figures; no TensorFlow unless the pipeline itself uses it.
"""

from scae_tf.evaluation.baselines import EdgeEnergy, ObjectResidualMax, WholeImageError, default_baselines
from scae_tf.evaluation.calibration_images import calibration_images
from scae_tf.evaluation.runner import Evaluation, evaluate

__all__ = [
    "EdgeEnergy",
    "Evaluation",
    "ObjectResidualMax",
    "WholeImageError",
    "calibration_images",
    "default_baselines",
    "evaluate",
]
