"""Reading images and masks: any size, 8- or 16-bit, gray or RGB, with clear errors.

Everything downstream works on float32 gray images in [0, 1]; this module is the one place
that knows about file formats, bit depths and channel orders.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from scae_tf.errors import ScaeError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def is_image_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def read_raw(path: str | Path) -> np.ndarray:
    """Decode ``path`` as stored (uint8/uint16, HxW or HxWxC in RGB order)."""
    path = Path(path)
    if not path.is_file():
        raise ScaeError("no such image file; check the path", path)
    return decode_raw(np.fromfile(path, dtype=np.uint8), path)


def decode_raw(data: bytes | np.ndarray, source: str | Path) -> np.ndarray:
    """Decode encoded image bytes (a file's content, an HTTP body) as stored; ``source`` names it in errors.

    ``cv2.imdecode`` with ``IMREAD_UNCHANGED`` keeps 16-bit and gray images as they are and skips
    OpenCV's colour conversion, the fastest decode each format allows.
    """
    buffer = np.frombuffer(data, dtype=np.uint8) if isinstance(data, (bytes, bytearray, memoryview)) else data
    if buffer.size == 0:
        raise ScaeError("empty file, not an image; replace or remove it", source)
    image = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)
    if image is None or image.size == 0:
        raise ScaeError("unreadable or corrupt image (not a PNG/JPEG/BMP/TIFF OpenCV can decode); replace or remove it", source)
    if image.dtype not in (np.uint8, np.uint16):
        raise ScaeError(f"unsupported pixel type {image.dtype}; use 8- or 16-bit images", source)
    if image.ndim == 3:
        if image.shape[2] == 4:
            image = image[:, :, :3]
        elif image.shape[2] not in (1, 3):
            raise ScaeError(f"unsupported channel count {image.shape[2]}; use gray or RGB images", source)
        image = image[:, :, 0] if image.shape[2] == 1 else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    return image


def encoded_size(data: bytes) -> tuple[int, int] | None:
    """(height, width) from a PNG, JPEG or BMP header without decoding; None for other formats or a bad header.

    Lets a server refuse a huge image (a decompression bomb) before allocating it.
    """
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24 and data[12:16] == b"IHDR":
        return int.from_bytes(data[20:24], "big"), int.from_bytes(data[16:20], "big")
    if data[:2] == b"BM" and len(data) >= 26:
        return abs(int.from_bytes(data[22:26], "little", signed=True)), abs(int.from_bytes(data[18:22], "little", signed=True))
    if data[:2] == b"\xff\xd8":
        return _jpeg_size(data)
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """Walk the JPEG markers to the first start-of-frame (SOF0-SOF15 except DHT/JPG/DAC)."""
    position = 2
    while position + 9 < len(data):
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return int.from_bytes(data[position + 5 : position + 7], "big"), int.from_bytes(data[position + 7 : position + 9], "big")
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            position += 2
            continue
        position += 2 + int.from_bytes(data[position + 2 : position + 4], "big")
    return None


def to_float(image: np.ndarray) -> np.ndarray:
    """uint8/uint16 -> float32 in [0, 1]; float arrays are passed through as float32."""
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 255.0
    if image.dtype == np.uint16:
        return image.astype(np.float32) / 65535.0
    return image.astype(np.float32, copy=False)


def to_gray(image: np.ndarray) -> np.ndarray:
    """HxWx3 RGB -> HxW luminance; HxW passes through."""
    if image.ndim == 2:
        return image
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    if image.ndim == 3 and image.shape[2] == 1:
        return image[:, :, 0]
    raise ValueError(f"expected HxW or HxWx3 image, got shape {image.shape}")


def read_image(path: str | Path, gray: bool = True) -> np.ndarray:
    """Read an image as float32 in [0, 1]: HxW when ``gray`` else as stored (HxW or HxWx3)."""
    image = to_float(read_raw(path))
    return to_gray(image) if gray else image


def read_mask(path: str | Path, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Read a defect/object mask as bool HxW; ``shape`` (H, W) must match when given."""
    raw = read_raw(path)
    if raw.ndim == 3:
        raw = raw.max(axis=2)
    if shape is not None and raw.shape != tuple(shape):
        raise ScaeError(
            f"mask is {raw.shape[1]}x{raw.shape[0]} but its image is {shape[1]}x{shape[0]}; masks must match their images",
            path,
        )
    return raw > (raw.max() / 2 if raw.max() > 0 else 0)


def resize(image: np.ndarray, size: int | tuple[int, int], interpolation: str = "area") -> np.ndarray:
    """Resize to ``size`` (side or (H, W)); ``area`` for images, ``nearest`` for masks."""
    height, width = (size, size) if isinstance(size, int) else size
    if image.shape[:2] == (height, width):
        return image
    flags = {"area": cv2.INTER_AREA, "linear": cv2.INTER_LINEAR, "nearest": cv2.INTER_NEAREST}
    if image.dtype == bool:
        return cv2.resize(image.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST).astype(bool)
    mode = flags[interpolation]
    if interpolation == "area" and (height > image.shape[0] or width > image.shape[1]):
        mode = cv2.INTER_LINEAR  # INTER_AREA only makes sense when shrinking
    return cv2.resize(image, (width, height), interpolation=mode)


def encode_png(image: np.ndarray, where: str | Path = "image") -> bytes:
    """uint8/uint16 or float [0, 1] (gray or RGB) -> PNG bytes."""
    if image.dtype not in (np.uint8, np.uint16):
        image = np.clip(np.rint(np.asarray(image, dtype=np.float32) * 255.0), 0, 255).astype(np.uint8)
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(".png", image)
    if not ok:
        raise ScaeError("could not encode PNG", where)
    return encoded.tobytes()


def write_png(path: str | Path, image: np.ndarray) -> None:
    """Write uint8/uint16 or float [0, 1] (gray or RGB) as PNG, atomically."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(encode_png(image, path))
    tmp.replace(path)
