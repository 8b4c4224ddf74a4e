"""Nearest good references: the residual of a crop against the good training crops most like it (no TensorFlow).

The CAE rebuilds what good parts share and blurs what they do not share at one place (thread
phase, a head's mark, tread): its residual is high there on every good part, and a small defect
drowns in it. The good training crops show that detail. The residual against the few crops most
like this one, each allowed a pixel or two of misregistration (in half-pixel steps for elongated
parts, so a thread's crest matches its reference's), is low wherever some good part
looks the same and high where none does. ``part_residual`` takes a weighted geometric mean of the two
(``postprocess.reference_weight``), so a pixel stands out only when neither the CAE nor a near good part
explains it.

Canonical crops only: a surface's texture has no aligned counterpart in another image. What it
changed, per part kind, is in docs/results.md.
"""

from __future__ import annotations

import base64
import io
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from scae_tf.colour import ColourBalance
from scae_tf.config import PostprocessConfig
from scae_tf.residual import brightness_weight, denoise_sigma, gaussian_blur, residual_map, smoothed
from scae_tf.texture import TextureModel

MAX_REFERENCE_BYTES = 48 * 2**20  # stored as 8-bit crops inside calibration.json; more references are subsampled
FLOAT_CACHE_BYTES = 128 * 2**20  # references kept as padded float crops between calls, the most recently used first
SEARCH_DOWNSAMPLE = 2  # the nearest references are chosen on crops at 1/this resolution (4x fewer operations)


def _with_channels(crops: np.ndarray) -> np.ndarray:
    """A batch (n, h, w) -> (n, h, w, 1); (n, h, w, c) as is."""
    return crops[..., None] if crops.ndim == 3 else crops


def _crop_with_channels(crop: np.ndarray) -> np.ndarray:
    """One crop (h, w) -> (h, w, 1), float32; (h, w, c) as is."""
    crop = np.asarray(crop, np.float32)
    return crop[..., None] if crop.ndim == 2 else crop


def _channel_mean(values: np.ndarray) -> np.ndarray:
    """``values.mean(axis=-1)``, the same float32 sum in the same order, without numpy's slow reduction over a
    short last axis (it was 60 % of a colour part's reference residual)."""
    total = values[..., 0].copy()
    for channel in range(1, values.shape[-1]):
        total += values[..., channel]
    total /= values.shape[-1]
    return total


_MAX_BLUR_CHANNELS = 128  # OpenCV blurs at most this many channels in one call


def _shifted_windows(padded: np.ndarray, height: int, shift: int, subpixel: int) -> np.ndarray:
    """Every window of ``height`` rows and ``padded``'s width less 2 ``shift`` columns, shifted by -shift..shift
    px each way in steps of 1/``subpixel`` px (bilinear between whole-pixel windows): (candidates, height, width[, c])."""
    width = padded.shape[1] - 2 * shift
    whole = np.lib.stride_tricks.sliding_window_view(padded, (height, width), axis=(0, 1))  # (rows, columns, [c,] h, w), a view
    if whole.ndim == 5:
        whole = np.moveaxis(whole, 2, -1)
    steps = max(1, int(subpixel))
    count = 2 * shift * steps + 1
    grid = np.empty((count, count, *whole.shape[2:]), np.float32)
    grid[::steps, ::steps] = whole
    for k in range(1, steps):  # between whole rows
        fraction = np.float32(k / steps)
        grid[k::steps, ::steps] = whole[:-1] * (1 - fraction) + whole[1:] * fraction
    for k in range(1, steps):  # between whole columns, on every row
        fraction = np.float32(k / steps)
        grid[:, k::steps] = grid[:, : count - 1 : steps] * (1 - fraction) + grid[:, steps::steps] * fraction
    return grid.reshape(-1, *grid.shape[2:])


