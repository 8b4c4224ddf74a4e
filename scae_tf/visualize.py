"""Figures for looking at the method step by step (notebooks, ad-hoc inspection); no TensorFlow.

Each function returns a matplotlib ``Figure`` (or draws on a given ``Axes``) and never saves or
switches the backend. Returned figures are already closed in pyplot: a notebook shows each one
exactly once, as the cell's value or with ``display(fig)``, whatever backend is active (some
modules switch to Agg to write PNGs, which would silence plots that wait for pyplot's own
display); scripts call ``fig.savefig``. matplotlib is imported lazily: the inspection path never
needs it. What is drawn comes straight from the library's own
results (``InspectionResult``, ``PatchTable``, ``Calibration``), never recomputed here, so a
figure shows exactly what the decision used.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from scae_tf.calibration import Calibration
    from scae_tf.postprocess import PatchTable

PATCH_COLOURS = {"object": "#9e9e9e", "candidate": "#ff9800", "flagged": "#e53935"}


def _pyplot():
    import matplotlib.pyplot as plt

    return plt


def _finish(fig: Any) -> Any:
    """Lay out, detach from pyplot (see the module docstring) and return the figure."""
    fig.tight_layout(pad=0.4)
    _pyplot().close(fig)
    return fig


def draw_contour(ax: Any, mask: np.ndarray | None, colour: str, linewidth: float = 1.0) -> None:
    """Outline a bool mask on ``ax`` (nothing for an empty or missing mask)."""
    if mask is None:
        return
    mask = np.asarray(mask)
    if mask.any():
        ax.contour(mask.astype(np.float32), levels=[0.5], colors=colour, linewidths=linewidth)


def image_grid(
    images: Sequence[np.ndarray],
    titles: Sequence[str] | None = None,
    columns: int = 4,
    contours: Sequence[Sequence[tuple[np.ndarray | None, str]]] | None = None,
    panel: float = 2.4,
    cmap: str = "gray",
    vmin: float | None = 0.0,
    vmax: float | None = 1.0,
    suptitle: str | None = None,
) -> Any:
    """Images in a grid, each with optional ``(mask, colour)`` outlines; returns the figure.

    Panels keep the images' aspect ratio, so square work images and wide canonical crops both
    read correctly.
    """
    plt = _pyplot()
    count = len(images)
    if count == 0:
        raise ValueError("image_grid needs at least one image")
    columns = max(1, min(columns, count))
    rows = -(-count // columns)
    height, width = np.asarray(images[0]).shape[:2]
    aspect = height / width
    fig, axes = plt.subplots(rows, columns, figsize=(panel * columns, panel * aspect * rows + 0.45 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for index, (ax, image) in enumerate(zip(axes.ravel(), images, strict=False)):
        ax.imshow(image, cmap=cmap, vmin=vmin, vmax=vmax)
        for mask, colour in (contours[index] if contours is not None else ()):
            draw_contour(ax, mask, colour)
        if titles is not None:
            ax.set_title(titles[index], fontsize=8)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    return _finish(fig)


def draw_patches(ax: Any, patches: PatchTable, show_all: bool = True, linewidth: float = 0.8) -> None:
    """Draw the patch boxes of a ``PatchTable`` on a crop axis.

    Grey: every object patch (``show_all``); orange: candidates (the top fraction by error);
    red: flagged (candidate with d above the calibrated threshold).
    """
    from matplotlib.patches import Rectangle

    layers = [("object", np.ones(len(patches), bool))] if show_all else []
    layers += [("candidate", patches.candidate & ~patches.flagged), ("flagged", patches.flagged)]
    for kind, selected in layers:
        for x0, y0, x1, y1 in patches.boxes[selected]:
            ax.add_patch(
                Rectangle(
                    (x0 - 0.5, y0 - 0.5),
                    x1 - x0,
                    y1 - y0,
                    fill=False,
                    edgecolor=PATCH_COLOURS[kind],
                    linewidth=linewidth * (1.6 if kind != "object" else 0.5),
                    alpha=0.35 if kind == "object" else 1.0,
                )
            )


def zone_bounds(crop_width: int, zones: int) -> np.ndarray:
    """x positions (crop pixels) of the boundaries between equal zones along the canonical axis.

    Mirrors ``scae_tf.postprocess.zones``: a patch belongs to the zone holding its centre, and
    zones are equal segments of the crop width. One zone or one zone per grid position: no lines.
    """
    if zones <= 1:
        return np.zeros(0)
    return np.arange(1, zones) * crop_width / zones - 0.5


def draw_zones(ax: Any, crop_width: int, zones: int, colour: str = "#00bcd4") -> None:
    """Dashed vertical lines between the zones of the post-processor on a crop axis."""
    for x in zone_bounds(crop_width, zones):
        ax.axvline(x, color=colour, linestyle="--", linewidth=0.8)


def patch_decision_figure(
    result: Any, title: str | None = None, zones: int = 0, defect_mask: np.ndarray | None = None
) -> Any:
    """One ``InspectionResult`` in crop space: crop with its patches, and the per-pixel d map.

    Left: the canonical crop with every object patch (grey), the candidates (orange) and the
    flagged patches (red). Right: the crop anomaly map (max d of the covering patches), on a scale
    where the calibrated threshold is mid-range, with the zone boundaries. ``defect_mask``: the
    true defect in WORK-image pixels (same size as ``result.object_mask``), outlined in cyan on both.
    """
    from scae_tf.pose import warp_to_crop

    plt = _pyplot()
    crop = result.crop
    aspect = crop.shape[0] / crop.shape[1]
    fig, axes = plt.subplots(1, 2, figsize=(11, 5.5 * aspect + 0.8))
    axes[0].imshow(crop, cmap="gray", vmin=0, vmax=1)
    draw_contour(axes[0], result.crop_mask, "#4caf50", 0.8)
    draw_patches(axes[0], result.patches)
    axes[0].set_title("patches: object (grey), top candidates (orange), flagged (red)"
                      + (", true defect (cyan)" if defect_mask is not None else ""), fontsize=8)
    threshold = float(result.threshold)
    top = 2.0 * threshold if np.isfinite(threshold) and threshold > 0 else None
    shown = axes[1].imshow(result.crop_anomaly_map, cmap="magma", vmin=0, vmax=top)
    draw_zones(axes[1], crop.shape[1], zones)
    if defect_mask is not None:
        crop_defect = warp_to_crop(np.asarray(defect_mask, dtype=bool), result.pose)
        for ax in axes:
            draw_contour(ax, crop_defect, "cyan", 1.2)
    axes[1].set_title(f"d = deviation / zone sigma (threshold {threshold:.2f} = mid-scale)", fontsize=8)
    fig.colorbar(shown, ax=axes[1], fraction=0.03, pad=0.02)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    verdict = "ANOMALOUS" if result.anomalous else "good"
    fig.suptitle(f"{title + ': ' if title else ''}{verdict}, score {result.score:.2f}", fontsize=10)
    return _finish(fig)


def reconstruction_figure(results: Sequence[Any], names: Sequence[str], residual_vmax: float | None = None) -> Any:
    """Rows of crop / CAE reconstruction / residual / crop anomaly map (flagged patches boxed)."""
    plt = _pyplot()
    if not results:
        raise ValueError("reconstruction_figure needs at least one result")
    crop_shape = results[0].crop.shape
    aspect = crop_shape[0] / crop_shape[1]
    fig, axes = plt.subplots(len(results), 4, figsize=(13, (13 / 4) * aspect * len(results) + 0.6), squeeze=False)
    vmax = residual_vmax or float(np.percentile(np.concatenate([r.residual[r.crop_mask] for r in results if r.crop_mask.any()] or [np.ones(1)]), 99.5))
    for row, result, name in zip(axes, results, names, strict=True):
        row[0].imshow(result.crop, cmap="gray", vmin=0, vmax=1)
        row[1].imshow(result.reconstruction, cmap="gray", vmin=0, vmax=1)
        row[2].imshow(result.residual, cmap="inferno", vmin=0, vmax=vmax)
        draw_contour(row[2], result.crop_mask, "#4caf50", 0.6)
        threshold = float(result.threshold)
        row[3].imshow(result.crop_anomaly_map, cmap="magma", vmin=0, vmax=2 * threshold if np.isfinite(threshold) else None)
        draw_patches(row[3], result.patches, show_all=False)
        verdict = "ANOMALOUS" if result.anomalous else "good"
        row[0].set_ylabel(f"{name}\n{verdict} {result.score:.1f}", fontsize=7)
        for ax in row:
            ax.set_xticks([])
            ax.set_yticks([])
    judged_by_texture = all(r.reconstruction is r.crop for r in results)  # the CAE was not run (scae_tf.references.needs_reconstruction)
    second = "not reconstructed: judged by texture" if judged_by_texture else "CAE reconstruction"
    first_row_headings = ("canonical crop", second, "texture distance" if judged_by_texture else "residual (object: green)", "d map, flagged patches")
    for ax, heading in zip(axes[0], first_row_headings, strict=True):
        ax.set_title(heading, fontsize=8)
    return _finish(fig)


def axis_profile(maps: Sequence[np.ndarray], masks: Sequence[np.ndarray]) -> np.ndarray:
    """Mean of crop-space ``maps`` over the object pixels of each crop column, pooled over all crops.

    In canonical pose a column is a place along the part (head on the left), so this is "how large
    is the residual at this place on good parts"; NaN for columns with no object pixel.
    """
    total = np.zeros(np.asarray(maps[0]).shape[1])
    count = np.zeros_like(total)
    for values, mask in zip(maps, masks, strict=True):
        mask = np.asarray(mask, dtype=bool)
        total += np.where(mask, values, 0.0).sum(axis=0)
        count += mask.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def axis_profile_figure(results: Sequence[Any], zones: int, crop: np.ndarray | None = None) -> Any:
    """Residual along the canonical axis on good parts (raw, and as the per-position z-score), zones marked."""
    plt = _pyplot()
    if not results:
        raise ValueError("axis_profile_figure needs at least one result")
    masks = [r.crop_mask for r in results]
    raw = axis_profile([r.residual for r in results], masks)
    rows = 2 if crop is not None else 1
    fig, axes = plt.subplots(rows, 1, figsize=(9, 2.4 * rows + 0.4), squeeze=False, sharex=True)
    ax = axes[0, 0]
    ax.plot(raw, color="#e53935", label="raw residual (mean over object pixels of the column)")
    ax.set_ylabel("residual")
    ax.set_xlim(-0.5, raw.size - 0.5)
    ax.legend(fontsize=8, loc="upper right")
    draw_zones(ax, raw.size, zones)
    ax.set_title(f"good parts ({len(results)}): where the CAE's error is large along the part", fontsize=9)
    if crop is not None:
        axes[1, 0].imshow(crop, cmap="gray", vmin=0, vmax=1, aspect="auto")
        draw_zones(axes[1, 0], crop.shape[1], zones)
        axes[1, 0].set_yticks([])
        axes[1, 0].set_xlabel("crop column (head on the left)")
    return _finish(fig)


def zone_sigma_figure(calibration: Calibration, crop: np.ndarray | None = None) -> Any:
    """Sigma of the neighbour deviation per zone (bars) against the pooled sigma, above a crop with the zones."""
    plt = _pyplot()
    sigma = np.asarray(calibration.zone_sigma)
    rows = 2 if crop is not None else 1
    fig, axes = plt.subplots(rows, 1, figsize=(9, 2.6 * rows + 0.4), squeeze=False)
    ax = axes[0, 0]
    ax.bar(np.arange(sigma.size), sigma, color="#5c6bc0", label="zone sigma")
    ax.axhline(calibration.pooled_sigma, color="k", linestyle="--", linewidth=1, label=f"pooled sigma {calibration.pooled_sigma:.3g}")
    ax.set_xlabel("zone along the canonical axis (0 = head)")
    ax.set_ylabel("sigma of the deviation")
    ax.set_xticks(np.arange(sigma.size))
    ax.legend(fontsize=8)
    if crop is not None:
        crop_ax = axes[1, 0]
        crop_ax.imshow(crop, cmap="gray", vmin=0, vmax=1)
        draw_zones(crop_ax, crop.shape[1], sigma.size)
        width = crop.shape[1]
        for zone in range(sigma.size):
            crop_ax.text((zone + 0.5) * width / sigma.size, crop.shape[0] * 0.08, str(zone), color="#00bcd4",
                         ha="center", va="top", fontsize=8)
        crop_ax.set_title("the same zones on a canonical crop", fontsize=8)
        crop_ax.set_xticks([])
        crop_ax.set_yticks([])
    return _finish(fig)


def max_statistic_figure(calibration: Calibration) -> Any:
    """Histogram of the good calibration images' image score (max d), with the plain k and the calibrated tau."""
    plt = _pyplot()
    values = np.asarray(calibration.max_statistics, dtype=np.float64)
    k = float(calibration.config.k_sigma)
    fig, ax = plt.subplots(figsize=(8, 3.2))
    ax.hist(values, bins=max(5, min(30, values.size // 2)), color="#90a4ae", edgecolor="white")
    ax.axvline(k, color="#ff9800", linewidth=1.5,
               label=f"plain rule d > k = {k:g}: {100 * calibration.false_alarm_rate_zones_k:.0f} % of good parts flagged")
    ax.axvline(calibration.threshold, color="#e53935", linewidth=2,
               label=f"calibrated tau = {calibration.threshold:.2f}: {100 * calibration.false_alarm_rate:.0f} % flagged "
               f"(target {100 * calibration.config.target_false_alarm_rate:g} %)")
    ax.set_xlabel("image score of a good calibration part = max d over its candidate patches")
    ax.set_ylabel("good images")
    ax.legend(fontsize=8)
    return _finish(fig)


def roc_figure(curves: dict[str, tuple[np.ndarray, np.ndarray]], title: str = "ROC") -> Any:
    """ROC curves ``{label: (fpr, tpr)}`` (e.g. from ``scae_tf.metrics.roc_curve``) with the chance line."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.2, 3.9))
    for label, (fpr, tpr) in curves.items():
        ax.plot(fpr, tpr, label=label)
    ax.plot([0, 1], [0, 1], "k:", linewidth=0.8)
    ax.set_xlabel("false-positive rate")
    ax.set_ylabel("true-positive rate")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8, loc="lower right")
    return _finish(fig)
