"""MQTT publishing against a real mosquitto on a free localhost port: results survive the broker going away.

Skipped when the mosquitto binary is absent (.ci/run installs it on Debian as root).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
from serve_helpers import free_port

pytest.importorskip("paho.mqtt.client")

MOSQUITTO = shutil.which("mosquitto") or next((p for p in ("/usr/sbin/mosquitto",) if Path(p).is_file()), None)
pytestmark = pytest.mark.skipif(MOSQUITTO is None, reason="mosquitto broker not installed (apt-get install mosquitto)")


class Broker:
    """mosquitto on 127.0.0.1:``port`` with persistence, so a restart keeps the subscriber's session."""

    def __init__(self, folder: Path, port: int):
        self.folder, self.port = folder, port
        folder.mkdir(parents=True, exist_ok=True)
        self.config = folder / "mosquitto.conf"
        self.config.write_text(
            f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
            f"persistence_location {folder}/\nautosave_interval 1\n"
        )
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen([MOSQUITTO, "-c", str(self.config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import socket

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("mosquitto did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # SIGTERM: mosquitto writes its persistence file
            self.process.wait(10)


class Subscriber:
    """A persistent-session QoS 1 subscriber that reconnects on its own; collects payloads."""

    def __init__(self, port: int, topic: str):
        import paho.mqtt.client as mqtt

        self.messages: list[dict] = []
        self.subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="scae-test-subscriber", clean_session=False)
        self.client.reconnect_delay_set(1, 1)
        self.client.on_connect = lambda c, u, f, rc, p: (c.subscribe(topic, qos=1), self.subscribed.set())
        self.client.on_message = lambda c, u, m: self.messages.append(json.loads(m.payload))
        self.client.connect_async("127.0.0.1", port, keepalive=10)
        self.client.loop_start()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_results_wait_in_the_outbox_while_the_broker_is_away_and_go_out_later(tmp_path):
    from scae_tf.serve.mqtt import MqttPublisher

    port, topic = free_port(), "line1/scae"
    broker = Broker(tmp_path / "broker", port)
    broker.start()
    subscriber = Subscriber(port, topic)
    publisher = None
    try:
        assert subscriber.subscribed.wait(10)
        time.sleep(0.2)
        publisher = MqttPublisher("127.0.0.1", port, topic, tmp_path / "outbox").start()
        assert publisher.connected.wait(10)
        for number in range(3):
            publisher.publish({"n": number})
        wait_for(lambda: len(subscriber.messages) >= 3, 10, "the first 3 results")
        assert publisher.flush(10) and publisher.pending == 0

        broker.stop()  # the broker goes away
        wait_for(lambda: not publisher.connected.is_set(), 10, "the disconnect")
        for number in range(3, 6):
            publisher.publish({"n": number})
        time.sleep(0.5)
        assert publisher.pending == 3
        publisher.stop(flush_timeout=0.5)  # the service restarts while the broker is still down
        publisher = MqttPublisher("127.0.0.1", port, topic, tmp_path / "outbox").start()
        assert publisher.pending == 3  # kept on disk across the restart
        publisher.publish({"n": 6})

        broker.start()  # ... and comes back
        wait_for(lambda: publisher.pending == 0, 30, "the outbox to empty")
        wait_for(lambda: {m["n"] for m in subscriber.messages} == set(range(7)), 30, "all 7 results")
        numbers = [m["n"] for m in subscriber.messages]
        assert numbers[:3] == [0, 1, 2] and sorted(set(numbers[3:])) == [3, 4, 5, 6]  # in order of publishing
    finally:
        if publisher is not None:
            publisher.stop(flush_timeout=0)
        subscriber.close()
        broker.stop()


def test_outbox_drops_a_half_written_line_and_compacts_when_all_sent(tmp_path):
    from scae_tf.serve.mqtt import Outbox

    folder = tmp_path / "outbox"
    folder.mkdir()
    (folder / "outbox.jsonl").write_bytes(b'{"n":0}\n{"n":1}\n{"n"')
    (folder / "sent.offset").write_text("8\n")
    outbox = Outbox(folder)
    assert outbox.pending == 1 and (folder / "outbox.jsonl").read_bytes() == b'{"n":0}\n{"n":1}\n'
    assert [line for line, _ in outbox.read_from(outbox.acked, 10)] == [b'{"n":1}']
    outbox.append({"n": 2})
    lines = outbox.read_from(outbox.acked, 10)
    assert [line for line, _ in lines] == [b'{"n":1}', b'{"n":2}']
    outbox.acknowledge(lines[-1][1], 2)
    assert outbox.pending == 0 and (folder / "sent.offset").read_text().strip() == str(lines[-1][1])
    assert outbox.compact(limit=1) and outbox.size == 0 and (folder / "outbox.jsonl").stat().st_size == 0
    outbox.close()
