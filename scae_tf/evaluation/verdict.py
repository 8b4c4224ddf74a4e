"""The evaluation's verdict in plain words: defects caught and good parts flagged at the tool's own
threshold. One wording for report.html and the ``scae demo`` summary (no plotting, no TensorFlow)."""

from __future__ import annotations

from typing import Any


def verdict_counts(metrics: dict[str, Any]) -> dict[str, Any]:
    """The figures the verdict needs, from ``metrics.json`` (raw test set, the method's threshold)."""
    cm = metrics["confusion_matrix"]
    return {
        "caught": cm["tp"],
        "defective": cm["tp"] + cm["fn"],
        "flagged": cm["fp"],
        "good": cm["fp"] + cm["tn"],
        "threshold": metrics["threshold"],
        "target_false_alarm_rate": metrics["calibration"]["target_false_alarm_rate"],
        "image_auroc": metrics.get("image_auroc"),
    }


def _percent(part: int, whole: int) -> str:
    return f" ({100 * part / whole:.0f} %)" if whole else ""


def verdict_sentences(counts: dict[str, Any]) -> tuple[str, str, str]:
    """(headline, threshold, plain reading) from :func:`verdict_counts`."""
    caught, defective, flagged, good = counts["caught"], counts["defective"], counts["flagged"], counts["good"]
    rate = counts["target_false_alarm_rate"]
    threshold = counts["threshold"]
    headline = (f"Caught {caught} of {defective} defective parts{_percent(caught, defective)}; "
                f"flagged {flagged} of {good} good parts{_percent(flagged, good)} as defective (false alarms).")
    setting = ("At the tool's own threshold" + ("" if threshold is None else f" {threshold:.3f} on the image score")
               + f", calibrated on good images only (never on test labels) for a {100 * rate:g} % false-alarm target.")
    auroc = counts.get("image_auroc")
    ranking = "" if auroc is None else (f" (image AUROC {auroc:.3f}: 1.0 ranks every defective part above every "
                                        "good one, 0.5 is chance)")
    recall = caught / defective if defective else 0.0
    if recall >= 0.9:
        reading = f"It catches nearly every defect{ranking}."
    elif recall >= 0.5:
        reading = f"It catches most defects but misses {defective - caught}{ranking}."
    elif auroc is not None and auroc >= 0.8:
        reading = (f"It misses most defects at this threshold, although its scores rank most defective parts above "
                   f"good ones{ranking}: the threshold sits above most defects' scores.")
    else:
        reading = f"It misses most defects: its scores barely separate defective from good parts{ranking}."
    if good and flagged / good > rate:
        reading += f" More good parts were flagged here than the {100 * rate:g} % target."
    return headline, setting, reading
