"""Good references: the residual against the nearest good crops, its place in the residual map and in calibration.json."""

from __future__ import annotations

import dataclasses
import json

import cv2
import numpy as np
import pytest
from test_calibration import IdentityPreprocessor

from scae_tf.calibration import Calibration, calibrate, good_references
from scae_tf.config import PostprocessConfig
from scae_tf.references import GoodReferences, part_residual
from scae_tf.residual import residual_map

SHAPE = (32, 96)


def threaded_part(phase: float, rng: np.random.Generator) -> np.ndarray:
    """A bar with a thread whose phase varies from part to part, as on a screw (what a CAE blurs)."""
    crop = np.full(SHAPE, 0.8, np.float32)
    crop[8:24] = 0.4
    x = np.arange(SHAPE[1], dtype=np.float32)
    crop[8:24] += 0.25 * (np.sin(2 * np.pi * (x - phase) / 12.0) > 0.6)
    return np.clip(crop + 0.01 * rng.standard_normal(SHAPE), 0, 1).astype(np.float32)


@pytest.fixture(scope="module")
def references() -> GoodReferences:
    rng = np.random.default_rng(0)
    return GoodReferences.from_crops(np.stack([threaded_part(phase, rng) for phase in np.linspace(0, 12, 24, endpoint=False)]))


def test_a_good_part_is_explained_by_its_nearest_references_and_a_defect_is_not(references):
    rng = np.random.default_rng(1)
    good = threaded_part(5.2, rng)  # a phase no reference has exactly: within the shift tolerance
    defective = good.copy()
    cv2.circle(defective, (60, 16), 3, 0.15, -1)  # a dark pit
    quiet = references.residual(good, neighbours=3, shift=1, sigma=1.0)
    loud = references.residual(defective, neighbours=3, shift=1, sigma=1.0)
    assert quiet.shape == SHAPE and quiet.dtype == np.float32
    assert loud[16, 60] > 20 * quiet.max()
    away = np.ones(SHAPE, bool)
    away[8:25, 52:69] = False
    assert loud[away].max() < 2 * quiet.max() + 1e-4  # only the pit stands out
    without_shift = references.residual(good, neighbours=1, shift=0, sigma=1.0)
    assert quiet.max() <= without_shift.max()


def sine_thread(phase: float, rng: np.random.Generator) -> np.ndarray:
    """A bar with a smooth thread of period 12 px at ``phase`` px (what a real crest's profile looks like at crop scale)."""
    crop = np.full(SHAPE, 0.8, np.float32)
    x = np.arange(SHAPE[1], dtype=np.float32)
    crop[8:24] = 0.45 + 0.2 * np.sin(2 * np.pi * (x - phase) / 12.0)
    return np.clip(crop + 0.002 * rng.standard_normal(SHAPE), 0, 1).astype(np.float32)


def test_half_pixel_steps_match_a_thread_between_whole_pixel_phases():
    rng = np.random.default_rng(6)
    whole_phases = GoodReferences.from_crops(np.stack([sine_thread(float(phase), rng) for phase in range(12)]))
    good = sine_thread(5.5, rng)  # half a pixel from every reference
    defective = good.copy()
    cv2.circle(defective, (60, 16), 2, 0.2, -1)
    whole = whole_phases.residual(good, neighbours=3, shift=1, sigma=1.0)
    half = whole_phases.residual(good, neighbours=3, shift=1, sigma=1.0, subpixel=2)
    assert half.max() < 0.2 * whole.max()  # the crests' edges no longer light up
    pit = whole_phases.residual(defective, neighbours=3, shift=1, sigma=1.0, subpixel=2)
    assert pit[16, 60] > 20 * half.max()  # finer steps do not explain a defect away
    assert np.allclose(whole_phases.residual(good, 3, 1, 1.0, subpixel=1), whole)


def test_nearest_references_follow_the_thread_phase(references):
    rng = np.random.default_rng(2)
    nearest = references.nearest(threaded_part(3.0, rng), 2)
    assert 6 in nearest  # reference 6 has phase 3.0 (24 phases over 12 px)


