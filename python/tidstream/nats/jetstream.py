"""Bytewax source and sink for NATS JetStream.

:class:`JetStreamSource` reads a stream split into fixed partitions (subject filters
``<prefix>.raw.<p>.>``). **Partitions are the unit of parallelism.** Each partition
snapshots the stream sequence of the last message it emitted and resumes after it, so
with Bytewax recovery the input is replayed from the last committed epoch: exactly-once
*state*, at-least-once *output*.

:class:`JetStreamSink` publishes with a deterministic ``Nats-Msg-Id`` per message and
waits for every PubAck (in atomic mode: every atomic batch's PubAck) before
``write_batch`` returns; a replay re-publishes the same
ids and JetStream drops them (within the stream's duplicate window). Together:
effectively-once outputs. Any publish error raises, so the dataflow stops and resumes
instead of losing data.

Two data paths, chosen by ``NatsSettings.data_path`` (docs/NATSIO.md): ``"python"``
(nats-py: :class:`_SourcePartition`, :class:`_SinkPartition`) and ``"rust"`` (async-nats
in ``tidstream._core``: :class:`_RustSourcePartition`, :class:`_RustSinkPartition`), with
the same items, resume state, end of input, retries, metrics and health probes; the
default ``"auto"`` is Rust unless an option only nats-py implements is set
(:meth:`~tidstream.config.NatsSettings.rust_data_path`).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
import threading
import time
from abc import abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, NamedTuple

import numpy as np
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from bytewax.outputs import FixedPartitionedSink, StatefulSinkPartition
from nats import errors as nats_errors
from nats.js.api import ConsumerConfig, DeliverPolicy

from .. import metrics
from .._core import PubBatch
from ..config import NatsSettings
from ..exceptions import ConnectorError
from .batch import BatchOutcome, BatchPublisher, as_pub_batch
from .connect import LoopThread, SharedConnection, connect

__all__ = ["JetStreamSink", "JetStreamSource", "PubBatch", "Publish", "RawBatch", "RawMsg"]

log = logging.getLogger("tidstream.source")


class RawMsg(NamedTuple):
    """One message read from a stream partition."""

    part: str
    #: Stream sequence (unique, increasing within the stream).
    seq: int
    subject: str
    data: bytes
    #: Server time the stream stored it, ns since the epoch (UTC).
    stored_ns: int
    #: Headers (None when the message had none).
    headers: dict[str, str] | None


class RawBatch:
    """Messages ``0..n-1`` of one Rust consumer batch of a partition, columnar (the item of
    a ``columnar`` :class:`JetStreamSource` on the Rust data path): the ingest step reads
    the columns in Rust, no Python object per message. :meth:`msg` gives message ``k``
    as the :class:`RawMsg` the per-message source would have emitted."""

    __slots__ = ("batch", "n", "part")

    def __init__(self, part: str, batch: Any, n: int) -> None:
        #: partition id
        self.part = part
        #: the consumer's :class:`~tidstream.nats.rustio.MessageBatch`
        self.batch = batch
        self.n = n

    def __len__(self) -> int:
        return self.n

    def msg(self, k: int) -> RawMsg:
        """Message ``k`` as a :class:`RawMsg`."""
        from .rustio import header_dict

        b = self.batch
        so, po, ho = b.subject_offsets, b.payload_offsets, b.header_offsets
        hdr = b.header_data[ho[k] : ho[k + 1]].tobytes()
        return RawMsg(
            self.part,
            int(b.seqs[k]),
            b.subject_data[so[k] : so[k + 1]].tobytes().decode(),
            b.payload_data[po[k] : po[k + 1]].tobytes(),
            int(b.timestamps_ns[k]),
            header_dict(hdr) if hdr else None,
        )

    def msgs(self) -> list[RawMsg]:
        """Every message as a :class:`RawMsg`, in order."""
        return [self.msg(k) for k in range(self.n)]

    @classmethod
    def of_msgs(cls, part: str, msgs: Sequence[RawMsg], n: int | None = None) -> RawBatch:
        """The inverse of :meth:`msgs`: ``msgs`` laid out as the Rust consumer hands them
        over (header lines sorted by key), the first ``n`` of them (all when None) handed
        on. For tests and benchmarks that feed the step without a server."""
        from .rustio import MessageBatch

        def layout(items: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
            off = np.cumsum([0] + [len(x) for x in items], dtype=np.int64)
            return off, np.frombuffer(b"".join(items), dtype=np.uint8).copy()

        so, sd = layout([m.subject.encode() for m in msgs])
        po, pd = layout([m.data for m in msgs])
        ho, hd = layout(
            ["".join(f"{k}: {v}\r\n" for k, v in sorted((m.headers or {}).items())).encode() for m in msgs]
        )
        seqs = np.array([m.seq for m in msgs], dtype=np.int64)
        ts = np.array([m.stored_ns for m in msgs], dtype=np.int64)
        batch = MessageBatch(seqs, ts, 0, so, sd, po, pd, ho, hd, [])
        return cls(part, batch, len(msgs) if n is None else n)


class Publish(NamedTuple):
    """One message for :class:`JetStreamSink`."""

    subject: str
    data: bytes
    #: Deterministic id; JetStream drops a second message with the same id.
    msg_id: str
    headers: dict[str, str] | None = None


def _ack_fields(msg: Any) -> tuple[int, int, int]:
    """(stream sequence, stored time ns, pending) from the JetStream reply subject.

    ``$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>`` (v1) or the v2
    form with domain and account hash (12+ tokens). Splitting it directly is ~10x cheaper
    than nats-py's ``msg.metadata``, which is the fallback for anything unexpected.
    """
    t = (msg.reply or "").split(".")
    try:
        if len(t) == 9:
            return int(t[5]), int(t[7]), int(t[8])
        if len(t) >= 12:
            return int(t[7]), int(t[9]), int(t[10])
    except ValueError:
        pass
    md = msg.metadata
    return md.sequence.stream, int(md.timestamp.timestamp() * 1e9), md.num_pending


#: Idle heartbeat of the ordered consumers (s). A heartbeat while the server waits for a
#: flow-control answer carries a "stalled" header that nats-py answers at once, letting
#: one more window in whatever the flow holds: a flow that takes nothing still receives
#: ~11,000 uplinks per interval (measured: ~15,000 per 5 s with nats-py's default 5 s,
#: 11,500 per 20 s with 20 s). nats-py resets a consumer silent for 2 intervals.
_HEARTBEAT_S = 20.0


class _SourceBase(StatefulSourcePartition[RawMsg, int]):
    """What both data paths' source partitions share: the partition's identity, its
    resume state (the sequence of the last *emitted* message: resume starts after it)
    and its metrics. A subclass reads the messages."""

    def __init__(
        self, stream: str, part: str, resume_seq: int | None, batch_size: int, stop_at_end: bool
    ) -> None:
        self._part = part
        self._stream = stream
        self._last = resume_seq or 0
        self._batch = batch_size
        self._stop_at_end = stop_at_end
        self._progress = time.monotonic()
        self._m_lag = metrics.SOURCE_LAG.labels(stream, part)
        self._m_msgs = metrics.SOURCE_MESSAGES.labels(stream, part)
        self._m_batch = metrics.BATCH_SIZE.labels(stream)

    def _emitted(self, last_seq: int, n: int) -> None:
        """Book ``n`` messages handed to the flow, the last with sequence ``last_seq``."""
        self._last = last_seq
        self._progress = time.monotonic()
        self._m_msgs.inc(n)
        self._m_batch.observe(n)

    def snapshot(self) -> int:
        return self._last


class _SourcePartition(_SourceBase):
    def __init__(
        self,
        cfg: NatsSettings,
        stream: str,
        part: str,
        filter_subject: str,
        resume_seq: int | None,
        batch_size: int,
        stop_at_end: bool,
        high_water: int,
        start_ns: int | None = None,
        end_ns: int | None = None,
    ) -> None:
        super().__init__(stream, part, resume_seq, batch_size, stop_at_end)
        self._start_ns = start_ns
        self._end_ns = end_ns
        self._high = high_water
        self._q: collections.deque[RawMsg] = collections.deque()
        self._at_end = False
        self._error: BaseException | None = None
        # Server-side pending count of the last delivered message (lag behind the head).
        self._pending = 0
        # Its own loop thread and connection (the sinks share one; see SharedConnection).
        self._loop = LoopThread(f"tidstream-src-{part}")
        try:
            self._nc, self._sub, empty = self._loop.run(
                self._start(cfg, stream, filter_subject, resume_seq), timeout=60
            )
        except BaseException:
            self._loop.stop()
            raise
        # The pump may already have taken the last message (num_pending == 0).
        self._at_end = self._at_end or empty
        metrics.register_source(stream, part, self._probe)
        log.info(
            "source partition %s/%s started (resume after seq %s, %d pending)",
            stream,
            part,
            resume_seq or 0,
            self._lag(),
            extra={"stream": stream, "partition": part, "resume_seq": resume_seq or 0},
        )

    def _lag(self) -> int:
        return self._pending + len(self._q)

    def _probe(self) -> metrics.HealthProbe:
        return metrics.HealthProbe(bool(self._nc.is_connected), self._lag(), self._progress)

    async def _start(self, cfg: NatsSettings, stream: str, subj: str, resume: int | None) -> Any:
        nc = await connect(cfg)
        js = nc.jetstream()
        if resume:
            cc = ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=resume + 1)
        elif self._start_ns is not None:
            start = datetime.fromtimestamp(self._start_ns / 1e9, timezone.utc)
            cc = ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_TIME,
                opt_start_time=start.isoformat().replace("+00:00", "Z"),
            )
        else:
            cc = ConsumerConfig(deliver_policy=DeliverPolicy.ALL)

        sub = await js.subscribe(
            subj,
            stream=stream,
            ordered_consumer=True,
            config=cc,
            idle_heartbeat=_HEARTBEAT_S,
            # No callback: a callback subscription of nats-py answers the server's
            # flow-control requests as soon as a message is *read from the socket*, so
            # the server never slows down and a backlog ends up buffered in this process
            # (measured: a 200,000-uplink backlog, 235 MiB, delivered whole within 25 s
            # to an ingest flow that took 60 s to drain it). Without one, nats-py answers once the messages before the
            # request have left its queue: :meth:`_pump` takes them only while the local
            # queue is below ``high_water``, so the server holds the rest (RELIABILITY.md).
            # No count limit (a limit makes nats-py drop messages as a slow consumer);
            # the byte limit stays far above the flow-control window.
            pending_msgs_limit=0,
            pending_bytes_limit=256 * 1024 * 1024,
        )
        self._pump_task = asyncio.ensure_future(self._pump(nc, sub))
        info = await sub.consumer_info()
        if not self._q:
            self._pending = info.num_pending
        # Empty only if the server holds nothing for us *and* has delivered nothing yet:
        # messages already pushed may still wait in nats-py's queue for the pump (which
        # marks the end when it sees the one with num_pending == 0). Taking num_pending
        # alone ended stop-at-end runs early whenever the queue was briefly empty.
        return nc, sub, info.num_pending == 0 and info.delivered.consumer_seq == 0

    def _on_msg(self, msg: Any) -> None:
        seq, ts_ns, pending = _ack_fields(msg)
        if self._end_ns is not None and ts_ns > self._end_ns:
            self._at_end = True  # stored in order: nothing later belongs to the window
            return
        self._q.append(RawMsg(self._part, seq, msg.subject, msg.data, ts_ns, msg.headers))
        self._pending = pending
        if pending == 0:
            self._at_end = True

    async def _pump(self, nc: Any, sub: Any) -> None:
        """Move messages from nats-py's subscription queue to the local queue, holding
        back while the local queue is above ``high_water`` (Bytewax has not drained it):
        the server's flow-control request stays unanswered and it stops sending
        (back-pressure; the backlog stays in JetStream)."""
        # nats-py's own queue and flow-control state (on the core subscription under the
        # JetStream one), read as its callback loop and its flow-control task do; nats-py
        # answers a due request only every 250 ms for a subscription without a callback:
        # answered here as soon as the messages before it are taken.
        core = getattr(sub, "_sub", None)
        q = getattr(core, "_pending_queue", None)
        jsi = getattr(core, "_jsi", None)
        fctask = getattr(jsi, "_fctask", None)
        if q is not None and hasattr(jsi, "_fcr") and fctask is not None:
            # nats-py's periodic answer compares with the (always empty) queue of the
            # JetStream wrapper, so it answers every request within 250 ms whatever this
            # process holds: the server would keep sending ~3 MB/s into a stalled flow.
            fctask.cancel()
        try:
            if q is None or not hasattr(jsi, "_fcr"):  # pragma: no cover - another nats-py layout
                while True:
                    while len(self._q) > self._high:
                        await asyncio.sleep(0.002)
                    self._on_msg(await sub.next_msg(timeout=None))
            while True:
                while len(self._q) > self._high:
                    await asyncio.sleep(0.002)
                msg = await q.get()
                core._pending_size -= len(msg.data)
                q.task_done()
                self._on_msg(msg)
                if jsi._fcr and jsi._fciseq - q.qsize() >= jsi._fcd:
                    reply, jsi._fcr, jsi._fcd = jsi._fcr, None, 0
                    await nc.publish(reply)
        except (asyncio.CancelledError, nats_errors.ConnectionClosedError):
            return

    def next_batch(self) -> Iterable[RawMsg]:
        out: list[RawMsg] = []
        q = self._q
        while q and len(out) < self._batch:
            out.append(q.popleft())
        if out:
            self._emitted(out[-1].seq, len(out))
        elif self._stop_at_end and self._at_end:
            self._m_lag.set(self._lag())
            raise StopIteration
        self._m_lag.set(self._lag())
        return out

    def next_awake(self) -> datetime | None:
        # Poll again soon when idle; Bytewax itself waits 1 ms after an empty batch.
        if not self._q:
            return datetime.now(timezone.utc) + timedelta(milliseconds=5)
        return None

    def close(self) -> None:
        metrics.unregister(source=(self._stream, self._part))
        try:
            self._loop.run(self._nc.close(), timeout=10)
        except Exception:
            pass
        self._loop.stop()


def _part_token(template: str) -> int | None:
    """Index of the subject token that names the partition in ``template``
    (``tid.raw.{}.>`` -> 2), or None when no whole token is the partition."""
    tokens = template.split(".")
    return tokens.index("{}") if tokens.count("{}") == 1 and template.count("{}") == 1 else None


class _Closed:
    """Stands for the consumer of a :class:`_RustReader` whose partitions all closed."""

    is_connected = False
    initial_pending = 0


_CLOSED: Any = _Closed()


class _RustReader:
    """The one :class:`~tidstream.nats.rustio.RustConsumer` through which the Rust data
    path reads the partitions of one source step that one worker (thread) builds: one
    server-side ordered consumer instead of one per partition, the messages split by
    partition in Rust. With two partitions or more it reads the stream **without a
    filter** (the raw stream holds only ``tid.raw.<p>.<fmt>.<device>`` subjects; other
    partitions' messages are dropped in Rust): nats-server delivers from an unfiltered
    consumer for ~1.7 µs of CPU per message against ~11 for eight partition-filtered ones
    (docs/NATSIO.md). Each partition is a lane with its own position; the reader lives
    while one of them is open (see :meth:`JetStreamSource.build_part`)."""

    def __init__(self, src: JetStreamSource, token: int | None) -> None:
        from .rustio import RustConsumer

        self.consumer = RustConsumer(
            src.nats,
            src.stream,
            part_token=token,
            # A partition token: the stream holds partitions only (tid.raw.<p>.<fmt>.<device>).
            read_whole=token is not None,
            start_ns=src.start_ns,
            end_ns=src.end_ns,
        )
        self.open: dict[int, str] = {}  # lane -> partition
        #: last time one of its partitions emitted (for the health probes)
        self.progress = time.monotonic()
        self._started = False

    def add(self, part: str, filter_subject: str, resume_seq: int | None) -> int:
        lane = self.consumer.add_lane(part, filter_subject, resume_seq or 0)
        self.open[lane] = part
        return lane

    def next_batch(self, lane: int, max_msgs: int, stream: str) -> Any:
        """Lane ``lane``'s next batch without waiting (what is read ahead)."""
        b = self.consumer.next_batch(max_msgs, 0.0, lane)
        if not self._started:
            self._started = True
            log.info(
                "source %s: one consumer for partitions %s, Rust data path (%d pending)",
                stream,
                ",".join(self.open.values()),
                self.consumer.initial_pending,
                extra={"stream": stream, "partitions": list(self.open.values())},
            )
        return b

    def close(self, lane: int) -> bool:
        """Close lane ``lane``; True when no lane is left open."""
        self.open.pop(lane, None)
        self.consumer.close_lane(lane)
        if self.open:
            return False
        self.consumer = _CLOSED  # drops the consumer and its connection (in its own runtime)
        return True


class _RustSourcePartition(_SourceBase):
    """The same partition read by the Rust consumer (``[nats] data_path = "rust"``): same
    items, resume state, end of input, metrics and health probe as
    :class:`_SourcePartition`, but one lane of the worker's shared :class:`_RustReader`
    (one server-side consumer for all the partitions it reads). Back-pressure is the
    consumer's: one pull request of 500 messages per partition read ahead in Rust and at
    most two batches queued per partition; the rest stays in JetStream until Bytewax asks
    for more (``high_water`` is not used).

    Resume state: the partition's position, the stream sequence up to which every
    message of *this* partition was emitted (its last emitted one, or further when the
    shared consumer read past it and nothing of this partition was in between), so a
    restart with the partitions on other processes neither loses nor repeats anything."""

    def __init__(
        self,
        reader: _RustReader,
        release: Any,
        stream: str,
        part: str,
        filter_subject: str,
        resume_seq: int | None,
        batch_size: int,
        stop_at_end: bool,
        columnar: bool = False,
    ) -> None:
        super().__init__(stream, part, resume_seq, batch_size, stop_at_end)
        self._reader = reader
        self._release = release
        self._lane = reader.add(part, filter_subject, resume_seq)
        self._columnar = columnar
        # Server-side pending count of the shared consumer, and this lane's read-ahead.
        self._pending = 0
        self._queued = 0
        self._at_end = False
        self._idle = False
        self._errors = 0
        metrics.register_source(stream, part, self._probe)
        log.info(
            "source partition %s/%s started, Rust data path (resume after seq %s)",
            stream,
            part,
            resume_seq or 0,
            extra={"stream": stream, "partition": part, "resume_seq": resume_seq or 0},
        )

    def _lag(self) -> int:
        # The consumer's pending count covers all its partitions: each gets its share.
        lanes = max(len(self._reader.open), 1)
        return self._queued + -(-self._pending // lanes)

    def _probe(self) -> metrics.HealthProbe:
        # Progress: this partition's, or (nothing of it queued) the shared consumer's.
        progress = self._progress if self._queued else max(self._progress, self._reader.progress)
        return metrics.HealthProbe(self._reader.consumer.is_connected, self._lag(), progress)

    def next_batch(self) -> Iterable[RawMsg | RawBatch]:
        if self._stop_at_end and self._at_end:
            self._m_lag.set(self._lag())
            raise StopIteration
        b = self._reader.next_batch(self._lane, self._batch, self._stream)
        for e in b.errors:  # masked in Rust; the ordered consumer recreates itself
            self._errors += 1
            log.warning("source partition %s/%s: %s", self._stream, self._part, e, extra={"transient": True})
        n = len(b)
        self._idle = n == 0
        self._pending = b.consumer_pending
        self._queued = b.queued
        self._at_end = b.at_end
        self._m_lag.set(self._lag())
        if n == 0:
            self._last = max(self._last, b.position)
            return []
        self._emitted(int(b.seqs[n - 1]), n)
        self._last = max(self._last, b.position)
        self._reader.progress = self._progress
        if self._columnar:
            return [RawBatch(self._part, b, n)]
        return list(
            map(
                RawMsg,
                itertools.repeat(self._part, n),
                b.seqs.tolist(),
                b.subjects().to_pylist(),
                b.payloads().to_pylist(),
                b.timestamps_ns.tolist(),
                b.headers(),
            )
        )

    def next_awake(self) -> datetime | None:
        # Poll again soon when idle (as the nats-py partition does).
        if self._idle:
            return datetime.now(timezone.utc) + timedelta(milliseconds=5)
        return None

    def close(self) -> None:
        metrics.unregister(source=(self._stream, self._part))
        self._release(self._reader, self._lane)


@dataclass
class JetStreamSource(FixedPartitionedSource[RawMsg, int]):
    """Read ``stream`` partition by partition: partition ``p`` is the subject filter
    ``filter_template.format(p)``.

    Args:
        nats: connection settings.
        stream: stream name.
        partitions: partition ids (e.g. ``["0", ..., "7"]``).
        filter_template: e.g. ``"tid.raw.{}.>"``. When a whole subject token is the
            partition (``{}``), the Rust data path reads a worker's partitions through
            one consumer on the whole stream: the stream must hold only the partitions'
            subjects (its other messages would be read and dropped).
        batch_size: most messages per ``next_batch``.
        stop_at_end: finish once each partition has delivered everything it held when
            it started (batch runs, tests); otherwise run for ever.
    """

    nats: NatsSettings
    stream: str
    partitions: Sequence[str]
    filter_template: str
    batch_size: int = 1000
    stop_at_end: bool = False
    #: Messages buffered per partition before the consumer is held back (flow control).
    high_water: int = 4_000
    #: Only messages stored at or after this time (ns since the epoch, UTC).
    start_ns: int | None = None
    #: Only messages stored up to this time; the partition ends after it.
    end_ns: int | None = None
    #: Partition -> sequence to start after when the partition has no snapshot yet (a
    #: recovery store reset with positions rebuilt from the output: tidstream.recovery).
    start_after: Mapping[str, int] | None = None
    #: On the Rust data path, emit one :class:`RawBatch` per consumer batch instead of a
    #: :class:`RawMsg` per message (the ingest step reads it in Rust); the nats-py path
    #: always emits :class:`RawMsg`.
    columnar: bool = False

    def list_parts(self) -> list[str]:
        return list(self.partitions)

    #: The Rust data path's shared readers of this source: (step, worker thread) -> reader
    #: (one per partition when the template names no partition token).
    _readers: dict[tuple[str, int, str], _RustReader] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def build_part(
        self, step_id: str, for_part: str, resume_state: int | None
    ) -> _SourcePartition | _RustSourcePartition:
        resume = resume_state if resume_state is not None else (self.start_after or {}).get(for_part)
        if self.nats.rust_data_path():
            # Bytewax builds all of a worker's partitions on its own thread before the
            # first next_batch (bytewax 0.21 partitioned_input); one added later makes the
            # shared consumer again (from the lowest position still needed).
            token = _part_token(self.filter_template) if self.nats.shared_source else None
            key = (step_id, threading.get_ident(), "" if token is not None else for_part)
            with _READERS_LOCK:
                reader = self._readers.get(key)
                if reader is None:
                    reader = self._readers[key] = _RustReader(self, token)
            return _RustSourcePartition(
                reader,
                self._release,
                self.stream,
                for_part,
                self.filter_template.format(for_part),
                resume,
                self.batch_size,
                self.stop_at_end,
                self.columnar,
            )
        return _SourcePartition(
            self.nats,
            self.stream,
            for_part,
            self.filter_template.format(for_part),
            resume,
            self.batch_size,
            self.stop_at_end,
            self.high_water,
            self.start_ns,
            self.end_ns,
        )

    def _release(self, reader: _RustReader, lane: int) -> None:
        """A partition of ``reader`` closed: drop the reader (its consumer and connection)
        with its last partition."""
        with _READERS_LOCK:
            if reader.close(lane):
                for k, r in list(self._readers.items()):
                    if r is reader:
                        del self._readers[k]


#: Guards every source's ``_readers`` (build_part and close may run on several workers).
_READERS_LOCK = threading.Lock()


def _retry_indices(subjects: Sequence[str], failed: Sequence[int]) -> list[int]:
    """The indexes of ``failed`` (into messages with these ``subjects``) to publish again,
    in order, except KV puts (``$KV.`` subjects) superseded by a later acknowledged put
    of the same key."""
    bad = set(failed)
    acked_after: dict[str, int] = {}  # subject -> index of its last acknowledged KV put
    for i, s in enumerate(subjects):
        if i not in bad and s.startswith("$KV."):
            acked_after[s] = i
    return [i for i in sorted(bad) if acked_after.get(subjects[i], -1) < i]


def _retry_list(sent: list[Publish], failed: list[int]) -> list[Publish]:
    """The messages of ``sent`` to publish again (see :func:`_retry_indices`)."""
    return [sent[i] for i in _retry_indices([p.subject for p in sent], failed)]


class _SinkBase(StatefulSinkPartition[Any, None]):
    """What both data paths' sink partitions share: the retry loop and the counters.
    A subclass makes one publish attempt (:meth:`_attempt`) and reports the connection
    (:meth:`_wait_connected`, :meth:`_connects`)."""

    def __init__(self, part: str, ack_timeout: float, retries: int, pipeline: bool = False) -> None:
        self._timeout = ack_timeout
        self._retries = retries
        #: one write in flight on a thread of this partition while the worker goes on
        #: (see :class:`JetStreamSink`); None: every write waits for its acks.
        self._executor = (
            ThreadPoolExecutor(1, thread_name_prefix=f"tidstream-sink-{part}") if pipeline else None
        )
        self._inflight: Future[None] | None = None
        self.published = 0
        self.duplicates = 0
        #: messages acknowledged through atomic batches (one PubAck per batch)
        self.atomic_published = 0
        #: messages confirmed through fast-ingest batches (Rust sink, ``[nats] fast_publish``)
        self.fast_published = 0
        self._health_name = f"sink/{part}"

    @abstractmethod
    def _attempt(self, pb: PubBatch, rows: list[int] | None) -> BatchOutcome:
        """Publish messages ``rows`` of ``pb`` (all when None) once and wait for the acks."""

    @abstractmethod
    def _wait_connected(self) -> bool:
        """Wait (for ever) while the connection is down; True when it was down."""

    @abstractmethod
    def _connects(self) -> int:
        """A counter that changes when the connection is re-established."""

    def _publish_all(self, pb: PubBatch) -> tuple[int, int, int, int]:
        n = len(pb)
        rows: list[int] | None = None  # None: every message
        dup = atomic = fast = 0
        attempt = 0
        while True:
            self._wait_connected()
            connects = self._connects()
            res = self._attempt(pb, rows)
            dup += res.duplicates
            atomic += res.atomic
            fast += res.fast
            if not res.failed:
                return n, dup, atomic, fast
            # Same Nats-Msg-Id: a retry can never duplicate. A KV put (last value wins)
            # whose key got a later value acknowledged in this attempt is superseded:
            # retrying it after that value would roll the key back.
            rows = _retry_indices([pb.subject(i) for i in range(n)], res.failed)
            if self._wait_connected() or self._connects() != connects:
                continue  # lost in an outage: again at once, same ids, the attempt not counted
            if attempt == self._retries:
                detail = res.errors[0] if res.errors else f"no PubAck within {self._timeout:.0f} s"
                raise ConnectorError(
                    f"{len(res.failed)} of {n} messages not acknowledged by JetStream "
                    f"after {self._retries + 1} attempts ({detail}); stopping so that "
                    "recovery replays them"
                )
            log.warning(
                "%d of %d messages not acknowledged (attempt %d of %d), retrying",
                len(res.failed),
                n,
                attempt + 1,
                self._retries + 1,
                extra={"failed": len(res.failed), "attempt": attempt + 1},
            )
            time.sleep(min(2.0**attempt, 10.0))
            attempt += 1

    def write_batch(self, items: list[Any]) -> None:
        """Publish ``items`` (:class:`PubBatch` and :class:`Publish` items, in order).
        Pipelined: wait for the previous write (raising what it raised), hand this one to
        the partition's thread and return; otherwise publish and wait."""
        if not items:
            return
        pb = as_pub_batch(items)
        if self._executor is None:
            self._write(pb)
            return
        self._settle()
        self._inflight = self._executor.submit(self._write, pb)

    def _settle(self) -> None:
        """Wait until the write in flight (if any) is confirmed; raise what it raised."""
        f, self._inflight = self._inflight, None
        if f is not None:
            f.result()

    def close(self) -> None:
        """Wait for the write in flight (raising its error), then stop the partition's
        thread and release the connection (:meth:`_release`), also when that write failed."""
        try:
            self._settle()
        finally:
            if self._executor is not None:
                self._executor.shutdown(wait=True)
            metrics.unregister(connection=self._health_name)
            self._release()

    @abstractmethod
    def _release(self) -> None:
        """Give back the publisher and its connection."""

    def _write(self, pb: PubBatch) -> None:
        t0 = time.perf_counter()
        n, dup, atomic, fast = self._publish_all(pb)
        self.atomic_published += atomic
        self.fast_published += fast
        metrics.PUBLISH_SECONDS.observe(time.perf_counter() - t0)
        metrics.PUBLISHED.inc(n)
        if dup:
            metrics.PUBLISH_DUPLICATES.inc(dup)
        self.published += n
        self.duplicates += dup

    def snapshot(self) -> None:
        # Bytewax takes the sinks' snapshots at the epoch's close and commits the epoch (the
        # sources' resume points) only once every snapshot is written: a write still in
        # flight must be confirmed first, or a crash could lose it.
        self._settle()
        return None


def _log_outage() -> None:
    log.warning("NATS connection down: publishing waits until it is back", extra={"waiting": True})


class _SinkPartition(_SinkBase):
    """A sink partition on nats-py (``[nats] data_path = "python"``): the process's
    shared ``"sink"`` connection, its own :class:`BatchPublisher` (reply inbox)."""

    def __init__(
        self,
        cfg: NatsSettings,
        part: str,
        ack_timeout: float,
        retries: int,
        atomic: bool,
        pipeline: bool = False,
    ) -> None:
        super().__init__(part, ack_timeout, retries, pipeline)
        self._atomic = atomic
        self._conn = SharedConnection.acquire(cfg, "sink")
        try:
            self._pub = self._conn.run(self._start(), timeout=60)
        except BaseException:
            self._conn.release()
            raise
        metrics.register_connection(self._health_name, lambda: bool(self._conn.nc.is_connected))

    async def _start(self) -> BatchPublisher:
        pub = BatchPublisher(self._conn.nc, atomic=self._atomic)
        await pub.start()
        return pub

    async def _connected(self) -> bool:
        """Wait (for ever) while the connection is down; True when it was down. An
        outage must pause the flow, not use up its retries: those are for a server that
        answers but does not acknowledge."""
        nc = self._conn.nc
        if nc.is_connected or nc.is_closed:
            return False
        _log_outage()
        while not nc.is_connected and not nc.is_closed:
            await asyncio.sleep(0.25)
        return True

    def _wait_connected(self) -> bool:
        nc = self._conn.nc
        if nc.is_connected or nc.is_closed:  # the usual case, without a hop to the loop
            return False
        return self._conn.run(self._connected())

    def _connects(self) -> int:
        return int(self._conn.nc.stats["reconnects"])

    def _attempt(self, pb: PubBatch, rows: list[int] | None) -> BatchOutcome:
        return self._conn.run(self._pub.publish(pb, self._timeout, rows))

    def _release(self) -> None:
        # Best effort: stopping the publisher's inbox must not hide the error (if any)
        # that close() is raising, nor keep the shared connection from being released.
        with contextlib.suppress(Exception):
            self._conn.run(self._pub.stop(), timeout=10)
        self._conn.release()


class _RustSinkPartition(_SinkBase):
    """A sink partition on the Rust publisher (``[nats] data_path = "rust"``): the
    process's one :class:`~tidstream.nats.rustio.RustPublisher` (connection and I/O
    thread shared by the partitions); each message confirmed in Rust (its PubAck, or with
    ``[nats] fast_publish`` the acks of its fast-ingest batch; up to ``ack_timeout``
    each), the GIL released meanwhile. No atomic batches."""

    def __init__(
        self, cfg: NatsSettings, part: str, ack_timeout: float, retries: int, pipeline: bool = False
    ) -> None:
        from .rustio import FAST_FLOW, SharedRustPublisher

        super().__init__(part, ack_timeout, retries, pipeline)
        self._pub = SharedRustPublisher.acquire(cfg, ack_timeout, FAST_FLOW if cfg.fast_publish else 0)
        metrics.register_connection(self._health_name, lambda: self._pub.is_connected)

    def _wait_connected(self) -> bool:
        if self._pub.is_connected:
            return False
        _log_outage()
        while not self._pub.is_connected:
            time.sleep(0.25)
            self._pub.log_events()
        return True

    def _connects(self) -> int:
        return self._pub.connects

    def _attempt(self, pb: PubBatch, rows: list[int] | None) -> BatchOutcome:
        out = BatchOutcome()
        sel = None if rows is None else np.asarray(rows, dtype=np.int64)
        res = self._pub.publish(pb, sel)
        ok = res.seqs != 0
        out.duplicates = int(np.count_nonzero(res.duplicate & ok))
        out.fast = res.fast
        bad = [k for k, e in enumerate(res.errors) if e is not None]
        out.failed = bad if sel is None else sel[bad].tolist()
        out.errors = [e for e in (res.errors[k] for k in bad[:3]) if e is not None]
        return out

    def _release(self) -> None:
        from .rustio import SharedRustPublisher

        SharedRustPublisher.release(self._pub)


@dataclass
class JetStreamSink(FixedPartitionedSink[Any, None]):
    """Publish ``(key, Publish | PubBatch)`` items; ``key`` picks the partition.

    ``write_batch`` returns only when JetStream acknowledged every message (retrying
    unacknowledged ones with the same ``Nats-Msg-Id``); otherwise it raises
    :class:`ConnectorError`. ``atomic``: acknowledged per ADR-50 atomic batch of up to
    1,000 messages instead of per message where the output streams allow it
    (``allow_atomic``, set by ``tidstream nats init``); see :mod:`tidstream.nats.batch`.

    ``pipeline``: ``write_batch`` hands the write to a thread of the partition and
    returns, so the worker prepares the next batch while JetStream stores and acknowledges
    this one; the next ``write_batch``, the partition's ``snapshot`` (taken at each epoch's
    close, before Bytewax commits the epoch) and ``close`` wait for it and raise its error.
    One write in flight per partition, in order; the guarantee is the same (an epoch's
    resume points are committed only after its writes are confirmed); a failure surfaces
    one batch later.
    """

    nats: NatsSettings
    partitions: Sequence[str]
    ack_timeout: float = 30.0
    retries: int = 5
    atomic: bool = False
    pipeline: bool = False

    def list_parts(self) -> list[str]:
        return list(self.partitions)

    def part_fn(self, item_key: str) -> int:
        # Keys are partition ids of the source ("0".."P-1"): keep items on their lane.
        try:
            return int(item_key) % len(self.partitions)
        except ValueError:
            import zlib

            return zlib.adler32(item_key.encode()) % len(self.partitions)

    def build_part(self, step_id: str, for_part: str, resume_state: None) -> _SinkBase:
        if self.nats.rust_data_path(self.atomic):
            if self.atomic:
                raise ConnectorError(
                    'atomic batches are not implemented by data_path = "rust": turn '
                    '[streams] atomic_publish off, or use data_path = "python"'
                )
            return _RustSinkPartition(self.nats, for_part, self.ack_timeout, self.retries, self.pipeline)
        return _SinkPartition(self.nats, for_part, self.ack_timeout, self.retries, self.atomic, self.pipeline)


def wait_for(predicate: Any, timeout: float, interval: float = 0.05) -> bool:
    """Poll ``predicate()`` until true or ``timeout`` seconds (test/CLI helper)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
