"""Metrics against scikit-learn on random fixtures, and AUPRO on hand-integrated curves."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix as sk_confusion_matrix
from sklearn.metrics import precision_recall_fscore_support, roc_auc_score
from sklearn.metrics import roc_curve as sk_roc_curve

from scae_tf import metrics


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("decimals", [None, 1])  # 1 decimal -> many ties
def test_auroc_and_roc_curve_match_sklearn(seed: int, decimals: int | None) -> None:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, 200)
    scores = rng.normal(size=200) + 0.7 * labels
    if decimals is not None:
        scores = np.round(scores, decimals)
    assert metrics.auroc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    fpr, tpr, thresholds = metrics.roc_curve(labels, scores)
    sk_fpr, sk_tpr, sk_thresholds = sk_roc_curve(labels, scores, drop_intermediate=False)
    np.testing.assert_allclose(fpr, sk_fpr)
    np.testing.assert_allclose(tpr, sk_tpr)
    np.testing.assert_allclose(thresholds[1:], sk_thresholds[1:])
    assert np.trapezoid(tpr, fpr) == pytest.approx(metrics.auroc(labels, scores), abs=1e-12)


def test_auroc_orientation_and_degenerate_cases() -> None:
    assert metrics.auroc([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4]) == 1.0
    assert metrics.auroc([0, 0, 1, 1], [0.4, 0.3, 0.2, 0.1]) == 0.0
    assert metrics.auroc([0, 1], [0.5, 0.5]) == 0.5
    assert np.isnan(metrics.auroc([1, 1, 1], [0.1, 0.2, 0.3]))
    with pytest.raises(ValueError):
        metrics.auroc([0, 1], [0.1, float("nan")])
    # +inf (no object found) ranks above everything; tied infinities stay tied.
    assert metrics.auroc([0, 1, 1], [0.3, np.inf, 0.2]) == 0.5
    assert metrics.auroc([0, 1, 0, 1], [np.inf, np.inf, 0.1, 0.2]) == roc_auc_score([0, 1, 0, 1], [9, 9, 0.1, 0.2])
    fpr, tpr, _ = metrics.roc_curve([0, 1, 0, 1], [np.inf, np.inf, 0.1, 0.2])
    np.testing.assert_allclose(fpr, [0, 0.5, 0.5, 1.0])


def test_pixel_auroc_matches_sklearn_and_subsamples_reproducibly() -> None:
    rng = np.random.default_rng(3)
    masks = [rng.random((16, 16)) > 0.8 for _ in range(3)] + [np.zeros((16, 16), bool)]
    maps = [rng.random((16, 16)) + 0.5 * m for m in masks]
    flat_labels = np.concatenate([m.ravel() for m in masks])
    flat_scores = np.concatenate([m.ravel() for m in maps]).astype(np.float32)
    assert metrics.pixel_auroc(maps, masks) == pytest.approx(roc_auc_score(flat_labels, flat_scores), abs=1e-9)
    sub_a = metrics.pixel_auroc(maps, masks, max_pixels=300)
    sub_b = metrics.pixel_auroc(maps, masks, max_pixels=300)
    assert sub_a == sub_b
    assert abs(sub_a - roc_auc_score(flat_labels, flat_scores)) < 0.1
    with pytest.raises(ValueError):
        metrics.pixel_auroc(maps, masks[:2])


def test_spearman_matches_scipy_definition() -> None:
    from scipy.stats import spearmanr

    rng = np.random.default_rng(5)
    x = np.round(rng.normal(size=50), 1)
    y = x + rng.normal(size=50)
    assert metrics.spearman(x, y) == pytest.approx(spearmanr(x, y).statistic, abs=1e-12)
    assert metrics.spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert np.isnan(metrics.spearman([1, 1, 1], [1, 2, 3]))


@pytest.mark.parametrize("seed", [0, 1])
def test_confusion_matrix_and_scores_match_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, 100)
    predicted = rng.integers(0, 2, 100)
    cm = metrics.confusion_matrix(labels, predicted)
    tn, fp, fn, tp = sk_confusion_matrix(labels, predicted, labels=[0, 1]).ravel()
    assert (cm.tn, cm.fp, cm.fn, cm.tp) == (tn, fp, fn, tp)
    precision, recall, f1, _ = precision_recall_fscore_support(labels, predicted, average="binary")
    assert cm.precision == pytest.approx(precision)
    assert cm.recall == pytest.approx(recall)
    assert cm.f1 == pytest.approx(f1)
    assert cm.accuracy == pytest.approx(np.mean(labels == predicted))


def test_confusion_matrix_without_positive_predictions() -> None:
    cm = metrics.confusion_matrix([0, 1, 1], [0, 0, 0])
    assert cm.as_dict() == {"tn": 1, "fp": 0, "fn": 2, "tp": 0}
    assert (cm.precision, cm.recall, cm.f1) == (0.0, 0.0, 0.0)
    assert cm.accuracy == pytest.approx(1 / 3)


def test_detection_rates_per_type() -> None:
    rates = metrics.detection_rates(["good", "good", "scratch", "scratch", "scratch"], [1, 0, 1, 1, 0])
    assert rates["good"] == {"n": 2, "flagged": 1, "rate": 0.5}
    assert rates["scratch"]["flagged"] == 2
    assert rates["scratch"]["rate"] == pytest.approx(2 / 3)


def _row(values: list[float]) -> np.ndarray:
    return np.asarray(values, dtype=np.float32)[None, :]


def test_aupro_hand_computed_exact_grid() -> None:
    # One 1x13 image: region A = pixels 0-1 (2 px), 10 defect-free pixels 2-11, region B = pixel 12.
    gt = _row([1, 1] + [0] * 10 + [1]).astype(bool)
    scores = _row([0.9, 0.35, 0.95, 0.7, 0.5, 0.3, 0.2, 0.1, 0.1, 0.1, 0.1, 0.1, 0.55])
    # Descending thresholds -> (FPR, PRO): 0.95 (0.1, 0); 0.9 A0 (0.1, 0.25); 0.7 (0.2, 0.25);
    # 0.55 B (0.2, 0.75); 0.5 (0.3, 0.75); 0.35 A1 (0.3, 1.0).
    # Area up to 0.3 = 0.1 * 0.25 + 0.1 * 0.75 = 0.1  ->  normalised 0.1 / 0.3.
    fpr, pro = metrics.pro_curve([scores], [gt])
    np.testing.assert_allclose(fpr[:7], [0, 0.1, 0.1, 0.2, 0.2, 0.3, 0.3])
    np.testing.assert_allclose(pro[:7], [0, 0, 0.25, 0.25, 0.75, 0.75, 1.0])
    assert (fpr[-1], pro[-1]) == (1.0, 1.0)
    assert metrics.aupro([scores], [gt]) == pytest.approx(0.1 / 0.3)


def test_aupro_hand_computed_interpolated_limit_and_good_image() -> None:
    # Image 1 (1x11): A = pixels 0-1, 8 defect-free pixels, B = pixel 10. Image 2: 4 defect-free
    # pixels scored 0, so 12 defect-free pixels in all: FPR steps of 1/12.
    gt1 = _row([1, 1] + [0] * 8 + [1]).astype(bool)
    s1 = _row([0.9, 0.35, 0.95, 0.7, 0.5, 0.2, 0.1, 0.1, 0.1, 0.1, 0.55])
    gt2 = np.zeros((1, 4), bool)
    s2 = np.zeros((1, 4), np.float32)
    # (FPR, PRO): 0.95 (1/12, 0); 0.9 (1/12, .25); 0.7 (2/12, .25); 0.55 (2/12, .75); 0.5 (3/12, .75);
    # 0.35 (3/12, 1); 0.2 (4/12, 1). 0.3 lies between 3/12 and 4/12 where PRO is 1 -> interpolated 1.
    # Area = 1/12 * .25 + 1/12 * .75 + (0.3 - 3/12) * 1 = 1/12 + 0.05.
    expected = (1 / 12 + 0.05) / 0.3
    assert metrics.aupro([s1, s2], [gt1, gt2]) == pytest.approx(expected)


def test_aupro_regions_are_8_connected_and_weighted_equally() -> None:
    # A diagonal pair of pixels is ONE region (8-connectivity); a perfect map scores 1.
    gt = np.zeros((6, 6), bool)
    gt[1, 1] = gt[2, 2] = True
    gt[4:6, 4:6] = True
    fpr, pro = metrics.pro_curve([gt.astype(np.float32)], [gt])
    assert pro[1] == pytest.approx(1.0) and fpr[1] == 0.0
    assert metrics.aupro([gt.astype(np.float32)], [gt]) == pytest.approx(1.0)
    # Hitting only the small diagonal region covers 1 of 2 regions: PRO 0.5 at FPR 0.
    partial = np.zeros((6, 6), np.float32)
    partial[1, 1] = partial[2, 2] = 1.0
    fpr, pro = metrics.pro_curve([partial], [gt])
    assert (fpr[1], pro[1]) == (0.0, pytest.approx(0.5))


def test_trapezoid_area_limit_outside_curve_raises() -> None:
    with pytest.raises(ValueError):
        metrics.trapezoid_area([0.0, 0.1], [0.0, 1.0], x_max=0.3)


def test_metrics_import_without_tensorflow() -> None:
    code = "import sys, scae_tf.metrics; bad = [m for m in ('tensorflow', 'keras', 'sklearn') if m in sys.modules]; print(bad); sys.exit(bool(bad))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_bootstrap_auroc_paired_and_reproducible() -> None:
    rng = np.random.default_rng(4)
    labels = np.r_[np.zeros(10, int), np.ones(25, int)]
    scores = rng.normal(size=35) + labels
    runs = metrics.bootstrap_auroc(labels, {"a": scores, "same": scores.copy(), "flipped": -scores}, resamples=300)
    again = metrics.bootstrap_auroc(labels, {"a": scores}, resamples=300)
    np.testing.assert_array_equal(runs["a"], again["a"])
    np.testing.assert_array_equal(runs["a"] - runs["same"], 0.0)
    np.testing.assert_allclose(runs["a"] + runs["flipped"], 1.0)
    low, high = metrics.interval(runs["a"])
    assert low < metrics.auroc(labels, scores) < high
    assert 0.05 < high - low < 0.5  # 35 images: a wide interval
