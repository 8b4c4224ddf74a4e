"""The image threshold tau, set on the statistic that is actually thresholded.

The image score is the MAX normalised deviation over ~10+ candidate patches, which is not
distributed like one patch's deviation: with a pooled sigma the plain ``d > 3`` rule flagged 59 %
of good calibration screws in a measured trial. tau is therefore a high quantile of the max
statistic over good calibration images, for the target false-alarm rate ``p``:

* ``gumbel`` (default): the max of many roughly independent deviations follows an extreme-value
  (Gumbel) law, fitted to the lower 90 % of the sorted scores on a Gumbel probability plot and
  extrapolated to ``p`` (below 1/n with a few dozen images). The fit ignores the top decile so
  that one or two unusual good parts do not set the threshold for every part: fitted by moments,
  a single good image scoring 41 among 60 scoring 3-14 lifted tau from 13 to 22;
* ``quantile``: the empirical (1 - p) quantile (the sample max when p < 1/n).

tau is never below ``k_sigma`` (the reference rule's k), so a very quiet calibration set cannot
make the rule more trigger-happy than the reference.
"""

from __future__ import annotations

import math

import numpy as np

THRESHOLD_METHODS = ("gumbel", "quantile")
BODY_FRACTION = 0.9  # the Gumbel fit uses the scores below this plotting position


def gumbel_quantile(samples: np.ndarray, probability: float, body: float = BODY_FRACTION) -> float:
    """The ``probability`` quantile of a Gumbel (max) law fitted to the lowest ``body`` share of ``samples``.

    Least squares of the sorted scores on their Gumbel reduced variates -ln(-ln F) at Gringorten
    plotting positions F = (i - 0.44) / (n + 0.12); with fewer than 4 points in the body, all are used.
    """
    values = np.sort(np.asarray(samples, dtype=np.float64))
    n = values.size
    positions = (np.arange(1, n + 1) - 0.44) / (n + 0.12)
    reduced = -np.log(-np.log(positions))
    used = positions <= body if int(np.sum(positions <= body)) >= 4 else np.ones(n, bool)
    scale, location = np.polyfit(reduced[used], values[used], 1)
    if not scale > 0:  # degenerate (e.g. identical scores): no spread to extrapolate
        return float(values.max())
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
