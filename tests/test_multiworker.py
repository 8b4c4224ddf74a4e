"""``--strategy multiworker``: two worker processes on localhost (TF_CONFIG) train the CAE together.

Both workers must report two replicas in sync and the same loss (one model, gradients all-reduced
across the processes). Without ``KerasMultiWorkerStrategy`` Keras 3's ``fit`` fails here.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

WORKER_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    import numpy as np
    from scae_tf.training import resolve_config
    from scae_tf.training.cae import train_cae
    from scae_tf.training.strategy import get_strategy
    config = resolve_config(sys.argv[1], image_size=64, epochs=1, strategy="multiworker")
    config.training.min_steps_per_epoch = 0
    strategy = get_strategy(config.training.strategy)
    rng = np.random.default_rng(0)  # the same data on both workers; tf.data shards it between them
    crops = rng.random((16, 16, 48, 1)).astype(np.float32)
    model, state = train_cae(config, crops[:12], crops[12:], Path(sys.argv[2]), strategy, 0)
    print(json.dumps({"replicas": strategy.num_replicas_in_sync, "kind": type(strategy).__name__,
                      "epochs": state.epoch, "loss": state.history["loss"], "val_loss": state.history["val_loss"]}))
    """
)

TINY = {
    "loss": {"scales": 2, "filter_size": 3},
    "cae": {"base_filters": 4, "max_filters": 8, "latent_filters": 4, "depth": 3},
    "training": {"batch_size": 4, "learning_rate": 0.005},
}


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@pytest.mark.slow
def test_two_workers_on_localhost_train_one_model(tmp_path: Path):
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY))
    cluster = {"worker": [f"localhost:{port}" for port in _free_ports(2)]}
    workers = []
    for index in range(2):
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
               "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
        workers.append(subprocess.Popen(
            [sys.executable, "-c", WORKER_SCRIPT, str(config), str(tmp_path / f"worker{index}")],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        ))
    reports = []
    try:
        for worker in workers:
            stdout, stderr = worker.communicate(timeout=400)
            assert worker.returncode == 0, stderr[-3000:]
            reports.append(json.loads(stdout.strip().splitlines()[-1]))
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait(30)
    for report in reports:
        assert report["replicas"] == 2 and report["kind"] == "KerasMultiWorkerStrategy"
        assert report["epochs"] == 1 and np.isfinite(report["loss"]).all()
    assert reports[0]["loss"] == pytest.approx(reports[1]["loss"], rel=1e-6)  # one model, not two
    assert reports[0]["val_loss"] == pytest.approx(reports[1]["val_loss"], rel=1e-6)
    assert all((tmp_path / f"worker{i}" / "cae_last.keras").is_file() for i in range(2))
