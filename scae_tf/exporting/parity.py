"""Parity of a converted bundle with its Keras models, recorded in the manifest.

Two levels, both on held-aside good images (the run's validation split):

* model level: max / mean absolute difference of the U-Net probabilities and the CAE
  reconstructions, TFLite vs Keras, on identical inputs (seg inputs, and the canonical crops
  the Keras path produces);
* pipeline level: the full inspection (``InspectionPipeline``) once with each back-end:
  agreement of image verdicts and of per-patch flags, and the largest score difference.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from scae_tf.errors import ScaeError

ArrayFn = Callable[[np.ndarray], np.ndarray]


def difference_stats(reference: ArrayFn, candidate: ArrayFn, inputs: Iterable[np.ndarray]) -> dict[str, float]:
    """max / mean |reference(x) - candidate(x)| over ``inputs`` (mean over every element)."""
    max_abs, total, count, images = 0.0, 0.0, 0, 0
    for x in inputs:
        expected = np.asarray(reference(x), dtype=np.float64)
        got = np.asarray(candidate(x), dtype=np.float64)
        if expected.shape != got.shape:
            raise ValueError(f"output shapes differ: reference {expected.shape}, candidate {got.shape}")
        diff = np.abs(expected - got)
        max_abs = max(max_abs, float(diff.max()))
        total += float(diff.sum())
        count += diff.size
        images += 1
    return {"max_abs": max_abs, "mean_abs": total / max(count, 1), "images": images}


def _flags_by_position(result: Any) -> dict[tuple[int, int], bool]:
    patches = result.patches
    return {(int(r), int(c)): bool(f) for (r, c), f in zip(patches.grid_index, patches.flagged, strict=True)}


def pipeline_agreement(reference: Any, candidate: Any, images: Sequence[np.ndarray]) -> dict[str, Any]:
    """Run both ``InspectionPipeline``s on ``images`` and compare verdicts, patch flags and scores.

    Patch flags are compared per grid position over the object patches of either run (a patch
    that is off the object in one run counts as not flagged there), so a slightly different
    object mask shows up as disagreement only where it changes a flag.
    """
    same_verdict, patch_total, patch_same, flagged_ref, flagged_got = 0, 0, 0, 0, 0
    score_diff, rel_diff = 0.0, 0.0
    failures = {"both": 0, "reference": 0, "candidate": 0}
    for image in images:
        ref, got = _inspect_or_none(reference, image), _inspect_or_none(candidate, image)
        if ref is None or got is None:  # no part found: agreement only if both fail
            key = "both" if ref is None and got is None else "reference" if ref is None else "candidate"
            failures[key] += 1
            same_verdict += int(key == "both")
            continue
        same_verdict += int(ref.anomalous == got.anomalous)
        diff = abs(float(ref.score) - float(got.score))
        if math.isfinite(diff):
            score_diff = max(score_diff, diff)
            rel_diff = max(rel_diff, diff / max(abs(float(ref.threshold)), 1e-12))
        ref_flags, got_flags = _flags_by_position(ref), _flags_by_position(got)
        positions = set(ref_flags) | set(got_flags)
        patch_total += len(positions)
        patch_same += sum(ref_flags.get(p, False) == got_flags.get(p, False) for p in positions)
        flagged_ref += sum(ref_flags.values())
        flagged_got += sum(got_flags.values())
    n = len(images)
    return {
        "images": n,
        "verdict_agreement": same_verdict / n if n else None,
        "patch_flag_agreement": patch_same / patch_total if patch_total else None,
        "flagged_patches_reference": flagged_ref,
        "flagged_patches_candidate": flagged_got,
        "score_max_abs_diff": score_diff,
        "score_max_diff_over_threshold": rel_diff,
        "inspection_failures": failures,
    }


def disagreement_message(agreement: dict[str, Any], source: str) -> str | None:
    """One readable line when the two pipelines' verdicts differ (None when they agree): how many images,
    by how much the scores moved against the threshold, how many patch flags agree."""
    images, share = agreement.get("images") or 0, agreement.get("verdict_agreement")
    if not images or share is None or share == 1.0:
        return None
    differ = int(round(images * (1.0 - share)))
    patches = agreement.get("patch_flag_agreement")
    return (
        f"the exported model's verdict differs from Keras on {differ} of {images} {source} images (scores moved by up to "
        f"{agreement['score_max_abs_diff']:.2f}, {agreement['score_max_diff_over_threshold']:.0%} of the threshold"
        + (f"; patch flags agree on {patches:.1%}" if patches is not None else "")
        + "): an image near the threshold can fall either side; the figures are in manifest.json (parity)"
    )


def _inspect_or_none(pipeline: Any, image: np.ndarray) -> Any:
    try:
        return pipeline.inspect(image)
    except ScaeError:
        return None
