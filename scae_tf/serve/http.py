"""HTTP front end on the standard library's ``ThreadingHTTPServer`` (one thread per connection).

    POST /inspect[?overlay=1|png][&name=NAME]   body = image bytes (PNG, JPEG, BMP, TIFF)
    GET  /health                                 bundle identity, uptime, queue
    GET  /metrics                                Prometheus text
    POST /reload                                 body empty or {"bundle": "/path/to/new/bundle"}

Every answer is JSON (``?overlay=png`` answers the overlay PNG itself, verdict in headers).
Errors: 400 unreadable or empty body, 411 no Content-Length, 413 body or image too large,
422 no verdict for a readable image, 503 + Retry-After when the queue is full, 500 a bug. The
image is decoded in the request thread while a worker runs the networks on the previous one.
"""

from __future__ import annotations

import base64
import json
import logging
import socket
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from scae_tf.errors import ScaeError
from scae_tf.imageio import encode_png
from scae_tf.overlay import result_overlay
from scae_tf.serve.service import InspectionService, Outcome, QueueFull, TooLarge

log = logging.getLogger(__name__)

RESULT_TIMEOUT = 120.0  # seconds a request waits for its worker before 504
IDLE_TIMEOUT = 5.0  # seconds an idle keep-alive connection is kept (bounds the drain on SIGTERM)


class InspectionServer(ThreadingHTTPServer):
    """The HTTP server; ``publish`` (if set) receives every result's JSON (MQTT)."""

    daemon_threads = False  # server_close waits for requests in hand (SIGTERM drains)
    block_on_close = True

    def __init__(
        self,
        address: tuple[str, int],
        service: InspectionService,
        max_body: int = 64 << 20,
        publish: Any = None,
    ):
        self.service = service
        self.max_body = max_body
        self.publish = publish
        self.closing = False
        self._sequence = 0
        self._sequence_lock = threading.Lock()
        super().__init__(address, InspectionHandler)

    def next_name(self) -> str:
        with self._sequence_lock:
            self._sequence += 1
            return f"http-{self._sequence}"

    def close_gracefully(self) -> None:
        """Stop accepting, let requests in hand finish (idle connections time out), close."""
        self.closing = True
        self.shutdown()
        self.server_close()


