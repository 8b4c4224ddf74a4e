"""Evaluation figures (matplotlib, Agg): ROC curves, confusion matrices, overlays, score vs brightness."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from scae_tf.metrics import ConfusionMatrix, roc_curve
from scae_tf.overlay import render_overlay
from scae_tf.plotting import save_png, subplots

if TYPE_CHECKING:
    from scae_tf.evaluation.records import Evaluation, Thumbnail

LABELS = {
    "segmentation_guided": "segmentation-guided (method)",
    "whole_image_error": "whole-image error",
    "object_residual_max": "object residual max",
    "object_residual_zmax": "object residual z max",
    "edge_energy": "edge energy (no CAE)",
}


def _save(fig, path: Path) -> Path:
    return save_png(fig, path, dpi=110, bbox_inches="tight")


def plot_roc(evaluation: Evaluation, path: Path) -> Path:
    """ROC curves of the method and the baselines, raw and (when measured) brightness-controlled."""
    blocks = [("raw", evaluation.metrics)]
    if "brightness_controlled" in evaluation.metrics:
        blocks.append(("brightness-controlled", evaluation.metrics["brightness_controlled"]))
    fig, axes = subplots(1, len(blocks), figsize=(5.2 * len(blocks), 4.8), squeeze=False)
    for ax, (title, block), records in zip(axes[0], blocks, evaluation.passes.values(), strict=True):
        for name, scores in records.scores.items():
            fpr, tpr, _ = roc_curve(evaluation.labels, np.asarray(scores))
            auc = block["methods"][name]["image_auroc"]
            auc_text = "n/a" if auc is None else f"{auc:.3f}"
            ax.plot(fpr, tpr, lw=2.2 if name == "segmentation_guided" else 1.3,
                    label=f"{LABELS.get(name, name)} (AUROC {auc_text})")
        brightness = np.asarray(records.statistics["mean_brightness"])
        shortcut = block["shortcut"]["statistics"]["mean_brightness"]
        if shortcut["direction"].startswith("lower"):
            brightness = -brightness
        fpr, tpr, _ = roc_curve(evaluation.labels, brightness)
        ax.plot(fpr, tpr, ls=":", lw=1.2, color="gray",
                label=f"mean brightness, shortcut (AUROC {shortcut['auroc_either_direction']:.3f})")
        ax.plot([0, 1], [0, 1], color="black", lw=0.6, ls="--")
        ax.set(xlabel="false positive rate", ylabel="true positive rate", title=f"Image-level ROC, {title}",
               xlim=(0, 1), ylim=(0, 1.01))
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return _save(fig, path)


def _draw_matrix(ax, cm: dict, title: str) -> None:
    matrix = np.array([[cm["tn"], cm["fp"]], [cm["fn"], cm["tp"]]])
    ax.imshow(matrix, cmap="Blues")
    for (row, col), value in np.ndenumerate(matrix):
        ax.text(col, row, str(value), ha="center", va="center",
                color="white" if value > matrix.max() / 2 else "black", fontsize=12)
    ax.set_xticks([0, 1], ["good", "defective"])
    ax.set_yticks([0, 1], ["good", "defective"])
    ax.set(xlabel="predicted", ylabel="true", title=title)


def plot_confusion_matrices(evaluation: Evaluation, path: Path) -> Path:
    """Image-level confusion matrix at the calibrated threshold, and the patch-level one."""
    metrics = evaluation.metrics
    fig, axes = subplots(1, 2, figsize=(8.5, 3.8))
    cm = ConfusionMatrix(**metrics["confusion_matrix"])
    _draw_matrix(axes[0], metrics["confusion_matrix"], f"Images (accuracy {cm.accuracy:.2f})")
    patch = metrics["patch_level"]
    _draw_matrix(axes[1], patch["confusion_matrix"], f"Patches (accuracy {patch['accuracy']:.3f})")
    fig.tight_layout()
    return _save(fig, path)


GROUND_TRUTH_RGB = (255, 0, 255)  # magenta: not in the heat colour map nor the green object contour


def overlay_image(thumbnail: Thumbnail) -> np.ndarray:
    """RGB uint8: the method's overlay (scae_tf.overlay) plus the ground-truth contours in magenta."""
    threshold = thumbnail.threshold
    canvas = render_overlay(
        thumbnail.image,
        thumbnail.anomaly_map,
        thumbnail.object_mask,
        thumbnail.flagged_corners,
        vmax=2.0 * threshold if np.isfinite(threshold) and threshold > 0 else None,
    )
    contours, _ = cv2.findContours(thumbnail.ground_truth.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(canvas, contours, -1, GROUND_TRUTH_RGB, 1)
    return canvas


MAP_LEGEND = (
    "anomaly map (blue to red, full red at twice the threshold), flagged patches (red boxes), "
    "object outline (green), ground-truth defect outline (magenta)"
)


def plot_overlays(thumbnails: list[Thumbnail], path: Path, columns: int = 4, title: str | None = None) -> Path:
    """Grid of test images with the method's anomaly map and the ground-truth contours (``MAP_LEGEND``)."""
    rows = max(1, int(np.ceil(len(thumbnails) / columns)))
    fig, axes = subplots(rows, columns, figsize=(3.2 * columns, 3.4 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, thumbnail in zip(axes.ravel(), thumbnails, strict=False):
        ax.imshow(overlay_image(thumbnail))
        verdict = "ANOMALOUS" if thumbnail.anomalous else "ok"
        ax.set_title(f"{thumbnail.name}\nscore {thumbnail.score:.2f} / thr {thumbnail.threshold:.2f}: {verdict}",
                     fontsize=7, color="darkred" if thumbnail.anomalous else "black")
    legend = MAP_LEGEND[0].upper() + MAP_LEGEND[1:]
    fig.suptitle(f"{title}\n{legend}" if title else legend, fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def plot_score_vs_brightness(evaluation: Evaluation, path: Path) -> Path:
    """Method score against mean brightness per image: a shortcut shows up as a trend."""
    fig, axes = subplots(1, len(evaluation.passes), figsize=(5 * len(evaluation.passes), 3.8), squeeze=False)
    for ax, (name, records) in zip(axes[0], evaluation.passes.items(), strict=True):
        brightness = np.asarray(records.statistics["mean_brightness"])
        scores = np.asarray(records.scores["segmentation_guided"], np.float64)
        finite = np.isfinite(scores)
        if not finite.all():  # no object found (+inf): draw just above the highest finite score
            top = scores[finite].max() if finite.any() else 1.0
            scores = np.where(finite, scores, top + 0.1 * abs(top) + 1e-3)
        for label, colour, text in ((0, "tab:blue", "good"), (1, "tab:red", "defective")):
            chosen = evaluation.labels == label
            ax.scatter(brightness[chosen], scores[chosen], s=14, c=colour, label=text)
        ax.axhline(records.method_threshold[0], color="gray", ls="--", lw=0.8, label="threshold")
        ax.set(xlabel="mean brightness", ylabel="method score", title=name.replace("_", " "))
        ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path)
