"""Configuration: defaults, a TOML file, then ``TIDSTREAM_*`` environment variables.

Precedence (last wins): built-in defaults < TOML file (``--config`` or
``$TIDSTREAM_CONFIG``) < environment variables. Every key is documented in
``docs/CONFIG.md``; ``tidstream config show`` prints the effective configuration with
secrets masked.

Environment variables map to keys by section: ``TIDSTREAM_NATS_URL`` -> ``[nats] url``,
``TIDSTREAM_STREAMS_PARTITIONS`` -> ``[streams] partitions``, ...
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .exceptions import ConfigError
from .names import encode_token as _tok

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = [
    "IngestInput",
    "NatsSettings",
    "PlanSettings",
    "Settings",
    "StreamSettings",
    "TruckSettings",
    "load_settings",
]


@dataclass
class NatsSettings:
    """How to reach NATS. Secrets are never logged (see :meth:`redacted`)."""

    #: Server URL(s), comma-separated for a cluster: ``nats://h1:4222,nats://h2:4222``.
    url: str = "nats://127.0.0.1:4222"
    user: str | None = None
    password: str | None = None
    token: str | None = None
    #: File holding an NKEY seed (``SU...``).
    nkey_seed_file: str | None = None
    #: A ``.creds`` file (JWT + NKEY seed, decentralized auth).
    credentials_file: str | None = None
    #: TLS: CA bundle to verify the server, client cert/key for mutual TLS.
    tls_ca_file: str | None = None
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    tls_hostname: str | None = None
    #: Seconds to wait for one connection attempt.
    connect_timeout: float = 5.0
    #: Seconds to keep retrying the *first* connection before giving up with an error
    #: (once connected, clients reconnect for ever).
    connect_retry_s: float = 10.0
    #: Client name shown in server monitoring.
    name: str = "tidstream"
    #: Prefix of reply subjects (``_INBOX`` by default). With least-privilege users each
    #: role has its own (``_INBOX_<role>``, docs/SECURITY.md) so no role reads another's replies.
    inbox_prefix: str | None = None
    #: Client of the flows' data path (``JetStreamSource`` / ``JetStreamSink``): ``"rust"``
    #: (async-nats in ``tidstream._core``, docs/NATSIO.md: about half the flow's CPU per
    #: message; no ``tls_hostname``, no ``streams.atomic_publish``), ``"python"`` (nats-py),
    #: or ``"auto"`` (the default): Rust unless an option only nats-py has is set
    #: (``tls_hostname``; ``atomic_publish`` for the sink). Control-plane calls (``nats
    #: init``, KV reads, tools) always use nats-py.
    data_path: str = "auto"
    #: Rust data path's sinks: publish each write as ADR-50 fast-ingest batches
    #: (nats-server 2.14+, stream setting ``allow_batched``, set by ``tidstream nats
    #: init``): the server acks every few hundred messages and each batch's last one
    #: instead of every message; still every message confirmed stored (or a known
    #: duplicate) before the write returns, retries per message with the same ids. A
    #: stream without ``allow_batched`` is published to per message (one warning).
    #: docs/NATSIO.md "Fast-ingest batches". Default: on (less CPU per message in the sink
    #: and in nats-server, measured in the ingest flow); ``false``: one PubAck per message.
    fast_publish: bool = True
    #: The ingest flow's sink keeps one write in flight per partition: ``write_batch``
    #: returns at once and the worker prepares the next batch while JetStream stores and
    #: acknowledges this one; the next write, the epoch's snapshot and ``close`` wait for
    #: it (same guarantee: Bytewax commits an epoch only after the sinks' snapshots).
    #: docs/NATSIO.md "Pipelined sink". ``false``: every write waits for its acks.
    pipeline_sink: bool = True
    #: Rust data path's raw sources: the partitions of a process share one JetStream
    #: consumer on the whole raw stream (no filter), split by partition in Rust: ~2 µs of
    #: nats-server CPU per message instead of ~11 for one partition-filtered consumer per
    #: partition. Each process reads every partition's messages, so with many processes
    #: (about 5 or more) the server's cost (~2 µs x processes per frame) and the clients'
    #: reading pass those of filtered consumers: ``false`` gives one consumer per
    #: partition. docs/NATSIO.md "One consumer per worker".
    shared_source: bool = True

    def __repr__(self) -> str:
        """Never shows a secret (the dataclass repr would print the password)."""
        return f"NatsSettings({', '.join(f'{k}={v!r}' for k, v in self.redacted().items())})"

    def rust_data_path(self, atomic_publish: bool = False) -> bool:
        """Whether the flows' sources and sinks use the Rust client: ``data_path`` "rust",
        or "auto" without ``tls_hostname`` (and, for a sink, without ``atomic_publish``),
        the two options only the nats-py path implements."""
        if self.data_path == "auto":
            return not self.tls_hostname and not atomic_publish
        return self.data_path == "rust"

    def servers(self) -> list[str]:
        """The URL list."""
        return [u.strip() for u in self.url.split(",") if u.strip()]

    def redacted(self) -> dict[str, Any]:
        """Settings with secrets masked, for logs and ``config show``."""
        d = dataclasses.asdict(self)
        for k in ("password", "token"):
            if d[k]:
                d[k] = "***"
        d["url"] = ",".join(_strip_userinfo(u) for u in self.servers())
        return d


def _strip_userinfo(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


@dataclass
class IngestInput:
    """One input subject pattern the ingest flow consumes.

    ``subject`` is a NATS pattern with ``*`` wildcards; ``device_token`` is the 1-based
    index of the wildcard that holds the device id; ``format`` is ``ttn``,
    ``chirpstack`` or ``raw``. The default input is tidstream's own
    ``tid.up.<format>.<device>``, whose format comes from the subject itself.
    """

    subject: str
    format: str
    device_token: int
    #: Name of the capture stream for inputs other than tidstream's own subjects.
    stream: str | None = None


@dataclass
class StreamSettings:
    """JetStream names and limits (``tidstream nats init`` applies them)."""

    prefix: str = "tid"
    raw: str = "TID_RAW"
    readings: str = "TID_READINGS"
    dlq: str = "TID_DLQ"
    alerts: str = "TID_ALERTS"
    #: Fixed number of raw partitions: the most ingest workers that can ever share the
    #: work. Changing it later re-maps devices to partitions (only for new messages).
    partitions: int = 8
    #: Deduplication window (s): longer than the slowest restart (Nats-Msg-Id dedupe).
    duplicate_window_s: int = 1800
    #: How long raw uplinks are kept (days): the replay horizon.
    raw_max_age_days: float = 30.0
    readings_max_age_days: float = 30.0
    dlq_max_age_days: float = 30.0
    #: "file" (durable) or "memory".
    storage: str = "file"
    replicas: int = 1
    #: Ingest sink: JetStream atomic batches (one PubAck per <= 1,000 messages, nats-server
    #: 2.12+) instead of one PubAck per message. Less client CPU, more server CPU and
    #: latency (docs/ARCHITECTURE.md, benches/RESULTS.md); off by default.
    atomic_publish: bool = False
    #: Extra inputs (network-server native subjects), captured and merged into raw.
    inputs: list[IngestInput] = field(default_factory=list)


@dataclass
class TruckSettings:
    """One kind of truck of the collection fleet (``[[plan.fleet]]``)."""

    #: Name, also the prefix of each truck's id (``crane-1``, ``crane-2``...).
    name: str = "truck"
    #: Streams it may collect (one stream per truck and day: one body, no compartments).
    streams: list[str] = field(default_factory=lambda: ["residual"])
    #: Body capacity in litres of container volume collected (loose, as the containers hold it).
    capacity_l: float = 40_000.0
    #: How many trucks of this kind.
    count: int = 1


def _default_fleet() -> list[TruckSettings]:
    return [
        TruckSettings("crane", ["glass", "paper", "packaging"], 30_000.0, 7),
        TruckSettings("rear-loader", ["residual"], 45_000.0, 3),
    ]


@dataclass
class PlanSettings:
    """Collection planning and the savings ledger (``[plan]``, docs/PLANNING.md)."""

    #: Shift start, local hour (Europe/Paris), and length in hours (drive back included).
    shift_start_h: float = 6.0
    shift_h: float = 7.0
    #: Overtime allowed beyond the shift (hours) and its cost (metres-equivalent per hour).
    max_overtime_h: float = 1.0
    overtime_cost_m_per_h: float = 20_000.0
    #: Driving speed between stops: a constant in km/h, or ``[[up_to_m, km/h], ...]`` bands of
    #: leg length; unset: the distance layer's default profile (``tidstream.routes``).
    speed_kmh: float | list[list[float]] | None = None
    #: Road distance over great-circle distance (``tidstream.routes.DEFAULT_CIRCUITY``).
    circuity: float = 1.3
    #: Service time per container kind (seconds at the container); other kinds: ``service_s_default``.
    service_s: dict[str, float] = field(
        default_factory=lambda: {
            "glass_bank": 240.0,
            "paper_bank": 240.0,
            "packaging_bank": 240.0,
            "grouping_point": 90.0,
            "park_bin": 60.0,
        }
    )
    service_s_default: float = 120.0
    #: Unloading time at a facility (seconds).
    unload_s: float = 900.0
    #: Facility kind (``facilities.csv``) where each stream is unloaded, and the trucks' depot kind.
    unload_kind: dict[str, str] = field(
        default_factory=lambda: {
            "glass": "sorting_centre",
            "paper": "sorting_centre",
            "packaging": "sorting_centre",
            "residual": "incinerator",
        }
    )
    depot_kind: str = "depot"
    #: CO2 of a diesel refuse truck, kg CO2e per km (about 4 mpg, stop-and-go; docs/PLANNING.md).
    co2_kg_per_km: float = 1.8
    #: Days the planner collects (Monday = 0; the fixed schedule keeps its own calendar).
    #: Monday-Friday: a Saturday round costs its trucks' drive out and back for little
    #: (chosen on simulation seed 2, docs/PLANNING.md).
    working_days: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 4])
    #: No collection on French public holidays either (the simulator's calendar).
    skip_public_holidays: bool = True
    #: Fill level treated as "full" by the forecasts (the forecaster's threshold).
    full_level: float = 0.95
    #: A container is required today when P(fill >= full_level before the end of the next
    #: working shift) is at least this.
    required_p: float = 0.35
    #: Optional containers: offered when their forecast fill at the end of today's shift is at least this.
    optional_min_fill: float = 0.7
    #: Prize of an optional container (metres of driving it is worth): ``prize_fill_m * fill**2 +
    #: prize_risk_m * P(full before the end of the second working shift)``.
    prize_fill_m: float = 800.0
    prize_risk_m: float = 1_500.0
    #: Fixed cost of using a truck (metres-equivalent): fewer, fuller trucks.
    truck_cost_m: float = 5_000.0
    #: When PyVRP stops, in iterations (never wall-clock time, so a plan does not depend on the
    #: machine's load, and both policies of the ledger get the same convergence): after
    #: ``no_improvement_per_client`` x candidates iterations without a better solution (at least
    #: ``min_no_improvement``), and at most ``max_iterations_per_client`` x candidates (at least
    #: ``min_iterations_cap``); and its seed.
    no_improvement_per_client: float = 10.0
    min_no_improvement: int = 1_000
    max_iterations_per_client: float = 100.0
    min_iterations_cap: int = 5_000
    seed: int = 0
    #: A wall-clock limit (seconds) instead of the iteration rule: depends on the machine's
    #: load, for solver-quality benches only (``tidstream plan --time-limit``). None: iterations.
    time_limit_s: float | None = None
    #: The fleet (``[[plan.fleet]]`` tables).
    fleet: list[TruckSettings] = field(default_factory=_default_fleet)


@dataclass
class Settings:
    """The whole configuration."""

    nats: NatsSettings = field(default_factory=NatsSettings)
    streams: StreamSettings = field(default_factory=StreamSettings)
    #: Device registry file (CSV or Parquet, see ``docs/REGISTRY.md``).
    registry: str | None = None
    #: Folder of the Parquet dataset written by the export flow.
    export_dir: str = "out/readings"
    #: Bytewax recovery folder (created by ``tidstream run`` when missing).
    recovery_dir: str = "out/recovery"
    #: Bytewax snapshot interval, seconds (the most that is replayed after a crash).
    snapshot_interval_s: int = 5
    #: Most uplinks handed to the Rust core in one call.
    batch_size: int = 1000
    #: Uplinks bigger than this go to dead letters as ``oversized`` (bytes).
    max_message_bytes: int = 65536
    #: Seconds a receive time may be ahead of the broker's clock (and a device-measured
    #: time ahead of the receive time) before the uplink is dead-lettered as
    #: ``implausible_time``; 0 turns these checks off (simulated future data).
    max_future_s: int = 86_400
    #: Rows per Parquet file (files hold a fixed raw-sequence block of this size).
    export_block_size: int = 100_000
    #: Alert thresholds: keys of ``tidstream.alerts.AlertThresholds``, plus a table
    #: ``by_kind.<container kind>`` of overrides (docs/ALERTS.md).
    alerts: dict[str, Any] = field(default_factory=dict)
    #: The twin's Parquet snapshot (one file, atomically replaced; docs/TWIN.md).
    twin_snapshot_path: str = "out/twin/twin.parquet"
    #: Seconds between two twin snapshots while entries change (also written at the
    #: end of the input).
    twin_snapshot_interval_s: float = 60.0
    #: Collection planning and the savings ledger (docs/PLANNING.md).
    plan: PlanSettings = field(default_factory=PlanSettings)
    #: Port of each flow process's ``/metrics`` and ``/healthz`` (docs/OPERATIONS.md):
    #: -1 = off, 0 = an ephemeral port; Bytewax process ``k`` (``-i k``) uses ``metrics_port + k``.
    metrics_port: int = -1
    #: Address the metrics server binds (``0.0.0.0`` to be scraped from other hosts).
    metrics_host: str = "127.0.0.1"
    #: ``/healthz`` fails when a partition with a backlog emitted nothing for this long (seconds).
    health_stall_s: float = 60.0
    #: Logs of the flow processes on stderr: ``"text"`` or ``"json"`` (one object per line).
    log_format: str = "text"
    #: Level of the ``tidstream`` loggers (DEBUG, INFO, WARNING, ERROR).
    log_level: str = "INFO"

    def alert_thresholds(self) -> tuple[Any, dict[str, dict[str, float]]]:
        """(defaults, per-container-kind overrides) for the alert rules."""
        from .alerts import AlertThresholds

        base = {k: v for k, v in self.alerts.items() if k != "by_kind"}
        return AlertThresholds(**base), dict(self.alerts.get("by_kind", {}))

    @property
    def subjects(self) -> Subjects:
        """The subject names derived from the prefix."""
        return Subjects(self.streams.prefix)


@dataclass(frozen=True)
class Subjects:
    """Subject layout (a public API, documented in ``docs/SUBJECTS.md``).

    Every name put into a subject (format, device, commune, kind, reason) goes through
    :func:`tidstream.names.encode_token`: a valid name (DevEUI, INSEE code, ...) is kept
    as is, anything holding ``.``, ``*``, ``>``, spaces or other characters is escaped
    (``=XX``), so a hostile name can never add tokens, become a wildcard or land on
    another subject (an empty name becomes ``=``). The builders never raise.
    """

    prefix: str = "tid"

    @property
    def uplinks(self) -> str:
        """Where uplinks are published: ``tid.up.<format>.<device>``."""
        return f"{self.prefix}.up.*.*"

    def uplink(self, fmt: str, device: str) -> str:
        """Subject of one uplink."""
        return f"{self.prefix}.up.{_tok(fmt)}.{_tok(device)}"

    def raw_partition(self, p: int | str) -> str:
        """Filter of one raw partition: ``tid.raw.<p>.>``."""
        return f"{self.prefix}.raw.{p}.>"

    def reading(self, commune: str, device: str) -> str:
        """``tid.readings.<commune INSEE>.<device>``."""
        return f"{self.prefix}.readings.{_tok(commune)}.{_tok(device)}"

    @property
    def readings(self) -> str:
        """Wildcard of every reading."""
        return f"{self.prefix}.readings.>"

    def dlq(self, reason: str) -> str:
        """``tid.dlq.<reason>``."""
        return f"{self.prefix}.dlq.{_tok(reason)}"

    @property
    def dlqs(self) -> str:
        """Wildcard of every dead letter."""
        return f"{self.prefix}.dlq.>"

    def alert(self, kind: str, commune: str, device: str) -> str:
        """``tid.alerts.<kind>.<commune>.<device>``."""
        return f"{self.prefix}.alerts.{_tok(kind)}.{_tok(commune)}.{_tok(device)}"

    @property
    def alerts(self) -> str:
        """Wildcard of every alert."""
        return f"{self.prefix}.alerts.>"

    @property
    def twin_bucket(self) -> str:
        """The twin's KV bucket: ``<prefix>_twin``."""
        return f"{self.prefix}_twin"

    def twin_key(self, device: str) -> str:
        """Subject of a device's twin entry in the KV bucket (a KV put is a publish on it)."""
        return f"$KV.{self.twin_bucket}.{device}"


