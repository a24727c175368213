"""JetStream I/O done in Rust (``tidstream._core``, async-nats), docs/NATSIO.md: the data
path of :class:`~tidstream.nats.jetstream.JetStreamSource` and
:class:`~tidstream.nats.jetstream.JetStreamSink` when ``[nats] data_path = "rust"``.

:class:`RustConsumer` reads a stream with an ordered pull consumer and returns one columnar
:class:`MessageBatch` per call (one FFI crossing per batch, GIL released while waiting).
:class:`RustPublisher` publishes with ``Nats-Msg-Id`` and waits for every PubAck in Rust.
Both take tidstream's :class:`~tidstream.config.NatsSettings` (URLs, user/password, token,
NKEY seed file, ``.creds`` file, TLS CA/cert/key); no secret ever appears in their errors.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import threading
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from .._core import NatsConsumer, NatsPublisher, PubBatch
from ..config import NatsSettings
from ..exceptions import ConnectorError

__all__ = [
    "RUST_TLS_HOSTNAME_ERROR",
    "MessageBatch",
    "PublishResult",
    "RustConsumer",
    "RustPublisher",
    "SharedRustPublisher",
    "settings_dict",
]

#: Why ``tls_hostname`` and the Rust data path do not go together, and the fix.
RUST_TLS_HOSTNAME_ERROR = (
    '[nats] tls_hostname is not supported by data_path = "rust" (the Rust client verifies the '
    "host name of the URL): put the certificate's host name in [nats] url, or use "
    'data_path = "python"'
)


def settings_dict(cfg: NatsSettings) -> dict[str, Any]:
    """The connection settings the Rust side reads. Raises :class:`ConnectorError` for
    ``tls_hostname``, which the Rust client does not support (it verifies the host of
    the URL)."""
    if cfg.tls_hostname:
        raise ConnectorError(RUST_TLS_HOSTNAME_ERROR)
    return {
        "urls": cfg.servers(),
        "user": cfg.user,
        "password": cfg.password,
        "token": cfg.token,
        "nkey_seed_file": cfg.nkey_seed_file,
        "credentials_file": cfg.credentials_file,
        "tls_ca_file": cfg.tls_ca_file,
        "tls_cert_file": cfg.tls_cert_file,
        "tls_key_file": cfg.tls_key_file,
        "connect_timeout": cfg.connect_timeout,
        "name": cfg.name,
        "inbox_prefix": cfg.inbox_prefix,
    }


_log = logging.getLogger("tidstream.nats")

#: Fast-ingest flow of the sinks (``[nats] fast_publish``): the server acks at least every
#: ``FAST_FLOW`` messages of a batch, and two intervals may be unacknowledged, so a sink
#: write of up to 1,000 messages per stream goes out without waiting (docs/NATSIO.md).
FAST_FLOW = 500


class _EventLogger:
    """Logs a Rust handle's connection events as :func:`tidstream.nats.connect.connect`
    logs nats-py's (same texts, same logger)."""

    def __init__(self, cfg: NatsSettings) -> None:
        self._where = cfg.redacted()["url"]
        self._connected = False  # the first "connected" is the initial connection

    def log(self, events: list[str]) -> None:
        where = self._where
        for e, group in itertools.groupby(events):
            if e.startswith("client error"):  # one per failed reconnect attempt: once per run
                _log.warning("NATS error: %s (x%d)", e, len(list(group)), extra={"nats": where})
                continue
            if e == "connected":
                if self._connected:
                    _log.info("NATS reconnected to %s", where, extra={"nats": where})
                self._connected = True
            elif e == "disconnected":
                self._connected = True
                _log.warning("NATS disconnected from %s; reconnecting", where, extra={"nats": where})
            elif e == "closed":
                _log.debug("NATS connection to %s closed", where, extra={"nats": where})
            else:
                _log.warning("NATS error: %s", e, extra={"nats": where})


def header_dict(lines: bytes) -> dict[str, str]:
    """Header lines (``Key: value`` + CR LF each) as nats-py's header dict (a repeated key
    keeps its last value; invalid UTF-8 replaced)."""
    d: dict[str, str] = {}
    for line in lines.decode("utf-8", "replace").split("\r\n"):
        if line:
            k, _, v = line.partition(": ")
            d[k] = v
    return d


