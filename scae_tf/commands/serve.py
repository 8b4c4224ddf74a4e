"""``scae serve``: the inspection PC's service over HTTP and/or a watched folder (no TensorFlow needed)."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from pathlib import Path

from scae_tf.errors import ScaeError

HELP = "run the inspection service: HTTP and/or a watched inbox, results to files and MQTT (no TensorFlow)"

EPILOG = """\
HTTP (--http HOST:PORT, host 127.0.0.1 unless given):
  POST /inspect[?overlay=1|png][&name=N]  body = image bytes -> JSON (anomalous, score, threshold,
                                          flagged boxes in image pixels, reason, timings, bundle)
  GET  /health   GET /metrics (Prometheus)   POST /reload [{"bundle": "/new/bundle"}]
  A full queue answers 503 with Retry-After; images above --max-pixels 413; unreadable bytes 400.

Watched inbox (--watch INBOX --out DIR): each image, once its size has settled, gets one line in
DIR/results.jsonl and one row in DIR/results.csv, an overlay in DIR/overlays/, and moves to
DIR/done/ (or DIR/failed/ with NAME.reason.txt). Exactly once across crashes and restarts.
Write into the inbox under a temp or hidden name (x.png.tmp, .x.png) and rename when complete.

MQTT (--mqtt HOST:PORT): every result is published (QoS 1) to --topic; while the broker is away
results wait in an on-disk outbox (--mqtt-outbox, default DIR/mqtt-outbox) and go out later.

Signals: SIGTERM/SIGINT finish the images in hand, then exit 0. SIGHUP reloads the bundle folder
(verified and test-run first; on error the current bundle stays).
"""

log = logging.getLogger("scae.serve")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    parser.add_argument("--bundle", required=True, type=Path, help="bundle folder written by `scae export`")
    parser.add_argument("--http", metavar="HOST:PORT", help="serve HTTP here (PORT alone binds 127.0.0.1; port 0 picks a free one)")
    parser.add_argument("--watch", type=Path, metavar="INBOX", help="folder to watch for new images")
    parser.add_argument("--out", type=Path, metavar="DIR", help="results, overlays, done/ and failed/ of the watched inbox")
    parser.add_argument("--mqtt", metavar="HOST:PORT", help="publish every result to this MQTT broker (default port 1883)")
    parser.add_argument("--topic", default="scae/results", help="MQTT topic (default scae/results)")
    parser.add_argument("--mqtt-outbox", type=Path, metavar="DIR", help="where unsent MQTT results wait (default OUT/mqtt-outbox)")
    parser.add_argument("--mqtt-client-id", help="MQTT client id (default scae-serve-<random>)")
    parser.add_argument("--workers", type=int, default=1, help="inference workers, each with its own interpreters (default 1)")
    parser.add_argument("--threads", type=int, default=2, help="threads per TFLite interpreter (default 2)")
    parser.add_argument("--queue", type=int, default=8, help="images in hand at most (decoding, queued, inferring); then 503 (default 8)")
    parser.add_argument("--max-pixels", type=float, default=25e6, help="refuse larger images with 413 (default 25e6)")
    parser.add_argument("--max-body-mb", type=float, default=64.0, help="refuse larger HTTP bodies with 413 (default 64)")
    parser.add_argument("--settle", type=float, default=0.5, help="seconds an inbox file must keep its size before it is read (default 0.5)")
    parser.add_argument("--poll", type=float, default=0.1, help="inbox poll interval in seconds (default 0.1)")
    parser.add_argument("--no-overlays", action="store_true", help="do not write inbox overlays")


def _check(args: argparse.Namespace) -> None:
    if not args.http and not args.watch:
        raise ScaeError("nothing to serve: give --http HOST:PORT and/or --watch INBOX --out DIR")
    if args.watch and not args.out:
        raise ScaeError("--watch needs --out DIR for the results, overlays, done/ and failed/")
    if args.mqtt and not (args.mqtt_outbox or args.out):
        raise ScaeError("--mqtt needs a folder for its outbox: give --mqtt-outbox DIR (or --out DIR)")
    for name in ("workers", "threads", "queue"):
        if getattr(args, name) < 1:
            raise ScaeError(f"--{name} must be at least 1, got {getattr(args, name)}")
    if args.max_pixels < 1 or args.max_body_mb <= 0 or args.settle < 0 or args.poll <= 0:
        raise ScaeError("--max-pixels, --max-body-mb and --poll must be positive, --settle not negative")


def run(args: argparse.Namespace) -> int:
    from scae_tf.serve.http import InspectionServer
    from scae_tf.serve.inbox import Inbox
    from scae_tf.serve.mqtt import MqttPublisher, parse_host_port
    from scae_tf.serve.service import InspectionService

    _check(args)
    stop, reload_requested = threading.Event(), threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    signal.signal(signal.SIGINT, lambda signum, frame: stop.set())
    signal.signal(signal.SIGHUP, lambda signum, frame: reload_requested.set())
    http_address = parse_host_port(args.http, 8080, "--http") if args.http else None
    mqtt_address = parse_host_port(args.mqtt, 1883, "--mqtt") if args.mqtt else None
    service = InspectionService(args.bundle, workers=args.workers, threads=args.threads, max_pending=args.queue, max_pixels=int(args.max_pixels))
    identity = service.bundle.identity
    log.info("bundle %s: %s, scae-tf %s, manifest %s", identity["path"], identity["precision"], identity["version"], identity["manifest_sha256"][:12])

    publisher = None
    if mqtt_address is not None:
        publisher = MqttPublisher(*mqtt_address, args.topic, args.mqtt_outbox or args.out / "mqtt-outbox", client_id=args.mqtt_client_id).start()
        service.metrics.gauge("scae_mqtt_pending", lambda: publisher.pending)
        service.metrics.gauge("scae_mqtt_connected", lambda: float(publisher.connected.is_set()))
        log.info("publishing results to mqtt://%s:%d topic %s (outbox %s)", *mqtt_address, args.topic, publisher.outbox.folder)
    publish = publisher.publish if publisher is not None else None

    threads: list[threading.Thread] = []
    server = inbox = None
    try:
        if http_address is not None:
            try:
                server = InspectionServer(http_address, service, max_body=int(args.max_body_mb * (1 << 20)), publish=publish)
            except OSError as err:
                raise ScaeError(f"cannot listen on {args.http} ({err.strerror or err}); choose another --http address") from None
            host, port = server.server_address[:2]
            threads.append(threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="scae-http", daemon=True))
            log.info("listening on http://%s:%d (POST /inspect, GET /health, GET /metrics, POST /reload)", host, port)
        if args.watch:
            inbox = Inbox(service, args.watch, args.out, publish=publish, settle=args.settle, poll=args.poll, overlays=not args.no_overlays)
            threads.append(threading.Thread(target=inbox.run, name="scae-inbox", daemon=True))
            log.info("watching %s -> %s", args.watch, args.out)
        for thread in threads:
            thread.start()

        while not stop.is_set():
            if reload_requested.is_set():
                reload_requested.clear()
                try:
                    service.reload()
                except ScaeError as err:
                    log.error("reload refused, the current bundle stays: %s", err)
            stop.wait(0.2)
        log.info("stopping: finishing the images in hand")
    finally:
        if inbox is not None:
            inbox.stop.set()
        if server is not None:
            if threads and threads[0].is_alive():
                server.close_gracefully()
            else:
                server.server_close()
        for thread in threads:
            thread.join(60.0)
        service.stop(timeout=60.0)
        if publisher is not None:
            publisher.stop()
    log.info("stopped")
    return 0
