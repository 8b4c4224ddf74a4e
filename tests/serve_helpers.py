"""Helpers for the ``scae serve`` tests: an in-process server, HTTP calls, a gate that holds a worker."""

from __future__ import annotations

import http.client
import json
import socket
import threading
from contextlib import contextmanager
from typing import Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def request(port: int, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None,
            timeout: float = 60.0) -> tuple[int, dict[str, str], Any]:
    """(status, headers, JSON or bytes) of one request on a fresh connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        data = response.read()
        kind = response.getheader("Content-Type", "")
        payload = json.loads(data) if kind.startswith("application/json") else data
        return response.status, dict(response.getheaders()), payload
    finally:
        connection.close()


def announce_body(port: int, path: str, length: int, timeout: float = 60.0) -> tuple[int, Any]:
    """(status, JSON) of a POST whose headers announce ``length`` bytes that are never sent: what a
    client streaming a too-large body sees first (sending it would race the server's early answer)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.putrequest("POST", path)
        connection.putheader("Content-Length", str(length))
        connection.endheaders()
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


class Gate:
    """Wraps a pipeline so ``inspect`` waits until ``open`` (a worker held busy on purpose)."""

    def __init__(self, pipeline: Any, event: threading.Event, entered: threading.Event):
        self.pipeline, self.event, self.entered = pipeline, event, entered

    def inspect(self, image, timings=None):
        self.entered.set()
        assert self.event.wait(60), "gate never opened"
        return self.pipeline.inspect(image, timings)


def gated_loader(event: threading.Event, entered: threading.Event, gate_first_only: bool = True):
    """A ``load_bundle`` whose first load's pipelines wait at the gate (later loads, e.g. reloads, do not)."""
    from scae_tf.serve.service import load_bundle

    calls = []

    def load(path, workers, threads):
        bundle = load_bundle(path, workers, threads)
        if not calls or not gate_first_only:
            bundle.pipelines = [Gate(p, event, entered) for p in bundle.pipelines]
        calls.append(path)
        return bundle

    return load


@contextmanager
def running_server(service, **options):
    """An ``InspectionServer`` on a free localhost port in a thread; yields (port, server); stops both."""
    from scae_tf.serve.http import InspectionServer

    server = InspectionServer(("127.0.0.1", 0), service, **options)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], server
    finally:
        server.close_gracefully()
        service.stop(timeout=30)