@dataclass(frozen=True)
class MessageBatch:
    """Messages of one :meth:`RustConsumer.next_batch` call, in stream order.

    Row ``i``'s subject is ``subject_data[subject_offsets[i]:subject_offsets[i + 1]]``
    (UTF-8), its payload likewise in ``payload_data`` (Arrow large-binary layout).
    """

    #: Stream sequence of each message (int64).
    seqs: npt.NDArray[np.int64]
    #: Time the server stored each message, ns since the Unix epoch, UTC (int64).
    timestamps_ns: npt.NDArray[np.int64]
    #: Messages pending for the consumer after the last one (0: the batch reached the end
    #: of the stream); None for an empty batch.
    num_pending: int | None
    subject_offsets: npt.NDArray[np.int64]
    subject_data: npt.NDArray[np.uint8]
    payload_offsets: npt.NDArray[np.int64]
    payload_data: npt.NDArray[np.uint8]
    #: Header lines of each message (``Key: value\r\n`` each, keys sorted, the last value
    #: of a repeated key; none when the message had no headers), same layout.
    header_offsets: npt.NDArray[np.int64]
    header_data: npt.NDArray[np.uint8]
    #: Transient consumer errors met while reading (the consumer recreates itself).
    errors: list[str]
    #: Messages of this batch's partition (lane) read ahead and not handed out yet.
    queued: int = 0
    #: The consumer's server-side pending count when the batch was taken (all lanes).
    consumer_pending: int = 0
    #: The lane has nothing queued and the consumer has read everything it had to
    #: (nothing pending) or passed its end time: the partition is at its end.
    at_end: bool = False
    #: Every message of the lane up to this stream sequence has been handed out: where
    #: the partition resumes (past its own last message when the other lanes read on).
    position: int = 0

    def __len__(self) -> int:
        return len(self.seqs)

    def headers(self) -> list[dict[str, str] | None]:
        """The headers of each message as a dict (None when it had none), as nats-py
        gives them (a repeated key keeps its last value)."""
        off = self.header_offsets
        out: list[dict[str, str] | None] = [None] * len(self.seqs)
        for i in np.flatnonzero(np.diff(off)).tolist():
            out[i] = header_dict(self.header_data[off[i] : off[i + 1]].tobytes())
        return out

    def subjects(self) -> pa.LargeStringArray:
        """The subjects as an Arrow array (zero copy)."""
        return pa.Array.from_buffers(
            pa.large_utf8(),
            len(self.seqs),
            [None, pa.py_buffer(self.subject_offsets), pa.py_buffer(self.subject_data)],
        )

    def payloads(self) -> pa.LargeBinaryArray:
        """The payloads as an Arrow array (zero copy)."""
        return pa.Array.from_buffers(
            pa.large_binary(),
            len(self.seqs),
            [None, pa.py_buffer(self.payload_offsets), pa.py_buffer(self.payload_data)],
        )


