"""A copy of an MVTec-layout category whose images vary in size and aspect (cut tiles, strips).

Why: real surface datasets are rarely one size (a tile category's images were 103-632 px wide); a
model must analyse each image undistorted and be evaluated on such a set. Each image becomes a
random rectangle of it (30-100 % of each side, aspect at most 3:1), holding at least 80 % of its
defect; masks are cut the same way; images are written as JPEG (quality 95), masks as PNG.
Deterministic for a seed.

    python -m benchmarks.varied_sizes --data SYNTHETIC_DIR --out VARIED_DIR [--seed 0]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from scae_tf.data.layout import list_dataset
from scae_tf.errors import ScaeError

MIN_SHARE = 0.3  # a side keeps at least this share of the original
MAX_ASPECT = 3.0
DEFECT_KEPT = 0.8  # a defective image's rectangle holds at least this share of its defect


def random_rectangle(shape: tuple[int, int], mask: np.ndarray | None, rng: np.random.Generator) -> tuple[int, int, int, int]:
    """(y, x, height, width) of a rectangle of ``shape`` holding DEFECT_KEPT of ``mask`` (when given)."""
    height, width = shape
    defect = float(mask.sum()) if mask is not None else 0.0
    for _ in range(500):
        h, w = int(height * rng.uniform(MIN_SHARE, 1.0)), int(width * rng.uniform(MIN_SHARE, 1.0))
        if max(h, w) > MAX_ASPECT * min(h, w):
            continue
        y, x = int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1))
        if mask is None or mask[y : y + h, x : x + w].sum() >= DEFECT_KEPT * defect:
            return y, x, h, w
    return 0, 0, height, width  # nothing found: the whole image


def write_varied(data: Path, out: Path, seed: int = 0) -> int:
    """Write the varied copy of ``data`` (train and test) to ``out``; returns the number of images."""
    if out.exists() and any(out.iterdir()):
        raise ScaeError("output folder is not empty; choose a new --out", out)
    rng = np.random.default_rng(seed)
    samples = sorted(list_dataset(data, "test"), key=lambda s: str(s.path)) + sorted(list_dataset(data, "train"), key=lambda s: str(s.path))
    for sample in samples:
        image = cv2.imread(str(sample.path), cv2.IMREAD_UNCHANGED)
        if image is None:
            raise ScaeError("unreadable image", sample.path)
        mask = cv2.imread(str(sample.mask_path), cv2.IMREAD_GRAYSCALE) if sample.mask_path else None
        y, x, h, w = random_rectangle(image.shape[:2], None if mask is None else mask > 127, rng)
        relative = sample.path.relative_to(data)
        target = (out / relative).with_suffix(".jpg")
        target.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(target), image[y : y + h, x : x + w], [cv2.IMWRITE_JPEG_QUALITY, 95])
        if mask is not None:
            mask_target = out / "ground_truth" / relative.parent.name / f"{relative.stem}_mask.png"
            mask_target.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(mask_target), mask[y : y + h, x : x + w])
    return len(samples)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.varied_sizes", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="MVTec-layout category (e.g. from `scae synth --kind surface --size 512`)")
    parser.add_argument("--out", type=Path, required=True, help="folder to write (MVTec layout)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        count = write_varied(args.data, args.out, args.seed)
    except ScaeError as err:
        parser.exit(2, f"{parser.prog}: error: {err}\n")
    print(f"{count} images of varied size and aspect written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
