"""Training cost: seconds per CAE training step (model + MS-SSIM loss) and per loss evaluation (prints, writes JSON).

Why: on 2 CPU cores the CAE's training steps are most of a run's time (the demo's 640 steps, a real run's
~1000), so the cost of one step decides whether the defaults fit the time a user gives them. Random crops
are enough: the cost does not depend on the pixel values.

    python -m benchmarks.train_step --out train_step.json [--image-size 256] [--channels 1] [--steps 10] \
        [--crop H W]   # a compact part's fitted crop (scae train logs it), e.g. the tyre's 512 352
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from typing import Any

import numpy as np

from scae_tf.config import RunConfig, save_json
from scae_tf.latency import load_average, machine_info


def measure(image_size: int, channels: int, steps: int, batch_size: int, crop: tuple[int, int] | None = None) -> dict[str, Any]:
    import tensorflow as tf

    from scae_tf.losses import loss_from_config
    from scae_tf.training import scale_sizes
    from scae_tf.training.cae import build_compiled_cae

    config = scale_sizes(RunConfig(), image_size)
    config = dataclasses.replace(config, cae=dataclasses.replace(config.cae, channels=channels))
    if crop:
        config = dataclasses.replace(config, preprocess=dataclasses.replace(config.preprocess, crop_height=crop[0], crop_width=crop[1]))
    p = config.preprocess
    rng = np.random.default_rng(0)
    crops = rng.random((batch_size * (steps + 1), p.crop_height, p.crop_width, channels)).astype(np.float32)
    model = build_compiled_cae(config)
    model.fit(crops[:batch_size], crops[:batch_size], batch_size=batch_size, epochs=1, verbose=0)  # trace + warm-up
    start = time.perf_counter()
    model.fit(crops[batch_size:], crops[batch_size:], batch_size=batch_size, epochs=1, verbose=0)
    step = (time.perf_counter() - start) / steps

    loss = loss_from_config(config.loss)
    target = tf.constant(crops[:batch_size])
    prediction = tf.Variable(crops[batch_size : 2 * batch_size])

    @tf.function
    def loss_and_gradient():
        with tf.GradientTape() as tape:
            value = loss(target, prediction)
        return value, tape.gradient(value, prediction)

    loss_and_gradient()
    start = time.perf_counter()
    for _ in range(steps):
        loss_and_gradient()
    loss_seconds = (time.perf_counter() - start) / steps
    return {
        "crop": [p.crop_height, p.crop_width, channels],
        "batch_size": batch_size,
        "steps": steps,
        "seconds_per_training_step": round(step, 4),
        "seconds_per_loss_and_gradient": round(loss_seconds, 4),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.train_step", description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument("--image-size", type=int, default=512, help="work size (512: the defaults' 128x384 crop; 256: the demo's 64x192)")
    parser.add_argument("--channels", type=int, default=1, choices=(1, 3))
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=RunConfig().training.batch_size)
    parser.add_argument("--crop", type=int, nargs=2, metavar=("H", "W"), help="crop instead of the work size's (multiples of 16)")
    args = parser.parse_args(argv)
    before = load_average()
    result = measure(args.image_size, args.channels, args.steps, args.batch_size, tuple(args.crop) if args.crop else None)
    result.update(machine=machine_info(), load_average_before_after=[before, load_average()])
    save_json(result, args.out)
    print(
        f"crop {result['crop'][0]}x{result['crop'][1]}x{result['crop'][2]}, batch {result['batch_size']}: "
        f"{result['seconds_per_training_step']:.3f} s per training step, "
        f"{result['seconds_per_loss_and_gradient']:.3f} s per loss + gradient (load {before} -> {load_average()})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
