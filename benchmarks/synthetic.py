"""Synthetic part kinds: generation time and defect strength per kind (prints, writes JSON).

Why: the generator must stay cheap (the demo and CI make datasets on the fly; the screw took
~0.05 s per 256-px image) and its defects subtle but real (signal/clutter ~1.5-2, a fraction of a
per cent of the image). Kinds are timed interleaved (screw, round, ... image by image) so machine
load hits all of them alike; the figure to compare is each kind's time relative to the screw's.

    python -m benchmarks.synthetic --out synthetic_bench.json [--size 256] [--images 24]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

from scae_tf.config import save_json
from scae_tf.latency import load_average, machine_info
from scae_tf.synthetic import GOOD, PART_KINDS, render_sample, sample_rng, signal_to_clutter

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
                entry = defects[_name(part, color)].setdefault(kind, {"signal_to_clutter": [], "coverage_percent": []})
                entry["signal_to_clutter"].append(signal_to_clutter(sample.image, sample.clean, sample.defect_mask))
                entry["coverage_percent"].append(100 * float(sample.defect_mask.mean()))
    screw = float(np.median(seconds["screw"]))
    result: dict[str, Any] = {"size": size, "images_per_kind": images, "kinds": {}}
    for name, values in seconds.items():
        result["kinds"][name] = {
            "seconds_per_image_median": round(float(np.median(values)), 4),
            "relative_to_screw": round(float(np.median(values)) / screw, 2),
            "defects": {
                kind: {key: round(float(np.median(v)), 3) for key, v in entry.items()} for kind, entry in defects[name].items()
            },
        }
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--images", type=int, default=24, help="images per kind (cycling good and its defect types)")
    args = parser.parse_args(argv)
    load_before = load_average()
    result = measure(args.size, args.images)
    result.update(machine=machine_info(), load_average_before=load_before, load_average_after=load_average())
    for name, entry in result["kinds"].items():
        strengths = ", ".join(f"{k} {v['signal_to_clutter']:.2f}/{v['coverage_percent']:.2f}%" for k, v in entry["defects"].items())
        print(f"{name:15s} {entry['seconds_per_image_median'] * 1000:6.1f} ms/image ({entry['relative_to_screw']:.2f}x screw)  {strengths}")
    print(f"load average {load_before} -> {result['load_average_after']}")
    save_json(result, args.out, sort_keys=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
