"""Leakage benchmark: how much of an implanted defect the CAE copies (0 = removed, 1 = copied).

    python -m benchmarks.leakage --run RUN_DIR_OR_BUNDLE --data DATA [--images 24] [--out leakage.json]

Implants each ``scae_tf.implant`` kind into the canonical crops of the run's held-out good images
(its split's validation list: never trained on) and prints the median share of the change copied
into the reconstruction and the residual contrast inside the implant (``scae_tf.evaluation.leakage``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from scae_tf.artifacts import RunDir
from scae_tf.config import save_json
from scae_tf.errors import ScaeError
from scae_tf.evaluation.leakage import measure_leakage
from scae_tf.imageio import read_image
from scae_tf.pipeline import load_pipeline


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.leakage", description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, type=Path, help="run dir (its split.json names the held-out good images)")
    parser.add_argument("--bundle", type=Path, help="measure this bundle's CAE instead of the run's Keras one")
    parser.add_argument("--images", type=int, default=24, help="held-out images to use (default 24)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="write the figures here as JSON")
    args = parser.parse_args(argv)
    try:
        held_out = RunDir(args.run).split_images("validation", must_exist=True)[: args.images]
        pipeline = load_pipeline(args.bundle or args.run)
        report = measure_leakage(pipeline, [read_image(p) for p in held_out], seed=args.seed)
    except ScaeError as err:
        print(f"leakage: error: {err}", file=sys.stderr)
        return 2
    report["run"] = str(args.run)
    report["images"] = len(held_out)
    print(f"{'kind':<14}{'n':>4}{'copied':>9}{'contrast':>10}")
    for kind, row in {**report["per_kind"], "all": report["all"]}.items():
        if row["n"]:
            print(f"{kind:<14}{row['n']:>4}{row['copied']:>9.3f}{row['contrast']:>10.2f}")
    if args.out:
        save_json(report, args.out)
    else:
        print(json.dumps(report["all"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
