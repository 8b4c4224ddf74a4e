"""Synthetic part kinds: generation time and defect strength per kind (prints, writes JSON).

Why: the generator must stay cheap (the demo and CI make datasets on the fly; the screw took
~0.05 s per 256-px image) and its defects subtle but real: a fraction of a per cent of the image,
signal/clutter ~1.5-2 (``signal_to_clutter``, needs the clean image) and a visibility in the range
of real defects (``defect_visibility``, the same measure on the defective image alone; ``--real``
measures it on real MVTec-layout categories). Kinds are timed interleaved (screw, round, ... image
by image) so machine load hits all of them alike; compare each kind's time relative to the screw's.

    python -m benchmarks.synthetic --out synthetic_bench.json [--size 256] [--images 24] \
        [--real ../shared/data/mvtec_screw_dev:classical ../shared/data/mvtec3d_tire_dev:frame]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

from scae_tf.config import save_json
from scae_tf.data.layout import list_dataset
from scae_tf.imageio import read_image, read_mask, resize
from scae_tf.latency import load_average, machine_info
from scae_tf.synthetic import (
    GOOD,
    PART_KINDS,
    defect_visibility,
    render_sample,
    sample_rng,
    signal_to_clutter,
)

VARIANTS = (("screw", False), ("round", False), ("round", True), ("surface", False), ("surface", True), ("fabric", False), ("fabric", True))


def _name(part: str, color: bool) -> str:
    return f"{part}{' colour' if color else ''}"


def measure(size: int, images: int, seed: int = 0) -> dict[str, Any]:
    seconds: dict[str, list[float]] = {_name(*v): [] for v in VARIANTS}
    defects: dict[str, dict[str, dict[str, list[float]]]] = {_name(*v): {} for v in VARIANTS}
    for index in range(images):
        for part, color in VARIANTS:  # interleaved: load spikes hit every kind alike
            types = (GOOD, *PART_KINDS[part].defect_types)
            kind = types[index % len(types)]
            start = time.perf_counter()
            sample = render_sample(sample_rng(seed, "test", kind, index, part), size, kind, part, color)
            seconds[_name(part, color)].append(time.perf_counter() - start)
            if kind != GOOD:
                entry = defects[_name(part, color)].setdefault(kind, {"signal_to_clutter": [], "visibility": [], "coverage_percent": []})
                entry["signal_to_clutter"].append(signal_to_clutter(sample.image, sample.clean, sample.defect_mask))
                entry["visibility"].append(defect_visibility(sample.image, sample.defect_mask, sample.object_mask))
                entry["coverage_percent"].append(100 * float(sample.defect_mask.mean()))
    screw = float(np.median(seconds["screw"]))
    result: dict[str, Any] = {"size": size, "images_per_kind": images, "kinds": {}}
    for name, values in seconds.items():
        result["kinds"][name] = {
            "seconds_per_image_median": round(float(np.median(values)), 4),
            "relative_to_screw": round(float(np.median(values)) / screw, 2),
            "defects": {
                kind: {key: round(float(np.nanmedian(v)), 3) for key, v in entry.items()} for kind, entry in defects[name].items()
            },
        }
    return result


def measure_real(root: Path, part_mask: str, max_side: int = 512) -> dict[str, float]:
    """Median ``defect_visibility`` per defect type of a real category's test images (gray, longest
    side at most ``max_side``); the part is the whole frame or the classical screw mask."""
    from scae_tf.segmentation_targets import classical_object_mask

    values: dict[str, list[float]] = {}
    for sample in list_dataset(root, "test"):
        if sample.label == 0 or sample.mask_path is None:
            continue
        image = read_image(sample.path)
        mask = read_mask(sample.mask_path, image.shape[:2])
        scale = min(1.0, max_side / max(image.shape[:2]))
        if scale < 1:
            size = (round(image.shape[0] * scale), round(image.shape[1] * scale))
            image = resize(image, size)
            mask = resize(mask.astype(np.float32), size) > 0.5
        if not mask.any():
            continue
        part = np.ones(mask.shape, bool) if part_mask == "frame" else classical_object_mask(image)
        values.setdefault(sample.defect_type, []).append(defect_visibility(image, mask, part | mask))
    return {kind: round(float(np.nanmedian(v)), 3) for kind, v in sorted(values.items())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--images", type=int, default=24, help="images per kind (cycling good and its defect types)")
    parser.add_argument("--real", nargs="*", default=[], metavar="DIR:PART", help="real categories to measure defect_visibility on; PART: frame | classical (screw mask)")
    args = parser.parse_args(argv)
    load_before = load_average()
    result = measure(args.size, args.images)
    result["real_visibility"] = {}
    for spec in args.real:
        folder, _, part = spec.partition(":")
        result["real_visibility"][folder] = measure_real(Path(folder), part or "frame")
        print(f"real {folder}: visibility {result['real_visibility'][folder]}")
    result.update(machine=machine_info(), load_average_before=load_before, load_average_after=load_average())
    for name, entry in result["kinds"].items():
        strengths = ", ".join(
            f"{k} {v['signal_to_clutter']:.2f}/{v['visibility']:.2f}/{v['coverage_percent']:.2f}%" for k, v in entry["defects"].items()
        )
        print(f"{name:15s} {entry['seconds_per_image_median'] * 1000:6.1f} ms/image ({entry['relative_to_screw']:.2f}x screw)  {strengths}")
    print("per defect: signal/clutter / visibility / coverage of the image")
    print(f"load average {load_before} -> {result['load_average_after']}")
    save_json(result, args.out, sort_keys=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
