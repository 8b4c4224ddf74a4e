"""CAE variants at a fixed training budget: reconstruction error and detection by per-position z-max (prints, writes JSON).

Why: a run's CAE trains ~600-1000 steps on 2 cores, so a CAE variant (depth, latent width, learning
rate, corruption share) is only worth having if it detects better *within that budget*. Every variant
trains from scratch on the same canonical crops the run's own models make (the run's segmenter and
pose, its training list), for the same number of steps; the held-out good crops (the run's validation
list) give the per-position statistics; the test set of ``--data`` is scored by the object-residual
z-max (``scae_tf.evaluation.baselines.ObjectResidualZMax``), which needs no post-processor calibration,
so it isolates the CAE. Pass a tuning proxy (``benchmarks/proxy_split.py``) as ``--data`` to choose
settings without the test images.

    python -m benchmarks.cae_budget --run RUN --data DATA [--steps 640] [--seeds 0 1] \\
        [--variant depth3='{"cae": {"depth": 3}}' --variant ...] [--out cae_budget.json]

A variant is a name and a JSON subset of ``RunConfig`` applied over the run's config; ``base`` (the
run's own settings) always runs first.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from scae_tf.artifacts import RunDir
from scae_tf.config import RunConfig, load_config, save_json, update_sections
from scae_tf.data.layout import list_dataset
from scae_tf.errors import ScaeError
from scae_tf.evaluation.baselines import ObjectResidualZMax
from scae_tf.metrics import auroc
from scae_tf.residual import residual_map


@dataclasses.dataclass
class Crops:
    """Canonical crops (N, H, W, C) and their object masks (N, H, W) of one image list."""

    images: np.ndarray
    masks: np.ndarray
    labels: np.ndarray  # 1 = defective
    kinds: list[str]


def canonical_crops(pipeline: Any, paths: Sequence[Path], labels: Sequence[int] = (), kinds: Sequence[str] = ()) -> Crops:
    """The run's own pre-processing (segmenter, pose, crop); images without a part are left out."""
    pre = pipeline.preprocessor
    if pre.state.kind == "surface":
        raise ScaeError("cae_budget compares aligned crops per position; a surface run has no canonical crop")
    images, masks, kept_labels, kept_kinds = [], [], [], []
    for i, path in enumerate(paths):
        prepared = pre.prepare_image(pipeline.backend.segment, pre.read(path))
        if not prepared.found:
            print(f"cae_budget: {path}: skipped ({prepared.reason})", file=sys.stderr)
            continue
        crop = np.asarray(prepared.crop, np.float32)
        images.append(crop[..., None] if crop.ndim == 2 else crop)
        masks.append(np.asarray(prepared.crop_mask, bool))
        kept_labels.append(labels[i] if labels else 0)
        kept_kinds.append(kinds[i] if kinds else "good")
    if not images:
        raise ScaeError("no image in which the run's segmenter finds a part")
    return Crops(np.stack(images), np.stack(masks), np.asarray(kept_labels), kept_kinds)


def train_and_score(config: RunConfig, train: Crops, held_out: Crops, test: Crops, steps: int, seed: int) -> dict[str, Any]:
    """Train a fresh CAE for ``steps`` steps, then its validation MSE and the z-max AUROC on ``test``."""
    import keras

    from scae_tf.training.cae import build_compiled_cae, crop_dataset, max_shift

    keras.utils.set_random_seed(seed)
    t = config.training
    model = build_compiled_cae(config)
    batches = crop_dataset(train.images, t.batch_size, True, seed, max_shift(config), 10**9, t.corruption).take(steps)
    start = time.perf_counter()
    model.fit(batches, epochs=1, verbose=0, shuffle=False)  # the dataset shuffles
    seconds = time.perf_counter() - start

    def results(crops: Crops, rebuilt: np.ndarray) -> list[SimpleNamespace]:
        return [
            SimpleNamespace(residual=residual_map(x, r, config.postprocess), crop_mask=m)
            for x, r, m in zip(crops.images, rebuilt, crops.masks, strict=True)
        ]

    rebuilt = model.predict(held_out.images, batch_size=t.batch_size, verbose=0)
    scorer = ObjectResidualZMax()
    scorer.fit(results(held_out, rebuilt))
    tested = results(test, model.predict(test.images, batch_size=t.batch_size, verbose=0))
    scores = np.asarray([scorer.score_map(r)[0] for r in tested])
    kinds = sorted(set(test.kinds) - {"good"})
    good = test.labels == 0
    per_kind = {}
    for kind in kinds:
        chosen = good | np.asarray([k == kind for k in test.kinds])
        per_kind[kind] = round(auroc(test.labels[chosen], scores[chosen]), 3)
    return {
        "seed": seed,
        "seconds": round(seconds, 1),
        "val_mse": round(float(np.mean((held_out.images - rebuilt) ** 2)), 5),
        "zmax_auroc": round(auroc(test.labels, scores), 3) if 0 < test.labels.sum() < len(test.labels) else None,
        "per_kind": per_kind,
    }


def _variant(text: str) -> tuple[str, dict[str, Any]]:
    name, sep, raw = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=JSON, got {text!r}")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"{name}: not JSON ({err})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"{name}: expected a JSON object of RunConfig sections")
    return name, value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cae_budget", description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, type=Path, help="run dir: its models make the crops, its split names the images")
    parser.add_argument("--data", required=True, type=Path, help="MVTec-layout folder whose test set is scored (a tuning proxy, or the dev data)")
    parser.add_argument("--steps", type=int, default=640, help="training steps per variant (default 640: the demo's budget)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="one training per seed and variant")
    parser.add_argument("--variant", type=_variant, action="append", default=[], metavar="NAME=JSON")
    parser.add_argument("--out", type=Path, help="write the figures here as JSON")
    args = parser.parse_args(argv)
    try:
        from scae_tf.pipeline import load_pipeline

        run = RunDir(args.run)
        base = load_config(run.config_file)
        pipeline = load_pipeline(args.run)
        train = canonical_crops(pipeline, run.split_images("train", must_exist=True))
        held_out = canonical_crops(pipeline, run.split_images("validation", must_exist=True))
        samples = list_dataset(args.data, "test")
        test = canonical_crops(pipeline, [s.path for s in samples], [s.label for s in samples], [s.defect_type for s in samples])
        variants = [("base", {}), *[(n, v) for n, v in args.variant if n != "base"]]
        configs = [(name, update_sections(base, overrides, where=f"variant {name}"), overrides) for name, overrides in variants]
    except ScaeError as err:
        print(f"cae_budget: error: {err}", file=sys.stderr)
        return 2
    print(f"{len(train.images)} training, {len(held_out.images)} held-out and {len(test.images)} test crops "
          f"{train.images.shape[1]}x{train.images.shape[2]}; {args.steps} steps per variant")
    rows = []
    for name, config, overrides in configs:
        for seed in args.seeds:
            row = {"variant": name, "set": overrides, **train_and_score(config, train, held_out, test, args.steps, seed)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.out:
        save_json({"run": str(args.run), "data": str(args.data), "steps": args.steps, "results": rows}, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