def test_subsampled_to_the_byte_budget_and_stored_losslessly(references):
    crops = np.random.default_rng(3).random((40, 8, 8, 3)).astype(np.float32)
    small = GoodReferences.from_crops(crops, max_bytes=10 * 8 * 8 * 3)
    assert len(small) == 10 and small.shape == (8, 8, 3)
    assert np.array_equal(small.crops[0], np.round(crops[0] * 255).astype(np.uint8))
    assert np.array_equal(small.crops[-1], np.round(crops[-1] * 255).astype(np.uint8))  # first and last kept
    again = GoodReferences.from_dict(json.loads(json.dumps(references.to_dict())))
    assert np.array_equal(again.crops, references.crops)
    with pytest.raises(ValueError, match="differ in shape"):
        references.residual(np.zeros((8, 8), np.float32), 3, 1, 1.0)


def test_part_residual_is_the_geometric_mean_with_the_cae_residual_and_can_be_switched_off(references):
    rng = np.random.default_rng(4)
    crop = threaded_part(7.0, rng)
    blurred = cv2.GaussianBlur(crop, (7, 7), 2.0)  # a CAE that cannot rebuild the thread
    on, off = PostprocessConfig(reference_neighbours=3), PostprocessConfig(reference_neighbours=0)
    cae_alone = residual_map(crop, blurred, off)
    assert np.array_equal(part_residual(crop, blurred, on, None), cae_alone)  # no references: the CAE's alone
    assert np.array_equal(part_residual(crop, blurred, off, references), cae_alone)
    combined = part_residual(crop, blurred, on, references)
    against_goods = references.residual(
        crop, 3, on.reference_shift, on.residual_smooth_sigma, on.reference_bands, on.reference_axial_search, subpixel=on.reference_subpixel
    )
    weight = on.reference_weight
    assert weight == 0.75
    expected = cae_alone ** (1 - weight) * against_goods**weight
    assert np.allclose(combined, expected, atol=1e-6)
    assert combined[8:24].mean() < 0.25 * cae_alone[8:24].mean()  # the thread the CAE blurs is explained by the goods
    plain = part_residual(crop, blurred, PostprocessConfig(reference_neighbours=3, reference_weight=0.5), references)
    assert np.allclose(plain, np.sqrt(cae_alone * against_goods), atol=1e-6)
    goods_only = part_residual(crop, blurred, PostprocessConfig(reference_neighbours=3, reference_weight=1.0), references)
    assert np.allclose(goods_only, against_goods, atol=1e-6)
    with pytest.raises(ValueError, match="reference_weight"):
        part_residual(crop, blurred, PostprocessConfig(reference_neighbours=3, reference_weight=1.5), references)


class CropBackend:
    def segment(self, image):
        return (image < 0.6).astype(np.float32)

    def reconstruct(self, crop):
        return cv2.GaussianBlur(crop, (7, 7), 2.0)


class WholeImagePreprocessor(IdentityPreprocessor):
    """The crop is the work image; ``segments`` False plays a surface (no segmentation, no references)."""

    def __init__(self, segments: bool = True):
        self.segments = segments


def test_calibration_keeps_its_references_and_an_older_file_has_none(tmp_path):
    rng = np.random.default_rng(5)
    train = [threaded_part(phase, rng) for phase in np.linspace(0, 12, 16, endpoint=False)]
    held_out = [threaded_part(phase, rng) for phase in rng.uniform(0, 12, 8)]
    backend, pre = CropBackend(), WholeImagePreprocessor()
    refs = good_references(backend, pre, train + [np.ones(SHAPE, np.float32)], names=[str(i) for i in range(17)])
    assert len(refs) == 16  # the image without a part is skipped
    assert good_references(backend, WholeImagePreprocessor(segments=False), train) is None
    post = PostprocessConfig(patch_size=8, patch_stride=4, zones=2, analysis_dilation=0, reference_neighbours=3)
    calibration = calibrate(backend, pre, post, held_out, references=refs)
    alone = calibrate(backend, pre, post, held_out)
    assert calibration.references is refs and alone.references is None
    assert np.median(calibration.max_statistics) != np.median(alone.max_statistics)
    path = tmp_path / "calibration.json"
    calibration.save(path)
    loaded = Calibration.load(path)
    assert np.array_equal(loaded.references.crops, refs.crops)
    assert loaded.config.reference_weight == post.reference_weight == 0.75
    switched_off = calibrate(backend, pre, dataclasses.replace(post, reference_neighbours=0), held_out, references=refs)
    assert switched_off.references is None  # nothing kept that the rule does not use
    data = json.loads(path.read_text())
    data["config"].pop("reference_weight")  # as written before the references were weighted
    path.write_text(json.dumps(data))
    assert Calibration.load(path).config.reference_weight == 0.5  # its scores were made with equal weights
    for name in ("reference_neighbours", "reference_shift", "references", "missing_material_map"):
        data.pop(name, None)
        data["config"].pop(name, None)  # as written before references existed
    path.write_text(json.dumps(data))
    old = Calibration.load(path)
    assert old.references is None and old.config.reference_neighbours == 0
    assert not old.config.missing_material_map  # an older file paints its maps as it did
    old.check_compatible(post, SHAPE)  # an old run config takes today's default: still compatible



