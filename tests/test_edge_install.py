"""TensorFlow-free proof: a venv with only ``scae-tf[edge]`` runs ``scae inspect`` on a bundle.

The bundle is exported here (training venv, TensorFlow), then a fresh venv gets nothing but
``pip install <repo>[edge]``; in it ``import tensorflow`` must fail and ``scae inspect --json``
must give the verdicts and scores the Keras pipeline gives in this process.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from edge_fixtures import cached_bundle, cached_tiny_run

REPO = Path(__file__).resolve().parents[1]
SOURCES = ("setup.cfg", "pyproject.toml", "README.md", "scae_tf", "export", "benchmarks")


@pytest.fixture(scope="module")
def edge_venv(tmp_path_factory) -> Path:
    """A venv holding only the edge extra, installed from a copy of the sources (keeps the repo clean)."""
    root = tmp_path_factory.mktemp("edge-install")
    source = root / "src"
    source.mkdir()
    for name in SOURCES:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif path.is_file():
            shutil.copy(path, source / name)
    env_dir = root / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", f"{source}[edge]"], capture_output=True, text=True, timeout=900
    )
    assert install.returncode == 0, f"pip install [edge] failed:\n{install.stdout}\n{install.stderr}"
    return env_dir


def _clean_env() -> dict[str, str]:
    """No PYTHONPATH from the test runner: the edge venv must see only what it installed."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}


@pytest.mark.slow
def test_edge_venv_inspects_without_tensorflow(edge_venv, tmp_path_factory, tmp_path):
    from scae_tf.pipeline import load_pipeline

    base = tmp_path_factory.getbasetemp()
    data, run = cached_tiny_run(base)
    bundle = cached_bundle(base, "fp32")
    python = edge_venv / "bin" / "python"

    probe = subprocess.run(
        [str(python), "-c", "import tensorflow"], capture_output=True, text=True, env=_clean_env(), cwd=tmp_path
    )
    assert probe.returncode != 0 and "No module named 'tensorflow'" in probe.stderr
    where = subprocess.run(
        [str(python), "-c", "import scae_tf, ai_edge_litert; print(scae_tf.__file__)"],
        capture_output=True, text=True, env=_clean_env(), cwd=tmp_path, check=True,
    )
    assert str(edge_venv) in where.stdout  # the installed copy, not the working tree

    images = sorted((data / "test").rglob("*.png"))
    inspect = subprocess.run(
        [str(edge_venv / "bin" / "scae"), "inspect", "--bundle", str(bundle), "--json", "--out", str(tmp_path / "ov"),
         *map(str, images)],
        capture_output=True, text=True, env=_clean_env(), cwd=tmp_path, timeout=300,
    )
    assert inspect.returncode in (0, 1), inspect.stderr
    assert "Traceback" not in inspect.stderr
    records = [json.loads(line) for line in inspect.stdout.splitlines()]
    keras = load_pipeline(run)
    expected = [keras.inspect_path(p) for p in images]
    assert [r["path"] for r in records] == [str(p) for p in images]
    assert [r["anomalous"] for r in records] == [e.anomalous for e in expected]
    for record, reference in zip(records, expected, strict=True):
        if math.isfinite(reference.score):
            assert record["score"] == pytest.approx(reference.score, rel=1e-3, abs=1e-3)
        else:  # no part found: a verdict, score null in JSON, with the same reason
            assert record["score"] is None and record["reason"] == reference.reason
        assert Path(record["overlay"]).is_file()
    assert inspect.returncode == (1 if any(e.anomalous for e in expected) else 0)
    assert sys.modules.get("tensorflow") is not None  # this side did use Keras: the comparison is real


@pytest.mark.slow
def test_edge_venv_serves_http_without_tensorflow(edge_venv, tmp_path_factory, tmp_path):
    """`scae serve --http` from the edge venv: POST an image, get its JSON verdict; SIGTERM exits 0."""
    import http.client
    import signal
    import socket
    import time

    base = tmp_path_factory.getbasetemp()
    data, _ = cached_tiny_run(base)
    bundle = cached_bundle(base, "int8")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    paho = subprocess.run([str(edge_venv / "bin" / "python"), "-c", "import paho.mqtt.client"], env=_clean_env(), cwd=tmp_path)
    assert paho.returncode == 0  # the edge extra brings the MQTT client
    server = subprocess.Popen(
        [str(edge_venv / "bin" / "scae"), "serve", "--bundle", str(bundle), "--http", f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_clean_env(), cwd=tmp_path,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, server.stdout.read() if server.poll() else "no start"
                time.sleep(0.1)
        image = sorted((data / "test").rglob("*.png"))[0]
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        connection.request("POST", f"/inspect?name={image.name}", body=image.read_bytes())
        response = connection.getresponse()
        payload = json.loads(response.read())
        connection.close()
        assert response.status == 200, payload
        assert payload["verdict"] in ("good", "anomalous") and payload["bundle"]["precision"] == "int8"
        server.send_signal(signal.SIGTERM)
        assert server.wait(60) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(30)
    log = server.stdout.read()
    assert "Traceback" not in log and "tensorflow" not in log.lower().replace("tensorflow lite", "")
