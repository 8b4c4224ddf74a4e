"""Detection metrics in NumPy: ROC/AUROC, pixel AUROC, AUPRO, confusion matrix and friends.

No TensorFlow and no scikit-learn: this module also runs on an inspection PC, and the
evaluation must give the same numbers everywhere. ROC ties are handled like scikit-learn
(one curve point per distinct score); AUPRO follows the MVTec AD reference implementation
(per-region overlap over 8-connected ground-truth components, integrated up to FPR 0.3 with
linear interpolation at the limit, divided by 0.3).
"""

from __future__ import annotations

from bisect import bisect
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import cv2
import numpy as np

DEFAULT_MAX_PIXELS = 20_000_000  # above this, pixel AUROC uses a fixed-seed subsample


def _binary_inputs(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels).ravel()
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if labels.shape != scores.shape:
        raise ValueError(f"labels and scores differ in size: {labels.size} vs {scores.size}")
    if np.isnan(scores).any():
        raise ValueError("scores contain NaN")
    return labels.astype(bool), scores


def roc_curve(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds) with one point per distinct score, starting at (0, 0) with threshold +inf.

    A sample is predicted positive at threshold t when score >= t (scikit-learn's convention),
    so tied scores enter the curve together and produce a diagonal segment.
    """
    positive, scores = _binary_inputs(labels, scores)
    order = np.argsort(-scores, kind="mergesort")
    sorted_scores = scores[order]
    sorted_positive = positive[order]
    last_of_group = np.r_[np.flatnonzero(sorted_scores[1:] != sorted_scores[:-1]), sorted_scores.size - 1]
    tps = np.cumsum(sorted_positive)[last_of_group].astype(np.float64)
    fps = (last_of_group + 1) - tps
    n_pos, n_neg = tps[-1] if tps.size else 0.0, fps[-1] if fps.size else 0.0
    tpr = np.r_[0.0, tps / n_pos] if n_pos > 0 else np.full(tps.size + 1, np.nan)
    fpr = np.r_[0.0, fps / n_neg] if n_neg > 0 else np.full(fps.size + 1, np.nan)
    thresholds = np.r_[np.inf, sorted_scores[last_of_group]]
    return fpr, tpr, thresholds


def auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve; NaN when only one class is present (undefined, not 0.5).

    Infinite scores are allowed (the pipeline scores a part without object patches +inf: as
    anomalous as it gets); NaN is an error.
    """
    positive, scores = _binary_inputs(labels, scores)
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    # Mann-Whitney U with average ranks for ties == trapezoidal area of the tie-grouped ROC curve,
    # and it needs one sort instead of a curve, which matters for millions of pixels.
    ranks = average_ranks(scores)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, tied values sharing the mean of their ranks (scipy.stats.rankdata 'average')."""
    values = np.asarray(values, dtype=np.float64).ravel()
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    starts = np.r_[0, np.flatnonzero(sorted_values[1:] != sorted_values[:-1]) + 1]
    ends = np.r_[starts[1:], values.size]
    group_rank = (starts + ends + 1) / 2.0  # mean of the 1-based ranks start+1 .. end
    ranks = np.empty(values.size, dtype=np.float64)
    ranks[order] = np.repeat(group_rank, ends - starts)
    return ranks


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rank correlation (average ranks for ties); NaN when either input is constant."""
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.size != y.size:
        raise ValueError(f"x and y differ in size: {x.size} vs {y.size}")
    if x.size < 2:
        return float("nan")
    rx, ry = average_ranks(x), average_ranks(y)
    rx -= rx.mean()
    ry -= ry.mean()
    denominator = np.sqrt((rx * rx).sum() * (ry * ry).sum())
    return float((rx * ry).sum() / denominator) if denominator > 0 else float("nan")


def _stack_pixels(maps: Sequence[np.ndarray], masks: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    if len(maps) != len(masks):
        raise ValueError(f"{len(maps)} anomaly maps but {len(masks)} ground-truth masks")
    for index, (anomaly_map, mask) in enumerate(zip(maps, masks, strict=True)):
        if np.shape(anomaly_map) != np.shape(mask):
            raise ValueError(f"image {index}: anomaly map {np.shape(anomaly_map)} vs mask {np.shape(mask)}")
    scores = np.concatenate([np.asarray(m, dtype=np.float32).ravel() for m in maps])
    labels = np.concatenate([np.asarray(m).ravel().astype(bool) for m in masks])
    return scores, labels


def pixel_auroc(
    maps: Sequence[np.ndarray], masks: Sequence[np.ndarray], max_pixels: int = DEFAULT_MAX_PIXELS, seed: int = 0
) -> float:
    """AUROC over every pixel of every test image (good images contribute negatives only).

    Above ``max_pixels`` a fixed-seed uniform subsample is used, so the figure is reproducible
    and memory stays bounded.
    """
    scores, labels = _stack_pixels(maps, masks)
    if scores.size > max_pixels:
        keep = np.random.default_rng(seed).choice(scores.size, size=max_pixels, replace=False)
        scores, labels = scores[keep], labels[keep]
    return auroc(labels, scores)


def pro_curve(maps: Sequence[np.ndarray], masks: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(fpr, pro) of the per-region-overlap curve, as MVTec AD's reference ``compute_pro``.

    Every pixel moves the FPR by 1/(number of defect-free pixels) when it is background, and the
    PRO by 1/(size of its region)/(number of regions) when it lies in a ground-truth region
    (8-connected component). Points sharing a score are merged; the curve starts at (0, 0)
    and ends at (1, 1).
    """
    scores, _ = _stack_pixels(maps, masks)
    fp_change = np.zeros(scores.size, dtype=np.float64)
    pro_change = np.zeros(scores.size, dtype=np.float64)
    n_ok = 0
    n_regions = 0
    offset = 0
    for mask in masks:
        mask = np.asarray(mask).astype(bool)
        count, labelled = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
        flat = labelled.ravel()
        ok = flat == 0
        fp_change[offset : offset + flat.size][ok] = 1.0
        n_ok += int(ok.sum())
        if count > 1:
            sizes = np.bincount(flat, minlength=count).astype(np.float64)
            inverse = np.zeros(count, dtype=np.float64)
            inverse[1:] = 1.0 / sizes[1:]
            pro_change[offset : offset + flat.size] = inverse[flat]
            n_regions += count - 1
        offset += flat.size
    if n_regions == 0:
        raise ValueError("no defect regions in the ground truth: AUPRO is undefined")
    if n_ok == 0:
        raise ValueError("no defect-free pixels in the ground truth: AUPRO is undefined")
    order = np.argsort(-scores, kind="mergesort")
    sorted_scores = scores[order]
    fprs = np.cumsum(fp_change[order]) / n_ok
    pros = np.cumsum(pro_change[order]) / n_regions
    keep = np.r_[sorted_scores[1:] != sorted_scores[:-1], True]
    fprs = np.clip(fprs[keep], None, 1.0)
    pros = np.clip(pros[keep], None, 1.0)
    return np.r_[0.0, fprs, 1.0], np.r_[0.0, pros, 1.0]


def trapezoid_area(x: np.ndarray, y: np.ndarray, x_max: float | None = None) -> float:
    """Trapezoidal area under (x, y) up to ``x_max``, interpolating y linearly at ``x_max``.

    Same rule as the MVTec AD reference ``trapezoid``: when ``x_max`` is not a curve point, the
    strip from the last point before it is added with y interpolated between its neighbours.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    finite = np.isfinite(x) & np.isfinite(y)
    x, y = x[finite], y[finite]
    correction = 0.0
    if x_max is not None:
        if x_max not in x:
            insert = bisect(x.tolist(), x_max)
            if not 0 < insert < x.size:
                raise ValueError(f"x_max={x_max} outside the curve's range [{x.min()}, {x.max()}]")
            x0, x1, y0, y1 = x[insert - 1], x[insert], y[insert - 1], y[insert]
            y_interp = y0 + (y1 - y0) * (x_max - x0) / (x1 - x0)
            correction = 0.5 * (y_interp + y0) * (x_max - x0)
        inside = x <= x_max
        x, y = x[inside], y[inside]
    return float(np.sum(0.5 * (y[1:] + y[:-1]) * (x[1:] - x[:-1])) + correction)


def aupro(maps: Sequence[np.ndarray], masks: Sequence[np.ndarray], fpr_limit: float = 0.3) -> float:
    """Normalised area under the PRO curve up to ``fpr_limit`` (MVTec AD: 0.3); 1.0 is perfect."""
    fprs, pros = pro_curve(maps, masks)
    return trapezoid_area(fprs, pros, x_max=fpr_limit) / fpr_limit


@dataclass(frozen=True)
class ConfusionMatrix:
    """Binary confusion matrix; positive = defective."""

    tn: int
    fp: int
    fn: int
    tp: int

    @property
    def total(self) -> int:
        return self.tn + self.fp + self.fn + self.tp

    @property
    def accuracy(self) -> float:
        return (self.tp + self.tn) / self.total if self.total else float("nan")

    @property
    def precision(self) -> float:
        """0 when nothing is predicted positive (scikit-learn's zero_division=0)."""
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        denominator = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / denominator if denominator else 0.0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    def summary(self) -> dict[str, float | dict[str, int]]:
        """accuracy, precision, recall, f1 and the matrix, as metrics.json stores them."""
        return {
            "accuracy": self.accuracy,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "confusion_matrix": self.as_dict(),
        }


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray) -> ConfusionMatrix:
    """Counts of (true label, predicted label) for binary labels (0 good, 1 defective)."""
    truth = np.asarray(labels).ravel().astype(bool)
    guess = np.asarray(predicted).ravel().astype(bool)
    if truth.shape != guess.shape:
        raise ValueError(f"labels and predictions differ in size: {truth.size} vs {guess.size}")
    return ConfusionMatrix(
        tn=int(np.sum(~truth & ~guess)),
        fp=int(np.sum(~truth & guess)),
        fn=int(np.sum(truth & ~guess)),
        tp=int(np.sum(truth & guess)),
    )


def detection_rates(defect_types: Sequence[str], predicted: np.ndarray) -> dict[str, dict[str, float | int]]:
    """Per type: images, images flagged and the flagged fraction (for "good": the false-alarm rate)."""
    predicted = np.asarray(predicted).ravel().astype(bool)
    types = np.asarray(defect_types)
    if types.size != predicted.size:
        raise ValueError(f"{types.size} defect types but {predicted.size} predictions")
    rates: dict[str, dict[str, float | int]] = {}
    for name in sorted(set(types.tolist())):
        selected = predicted[types == name]
        rates[name] = {"n": int(selected.size), "flagged": int(selected.sum()), "rate": float(selected.mean())}
    return rates


def bootstrap_auroc(
    labels: np.ndarray, score_sets: dict[str, np.ndarray], resamples: int = 2000, seed: int = 0
) -> dict[str, np.ndarray]:
    """AUROC of every score set on the same stratified bootstrap resamples of the images.

    Resampling good and defective images separately keeps both classes in every resample; using
    the same resamples for all methods makes differences between methods paired, so their spread
    says whether a gap on a few dozen test images means anything.
    """
    positive = np.asarray(labels).ravel().astype(bool)
    pos_index, neg_index = np.flatnonzero(positive), np.flatnonzero(~positive)
    if pos_index.size == 0 or neg_index.size == 0:
        return {name: np.full(resamples, np.nan) for name in score_sets}
    rng = np.random.default_rng(seed)
    draws = [
        np.concatenate([rng.choice(pos_index, pos_index.size), rng.choice(neg_index, neg_index.size)])
        for _ in range(resamples)
    ]
    return {
        name: np.array([auroc(positive[d], np.asarray(scores, dtype=np.float64)[d]) for d in draws])
        for name, scores in score_sets.items()
    }


def interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Central ``level`` percentile interval of bootstrap values."""
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.nanpercentile(np.asarray(values, dtype=np.float64), [tail, 100.0 - tail])
    return float(low), float(high)
