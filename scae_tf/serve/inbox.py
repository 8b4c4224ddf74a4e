"""A watched folder: every image dropped into INBOX gets exactly one result in OUT, even across crashes.

    OUT/results.jsonl    one JSON line per image (the journal: appended and fsynced before the move)
    OUT/results.csv      the same, one row per image (derived: rebuilt from the journal if it disagrees)
    OUT/overlays/        <name>.overlay.png per inspected image
    OUT/done/            inputs that were inspected
    OUT/failed/          inputs that could not be (<name>.reason.txt beside each)

A file is taken once it is complete: its size and modification time have not changed for
``settle`` seconds (writers that rename a finished temp file into the inbox are picked up at
the next poll). Hidden names (``.x``) and temp names (``*.tmp``, ``*.part``, ``*~`` ...) are
left alone until renamed.

Exactly once: an image's id is its name, size and mtime (ns). Its result line, which also names
where the input goes, is appended and fsynced first (the commit), then the input is moved. A
crash before the commit leaves the input in the inbox: it is inspected again after the restart
(its overlay is simply rewritten). A crash after the commit leaves an input whose id is in the
journal: the restart only finishes the move. A half-written last line is cut off at restart.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import shutil
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scae_tf.errors import ScaeError
from scae_tf.imageio import IMAGE_SUFFIXES, write_png
from scae_tf.overlay import result_overlay
from scae_tf.runtime.inspection import Record
from scae_tf.serve.service import InspectionService, Outcome, QueueFull, TooLarge

log = logging.getLogger(__name__)

RESULTS_JSONL = "results.jsonl"
RESULTS_CSV = "results.csv"
TEMP_SUFFIXES = (".tmp", ".temp", ".part", ".partial", ".crdownload", ".filepart", ".download", ".swp", "~")
CSV_COLUMNS = ("time", "name", "verdict", "score", "threshold", "flagged", "total_ms", "reason", "error", "moved_to", "overlay", "bundle_sha256")


def ignored_name(name: str) -> bool:
    """Hidden or temporary names: a writer is still busy with them (or they are not ours)."""
    lowered = name.lower()
    return name.startswith(".") or lowered.endswith(TEMP_SUFFIXES)


def file_id(name: str, stat: os.stat_result) -> str:
    return f"{name}:{stat.st_size}:{stat.st_mtime_ns}"


def csv_row(payload: dict[str, Any]) -> list[Any]:
    timings = payload.get("timings_ms") or {}
    return [
        payload.get("time"),
        payload.get("name"),
        payload.get("verdict"),
        payload.get("score"),
        payload.get("threshold"),
        len(payload.get("flagged") or []),
        timings.get("total"),
        payload.get("reason"),
        payload.get("error"),
        payload.get("moved_to"),
        payload.get("overlay"),
        (payload.get("bundle") or {}).get("manifest_sha256"),
    ]


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _move(source: Path, target: Path) -> None:
    """Rename (atomic); copy + delete when OUT is on another file system (replayed after a crash)."""
    try:
        os.replace(source, target)
    except OSError as err:
        if err.errno != 18:  # EXDEV
            raise
        shutil.copy2(source, target)
        source.unlink()


@dataclass
class _Seen:
    size: int
    mtime_ns: int
    since: float


@dataclass
class _InFlight:
    path: Path
    name: str
    id: str
    image: np.ndarray | None = None
    future: Future | None = None
    error: str | None = None
    kind: str = "decode"
    started: float = field(default_factory=time.time)


class Journal:
    """results.jsonl (fsynced commit record) and results.csv (derived), repaired at start."""

    def __init__(self, out: Path):
        self.out = out
        self.jsonl_path = out / RESULTS_JSONL
        self.csv_path = out / RESULTS_CSV
        self._repair()
        self._jsonl = open(self.jsonl_path, "ab")  # noqa: SIM115 (open for the service's life)
        self._csv = open(self.csv_path, "a", newline="", encoding="utf-8")  # noqa: SIM115

    def _repair(self) -> None:
        """Cut a half-written last line; rebuild the CSV when its rows do not match the journal's lines."""
        if self.jsonl_path.is_file():
            data = self.jsonl_path.read_bytes()
            end = data.rfind(b"\n") + 1
            if end != len(data):
                log.warning("%s: cutting a half-written last line (%d bytes) left by a crash", self.jsonl_path, len(data) - end)
                with open(self.jsonl_path, "r+b") as handle:
                    handle.truncate(end)
                    os.fsync(handle.fileno())
        payloads = list(self.entries())
        rows = self._csv_rows()
        if rows is None or len(rows) != len(payloads):
            buffer = io.StringIO()
            writer = csv.writer(buffer)
            writer.writerow(CSV_COLUMNS)
            writer.writerows(csv_row(p) for p in payloads)
            tmp = self.csv_path.with_name(RESULTS_CSV + ".tmp")
            tmp.write_text(buffer.getvalue(), encoding="utf-8")
            os.replace(tmp, self.csv_path)
            if rows is not None:
                log.warning("%s: rebuilt from %s (%d rows, had %d)", self.csv_path, self.jsonl_path, len(payloads), len(rows))

    def _csv_rows(self) -> list[list[str]] | None:
        """Data rows, or None when the file is missing, has no header or ends in a half row."""
        if not self.csv_path.is_file():
            return None
        text = self.csv_path.read_text(encoding="utf-8", errors="replace")
        if not text.endswith("\n"):
            return None
        rows = list(csv.reader(io.StringIO(text)))
        if not rows or tuple(rows[0]) != CSV_COLUMNS:
            return None
        return rows[1:]

    def entries(self):
        """Every committed payload, in order."""
        if not self.jsonl_path.is_file():
            return
        with open(self.jsonl_path, encoding="utf-8") as handle:
            for line in handle:
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    log.warning("%s: skipping an unreadable line", self.jsonl_path)

    def commit(self, payload: dict[str, Any]) -> None:
        """Append the JSON line and fsync it (the commit), then the CSV row."""
        line = json.dumps(payload, allow_nan=False).encode() + b"\n"
        fd = self._jsonl.fileno()
        before = os.fstat(fd).st_size
        try:
            if os.write(fd, line) != len(line):  # one write: a crash leaves a whole line or a cut one
                raise OSError(f"short write to {self.jsonl_path} (disk full?)")
            os.fsync(fd)
        except OSError:
            os.ftruncate(fd, before)  # no partial line before the retry's
            raise
        csv.writer(self._csv).writerow(csv_row(payload))
        self._csv.flush()

    def close(self) -> None:
        self._jsonl.close()
        self._csv.close()


