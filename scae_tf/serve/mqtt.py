"""Results to an MQTT broker, with an on-disk outbox so nothing is lost while the broker is away.

Every result is first appended to ``OUTBOX/outbox.jsonl`` (one JSON line); a sender thread hands
the lines to paho-mqtt (QoS 1) in order and moves ``OUTBOX/sent.offset`` past a line once the
broker acknowledged it (PUBACK). While the broker is down the lines wait in the file (at most
``window`` of them in paho's memory); paho reconnects on its own and the backlog goes out in
order. After a crash or restart the unacknowledged lines are sent again: delivery is at least
once, so consumers should de-duplicate on the result's ``time`` + ``path`` (or the inbox ``id``).
Once everything is acknowledged and the file has grown past ``compact_bytes``, it is emptied.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections import deque
from pathlib import Path
from typing import Any

from scae_tf.errors import ScaeError

log = logging.getLogger(__name__)

OUTBOX_NAME = "outbox.jsonl"
OFFSET_NAME = "sent.offset"


def parse_host_port(value: str, default_port: int, what: str) -> tuple[str, int]:
    """``HOST:PORT``, ``HOST`` or ``PORT`` -> (host, port); the host defaults to 127.0.0.1."""
    host, _, port = value.rpartition(":") if ":" in value else ("", "", value)
    if not port.isdigit() and not host:  # "HOST" alone
        host, port = value, str(default_port)
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ScaeError(f"{what} {value!r}: expected HOST:PORT, e.g. 127.0.0.1:{default_port}")
    return host.strip("[]") or "127.0.0.1", int(port)


class Outbox:
    """The append-only file of results still to send, and the offset of the first unacknowledged byte."""

    def __init__(self, folder: Path):
        self.folder = folder
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ScaeError(f"cannot create the MQTT outbox folder ({err.strerror}); choose another --mqtt-outbox", folder) from None
        self.path = folder / OUTBOX_NAME
        self.offset_path = folder / OFFSET_NAME
        self.lock = threading.Lock()
        self._truncate_half_line()
        self.acked = self._read_offset()
        self._file = open(self.path, "ab")  # noqa: SIM115 (kept open for the service's life)
        self.size = self._file.tell()
        if self.acked > self.size:
            self.acked = 0
        self.pending = self._count_lines(self.acked)

    def _truncate_half_line(self) -> None:
        """A crash mid-append leaves a line without its newline: drop it (it was never acknowledged)."""
        if not self.path.is_file():
            return
        data = self.path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end != len(data):
            with open(self.path, "r+b") as handle:
                handle.truncate(end)

    def _read_offset(self) -> int:
        try:
            return int(self.offset_path.read_text().strip() or 0)
        except (OSError, ValueError):
            return 0

    def _count_lines(self, start: int) -> int:
        with open(self.path, "rb") as handle:
            handle.seek(start)
            return handle.read().count(b"\n")

    def append(self, payload: dict[str, Any]) -> None:
        line = json.dumps(payload, separators=(",", ":"), allow_nan=False).encode() + b"\n"
        with self.lock:
            self._file.write(line)
            self._file.flush()  # in the OS after this: a killed process loses nothing
            self.size += len(line)
            self.pending += 1

    def read_from(self, offset: int, limit: int) -> list[tuple[bytes, int]]:
        """Up to ``limit`` complete lines from ``offset``: (line without newline, offset after it)."""
        with self.lock:
            if offset >= self.size:
                return []
            with open(self.path, "rb") as handle:
                handle.seek(offset)
                data = handle.read(min(self.size - offset, 4 << 20))
        lines, position = [], 0
        while len(lines) < limit:
            end = data.find(b"\n", position)
            if end < 0:
                break
            lines.append((data[position:end], offset + end + 1))
            position = end + 1
        return lines

    def acknowledge(self, offset: int, count: int) -> None:
        """Everything before ``offset`` reached the broker: persist it, empty the file when all is sent."""
        tmp = self.offset_path.with_name(OFFSET_NAME + ".tmp")
        with self.lock:
            self.acked = offset
            self.pending -= count
            tmp.write_text(f"{offset}\n")
            os.replace(tmp, self.offset_path)

    def compact(self, limit: int) -> bool:
        """Empty the file once every line is acknowledged and it is larger than ``limit`` bytes."""
        with self.lock:
            if self.acked != self.size or self.size <= limit:
                return False
            self._file.truncate(0)
            self._file.seek(0)
            self.size = self.acked = 0
            self.offset_path.write_text("0\n")
            return True

    def close(self) -> None:
        with self.lock:
            self._file.close()


class MqttPublisher:
    """Publishes results to ``topic`` on ``host:port`` from the outbox; reconnects on its own."""

    def __init__(
        self,
        host: str,
        port: int,
        topic: str,
        outbox: Path,
        client_id: str | None = None,
        window: int = 64,
        compact_bytes: int = 8 << 20,
    ):
        try:
            import paho.mqtt.client as mqtt
        except ImportError:
            raise ScaeError("--mqtt needs paho-mqtt: pip install 'scae-tf[edge]' (or pip install paho-mqtt)") from None
        self.host, self.port, self.topic = host, port, topic
        self.outbox = Outbox(outbox)
        self.window = window
        self.compact_bytes = compact_bytes
        self._acked_mids: set[int] = set()
        self._inflight: deque[tuple[int, int]] = deque()  # (mid, outbox offset after the line)
        self._read_offset = self.outbox.acked
        self._wake = threading.Condition()
        self._stop = threading.Event()
        self.connected = threading.Event()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id or f"scae-serve-{uuid.uuid4().hex[:8]}",
            clean_session=True,
        )
        self.client.reconnect_delay_set(min_delay=1, max_delay=10)
        self.client.max_inflight_messages_set(window)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self._thread = threading.Thread(target=self._send_loop, name="scae-mqtt", daemon=True)

    # -- paho callbacks (paho's network thread) --------------------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.warning("MQTT broker %s:%d refused the connection: %s", self.host, self.port, reason_code)
            return
        log.info("MQTT connected to %s:%d (%d result(s) waiting in the outbox)", self.host, self.port, self.outbox.pending)
        self.connected.set()
        self._notify()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if self.connected.is_set():
            log.warning("MQTT broker %s:%d went away (%s); results wait in %s", self.host, self.port, reason_code, self.outbox.path)
        self.connected.clear()

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        with self._wake:
            self._acked_mids.add(mid)
            self._wake.notify_all()

    # -- API ----------------------------------------------------------------------------------------
    def start(self) -> MqttPublisher:
        self.client.connect_async(self.host, self.port, keepalive=30)
        self.client.loop_start()  # paho's thread: connects, and reconnects after a loss
        self._thread.start()
        return self

    def publish(self, payload: dict[str, Any]) -> None:
        """Queue one result (written to the outbox at once, sent when the broker is there)."""
        self.outbox.append(payload)
        self._notify()

    @property
    def pending(self) -> int:
        """Results not yet acknowledged by the broker."""
        return self.outbox.pending

    def _notify(self) -> None:
        with self._wake:
            self._wake.notify_all()

    def _send_loop(self) -> None:
        while not self._stop.is_set():
            self._collect_acks()
            room = self.window - len(self._inflight)
            if room > 0:
                for line, end in self.outbox.read_from(self._read_offset, room):
                    info = self.client.publish(self.topic, line, qos=1)  # queued by paho if disconnected
                    self._inflight.append((info.mid, end))
                    self._read_offset = end
            with self._wake:
                if not self._acked_mids and (len(self._inflight) >= self.window or self._read_offset >= self.outbox.size):
                    self._wake.wait(0.5)

    def _collect_acks(self) -> None:
        with self._wake:
            acked = self._acked_mids
            offset, count = None, 0
            while self._inflight and self._inflight[0][0] in acked:
                mid, offset = self._inflight.popleft()
                acked.discard(mid)
                count += 1
        if offset is not None:
            self.outbox.acknowledge(offset, count)
            if not self._inflight and self.outbox.compact(self.compact_bytes):
                self._read_offset = 0

    def flush(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for the outbox to empty; True when everything was acknowledged."""
        deadline = time.monotonic() + timeout
        while self.outbox.pending > 0 and time.monotonic() < deadline:
            self._notify()
            time.sleep(0.05)
        return self.outbox.pending == 0

    def stop(self, flush_timeout: float = 5.0) -> None:
        """Try to send what is waiting (bounded), then disconnect; the rest stays in the outbox."""
        if self.connected.is_set():
            self.flush(flush_timeout)
        self._stop.set()
        self._notify()
        self._thread.join(5.0)
        self._collect_acks()
        self.client.disconnect()
        self.client.loop_stop()
        self.outbox.close()
        if self.outbox.pending:
            log.warning("%d result(s) not yet sent to MQTT stay in %s and go out after the next start", self.outbox.pending, self.outbox.path)
