"""The ingest step: raw uplinks in, readings and dead letters out.

One Rust call per Bytewax batch (hundreds of uplinks, ``_core.ingest_batch``,
core/src/ingest.rs): subject routing, envelope parsing (one parse per format), registry
join, plausibility of the receive and device times, frame decoding (one call per model),
fill ratios, the frame-counter guard and the reading messages (JSON, subject, id), with
the GIL released. Python keeps what is rare or needs Python semantics: the dead letters
(with the original bytes and headers), the stored readings of a frame sent late, and the
``Tid-*`` headers of raw-format frames. Nothing raises for bad input: every uplink ends
either as readings (one per measurement in the frame, stored readings included) or as
exactly one dead letter with its reason and the original bytes.

Message ids are deterministic (from the raw stream sequence), so a replay after a crash
republishes the same ids and JetStream drops the duplicates.

The live flow uses :meth:`Ingestor.batches`: one :class:`~tidstream._core.PubBatch` per
raw partition and step call, so Bytewax and the sink handle a few items per batch
instead of one per message. Calling the ingestor gives the same messages one
``Publish`` each (tests, the replay flow).
"""

from __future__ import annotations

import base64
import bisect
import itertools
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import orjson
import pyarrow as pa

from .. import _core, metrics
from ..config import Subjects
from ..nats.jetstream import PubBatch, Publish, RawBatch, RawMsg
from ..nats.rustio import header_dict
from ..registry import Registry
from .guards import FcntGuard, TimeWindow

__all__ = ["DeadLetter", "IngestStats", "Ingestor"]

