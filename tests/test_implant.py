"""Implanted defects (scae_tf/implant.py) and the tuning proxy (benchmarks/proxy_split.py)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from scae_tf.imageio import to_gray
from scae_tf.implant import IMPLANT_KINDS, MASK_THRESHOLD, implant_defect, part_region
from scae_tf.synthetic import render_sample, sample_rng


@pytest.fixture(scope="module")
def part():
    sample = render_sample(sample_rng(3, "train", "good", 0), size=256)
    return sample.image, sample.object_mask


@pytest.mark.parametrize("kind", IMPLANT_KINDS)
def test_implant_is_small_on_the_part_and_its_mask_is_exact(part, kind):
    image, object_mask = part
    result = implant_defect(image, object_mask, np.random.default_rng(0), kind)
    change = np.abs(result.image - image)
    assert result.defect_mask.any()
    assert np.array_equal(result.defect_mask, change > MASK_THRESHOLD)  # exact mask
    assert not (result.defect_mask & ~object_mask).any()  # on the part only
    assert result.defect_mask.mean() < 0.01  # well under 1 % of the image
    assert result.image.dtype == np.float32 and result.image.min() >= 0 and result.image.max() <= 1
    assert result.kinds == (kind,)


@pytest.mark.parametrize("kind", ["scratch", "pit", "dent", "contamination"])
def test_contrast_stays_in_the_requested_range(part, kind):
    image, object_mask = part
    for seed in range(4):
        result = implant_defect(image, object_mask, np.random.default_rng(seed), kind, contrast=(0.05, 0.15))
        # the strongest relative change lies in the range (soft edges may only lower it; clipping is rare here)
        assert 0.05 <= result.contrasts[0] <= 0.15 + 1e-3


def test_chip_fills_material_at_the_edge_with_background(part):
    image, object_mask = part
    result = implant_defect(image, object_mask, np.random.default_rng(1), "chip")
    background = float(np.median(image[~object_mask]))
    changed = result.defect_mask
    # the removed material now looks like the (brighter) background
    assert abs(float(np.median(result.image[changed])) - background) < abs(float(np.median(image[changed])) - background)


def test_same_seed_same_implant_on_the_part(part):
    image, object_mask = part
    a = implant_defect(image, object_mask, np.random.default_rng(5), "scratch")
    b = implant_defect(image, object_mask, np.random.default_rng(5), "scratch")
    assert np.array_equal(a.image, b.image) and a.kinds == b.kinds == ("scratch",)
    assert np.array_equal(a.defect_mask, a.defect_mask & object_mask)


@pytest.mark.parametrize("kind", IMPLANT_KINDS)
def test_a_colour_part_gets_the_gray_implant_in_every_channel_by_the_same_ratio(part, kind):
    """A colour part keeps its colour: the implant is made on the luminance and each channel is
    scaled like it, so the tuning proxy of a colour run is not a gray rendering of its parts."""
    image, object_mask = part
    tint = np.asarray([1.0, 0.8, 0.6], np.float32)
    colour = image[..., None] * tint
    gray = implant_defect(to_gray(colour), object_mask, np.random.default_rng(2), kind)
    result = implant_defect(colour, object_mask, np.random.default_rng(2), kind)
    assert result.image.shape == colour.shape and result.image.dtype == np.float32
    assert np.array_equal(result.defect_mask, gray.defect_mask)
    assert not np.array_equal(result.image, colour)
    outside = ~result.defect_mask
    assert np.abs(result.image[outside] - colour[outside]).max() <= 2 * MASK_THRESHOLD  # soft edges below the mask threshold
    lit = result.defect_mask & (to_gray(colour) > 0.05) & (gray.image < 0.99)
    ratio = result.image[lit] / colour[lit]
    assert np.allclose(ratio[:, 0], ratio[:, 1], atol=1e-3) and np.allclose(ratio[:, 0], ratio[:, 2], atol=1e-3)
    assert np.allclose(ratio[:, 0], gray.image[lit] / to_gray(colour)[lit], atol=1e-3)


def test_bad_arguments(part):
    image, object_mask = part
    with pytest.raises(ValueError, match="unknown implant kind"):
        implant_defect(image, object_mask, np.random.default_rng(0), "crack")
    with pytest.raises(ValueError, match="empty"):
        implant_defect(image, np.zeros_like(object_mask), np.random.default_rng(0), "pit")
    with pytest.raises(ValueError, match="contrast"):
        implant_defect(image, object_mask, np.random.default_rng(0), "pit", contrast=(0.2, 0.1))


def test_the_part_splits_into_a_brighter_and_a_darker_half_and_implants_stay_in_theirs():
    ys, xs = np.mgrid[:160, :160]
    object_mask = (ys - 80) ** 2 + (xs - 80) ** 2 < 60**2  # a disk lit from the right
    image = np.where(object_mask, 0.2 + 0.6 * xs / 160, 0.05).astype(np.float32)
    bright, dark = part_region(image, object_mask, "bright"), part_region(image, object_mask, "dark")
    assert np.array_equal(part_region(image, object_mask, "anywhere"), object_mask)
    assert not (bright & dark).any() and np.array_equal(bright | dark, object_mask)
    assert 0.4 < bright.sum() / object_mask.sum() < 0.6  # split at the median brightness
    assert xs[bright].min() > 60 and xs[dark].max() < 100
    for seed in range(4):
        for kind in ("pit", "chip"):
            lit = implant_defect(image, object_mask, np.random.default_rng(seed), kind, within=bright).defect_mask
            shaded = implant_defect(image, object_mask, np.random.default_rng(seed), kind, within=dark).defect_mask
            assert xs[lit].mean() > 80 > xs[shaded].mean()
    with pytest.raises(ValueError, match="no place for a pit"):
        implant_defect(image, object_mask, np.random.default_rng(0), "pit", within=np.zeros_like(object_mask))
    with pytest.raises(ValueError, match="region"):
        part_region(image, object_mask, "lit")


def test_proxy_split_writes_an_mvtec_folder_without_test_or_trained_images(synthetic_root, tmp_path):
    from benchmarks.proxy_split import make_proxy
    from scae_tf.data.layout import list_dataset
    from scae_tf.errors import ScaeError

    train = sorted(str(p) for p in (synthetic_root / "train" / "good").iterdir())
    run = tmp_path / "run"
    run.mkdir()
    # the run trained on 2 images and kept 2 aside; the other 2 train/good files were never trained on either
    (run / "split.json").write_text(json.dumps({"version": 1, "train": train[:2], "validation": train[2:4], "calibration": train[2:4]}))
    with pytest.raises(ScaeError, match="at least 8"):
        make_proxy(run, synthetic_root, tmp_path / "proxy")
    assert not (tmp_path / "proxy").exists()

    (run / "split.json").write_text(json.dumps({"version": 1, "train": [], "validation": train, "calibration": train}))
    extra = tmp_path / "data"
    (extra / "train" / "good").mkdir(parents=True)
    for i in range(4):  # held-out train/good images the run never saw join the pool
        (extra / "train" / "good" / f"x{i}.png").write_bytes((synthetic_root / "train" / "good" / "000.png").read_bytes())
    manifest = make_proxy(run, extra, tmp_path / "proxy", copies=2, kinds=("pit", "scratch"), seed=3)
    proxy = tmp_path / "proxy"
    assert len(manifest["calibration"]) + len(manifest["proxy_good"]) == 10
    assert not set(manifest["calibration"]) & set(manifest["proxy_good"])
    samples = list_dataset(proxy, "test")
    good = [s for s in samples if s.label == 0]
    bad = [s for s in samples if s.label == 1]
    assert len(good) == len(manifest["proxy_good"]) and len(bad) == 2 * len(good)
    assert {s.defect_type for s in bad} == {"pit", "scratch"}
    assert all(s.mask_path is not None and s.mask_path.is_file() for s in bad)
    assert sorted(p.name for p in (proxy / "train" / "good").iterdir()) == sorted(p.split("/")[-1] for p in manifest["calibration"])
    assert manifest["region"] == "anywhere"
    with pytest.raises(ScaeError, match="not empty"):
        make_proxy(run, extra, proxy)
    lit = make_proxy(run, extra, tmp_path / "lit", copies=1, kinds=("pit",), seed=3, region="bright")
    assert lit["region"] == "bright" and lit["calibration"] == manifest["calibration"]  # the same split, implants elsewhere
    assert json.loads((tmp_path / "lit" / "proxy.json").read_text())["region"] == "bright"
    with pytest.raises(ScaeError, match="region"):
        make_proxy(run, extra, tmp_path / "nowhere", region="lit")


def test_proxy_of_a_colour_surface_keeps_colour_and_implants_anywhere_on_the_frame(tmp_path, monkeypatch):
    """A surface fills the frame, so the whole image is the part; a colour part's proxy stays colour."""
    import dataclasses

    import cv2

    from benchmarks.proxy_split import make_proxy
    from scae_tf.config import RunConfig, save_json
    from scae_tf.data.layout import list_dataset
    from scae_tf.errors import ScaeError
    from scae_tf.imageio import read_raw, write_png
    from scae_tf.preprocessing import fit_preprocess_state

    rng = np.random.default_rng(0)
    paths = []
    (tmp_path / "data" / "train" / "good").mkdir(parents=True)
    for i in range(8):
        texture = cv2.GaussianBlur(rng.random((64, 64)).astype(np.float32), (0, 0), 1.0)
        image = np.clip(0.3 + 0.4 * texture, 0, 1)[..., None] * np.asarray([1.0, 0.7, 0.5], np.float32)
        path = tmp_path / "data" / "train" / "good" / f"{i}.png"
        write_png(path, image)
        paths.append(str(path))
    run = tmp_path / "run"
    run.mkdir()
    config = RunConfig()
    save_json(dataclasses.replace(config, preprocess=dataclasses.replace(config.preprocess, kind="surface", work_size=64)), run / "config.json")
    (run / "split.json").write_text(json.dumps({"version": 1, "train": [], "validation": paths, "calibration": paths}))
    make_proxy(run, tmp_path / "data", tmp_path / "proxy", copies=2, kinds=("pit", "scratch"), seed=1)
    bad = [s for s in list_dataset(tmp_path / "proxy", "test") if s.label == 1]
    assert len(bad) == 8
    for sample in bad:
        assert read_raw(sample.path).ndim == 3  # colour kept
    assert all(read_raw(s.path).ndim == 3 for s in list_dataset(tmp_path / "proxy", "test") if s.label == 0)
    # a chip needs a silhouette edge, which a surface has not: those copies are skipped and counted, the rest stay
    manifest = make_proxy(run, tmp_path / "data", tmp_path / "mixed", copies=2, kinds=("pit", "chip"), seed=1)
    assert manifest["unplaceable"] == {"chip": 4} and {d["kind"] for d in manifest["defects"]} == {"pit"}
    with pytest.raises(ScaeError, match="no implant could be placed"):
        make_proxy(run, tmp_path / "data", tmp_path / "chips", copies=1, kinds=("chip",), seed=1)
    assert not (tmp_path / "chips").exists() and not list(tmp_path.glob(".chips*"))
    # a checkpoint of an unfinished run: config.json still says "auto", preprocessing.json has the fitted kind
    save_json(config, run / "config.json")
    works = [read_raw(p).astype(np.float32) / 255 for p in paths]
    fit_preprocess_state(works, [np.ones(w.shape[:2], bool) for w in works], dataclasses.replace(config.preprocess, kind="surface", work_size=64, color="rgb")).save(run / "preprocessing.json")
    import benchmarks.proxy_split

    def no_classical_mask(*_):
        raise AssertionError("a surface's proxy must not look for a part in the frame")

    monkeypatch.setattr(benchmarks.proxy_split, "_object_mask", no_classical_mask)
    assert len(make_proxy(run, tmp_path / "data", tmp_path / "fitted", copies=1, kinds=("pit",), seed=1)["defects"]) == 4