def _coerce(value: str, typ: Any, key: str) -> Any:
    try:
        if typ in (int, "int"):
            return int(value)
        if typ in (float, "float"):
            return float(value)
        if typ in (bool, "bool"):
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
    except ValueError:
        raise ConfigError(f"{key}: {value!r} is not a valid {typ}") from None
    return value


def _apply(obj: Any, data: Mapping[str, Any], where: str) -> None:
    names = {f.name: f for f in dataclasses.fields(obj)}
    for k, v in data.items():
        if k not in names:
            raise ConfigError(f"{where}: unknown key {k!r}; known keys: {', '.join(sorted(names))}")
        current = getattr(obj, k)
        if dataclasses.is_dataclass(current):
            if not isinstance(v, Mapping):
                raise ConfigError(f"{where}.{k} must be a table")
            _apply(current, v, f"{where}.{k}")
        elif k == "inputs":
            try:
                setattr(obj, k, [IngestInput(**i) for i in v])
            except TypeError as e:
                raise ConfigError(f"{where}.inputs: {e}") from None
        elif k == "fleet":
            try:
                setattr(obj, k, [TruckSettings(**i) for i in v])
            except TypeError as e:
                raise ConfigError(f"{where}.fleet: {e}") from None
        elif isinstance(current, dict) and k != "alerts":
            if not isinstance(v, Mapping):
                raise ConfigError(f"{where}.{k} must be a table")
            setattr(obj, k, {**current, **v})
        else:
            setattr(obj, k, v)