_log = logging.getLogger("tidstream.ingest")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def rfc3339_us(ns: int) -> str:
    """UTC RFC 3339 with microseconds and ``Z``."""
    s, rem = divmod(int(ns), 1_000_000_000)
    return datetime.fromtimestamp(s, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") + f".{rem // 1000:06d}Z"


def _parse_time_ns(text: str | None) -> int | None:
    if not text:
        return None
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        return None
    return int(dt.timestamp() * 1_000_000) * 1000


@dataclass
class IngestStats:
    """Counters of one ingestor (per process)."""

    frames_in: int = 0
    readings_out: int = 0
    dead_letters: dict[str, int] = field(default_factory=lambda: defaultdict(int))


@dataclass
class DeadLetter:
    """Why an uplink could not become a reading."""

    reason: str
    error: str
    stage: str
    offset: int | None = None
    device_id: str | None = None


class Ingestor:
    """Callable for ``flat_map_batch``: ``list[RawMsg] -> list[(partition, Publish)]``.

    Args:
        registry: the device registry.
        subjects: subject layout.
        raw_stream: name of the raw stream (recorded in lineage and dead letters).
        max_message_bytes: bigger uplinks are dead-lettered as ``oversized``.
        fcnt_guard: frame-counter state (``flow/guards.py``; empty when not given).
        time_window: plausible uplink times (``flow/guards.py``).
    """

    def __init__(
        self,
        registry: Registry,
        subjects: Subjects,
        raw_stream: str,
        max_message_bytes: int = 65536,
        fcnt_guard: FcntGuard | None = None,
        time_window: TimeWindow | None = None,
    ) -> None:
        self.registry = registry
        self.subjects = subjects
        self.raw_stream = raw_stream
        self.max_bytes = max_message_bytes
        self.stats = IngestStats()
        self.fcnt = fcnt_guard if fcnt_guard is not None else FcntGuard()
        self.times = time_window or TimeWindow()
        self._raw_prefix_tokens = len(subjects.raw_partition(0).split(".")) - 1  # tid.raw.<p>
        # The registry as the Rust kernel reads it (device id -> row, model, geometry,
        # the strings the reading messages carry and each row's readings subject).
        t = registry.table
        strings = {
            c: t.column(c).cast(pa.string()).to_pylist()
            for c in ("device_id", "container_id", "container_kind", "stream", "commune_insee", "commune")
        }

        def f64(name: str) -> np.ndarray:
            return np.ascontiguousarray(t.column(name).cast(pa.float64()).to_numpy(zero_copy_only=False))

        self._index = _core.IngestIndex(
            strings["device_id"],
            t.column("model").cast(pa.string()).to_pylist(),
            f64("depth_mm"),
            f64("offset_mm"),
            f64("lat"),
            f64("lon"),
            strings["container_id"],
            strings["container_kind"],
            strings["stream"],
            strings["commune_insee"],
            strings["commune"],
            [
                None if d is None or c is None else subjects.reading(c, d)
                for d, c in zip(strings["device_id"], strings["commune_insee"])
            ],
        )

    # -- helpers ---------------------------------------------------------------------

    def _dead(self, out: _Out, m: RawMsg, d: DeadLetter) -> None:
        self.stats.dead_letters[d.reason] += 1
        body = {
            "reason": d.reason,
            "stage": d.stage,
            "error": d.error,
            "offset": d.offset,
            "device_id": d.device_id,
            "subject": m.subject,
            "raw_stream": self.raw_stream,
            "raw_seq": m.seq,
            "stored_at": rfc3339_us(m.stored_ns),
            "headers": m.headers or None,
            "original_base64": base64.b64encode(m.data).decode(),
        }
        out.of(m.part).push(
            self.subjects.dlq(d.reason),
            orjson.dumps(body),
            f"d:{self.raw_stream}:{m.seq}",
            {"Tid-Reason": d.reason, "Tid-Raw-Seq": str(m.seq)},
        )

    @staticmethod
    def _raw_fields(headers: dict[str, str] | None) -> tuple[int | None, int | None, int | None] | None:
        """FPort, frame counter and receive time (ns, None: not given) of a raw-format
        frame from its ``Tid-*`` headers; None when a header is not an integer in range
        (called by the Rust kernel for raw-format frames only)."""
        h = headers or {}
        try:
            fport = int(h["Tid-FPort"]) if "Tid-FPort" in h else None
            fcnt = int(h["Tid-FCnt"]) if "Tid-FCnt" in h else None
            if not (fport is None or 0 <= fport <= 255) or not (fcnt is None or 0 <= fcnt < 2**32):
                raise ValueError("out of range")  # as the envelopes' f_port / f_cnt
        except ValueError:
            return None
        return fport, fcnt, _parse_time_ns(h.get("Tid-Received-At"))

    # -- the step --------------------------------------------------------------------

    def __call__(self, batch: list[RawMsg] | list[RawBatch]) -> list[tuple[str, Publish]]:
        """The messages of :meth:`batches`, one ``(partition, Publish)`` each, in order."""
        return [
            (part, Publish(subject, data, msg_id, headers))
            for part, pb in self.batches(batch)
            for subject, data, msg_id, headers in pb.messages()
        ]

    def batches(self, batch: list[RawMsg] | list[RawBatch]) -> list[tuple[str, PubBatch]]:
        """The step (``flat_map_batch``): one ``(raw partition, PubBatch)`` per partition
        present in ``batch`` (:class:`RawMsg` items, or the columnar :class:`RawBatch`
        items of the Rust source), readings and dead letters of that partition in frame
        order.
        Timed; the Prometheus counters advance by this batch's share of ``self.stats``
        (once per batch: docs/OPERATIONS.md)."""
        st = self.stats
        frames0, readings0, dead0 = st.frames_in, st.readings_out, dict(st.dead_letters)
        t0 = time.perf_counter()
        out = self._step(batch)
        metrics.DECODE_SECONDS.observe(time.perf_counter() - t0)
        metrics.FRAMES_IN.inc(st.frames_in - frames0)
        metrics.READINGS_OUT.inc(st.readings_out - readings0)
        for reason, n in st.dead_letters.items():
            if n != dead0.get(reason, 0):
                metrics.DEAD_LETTERS.labels(reason).inc(n - dead0.get(reason, 0))
                _log.debug(
                    "%d dead letters: %s",
                    n - dead0.get(reason, 0),
                    reason,
                    extra={"reason": reason, "count": n - dead0.get(reason, 0)},
                )
        return out

    def _step(self, batch: list[RawMsg] | list[RawBatch]) -> list[tuple[str, PubBatch]]:
        out = _Out()
        if not isinstance(batch, list):
            batch = list(batch)
        # One Rust call for the batch (core/src/ingest.rs): subjects, envelopes, registry
        # join, receive and device times, frame decode, fill ratio, frame counters and the
        # reading messages; back come the readings and the output in order.
        w = self.times
        args = (self._raw_prefix_tokens, self.max_bytes, w.earliest_ns, w.future_ns)
        if batch and isinstance(batch[0], RawBatch):  # the columnar items of the Rust source
            if not all(isinstance(x, RawBatch) for x in batch):
                return self._step(_flatten(batch))
            msgs: _Msgs = _Columnar(batch)  # type: ignore[arg-type]
            readings, ops, accepted = _core.ingest_columns(
                self._index,
                self.fcnt.state,
                [_columns(rb) for rb in batch],  # type: ignore[arg-type]
                *args,
                lambda lines: self._raw_fields(header_dict(lines) if lines else None),
            )
        else:  # RawMsg tuples
            msgs = batch  # type: ignore[assignment]
            try:
                readings, ops, accepted = _core.ingest_batch(
                    self._index, self.fcnt.state, batch, *args, self._raw_fields
                )
            except TypeError:
                if not any(isinstance(x, RawBatch) for x in batch):
                    raise
                return self._step(_flatten(batch))  # both kinds in one batch (two sources)
        self.stats.frames_in += len(msgs)
        for op in ops:
            kind = op[0]
            if kind == 1:  # (1, partition, rows of readings)
                out.of(op[1]).extend(readings, op[2])
            elif kind == 0:  # (0, frame, reason, error, stage, offset, device)
                self._dead(out, msgs[op[1]], DeadLetter(op[2], op[3], op[4], op[5], op[6]))
            else:  # (2, frame, row, registry row, stored readings): placed after its reading
                m = msgs[op[1]]
                self._emit_stored(out.of(m.part), m, op[3], orjson.loads(readings.data(op[2])), op[4])
        self.stats.readings_out += accepted
        return out.items()

    def _emit_stored(
        self,
        out: PubBatch,
        m: RawMsg,
        reg_row: int,
        main: dict[str, Any],
        stored: list[tuple[int, float | None, float | None]],
    ) -> None:
        """The stored readings ``(measured_at ms, distance_mm, temperature_c)`` of one frame
        (sent late after an outage; rare): the frame's reading with the stored values, ids
        ``r:<seq>:<n>``."""
        for n, (ms, sd, temp) in enumerate(stored, start=1):
            sf = None
            if sd is not None:
                sf = float(self.registry.fill_ratio(np.array([reg_row]), np.array([sd], dtype=np.float64))[0])
                sf = None if sf != sf else sf
            t = _EPOCH + timedelta(milliseconds=ms)
            rec = {
                **main,
                "reading_id": f"r:{m.seq}:{n}",
                "measured_at": rfc3339_us(int(t.timestamp() * 1e6) * 1000),
                "stored": True,
                "distance_mm": sd,
                "fill_ratio": sf,
                "temperature_c": temp,
                "alarm_flags": 0,
                "tilt": None,
                "fire_alarm": None,
            }
            self.stats.readings_out += 1
            out.push(
                self.subjects.reading(main["commune_insee"], main["device_id"]),
                orjson.dumps(rec),
                rec["reading_id"],
            )


def _flatten(batch: list[Any]) -> list[RawMsg]:
    """Items of both kinds as :class:`RawMsg` tuples, in order."""
    return [m for x in batch for m in (x.msgs() if isinstance(x, RawBatch) else (x,))]


def _columns(rb: RawBatch) -> tuple[Any, ...]:
    """The columns of a :class:`RawBatch` as ``_core.ingest_columns`` takes them."""
    b = rb.batch
    return (
        rb.part,
        b.seqs,
        b.timestamps_ns,
        b.subject_offsets,
        b.subject_data,
        b.payload_offsets,
        b.payload_data,
        b.header_offsets,
        b.header_data,
        rb.n,
    )


class _Columnar:
    """The messages of columnar items, numbered across them in order (for the few frames
    the step needs as :class:`RawMsg`: dead letters and stored readings)."""

    __slots__ = ("_items", "_starts")

    def __init__(self, items: list[RawBatch]) -> None:
        self._items = items
        self._starts = list(itertools.accumulate((len(x) for x in items), initial=0))

    def __len__(self) -> int:
        return self._starts[-1]

    def __getitem__(self, i: int) -> RawMsg:
        j = bisect.bisect_right(self._starts, i) - 1
        return self._items[j].msg(i - self._starts[j])


_Msgs = list[RawMsg] | _Columnar


class _Out:
    """The step's output being built: one PubBatch per raw partition, in first-seen order."""

    __slots__ = ("_by_part",)

    def __init__(self) -> None:
        self._by_part: dict[str, PubBatch] = {}

    def of(self, part: str) -> PubBatch:
        pb = self._by_part.get(part)
        if pb is None:
            pb = self._by_part[part] = PubBatch()
        return pb

    def items(self) -> list[tuple[str, PubBatch]]:
        return [(p, pb) for p, pb in self._by_part.items() if len(pb)]
