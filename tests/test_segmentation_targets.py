"""Classical object masks: part in, soft shadow out, defects inside."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from scae_tf.data.layout import list_mvtec
from scae_tf.imageio import read_image, read_mask
from scae_tf.segmentation_targets import classical_object_mask, fill_across_axis
from scae_tf.synthetic import DEFECT_TYPES, render_sample, sample_rng

MATERIAL_MISSING = {"manipulated_front"}  # ground truth covers material that is gone: background by nature


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def drawn_part_with_shadow(size: int = 256) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A dark bar with a bright stripe, a soft cast shadow and a lighting gradient."""
    part = np.zeros((size, size), np.uint8)
    cv2.rectangle(part, (40, 110), (215, 140), 1, -1)
    cv2.circle(part, (40, 125), 26, 1, -1)
    part = part.astype(bool)
    shadow = np.zeros((size, size), np.float32)
    shadow[118:156, 44:222] = 1.0
    shadow = cv2.GaussianBlur(shadow, (0, 0), 5)
    gradient = np.linspace(0.7, 0.9, size, dtype=np.float32)[None, :].repeat(size, 0)
    image = gradient * (1 - 0.25 * shadow)
    image[part] = 0.3
    image[124:127, 60:200] = 0.75  # a reflection along the part, as bright as the background
    rng = np.random.default_rng(0)
    image = np.clip(image + rng.normal(0, 0.01, image.shape), 0, 1).astype(np.float32)
    shadow_only = (shadow > 0.3) & ~part
    return image, part, shadow_only


def test_drawn_part_in_shadow_out():
    image, part, shadow_only = drawn_part_with_shadow()
    mask = classical_object_mask(image)
    assert mask.dtype == bool and mask.shape == image.shape
    assert iou(mask, part) > 0.98
    assert mask[125, 130]  # the reflection is part of the object
    assert (mask & shadow_only).sum() < 0.02 * shadow_only.sum()


def test_image_without_a_part_gives_an_empty_mask():
    rng = np.random.default_rng(1)
    blank = np.clip(0.8 + rng.normal(0, 0.01, (256, 256)), 0, 1).astype(np.float32)
    blank[100:106, 50:56] = 0.3  # a speck of dust
    assert not classical_object_mask(blank).any()


def test_slice_fill_closes_notch_across_axis_but_not_along():
    mask = np.zeros((60, 120), bool)
    mask[20:40, 10:110] = True
    mask[20:30, 50:60] = False  # notch at the edge: no object beyond it across the axis
    mask[28:32, 70:80] = False  # a bright band inside, touching nothing: filled
    filled = fill_across_axis(mask)
    assert filled[30, 75]
    assert not filled[22, 55]  # nothing beyond it across the axis, so it stays open


@pytest.mark.parametrize("size", [256, 512])
def test_synthetic_screws_match_true_object_masks(size):
    ious = []
    for index in range(6):
        kind = "good" if index < 4 else DEFECT_TYPES[index % len(DEFECT_TYPES)]
        sample = render_sample(sample_rng(0, "test", kind, index), size=size, defect_type=kind)
        mask = classical_object_mask(sample.image)
        ious.append(iou(mask, sample.object_mask))
        if sample.defect_mask.any():
            assert (mask & sample.defect_mask).sum() >= 0.95 * sample.defect_mask.sum()
    assert min(ious) > 0.8 and np.mean(ious) > 0.85


@pytest.mark.real_data
def test_real_defects_stay_inside_the_mask(real_data_root):
    near = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (17, 17))  # within 8 px: inside an object patch
    inside_present = []
    for sample in (s for s in list_mvtec(real_data_root, "test") if s.label == 1):
        mask = classical_object_mask(read_image(sample.path))
        defect = read_mask(sample.mask_path)
        assert mask.mean() < 0.2
        within = (cv2.dilate(mask.astype(np.uint8), near) > 0) & defect
        fraction_near = within.sum() / defect.sum()
        assert fraction_near > 0.5, sample.name
        if sample.defect_type not in MATERIAL_MISSING:
            assert fraction_near > 0.9, sample.name
            inside_present.append((mask & defect).sum() / defect.sum())
    assert np.mean(inside_present) > 0.8


@pytest.mark.real_data
def test_real_good_masks_are_one_plausible_part(real_data_root):
    for path in sorted((real_data_root / "train" / "good").glob("*.png"))[::40]:
        mask = classical_object_mask(read_image(path))
        count, _ = cv2.connectedComponents(mask.astype(np.uint8))
        assert count == 2  # background + one part
        assert 0.05 < mask.mean() < 0.16