class RustConsumer:
    """Ordered pull consumer: every message of ``filter_subject`` in ``stream`` with a
    stream sequence above ``after_seq``, in order, exactly once per consumer (it recreates
    itself after a gap or a server restart). Buffers at most one pull request (500
    messages) ahead of the caller. Raises :class:`ConnectorError` when it cannot start, and
    from :meth:`next_batch` when the server refuses its pull requests (a missing permission).

    Without ``filter_subject`` it reads several partitions of the stream with one
    server-side consumer: :meth:`add_lane` adds each (the partition is subject token
    ``part_token``: ``tid.raw.<p>.<fmt>.<device>`` -> 2), each lane starting after its own
    position; the consumer is made by the first :meth:`next_batch` (from the lowest
    position; a lane added later makes it again) and ``next_batch(lane=k)`` hands out lane
    ``k``'s messages only, the others' staying queued (at most 2 batches per lane: reading
    stops until they are taken). ``read_whole``: the stream holds only partition subjects
    (the raw stream), so two lanes or more read it without a filter and drop the other
    partitions' messages (nats-server delivers from an unfiltered consumer several times
    cheaper than from a filtered one: docs/NATSIO.md). ``end_ns``: messages stored
    later are not read (each lane is then at its end)."""

    def __init__(
        self,
        cfg: NatsSettings,
        stream: str,
        filter_subject: str | None = None,
        after_seq: int = 0,
        start_ns: int | None = None,
        *,
        part_token: int | None = None,
        read_whole: bool = False,
        end_ns: int | None = None,
    ) -> None:
        """``start_ns`` (ns since the epoch, UTC): when ``after_seq`` is 0 (a lane
        without a resume point), start at the first message stored at or after that time."""
        try:
            self._c = NatsConsumer(
                settings_dict(cfg),
                stream,
                filter_subject,
                after_seq,
                start_ns,
                part_token=part_token,
                read_whole=read_whole,
                end_ns=end_ns,
            )
        except (ConnectionError, RuntimeError, ValueError, OverflowError) as e:
            raise ConnectorError(str(e)) from None
        self._stream = stream
        self._user = cfg.user or "(the configured credentials)"
        self._events = _EventLogger(cfg)
        self._check(self._c.take_events())

    def add_lane(self, key: str, filter_subject: str, after_seq: int = 0) -> int:
        """Read the partition whose subject token is ``key`` (server filter
        ``filter_subject``) after stream sequence ``after_seq`` (0: from ``start_ns`` or
        the first message); returns its lane index for :meth:`next_batch`."""
        return self._c.add_lane(key, filter_subject, after_seq)

    def close_lane(self, lane: int) -> None:
        """Stop reading lane ``lane``: what it had queued and its later messages are dropped."""
        self._c.close_lane(lane)

    @property
    def initial_pending(self) -> int:
        """Messages the consumer had to deliver when it was created (0: nothing)."""
        return self._c.initial_pending

    @property
    def is_connected(self) -> bool:
        """True while the connection is up."""
        return self._c.is_connected

    @property
    def last_seq(self) -> int:
        """Stream sequence of the last message returned (the resume point)."""
        return self._c.last_seq

    def next_batch(self, max_msgs: int = 1000, timeout_ms: float = 100.0, lane: int = 0) -> MessageBatch:
        """Up to ``max_msgs`` messages of lane ``lane``: what it has queued, then reads
        for up to ``timeout_ms``, returning early at the end of the stream
        (``num_pending == 0``) or when another lane's queue is full. Empty on timeout.
        Raises :class:`ConnectorError` when the consumer cannot be made the first time."""
        try:
            d = self._c.next_batch(max_msgs, timeout_ms, lane)
        except (ConnectionError, RuntimeError, ValueError) as e:
            self._check(self._c.take_events())
            raise ConnectorError(str(e)) from None
        self._check(self._c.take_events())
        return MessageBatch(**d)

    def _check(self, events: list[str]) -> None:
        """Log the connection events as nats-py's are logged; raise :class:`ConnectorError`
        when the server refused this consumer's pull requests. The consumer is created
        with ``$JS.API.CONSUMER.CREATE`` rights, but each pull is a publish to
        ``$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>``: without that right the server
        answers only with an asynchronous permissions error and no message would ever
        arrive, so the flow fails now instead of waiting for ever."""
        self._events.log(events)
        pull = f"$JS.API.CONSUMER.MSG.NEXT.{self._stream}."
        for e in events:
            if pull in e and "permissions violation" in e.lower():
                raise ConnectorError(
                    f"the NATS server refused the pull requests of the consumer of stream "
                    f"{self._stream!r} ({e}): user {self._user} needs publish permission on "
                    f'"$JS.API.CONSUMER.MSG.NEXT.{self._stream}.*" with data_path = "rust" '
                    f"(docs/SECURITY.md; `tidstream.nats.roles` grants it)"
                )


