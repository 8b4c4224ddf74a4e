"""Leakage: how much of a defect the CAE copies into its reconstruction (no TensorFlow).

A reconstruction-based detector only sees what the CAE does NOT rebuild. Implant a defect
(``scae_tf.implant``, kinds the CAE never trained on) into the canonical crop of a held-aside good
image, reconstruct the clean and the implanted crop, and measure inside the implant:

* ``copied``: the share of the implanted change that reappears in the reconstruction, the
  projection sum(d_rec * d_in) / sum(d_in^2) with d_in = implanted - clean input and d_rec =
  reconstruction(implanted) - reconstruction(clean): 0 = removed, 1 = copied;
* ``contrast``: mean residual inside the implant over the mean residual on the rest of the part,
  i.e. how much the defect stands out of the part's own reconstruction noise.

The crop is implanted after pre-processing, so the figures isolate the CAE from segmentation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from scae_tf.implant import IMPLANT_KINDS, implant_defect
from scae_tf.residual import residual_map


@dataclass(frozen=True)
class LeakageSample:
    kind: str
    copied: float
    contrast: float


def crop_leakage(pipeline, crop: np.ndarray, crop_mask: np.ndarray, kind: str, rng: np.random.Generator) -> LeakageSample:
    """One implant of ``kind`` into ``crop`` (a canonical crop with its object mask)."""
    gray = crop if crop.ndim == 2 else crop[..., 0]
    implanted = implant_defect(np.clip(gray, 0.0, 1.0), crop_mask, rng, kind)
    clean_rec = _reconstruct(pipeline, gray)
    defect_rec = _reconstruct(pipeline, implanted.image)
    inside = implanted.defect_mask
    d_in = (implanted.image - gray)[inside]
    d_rec = (defect_rec - clean_rec)[inside]
    copied = float(np.sum(d_rec * d_in) / max(float(np.sum(d_in * d_in)), 1e-12))
    residual = residual_map(implanted.image, defect_rec, pipeline.config)
    rest = crop_mask & ~inside
    background = float(residual[rest].mean()) if rest.any() else float("nan")
    contrast = float(residual[inside].mean()) / max(background, 1e-12)
    return LeakageSample(kind, copied, contrast)


def _reconstruct(pipeline, crop: np.ndarray) -> np.ndarray:
    return np.asarray(pipeline.backend.reconstruct(crop.astype(np.float32)), dtype=np.float32).reshape(crop.shape)


def measure_leakage(
    pipeline,
    images: Sequence[np.ndarray],
    kinds: Sequence[str] = IMPLANT_KINDS,
    seed: int = 0,
) -> dict:
    """Implant every kind once into each image's crop; per-kind and overall medians."""
    rng = np.random.default_rng(seed)
    samples: list[LeakageSample] = []
    for image in images:
        result = pipeline.inspect(image)
        if not result.crop_mask.any():
            continue
        for kind in kinds:
            try:
                samples.append(crop_leakage(pipeline, result.crop, result.crop_mask, kind, rng))
            except ValueError:  # no visible place for this kind on this crop
                continue
    return summarise(samples, kinds)


def summarise(samples: Sequence[LeakageSample], kinds: Sequence[str]) -> dict:
    def stats(group: Sequence[LeakageSample]) -> dict:
        if not group:
            return {"n": 0, "copied": None, "contrast": None}
        return {
            "n": len(group),
            "copied": round(float(np.median([s.copied for s in group])), 4),
            "contrast": round(float(np.median([s.contrast for s in group])), 3),
        }

    return {"all": stats(samples), "per_kind": {k: stats([s for s in samples if s.kind == k]) for k in kinds}}
