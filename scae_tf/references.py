"""Nearest good references: the residual of a crop against the good training crops most like it (no TensorFlow).

The CAE rebuilds what good parts share and blurs what they do not share at one place (thread
phase, a head's mark, tread): its residual is high there on every good part, and a small defect
drowns in it. The good training crops show that detail. The residual against the few crops most
like this one, each allowed a pixel or two of misregistration, is low wherever some good part
looks the same and high where none does. ``part_residual`` takes the geometric mean of the two,
so a pixel stands out only when neither the CAE nor a near good part explains it.

Canonical crops only: a surface's texture has no aligned counterpart in another image. What it
changed, per part kind, is in the README (Results).
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from scae_tf.config import PostprocessConfig
from scae_tf.residual import gaussian_blur, residual_map

MAX_REFERENCE_BYTES = 12 * 2**20  # stored as 8-bit crops inside calibration.json; more references are subsampled
SEARCH_DOWNSAMPLE = 2  # the nearest references are chosen on crops at 1/this resolution (4x fewer operations)


def _with_channels(crops: np.ndarray) -> np.ndarray:
    """A batch (n, h, w) -> (n, h, w, 1); (n, h, w, c) as is."""
    return crops[..., None] if crops.ndim == 3 else crops


def _crop_with_channels(crop: np.ndarray) -> np.ndarray:
    """One crop (h, w) -> (h, w, 1), float32; (h, w, c) as is."""
    crop = np.asarray(crop, np.float32)
    return crop[..., None] if crop.ndim == 2 else crop


@dataclass(frozen=True)
class GoodReferences:
    """Good canonical crops, 8-bit, shape (n, height, width, channels)."""

    crops: np.ndarray
    _search: np.ndarray = field(init=False, repr=False, compare=False)  # downsampled gray crops (n, h, w)
    _search_column_squares: np.ndarray = field(init=False, repr=False, compare=False)  # (n, w)
    _padded: dict[int, np.ndarray] = field(init=False, repr=False, compare=False)  # {shift: float crops edge-padded by it}

    def __post_init__(self) -> None:
        crops = np.asarray(self.crops)
        if crops.ndim != 4 or crops.dtype != np.uint8 or len(crops) == 0:
            raise ValueError(f"references must be a non-empty uint8 array (n, h, w, c), got {crops.dtype} {crops.shape}")
        floats = crops.astype(np.float32) / 255.0
        object.__setattr__(self, "_padded", {0: floats})
        search = np.stack([self._search_image(c) for c in floats])
        object.__setattr__(self, "_search", search)
        object.__setattr__(self, "_search_column_squares", (search * search).sum(axis=1))

    @classmethod
    def from_crops(cls, crops: np.ndarray, max_bytes: int = MAX_REFERENCE_BYTES) -> GoodReferences:
        """Float crops in [0, 1], (n, h, w) or (n, h, w, c); evenly subsampled to fit ``max_bytes``."""
        crops = _with_channels(np.asarray(crops, np.float32))
        per_crop = int(np.prod(crops.shape[1:]))
        keep = max(1, min(len(crops), max_bytes // max(per_crop, 1)))
        if keep < len(crops):
            crops = crops[np.linspace(0, len(crops) - 1, keep).round().astype(int)]
        return cls(np.clip(crops * 255.0 + 0.5, 0, 255).astype(np.uint8))

    @property
    def shape(self) -> tuple[int, ...]:
        """(height, width, channels) of one reference."""
        return tuple(int(v) for v in self.crops.shape[1:])

    def __len__(self) -> int:
        return len(self.crops)

    @staticmethod
    def _search_image(crop: np.ndarray) -> np.ndarray:
        gray = crop.mean(axis=2) if crop.ndim == 3 else crop
        height, width = gray.shape
        size = (max(1, width // SEARCH_DOWNSAMPLE), max(1, height // SEARCH_DOWNSAMPLE))
        return cv2.resize(np.ascontiguousarray(gray, np.float32), size, interpolation=cv2.INTER_AREA)

    def nearest(self, crop: np.ndarray, count: int, columns: tuple[int, int] | None = None) -> np.ndarray:
        """Indices of the ``count`` references closest to ``crop`` (mean squared difference), closest
        first; ``columns`` (start, stop) in crop pixels compares that band of columns only."""
        return self._nearest_in(self._search_image(_crop_with_channels(crop)), count, columns)

    def _nearest_in(self, small: np.ndarray, count: int, columns: tuple[int, int] | None) -> np.ndarray:
        """``nearest`` from the crop's search image (made once per crop, whatever the number of bands)."""
        start, stop = 0, small.shape[1]
        if columns is not None:
            scale = small.shape[1] / self.shape[1]
            start = min(int(columns[0] * scale), small.shape[1] - 1)
            stop = max(start + 1, int(np.ceil(columns[1] * scale)))
        small = small[:, start:stop]
        # |a - b|^2 = |a|^2 - 2 a.b + |b|^2 with the references' squares summed per column once, at load
        cross = np.einsum("nij,ij->n", self._search[:, :, start:stop], small)
        distances = self._search_column_squares[:, start:stop].sum(axis=1) - 2.0 * cross + float((small * small).sum())
        count = min(count, len(distances))
        order = np.argpartition(distances, count - 1)[:count]
        return order[np.argsort(distances[order])]

    def _padded_floats(self, shift: int) -> np.ndarray:
        """The references as floats, edge-padded by ``shift`` px; one padding is kept (inspection reuses it)."""
        ((current, array),) = self._padded.items()
        if current != shift:
            height, width = self.shape[:2]
            plain = array[:, current : current + height, current : current + width]
            array = np.pad(plain, ((0, 0), (shift, shift), (shift, shift), (0, 0)), mode="edge")
            self._padded.clear()
            self._padded[shift] = array
        return array

    def residual(self, crop: np.ndarray, neighbours: int, shift: int, sigma: float, bands: int = 1) -> np.ndarray:
        """Per pixel, the smallest Gaussian-smoothed squared difference to one of the ``neighbours``
        nearest references shifted by up to ``shift`` px each way; float32 (height, width).

        ``bands`` > 1 chooses the nearest references per band of columns (along the canonical axis):
        one part's head may be closest to one good part and its thread to another."""
        x = _crop_with_channels(crop)
        if x.shape != self.shape:
            raise ValueError(f"crop {x.shape} and references {self.shape} differ in shape")
        height, width, channels = x.shape
        if channels == 1:
            x = x[..., 0]
        best = np.full((height, width), np.inf, np.float32)
        margin = shift + int(round(3.5 * sigma)) + 1  # columns a band's blur needs beyond its edges
        edges = np.linspace(0, width, max(1, min(bands, width)) + 1).round().astype(int)
        padded_references = self._padded_floats(shift)
        small = self._search_image(x)
        for start, stop in zip(edges[:-1], edges[1:], strict=True):
            low, high = max(0, start - margin), min(width, stop + margin)
            target, band = x[:, low:high], best[:, start:stop]
            for index in self._nearest_in(small, neighbours, (start, stop) if len(edges) > 2 else None):
                padded = padded_references[index]
                padded = padded[..., 0] if channels == 1 else padded
                for dy in range(2 * shift + 1):
                    for dx in range(2 * shift + 1):
                        difference = target - padded[dy : dy + height, low + dx : high + dx]
                        difference *= difference
                        error = np.ascontiguousarray(difference.mean(axis=2) if channels > 1 else difference)
                        np.minimum(band, gaussian_blur(error, sigma)[:, start - low : stop - low], out=band)
        return best

    def to_dict(self) -> dict[str, Any]:
        buffer = io.BytesIO()
        np.savez_compressed(buffer, crops=self.crops)
        return {"count": len(self), "shape": list(self.shape), "crops_npz_base64": base64.b64encode(buffer.getvalue()).decode("ascii")}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GoodReferences:
        raw = base64.b64decode(data["crops_npz_base64"].encode("ascii"), validate=True)
        with np.load(io.BytesIO(raw), allow_pickle=False) as archive:
            return cls(archive["crops"])


def part_residual(
    crop: np.ndarray, reconstruction: np.ndarray, config: PostprocessConfig, references: GoodReferences | None
) -> np.ndarray:
    """The residual the post-processor judges: the CAE's (``residual_map``) or, with references and
    ``config.reference_neighbours`` > 0, its geometric mean with the residual against the nearest goods."""
    residual = residual_map(crop, reconstruction, config)
    if references is None or config.reference_neighbours <= 0:
        return residual
    against_goods = references.residual(
        crop, config.reference_neighbours, config.reference_shift, config.residual_smooth_sigma, config.reference_bands
    )
    return np.sqrt(np.maximum(residual, 0.0) * against_goods).astype(np.float32)
