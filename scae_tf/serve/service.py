"""The service core: a verified bundle, a bounded number of images in hand, inference workers, reload.

Decoding happens in the caller's thread (an HTTP request thread, the inbox thread), inference in
the worker threads, so on two cores one image is decoded while the previous one runs through the
networks. Each worker owns its own pipeline (TFLite interpreters are not thread-safe).

Memory is bounded by ``max_pending``: an image holds a slot from admission (before decoding)
until its result is ready; when all slots are taken ``admit`` refuses at once (HTTP answers 503)
or waits (the inbox). A reload loads and checks the new bundle beside the old one, then swaps;
images admitted before the swap finish on the bundle they were admitted with.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from scae_tf.artifacts.names import MANIFEST
from scae_tf.errors import ScaeError
from scae_tf.imageio import encoded_size
from scae_tf.runtime.inspection import Record, aspect_warning, decode_bytes, record_json
from scae_tf.serve.metrics import ServiceMetrics

log = logging.getLogger(__name__)


class QueueFull(Exception):
    """Every slot is taken (or the service is stopping): come back in ``retry_after`` seconds."""

    def __init__(self, retry_after: int = 1, stopping: bool = False):
        self.retry_after = retry_after
        self.stopping = stopping
        super().__init__("service is stopping" if stopping else "queue full, retry later")


class TooLarge(ScaeError):
    """An image above the configured pixel limit (HTTP 413)."""


@dataclass
class LoadedBundle:
    """A verified bundle and one inspection pipeline per worker."""

    path: Path
    identity: dict[str, Any]  # path, manifest sha256, config hash, precision, format and tool version
    channels: int
    work_size: int
    train_size: list[int] | None
    pipelines: list[Any]


def bundle_identity(path: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """What names a bundle in every result: a changed file changes ``manifest_sha256``."""
    return {
        "path": str(path),
        "manifest_sha256": hashlib.sha256((path / MANIFEST).read_bytes()).hexdigest(),
        "config_hash": manifest.get("config_hash"),
        "precision": manifest.get("precision"),
        "format_version": manifest.get("format_version"),
        "version": (manifest.get("tool") or {}).get("scae_tf"),
        "created_utc": manifest.get("created_utc"),
    }


def load_bundle(path: str | Path, workers: int = 1, threads: int = 2) -> LoadedBundle:
    """Open and verify ``path`` (every file's sha256), build the pipelines, run each once on a blank image.

    The trial run is the check that the models load and run on this machine; it also warms the
    interpreters up, so the first real image is not slower than the others.
    """
    import json

    from scae_tf.pipeline import load_pipeline

    path = Path(path).resolve()
    if not path.is_dir():
        raise ScaeError("bundle folder not found; pass the folder written by `scae export RUN --out BUNDLE`", path)
    if not (path / MANIFEST).is_file():  # a run dir would need TensorFlow: not on the inspection PC
        raise ScaeError("not a bundle (no manifest.json); serve the folder written by `scae export RUN --out BUNDLE`", path)
    pipelines = [load_pipeline(path, threads=threads) for _ in range(workers)]  # verifies every file's sha256
    manifest = json.loads((path / MANIFEST).read_text())
    shape = manifest.get("input") or {}
    channels = int(shape.get("channels", 1))
    work_size = int(shape.get("work_size") or pipelines[0].state.config.work_size)
    train_size = shape.get("train_image_size")
    height, width = train_size or (work_size, work_size)
    blank = np.full((height, width) if channels == 1 else (height, width, channels), 0.5, np.float32)
    for pipeline in pipelines:
        try:
            pipeline.inspect(blank)
        except ScaeError:
            pass  # an expected refusal of a blank image (no part in it): the models ran
        except Exception as err:  # a bundle that cannot run must never replace one that can
            raise ScaeError(f"the bundle does not run on a test image ({err.__class__.__name__}: {err}); re-export it", path) from None
    return LoadedBundle(path, bundle_identity(path, manifest), channels, work_size, train_size, pipelines)


@dataclass
class Outcome:
    """One image's result (or the error that prevented it), with the bundle that produced it."""

    record: Record
    bundle: LoadedBundle
    image: np.ndarray | None  # the decoded image, for an overlay
    finished: float = field(default_factory=time.time)

    def json(self) -> dict[str, Any]:
        """``record_json`` plus the bundle identity, the reason when no part was found, and a UTC time."""
        payload = record_json(self.record)
        result = self.record.result
        payload["reason"] = getattr(result, "reason", None) if result is not None else None
        payload["bundle"] = self.bundle.identity
        payload["time"] = datetime.fromtimestamp(self.finished, UTC).isoformat(timespec="milliseconds")
        return payload


@dataclass
class _Job:
    image: np.ndarray
    name: str
    bundle: LoadedBundle
    record: Record
    received: float
    queued: float
    future: Future


class Admission:
    """One slot of the bounded queue; released when the job finishes or, if never submitted, on exit."""

    def __init__(self, service: InspectionService):
        self.service = service
        self.bundle = service.bundle  # the bundle this image will be inspected with
        self.received = time.perf_counter()
        self._submitted = False

    def __enter__(self) -> Admission:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._submitted:
            self.service._release()

    def decode(self, data: bytes, name: str) -> tuple[np.ndarray, Record]:
        """Decode ``data`` with the bundle's channel rules (raises ScaeError / TooLarge); record its timing."""
        return self.service.decode(data, name, self.bundle)

    def submit(self, image: np.ndarray, record: Record) -> Future:
        """Queue the decoded image for a worker; the future gives an ``Outcome``."""
        self._submitted = True
        return self.service._enqueue(self, image, record)


class InspectionService:
    """Bounded queue + worker threads + the current bundle (swappable by ``reload``)."""

    def __init__(
        self,
        bundle_path: str | Path,
        workers: int = 1,
        threads: int = 2,
        max_pending: int = 8,
        max_pixels: int = 25_000_000,
        metrics: ServiceMetrics | None = None,
        loader: Callable[[str | Path, int, int], LoadedBundle] = load_bundle,
    ):
        if workers < 1 or threads < 1 or max_pending < 1:
            raise ScaeError(f"workers, threads and queue size must be at least 1 (got {workers}, {threads}, {max_pending})")
        self.workers = workers
        self.threads = threads
        self.max_pending = max_pending
        self.max_pixels = max_pixels
        self.metrics = metrics or ServiceMetrics()
        self._loader = loader
        self.bundle = loader(bundle_path, workers, threads)
        self._set_bundle_info()
        self._slots = threading.Semaphore(max_pending)
        self._pending = 0
        self._pending_lock = threading.Lock()
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._reload_lock = threading.Lock()
        self._stopping = False
        self.metrics.gauge("scae_pending_images", lambda: self._pending)
        self.metrics.gauge("scae_pending_capacity", lambda: self.max_pending)
        self._threads = [threading.Thread(target=self._work, args=(i,), name=f"scae-worker-{i}", daemon=True) for i in range(workers)]
        for thread in self._threads:
            thread.start()

    # -- admission and decoding -------------------------------------------------------------
    @property
    def pending(self) -> int:
        return self._pending

    def admit(self, block: bool = False, timeout: float | None = None) -> Admission:
        """Take a slot (raises ``QueueFull`` when none is free in time, or when stopping)."""
        if self._stopping:
            raise QueueFull(stopping=True)
        if not self._slots.acquire(blocking=block, timeout=timeout if block else None):
            raise QueueFull()
        if self._stopping:
            self._slots.release()
            raise QueueFull(stopping=True)
        with self._pending_lock:
            self._pending += 1
        return Admission(self)

    def _release(self) -> None:
        with self._pending_lock:
            self._pending -= 1
        self._slots.release()

    def decode(self, data: bytes, name: str, bundle: LoadedBundle | None = None) -> tuple[np.ndarray, Record]:
        """Bytes -> float image for ``bundle``; refuses images above ``max_pixels`` before decoding them."""
        bundle = bundle or self.bundle
        start = time.perf_counter()
        size = encoded_size(data)
        if size is not None:
            self._check_pixels(size, name)
        image = decode_bytes(data, bundle.channels, name)
        self._check_pixels(image.shape[:2], name)
        record = Record(Path(name), image_size=(int(image.shape[0]), int(image.shape[1])))
        record.timings["decode"] = time.perf_counter() - start
        warning = aspect_warning(record.image_size, bundle.train_size, bundle.work_size, bundle.pipelines[0])
        if warning:
            record.warnings.append(warning)
        return image, record

    def _check_pixels(self, size: tuple[int, ...], name: str) -> None:
        height, width = int(size[0]), int(size[1])
        if height * width > self.max_pixels:
            raise TooLarge(
                f"image is {width}x{height} = {height * width / 1e6:.1f} MP, above this service's limit of "
                f"{self.max_pixels / 1e6:.1f} MP (--max-pixels); send a smaller image or raise the limit",
                name,
            )

    def _enqueue(self, admission: Admission, image: np.ndarray, record: Record) -> Future:
        future: Future = Future()
        now = time.perf_counter()
        self._jobs.put(_Job(image, str(record.path), admission.bundle, record, admission.received, now, future))
        return future

    # -- workers ------------------------------------------------------------------------------
    def _work(self, index: int) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            try:
                if job.future.set_running_or_notify_cancel():
                    job.future.set_result(self._inspect(job, index))
            except BaseException as err:  # never lose a worker; the caller sees the error
                log.exception("inspecting %s failed", job.name)
                self.metrics.error("internal")
                if not job.future.done():
                    job.future.set_exception(err)
            finally:
                self._release()

    def _inspect(self, job: _Job, index: int) -> Outcome:
        record = job.record
        start = time.perf_counter()
        try:
            result = job.bundle.pipelines[index].inspect(job.image, {"decode": record.timings.get("decode", 0.0)})
        except ScaeError as err:
            record.error = str(err)
            self.metrics.error("inspect")
            return Outcome(record, job.bundle, job.image)
        end = time.perf_counter()
        record.result = result
        record.timings = {stage: float(seconds) for stage, seconds in result.timings.items()}
        record.warnings.extend(getattr(result, "warnings", None) or [])
        record.timings["queue"] = start - job.queued
        record.timings["end_to_end"] = end - job.received
        self.metrics.observe("anomalous" if result.anomalous else "good", end - job.received)
        return Outcome(record, job.bundle, job.image)

    # -- reload and stop ----------------------------------------------------------------------
    def reload(self, path: str | Path | None = None) -> LoadedBundle:
        """Load and check ``path`` (default: the current bundle's folder again), then swap it in.

        On any error the current bundle stays and the error is raised (ScaeError).
        """
        with self._reload_lock:
            target = Path(path) if path is not None else self.bundle.path
            try:
                new = self._loader(target, self.workers, self.threads)
            except ScaeError:
                self.metrics.reload(False)
                raise
            except Exception as err:
                self.metrics.reload(False)
                raise ScaeError(f"cannot load the bundle ({err.__class__.__name__}: {err}); the current bundle stays", target) from None
            old, self.bundle = self.bundle, new
            self._set_bundle_info()
            self.metrics.reload(True)
            log.info("bundle reloaded: %s (%s) -> %s (%s)", old.path, old.identity["manifest_sha256"][:12], new.path, new.identity["manifest_sha256"][:12])
            return new

    def _set_bundle_info(self) -> None:
        identity = self.bundle.identity
        self.metrics.bundle_info = {
            "path": identity["path"],
            "manifest_sha256": identity["manifest_sha256"],
            "precision": str(identity["precision"]),
            "version": str(identity["version"]),
        }

    def stop(self, timeout: float | None = None) -> None:
        """Refuse new images, finish every queued one, end the workers."""
        self._stopping = True
        for _ in self._threads:
            self._jobs.put(None)  # after the queued jobs: workers drain first
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self._threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
