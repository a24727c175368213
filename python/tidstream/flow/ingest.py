"""The ingest step: raw uplinks in, readings and dead letters out.

One Rust call per Bytewax batch (hundreds of uplinks, ``_core.ingest_batch``,
core/src/ingest.rs): subject routing, envelope parsing (one parse per format), registry
join, plausibility of the receive and device times, frame decoding (one call per model),
fill ratios, the frame-counter guard, the reading messages (JSON, subject, id; the stored
readings of a frame sent late too) and the dead letters (with the original bytes and
headers), with the GIL released; back comes one ``PubBatch`` per raw partition. Python
keeps the ``Tid-*`` headers of raw-format frames (``int()``, ``datetime.fromisoformat``
semantics), the counters and the metrics. Nothing raises for bad input: every uplink ends
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

import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa

from .. import _core, metrics
from ..config import Subjects
from ..nats.jetstream import PubBatch, Publish, RawBatch, RawMsg
from ..nats.rustio import header_dict
from ..registry import Registry
from .guards import FcntGuard, TimeWindow

__all__ = ["IngestStats", "Ingestor"]

_log = logging.getLogger("tidstream.ingest")


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
        self._dlq_prefix = subjects.dlq("x")[:-1]  # tid.dlq. (the kernel appends the reason token)
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
        Timed; the Prometheus counters advance by this batch's counts (once per batch:
        docs/OPERATIONS.md)."""
        t0 = time.perf_counter()
        out, frames, readings, dead = self._run(batch)
        metrics.DECODE_SECONDS.observe(time.perf_counter() - t0)
        metrics.FRAMES_IN.inc(frames)
        metrics.READINGS_OUT.inc(readings)
        for reason, n in dead:
            metrics.DEAD_LETTERS.labels(reason).inc(n)
            _log.debug("%d dead letters: %s", n, reason, extra={"reason": reason, "count": n})
        return out

    def _step(self, batch: list[RawMsg] | list[RawBatch]) -> list[tuple[str, PubBatch]]:
        """:meth:`batches` without the metrics."""
        return self._run(batch)[0]

    def _run(
        self, batch: list[RawMsg] | list[RawBatch]
    ) -> tuple[list[tuple[str, PubBatch]], int, int, list[tuple[str, int]]]:
        """The output, the frames in, the readings out and the dead letters per reason;
        ``self.stats`` advanced."""
        if not isinstance(batch, list):
            batch = list(batch)
        # One Rust call for the batch (core/src/ingest.rs): subjects, envelopes, registry
        # join, receive and device times, frame decode, fill ratio, frame counters, the
        # reading messages and the dead letters, written per raw partition.
        w = self.times
        args = (self._raw_prefix_tokens, self.max_bytes, w.earliest_ns, w.future_ns)
        names = (self.raw_stream, self._dlq_prefix)
        if batch and isinstance(batch[0], RawBatch):  # the columnar items of the Rust source
            if not all(isinstance(x, RawBatch) for x in batch):
                return self._run(_flatten(batch))
            frames = sum(x.n for x in batch)  # type: ignore[union-attr]
            out, dead, accepted = _core.ingest_columns(
                self._index,
                self.fcnt.state,
                [_columns(rb) for rb in batch],  # type: ignore[arg-type]
                *args,
                lambda lines: self._raw_fields(header_dict(lines) if lines else None),
                *names,
            )
        else:  # RawMsg tuples
            frames = len(batch)
            try:
                out, dead, accepted = _core.ingest_batch(
                    self._index, self.fcnt.state, batch, *args, self._raw_fields, *names
                )
            except TypeError:
                if not any(isinstance(x, RawBatch) for x in batch):
                    raise
                return self._run(_flatten(batch))  # both kinds in one batch (two sources)
        st = self.stats
        st.frames_in += frames
        st.readings_out += accepted
        for reason, n in dead:
            st.dead_letters[reason] += n
        return out, frames, accepted, dead


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
