"""Synthetic part categories (screw, round part, surface): layout, determinism, subtle and exact defects,
and the reusable defect painters."""

from __future__ import annotations

import filecmp
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from scae_tf.data.layout import list_dataset
from scae_tf.errors import ScaeError
from scae_tf.imageio import read_image, read_mask
from scae_tf.part_kind import ELONGATED_RATIO, axial_spread, infer_part_kind, mask_shape
from scae_tf.synthetic import (
    DEFECT_PAINTERS,
    DEFECT_TYPES,
    GEOMETRIC_DEFECTS,
    MASK_THRESHOLD,
    MAX_DEFECT_CONTRAST,
    PART_KINDS,
    defect_visibility,
    generate_dataset,
    relative_change,
    render_sample,
    sample_rng,
    signal_to_clutter,
    write_contact_sheet,
)

# (part kind, colour) of every synthetic variant besides the gray screw
VARIANTS = [("round", False), ("round", True), ("capsule", False), ("capsule", True), ("roller", False), ("roller", True), ("surface", False), ("surface", True), ("fabric", False), ("fabric", True), ("tuber", False), ("tuber", True)]
VARIANT_TYPES = [(part, color, kind) for part, color in VARIANTS for kind in PART_KINDS[part].defect_types]


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_layout_counts_labels_and_masks(synthetic_root: Path):
    train = list_dataset(synthetic_root, "train")
    test = list_dataset(synthetic_root, "test")
    assert len(train) == 6 and all(s.label == 0 for s in train)
    assert sorted({s.defect_type for s in test}) == sorted(("good", *DEFECT_TYPES))
    assert sum(s.label == 0 for s in test) == 2
    defective = [s for s in test if s.label == 1]
    assert len(defective) == 2 * len(DEFECT_TYPES)
    for sample in defective:
        image = read_image(sample.path)
        assert image.shape == (128, 128)
        mask = read_mask(sample.mask_path, image.shape)
        assert mask.any(), sample.name
        split_type = sample.path.relative_to(synthetic_root).parent
        obj = read_mask(synthetic_root / "object_masks" / split_type / sample.path.name, image.shape)
        assert not (mask & ~obj).any(), f"{sample.name}: defect outside the object"
    for sample in train + test:
        assert (synthetic_root / "object_masks" / sample.path.relative_to(synthetic_root)).is_file()
    meta = json.loads((synthetic_root / "dataset.json").read_text())
    assert meta["seed"] == 7 and meta["size"] == 128
    assert meta["counts"] == {"train_good": 6, "test_good": 2, "per_defect": 2}
    assert [p.name for p in sorted((synthetic_root / "train" / "good").iterdir())][:2] == ["000.png", "001.png"]


@pytest.mark.parametrize("defect_type", DEFECT_TYPES)
def test_defects_are_small_subtle_exact_and_on_the_object(defect_type: str):
    coverages = []
    for index in range(6):
        sample = render_sample(sample_rng(3, "test", defect_type, index), 256, defect_type)
        mask = sample.defect_mask
        assert 0 < mask.mean() < 0.01, f"{defect_type} {index}: coverage {mask.mean():.4f}"
        assert not (mask & ~sample.object_mask).any()
        # Rendered with and without the defect (same part, same noise): the mask is exactly where
        # the images differ by more than the threshold, up to one 8-bit quantisation level.
        diff = np.abs(sample.image - sample.clean)
        assert np.array_equal(mask, diff > MASK_THRESHOLD)
        relative = diff[mask] / sample.clean[mask]
        # Like MVTec's defects: at most a few tenths of the local intensity, but not invisible.
        assert relative.max() < MAX_DEFECT_CONTRAST + 0.1, f"{defect_type} {index}: not subtle ({relative.max():.2f})"
        assert np.median(relative) > 0.03
        coverages.append(mask.mean())
    # Real screw defects cover 0.1-1.0 % of the image (dev split: 263-2698 px at 512, median 0.29 %):
    # large enough for a 16-px patch at 512 px; the flattened thread, scaled up to the contrast cap,
    # spreads over ~0.65 %.
    assert 0.0008 < np.median(coverages) < 0.008, coverages