def load_settings(
    path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    """Build the effective settings: defaults, then the TOML file, then the environment.

    Raises:
        ConfigError: unreadable file, unknown key, or a value of the wrong type.
    """
    env = os.environ if env is None else env
    s = Settings()
    path = path or env.get("TIDSTREAM_CONFIG")
    if path:
        p = Path(path)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file {p} not found") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"config file {p}: {e}") from None
        _apply(s, data, str(p))
    for key, value in env.items():
        if not key.startswith("TIDSTREAM_") or key == "TIDSTREAM_CONFIG":
            continue
        rest = key[len("TIDSTREAM_") :].lower()
        section, _, name = rest.partition("_")
        if section in ("nats", "streams", "plan") and name:
            target = getattr(s, section)
        else:
            target, name = s, rest
        fields = {f.name: f for f in dataclasses.fields(target)}
        if name not in fields:
            continue  # other TIDSTREAM_* variables (e.g. TIDSTREAM_SHARED) are not settings
        setattr(target, name, _coerce(value, fields[name].type, key))
    _validate(s)
    return s


def _validate(s: Settings) -> None:
    if s.nats.data_path not in ("auto", "python", "rust"):
        raise ConfigError(f'[nats] data_path must be "auto", "python" or "rust", got {s.nats.data_path!r}')
    if s.nats.data_path == "rust" and s.nats.tls_hostname:
        raise ConfigError(
            '[nats] tls_hostname is not supported by data_path = "rust" (the Rust client verifies '
            "the host name of the URL): put the certificate's host name in [nats] url, or use "
            'data_path = "python"'
        )
    if s.nats.data_path == "rust" and s.streams.atomic_publish:
        raise ConfigError(
            '[streams] atomic_publish is not implemented by data_path = "rust" (one PubAck per '
            'message there): turn atomic_publish off, or use data_path = "python"'
        )
    if not 1 <= s.streams.partitions <= 1024:
        raise ConfigError(f"streams.partitions must be 1..1024, got {s.streams.partitions}")
    if s.streams.duplicate_window_s < 60:
        raise ConfigError("streams.duplicate_window_s must be at least 60 s (slow restarts)")
    if s.streams.storage not in ("file", "memory"):
        raise ConfigError('streams.storage must be "file" or "memory"')
    if not s.streams.prefix.replace("_", "").replace("-", "").isalnum():
        raise ConfigError("streams.prefix must be one subject token (letters, digits, - or _)")
    for i in s.streams.inputs:
        if i.format not in ("ttn", "chirpstack", "raw"):
            raise ConfigError(f"input {i.subject}: format must be ttn, chirpstack or raw")
        if i.device_token < 1 or i.device_token > i.subject.count("*"):
            raise ConfigError(f"input {i.subject}: device_token must index one of its '*' wildcards")
    try:
        from .alerts import AlertThresholds

        _, by_kind = s.alert_thresholds()
        for overrides in by_kind.values():
            AlertThresholds(**overrides)
    except TypeError as e:
        raise ConfigError(f"[alerts]: {e}") from None
    if s.twin_snapshot_interval_s <= 0:
        raise ConfigError("twin_snapshot_interval_s must be > 0")
    p = s.plan
    if isinstance(p.speed_kmh, str):  # from the environment
        p.speed_kmh = _coerce(p.speed_kmh, float, "TIDSTREAM_PLAN_SPEED_KMH")
    if isinstance(p.speed_kmh, (int, float)) and p.speed_kmh <= 0:
        raise ConfigError("[plan] speed_kmh must be > 0")
    if isinstance(p.time_limit_s, str):  # from the environment
        p.time_limit_s = _coerce(p.time_limit_s, float, "TIDSTREAM_PLAN_TIME_LIMIT_S")
    if p.time_limit_s is not None and p.time_limit_s <= 0:
        raise ConfigError("[plan] time_limit_s must be > 0 (or unset: stop on iterations)")
    if (
        min(
            p.no_improvement_per_client,
            p.min_no_improvement,
            p.max_iterations_per_client,
            p.min_iterations_cap,
        )
        <= 0
    ):
        raise ConfigError(
            "[plan] no_improvement_per_client, min_no_improvement, max_iterations_per_client, min_iterations_cap must be > 0"
        )
    if not (0 < p.shift_h <= 24 and p.circuity >= 1.0 and 0 < p.full_level <= 1.5):
        raise ConfigError("[plan]: shift_h must be in (0, 24], circuity >= 1, full_level in (0, 1.5]")
    if not p.fleet or any(t.count < 1 or t.capacity_l <= 0 or not t.streams for t in p.fleet):
        raise ConfigError("[plan] fleet: every truck kind needs count >= 1, capacity_l > 0 and streams")
    if s.log_format not in ("text", "json"):
        raise ConfigError('log_format must be "text" or "json"')
    if s.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ConfigError("log_level must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
    if not -1 <= s.metrics_port <= 65535 or s.health_stall_s <= 0:
        raise ConfigError("metrics_port must be -1 (off), 0 (ephemeral) or a port; health_stall_s > 0")
    if s.batch_size < 1 or s.export_block_size < 1 or s.snapshot_interval_s < 1:
        raise ConfigError("batch_size, export_block_size and snapshot_interval_s must be >= 1")
