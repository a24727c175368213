"""REFERENCE ONLY (tests): the ingest step as it was before its common path moved to Rust
(main at b554fed, python/tidstream/flow/ingest.py and FcntGuard of flow/guards.py), kept
verbatim as the oracle of tests/test_ingest_kernel.py. Not used by any flow.

The ingest step: raw uplinks in, readings and dead letters out.

One call per Bytewax batch (hundreds of uplinks): envelopes are parsed in Rust in one
call per format, frames decoded in Rust in one call per model, fill ratios and the
reading messages (JSON, subject, id) computed in Rust in one call each for the batch. Nothing raises for bad input: every uplink ends either as readings
(one per measurement in the frame, stored readings included) or as exactly one dead
letter with its reason and the original bytes.

Message ids are deterministic (from the raw stream sequence), so a replay after a crash
republishes the same ids and JetStream drops the duplicates.

The live flow uses :meth:`Ingestor.batches`: one :class:`~tidstream._core.PubBatch` per
raw partition and step call (readings written by Rust with their subjects and ids in
one call; Python adds only dead letters and stored readings), so Bytewax and
the sink handle a few items per batch instead of one per message. Calling the ingestor
gives the same messages one ``Publish`` each (tests, the replay flow).
"""

from __future__ import annotations

import base64
import logging
import re
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
from tidstream import _core, codecs, envelopes, metrics
from tidstream.codecs import alarm_flag_names
from tidstream.config import Subjects
from tidstream.flow.guards import FCNT_RESET_BELOW, TimeWindow
from tidstream.nats.jetstream import PubBatch, Publish, RawMsg
from tidstream.registry import Registry

__all__ = ["FcntGuard", "Ingestor"]

