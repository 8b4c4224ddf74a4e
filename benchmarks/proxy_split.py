"""Tuning proxy: an MVTec-layout folder of held-out good images and implanted copies, no test image used.

Why: the test images of a development split must not steer tuning. The run's validation slice
(never trained on) is split in two: one half stays calibration (``train/good`` of the proxy and the
calibration list of every variant), the other half becomes ``test/good``, and copies of those with
realistic subtle implanted defects (``scae_tf.implant``) become ``test/<kind>`` with exact masks in
``ground_truth/<kind>``. Good train/good images the run did not train on (when it was trained on a
subset) join the pool too.

    python -m benchmarks.proxy_split split --run RUN_DIR --data DATA --out PROXY [--region bright|dark]
    python -m benchmarks.proxy_split variant --run RUN_DIR --proxy PROXY --out VARIANT \\
        --set postprocess.residual=l2 --set postprocess.zones=-1
    scae evaluate --bundle VARIANT --data PROXY --out REPORT --no-brightness-control

``variant`` makes a run dir that shares the run's models (symbolic links) with other settings
(``--set section.field=value``, JSON values), recalibrated on the proxy's calibration half only, so
``scae evaluate`` measures each setting on the proxy exactly as on a real test set. ``--region``
puts every implant on the part's brighter or darker half (``scae_tf.implant.part_region``): placed
anywhere they follow the part's area, and a small lit or shaded place may hold a blind spot.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from scae_tf.artifacts import RunDir, Split
from scae_tf.config import RunConfig, from_dict, save_json, to_dict
from scae_tf.errors import ScaeError
from scae_tf.imageio import read_image, resize, to_gray, write_png
from scae_tf.implant import CONTRAST_RANGE, IMPLANT_KINDS, REGIONS, implant_defect, part_region
from scae_tf.segmentation_targets import classical_object_mask

log = logging.getLogger(__name__)

PROXY_VERSION = 1
PROXY_FILE = "proxy.json"


def _held_out_pool(run: Path, data: Path) -> list[Path]:
    """Good images the run never trained on: its validation slice plus train/good files not in its train list."""
    split = RunDir(run).split()
    trained = {Path(p).name for p in split.train}
    pool = {Path(p).name: Path(p) for p in split.validation}
    folder = data / "train" / "good"
    if folder.is_dir():
        for path in sorted(folder.iterdir()):
            if path.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff") and path.name not in trained:
                pool.setdefault(path.name, path)
    missing = [p for p in pool.values() if not p.is_file()]
    if missing:
        raise ScaeError(f"held-out image {missing[0]} not found; pass --data with the dataset the run was trained on", run)
    return [pool[name] for name in sorted(pool)]


def _object_mask(image: np.ndarray, work_size: int) -> np.ndarray:
    """Classical object mask at the image's own resolution (computed at the work size like training targets)."""
    work = resize(image, work_size, "area")
    mask = classical_object_mask(work)
    if mask.shape != image.shape:
        mask = resize(mask.astype(np.float32), image.shape, "nearest") > 0.5
    return mask


