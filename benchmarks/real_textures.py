"""Real surfaces for the surface kind: MVTec-layout categories cut from photographs of real textures.

Why: the synthetic surfaces (`scae synth --kind surface|fabric`) come from the same hands as the
texture features that judge them; a real grain is the honest check. scikit-image ships three
photographs of real textures (``brick``, ``grass``, ``gravel``, 512x512 gray, public domain): each
becomes a category whose good training images are square crops from its upper part and whose test
images are crops from its lower part (never overlapping a training crop), half of them with one
defect painted by :data:`scae_tf.synthetic.DEFECT_PAINTERS` at its default strength (signal over
the local texture's clutter 1.5-2.2; kinds the CAE's corruptions never draw), masks exact.
Deterministic. The photographs are read from an installed scikit-image (`pip install
scikit-image`) or from ``--source``; nothing is copied into the project.

    python -m benchmarks.real_textures --out TEXTURES [--side 160] [--source DIR]
    scae train --data TEXTURES/brick --out RUN --epochs 20
    scae evaluate --bundle RUN --data TEXTURES/brick --out REPORT
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import cv2
import numpy as np

from scae_tf.errors import ScaeError
from scae_tf.imageio import write_png
from scae_tf.synthetic import DEFECT_PAINTERS

TEXTURES = ("brick", "grass", "gravel")
DEFECTS = ("scratch", "pit", "crack", "stain", "hole")
TRAIN_IMAGES = 160
TEST_GOOD = 16
PER_DEFECT = 8
GAP = 16  # px between the training part of the photograph and the test strip


def scikit_image_data() -> Path | None:
    """scikit-image's data folder, where its photographs lie, or None when it is not installed."""
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def write_texture(photo: np.ndarray, out: Path, side: int, rng: np.random.Generator) -> None:
    """One category from a gray photograph in [0, 1]: training crops above, test crops from its bottom ``side`` rows."""
    height, width = photo.shape
    top_limit = height - side - GAP - side  # the lowest row a training crop may start at
    if top_limit < 0 or width < side:
        raise ScaeError(f"the photograph ({width}x{height}) is too small for two rows of {side}-px crops")
    for index in range(TRAIN_IMAGES):
        y, x = int(rng.integers(0, top_limit + 1)), int(rng.integers(0, width - side + 1))
        write_png(_folder(out / "train" / "good") / f"{index:03d}.png", photo[y : y + side, x : x + side])
    strip = photo[height - side :]
    offsets = rng.permutation(np.linspace(0, width - side, TEST_GOOD + PER_DEFECT * len(DEFECTS)).round().astype(int))
    for index, x in enumerate(offsets[:TEST_GOOD]):
        write_png(_folder(out / "test" / "good") / f"{index:03d}.png", strip[:, x : x + side])
    for number, defect in enumerate(DEFECTS):
        for index in range(PER_DEFECT):
            x = offsets[TEST_GOOD + number * PER_DEFECT + index]
            crop = strip[:, x : x + side].copy()
            painted, mask = DEFECT_PAINTERS[defect](crop, rng, np.ones(crop.shape, bool))
            write_png(_folder(out / "test" / defect) / f"{index:03d}.png", painted)
            write_png(_folder(out / "ground_truth" / defect) / f"{index:03d}_mask.png", mask.astype(np.uint8) * 255)


def _folder(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder to create: one category per texture")
    parser.add_argument("--side", type=int, default=160, help="crop side in px (default 160)")
    parser.add_argument("--source", type=Path, help="folder holding brick.png, grass.png, gravel.png (default: scikit-image's)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    source = args.source or scikit_image_data()
    if source is None:
        parser.error("scikit-image is not installed: `pip install scikit-image`, or pass --source with the photographs")
    if args.out.exists() and any(args.out.iterdir()):
        parser.error(f"{args.out} is not empty; choose a new --out")
    for name in TEXTURES:
        photo = cv2.imread(str(source / f"{name}.png"), cv2.IMREAD_GRAYSCALE)
        if photo is None:
            parser.error(f"no readable {name}.png in {source}")
        write_texture(photo.astype(np.float32) / 255.0, args.out / name, args.side, np.random.default_rng(args.seed))
        print(f"{name}: {args.out / name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
