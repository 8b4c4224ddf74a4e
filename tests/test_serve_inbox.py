"""``scae serve --watch``: files taken once complete, exactly one result each, across SIGKILL and SIGTERM."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from edge_fixtures import cached_bundle, cached_tiny_run
from serve_helpers import free_port, request

from scae_tf.serve.inbox import RESULTS_CSV, RESULTS_JSONL, Inbox, file_id, ignored_name


@pytest.fixture(scope="module")
def edge(tmp_path_factory):
    base = tmp_path_factory.getbasetemp()
    data, _ = cached_tiny_run(base)
    return sorted((data / "test").rglob("*.png")), cached_bundle(base, "int8")


def drop(source: Path, inbox: Path, name: str) -> None:
    """Write like a careful camera PC: temp name first, rename when complete."""
    tmp = inbox / f"{name}.part"
    tmp.write_bytes(source.read_bytes())
    os.replace(tmp, inbox / name)


def lines(out: Path) -> list[dict]:
    text = (out / RESULTS_JSONL).read_text() if (out / RESULTS_JSONL).is_file() else ""
    assert text == "" or text.endswith("\n"), "half-written line"
    return [json.loads(line) for line in text.splitlines()]


def csv_rows(out: Path) -> list[dict]:
    with open(out / RESULTS_CSV, newline="") as handle:
        return list(csv.DictReader(handle))


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@contextmanager
def watching(watcher: Inbox, service) -> Iterator[None]:
    """The inbox watcher on its own thread for the block; then stopped, and the service drained."""
    runner = threading.Thread(target=watcher.run)
    runner.start()
    try:
        yield
    finally:
        watcher.stop.set()
        runner.join(30)
        service.stop(30)


def test_ignored_names():
    assert ignored_name(".x.png") and ignored_name("x.png.tmp") and ignored_name("x.PART") and ignored_name("x.png~")
    assert not ignored_name("x.png") and not ignored_name("x.tiff")


@pytest.mark.slow
def test_inbox_takes_complete_files_once_and_sorts_failures(edge, tmp_path):
    from scae_tf.serve.service import InspectionService

    images, bundle = edge
    inbox, out = tmp_path / "in", tmp_path / "out"
    published: list[dict] = []
    service = InspectionService(bundle)
    watcher = Inbox(service, inbox, out, publish=published.append, settle=0.6, poll=0.05)
    with watching(watcher, service):
        drop(images[0], inbox, "a.png")
        drop(images[1], inbox, "a.png.tmp")  # a temp name: left alone
        (inbox / ".hidden.png").write_bytes(images[1].read_bytes())
        (inbox / "bad.png").write_bytes(b"not a png at all")
        (inbox / "notes.txt").write_text("hello")
        # A file written slowly, in two halves with a pause shorter than the settle time.
        data = images[2].read_bytes()
        with open(inbox / "slow.png", "wb") as handle:
            handle.write(data[: len(data) // 2])
            handle.flush()
            time.sleep(0.3)
            handle.write(data[len(data) // 2 :])
        wait_for(lambda: len(lines(out)) >= 4, 30, "4 results")
        time.sleep(0.3)
    results = {r["name"]: r for r in lines(out)}
    assert sorted(results) == ["a.png", "bad.png", "notes.txt", "slow.png"]
    assert results["slow.png"]["verdict"] in ("good", "anomalous")  # never read half-written
    assert results["a.png"]["verdict"] in ("good", "anomalous") and results["a.png"]["bundle"]["precision"] == "int8"
    assert (out / "done" / "a.png").is_file() and (out / "done" / "slow.png").is_file()
    assert Path(results["a.png"]["overlay"]).is_file() and results["a.png"]["moved_to"] == str(out / "done" / "a.png")
    for name in ("bad.png", "notes.txt"):
        assert results[name]["verdict"] == "error" and (out / "failed" / name).is_file()
        assert (out / "failed" / f"{name}.reason.txt").read_text().strip() == results[name]["error"]
    assert sorted(p.name for p in inbox.iterdir()) == [".hidden.png", "a.png.tmp"]
    assert [row["name"] for row in csv_rows(out)] == [r["name"] for r in lines(out)]
    assert sorted(p["name"] for p in published) == sorted(results)
    # The same name again later is a new image: a second result, kept beside the first.
    service = InspectionService(bundle)
    watcher = Inbox(service, inbox, out, settle=0.1, poll=0.05)
    drop(images[3], inbox, "a.png")
    vanished = inbox / "gone.png"  # deleted between the scan and the read
    watcher._start(vanished)
    with watching(watcher, service):
        wait_for(lambda: len(lines(out)) == 5, 30, "the second a.png")
    assert lines(out)[-1]["moved_to"] == str(out / "done" / "a-2.png") and (out / "done" / "a-2.png").is_file()
    assert 'scae_errors_total{kind="vanished"} 1' in service.metrics.render()


@pytest.mark.slow
def test_restart_finishes_committed_moves_cuts_half_lines_and_rebuilds_csv(edge, tmp_path):
    from scae_tf.serve.service import InspectionService

    images, bundle = edge
    inbox, out = tmp_path / "in", tmp_path / "out"
    (out / "done").mkdir(parents=True)
    inbox.mkdir()
    drop(images[0], inbox, "committed.png")  # crashed after its result line, before its move
    drop(images[1], inbox, "cut.png")  # crashed while its line was being written
    committed = {"name": "committed.png", "id": file_id("committed.png", (inbox / "committed.png").stat()),
                 "verdict": "good", "moved_to": str(out / "done" / "committed.png"), "error": None}
    (out / RESULTS_JSONL).write_text(json.dumps(committed) + "\n" + '{"name": "cut.png", "verd')
    (out / RESULTS_CSV).write_text("time,name\n")  # behind the journal
    service = InspectionService(bundle)
    watcher = Inbox(service, inbox, out, settle=0.1, poll=0.05)
    assert (out / "done" / "committed.png").is_file() and not (inbox / "committed.png").exists()
    assert [r["name"] for r in lines(out)] == ["committed.png"]  # half line cut, no second result
    assert [row["name"] for row in csv_rows(out)] == ["committed.png"]
    with watching(watcher, service):
        wait_for(lambda: len(lines(out)) == 2, 30, "cut.png inspected again")
    assert [r["name"] for r in lines(out)] == ["committed.png", "cut.png"]
    assert [row["name"] for row in csv_rows(out)] == ["committed.png", "cut.png"]
    assert not list(inbox.iterdir())


def _serve(bundle: Path, inbox: Path, out: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "scae_tf", "serve", "--bundle", str(bundle), "--watch", str(inbox), "--out", str(out),
         "--settle", "0.1", "--poll", "0.02", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )


@pytest.mark.slow
def test_sigkill_and_restart_give_every_image_exactly_one_result(edge, tmp_path):
    images, bundle = edge
    inbox, out = tmp_path / "in", tmp_path / "out"
    inbox.mkdir()
    names = [f"img{i:03d}.png" for i in range(40)]
    for number, name in enumerate(names):
        drop(images[number % len(images)], inbox, name)
    for kill_after in (3, 15):  # two crashes at different points, then a clean run to the end
        process = _serve(bundle, inbox, out)
        try:
            wait_for(lambda p=process, n=kill_after: len(lines(out)) >= n or p.poll() is not None, 60, f"{kill_after} results")
            assert process.poll() is None, process.stdout.read()
            process.send_signal(signal.SIGKILL)
        finally:
            process.wait(30)
    process = _serve(bundle, inbox, out)
    try:
        wait_for(lambda: len(lines(out)) >= len(names) and not any(inbox.iterdir()), 120, "all results")
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)
    results = lines(out)
    assert sorted(r["name"] for r in results) == names  # none lost, none twice
    assert sorted(row["name"] for row in csv_rows(out)) == names
    assert sorted(p.name for p in (out / "done").iterdir()) == names
    assert all(r["verdict"] in ("good", "anomalous") for r in results)


@pytest.mark.slow
def test_sigterm_finishes_work_in_hand_and_sighup_reloads(edge, tmp_path):
    images, bundle = edge
    inbox, out = tmp_path / "in", tmp_path / "out"
    inbox.mkdir()
    port = free_port()
    process = _serve(bundle, inbox, out, "--http", f"127.0.0.1:{port}")
    try:
        wait_for(lambda: _health(port) is not None or process.poll() is not None, 60, "the service")
        sha = _health(port)["bundle"]["manifest_sha256"]
        process.send_signal(signal.SIGHUP)
        wait_for(lambda: 'outcome="ok"} 1' in request(port, "GET", "/metrics")[2].decode(), 30, "the reload")
        assert _health(port)["bundle"]["manifest_sha256"] == sha
        names = [f"t{i:02d}.png" for i in range(20)]
        for number, name in enumerate(names):
            drop(images[number % len(images)], inbox, name)
        wait_for(lambda: len(lines(out)) >= 2, 60, "the first results")
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)
    log = process.stdout.read()
    assert "stopping: finishing the images in hand" in log and "Traceback" not in log
    done = {r["name"] for r in lines(out)}
    left = {p.name for p in inbox.iterdir()}
    assert done | left == set(names) and not done & left  # each image: a result, or still waiting; never both
    assert {p.name for p in (out / "done").iterdir()} == done


def _health(port: int) -> dict | None:
    try:
        status, _, payload = request(port, "GET", "/health", timeout=2)
    except OSError:
        return None
    return payload if status == 200 else None


def test_journal_write_failure_leaves_no_partial_line(tmp_path, monkeypatch):
    from scae_tf.serve import inbox as inbox_module
    from scae_tf.serve.inbox import Journal

    journal = Journal(tmp_path)
    journal.commit({"name": "a.png", "verdict": "good"})
    real_fsync = os.fsync

    def failing_fsync(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(inbox_module.os, "fsync", failing_fsync)
    with pytest.raises(OSError):
        journal.commit({"name": "b.png", "verdict": "good"})
    monkeypatch.setattr(inbox_module.os, "fsync", real_fsync)
    journal.commit({"name": "b.png", "verdict": "anomalous"})  # the retry
    journal.close()
    assert [(r["name"], r["verdict"]) for r in lines(tmp_path)] == [("a.png", "good"), ("b.png", "anomalous")]
    assert [row["name"] for row in csv_rows(tmp_path)] == ["a.png", "b.png"]
