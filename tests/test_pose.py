"""Pose: angle and head direction from masks, warps and their round trips."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from scae_tf.errors import ScaeError
from scae_tf.pose import (
    Pose,
    crop_corners_in_image,
    estimate_pose,
    identity_pose,
    warp_to_crop,
    warp_to_image,
)


def draw_nail(angle: float, centre=(128.0, 128.0), length=150.0, size=256) -> tuple[np.ndarray, tuple[float, float]]:
    """A nail: wide flat head, shank, tapered tip; head at the start of the head->tip ``angle``.

    Returns the mask and the midpoint of its extent along the axis.
    """
    theta = math.radians(angle)
    u = np.array([math.cos(theta), math.sin(theta)])
    v = np.array([-u[1], u[0]])
    c = np.array(centre)
    head = c - u * length / 2
    tip = c + u * length / 2

    def pt(p):
        return np.round(p * 16).astype(np.int32)  # 4 bits of sub-pixel precision

    mask = np.zeros((size, size), np.uint8)
    head_poly = [head + v * 18, head - v * 18, head + u * 10 - v * 18, head + u * 10 + v * 18]
    shank_end = tip - u * 25
    shank = [head + v * 6, head - v * 6, shank_end - v * 6, shank_end + v * 6]
    point = [shank_end + v * 6, shank_end - v * 6, tip]
    for poly in (head_poly, shank, point):
        cv2.fillConvexPoly(mask, pt(np.array(poly)), 1, lineType=cv2.LINE_8, shift=4)
    return mask.astype(bool), (float(c[0]), float(c[1]))


def angle_difference(a: float, b: float) -> float:
    return abs((a - b + 180.0) % 360.0 - 180.0)


@pytest.mark.parametrize("angle", [0.0, 0.7, 30.0, 89.5, 90.0, 91.0, 135.0, 179.6, 180.0, 200.0, 269.0, 270.0, 315.0])
def test_pose_recovers_angle_and_head_direction(angle):
    mask, midpoint = draw_nail(angle)
    pose = estimate_pose(mask, (64, 192), 1.0)
    assert angle_difference(pose.angle, angle) < 1.0, (pose.angle, angle)
    assert np.hypot(pose.centre[0] - midpoint[0], pose.centre[1] - midpoint[1]) < 2.0
    crop_mask = warp_to_crop(mask, pose)
    columns = crop_mask.sum(axis=0)
    filled = np.nonzero(columns)[0]
    # head (wide) on the left, tip on the right, object centred in the crop
    assert columns[filled[:10]].mean() > 2 * columns[filled[-10:]].mean()
    assert abs((filled[0] + filled[-1]) / 2 - (192 - 1) / 2) < 2.0


def test_flipped_object_gives_opposite_angle():
    mask, _ = draw_nail(40.0)
    flipped_mask, _ = draw_nail(220.0)
    a = estimate_pose(mask, (64, 192), 1.0).angle
    b = estimate_pose(flipped_mask, (64, 192), 1.0).angle
    assert angle_difference(a + 180.0, b) < 1.0


def test_scale_shrinks_object_in_crop():
    mask, _ = draw_nail(10.0, length=150.0)
    pose = estimate_pose(mask, (64, 192), 0.5)
    columns = np.nonzero(warp_to_crop(mask, pose).any(axis=0))[0]
    assert abs((columns[-1] - columns[0] + 1) - 0.5 * 150) < 3


def test_empty_mask_is_a_user_error():
    with pytest.raises(ScaeError, match="empty"):
        estimate_pose(np.zeros((32, 32), bool), (16, 48), 1.0)


def test_matrix_and_inverse_are_inverse():
    pose = Pose(centre=(100.5, 80.25), angle=33.0, scale=0.7, crop_size=(40, 120))
    forward = np.vstack([pose.matrix(), [0, 0, 1]])
    backward = np.vstack([pose.inverse_matrix(), [0, 0, 1]])
    np.testing.assert_allclose(forward @ backward, np.eye(3), atol=1e-9)
    # the pose centre lands on the crop centre
    centre = pose.matrix() @ np.array([100.5, 80.25, 1.0])
    np.testing.assert_allclose(centre, [(120 - 1) / 2, (40 - 1) / 2], atol=1e-9)


def smooth_image(shape=(200, 220), seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.random((shape[0] // 8, shape[1] // 8)).astype(np.float32)
    return cv2.resize(noise, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)


def test_warp_round_trip_crop_image_crop():
    image = smooth_image()
    pose = Pose(centre=(110.0, 95.0), angle=-27.0, scale=1.0, crop_size=(48, 140))
    crop = warp_to_crop(image, pose)
    assert crop.shape == (48, 140) and crop.dtype == np.float32
    back = warp_to_image(crop, pose, image.shape)
    assert back.shape == image.shape and back.dtype == np.float32
    again = warp_to_crop(back, pose)
    inner = (slice(3, -3), slice(3, -3))
    assert np.abs(again[inner] - crop[inner]).max() < 0.03
    # outside the crop the back-warped map is zero
    assert back[0, 0] == 0.0 and back[-1, -1] == 0.0


def test_bool_maps_stay_bool_and_zero_outside():
    mask, _ = draw_nail(60.0)
    pose = estimate_pose(mask, (64, 192), 1.0)
    crop_mask = warp_to_crop(mask, pose)
    assert crop_mask.dtype == bool
    back = warp_to_image(crop_mask, pose, mask.shape)
    assert back.dtype == bool
    iou = (back & mask).sum() / (back | mask).sum()
    assert iou > 0.9


def test_crop_corners_map_back_to_box_edges():
    pose = Pose(centre=(120.0, 90.0), angle=71.0, scale=0.8, crop_size=(64, 192))
    box = (16, 8, 48, 40)
    corners = crop_corners_in_image(box, pose)
    assert corners.shape == (4, 2) and corners.dtype == np.float32
    in_crop = np.hstack([corners, np.ones((4, 1))]) @ pose.matrix().T
    np.testing.assert_allclose(in_crop, [[15.5, 7.5], [47.5, 7.5], [47.5, 39.5], [15.5, 39.5]], atol=1e-3)
    # side lengths scale by 1 / scale
    assert abs(np.linalg.norm(corners[1] - corners[0]) - 32 / 0.8) < 1e-3


def test_identity_pose_resizes_whole_frame():
    image = smooth_image((120, 120))
    pose = identity_pose(image.shape, (32, 96))
    crop = warp_to_crop(image, pose)
    assert crop.shape == (32, 96)
    corners = crop_corners_in_image((0, 0, 96, 32), pose)
    np.testing.assert_allclose(corners, [[-0.5, -0.5], [119.5, -0.5], [119.5, 119.5], [-0.5, 119.5]], atol=1e-3)
    expected = cv2.resize(image, (96, 32), interpolation=cv2.INTER_LINEAR)
    assert np.abs(crop - expected).mean() < 0.02