def test_defects_stand_out_from_the_parts_own_texture():
    """The defect changes its pixels more than the part's own structure varies around it.

    Why: version 1 defects were 0.06 % of the image and as strong as the thread texture, so no
    detector could separate them (image AUROC ~0.5 for every method)."""
    ratios = []
    for defect_type in DEFECT_TYPES:
        for index in range(3):
            sample = render_sample(sample_rng(4, "test", defect_type, index), 256, defect_type)
            mask = sample.defect_mask
            ring = cv2.dilate(mask.astype(np.uint8), np.ones((15, 15), np.uint8)).astype(bool) & ~mask & sample.object_mask  # around it
            change = np.abs(sample.image - sample.clean)[mask].mean()
            ratios.append(change / sample.clean[ring].std())
    assert np.median(ratios) > 0.5, ratios  # version 1: 0.20-0.22, version 2: 0.38-0.43, version 3: 0.64


def test_good_samples_have_no_defect_and_a_plausible_screw():
    for index in range(4):
        sample = render_sample(sample_rng(0, "train", "good", index), 256)
        assert not sample.defect_mask.any()
        assert np.array_equal(sample.image, sample.clean)
        area = sample.object_mask.mean()
        assert 0.04 < area < 0.15, area
        ys, xs = np.nonzero(sample.object_mask)
        assert ys.min() > 0 and xs.min() > 0 and ys.max() < 255 and xs.max() < 255  # fully inside
        extent = np.hypot(ys.max() - ys.min(), xs.max() - xs.min())
        assert 0.7 * 256 < extent < 0.95 * 256
        assert sample.image[sample.object_mask].mean() < sample.image[~sample.object_mask].mean() - 0.2


@pytest.mark.parametrize("size", [512, 1024])
def test_larger_sizes_render(size: int):
    sample = render_sample(sample_rng(0, "test", "pit", 0), size, "pit")
    assert sample.image.shape == (size, size)
    assert 0 < sample.defect_mask.mean() < 0.01
    assert not (sample.defect_mask & ~sample.object_mask).any()


def test_same_seed_is_byte_identical_across_processes_and_counts(tmp_path: Path):
    here = generate_dataset(tmp_path / "a", seed=5, size=96, n_train=3, n_test_good=1, n_per_defect=1)
    code = (
        "import sys; from scae_tf.synthetic import generate_dataset; "
        "generate_dataset(sys.argv[1], seed=5, size=96, n_train=5, n_test_good=1, n_per_defect=2)"
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "b")], check=True)
    there = tmp_path / "b"
    common = [f for f in _files(here) if f != "dataset.json"]
    assert len(common) == (3 + 1 + 4) * 2 + 4
    assert set(common) <= set(_files(there))
    match, mismatch, errors = filecmp.cmpfiles(here, there, common, shallow=False)
    assert not mismatch and not errors
    other = generate_dataset(tmp_path / "c", seed=6, size=96, n_train=1, n_test_good=0, n_per_defect=0)
    assert not filecmp.cmp(here / "train/good/000.png", other / "train/good/000.png", shallow=False)