def make_proxy(
    run: str | Path,
    data: str | Path,
    out: str | Path,
    calibration_fraction: float = 0.5,
    copies: int = 2,
    kinds: Sequence[str] = IMPLANT_KINDS,
    seed: int = 0,
    force: bool = False,
    contrast: tuple[float, float] = CONTRAST_RANGE,
    region: str = "anywhere",
) -> dict[str, Any]:
    """Write the proxy folder (see module docstring); returns the contents of its ``proxy.json``."""
    run, data, out = Path(run), Path(data), Path(out)
    if not 0.0 < calibration_fraction < 1.0:
        raise ScaeError(f"--calibration-fraction must be in (0, 1), got {calibration_fraction}")
    if copies < 1:
        raise ScaeError(f"--copies must be >= 1, got {copies}")
    if region not in REGIONS:
        raise ScaeError(f"unknown --region {region!r}; choose from {list(REGIONS)}")
    unknown = sorted(set(kinds) - set(IMPLANT_KINDS))
    if unknown:
        raise ScaeError(f"unknown implant kind(s) {unknown}; choose from {list(IMPLANT_KINDS)}")
    if out.exists() and any(out.iterdir()) and not force:
        raise ScaeError("output folder is not empty; choose a new --out or pass --force", out)
    if not out.parent.is_dir():
        raise ScaeError("parent folder does not exist; create it first", out.parent)
    source = RunDir(run)
    # only the work size and the part kind are used; preprocessing.json has the fitted ones even for a
    # checkpoint of an unfinished run, whose config.json still says "auto"
    if source.preprocessing_file.is_file():
        preprocess = source.preprocess_state().config
    else:
        preprocess = (source.config() if source.config_file.is_file() else RunConfig()).preprocess
    pool = _held_out_pool(run, data)
    if len(pool) < 8:
        raise ScaeError(f"only {len(pool)} held-out good image(s); the proxy needs at least 8 (4 to calibrate, 4 to test)", run)
    order = np.random.default_rng(seed).permutation(len(pool))
    n_calibration = min(len(pool) - 4, max(4, int(round(calibration_fraction * len(pool)))))
    calibration = sorted(pool[i] for i in order[:n_calibration])
    proxy_good = sorted(pool[i] for i in order[n_calibration:])

    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        (tmp / "train" / "good").mkdir(parents=True)
        (tmp / "test" / "good").mkdir(parents=True)
        for path in calibration:
            shutil.copyfile(path, tmp / "train" / "good" / path.name)
        defects = []
        rng = np.random.default_rng([seed, PROXY_VERSION])
        # a surface fills the frame: the whole image is the part (a classical mask would pick texture blobs)
        surface = preprocess.kind == "surface"
        unplaceable: dict[str, int] = {}
        for index, path in enumerate(proxy_good):
            shutil.copyfile(path, tmp / "test" / "good" / path.name)
            image = read_image(path, gray=False)  # a colour part keeps its colour
            mask = np.ones(image.shape[:2], bool) if surface else _object_mask(to_gray(image), preprocess.work_size)
            within = part_region(image, mask, region)
            for copy in range(copies):
                kind = kinds[(index * copies + copy) % len(kinds)]
                try:
                    implanted = implant_defect(image, mask, rng, kind, contrast, within)
                except ValueError as err:  # e.g. a chip needs a silhouette edge, which a surface has not
                    log.warning("%s: no %s implant (%s)", path.name, kind, err)
                    unplaceable[kind] = unplaceable.get(kind, 0) + 1
                    continue
                name = f"{path.stem}_{copy}"
                (tmp / "test" / kind).mkdir(exist_ok=True)
                (tmp / "ground_truth" / kind).mkdir(parents=True, exist_ok=True)
                write_png(tmp / "test" / kind / f"{name}.png", implanted.image)
                write_png(tmp / "ground_truth" / kind / f"{name}_mask.png", implanted.defect_mask.astype(np.float32))
                defects.append(
                    {
                        "file": f"test/{kind}/{name}.png",
                        "source": str(path),
                        "kind": kind,
                        "contrast": round(implanted.contrasts[0], 4),
                        "area_fraction": round(float(implanted.defect_mask.mean()), 6),
                    }
                )
        if not defects:
            raise ScaeError(f"no implant could be placed on any held-out image (kinds {list(kinds)}); choose other --kinds", run)
        manifest = {
            "version": PROXY_VERSION,
            "run": str(run.resolve()),
            "data": str(data.resolve()),
            "seed": seed,
            "kinds": list(kinds),
            "copies": copies,
            "contrast": list(contrast),
            "region": region,
            "calibration": [str(p) for p in calibration],
            "proxy_good": [str(p) for p in proxy_good],
            "defects": defects,
            "unplaceable": unplaceable,  # implants skipped per kind: the part gave them no visible place
        }
        (tmp / PROXY_FILE).write_text(json.dumps(manifest, indent=1) + "\n")
        if out.exists():
            shutil.rmtree(out)
        tmp.replace(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("proxy %s: %d calibration, %d good, %d implanted", out, len(calibration), len(proxy_good), len(defects))
    return manifest


def read_proxy(proxy: str | Path) -> dict[str, Any]:
    path = Path(proxy) / PROXY_FILE
    if not path.is_file():
        raise ScaeError(f"no {PROXY_FILE}: pass a folder written by `python -m benchmarks.proxy_split split`", proxy)
    try:
        return json.loads(path.read_text())
    except ValueError as err:
        raise ScaeError(f"corrupt proxy manifest ({err}); rebuild the proxy", path) from None


def apply_overrides(config: RunConfig, overrides: Sequence[str]) -> RunConfig:
    """``section.field=value`` strings (value parsed as JSON, else kept as a string) applied to ``config``."""
    data = to_dict(config)
    for item in overrides:
        key, sep, raw = item.partition("=")
        section, dot, name = key.partition(".")
        if not sep or not dot or section not in data or name not in data[section]:
            raise ScaeError(f"--set {item!r}: expected section.field=value with a known field (e.g. postprocess.zones=-1)")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        data[section][name] = value
    return from_dict(RunConfig, data, where="--set")


def make_variant(
    run: str | Path,
    proxy: str | Path | None,
    out: str | Path,
    overrides: Sequence[str] = (),
    force: bool = False,
    rebuild_references: bool = False,
) -> Path:
    """Run dir sharing ``run``'s models, with ``overrides``, recalibrated on the proxy's calibration half.

    ``proxy`` None: recalibrated on the run's own validation slice instead (all of it), i.e. the run
    as ``scae train`` would have written it with these settings, for the final test-set evaluation.
    The run's good references are reused unless ``rebuild_references`` (or they are of another kind, or a texture model of another number of Gaussians): rebuilt,
    they are cropped from its training images as this version keeps them (``MAX_REFERENCE_BYTES``).
    """
    from scae_tf.calibration import Calibration, calibrate, good_references
    from scae_tf.preprocessing import Preprocessor
    from scae_tf.references import GoodReferences
    from scae_tf.texture import TextureModel

    source, variant = RunDir(Path(run).resolve()), RunDir(out)
    run, out = source.path, variant.path
    if out.exists() and any(out.iterdir()) and not force:
        raise ScaeError("output folder is not empty; choose a new --out or pass --force", out)
    state = source.preprocess_state()
    # the fitted pre-processing (crop size, kind, colour) is in preprocessing.json; config.json holds it
    # only once the run has finished, and a variant of a checkpoint of an unfinished run must use it too
    config = apply_overrides(dataclasses.replace(source.config(), preprocess=state.config), overrides)
    state.config = config.preprocess
    out.mkdir(parents=True, exist_ok=True)
    for model in ("segmenter", "cae"):
        link = variant.model_file(model)
        if link.is_symlink() or link.exists():
            link.unlink()
        os.symlink(source.model_file(model), link)
    save_json(config, variant.config_file)
    state.save(variant.preprocessing_file)
    calibration_files = list(read_proxy(proxy)["calibration"]) if proxy is not None else source.split().validation
    # the models were trained on the run's training images: an int8 export of the variant takes its
    # activation ranges from them, and the good references are theirs
    variant.write_split(Split(train=source.split().train, validation=calibration_files))
    backend = variant.backend()
    preprocessor = Preprocessor(state)
    works = [preprocessor.work_image(read_image(p, gray=False)) for p in calibration_files]
    references = Calibration.load(source.calibration_file).references if source.calibration_file.is_file() else None
    post = config.postprocess
    wanted = TextureModel if post.texture_model else GoodReferences if post.reference_neighbours > 0 else None
    train_files = source.split().train

    def train_works() -> Iterator[np.ndarray]:  # read one at a time; each pass reads them again
        return (preprocessor.work_image(read_image(p, gray=False)) for p in train_files)

    stale = isinstance(references, TextureModel) and references.components != post.texture_components  # another mixture asked for
    if wanted is not None and (rebuild_references or stale or not isinstance(references, wanted)):  # or calibrated before these existed
        references = good_references(backend, preprocessor, train_works(), train_files, post.texture_model, post.texture_components)
    calibration = calibrate(backend, preprocessor, config.postprocess, works, calibration_files, references, train_works())
    calibration.save(variant.calibration_file)
    (out / "variant.json").write_text(json.dumps({"run": str(run), "proxy": str(Path(proxy).resolve()) if proxy else None, "set": list(overrides)}, indent=1) + "\n")
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.proxy_split", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    split = sub.add_parser("split", help="write the proxy folder from a run dir and its dataset")
    split.add_argument("--run", required=True, help="run dir (its split.json says which images were never trained on)")
    split.add_argument("--data", required=True, help="the dataset the run was trained on (MVTec layout)")
    split.add_argument("--out", required=True, help="proxy folder to write (MVTec layout + proxy.json)")
    split.add_argument("--calibration-fraction", type=float, default=0.5, help="share of the held-out images kept for calibration")
    split.add_argument("--copies", type=int, default=2, help="implanted copies of each proxy good image")
    split.add_argument("--kinds", nargs="+", default=list(IMPLANT_KINDS), choices=IMPLANT_KINDS)
    split.add_argument("--seed", type=int, default=0)
    split.add_argument("--contrast", type=float, nargs=2, default=list(CONTRAST_RANGE), metavar=("LOW", "HIGH"),
                       help="range of the implants' relative intensity change")
    split.add_argument("--region", default="anywhere", choices=REGIONS,
                       help="where on the part the implants go: anywhere, or only its brighter or darker half (split at its median brightness)")
    split.add_argument("--force", action="store_true", help="replace a non-empty --out")
    variant = sub.add_parser("variant", help="run dir sharing the models, other settings, recalibrated on the proxy")
    variant.add_argument("--run", required=True)
    variant.add_argument("--proxy", default=None, help="proxy folder (calibrate on its calibration half); omit to calibrate on the run's validation slice")
    variant.add_argument("--out", required=True)
    variant.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.FIELD=VALUE")
    variant.add_argument("--force", action="store_true")
    variant.add_argument("--rebuild-references", action="store_true",
                         help="crop the good references from the run's training images again, as this version keeps them, instead of reusing the run's")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = build_parser().parse_args(argv)
    try:
        if args.command == "split":
            manifest = make_proxy(args.run, args.data, args.out, args.calibration_fraction, args.copies, args.kinds, args.seed, args.force,
                                  tuple(args.contrast), args.region)
            print(f"{args.out}: {len(manifest['calibration'])} calibration, {len(manifest['proxy_good'])} good, "
                  f"{len(manifest['defects'])} implanted")
        else:
            print(make_variant(args.run, args.proxy, args.out, args.overrides, args.force, args.rebuild_references))
    except ScaeError as err:
        print(f"proxy_split: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