class InspectionHandler(BaseHTTPRequestHandler):
    server: InspectionServer
    protocol_version = "HTTP/1.1"  # keep-alive: a camera PC sends image after image on one connection
    timeout = IDLE_TIMEOUT
    server_version = "scae-serve"

    # -- plumbing -------------------------------------------------------------------------------
    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes: without this, Nagle + delayed ACK add ~40 ms.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
        log.debug("%s %s", self.address_string(), format % args)

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if self.server.closing:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(payload).encode() + b"\n", "application/json", headers)

    def _error(self, status: int, message: str, kind: str, headers: dict[str, str] | None = None) -> None:
        self.server.service.metrics.error(kind)
        self._json(status, {"error": message}, headers)

    def _read_body(self) -> bytes | None:
        """The request body, or None after answering 411/413 (the connection is then closed)."""
        length = self.headers.get("Content-Length")
        if length is None or not length.strip().isdigit():
            self.close_connection = True
            self._error(HTTPStatus.LENGTH_REQUIRED, "send the image with a Content-Length header (no chunked bodies)", "bad_request")
            return None
        size = int(length)
        if size > self.server.max_body:
            self.close_connection = True  # the unread body cannot be skipped safely
            self._error(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"body of {size} bytes is above this service's limit of {self.server.max_body} bytes (--max-body-mb)",
                "too_large",
            )
            return None
        return self.rfile.read(size)

    # -- routes -----------------------------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        path = urlsplit(self.path).path
        service = self.server.service
        if path == "/health":
            self._json(HTTPStatus.OK, {
                "status": "stopping" if self.server.closing else "ok",
                "bundle": service.bundle.identity,
                "uptime_s": round(time.time() - service.metrics.started, 3),
                "queue": {"pending": service.pending, "capacity": service.max_pending},
                "workers": service.workers,
            })
        elif path == "/metrics":
            self._send(HTTPStatus.OK, service.metrics.render().encode(), "text/plain; version=0.0.4; charset=utf-8")
        else:
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no such resource {path}; use POST /inspect, GET /health, GET /metrics"})

    def do_POST(self) -> None:  # noqa: N802
        url = urlsplit(self.path)
        if url.path == "/inspect":
            self._inspect(parse_qs(url.query))
        elif url.path == "/reload":
            self._reload()
        else:
            body = self._read_body()  # keep the connection usable
            if body is not None:
                self._json(HTTPStatus.NOT_FOUND, {"error": f"no such resource {url.path}; use POST /inspect or POST /reload"})

    def _inspect(self, query: dict[str, list[str]]) -> None:
        service = self.server.service
        body = self._read_body()
        if body is None:
            return
        overlay = (query.get("overlay") or ["0"])[-1].lower()
        if overlay not in ("0", "1", "png", "false", "true"):
            self._error(HTTPStatus.BAD_REQUEST, f"overlay={overlay!r}: use overlay=1 (base64 PNG in the JSON) or overlay=png", "bad_request")
            return
        name = (query.get("name") or [""])[-1] or self.headers.get("X-Image-Name") or self.server.next_name()
        if not body:
            self._error(HTTPStatus.BAD_REQUEST, "empty body: POST the image file's bytes", "decode")
            return
        try:
            with service.admit(block=False) as admission:
                image, record = admission.decode(body, name)
                future = admission.submit(image, record)
        except QueueFull as full:
            kind = "stopping" if full.stopping else "queue_full"
            self._error(HTTPStatus.SERVICE_UNAVAILABLE, str(full), kind, {"Retry-After": str(full.retry_after)})
            return
        except TooLarge as err:
            self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, str(err), "too_large")
            return
        except ScaeError as err:
            self._error(HTTPStatus.BAD_REQUEST, str(err), "decode")
            return
        try:
            outcome: Outcome = future.result(timeout=RESULT_TIMEOUT)
        except TimeoutError:
            self._error(HTTPStatus.GATEWAY_TIMEOUT, f"no result within {RESULT_TIMEOUT:.0f} s", "timeout")
            return
        except Exception as err:
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"internal error ({err.__class__.__name__}: {err}); see the service log", "internal")
            return
        payload = outcome.json()
        payload["source"] = "http"
        if self.server.publish is not None:
            self.server.publish(payload)
        if outcome.record.error is not None:
            self._json(HTTPStatus.UNPROCESSABLE_ENTITY, {**payload, "error": outcome.record.error})
            return
        if overlay in ("0", "false"):
            self._json(HTTPStatus.OK, payload)
            return
        png = encode_png(result_overlay(outcome.image, outcome.record.result), name)
        if overlay == "png":
            self._send(HTTPStatus.OK, png, "image/png", {
                "X-Scae-Verdict": payload["verdict"],
                "X-Scae-Score": json.dumps(payload["score"]),
                "X-Scae-Threshold": json.dumps(payload["threshold"]),
            })
        else:
            self._json(HTTPStatus.OK, {**payload, "overlay_png_base64": base64.b64encode(png).decode("ascii")})

    def _reload(self) -> None:
        body = self._read_body()
        if body is None:
            return
        try:
            request = json.loads(body) if body.strip() else {}
            if not isinstance(request, dict):
                raise ValueError("not an object")
        except ValueError:
            self._error(HTTPStatus.BAD_REQUEST, 'body must be empty or JSON like {"bundle": "/path/to/bundle"}', "bad_request")
            return
        try:
            bundle = self.server.service.reload(request.get("bundle"))
        except ScaeError as err:
            self._json(HTTPStatus.UNPROCESSABLE_ENTITY, {"error": str(err), "bundle": self.server.service.bundle.identity})
            return
        self._json(HTTPStatus.OK, {"reloaded": True, "bundle": bundle.identity})
