"""Throughput and latency of ``scae serve`` over HTTP: img/s and p50/p99 with 1, 2 and 8 concurrent clients.

Starts ``scae serve --http`` in its own process on a free localhost port, sends the images
(optionally resized to ``--size`` px and re-encoded as PNG in a temp folder, e.g. 512-px dev images
-> 1024 px like the camera's), each client on one keep-alive connection, and reads the service's
memory from /proc: peak RSS (VmHWM) and RSS after ``--rss-requests`` requests. A 503 (queue full)
is counted and retried after its Retry-After. Prints a table and writes JSON::

    python -m benchmarks.serve_throughput --bundle BUNDLE --images DIR --size 1024 --out serve.json

Latency is measured by the client (send -> whole JSON received), so it includes HTTP, queueing,
decoding and the whole inspection; ``server_ms`` gives the service's own stage timings (medians).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from scae_tf.artifacts import peek_manifest
from scae_tf.timing import STAGES

SERVER_STAGES = (*STAGES, "queue", "end_to_end")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _proc_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def prepare_images(paths: list[Path], size: int | None, folder: Path) -> list[bytes]:
    """The request bodies: the files as they are, or resized so the short side is ``size`` (PNG)."""
    import cv2

    bodies = []
    for path in paths:
        if size is None:
            bodies.append(path.read_bytes())
            continue
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        scale = size / min(image.shape[:2])
        resized = cv2.resize(image, (round(image.shape[1] * scale), round(image.shape[0] * scale)), interpolation=cv2.INTER_CUBIC)
        target = folder / f"{path.stem}-{size}.png"
        cv2.imwrite(str(target), resized)
        bodies.append(target.read_bytes())
    return bodies


class Client(threading.Thread):
    """Sends ``count`` requests on one keep-alive connection; records latency and server timings."""

    def __init__(self, port: int, bodies: list[bytes], count: int, offset: int):
        super().__init__(daemon=True)
        self.port, self.bodies, self.count, self.offset = port, bodies, count, offset
        self.latencies: list[float] = []
        self.server: list[dict[str, float]] = []
        self.rejected = 0
        self.errors: list[str] = []

    def run(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        connection.connect()
        connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as requests/urllib3 do
        for i in range(self.count):
            body = self.bodies[(self.offset + i) % len(self.bodies)]
            while True:
                start = time.perf_counter()
                connection.request("POST", "/inspect", body=body, headers={"Content-Type": "application/octet-stream"})
                response = connection.getresponse()
                data = response.read()
                elapsed = time.perf_counter() - start
                if response.status == 503:
                    self.rejected += 1
                    time.sleep(float(response.getheader("Retry-After", "1")) / 100.0)  # a benchmark retries sooner
                    continue
                break
            if response.status != 200:
                self.errors.append(f"{response.status}: {data[:200]!r}")
                continue
            self.latencies.append(elapsed)
            self.server.append(json.loads(data)["timings_ms"])
        connection.close()


def run_level(port: int, bodies: list[bytes], clients: int, requests: int, server_pid: int | None = None) -> dict:
    """``requests`` images spread over ``clients`` concurrent clients.

    ``cpu_ms_per_image`` (the service's CPU time per image) does not depend on other load on the
    machine the way wall-clock figures do: ``cores * 1000 / cpu_ms_per_image`` bounds img/s.
    """
    cpu_start = _cpu_seconds(server_pid) if server_pid else None
    per_client = max(1, requests // clients)
    workers = [Client(port, bodies, per_client, offset=i * 7) for i in range(clients)]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    wall = time.perf_counter() - start
    cpu = _cpu_seconds(server_pid) - cpu_start if server_pid else None
    latencies = np.array([v for w in workers for v in w.latencies]) * 1000.0
    server = [t for w in workers for t in w.server]
    errors = [e for w in workers for e in w.errors]
    return {
        "clients": clients,
        "requests": int(latencies.size),
        "seconds": round(wall, 3),
        "images_per_second": round(latencies.size / wall, 1),
        "latency_ms": {
            "p50": round(float(np.percentile(latencies, 50)), 2),
            "p99": round(float(np.percentile(latencies, 99)), 2),
            "mean": round(float(latencies.mean()), 2),
            "max": round(float(latencies.max()), 2),
        },
        "server_ms": {s: round(float(np.median([t.get(s, 0.0) for t in server])), 2) for s in SERVER_STAGES},
        "server_cpu_ms_per_image": None if cpu is None else round(cpu * 1000.0 / max(1, latencies.size), 2),
        "rejected_503": sum(w.rejected for w in workers),
        "errors": errors[:5],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--images", type=Path, required=True, help="an image file or a folder (searched recursively for .png)")
    parser.add_argument("--size", type=int, help="resize so the short side is SIZE px (PNG re-encoded in a temp folder)")
    parser.add_argument("--max-images", type=int, default=20, help="distinct images sent round-robin (default 20)")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 2, 8])
    parser.add_argument("--requests", type=int, default=300, help="requests per concurrency level (default 300)")
    parser.add_argument("--rss-requests", type=int, default=1000, help="RSS is read after this many requests in total")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--queue", type=int, default=8)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)

    paths = [args.images] if args.images.is_file() else sorted(args.images.rglob("*.png"))[: args.max_images]
    if not paths:
        parser.error(f"no .png images in {args.images}")
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="scae-serve-bench-") as folder:
        bodies = prepare_images(paths, args.size, Path(folder))
        command = [sys.executable, "-m", "scae_tf", "-q", "serve", "--bundle", str(args.bundle), "--http", f"127.0.0.1:{port}",
                   "--workers", str(args.workers), "--threads", str(args.threads), "--queue", str(args.queue)]
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        raise SystemExit(f"scae serve did not start: {server.stderr.read()}") from None
                    time.sleep(0.1)
            rss_start = _proc_kib(server.pid, "VmRSS")
            warmup = run_level(port, bodies, 1, 20)
            levels, sent = [], warmup["requests"]
            for clients in args.clients:
                level = run_level(port, bodies, clients, args.requests, server.pid)
                sent += level["requests"]
                levels.append(level)
                print(f"{clients} client(s): {level['images_per_second']:7.1f} img/s  p50 {level['latency_ms']['p50']:6.2f} ms  "
                      f"p99 {level['latency_ms']['p99']:6.2f} ms  (server: decode {level['server_ms']['decode']:.2f}, "
                      f"total {level['server_ms']['total']:.2f} ms, CPU {level['server_cpu_ms_per_image']:.2f} ms/img; "
                      f"503s {level['rejected_503']})", flush=True)
            if sent < args.rss_requests:
                sent += run_level(port, bodies, 2, args.rss_requests - sent)["requests"]
            rss_after = _proc_kib(server.pid, "VmRSS")
            peak = _proc_kib(server.pid, "VmHWM")
        finally:
            server.terminate()
            server.wait(60)
    height_width = None
    try:
        import cv2

        height_width = list(cv2.imdecode(np.frombuffer(bodies[0], np.uint8), cv2.IMREAD_UNCHANGED).shape[:2])
    except Exception:  # noqa: BLE001 (informational only)
        pass
    manifest = peek_manifest(args.bundle) or {}
    report = {
        "bundle": str(args.bundle),
        "precision": manifest.get("precision"),
        "bundle_input": manifest.get("input"),
        "images": len(bodies),
        "image_shape": height_width,
        "body_kib_mean": round(float(np.mean([len(b) for b in bodies])) / 1024, 1),
        "workers": args.workers,
        "threads": args.threads,
        "queue": args.queue,
        "levels": levels,
        "requests_total": sent,
        "rss_mib": {
            "after_start": round(rss_start / 1024, 1),
            "after_requests": round(rss_after / 1024, 1),
            "peak": round(peak / 1024, 1),
            "requests": sent,
        },
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load_average": os.getloadavg()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"RSS: {report['rss_mib']['after_start']} MiB at start, {report['rss_mib']['after_requests']} MiB after "
          f"{sent} requests, peak {report['rss_mib']['peak']} MiB -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
