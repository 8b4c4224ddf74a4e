"""The image threshold tau, set on the statistic that is actually thresholded.

The image score is the MAX normalised deviation over ~10+ candidate patches, which is not
distributed like one patch's deviation: with a pooled sigma the plain ``d > 3`` rule flagged 59 %
of good calibration screws in a measured trial. tau is therefore a high quantile of the max
statistic over good calibration images, for the target false-alarm rate ``p``:

* ``gumbel`` (default): the max of many roughly independent deviations follows an extreme-value
  (Gumbel) law; fitted by moments it extrapolates to ``p`` below 1/n with a few dozen images;
* ``quantile``: the empirical (1 - p) quantile (the sample max when p < 1/n).

tau is never below ``k_sigma`` (the reference rule's k), so a very quiet calibration set cannot
make the rule more trigger-happy than the reference.
"""

from __future__ import annotations

import math

import numpy as np

THRESHOLD_METHODS = ("gumbel", "quantile")
_EULER_GAMMA = 0.5772156649015329


def gumbel_quantile(samples: np.ndarray, probability: float) -> float:
    """The ``probability`` quantile of a Gumbel (max) law fitted to ``samples`` by the method of moments."""
    samples = np.asarray(samples, dtype=np.float64)
    scale = samples.std(ddof=1) * math.sqrt(6.0) / math.pi
    location = samples.mean() - _EULER_GAMMA * scale
    return float(location - scale * math.log(-math.log(probability)))


def image_threshold(max_statistics: np.ndarray, target_false_alarm_rate: float, k_sigma: float, method: str = "gumbel") -> float:
    """tau = max(k_sigma, (1 - target) quantile of the good images' max statistic)."""
    if method not in THRESHOLD_METHODS:
        raise ValueError(f"postprocess.threshold_method must be one of {THRESHOLD_METHODS}, got {method!r}")
    if not 0.0 < target_false_alarm_rate < 1.0:
        raise ValueError(f"postprocess.target_false_alarm_rate must be in (0, 1), got {target_false_alarm_rate}")
    values = np.asarray(max_statistics, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size < 2:
        raise ValueError("need at least 2 finite max statistics to set a threshold")
    probability = 1.0 - target_false_alarm_rate
    if method == "gumbel":
        quantile = gumbel_quantile(values, probability)
    else:
        quantile = float(np.quantile(values, probability, method="higher"))
    return float(max(k_sigma, quantile))
