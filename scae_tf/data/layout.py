"""Listing datasets on disk: MVTec AD category folders and a plain folder layout.

MVTec AD (any image size)::

    ROOT/train/good/*.png
    ROOT/test/good/*.png, ROOT/test/<defect>/*.png
    ROOT/ground_truth/<defect>/<name>_mask.png

MVTec 3D-AD (its colour pictures; the point clouds in ``xyz/`` are not read)::

    ROOT/train/good/rgb/*.png, ROOT/validation/good/rgb/*.png   (both train: good parts never tested on)
    ROOT/test/good/rgb/*.png, ROOT/test/<defect>/rgb/*.png
    ROOT/test/<defect>/gt/<name>.png                             (the mask of rgb/<name>.png)

Plain folders (your own parts)::

    ROOT/good/*          defect-free images, used for training
    ROOT/test_good/*     optional: defect-free images to evaluate
    ROOT/defective/*     optional: defective images to evaluate
    ROOT/masks/*         optional: defect masks, <name>_mask.png or <name>.png

Listing only looks at names; images are decoded later (``scae_tf.imageio``). Masks are matched
to images by name and a missing one is an error naming the file that lacks it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from scae_tf.errors import ScaeError
from scae_tf.imageio import IMAGE_SUFFIXES, is_image_file

log = logging.getLogger(__name__)

GOOD = "good"
RGB, MASKS_3D = "rgb", "gt"  # MVTec 3D-AD: each picture in rgb/, its defect mask under the same name in gt/


@dataclass(frozen=True)
class Sample:
    """One image of a dataset: where it is, what it is and where its defect mask is."""

    path: Path
    label: int  # 0 good, 1 defective
    defect_type: str  # "good" or the defect folder name
    mask_path: Path | None = None

    @property
    def name(self) -> str:
        return f"{self.defect_type}/{self.path.name}"


def _images_in(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise ScaeError("folder not found", folder)
    files = sorted(p for p in folder.iterdir() if is_image_file(p))
    skipped = sorted(p.name for p in folder.iterdir() if p.is_file() and not is_image_file(p) and not p.name.startswith("."))
    if skipped:
        log.warning("%s: ignoring %d non-image file(s): %s", folder, len(skipped), ", ".join(skipped[:5]))
    if not files:
        raise ScaeError(f"no images ({'/'.join(IMAGE_SUFFIXES)}) in this folder; put the images there or fix the path", folder)
    return files


def _find_mask(mask_dir: Path, image: Path, suffixes: tuple[str, ...]) -> Path:
    for suffix in suffixes:
        for ext in (image.suffix, ".png"):
            candidate = mask_dir / f"{image.stem}{suffix}{ext}"
            if candidate.is_file():
                return candidate
    raise ScaeError(
        f"missing defect mask: expected {mask_dir / (image.stem + suffixes[0] + '.png')}; add the mask or remove the image",
        image,
    )


def is_mvtec(root: Path) -> bool:
    return (Path(root) / "train" / GOOD).is_dir()


def is_mvtec3d(root: Path) -> bool:
    return (Path(root) / "train" / GOOD / RGB).is_dir()


def is_plain(root: Path) -> bool:
    return (Path(root) / GOOD).is_dir()


def list_mvtec(root: str | Path, split: str) -> list[Sample]:
    """List ``split`` ("train" or "test") of an MVTec AD category folder, or of an MVTec 3D-AD one (its pictures
    in ``rgb/`` sub-folders; the validation goods train too)."""
    root = Path(root)
    three_d = is_mvtec3d(root)
    if split == "train":
        if not three_d:
            return [Sample(p, 0, GOOD) for p in _images_in(root / "train" / GOOD)]
        folders = [root / "train" / GOOD / RGB, root / "validation" / GOOD / RGB]
        return [Sample(p, 0, GOOD) for folder in folders if folder.is_dir() for p in _images_in(folder)]
    if split != "test":
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    test_dir = root / "test"
    if not test_dir.is_dir():
        raise ScaeError("no test/ folder: this dataset has nothing to evaluate (expected test/good, test/<defect>)", root)
    types = sorted(d.name for d in test_dir.iterdir() if d.is_dir())
    if not types:
        raise ScaeError("test/ has no sub-folders; expected test/good and test/<defect> folders", test_dir)
    samples: list[Sample] = []
    for defect in types:
        for path in _images_in(test_dir / defect / RGB if three_d else test_dir / defect):
            if defect == GOOD:
                samples.append(Sample(path, 0, GOOD))
            elif three_d:
                samples.append(Sample(path, 1, defect, _find_mask(test_dir / defect / MASKS_3D, path, ("",))))
            else:
                samples.append(Sample(path, 1, defect, _find_mask(root / "ground_truth" / defect, path, ("_mask", ""))))
    return samples


def list_folder(root: str | Path, split: str) -> list[Sample]:
    """List ``split`` of the plain folder layout (see module docstring)."""
    root = Path(root)
    if split == "train":
        return [Sample(p, 0, GOOD) for p in _images_in(root / GOOD)]
    if split != "test":
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    samples: list[Sample] = []
    if (root / "test_good").is_dir():
        samples += [Sample(p, 0, GOOD) for p in _images_in(root / "test_good")]
    if (root / "defective").is_dir():
        mask_dir = root / "masks"
        for path in _images_in(root / "defective"):
            mask = _find_mask(mask_dir, path, ("_mask", "")) if mask_dir.is_dir() else None
            samples.append(Sample(path, 1, "defective", mask))
    if not samples:
        raise ScaeError("nothing to evaluate: add test_good/ and/or defective/ folders", root)
    return samples


def list_dataset(root: str | Path, split: str) -> list[Sample]:
    """List ``split`` of ``root``, recognising the MVTec layout or the plain layout."""
    root = Path(root)
    if not root.is_dir():
        raise ScaeError("dataset folder not found", root)
    if is_mvtec(root):
        return list_mvtec(root, split)
    if is_plain(root):
        return list_folder(root, split)
    raise ScaeError(
        "not a dataset folder: expected the MVTec AD layout (train/good, test/<type>, ground_truth/<type>), "
        "MVTec 3D-AD's (train/good/rgb, test/<type>/rgb, test/<type>/gt) or a plain layout (good/, optional "
        "test_good/, defective/, masks/)",
        root,
    )