def _blurred_minimum(errors: np.ndarray, sigma: float) -> np.ndarray:
    """Per pixel, the minimum over candidates of each candidate's Gaussian-smoothed error map; errors (candidates, h, w)."""
    best = None
    for first in range(0, len(errors), _MAX_BLUR_CHANNELS):
        chunk = np.ascontiguousarray(errors[first : first + _MAX_BLUR_CHANNELS].transpose(1, 2, 0))  # candidates as channels
        blurred = gaussian_blur(chunk, sigma)
        if blurred.ndim == 3:  # numpy's min over a short last axis is slow; over the first, fast
            blurred = np.ascontiguousarray(blurred.transpose(2, 0, 1)).min(axis=0)
        best = blurred if best is None else np.minimum(best, blurred)
    return best


@dataclass(frozen=True)
class GoodReferences:
    """Good canonical crops, 8-bit, shape (n, height, width, channels)."""

    crops: np.ndarray
    _search: dict[int, tuple[np.ndarray, np.ndarray]] = field(init=False, repr=False, compare=False)
    # {reach: (downsampled gray crops column-major (n, w + 2 reach, h), edge-padded by reach columns; their squares summed per column)};
    # one padding is kept, the plain crops are its middle
    _floats: OrderedDict[tuple[int, int, int, float], np.ndarray] = field(init=False, repr=False, compare=False)
    # {(index, rows, columns, denoise): one reference as floats smoothed by denoise px, edge-padded by rows and columns}, the
    # most recently used within FLOAT_CACHE_BYTES: all of them as floats would take 4x the 8-bit crops (190 MB for a tyre's 203)

    def __post_init__(self) -> None:
        crops = np.asarray(self.crops)
        if crops.ndim != 4 or crops.dtype != np.uint8 or len(crops) == 0:
            raise ValueError(f"references must be a non-empty uint8 array (n, h, w, c), got {crops.dtype} {crops.shape}")
        object.__setattr__(self, "_floats", OrderedDict())
        search = np.stack([self._search_image(crop.astype(np.float32) / 255.0) for crop in crops])
        search = np.ascontiguousarray(search.transpose(0, 2, 1))
        object.__setattr__(self, "_search", {0: (search, (search * search).sum(axis=2))})

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
        indices, _ = self._nearest_in(self._search_image(_crop_with_channels(crop)), count, columns, 0)
        return indices

    def _nearest_in(
        self, small: np.ndarray, count: int, columns: tuple[int, int] | None, axial: int, exclude: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``nearest`` from the crop's search image (made once per crop, whatever the number of bands),
        each reference slid along the axis by up to ``axial`` crop px to its best match: returns the
        indices and each one's offset in crop px (a reference's column ``c + offset`` matches column ``c``)."""
        start, stop = 0, small.shape[1]
        scale = small.shape[1] / self.shape[1]
        if columns is not None:
            start = min(int(columns[0] * scale), small.shape[1] - 1)
            stop = max(start + 1, int(np.ceil(columns[1] * scale)))
        band = np.ascontiguousarray(small[:, start:stop].T).ravel()
        reach = int(axial * scale)
        search, squares = self._search_padded(reach)
        offsets = np.arange(-reach, reach + 1)
        distances = np.empty((len(offsets), len(search)), np.float64)
        for row, offset in enumerate(offsets):
            low, high = start + reach + offset, stop + reach + offset
            # |a - b|^2 = |a|^2 - 2 a.b + |b|^2 (|b|^2 is the same for every reference); column-major, so a
            # band of columns is one strided matrix and the products are one BLAS call
            cross = search[:, low:high].reshape(len(search), -1) @ band
            distances[row] = squares[:, low:high].sum(axis=1) - 2.0 * cross
        best_offset = distances.argmin(axis=0)
        distances = distances.min(axis=0)
        if exclude is not None:
            distances[exclude] = np.inf
        count = min(count, len(distances) - (exclude is not None))
        order = np.argpartition(distances, count - 1)[:count]
        order = order[np.argsort(distances[order])]
        return order, np.round(offsets[best_offset[order]] / scale).astype(int)

    def _search_padded(self, reach: int) -> tuple[np.ndarray, np.ndarray]:
        """The search images edge-padded by ``reach`` columns each side, and their squares summed per
        column; one padding is kept (inspection reuses it)."""
        ((current, (search, squares)),) = self._search.items()
        if current != reach:
            plain = search[:, current : search.shape[1] - current]
            search = np.pad(plain, ((0, 0), (reach, reach), (0, 0)), mode="edge")
            squares = (search * search).sum(axis=2)
            self._search.clear()
            self._search[reach] = (search, squares)
        return search, squares

    def _padded_float(self, index: int, rows: int, columns: int, denoise: float = 0.0) -> np.ndarray:
        """Reference ``index`` as floats, smoothed by ``denoise`` px (0: as stored), edge-padded by ``rows`` and
        ``columns`` px; the most recently used are kept within ``FLOAT_CACHE_BYTES`` (consecutive parts share their nearest)."""
        key = (int(index), rows, columns, denoise)
        array = self._floats.get(key)
        if array is not None:
            self._floats.move_to_end(key)
            return array
        plain = self.crops[index].astype(np.float32) / 255.0
        if denoise > 0:
            plain = smoothed(plain, denoise)
        array = np.pad(plain, ((rows, rows), (columns, columns), (0, 0)), mode="edge")
        self._floats[key] = array
        while len(self._floats) > max(1, FLOAT_CACHE_BYTES // array.nbytes):
            self._floats.popitem(last=False)
        return array

    def residual(
        self,
        crop: np.ndarray,
        neighbours: int,
        shift: int,
        sigma: float,
        bands: int = 1,
        axial: int = 0,
        exclude: int | None = None,
        subpixel: int = 1,
        colour: ColourBalance | None = None,
        smoothed_by: float = 0.0,
    ) -> np.ndarray:
        """Per pixel, the smallest Gaussian-smoothed squared difference to one of the ``neighbours``
        nearest references shifted by up to ``shift`` px each way in steps of 1/``subpixel`` px
        (bilinear); float32 (height, width).

        ``bands`` > 1 chooses the nearest references per band of columns (along the canonical axis):
        one part's head may be closest to one good part and its thread to another. ``axial`` > 0 first
        slides each reference along the axis by up to that many px to its best match in the band (one
        offset per reference and band): a thread's phase differs from part to part. ``subpixel`` > 1: a
        crest half a pixel off its reference's leaves a residual along every edge of a thread; finer
        steps match it. ``exclude``: the index of a reference never used (the crop's own, when a
        training crop is compared with the others). ``colour``: a colour crop's squared difference in balanced
        opponent components (``scae_tf/colour.py``) instead of the channel mean. ``smoothed_by``: the px the crop
        was smoothed by (``residual.denoise_sigma``; ``part_residual`` smooths it once for both residuals); the
        references are smoothed the same way."""
        x = _crop_with_channels(crop)
        if x.shape != self.shape:
            raise ValueError(f"crop {x.shape} and references {self.shape} differ in shape")
        height, width, channels = x.shape
        if channels == 1:
            x = x[..., 0]
        best = np.full((height, width), np.inf, np.float32)
        margin = shift + int(round(3.5 * sigma)) + 1  # columns a band's blur needs beyond its edges
        edges = np.linspace(0, width, max(1, min(bands, width)) + 1).round().astype(int)
        small = self._search_image(x)
        for start, stop in zip(edges[:-1], edges[1:], strict=True):
            low, high = max(0, start - margin), min(width, stop + margin)
            target, band = x[:, low:high], best[:, start:stop]
            indices, offsets = self._nearest_in(small, neighbours, (start, stop) if len(edges) > 2 else None, axial, exclude)
            for index, offset in zip(indices, offsets, strict=True):
                padded = self._padded_float(index, shift, shift + axial, smoothed_by)
                padded = padded[..., 0] if channels == 1 else padded
                first = low + axial + offset  # padded column matching the band's first column, before the fine shift
                windows = _shifted_windows(padded[:, first : first + high - low + 2 * shift], height, shift, subpixel)
                difference = windows - target
                if channels > 1 and colour is not None:
                    errors = colour.squared_error(difference)  # (candidates, h, w)
                else:
                    difference *= difference
                    errors = _channel_mean(difference) if channels > 1 else difference
                np.minimum(band, _blurred_minimum(errors, sigma)[:, start - low : stop - low], out=band)
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


def uses_references(config: PostprocessConfig, references: GoodReferences | TextureModel | None) -> bool:
    """Whether ``config`` has the residual also taken against ``references`` (the switch for their kind is on)."""
    if isinstance(references, TextureModel):
        return config.texture_model
    return references is not None and config.reference_neighbours > 0


def needs_reconstruction(config: PostprocessConfig, references: GoodReferences | TextureModel | None) -> bool:
    """Whether the residual uses the CAE's reconstruction: not when a surface is judged by its texture alone
    (``texture_weight`` 1), so the CAE is not run there (half a surface's inspection time)."""
    return not (isinstance(references, TextureModel) and config.texture_model and config.texture_weight >= 1.0)


def part_residual(
    crop: np.ndarray,
    reconstruction: np.ndarray,
    config: PostprocessConfig,
    references: GoodReferences | TextureModel | None,
    box: tuple[slice, slice] | None = None,
    exclude: int | None = None,
    colour: ColourBalance | None = None,
) -> np.ndarray:
    """The residual the post-processor judges: the CAE's (``residual_map``) or, when ``uses_references``,
    its geometric mean with the residual against the nearest good crops (weighted by
    ``postprocess.reference_weight``), or with the distance to good texture (``scae_tf/texture.py``). ``box``: only this window is computed, zero elsewhere (a small
    surface in a large frame, ``Preprocessor.analysis_box``; not with aligned references, which are positional).
    ``exclude``: a reference left out (``GoodReferences.residual``). ``colour``: a colour crop's squared
    errors in balanced opponent components (``scae_tf/colour.py``). With relative errors both residuals are
    taken on the crop (and the weight on the reconstruction) smoothed by ``residual.denoise_sigma``.
    Without ``needs_reconstruction`` the texture distance alone is returned and ``reconstruction`` is not read."""
    if box is not None:
        if isinstance(references, GoodReferences) and uses_references(config, references):
            raise ValueError("a residual against aligned good references needs the whole crop")
        full = np.zeros(crop.shape[:2], np.float32)
        full[box] = part_residual(crop[box], reconstruction[box], config, references, colour=colour)
        return full
    if not needs_reconstruction(config, references):
        return references.distance(crop)
    denoise = denoise_sigma(config)
    seen, expected = (smoothed(crop, denoise), smoothed(reconstruction, denoise)) if denoise > 0 else (crop, reconstruction)
    residual = residual_map(seen, expected, config, colour)
    weight = brightness_weight(expected, config)
    if weight is not None:
        residual = residual * weight
    if not uses_references(config, references):
        return residual
    if isinstance(references, TextureModel):
        return weighted_geometric_mean(residual, references.distance(crop), config.texture_weight)
    against_goods = references.residual(
        seen,
        config.reference_neighbours,
        config.reference_shift,
        config.residual_smooth_sigma,
        config.reference_bands,
        config.reference_axial_search,
        exclude,
        config.reference_subpixel,
        colour,
        denoise,
    )
    if weight is not None:
        against_goods = against_goods * weight
    return weighted_geometric_mean(residual, against_goods, config.reference_weight)


def weighted_geometric_mean(cae: np.ndarray, against_goods: np.ndarray, weight: float) -> np.ndarray:
    """``cae ** (1 - weight) * against_goods ** weight``, float32: a pixel stands out only when neither the CAE
    nor a near good part explains it. The references weigh more (0.75) because the CAE blurs what the references
    show (a washer's grooves, a tread's edges) on every part alike, while a near good part misses only what
    no good part has."""
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"postprocess.reference_weight must be in [0, 1], got {weight}")
    cae = np.maximum(cae, 0.0, dtype=np.float32)
    against_goods = np.maximum(against_goods, 0.0, dtype=np.float32)
    return np.power(cae, np.float32(1.0 - weight)) * np.power(against_goods, np.float32(weight))