def test_existing_output_is_refused_unless_forced(tmp_path: Path):
    out = tmp_path / "ds"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(ScaeError, match="not empty") as info:
        generate_dataset(out, size=64, n_train=1, n_test_good=0, n_per_defect=0)
    assert info.value.path == out
    assert _files(out) == ["keep.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["ds"]  # no temp folder left behind
    generate_dataset(out, size=64, n_train=1, n_test_good=0, n_per_defect=0, force=True)
    assert not (out / "keep.txt").exists() and (out / "train/good/000.png").is_file()


def test_bad_arguments_are_user_errors(tmp_path: Path):
    with pytest.raises(ScaeError, match="too small"):
        generate_dataset(tmp_path / "x", size=16)
    with pytest.raises(ScaeError, match="parent folder"):
        generate_dataset(tmp_path / "missing" / "x", size=64, n_train=1)
    with pytest.raises(ScaeError, match="contact sheet"):
        generate_dataset(tmp_path / "y", size=64, n_train=1, contact_sheet=tmp_path / "nope" / "sheet.png")
    assert list(tmp_path.iterdir()) == []


def test_contact_sheet(tmp_path: Path):
    path = write_contact_sheet(tmp_path / "sheet.png", size=128)
    sheet = read_image(path, gray=False)
    assert sheet.ndim == 3 and sheet.shape[1] == 5 * 160
    red = (sheet[..., 0] > 0.9) & (sheet[..., 1] < 0.1) & (sheet[..., 2] < 0.1)
    assert red.any()  # mask contours are drawn


@pytest.mark.parametrize(
    "name",
    [
        "synthetic_contact_sheet.png",
        "synthetic_round_contact_sheet.png",
        "synthetic_round_color_contact_sheet.png",
        "synthetic_capsule_contact_sheet.png",
        "synthetic_surface_contact_sheet.png",
        "synthetic_fabric_contact_sheet.png",
    ],
)
def test_committed_contact_sheets_are_small(name: str):
    path = Path(__file__).resolve().parents[1] / "docs" / "images" / name
    assert path.is_file() and path.stat().st_size < 300_000


def test_contact_sheet_of_a_colour_kind(tmp_path: Path):
    path = write_contact_sheet(tmp_path / "sheet.png", size=96, part="round", color=True, tile=64)
    sheet = read_image(path, gray=False)
    assert sheet.shape[1] == (1 + len(PART_KINDS["round"].defect_types)) * 64
    top = sheet[:64]
    assert np.abs(top[..., 0] - top[..., 1]).max() > 0.3  # the red cap is in colour


# --- every part kind -------------------------------------------------------------------------


def _luminance(image: np.ndarray) -> np.ndarray:
    return image.mean(axis=2) if image.ndim == 3 else image


@pytest.mark.parametrize(("part", "color", "defect_type"), VARIANT_TYPES)
def test_every_kinds_defects_are_small_subtle_exact_and_on_the_part(part: str, color: bool, defect_type: str):
    coverages = []
    for index in range(4):
        sample = render_sample(sample_rng(3, "test", defect_type, index, part), 256, defect_type, part, color)
        assert sample.image.shape == ((256, 256, 3) if color else (256, 256))
        mask = sample.defect_mask
        assert 0 < mask.mean() < 0.01, f"{part} {defect_type} {index}: coverage {mask.mean():.4f}"
        assert not (mask & ~sample.object_mask).any()
        diff = np.abs(sample.image - sample.clean)
        diff = diff.max(axis=2) if diff.ndim == 3 else diff
        assert np.array_equal(mask, diff > MASK_THRESHOLD)  # exact: where the saved images differ
        assert not diff[~mask].any() or diff[~mask].max() <= MASK_THRESHOLD + 1e-6
        relative = relative_change(sample.image, sample.clean)[mask]
        if defect_type not in GEOMETRIC_DEFECTS:  # material missing shows the background: subtle by size only
            assert relative.max() < MAX_DEFECT_CONTRAST + 0.1, f"{part} {defect_type} {index}: not subtle ({relative.max():.2f})"
        assert np.median(relative) > 0.03
        coverages.append(mask.mean())
    assert 0.0002 < np.median(coverages) < 0.006, coverages


@pytest.mark.parametrize(("part", "color"), [("screw", False), *VARIANTS])
def test_defects_stand_out_of_every_kinds_texture(part: str, color: bool):
    """Each defect changes its pixels more than the part's own texture defeats a neighbourhood
    predictor (inpainting) there. The painters of the other kinds scale every defect to a drawn
    signal/clutter of 1.5-2.2 unless that would change the part by more than MAX_DEFECT_CONTRAST
    (then the defect is as strong as subtlety allows: the weave's yarn pull, the screw's flattened
    thread, ~0.5).

    Why: version-1 screw defects measured ~0.2-0.5 and every detector was at chance on them; the
    version-2 screw's (~0.4-1.4) were fainter than every real type; defects much stronger than
    ~2.5 would be blatant rather than subtle."""
    ratios, capped = {}, {}
    for defect_type in PART_KINDS[part].defect_types:
        values, at_cap = [], []
        for index in range(3):
            sample = render_sample(sample_rng(4, "test", defect_type, index, part), 256, defect_type, part, color)
            values.append(signal_to_clutter(sample.image, sample.clean, sample.defect_mask))
            at_cap.append(relative_change(sample.image, sample.clean)[sample.defect_mask].max() > MAX_DEFECT_CONTRAST - 0.05)
        ratios[defect_type] = float(np.median(values))
        capped[defect_type] = sum(at_cap) >= 2
    assert np.median(list(ratios.values())) > 1.2, ratios
    floor = 0.45 if part == "screw" else 0.6  # the capped minimum: the thread's shading is its clutter
    for defect_type, ratio in ratios.items():
        assert ratio < 2.6 or defect_type in GEOMETRIC_DEFECTS, (defect_type, ratio)
        assert ratio > 1.2 or (capped[defect_type] and ratio > floor), (defect_type, ratio, capped[defect_type])


@pytest.mark.parametrize(("part", "color"), [("screw", False), ("round", False), ("surface", False), ("fabric", True)])
def test_defects_are_as_visible_as_real_ones_not_more(part: str, color: bool):
    """Measured on the defective image alone (like real data): the error of inpainting the defect
    over that of the same shape elsewhere on the part. Real MVTec screw defects: 1.4-2.9 per type;
    the missing chunk (chip) is small but high-contrast and is left out. (The version-2 screw's
    pit measured 0.9-1.0: fainter than any real type.)"""
    medians = []
    for defect_type in PART_KINDS[part].defect_types:
        if defect_type in GEOMETRIC_DEFECTS:
            continue
        values = []
        for index in range(6):
            sample = render_sample(sample_rng(5, "test", defect_type, index, part), 256, defect_type, part, color)
            values.append(defect_visibility(sample.image, sample.defect_mask, sample.object_mask))
        medians.append(float(np.nanmedian(values)))
    assert 0.9 < min(medians) and max(medians) < 3.2, medians
    assert 1.2 < np.median(medians) < 2.6, medians


@pytest.mark.parametrize("color", [False, True])
def test_round_part_is_compact_fixtured_and_contrasts_with_its_background(color: bool):
    centres = []
    for index in range(4):
        sample = render_sample(sample_rng(0, "train", "good", index, "round"), 256, "good", "round", color)
        assert not sample.defect_mask.any() and np.array_equal(sample.image, sample.clean)
        obj = sample.object_mask
        ys, xs = np.nonzero(obj)
        assert ys.min() > 0 and xs.min() > 0 and ys.max() < 255 and xs.max() < 255  # fully inside
        height, width = ys.max() - ys.min(), xs.max() - xs.min()
        assert 0.6 * 256 < height < 0.75 * 256 and abs(height - width) < 4  # round, not elongated
        assert 0.25 < obj.mean() < 0.35, obj.mean()  # a ring: the hole shows the background
        centres.append((ys.mean(), xs.mean()))
        part_level = _luminance(sample.image)[obj].mean()
        background_level = _luminance(sample.image)[~obj].mean()
        if color:  # red cap on a light gray tray: darker and of another hue
            assert part_level < background_level - 0.2
            red, green = sample.image[obj][:, 0].mean(), sample.image[obj][:, 1].mean()
            assert red > 2 * green
        else:  # light steel on dark cloth: the opposite polarity of the screw
            assert part_level > background_level + 0.3
    spread = np.ptp(np.array(centres), axis=0)
    assert spread.max() < 0.09 * 256 and spread.max() > 1.0  # jitters a little, like a fixtured part


@pytest.mark.parametrize("color", [False, True])
def test_capsule_is_long_with_alike_ends_and_a_print_that_reads_one_way(color: bool):
    """The capsule is what the head rule cannot orient: long, both ends about as wide; but its cap and
    print make a half-turned capsule look unlike a good one. The kind decision sees that."""
    masks = []
    for index in range(6):
        sample = render_sample(sample_rng(0, "train", "good", index, "capsule"), 256, "good", "capsule", color)
        shape = mask_shape(sample.object_mask)
        assert shape.elongation > ELONGATED_RATIO and shape.end_ratio < 1.15, shape
        gray = _luminance(sample.image)
        turned = gray[::-1, ::-1]
        inside = sample.object_mask & sample.object_mask[::-1, ::-1]
        assert np.abs(gray - turned)[inside].mean() > 0.05  # cap and print: half a turn is visible
        masks.append(sample.object_mask)
    decision = infer_part_kind(masks)
    assert decision.kind == "compact" and decision.fixtured and "ends look alike" in decision.reason


@pytest.mark.parametrize("color", [False, True])
def test_tubers_differ_in_outline_and_angle_and_stand_out_of_their_tray(color: bool):
    """No two good tubers share an outline: centred on each other, their silhouettes still differ
    (unlike a machined part's, which match to a pixel at the rim), and their long axes point anywhere."""
    masks, angles = [], []
    for index in range(6):
        sample = render_sample(sample_rng(0, "train", "good", index, "tuber"), 128, "good", "tuber", color)
        obj = sample.object_mask
        assert 0.15 < obj.mean() < 0.4, obj.mean()
        ys, xs = np.nonzero(obj)
        assert ys.min() > 0 and xs.min() > 0 and ys.max() < 127 and xs.max() < 127  # fully inside
        gray = _luminance(sample.image)
        assert gray[obj].mean() > gray[~obj].mean() + 0.25
        moved = np.roll(obj, (64 - int(round(ys.mean())), 64 - int(round(xs.mean()))), axis=(0, 1))
        masks.append(moved)
        angles.append(mask_shape(obj).angle)
    for first, second in zip(masks, masks[1:], strict=False):
        assert (first & second).sum() / (first | second).sum() < 0.93
    assert axial_spread(np.asarray(angles)) > 20


@pytest.mark.parametrize("color", [False, True])
def test_surface_fills_the_frame_and_varies_between_images(color: bool):
    first = render_sample(sample_rng(0, "train", "good", 0, "surface"), 128, "good", "surface", color)
    second = render_sample(sample_rng(0, "train", "good", 1, "surface"), 128, "good", "surface", color)
    assert first.object_mask.all()
    assert np.abs(first.image - second.image).mean() > 0.01  # a stochastic texture, not one aligned picture
    gray = _luminance(first.image)
    # Brushed: the texture varies much more across the brushing direction (rows) than along it.
    across = np.abs(np.diff(gray, axis=0)).mean()
    along = np.abs(np.diff(gray, axis=1)).mean()
    assert across > 1.3 * along, (across, along)


@pytest.mark.parametrize(("part", "color"), VARIANTS)
def test_every_kind_writes_the_mvtec_layout(tmp_path: Path, part: str, color: bool):
    root = generate_dataset(tmp_path / part, seed=1, size=96, n_train=2, n_test_good=1, n_per_defect=1, part=part, color=color)
    test = list_dataset(root, "test")
    assert sorted({s.defect_type for s in test}) == sorted(("good", *PART_KINDS[part].defect_types))
    for sample in test:
        image = read_image(sample.path, gray=False)
        assert image.shape == ((96, 96, 3) if color else (96, 96))
        split_type = sample.path.relative_to(root).parent
        obj = read_mask(root / "object_masks" / split_type / sample.path.name, (96, 96))
        if sample.label == 1:
            mask = read_mask(sample.mask_path, (96, 96))
            assert mask.any() and not (mask & ~obj).any(), sample.name
    meta = json.loads((root / "dataset.json").read_text())
    assert meta["part"] == part and meta["color"] is color and meta["defect_types"] == list(PART_KINDS[part].defect_types)


def test_every_kind_is_byte_identical_across_processes(tmp_path: Path):
    kinds = [("round", True), ("surface", False), ("fabric", True)]
    for part, color in kinds:
        generate_dataset(tmp_path / f"a_{part}", seed=3, size=80, n_train=2, n_test_good=0, n_per_defect=1, part=part, color=color)
    code = (
        "import sys; from scae_tf.synthetic import generate_dataset\n"
        f"for part, color in {kinds!r}:\n"
        "    generate_dataset(f'{sys.argv[1]}/b_{part}', seed=3, size=80, n_train=2, n_test_good=0, n_per_defect=1, part=part, color=color)"
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True)
    for part, _ in kinds:
        files = _files(tmp_path / f"a_{part}")
        assert files == _files(tmp_path / f"b_{part}")
        match, mismatch, errors = filecmp.cmpfiles(tmp_path / f"a_{part}", tmp_path / f"b_{part}", files, shallow=False)
        assert not mismatch and not errors
    # Kinds share no randomness: the same seed and index give unrelated images.
    round_image = read_image(tmp_path / "a_round/train/good/000.png")
    surface_image = read_image(tmp_path / "a_surface/train/good/000.png")
    assert np.abs(round_image - surface_image).mean() > 0.05


def test_colour_and_kind_errors_are_user_errors(tmp_path: Path):
    with pytest.raises(ScaeError, match="gray only"):
        generate_dataset(tmp_path / "x", size=64, n_train=1, part="screw", color=True)
    with pytest.raises(ScaeError, match="unknown part kind"):
        generate_dataset(tmp_path / "x", size=64, n_train=1, part="gear")
    with pytest.raises(ScaeError, match="unknown defect type"):
        generate_dataset(tmp_path / "x", size=64, n_train=1, part="surface", defect_types=("thread",))
    assert list(tmp_path.iterdir()) == []


# --- the defect painters, on any image -------------------------------------------------------


def _plain_image(color: bool) -> np.ndarray:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:160, 0:200].astype(np.float32)
    gray = 0.35 + 0.25 * xx / 200 + 0.02 * rng.standard_normal((160, 200)).astype(np.float32)
    return np.stack([gray, 0.9 * gray, 0.7 * gray], axis=2) if color else gray


