"""Service counters in the Prometheus text exposition format (no client library needed).

Only what an operator watches on a line: images by verdict, errors by kind, end-to-end latency
histogram, queue depth, MQTT messages still waiting, which bundle is loaded.
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable

# Seconds; the 0.6 s budget of the reference work sits between the last two finite buckets.
LATENCY_BUCKETS = (0.005, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5)


def _escape(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(pairs: dict[str, str]) -> str:
    return "{" + ",".join(f'{key}="{_escape(value)}"' for key, value in pairs.items()) + "}" if pairs else ""


class ServiceMetrics:
    """Thread-safe counters; ``render`` gives the /metrics page."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.started = time.time()
        self.images: Counter[str] = Counter()  # verdict -> count
        self.errors: Counter[str] = Counter()  # kind -> count
        self.latency_buckets = [0] * len(LATENCY_BUCKETS)
        self.latency_count = 0
        self.latency_sum = 0.0
        self.reloads: Counter[str] = Counter()  # ok / failed
        self.gauges: dict[str, Callable[[], float]] = {}
        self.bundle_info: dict[str, str] = {}

    def observe(self, verdict: str, seconds: float) -> None:
        """One finished image: its verdict (good / anomalous) and its end-to-end seconds."""
        with self._lock:
            self.images[verdict] += 1
            self.latency_count += 1
            self.latency_sum += seconds
            index = bisect_left(LATENCY_BUCKETS, seconds)
            if index < len(self.latency_buckets):
                self.latency_buckets[index] += 1

    def error(self, kind: str) -> None:
        with self._lock:
            self.errors[kind] += 1

    def reload(self, ok: bool) -> None:
        with self._lock:
            self.reloads["ok" if ok else "failed"] += 1

    def gauge(self, name: str, read: Callable[[], float]) -> None:
        """Register a value read at scrape time (queue depth, outbox size)."""
        self.gauges[name] = read

    def render(self) -> str:
        with self._lock:
            images, errors, reloads = dict(self.images), dict(self.errors), dict(self.reloads)
            buckets, count, total = list(self.latency_buckets), self.latency_count, self.latency_sum
            info = dict(self.bundle_info)
        lines = [
            "# HELP scae_images_total Images inspected, by verdict.",
            "# TYPE scae_images_total counter",
            *(f"scae_images_total{_labels({'verdict': v})} {images.get(v, 0)}" for v in sorted({"good", "anomalous", *images})),
            "# HELP scae_errors_total Requests or files that gave no verdict, by kind.",
            "# TYPE scae_errors_total counter",
            *(f"scae_errors_total{_labels({'kind': k})} {n}" for k, n in sorted(errors.items())),
            "# HELP scae_inspect_seconds End-to-end seconds per image (decode to verdict, queue wait included).",
            "# TYPE scae_inspect_seconds histogram",
        ]
        cumulative = 0
        for bound, n in zip(LATENCY_BUCKETS, buckets, strict=True):
            cumulative += n
            lines.append(f'scae_inspect_seconds_bucket{{le="{bound}"}} {cumulative}')
        lines += [
            f'scae_inspect_seconds_bucket{{le="+Inf"}} {count}',
            f"scae_inspect_seconds_sum {total:.6f}",
            f"scae_inspect_seconds_count {count}",
            "# HELP scae_reloads_total Bundle reloads, by outcome.",
            "# TYPE scae_reloads_total counter",
            *(f"scae_reloads_total{_labels({'outcome': k})} {reloads.get(k, 0)}" for k in ("ok", "failed")),
            "# HELP scae_uptime_seconds Seconds since the service started.",
            "# TYPE scae_uptime_seconds gauge",
            f"scae_uptime_seconds {time.time() - self.started:.3f}",
        ]
        if info:
            lines += [
                "# HELP scae_bundle_info The loaded bundle (value always 1).",
                "# TYPE scae_bundle_info gauge",
                f"scae_bundle_info{_labels(info)} 1",
            ]
        for name, read in sorted(self.gauges.items()):
            lines += [f"# TYPE {name} gauge", f"{name} {float(read()):g}"]
        return "\n".join(lines) + "\n"