def test_variant_overrides_are_typed_and_checked():
    from benchmarks.proxy_split import apply_overrides
    from scae_tf.config import RunConfig
    from scae_tf.errors import ScaeError

    config = apply_overrides(RunConfig(), ["postprocess.residual=ssim", "postprocess.zones=-1", "postprocess.outline_weight=1"])
    assert config.postprocess.residual == "ssim" and config.postprocess.zones == -1
    assert config.postprocess.outline_weight == 1.0 and isinstance(config.postprocess.outline_weight, float)
    for bad in ("postprocess.nope=1", "residual=l2", "postprocess.zones=\"x\""):
        with pytest.raises(ScaeError):
            apply_overrides(RunConfig(), [bad])


def test_variant_of_an_unfinished_run_uses_its_fitted_crop(tmp_path, monkeypatch):
    """config.json gets the fitted crop size only when training ends; a variant of a checkpoint taken
    before that must crop like preprocessing.json (a compact part's 48x32 crop, not the 128x384 default)."""
    import cv2

    from benchmarks.proxy_split import make_variant
    from scae_tf.artifacts import RunDir
    from scae_tf.calibration import Calibration
    from scae_tf.config import PostprocessConfig, PreprocessConfig, RunConfig, from_dict, save_json, to_dict
    from scae_tf.imageio import write_png
    from scae_tf.preprocessing import fit_preprocess_state
    from scae_tf.references import GoodReferences

    class BlurBackend:
        def segment(self, image):
            return (image > 0.4).astype(np.float32)

        def reconstruct(self, crop):
            return cv2.GaussianBlur(crop, (0, 0), 1.5)

    rng = np.random.default_rng(0)
    paths = []
    for i in range(6):
        image = (0.1 + 0.01 * rng.standard_normal((96, 96))).astype(np.float32)
        cv2.circle(image, (48 + int(rng.integers(-2, 3)), 48), 20, 0.7, -1)
        path = tmp_path / f"{i}.png"
        write_png(path, image)
        paths.append(str(path))
    fitted = PreprocessConfig(work_size=96, seg_size=96, crop_height=48, crop_width=32, kind="compact", fixtured=True, color="gray")
    config = from_dict(RunConfig, {**to_dict(RunConfig()), "postprocess": to_dict(PostprocessConfig(patch_size=4, patch_stride=4, zones=1))})
    run = tmp_path / "run"
    run.mkdir()
    save_json(config, run / "config.json")  # still the default 128x384 crop, as while the CAE trains
    works = [np.asarray(cv2.imread(p, cv2.IMREAD_GRAYSCALE), np.float32) / 255 for p in paths]
    fit_preprocess_state(works, [w > 0.4 for w in works], fitted).save(run / "preprocessing.json")
    (run / "split.json").write_text(json.dumps({"version": 1, "train": paths[:3], "validation": paths, "calibration": paths}))
    monkeypatch.setattr(RunDir, "backend", lambda self, threads=2: BlurBackend())
    out = make_variant(run, None, tmp_path / "variant", ["postprocess.zones=0"])
    variant = RunDir(out)
    assert (variant.config().preprocess.crop_height, variant.config().preprocess.crop_width) == (48, 32)
    assert variant.config().postprocess.zones == 0
    # the run has no calibration yet, so the good references are cropped from its training images
    assert variant.calibration_file.is_file() and len(Calibration.load(variant.calibration_file).references) == 3
    assert variant.split().train == paths[:3]  # the models' training images: an int8 export of the variant needs them
    off = make_variant(run, None, tmp_path / "off", ["postprocess.reference_neighbours=0"])
    assert Calibration.load(RunDir(off).calibration_file).references is None
    # a run's own references are reused (kept under its version's cap: here one), unless rebuilt from its training images
    calibration = Calibration.load(variant.calibration_file)
    dataclasses.replace(calibration, references=GoodReferences(calibration.references.crops[:1])).save(run / "calibration.json")
    assert len(Calibration.load(RunDir(make_variant(run, None, tmp_path / "kept")).calibration_file).references) == 1
    rebuilt = make_variant(run, None, tmp_path / "rebuilt", rebuild_references=True)
    assert len(Calibration.load(RunDir(rebuilt).calibration_file).references) == 3