@pytest.mark.parametrize("color", [False, True])
@pytest.mark.parametrize("name", sorted(DEFECT_PAINTERS))
def test_painters_paint_exact_masks_inside_any_region(name: str, color: bool):
    image = _plain_image(color)
    before = image.copy()
    region = np.zeros(image.shape[:2], bool)
    cv2.circle(region.view(np.uint8), (90, 80), 55, 1, -1)  # a disc-shaped "part" not centred in the frame
    painted, mask = DEFECT_PAINTERS[name](image, np.random.default_rng(11), region)
    assert np.array_equal(image, before)  # the input is not modified
    assert painted.shape == image.shape and painted.dtype == np.float32
    assert mask.sum() >= 4 and not (mask & ~region).any()
    diff = np.abs(painted - image)
    diff = diff.max(axis=2) if diff.ndim == 3 else diff
    assert np.array_equal(mask, diff > MASK_THRESHOLD)
    assert mask.mean() < 0.02
    again, again_mask = DEFECT_PAINTERS[name](image, np.random.default_rng(11), region)
    assert np.array_equal(again, painted) and np.array_equal(again_mask, mask)  # same RNG state, same defect


def test_painter_strength_follows_the_requested_signal_to_clutter():
    image = _plain_image(False)
    region = np.ones(image.shape, bool)
    measured = []
    for target in (1.0, 2.0):
        painted, mask = DEFECT_PAINTERS["stain"](image, np.random.default_rng(5), region, signal_to_clutter=target)
        measured.append(signal_to_clutter(painted, image, mask))
    assert measured[0] < measured[1]
    assert abs(measured[1] - 2.0) < 0.4, measured