_log = logging.getLogger("tidstream.ingest")
_EUI = re.compile(r"^[0-9a-fA-F]{16}$")
_FLAG_NAMES = sorted(alarm_flag_names().items())


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
class FcntGuard:
    """Last accepted ``(fcnt, raw_seq)`` per device."""

    last: dict[str, tuple[int, int]] = field(default_factory=dict)

    def check(self, device: str, fcnt: int | None, raw_seq: int) -> str | None:
        """``None`` to accept the frame (and remember it), else why it is a regression."""
        if fcnt is None:
            return None
        prev = self.last.get(device)
        if prev is not None:
            last_fcnt, last_seq = prev
            if raw_seq <= last_seq:
                return None  # the flow's own replay after a restart: decided before
            if fcnt <= last_fcnt and not (fcnt < FCNT_RESET_BELOW <= last_fcnt):
                return f"frame counter {fcnt} is not above the last accepted {last_fcnt} (raw seq {last_seq})"
        self.last[device] = (fcnt, raw_seq)
        return None


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
        # Registry columns as the JSON writer takes them (string tables, float arrays).
        t = registry.table
        strings = {
            c: t.column(c).cast(pa.string()).to_pylist()
            for c in ("device_id", "container_id", "container_kind", "stream", "commune_insee", "commune")
        }
        self._reg_json_cols = {c: _core.JsonStrings(v) for c, v in strings.items()}
        self._reg_commune_insee = strings["commune_insee"]
        # The readings subject of every registry row (lookup is by exact device id).
        self._reg_subject = _core.JsonStrings(
            [
                None if d is None or c is None else subjects.reading(c, d)
                for d, c in zip(strings["device_id"], strings["commune_insee"])
            ]
        )
        self._reg_model = t.column("model").cast(pa.string()).to_pylist()
        self._reg_lat = t.column("lat").cast(pa.float64()).to_numpy(zero_copy_only=False)
        self._reg_lon = t.column("lon").cast(pa.float64()).to_numpy(zero_copy_only=False)

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

    def _split_subject(self, subject: str) -> tuple[str, str] | None:
        parts = subject.split(".")
        n = self._raw_prefix_tokens
        if len(parts) != n + 2:
            return None
        return parts[n], parts[n + 1]

    # -- the step --------------------------------------------------------------------

    def __call__(self, batch: list[RawMsg]) -> list[tuple[str, Publish]]:
        """The messages of :meth:`batches`, one ``(partition, Publish)`` each, in order."""
        return [
            (part, Publish(subject, data, msg_id, headers))
            for part, pb in self.batches(batch)
            for subject, data, msg_id, headers in pb.messages()
        ]

    def batches(self, batch: list[RawMsg]) -> list[tuple[str, PubBatch]]:
        """The step (``flat_map_batch``): one ``(raw partition, PubBatch)`` per partition
        present in ``batch``, readings and dead letters of that partition in frame order.
        Timed; the Prometheus counters advance by this batch's share of ``self.stats``
        (once per batch: docs/OPERATIONS.md)."""
        st = self.stats
        readings0, dead0 = st.readings_out, dict(st.dead_letters)
        t0 = time.perf_counter()
        out = self._step(batch)
        metrics.DECODE_SECONDS.observe(time.perf_counter() - t0)
        metrics.FRAMES_IN.inc(len(batch))
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

    def _step(self, batch: list[RawMsg]) -> list[tuple[str, PubBatch]]:
        out = _Out()
        self.stats.frames_in += len(batch)
        # 1. envelope stage, per format ------------------------------------------------
        by_format: dict[str, list[RawMsg]] = defaultdict(list)
        for m in batch:
            if len(m.data) > self.max_bytes:
                self._dead(out, m, DeadLetter("oversized", f"{len(m.data)} bytes > {self.max_bytes}", "size"))
                continue
            split = self._split_subject(m.subject)
            if split is None or split[0] not in ("ttn", "chirpstack", "raw"):
                self._dead(
                    out,
                    m,
                    DeadLetter(
                        "unknown_format", f"subject {m.subject} has no known format token", "envelope"
                    ),
                )
                continue
            by_format[split[0]].append(m)

        # uplinks that parsed: (msg, dev_eui, received_ns, fport, fcnt, payload, rssi, snr)
        ups: list[tuple[RawMsg, str, int, int | None, int | None, bytes, float | None, float | None]] = []
        for fmt, msgs in by_format.items():
            if fmt == "raw":
                for m in msgs:
                    dev = self._split_subject(m.subject)[1]  # type: ignore[index]
                    if not _EUI.match(dev):
                        self._dead(
                            out,
                            m,
                            DeadLetter(
                                "invalid_dev_eui", f"device token {dev!r} is not a DevEUI", "envelope"
                            ),
                        )
                        continue
                    h = m.headers or {}
                    try:
                        fport = int(h["Tid-FPort"]) if "Tid-FPort" in h else None
                        fcnt = int(h["Tid-FCnt"]) if "Tid-FCnt" in h else None
                        if not (fport is None or 0 <= fport <= 255) or not (
                            fcnt is None or 0 <= fcnt < 2**32
                        ):
                            raise ValueError("out of range")  # as the envelopes' f_port / f_cnt
                    except ValueError:
                        self._dead(
                            out,
                            m,
                            DeadLetter(
                                "wrong_type",
                                "Tid-FPort / Tid-FCnt header is not an integer in 0..255 / 0..2^32-1",
                                "envelope",
                                device_id=dev.lower(),
                            ),
                        )
                        continue
                    t = _parse_time_ns(h.get("Tid-Received-At")) or m.stored_ns
                    ups.append((m, dev.lower(), t, fport, fcnt, m.data, None, None))
                continue
            rb = envelopes.decode_uplinks(
                "ttn-v3" if fmt == "ttn" else "chirpstack-v4", [m.data for m in msgs]
            )

            def col(name: str, rb: Any = rb) -> list[Any]:
                return rb.column(name).to_pylist()

            ok_l = col("ok")
            if not all(ok_l):
                err, kind, off = col("error"), col("error_kind"), col("error_offset")
                for i, m in enumerate(msgs):
                    if not ok_l[i]:
                        self._dead(out, m, DeadLetter(kind[i], err[i], "envelope", off[i]))
            recv = rb.column("received_at").cast("int64").to_pylist()
            for m, ok, dev, t, fport, fcnt, payload, rssi, snr in zip(
                msgs,
                ok_l,
                col("dev_eui"),
                recv,
                col("fport"),
                col("fcnt"),
                col("payload"),
                col("rssi"),
                col("snr"),
            ):
                if ok:
                    ups.append((m, dev, t or m.stored_ns, fport, fcnt, payload, rssi, snr))

        # 2. registry join -----------------------------------------------------------------
        rows = self.registry.lookup([u[1] for u in ups])
        by_model: dict[str, list[int]] = defaultdict(list)
        reg_model = self._reg_model
        # receive times TimeWindow.problem could refuse (vectorised; only those are looked at)
        late = self._recv_suspects(ups)
        for j, r in enumerate(rows.tolist()):
            if r < 0:
                u = ups[j]
                self._dead(
                    out,
                    u[0],
                    DeadLetter(
                        "unknown_device", f"device {u[1]} is not in the registry", "registry", device_id=u[1]
                    ),
                )
            else:
                u = ups[j]
                why = self.times.problem(u[2], u[0].stored_ns) if j in late else None
                if why:
                    self._dead(out, u[0], DeadLetter("implausible_time", why, "envelope", device_id=u[1]))
                    continue
                by_model[reg_model[r]].append(j)

        # 3. frame decode (Rust, one call per model), then for the whole batch: fill ratio
        # and reading messages (Rust, one call each) --------------------------------------
        if not by_model:
            return out.items()
        times_ok = self.times
        fcnt_check = self.fcnt.check
        decoded = [
            codecs.decode_batch(model, [ups[j][5] for j in idx], fports=[ups[j][3] for j in idx])
            for model, idx in by_model.items()
        ]
        idx = [j for js in by_model.values() for j in js]  # ups positions, in decoded order
        model_of = np.repeat(np.arange(len(decoded), dtype=np.int64), [len(js) for js in by_model.values()])
        batch_rb = decoded[0] if len(decoded) == 1 else pa.concat_batches(decoded)
        ok = batch_rb.column("ok").to_numpy(zero_copy_only=False)
        sel = np.flatnonzero(ok)
        ok_l = ok.tolist()
        reg_of = rows[idx].tolist()
        sel_ups = [ups[idx[k]] for k in sel]
        msgs = self._reading_messages(list(by_model), model_of[sel], batch_rb, sel, sel_ups, rows[idx][sel])
        stored_col = batch_rb.column("stored_readings")
        has_stored = (
            set(np.flatnonzero(pc.fill_null(pc.list_value_length(stored_col), 0).to_numpy()).tolist())
            if stored_col.null_count < len(stored_col)
            else set()
        )
        # Frames whose times need a closer look (TimeWindow.problem, vectorised: the
        # others are certainly fine); frames with stored readings are always looked at.
        suspect = self._time_suspects(batch_rb, idx, ups)
        r = 0  # next message of msgs (the ok frames, in order)
        dropped = 0  # ok frames dead-lettered for their device-side time
        measured_ms = (
            batch_rb.column("measured_at").cast("int64").to_pylist() if suspect or has_stored else None
        )
        pending: dict[str, list[int]] = defaultdict(list)  # part -> rows of msgs to take
        for k, j in enumerate(idx):
            u = ups[j]
            m = u[0]
            if not ok_l[k]:
                self._dead(
                    out,
                    m,
                    DeadLetter(
                        batch_rb.column("error_kind")[k].as_py(),
                        batch_rb.column("error")[k].as_py(),
                        "frame",
                        batch_rb.column("error_offset")[k].as_py(),
                        u[1],
                    ),
                )
                continue
            row = r
            r += 1
            if k in suspect or k in has_stored:
                # device-side times (the frame's and its stored readings') inside the window
                mk = measured_ms[k] if measured_ms is not None else None
                times = [None if mk is None else mk * 1_000_000]
                if k in has_stored:
                    times += [int(x["measured_at"].timestamp() * 1e9) for x in stored_col[k].as_py() or ()]
                why = times_ok.problem(u[2], m.stored_ns, times)
                if why:
                    self._dead(out, m, DeadLetter("implausible_time", why, "frame", device_id=u[1]))
                    dropped += 1
                    continue
            # The counter advances only on frames that become readings (as when it is
            # rebuilt from the readings stream at start): a corrupt copy of a frame
            # cannot make the genuine one look replayed.
            why = fcnt_check(u[1], u[4], m.seq)
            if why:
                self._dead(out, m, DeadLetter("fcnt_regression", why, "envelope", device_id=u[1]))
                dropped += 1
                continue
            pending[m.part].append(row)
            if k in has_stored:
                # keep the device's order: its frame's reading, then the stored ones
                pb = out.of(m.part)
                pb.extend(msgs, np.array(pending.pop(m.part), dtype=np.int64))
                self._emit_stored(pb, m, reg_of[k], orjson.loads(msgs.data(row)), stored_col[k])
        for part, rows_p in pending.items():
            out.of(part).extend(msgs, np.array(rows_p, dtype=np.int64))
        self.stats.readings_out += len(sel) - dropped
        return out.items()

    def _recv_suspects(self, ups: list[tuple[Any, ...]]) -> set[int]:
        """Positions in ``ups`` whose receive time :meth:`TimeWindow.problem` could refuse."""
        n = len(ups)
        if n == 0:
            return set()
        w = self.times
        try:
            recv = np.fromiter((u[2] for u in ups), dtype=np.int64, count=n)
            stored = np.fromiter((u[0].stored_ns for u in ups), dtype=np.int64, count=n)
        except OverflowError:  # a hostile time beyond int64: let problem() judge them all
            return set(range(n))
        bad = recv < w.earliest_ns
        if w.future_ns:
            bad |= recv > stored + w.future_ns
        return set(np.flatnonzero(bad).tolist())

    def _time_suspects(self, rb: Any, idx: list[int], ups: list[tuple[Any, ...]]) -> set[int]:
        """Positions ``k`` (into ``idx``) of the frames :meth:`TimeWindow.problem` could
        refuse (received or measured time out of the window); the rest are fine."""
        n = len(idx)
        if n == 0:
            return set()
        w = self.times
        try:
            recv = np.fromiter((ups[j][2] for j in idx), dtype=np.int64, count=n)
            stored = np.fromiter((ups[j][0].stored_ns for j in idx), dtype=np.int64, count=n)
        except OverflowError:  # a hostile time beyond int64: let problem() judge them all
            return set(range(n))
        meas_col = rb.column("measured_at")
        meas_ok = meas_col.is_valid().to_numpy(zero_copy_only=False)
        meas_ms = pc.fill_null(meas_col.cast(pa.int64()), 0).to_numpy(zero_copy_only=False)
        # ms beyond what ns in int64 can hold (year 2262): suspect, before the product wraps
        lim = (2**63 - 1) // 1_000_000 - 1
        huge = meas_ok & ((meas_ms > lim) | (meas_ms < -lim))
        meas = np.where(huge, 0, meas_ms) * 1_000_000
        bad = recv < w.earliest_ns
        bad |= huge
        bad |= meas_ok & (meas < w.earliest_ns)
        if w.future_ns:
            bad |= recv > stored + w.future_ns
            bad |= meas_ok & (meas > recv + w.future_ns)
        return set(np.flatnonzero(bad).tolist())

    def _reading_messages(
        self,
        models: list[str],
        model_of: np.ndarray,
        rb: Any,
        sel: np.ndarray,
        ups: list[tuple[Any, ...]],
        reg: np.ndarray,
    ) -> PubBatch:
        """The reading messages of the decoded frames ``sel`` of ``rb`` (one Rust call):
        JSON payload, subject ``<prefix>.readings.<commune>.<device>``, id ``r:<raw seq>:0``;
        ``model_of`` their model (index into ``models``), ``ups`` their uplink tuples,
        ``reg`` their registry rows."""
        n = len(sel)
        if n == 0:
            return PubBatch()

        def f64(name: str) -> np.ndarray:
            return np.ascontiguousarray(rb.column(name).to_numpy(zero_copy_only=False)[sel], dtype=np.float64)

        def tri(name: str) -> np.ndarray:  # bool with nulls -> int8 -1 / 0 / 1
            c = pc.fill_null(rb.column(name).cast(pa.int8()), -1)
            return np.ascontiguousarray(c.to_numpy(zero_copy_only=False)[sel], dtype=np.int8)

        def opt_int(values: list[Any]) -> tuple[np.ndarray, np.ndarray]:
            return (
                np.fromiter((0 if v is None else v for v in values), dtype=np.int64, count=n),
                np.fromiter((v is not None for v in values), dtype=np.bool_, count=n),
            )

        def opt_f64(values: list[Any]) -> np.ndarray:
            return np.fromiter((np.nan if v is None else v for v in values), dtype=np.float64, count=n)

        seq = np.fromiter((u[0].seq for u in ups), dtype=np.int64, count=n)
        recv = np.fromiter((u[2] for u in ups), dtype=np.int64, count=n)
        meas_col = rb.column("measured_at")
        meas_ok = meas_col.is_valid().to_numpy(zero_copy_only=False)[sel]
        meas_ms = pc.fill_null(meas_col.cast(pa.int64()), 0).to_numpy(zero_copy_only=False)[sel]
        measured = np.where(meas_ok, meas_ms * 1_000_000, recv)
        dist = f64("distance_mm")
        fill = self.registry.fill_ratio(reg, dist)
        flags = np.ascontiguousarray(
            pc.fill_null(rb.column("alarm_flags").cast(pa.int64()), 0).to_numpy(zero_copy_only=False)[sel]
        )
        fport, fport_ok = opt_int([u[3] for u in ups])
        fcnt, fcnt_ok = opt_int([u[4] for u in ups])
        reg = np.ascontiguousarray(reg, dtype=np.int64)
        cols = self._reg_json_cols
        return _core.json_messages(
            n,
            [
                ("reading_id", "intstr", seq, ("r:", ":0")),
                ("device_id", "dict", reg, cols["device_id"]),
                ("model", "dict", np.ascontiguousarray(model_of, dtype=np.int64), models),
                ("container_id", "dict", reg, cols["container_id"]),
                ("container_kind", "dict", reg, cols["container_kind"]),
                ("stream", "dict", reg, cols["stream"]),
                ("commune_insee", "dict", reg, cols["commune_insee"]),
                ("commune", "dict", reg, cols["commune"]),
                ("lat", "f64", np.ascontiguousarray(self._reg_lat[reg]), None),
                ("lon", "f64", np.ascontiguousarray(self._reg_lon[reg]), None),
                ("received_at", "ts_ns", recv, None),
                ("measured_at", "ts_ns", np.ascontiguousarray(measured, dtype=np.int64), None),
                ("stored", "literal", "false", None),
                ("distance_mm", "f64", dist, None),
                ("fill_ratio", "f64", np.ascontiguousarray(fill, dtype=np.float64), None),
                ("fill_pct_reported", "f64", f64("fill_pct_reported"), None),
                ("temperature_c", "f64", f64("temperature_c"), None),
                ("battery_pct", "f64", f64("battery_pct"), None),
                ("battery_v", "f64", f64("battery_v"), None),
                ("tilt", "bool", tri("tilt"), None),
                ("fire_alarm", "bool", tri("fire_alarm"), None),
                ("alarm_flags", "i64", flags, None),
                ("fport", "i64", fport, fport_ok),
                ("fcnt", "i64", fcnt, fcnt_ok),
                ("rssi", "f64", opt_f64([u[6] for u in ups]), None),
                ("snr", "f64", opt_f64([u[7] for u in ups]), None),
                ("gps_lat", "f64", f64("latitude"), None),
                ("gps_lon", "f64", f64("longitude"), None),
                ("raw_seq", "i64", seq, None),
            ],
            [("dict", reg, self._reg_subject)],
            ["r:", ("int", seq), ":0"],
        )

    def _emit_stored(self, out: PubBatch, m: RawMsg, reg_row: int, main: dict[str, Any], stored: Any) -> None:
        """The stored readings of one frame (sent late after an outage; rare): the frame's
        reading with the stored values, ids ``r:<seq>:<n>``."""
        for n, s in enumerate(stored.as_py() or (), start=1):
            sd = s["distance_mm"]
            sf = None
            if sd is not None:
                sf = float(self.registry.fill_ratio(np.array([reg_row]), np.array([sd], dtype=np.float64))[0])
                sf = None if sf != sf else sf
            t = s["measured_at"]
            rec = {
                **main,
                "reading_id": f"r:{m.seq}:{n}",
                "measured_at": rfc3339_us(int(t.timestamp() * 1e6) * 1000),
                "stored": True,
                "distance_mm": sd,
                "fill_ratio": sf,
                "temperature_c": s["temperature_c"],
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
