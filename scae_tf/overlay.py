"""Overlay images: anomaly heatmap on the part, object contour, flagged patches boxed (no TensorFlow).

Used by ``scae inspect --out`` and the evaluation report. Colours are on a fixed scale relative
to the calibrated threshold (by default the map's value equal to the threshold is mid-scale),
so two overlays of the same bundle can be compared by eye.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

CONTOUR_RGB = (0, 220, 0)
FLAG_RGB = (255, 0, 0)
TEXT_GOOD_RGB = (0, 220, 0)
TEXT_BAD_RGB = (255, 40, 40)


def _as_rgb_uint8(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8:
        scale = 255.0 / 65535.0 if image.dtype == np.uint16 else 255.0
        image = np.clip(np.rint(image.astype(np.float32) * scale), 0, 255).astype(np.uint8)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.ndim == 3 and image.shape[2] == 1:
        return cv2.cvtColor(image[:, :, 0], cv2.COLOR_GRAY2RGB)
    return np.ascontiguousarray(image[:, :, :3])


def render_overlay(
    image: np.ndarray,
    anomaly_map: np.ndarray,
    object_mask: np.ndarray | None = None,
    flagged_corners: Sequence[np.ndarray] = (),
    vmax: float | None = None,
    label: str | None = None,
    anomalous: bool = False,
    alpha: float = 0.55,
) -> np.ndarray:
    """Return an (H, W, 3) uint8 RGB overlay at the size of ``image``.

    ``anomaly_map`` and ``object_mask`` may be at another (square work) size; they are resized
    onto the image. ``flagged_corners`` are (4, 2) x, y arrays in image pixels (rotated boxes).
    ``vmax`` is the map value shown at full colour (default: the map's maximum).
    """
    canvas = _as_rgb_uint8(image)
    height, width = canvas.shape[:2]
    heat = cv2.resize(np.asarray(anomaly_map, np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
    top = float(vmax) if vmax is not None and np.isfinite(vmax) and vmax > 0 else float(max(heat.max(), 1e-6))
    level = np.clip(heat / top, 0.0, 1.0)
    colours = cv2.cvtColor(cv2.applyColorMap(np.rint(level * 255).astype(np.uint8), cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
    weight = (alpha * np.clip(level * 2.0, 0.0, 1.0))[..., None]  # low values only tint, high ones cover
    canvas = np.rint(canvas * (1.0 - weight) + colours * weight).astype(np.uint8)
    thickness = max(1, round(min(height, width) / 400))
    if object_mask is not None:
        mask = cv2.resize(np.asarray(object_mask, np.uint8), (width, height), interpolation=cv2.INTER_NEAREST)
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(canvas, contours, -1, CONTOUR_RGB, thickness, lineType=cv2.LINE_AA)
    for corners in flagged_corners:
        points = np.rint(np.asarray(corners, np.float32)).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(canvas, [points], True, FLAG_RGB, thickness + 1, lineType=cv2.LINE_AA)
    if label:
        scale = max(0.4, min(height, width) / 700)
        colour = TEXT_BAD_RGB if anomalous else TEXT_GOOD_RGB
        origin = (int(8 * scale), int(28 * scale))
        cv2.putText(canvas, label, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thickness + 3, cv2.LINE_AA)
        cv2.putText(canvas, label, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, thickness + 1, cv2.LINE_AA)
    return canvas


def result_overlay(image: np.ndarray, result: Any) -> np.ndarray:
    """Overlay of an ``InspectionResult`` on the image it came from.

    Full colour at twice the calibrated threshold, so a region exactly at the threshold is
    mid-scale (cyan-green) and anything clearly above it turns red.
    """
    threshold = float(result.threshold)
    verdict = "ANOMALOUS" if result.anomalous else "good"
    return render_overlay(
        image,
        result.anomaly_map,
        result.object_mask,
        [patch.corners for patch in result.flagged],
        vmax=2.0 * threshold if np.isfinite(threshold) and threshold > 0 else None,
        label=f"ANOMALOUS  {reason}" if (reason := getattr(result, "reason", None)) else f"{verdict}  score {result.score:.2f} / thr {threshold:.2f}",
        anomalous=bool(result.anomalous),
    )
