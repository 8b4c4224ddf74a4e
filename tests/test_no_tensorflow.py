"""The inspection path imports and runs on a PC without TensorFlow.

A child interpreter gets a meta-path finder that makes ``import tensorflow`` / ``keras`` /
``tf_keras`` raise ImportError (as on an inspection PC where they are not installed), then imports
the no-TensorFlow modules and runs calibration, the post-processor and the pipeline on a fake
back-end. Any hidden top-level TensorFlow import fails the test.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import importlib.abc
    import sys

    BLOCKED = ("tensorflow", "keras", "tf_keras")

    class Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{name} is blocked: no TensorFlow on the inspection PC")
            return None

    sys.meta_path.insert(0, Blocker())
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        pass
    else:
        raise SystemExit("blocker did not work")

    import importlib.util

    import numpy as np

    import scae_tf
    import scae_tf.calibration
    import scae_tf.pipeline
    import scae_tf.postprocess
    import scae_tf.preprocessing
    import scae_tf.residual

    if importlib.util.find_spec("scae_tf.runtime") is not None:
        import scae_tf.runtime  # noqa: F401

    from scae_tf.calibration import calibrate_residuals
    from scae_tf.config import PostprocessConfig
    from scae_tf.residual import residual_map

    rng = np.random.default_rng(0)
    config = PostprocessConfig(zones=4)
    mask = np.zeros((128, 384), bool)
    mask[32:96, 20:360] = True
    crops = [rng.random((128, 384)).astype(np.float32) for _ in range(5)]
    residuals = [residual_map(c, c + 0.01 * rng.standard_normal(c.shape).astype(np.float32), config) for c in crops]
    calibration = calibrate_residuals(residuals, [mask] * 5, config)
    planted = residuals[0].copy()
    planted[50:70, 200:220] += 1.0
    result = calibration.postprocessor()(planted, mask)
    assert result.anomalous, result.score

    # the whole pipeline on a fake back-end: threshold segmentation, blur reconstruction
    import cv2

    from scae_tf.calibration import calibrate
    from scae_tf.config import PreprocessConfig
    from scae_tf.pipeline import InspectionPipeline
    from scae_tf.preprocessing import Preprocessor, fit_preprocess_state

    class Fake:
        def segment(self, image):
            return (image > 0.4).astype(np.float32)

        def reconstruct(self, crop):
            return cv2.GaussianBlur(crop, (0, 0), 2.0)

    def part(angle):
        image = np.full((128, 128), 0.1, np.float32)
        box = cv2.boxPoints(((64, 64), (90, 20), angle)).astype(np.int32)
        cv2.fillPoly(image, [box], 0.7)
        cv2.circle(image, (int(64 - 45 * np.cos(np.radians(angle))), int(64 - 45 * np.sin(np.radians(angle)))), 14, 0.7, -1)
        return image

    works = [part(a) for a in (0, 20, 45, 70, 100, 130)]
    state = fit_preprocess_state(works, [w > 0.4 for w in works], PreprocessConfig(work_size=128, seg_size=64, crop_height=32, crop_width=96))
    post = PostprocessConfig(patch_size=8, patch_stride=4, zones=2)
    pipeline = InspectionPipeline(Fake(), state, calibrate(Fake(), Preprocessor(state), post, works), post)
    assert pipeline.inspect(part(33)).anomaly_map.shape == (128, 128)

    leaked = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    assert not leaked, leaked
    print("OK", len(result.patches))
    """
)


def test_inspection_modules_work_without_tensorflow():
    completed = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert completed.stdout.startswith("OK")