def test_chip_bites_into_the_regions_border():
    image = _plain_image(False)
    region = np.zeros(image.shape, bool)
    region[30:130, 40:160] = True
    image = np.where(region, 0.8, 0.15).astype(np.float32)
    painted, mask = DEFECT_PAINTERS["chip"](image, np.random.default_rng(2), region)
    dist = cv2.distanceTransform(region.astype(np.uint8), cv2.DIST_L2, 3)
    assert dist[mask].min() <= 1.5  # touches the border
    assert painted[mask].mean() < 0.6  # the background shows through where material is missing


def test_synth_command_writes_every_kind_and_refuses_a_colour_screw(tmp_path: Path, capsys):
    from scae_tf.cli import main

    out = tmp_path / "surface"
    code = main(["-q", "synth", "--out", str(out), "--kind", "surface", "--color", "--size", "64", "--train", "2", "--test-good", "1", "--per-defect", "1"])
    assert code == 0
    assert json.loads((out / "dataset.json").read_text())["part"] == "surface"
    assert read_image(out / "train" / "good" / "000.png", gray=False).shape == (64, 64, 3)
    assert len(list_dataset(out, "test")) == 1 + len(PART_KINDS["surface"].defect_types)
    code = main(["-q", "synth", "--out", str(tmp_path / "screw"), "--kind", "screw", "--color", "--size", "64", "--train", "1"])
    err = capsys.readouterr().err
    assert code == 2 and "gray only" in err and "Traceback" not in err
    assert not (tmp_path / "screw").exists()


def test_loose_parts_lie_at_any_angle_and_only_where_the_kind_has_them(tmp_path):
    """--loose: the capsule anywhere at any angle (its axis spreads over 180 degrees), and refused for a kind without it."""
    out = generate_dataset(tmp_path / "loose", seed=1, size=96, n_train=12, n_test_good=0, n_per_defect=0, part="capsule", loose=True)
    assert json.loads((out / "dataset.json").read_text())["loose"] is True
    masks = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) > 0 for p in sorted((out / "object_masks" / "train" / "good").glob("*.png"))]
    assert axial_spread(np.array([mask_shape(m).angle for m in masks])) > 30
    fixtured = render_sample(sample_rng(1, "train", "good", 0, "capsule"), 96, "good", "capsule")
    assert not np.array_equal(fixtured.image, render_sample(sample_rng(1, "train", "good", 0, "capsule"), 96, "good", "capsule", loose=True).image)
    with pytest.raises(ScaeError, match="no loose variant"):
        generate_dataset(tmp_path / "screws", size=64, n_train=1, part="screw", loose=True)
