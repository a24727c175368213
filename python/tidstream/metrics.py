"""Prometheus metrics and the health endpoint of one flow process (docs/OPERATIONS.md).

Every metric of tidstream lives here, in the ``prometheus_client`` default registry of the
process (so the process and Python collectors come along). The steps update them **once
per batch**, never per frame. :func:`serve` starts a small HTTP server on a daemon thread:

* ``GET /metrics``: the Prometheus text exposition (version 0.0.4);
* ``GET /healthz``: ``200`` with a JSON body when healthy, ``503`` with the reasons when not.

**Healthy** means: at least one source partition runs in this process, every NATS
connection of the process (source partitions and the shared sink connection) is connected,
and every source partition either is idle at the stream head (lag 0) or emitted a batch in
the last ``health_stall_s`` seconds. A process whose partitions have not started yet
answers ``503 starting``.

With Bytewax, the workers of one process share these metrics (counters are per process);
several processes (``-i k``) each serve their own endpoint on ``metrics_port + k``.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, Info
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from . import __version__
from .exceptions import ConfigError

__all__ = [
    "ALERTS",
    "BATCH_SIZE",
    "DEAD_LETTERS",
    "DECODE_SECONDS",
    "EXPORT_FILES",
    "EXPORT_LAST_WRITE",
    "EXPORT_REJECTED",
    "EXPORT_ROWS",
    "FRAMES_IN",
    "PUBLISHED",
    "PUBLISH_DUPLICATES",
    "PUBLISH_SECONDS",
    "READINGS_OUT",
    "SOURCE_LAG",
    "SOURCE_MESSAGES",
    "HealthProbe",
    "health",
    "register_connection",
    "register_source",
    "serve",
    "unregister",
]

log = logging.getLogger("tidstream.metrics")

_SIZE_BUCKETS = (1, 10, 50, 100, 200, 500, 1000, 2000, 5000, 10000)
_TIME_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)

# -- ingest -----------------------------------------------------------------------------
FRAMES_IN = Counter("tidstream_frames_in", "Raw uplinks taken in by the ingest step.")
READINGS_OUT = Counter(
    "tidstream_readings_out", "Readings produced by the ingest step (stored readings included)."
)
DEAD_LETTERS = Counter(
    "tidstream_dead_letters", "Uplinks dead-lettered by the ingest step, by reason.", ["reason"]
)
DECODE_SECONDS = Histogram(
    "tidstream_decode_seconds",
    "Wall time of the ingest step per batch (envelopes, registry join, decode, JSON), seconds.",
    buckets=_TIME_BUCKETS,
)
# -- alerts -----------------------------------------------------------------------------
ALERTS = Counter(
    "tidstream_alerts",
    "Alert events produced, by kind and state (raised, resolved, event).",
    ["kind", "state"],
)
# -- sources (every flow) ---------------------------------------------------------------
SOURCE_MESSAGES = Counter(
    "tidstream_source_messages", "Messages emitted into the dataflow by a source.", ["stream", "partition"]
)
SOURCE_LAG = Gauge(
    "tidstream_source_lag_messages",
    "Messages stored in the stream partition but not yet emitted into the dataflow "
    "(server-side pending of the last delivered message + the local queue).",
    ["stream", "partition"],
)
BATCH_SIZE = Histogram(
    "tidstream_batch_size", "Messages per non-empty source batch.", ["stream"], buckets=_SIZE_BUCKETS
)
# -- JetStream sink (ingest, alerts) ----------------------------------------------------
PUBLISHED = Counter("tidstream_published_messages", "Messages acknowledged by JetStream (sink).")
PUBLISH_DUPLICATES = Counter(
    "tidstream_publish_duplicates", "PubAcks marked duplicate (a replay re-published a known id)."
)
PUBLISH_SECONDS = Histogram(
    "tidstream_publish_seconds",
    "Sink write_batch wall time (publish + all PubAcks), seconds.",
    buckets=_TIME_BUCKETS,
)
# -- Parquet export ---------------------------------------------------------------------
EXPORT_ROWS = Counter("tidstream_export_rows", "Readings received by the Parquet export sink.")
EXPORT_FILES = Counter(
    "tidstream_export_files_written", "Parquet files written (a block is rewritten at each snapshot)."
)
EXPORT_REJECTED = Counter(
    "tidstream_export_rejected", "Readings quarantined by the export (do not fit the schema)."
)
EXPORT_LAST_WRITE = Gauge(
    "tidstream_export_last_write_timestamp_seconds", "Unix time of the last Parquet file written."
)
HEALTHY = Gauge("tidstream_healthy", "1 when /healthz answers 200, else 0 (evaluated at each scrape).")
BUILD = Info("tidstream_build", "Version and flow of this process.")


class HealthProbe(NamedTuple):
    """What a source partition reports to :func:`health`."""

    connected: bool
    lag: int
    #: ``time.monotonic()`` of its last non-empty batch (its start time before any).
    last_progress: float


_lock = threading.Lock()
_sources: dict[tuple[str, str], Callable[[], HealthProbe]] = {}
_connections: dict[str, Callable[[], bool]] = {}
_stall_s = 60.0


def register_source(stream: str, partition: str, probe: Callable[[], HealthProbe]) -> None:
    """Make a source partition part of the health check (until :func:`unregister`)."""
    with _lock:
        _sources[(stream, partition)] = probe


def register_connection(name: str, is_connected: Callable[[], bool]) -> None:
    """Make a NATS connection (e.g. the sinks' shared one) part of the health check."""
    with _lock:
        _connections[name] = is_connected


def unregister(source: tuple[str, str] | None = None, connection: str | None = None) -> None:
    """Drop a source partition or a connection from the health check (on close)."""
    with _lock:
        if source is not None:
            _sources.pop(source, None)
        if connection is not None:
            _connections.pop(connection, None)


def health(now: float | None = None) -> tuple[bool, dict[str, Any]]:
    """(healthy, details) as served by ``/healthz`` (see the module docstring)."""
    now = time.monotonic() if now is None else now
    with _lock:
        sources = dict(_sources)
        conns = dict(_connections)
    problems: list[str] = []
    parts: dict[str, Any] = {}
    for (stream, part), probe in sorted(sources.items()):
        p = probe()
        idle_s = round(now - p.last_progress, 3)
        parts[f"{stream}/{part}"] = {"connected": p.connected, "lag": p.lag, "since_progress_s": idle_s}
        if not p.connected:
            problems.append(f"{stream}/{part}: NATS disconnected")
        elif p.lag > 0 and idle_s > _stall_s:
            problems.append(f"{stream}/{part}: stalled, {p.lag} messages behind, no batch for {idle_s:.0f} s")
    for name, ok in sorted(conns.items()):
        if not ok():
            problems.append(f"{name}: NATS disconnected")
    if not sources:
        problems.append("starting: no source partition running in this process yet")
    healthy = not problems
    HEALTHY.set(1 if healthy else 0)
    return healthy, {"status": "ok" if healthy else "unhealthy", "problems": problems, "partitions": parts}


class _Handler(BaseHTTPRequestHandler):
    server_version = "tidstream-metrics"

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            health()  # refresh tidstream_healthy
            body, status, ctype = generate_latest(REGISTRY), 200, CONTENT_TYPE_LATEST
        elif path == "/healthz":
            ok, details = health()
            body, status, ctype = json.dumps(details).encode(), 200 if ok else 503, "application/json"
        else:
            body, status, ctype = b"not found: try /metrics or /healthz\n", 404, "text/plain"
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # scrapes are not news
        log.debug("http %s", format % args)


def process_id(argv: list[str] | None = None) -> int:
    """The Bytewax process id of this process (``-i`` / ``--process-id`` /
    ``BYTEWAX_PROCESS_ID``), 0 when it runs alone."""
    import os

    argv = sys.argv if argv is None else argv
    for i, a in enumerate(argv):
        if a in ("-i", "--process-id") and i + 1 < len(argv):
            return int(argv[i + 1])
        if a.startswith("--process-id="):
            return int(a.split("=", 1)[1])
    return int(os.environ.get("BYTEWAX_PROCESS_ID") or 0)


def serve(
    port: int, host: str = "127.0.0.1", *, flow: str = "", stall_s: float = 60.0
) -> ThreadingHTTPServer:
    """Serve ``/metrics`` and ``/healthz`` on ``host:port`` from a daemon thread (``port``
    0: an ephemeral port, read it from ``server.server_address``). Returns the server."""
    global _stall_s
    _stall_s = float(stall_s)
    BUILD.info({"version": __version__, "flow": flow})
    try:
        srv = ThreadingHTTPServer((host, port), _Handler)
    except OSError as e:
        raise ConfigError(
            f"metrics server cannot listen on {host}:{port} ({e.strerror}); another process holds the "
            "port? (process k of a flow uses metrics_port + k: give each flow its own range)"
        ) from None
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, name="tidstream-metrics", daemon=True).start()
    log.info(
        "metrics on http://%s:%d/metrics, health on /healthz",
        *srv.server_address[:2],
        extra={"flow": flow, "port": srv.server_address[1]},
    )
    return srv


def start_flow(settings: Any, flow: str) -> ThreadingHTTPServer | None:
    """What every dataflow module calls first: structured logs as configured
    (``log_format``, ``log_level``, secrets masked) and, when ``metrics_port`` >= 0, the
    metrics server on ``metrics_port + process id`` (or an ephemeral port for 0)."""
    from .logs import setup_logging

    setup_logging(settings.log_format, settings.log_level, settings.nats)
    pid = process_id()
    log.info(
        "starting flow %s (process %d)",
        flow,
        pid,
        extra={"flow": flow, "process_id": pid, "nats": settings.nats.redacted()},
    )
    if settings.metrics_port < 0:
        return None
    port = settings.metrics_port + pid if settings.metrics_port else 0
    return serve(port, settings.metrics_host, flow=flow, stall_s=settings.health_stall_s)
