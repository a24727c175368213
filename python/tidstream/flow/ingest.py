"""The ingest step: raw uplinks in, readings and dead letters out.

One call per Bytewax batch (hundreds of uplinks): envelopes are parsed in Rust in one
call per format, frames decoded in Rust in one call per model, fill ratios computed in
Rust in one call. Nothing raises for bad input: every uplink ends either as readings
(one per measurement in the frame, stored readings included) or as exactly one dead
letter with its reason and the original bytes.

Message ids are deterministic (from the raw stream sequence), so a replay after a crash
republishes the same ids and JetStream drops the duplicates.
"""

from __future__ import annotations

import base64
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np
import orjson

from .. import codecs, envelopes
from ..codecs import alarm_flag_names
from ..config import Subjects
from ..nats.jetstream import Publish, RawMsg
from ..registry import Registry
from .guards import FcntGuard, TimeWindow

__all__ = ["DeadLetter", "IngestStats", "Ingestor"]

_EUI = re.compile(r"^[0-9a-fA-F]{16}$")
_FLAG_NAMES = sorted(alarm_flag_names().items())


def rfc3339_us(ns: int) -> str:
    """UTC RFC 3339 with microseconds and ``Z``."""
    s, rem = divmod(int(ns), 1_000_000_000)
    return datetime.fromtimestamp(s, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") + f".{rem // 1000:06d}Z"


def rfc3339_us_many(ns: list[int]) -> list[str]:
    """Vectorised :func:`rfc3339_us` (one numpy call per batch)."""
    if not ns:
        return []
    a = np.asarray(ns, dtype=np.int64).astype("datetime64[ns]").astype("datetime64[us]")
    return [t + "Z" for t in np.datetime_as_string(a, unit="us").tolist()]


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

    # -- helpers ---------------------------------------------------------------------

    def _dead(self, out: list, m: RawMsg, d: DeadLetter) -> None:
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
        out.append(
            (
                m.part,
                Publish(
                    self.subjects.dlq(d.reason),
                    orjson.dumps(body),
                    f"d:{self.raw_stream}:{m.seq}",
                    {"Tid-Reason": d.reason, "Tid-Raw-Seq": str(m.seq)},
                ),
            )
        )

    def _split_subject(self, subject: str) -> tuple[str, str] | None:
        parts = subject.split(".")
        n = self._raw_prefix_tokens
        if len(parts) != n + 2:
            return None
        return parts[n], parts[n + 1]

    # -- the step --------------------------------------------------------------------

    def __call__(self, batch: list[RawMsg]) -> list[tuple[str, Publish]]:
        out: list[tuple[str, Publish]] = []
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
            c = {
                name: rb.column(name).to_pylist()
                for name in (
                    "ok",
                    "dev_eui",
                    "fport",
                    "fcnt",
                    "payload",
                    "rssi",
                    "snr",
                    "error",
                    "error_kind",
                    "error_offset",
                )
            }
            recv = rb.column("received_at").cast("int64").to_pylist()
            for i, m in enumerate(msgs):
                if not c["ok"][i]:
                    self._dead(
                        out,
                        m,
                        DeadLetter(c["error_kind"][i], c["error"][i], "envelope", c["error_offset"][i]),
                    )
                    continue
                ups.append(
                    (
                        m,
                        c["dev_eui"][i],
                        recv[i] or m.stored_ns,
                        c["fport"][i],
                        c["fcnt"][i],
                        c["payload"][i],
                        c["rssi"][i],
                        c["snr"][i],
                    )
                )

        # 2. registry join -----------------------------------------------------------------
        rows = self.registry.lookup([u[1] for u in ups])
        by_model: dict[str, list[int]] = defaultdict(list)
        for j, r in enumerate(rows):
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
                why = self.times.problem(u[2], u[0].stored_ns)
                if why:
                    self._dead(out, u[0], DeadLetter("implausible_time", why, "envelope", device_id=u[1]))
                    continue
                why = self.fcnt.check(u[1], u[4], u[0].seq)
                if why:
                    self._dead(out, u[0], DeadLetter("fcnt_regression", why, "envelope", device_id=u[1]))
                    continue
                by_model[self.registry.row(int(r))[1]].append(j)

        # 3. frame decode, per model, and fill ratio ---------------------------------------
        for model, idx in by_model.items():
            batch_rb = codecs.decode_batch(model, [ups[j][5] for j in idx], fports=[ups[j][3] for j in idx])
            cols = {
                name: batch_rb.column(name).to_pylist()
                for name in batch_rb.schema.names
                if name != "measured_at"
            }
            measured = batch_rb.column("measured_at").cast("int64").to_pylist()
            ok_rows = [k for k, ok in enumerate(cols["ok"]) if ok]
            reg_rows = np.array([rows[idx[k]] for k in ok_rows], dtype=np.int64)
            dist = np.array(
                [np.nan if cols["distance_mm"][k] is None else cols["distance_mm"][k] for k in ok_rows],
                dtype=np.float64,
            )
            fill = self.registry.fill_ratio(reg_rows, dist) if ok_rows else np.empty(0)
            fill_of = dict(zip(ok_rows, fill.tolist()))
            recv_all = [ups[j][2] for j in idx]
            recv_txt = rfc3339_us_many(recv_all)
            meas_txt = rfc3339_us_many(
                [measured[k] * 1_000_000 if measured[k] is not None else recv_all[k] for k in range(len(idx))]
            )
            for k, j in enumerate(idx):
                m, dev, _recv, fport, fcnt, _payload, rssi, snr = ups[j]
                if not cols["ok"][k]:
                    self._dead(
                        out,
                        m,
                        DeadLetter(
                            cols["error_kind"][k], cols["error"][k], "frame", cols["error_offset"][k], dev
                        ),
                    )
                    continue
                times = [None if measured[k] is None else measured[k] * 1_000_000]
                times += [int(x["measured_at"].timestamp() * 1e9) for x in cols["stored_readings"][k] or ()]
                why = self.times.problem(_recv, m.stored_ns, times)
                if why:
                    self._dead(out, m, DeadLetter("implausible_time", why, "frame", device_id=dev))
                    continue
                reg = self.registry.row(int(rows[j]))
                f = fill_of[k]
                base = {
                    "device_id": dev,
                    "model": model,
                    "container_id": reg[2],
                    "container_kind": reg[3],
                    "stream": reg[4],
                    "commune_insee": reg[5],
                    "commune": reg[6],
                    "lat": reg[7],
                    "lon": reg[8],
                    "received_at": recv_txt[k],
                }
                flags = cols["alarm_flags"][k] or 0
                main = {
                    "reading_id": f"r:{m.seq}:0",
                    **base,
                    "measured_at": meas_txt[k],
                    "stored": False,
                    "distance_mm": cols["distance_mm"][k],
                    "fill_ratio": None if f != f else f,  # NaN -> null
                    "fill_pct_reported": cols["fill_pct_reported"][k],
                    "temperature_c": cols["temperature_c"][k],
                    "battery_pct": cols["battery_pct"][k],
                    "battery_v": cols["battery_v"][k],
                    "tilt": cols["tilt"][k],
                    "fire_alarm": cols["fire_alarm"][k],
                    "alarm_flags": flags,
                    "fport": fport,
                    "fcnt": fcnt,
                    "rssi": rssi,
                    "snr": snr,
                    "gps_lat": cols["latitude"][k],
                    "gps_lon": cols["longitude"][k],
                    "raw_seq": m.seq,
                }
                self._emit(out, m, dev, reg[5], main)
                for n, s in enumerate(cols["stored_readings"][k] or (), start=1):
                    sd = s["distance_mm"]
                    sf = None
                    if sd is not None:
                        sf = float(
                            self.registry.fill_ratio(np.array([rows[j]]), np.array([sd], dtype=np.float64))[0]
                        )
                    t = s["measured_at"]
                    stored = {
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
                    self._emit(out, m, dev, reg[5], stored)
        return out

    def _emit(self, out: list, m: RawMsg, dev: str, commune: str, rec: dict[str, Any]) -> None:
        self.stats.readings_out += 1
        out.append(
            (
                m.part,
                Publish(self.subjects.reading(commune, dev), orjson.dumps(rec), rec["reading_id"]),
            )
        )