@dataclass(frozen=True)
class PublishResult:
    """Outcome of :meth:`RustPublisher.publish_batch`, one row per message."""

    #: Stream sequence from the PubAck (0 when the message failed); for a message confirmed
    #: by a fast-ingest batch, the batch's last stored sequence (0 when it stored none).
    seqs: npt.NDArray[np.int64]
    #: The id was already in the stream's duplicate window: acknowledged, not stored again.
    duplicate: npt.NDArray[np.bool_]
    #: None when acknowledged, else the reason.
    errors: list[str | None]
    #: Messages confirmed through ADR-50 fast-ingest batches (their ``duplicate`` is False
    #: even if the server dropped one as a duplicate: a fast batch's acks do not say).
    fast: int = 0
    #: Notices for the log (a stream that refused fast ingest: published per message).
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every message acknowledged."""
        return all(e is None for e in self.errors)


class RustPublisher:
    """JetStream publisher: ``Nats-Msg-Id`` on every message, every PubAck awaited (at
    most ``max_inflight`` outstanding), GIL released meanwhile.

    ``fast_flow`` > 0 (``[nats] fast_publish``): :meth:`publish` of a whole batch sends
    each stream's messages as ADR-50 fast-ingest batches (nats-server 2.14+, stream
    setting ``allow_batched``), the server acking every ``fast_flow`` messages and each
    batch's last message: every message is still confirmed stored (or dropped as a
    duplicate of its ``Nats-Msg-Id``) before the call returns; what a batch did not
    confirm is reported failed. Retries (``rows`` given) go per message. A stream
    without ``allow_batched`` gets per-message publishing and one warning."""

    def __init__(self, cfg: NatsSettings, ack_timeout_s: float = 5.0, fast_flow: int = 0) -> None:
        try:
            self._p = NatsPublisher(settings_dict(cfg), ack_timeout_s * 1000.0, fast_flow)
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise ConnectorError(str(e)) from None
        self._events = _EventLogger(cfg)
        self._events.log(self._p.take_events())

    def log_events(self) -> None:
        """Log the connection events since the last call (as nats-py's are logged)."""
        self._events.log(self._p.take_events())

    def publish_batch(
        self, subjects: list[str], payloads: list[bytes], msg_ids: list[str], max_inflight: int = 4096
    ) -> PublishResult:
        """Publish and wait for all acks; an empty id means no ``Nats-Msg-Id`` header."""
        try:
            d = self._p.publish_batch(subjects, payloads, msg_ids, max_inflight)
        except RuntimeError as e:
            raise ConnectorError(str(e)) from None
        return PublishResult(**d)

    def publish(
        self, batch: PubBatch, rows: npt.NDArray[np.int64] | None = None, max_inflight: int = 4096
    ) -> PublishResult:
        """Publish messages ``rows`` of ``batch`` (all when None) with their
        ``Nats-Msg-Id`` and headers, and wait for every ack (one call, GIL released).
        Result row ``k`` is the ``k``-th message published."""
        try:
            d = self._p.publish_pubbatch(batch, rows, max_inflight)
        except RuntimeError as e:
            raise ConnectorError(str(e)) from None
        finally:
            self.log_events()
        for note in d["notes"]:
            _log.warning("%s", note)
        return PublishResult(**d)

    @property
    def is_connected(self) -> bool:
        """True while the connection is up."""
        return self._p.is_connected

    @property
    def connects(self) -> int:
        """Connections made so far (1 + reconnects)."""
        return self._p.connects


class SharedRustPublisher:
    """The process's :class:`RustPublisher` for one set of settings (one connection and
    I/O thread shared by every sink partition), reference-counted: :meth:`acquire` /
    :meth:`release` in pairs; the last release closes it."""

    _lock: ClassVar[threading.Lock] = threading.Lock()
    _shared: ClassVar[dict[str, tuple[RustPublisher, int]]] = {}

    @classmethod
    def acquire(cls, cfg: NatsSettings, ack_timeout_s: float, fast_flow: int = 0) -> RustPublisher:
        key = repr(sorted(dataclasses.asdict(cfg).items())) + f"|{ack_timeout_s}|{fast_flow}"
        with cls._lock:
            hit = cls._shared.get(key)
            if hit is not None:
                cls._shared[key] = (hit[0], hit[1] + 1)
                return hit[0]
            pub = RustPublisher(cfg, ack_timeout_s, fast_flow)
            cls._shared[key] = (pub, 1)
            _log.info(
                "sink publisher started, Rust data path, %s",
                f"fast-ingest batches (an ack every {fast_flow} messages)"
                if fast_flow
                else "a PubAck per message",
            )
            return pub

    @classmethod
    def release(cls, pub: RustPublisher) -> None:
        with cls._lock:
            for key, (p, users) in list(cls._shared.items()):
                if p is pub:
                    if users > 1:
                        cls._shared[key] = (p, users - 1)
                    else:
                        del cls._shared[key]
                    return
