"""Image I/O: bit depths, channel layouts and every kind of bad file."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from scae_tf.errors import ScaeError
from scae_tf.imageio import read_image, read_mask, read_raw, resize, to_gray, write_png


def _write(path: Path, array: np.ndarray) -> Path:
    assert cv2.imwrite(str(path), array)
    return path


def test_8bit_gray(tmp_path: Path):
    array = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4
    image = read_image(_write(tmp_path / "g8.png", array))
    assert image.dtype == np.float32 and image.shape == (8, 8)
    np.testing.assert_allclose(image, array / 255.0, atol=1e-6)


def test_16bit_gray_keeps_full_range(tmp_path: Path):
    array = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000).astype(np.uint16)
    raw = read_raw(_write(tmp_path / "g16.png", array))
    assert raw.dtype == np.uint16
    np.testing.assert_allclose(read_image(tmp_path / "g16.png"), array / 65535.0, atol=1e-6)


def test_rgb_is_read_in_rgb_order_and_converted_to_luminance(tmp_path: Path):
    bgr = np.zeros((4, 4, 3), np.uint8)
    bgr[..., 2] = 255  # pure red as OpenCV stores it
    path = _write(tmp_path / "red.png", bgr)
    rgb = read_image(path, gray=False)
    assert rgb.shape == (4, 4, 3)
    np.testing.assert_allclose(rgb[0, 0], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(read_image(path), 0.299, atol=0.01)  # BT.601 luma of red


def test_rgba_drops_alpha(tmp_path: Path):
    bgra = np.zeros((4, 4, 4), np.uint8)
    bgra[..., 1] = 200  # green
    bgra[..., 3] = 17
    path = _write(tmp_path / "rgba.png", bgra)
    rgb = read_image(path, gray=False)
    assert rgb.shape == (4, 4, 3)
    np.testing.assert_allclose(rgb[0, 0], [0.0, 200 / 255, 0.0], atol=1e-6)


def test_write_png_round_trip_and_no_temp_left(tmp_path: Path):
    image = np.linspace(0, 1, 100, dtype=np.float32).reshape(10, 10)
    write_png(tmp_path / "x.png", image)
    assert [p.name for p in tmp_path.iterdir()] == ["x.png"]
    np.testing.assert_allclose(read_image(tmp_path / "x.png"), image, atol=0.5 / 255 + 1e-6)


def test_resize_and_gray_helpers():
    image = np.random.default_rng(0).random((20, 30)).astype(np.float32)
    assert resize(image, 10).shape == (10, 10)
    assert resize(image, (40, 50)).shape == (40, 50)
    assert resize(image > 0.5, (5, 6)).dtype == bool
    assert to_gray(np.stack([image] * 3, axis=-1)).shape == (20, 30)


def _png_bytes() -> bytes:
    ok, data = cv2.imencode(".png", np.random.default_rng(1).integers(0, 255, (64, 64), dtype=np.uint8))
    assert ok
    return data.tobytes()


@pytest.mark.parametrize(
    "content, expected",
    [
        (b"", "empty file"),
        (b"this is a text file, not a PNG\n" * 4, "unreadable or corrupt"),
        ("truncated", "unreadable or corrupt"),
        (bytes(range(256)) * 8, "unreadable or corrupt"),
    ],
    ids=["empty", "text-named-png", "truncated", "garbage"],
)
def test_bad_files_raise_scae_error_naming_the_path(tmp_path: Path, content, expected: str):
    data = _png_bytes()[: len(_png_bytes()) // 2] if content == "truncated" else content
    path = tmp_path / "bad.png"
    path.write_bytes(data)
    with pytest.raises(ScaeError, match=expected) as info:
        read_image(path)
    assert info.value.path == path and str(path) in str(info.value)


def test_missing_file(tmp_path: Path):
    with pytest.raises(ScaeError, match="no such image") as info:
        read_image(tmp_path / "nope.png")
    assert info.value.path == tmp_path / "nope.png"


def test_mask_size_must_match_its_image(tmp_path: Path):
    mask = np.zeros((8, 10), np.uint8)
    mask[2:4, 3:5] = 255
    path = _write(tmp_path / "m_mask.png", mask)
    assert read_mask(path, (8, 10)).sum() == 4
    with pytest.raises(ScaeError, match="must match") as info:
        read_mask(path, (10, 8))
    assert info.value.path == path
    assert not read_mask(_write(tmp_path / "empty_mask.png", np.zeros((3, 3), np.uint8))).any()