def test_bands_choose_their_own_nearest_references():
    """A part whose head is like one good part and whose thread is like another is explained band by band."""
    rng = np.random.default_rng(7)
    left, right = threaded_part(0.0, rng), threaded_part(6.0, rng)
    refs = GoodReferences.from_crops(np.stack([left, right]))
    mixed = np.concatenate([threaded_part(0.0, rng)[:, :48], threaded_part(6.0, rng)[:, 48:]], axis=1)
    whole = refs.residual(mixed, neighbours=1, shift=0, sigma=1.0)
    banded = refs.residual(mixed, neighbours=1, shift=0, sigma=1.0, bands=2)
    assert banded.max() < 0.1 * whole.max()
    assert refs.nearest(mixed, 1, (0, 48))[0] == 0 and refs.nearest(mixed, 1, (48, 96))[0] == 1


def test_colour_crops_give_one_map_and_a_colour_only_defect_stands_out():
    rng = np.random.default_rng(8)
    tint = np.asarray([1.0, 0.6, 0.3], np.float32)
    refs = GoodReferences.from_crops(np.stack([threaded_part(p, rng)[..., None] * tint for p in np.linspace(0, 12, 12, endpoint=False)]))
    assert refs.shape == (*SHAPE, 3)
    good = threaded_part(4.0, rng)[..., None] * tint
    stained = good.copy()
    stained[14:18, 40:44, 2] += 0.3  # a blue stain: the gray level barely moves
    quiet = refs.residual(good, 3, 1, 1.0, bands=2)
    loud = refs.residual(stained, 3, 1, 1.0, bands=2)
    assert quiet.shape == SHAPE and loud[16, 42] > 10 * quiet.max()


@pytest.mark.parametrize("channels", [2, 3, 4])
def test_the_fast_channel_mean_is_numpys_mean_bit_for_bit(channels: int):
    """The reference residual of a colour crop averages the squared difference over channels 500 times per image;
    the explicit sum replaces numpy's slow short-axis reduction without changing a bit of the map."""
    from scae_tf.references import _channel_mean

    values = np.random.default_rng(channels).random((37, 53, channels), dtype=np.float32) ** 3
    strided = np.random.default_rng(0).random((37, 80, channels), dtype=np.float32)[:, 5:58]  # a band's view, not contiguous
    for array in (values, strided):
        fast = _channel_mean(array)
        assert fast.dtype == np.float32 and fast.flags.c_contiguous
        assert np.array_equal(fast, array.mean(axis=2))


def test_axial_search_matches_a_thread_phase_no_reference_has_and_still_finds_a_pit():
    """With one good part only, a part whose thread is half a pitch further along is explained once the
    reference may slide along the axis; a pit is not (sliding cannot make it)."""
    rng = np.random.default_rng(9)
    refs = GoodReferences.from_crops(threaded_part(0.0, rng)[None])
    good = threaded_part(6.0, rng)  # half of the 12 px pitch: the crests fall between the reference's
    defective = good.copy()
    cv2.circle(defective, (60, 16), 3, 0.15, -1)
    fixed = refs.residual(good, neighbours=1, shift=1, sigma=1.0, bands=4)
    slid = refs.residual(good, neighbours=1, shift=1, sigma=1.0, bands=4, axial=8)
    loud = refs.residual(defective, neighbours=1, shift=1, sigma=1.0, bands=4, axial=8)
    inner = (slice(8, 24), slice(10, 86))  # away from the frame's ends, where edge padding stands in for the part
    assert slid[inner].max() < 0.1 * fixed[inner].max()
    assert loud[16, 60] > 20 * slid[inner].max()
    indices, offsets = refs._nearest_in(refs._search_image(good[..., None]), 1, (24, 48), 8)
    assert indices[0] == 0 and abs(offsets[0]) == 6  # the half pitch, either way


