"""``scae serve`` over HTTP, in process: results, bad input, the bounded queue, reload, metrics."""

from __future__ import annotations

import base64
import threading

import cv2
import numpy as np
import pytest
from edge_fixtures import cached_bundle, cached_tiny_run
from serve_helpers import announce_body, gated_loader, request, running_server

from scae_tf.errors import ScaeError
from scae_tf.imageio import encoded_size, read_raw
from scae_tf.serve.metrics import ServiceMetrics
from scae_tf.serve.mqtt import parse_host_port


@pytest.fixture(scope="module")
def edge(tmp_path_factory):
    base = tmp_path_factory.getbasetemp()
    data, _ = cached_tiny_run(base)
    images = sorted((data / "test").rglob("*.png"))
    return images, cached_bundle(base, "int8"), cached_bundle(base, "fp32")


def _png(image: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(".png", image)
    assert ok
    return encoded.tobytes()


@pytest.mark.slow
def test_inspect_returns_the_pipelines_verdict_with_bundle_identity_and_overlay(edge):
    from scae_tf.pipeline import load_pipeline
    from scae_tf.runtime.inspection import decode
    from scae_tf.serve.service import InspectionService

    images, bundle, _ = edge
    reference = load_pipeline(bundle)
    service = InspectionService(bundle, max_pending=4)
    with running_server(service) as (port, _):
        for path in images[:3]:
            status, _, payload = request(port, "POST", f"/inspect?name={path.name}", path.read_bytes())
            assert status == 200, payload
            expected = reference.inspect(decode(path, 1))
            assert payload["path"] == path.name and payload["anomalous"] == expected.anomalous
            assert payload["score"] == pytest.approx(expected.score, rel=1e-5)
            assert payload["threshold"] == pytest.approx(expected.threshold)
            assert len(payload["flagged"]) == len(expected.flagged)
            assert payload["bundle"]["precision"] == "int8" and len(payload["bundle"]["manifest_sha256"]) == 64
            assert payload["bundle"]["path"] == str(bundle.resolve())
            assert {"decode", "segment", "reconstruct", "total", "end_to_end"} <= set(payload["timings_ms"])
            assert "reason" in payload
        height, width = read_raw(images[0]).shape[:2]
        status, _, payload = request(port, "POST", "/inspect?overlay=1", images[0].read_bytes())
        overlay = cv2.imdecode(np.frombuffer(base64.b64decode(payload["overlay_png_base64"]), np.uint8), cv2.IMREAD_UNCHANGED)
        assert status == 200 and overlay.shape == (height, width, 3)
        status, headers, png = request(port, "POST", "/inspect?overlay=png", images[0].read_bytes())
        assert status == 200 and headers["Content-Type"] == "image/png" and png[:4] == b"\x89PNG"
        assert headers["X-Scae-Verdict"] in ("good", "anomalous")
        status, _, health = request(port, "GET", "/health")
        assert status == 200 and health["bundle"]["precision"] == "int8" and health["queue"]["capacity"] == 4


@pytest.mark.slow
def test_bad_bytes_empty_huge_16bit_and_colour_images(edge):
    from scae_tf.serve.service import InspectionService

    images, bundle, _ = edge
    gray = read_raw(images[0])
    service = InspectionService(bundle, max_pending=4, max_pixels=300 * 300)
    with running_server(service, max_body=2 << 20) as (port, _):
        status, _, payload = request(port, "POST", "/inspect", b"\x00garbage\xff" * 50)
        assert status == 400 and "unreadable or corrupt" in payload["error"]
        status, _, payload = request(port, "POST", "/inspect", b"")
        assert status == 400 and "empty" in payload["error"]
        truncated = images[0].read_bytes()[:200]
        status, _, payload = request(port, "POST", "/inspect", truncated)
        assert status == 400 and "error" in payload
        # Above the pixel limit: refused from the PNG header (a fake 40000x40000 PNG is never decoded) ...
        header = _png(gray)[:16] + (40000).to_bytes(4, "big") * 2 + b"\x08\x00\x00\x00\x00" + b"\x00" * 64
        status, _, payload = request(port, "POST", "/inspect", header)
        assert status == 413 and "40000x40000" in payload["error"]
        # ... and after decoding for formats without a header peek (TIFF).
        ok, tiff = cv2.imencode(".tiff", cv2.resize(gray, (400, 400)))
        status, _, payload = request(port, "POST", "/inspect", tiff.tobytes())
        assert status == 413 and "--max-pixels" in payload["error"]
        status, payload = announce_body(port, "/inspect", 3 << 20)  # over max_body: refused before reading it
        assert status == 413 and "body" in payload["error"]
        # 16-bit gray and gray saved as RGB are inspected; a true colour image is refused for a gray bundle.
        status, _, payload = request(port, "POST", "/inspect", _png(gray.astype(np.uint16) * 257))
        assert status == 200 and payload["verdict"] in ("good", "anomalous")
        status, _, payload = request(port, "POST", "/inspect", _png(np.dstack([gray] * 3)))
        assert status == 200
        colour = np.dstack([gray, np.roll(gray, 5, axis=1), 255 - gray])
        status, _, payload = request(port, "POST", "/inspect", _png(colour))
        assert status == 400 and "colour image" in payload["error"]
        status, _, payload = request(port, "POST", "/nowhere", b"")
        assert status == 404
        status, _, payload = request(port, "POST", "/inspect", images[0].read_bytes())
        assert status == 200  # still up after all of that
        status, headers, text = request(port, "GET", "/metrics")
        metrics = text.decode()
        assert status == 200 and headers["Content-Type"].startswith("text/plain")
        assert 'scae_errors_total{kind="decode"} 4' in metrics  # garbage, empty, truncated, colour
        assert 'scae_errors_total{kind="too_large"} 3' in metrics
        assert 'scae_images_total{verdict="good"}' in metrics and "scae_inspect_seconds_count 3" in metrics


@pytest.mark.slow
def test_full_queue_answers_503_with_retry_after_then_recovers(edge):
    from scae_tf.serve.service import InspectionService

    images, bundle, _ = edge
    gate, entered = threading.Event(), threading.Event()
    service = InspectionService(bundle, max_pending=2, loader=gated_loader(gate, entered))
    body = images[0].read_bytes()
    answers: list[int] = []
    with running_server(service) as (port, _):
        holders = [threading.Thread(target=lambda: answers.append(request(port, "POST", "/inspect", body)[0])) for _ in range(2)]
        holders[0].start()
        assert entered.wait(30)  # the worker is busy with image 1
        holders[1].start()
        for _ in range(200):
            if service.pending == 2:
                break
            threading.Event().wait(0.02)
        assert service.pending == 2  # image 2 waits in the queue: both slots taken
        status, headers, payload = request(port, "POST", "/inspect", body)
        assert status == 503 and headers["Retry-After"] == "1" and "queue full" in payload["error"]
        gate.set()
        for holder in holders:
            holder.join(30)
        assert answers == [200, 200]
        assert request(port, "POST", "/inspect", body)[0] == 200
        assert 'scae_errors_total{kind="queue_full"} 1' in request(port, "GET", "/metrics")[2].decode()


@pytest.mark.slow
def test_reload_swaps_bundles_in_flight_request_finishes_on_the_old_one(edge, tmp_path):
    import shutil

    from scae_tf.serve.service import InspectionService

    images, int8, fp32 = edge
    gate, entered = threading.Event(), threading.Event()
    service = InspectionService(int8, loader=gated_loader(gate, entered))
    body = images[0].read_bytes()
    answers: list[dict] = []
    with running_server(service) as (port, _):
        held = threading.Thread(target=lambda: answers.append(request(port, "POST", "/inspect", body)[2]))
        held.start()
        assert entered.wait(30)
        status, _, payload = request(port, "POST", "/reload", f'{{"bundle": "{fp32}"}}'.encode())
        assert status == 200 and payload["bundle"]["precision"] == "fp32"
        gate.set()
        held.join(30)
        assert answers[0]["bundle"]["precision"] == "int8"  # admitted before the swap
        status, _, payload = request(port, "POST", "/inspect", body)
        assert status == 200 and payload["bundle"]["precision"] == "fp32"
        # A tampered bundle is refused; the current one stays.
        broken = tmp_path / "broken"
        shutil.copytree(fp32, broken)
        (broken / "calibration.json").write_text((broken / "calibration.json").read_text().replace("0", "1", 1))
        status, _, payload = request(port, "POST", "/reload", f'{{"bundle": "{broken}"}}'.encode())
        assert status == 422 and payload["error"] and payload["bundle"]["precision"] == "fp32"
        status, _, payload = request(port, "POST", "/reload", b"[1, 2]")
        assert status == 400
        assert request(port, "POST", "/inspect", body)[2]["bundle"]["precision"] == "fp32"
        metrics = request(port, "GET", "/metrics")[2].decode()
        assert 'scae_reloads_total{outcome="ok"} 1' in metrics and 'scae_reloads_total{outcome="failed"} 1' in metrics


def test_encoded_size_reads_png_jpeg_bmp_headers():
    image = np.random.default_rng(0).integers(0, 255, (37, 53), np.uint8)
    for suffix in (".png", ".jpg", ".bmp"):
        ok, encoded = cv2.imencode(suffix, image)
        assert ok and encoded_size(encoded.tobytes()) == (37, 53), suffix
    ok, encoded = cv2.imencode(".png", np.zeros((5, 7, 3), np.uint16))
    assert encoded_size(encoded.tobytes()) == (5, 7)
    assert encoded_size(b"garbage") is None and encoded_size(b"") is None
    assert encoded_size(b"\xff\xd8\xff\xe0\x00") is None  # a JPEG cut before its frame header


def test_metrics_text_is_prometheus_format():
    metrics = ServiceMetrics()
    for seconds in (0.004, 0.012, 0.012, 3.0):
        metrics.observe("good", seconds)
    metrics.observe("anomalous", 0.05)
    metrics.error("decode")
    metrics.gauge("scae_pending_images", lambda: 2)
    metrics.bundle_info = {"path": 'a "b"\\c', "precision": "int8"}
    text = metrics.render()
    assert 'scae_images_total{verdict="good"} 4' in text and 'scae_images_total{verdict="anomalous"} 1' in text
    assert 'scae_errors_total{kind="decode"} 1' in text
    assert 'scae_inspect_seconds_bucket{le="0.005"} 1' in text and 'scae_inspect_seconds_bucket{le="0.015"} 3' in text
    assert 'scae_inspect_seconds_bucket{le="2.5"} 4' in text and 'scae_inspect_seconds_bucket{le="+Inf"} 5' in text
    assert "scae_inspect_seconds_count 5" in text and "scae_pending_images 2" in text
    assert 'path="a \\"b\\"\\\\c"' in text
    for line in text.splitlines():  # every sample line: name{labels} value
        assert line.startswith("#") or float(line.rsplit(" ", 1)[1]) >= 0


def test_parse_host_port():
    assert parse_host_port("8080", 1, "--http") == ("127.0.0.1", 8080)
    assert parse_host_port("0.0.0.0:9000", 1, "--http") == ("0.0.0.0", 9000)
    assert parse_host_port("broker.local", 1883, "--mqtt") == ("broker.local", 1883)
    with pytest.raises(ScaeError, match="HOST:PORT"):
        parse_host_port("host:port", 1, "--http")


def test_serve_imports_without_tensorflow():
    """Everything `scae serve` imports loads with TensorFlow and Keras blocked (the edge install)."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(
        """
        import importlib.abc, sys
        class Blocker(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("tensorflow", "keras", "tf_keras"):
                    raise ImportError(f"{name} is blocked")
        sys.meta_path.insert(0, Blocker())
        import scae_tf.commands.serve, scae_tf.serve.http, scae_tf.serve.inbox, scae_tf.serve.mqtt, scae_tf.serve.service
        from scae_tf.cli import build_parser
        build_parser().parse_args(["serve", "--bundle", "b", "--http", "0"])
        print("ok")
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]
