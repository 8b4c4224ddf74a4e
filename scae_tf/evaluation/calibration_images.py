"""Which good images calibrate the baselines' thresholds: the run's held-out images.

``scae train`` keeps a slice of train/good aside (never trained on) and lists it in the run's
split (``RunDir.split``). The baselines are calibrated on exactly those images, like the method,
so no test label ever sets a threshold.
"""

from __future__ import annotations

from pathlib import Path

from scae_tf.artifacts import RunDir, manifest_source_run, names
from scae_tf.errors import ScaeError
from scae_tf.imageio import is_image_file


def _listed(run: RunDir | None, data_root: Path) -> list[Path]:
    if run is None or not run.split_file.is_file():
        return []
    return run.split_images("validation", data_root, must_exist=True)


def calibration_images(bundle: str | Path, data_root: str | Path, override: str | Path | None = None) -> list[Path]:
    """Good calibration images for the baselines' thresholds.

    ``override`` (``--calibration``): a run dir, or a folder of good images never trained on.
    Otherwise the held-out images of the run dir, or for a bundle of the run it was exported
    from (manifest ``source_run``). Listed images are looked up under ``data_root`` too.
    """
    data_root = Path(data_root)
    if override is not None:
        override = Path(override)
        if not override.is_dir():
            raise ScaeError("calibration folder not found; pass a run dir or a folder of good images", override)
        listed = _listed(RunDir(override), data_root)
        if listed:
            return listed
        images = sorted(p for p in override.iterdir() if is_image_file(p))
        if not images:
            raise ScaeError(f"neither a run dir ({names.SPLIT}) nor a folder with good images", override)
        return images
    for run in (RunDir(bundle), manifest_source_run(bundle)):
        listed = _listed(run, data_root)
        if listed:
            return listed
    raise ScaeError(
        f"no calibration image list ({names.SPLIT} with held-out images, here or in the bundle's source run); "
        "pass --calibration RUN_DIR (the run the bundle was exported from) or a folder of good images never trained on",
        bundle,
    )