class Inbox:
    """Polls ``inbox``, feeds the service, commits results to ``out``; ``run`` until ``stop`` is set."""

    def __init__(
        self,
        service: InspectionService,
        inbox: Path,
        out: Path,
        publish: Any = None,
        settle: float = 0.5,
        poll: float = 0.1,
        overlays: bool = True,
        max_in_flight: int | None = None,
    ):
        self.service = service
        self.inbox = Path(inbox)
        self.out = Path(out)
        self.publish = publish
        self.settle = settle
        self.poll = poll
        self.overlays = overlays
        self.max_in_flight = max_in_flight or max(2, service.workers + 1)
        for folder, what in ((self.inbox, "--watch"), (self.out, "--out")):
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise ScaeError(f"cannot create the folder ({err.strerror}); choose another {what}", folder) from None
        if self.inbox.resolve() == self.out.resolve() or self.inbox.resolve() in self.out.resolve().parents:
            raise ScaeError("--out must not be the inbox or inside it (results would be picked up as images)", self.out)
        self.done_dir, self.failed_dir, self.overlay_dir = self.out / "done", self.out / "failed", self.out / "overlays"
        for folder in (self.done_dir, self.failed_dir, self.overlay_dir):
            folder.mkdir(exist_ok=True)
        self.journal = Journal(self.out)
        self._seen: dict[str, _Seen] = {}
        self._in_flight: dict[str, _InFlight] = {}
        self._unmoved: dict[str, tuple[Path, dict[str, Any]]] = {}  # committed, move failed: retried, not re-inspected
        self.committed = 0
        self.stop = threading.Event()
        service.metrics.gauge("scae_inbox_in_flight", lambda: len(self._in_flight))
        self.recover()

    # -- restart ------------------------------------------------------------------------------------
    def recover(self) -> int:
        """Finish the moves of inputs whose result was committed before a crash; returns how many."""
        waiting = {}
        for path in self._candidates():
            try:
                waiting[file_id(path.name, path.stat())] = path
            except FileNotFoundError:
                continue
        finished = 0
        if waiting:
            for payload in self.journal.entries():
                path = waiting.pop(payload.get("id"), None)
                if path is None:
                    continue
                self._finish_move(path, payload)
                finished += 1
                log.info("recovered %s: result committed before the restart, input moved to %s", path.name, payload.get("moved_to"))
        return finished

    def _finish_move(self, source: Path, payload: dict[str, Any]) -> None:
        target = Path(payload["moved_to"])
        if payload.get("error") is not None:
            reason = target.with_name(target.name + ".reason.txt")
            if not reason.is_file():
                reason.write_text(payload["error"] + "\n", encoding="utf-8")
        try:
            _move(source, target)
        except FileNotFoundError:
            log.warning("%s: removed from the inbox before it could be moved to %s (its result stands)", source, target)
        _fsync_dir(target.parent)

    # -- the loop -------------------------------------------------------------------------------------
    def _candidates(self) -> list[Path]:
        try:
            entries = sorted(os.scandir(self.inbox), key=lambda e: e.name)
        except FileNotFoundError:
            return []
        return [Path(e.path) for e in entries if not ignored_name(e.name) and e.is_file(follow_symlinks=False)]

    def run(self) -> None:
        """Poll until ``stop`` is set, then finish the images in hand (SIGTERM drain) and close."""
        try:
            while not self.stop.is_set():
                try:
                    self._step()
                except Exception:  # the watcher must outlive any one file's trouble (disk full, permissions)
                    log.exception("inbox %s: error, retrying in 1 s", self.inbox)
                    self.stop.wait(1.0)
                self.stop.wait(self.poll)
            while self._in_flight:
                self._collect(block=True)
        finally:
            self.journal.close()

    def _step(self) -> None:
        for name, (source, payload) in list(self._unmoved.items()):
            self._finish_move(source, payload)
            del self._unmoved[name]
        self._collect(block=False)
        for path in self._ready():
            if len(self._in_flight) >= self.max_in_flight or self.stop.is_set():
                break
            self._start(path)
        self._collect(block=False)

    def _ready(self) -> list[Path]:
        """Files whose size and mtime have not changed for ``settle`` s (and are not already in hand)."""
        now = time.monotonic()
        ready, present = [], set()
        for path in self._candidates():
            name = path.name
            present.add(name)
            if name in self._in_flight or name in self._unmoved:
                continue
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            seen = self._seen.get(name)
            if seen is None or (seen.size, seen.mtime_ns) != (stat.st_size, stat.st_mtime_ns):
                self._seen[name] = _Seen(stat.st_size, stat.st_mtime_ns, now)
            elif now - seen.since >= self.settle:
                ready.append(path)
        for name in list(self._seen):
            if name not in present:
                del self._seen[name]
        return ready

    def _start(self, path: Path) -> None:
        """Read, decode and queue one file; decoding errors are committed right away as failures."""
        name = path.name
        try:
            stat = path.stat()
            data = path.read_bytes()
        except FileNotFoundError:
            log.warning("%s: deleted before it could be read; nothing to inspect", path)
            self.service.metrics.error("vanished")
            self._seen.pop(name, None)
            return
        except OSError as err:
            log.warning("%s: cannot read it yet (%s); will retry", path, err.strerror or err)
            self._seen.pop(name, None)
            return
        try:
            changed = len(data) != stat.st_size or path.stat().st_mtime_ns != stat.st_mtime_ns
        except FileNotFoundError:
            changed = True
        if changed:
            self._seen.pop(name, None)  # still being written (or gone) after all: wait until it settles again
            return
        item = _InFlight(path, name, file_id(name, stat))
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            item.error, item.kind = f"{path}: not an image file (expected {', '.join(IMAGE_SUFFIXES)})", "decode"
        else:
            try:
                admission = self.service.admit(block=True, timeout=self.poll)
            except QueueFull:
                return  # the queue is full (HTTP traffic) or stopping: try again at the next poll
            try:
                with admission:
                    image, record = admission.decode(data, str(path))
                    item.image = image
                    item.future = admission.submit(image, record)
            except ScaeError as err:
                item.error, item.kind = str(err), "too_large" if isinstance(err, TooLarge) else "decode"
        self._in_flight[name] = item

    def _collect(self, block: bool) -> None:
        """Commit every finished image (all of them, waiting, when ``block``)."""
        for name, item in list(self._in_flight.items()):
            if item.future is not None and not item.future.done():
                if not block:
                    continue
                try:
                    item.future.exception()  # waits
                except Exception:  # noqa: S110 (reported below)
                    pass
            self._commit(item)
            del self._in_flight[name]
            self._seen.pop(name, None)

    def _commit(self, item: _InFlight) -> None:
        outcome: Outcome | None = None
        if item.future is not None:
            try:
                outcome = item.future.result()
            except Exception as err:
                item.error, item.kind = f"{item.path}: internal error ({err.__class__.__name__}: {err})", "internal"
        if outcome is not None:
            payload = outcome.json()
        else:
            if item.future is None:  # the worker counted its own failures
                self.service.metrics.error(item.kind)
            record = Record(item.path, error=item.error)
            payload = Outcome(record, self.service.bundle, None).json()
        ok = payload.get("error") is None
        target = self._unique_target(self.done_dir if ok else self.failed_dir, item.name)
        payload.update({"id": item.id, "name": item.name, "source": "inbox", "moved_to": str(target)})
        if ok and self.overlays and outcome is not None and outcome.image is not None:
            overlay = self.overlay_dir / f"{target.stem}.overlay.png"
            try:
                write_png(overlay, result_overlay(outcome.image, outcome.record.result))
                payload["overlay"] = str(overlay)
            except (OSError, ScaeError) as err:
                payload["warnings"] = [*payload.get("warnings", []), f"could not write the overlay {overlay} ({err})"]
        if not ok:
            reason = target.with_name(target.name + ".reason.txt")
            reason.write_text(payload["error"] + "\n", encoding="utf-8")
        self.journal.commit(payload)
        try:
            _move(item.path, target)
            _fsync_dir(target.parent)
        except FileNotFoundError:
            log.warning("%s: removed from the inbox after it was read (its result stands)", item.path)
        except OSError as err:
            log.error("%s: result committed but the move to %s failed (%s); retrying", item.path, target, err.strerror or err)
            self._unmoved[item.name] = (item.path, payload)
        self.committed += 1
        if self.publish is not None:
            self.publish(payload)
        level = logging.INFO if ok else logging.WARNING
        log.log(level, "%s: %s%s", item.name, payload["verdict"], "" if ok else f" ({payload['error']})")

    def _unique_target(self, folder: Path, name: str) -> Path:
        """``folder/name``, or ``stem-2.ext``... when an earlier image had the same name."""
        target, number = folder / name, 1
        stem, suffix = Path(name).stem, Path(name).suffix
        while target.exists() or target.with_name(target.name + ".reason.txt").exists():
            number += 1
            target = folder / f"{stem}-{number}{suffix}"
        return target