def test_a_residual_window_is_the_whole_crops_residual_inside_and_zero_outside():
    """``part_residual(..., box)``: a small surface in a large frame is judged on its window only (the
    same values away from the window's edge, zero outside); aligned references refuse a window."""
    from scae_tf.preprocessing import BOX_MARGIN
    from scae_tf.texture import TextureModel

    rng = np.random.default_rng(2)
    crops = [cv2.GaussianBlur(rng.random((360, 400)).astype(np.float32), (0, 0), 1.0) for _ in range(4)]  # room for BOX_MARGIN
    config = PostprocessConfig(texture_model=True, reference_neighbours=0)
    model = TextureModel.fit(crops, components=4)
    crop = crops[0]
    reconstruction = cv2.GaussianBlur(crop, (0, 0), 1.5)
    box = (slice(10, 350), slice(20, 380))
    whole = part_residual(crop, reconstruction, config, model)
    window = part_residual(crop, reconstruction, config, model, box)
    inner = (slice(10 + BOX_MARGIN, 350 - BOX_MARGIN), slice(20 + BOX_MARGIN, 380 - BOX_MARGIN))
    assert whole[inner].size > 5000
    np.testing.assert_allclose(window[inner], whole[inner], rtol=1e-3, atol=1e-6 * float(whole.max()))
    outside = np.ones(crop.shape, bool)
    outside[box] = False
    assert not window[outside].any() and window[box].all()
    aligned = GoodReferences.from_crops(np.stack(crops))
    with pytest.raises(ValueError, match="whole crop"):
        part_residual(crop, reconstruction, PostprocessConfig(), aligned, box)


def test_a_training_crop_compared_with_the_other_references_leaves_its_own_out(references):
    """``exclude``: a training crop is among the references; against itself its residual would be 0."""
    own = references.crops[5, ..., 0].astype(np.float32) / 255.0
    with_itself = references.residual(own, neighbours=1, shift=0, sigma=1.0)
    without = references.residual(own, neighbours=1, shift=0, sigma=1.0, exclude=5)
    assert with_itself.max() < 1e-6 < without.max()
    assert 5 not in references._nearest_in(references._search_image(own[..., None]), 3, None, 0, exclude=5)[0]


def test_references_kept_as_floats_within_a_byte_budget_give_the_same_residual(monkeypatch):
    """Only the most recently used references are kept as floats (all of a tyre's would take 190 MB); one
    converted again after it was dropped gives the same residual, with and without smoothing."""
    import scae_tf.references as references_module

    rng = np.random.default_rng(4)
    crops = np.stack([threaded_part(phase, rng) for phase in np.linspace(0, 12, 24, endpoint=False)])
    parts = [threaded_part(phase, rng) for phase in (1.3, 7.9, 4.4)]
    roomy = GoodReferences.from_crops(crops)
    expected = [roomy.residual(p, 3, 1, 1.0, bands=4, axial=4, smoothed_by=s) for p in parts for s in (0.0, 1.0)]
    one_float = (SHAPE[0] + 2) * (SHAPE[1] + 10) * 4  # a reference padded by shift 1 and shift + axial 5
    monkeypatch.setattr(references_module, "FLOAT_CACHE_BYTES", 3 * one_float)
    tight = GoodReferences.from_crops(crops)
    for _ in range(2):  # the second round converts references that the first one dropped
        got = [tight.residual(p, 3, 1, 1.0, bands=4, axial=4, smoothed_by=s) for p in parts for s in (0.0, 1.0)]
        assert all(np.array_equal(a, b) for a, b in zip(expected, got, strict=True))
        assert len(tight._floats) <= 3
    assert len(roomy._floats) > 3
