"""Fill-level forecasts per container: streaming, batch, with calibrated intervals.

:class:`Forecaster` keeps a small state per container (in Rust), updated in O(1) per
reading: emptying detection (a fall, confirmed by tilt or by the next reading), a
robust fill rate (lid-open and obstruction spikes, noise and stuck sensors do not move
it), a day-of-week x hour-of-day activity profile, and the rolling error of its own
past forecasts. Forecast distributions come from fleet-level tables of realised
increments, learned online from those scored forecasts::

    fc = tidstream.Forecaster(threshold=0.8)
    fc.update(container_ids, timestamps, fill)      # millions of rows per call, GIL released
    tab = fc.predict(at, horizons_h=[24, 48, 72])   # pyarrow.Table (FORECAST_SCHEMA)
    acc = fc.accountability()                       # rolling MAE / bias / coverage per container
    blob = fc.to_bytes(); fc2 = tidstream.Forecaster.from_bytes(blob)

Forecasts are "if not emptied": the level the sensor will report at the horizon if no
collection happens in between. See docs/FORECAST.md.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import _core

__all__ = [
    "ACCOUNTABILITY_SCHEMA",
    "FORECASTER_STATE_SCHEMA",
    "FORECAST_SCHEMA",
    "Forecaster",
    "to_epoch_seconds",
]

_TS = pa.timestamp("s", tz="UTC")
_MISSING = np.uint32(0xFFFFFFFF)


def _f(name: str, typ: pa.DataType, unit: str | None, doc: str, nullable: bool = True) -> pa.Field:
    meta = {b"doc": doc.encode()}
    if unit:
        meta[b"unit"] = unit.encode()
    return pa.field(name, typ, nullable=nullable, metadata=meta)


def _schema(id_type: pa.DataType, fields: list[pa.Field], name: bytes) -> pa.Schema:
    return pa.schema(
        [_f("container_id", id_type, None, "container id as given to update()", False), *fields],
        metadata={b"tidstream.schema": name},
    )


_FORECAST_FIELDS = [
    _f("horizon_h", pa.float64(), "h", "hours after `at`", False),
    _f("fill_p50", pa.float64(), "ratio", "median fill at the horizon if not emptied", False),
    _f("fill_p10", pa.float64(), "ratio", "lower end of the 80 % interval (calibrated online)", False),
    _f("fill_p90", pa.float64(), "ratio", "upper end of the 80 % interval (calibrated online)", False),
    _f("p_over_threshold", pa.float64(), None, "P(fill >= threshold at the horizon if not emptied)", False),
    _f(
        "hours_to_threshold",
        pa.float64(),
        "h",
        "hours from `at` until the median fill reaches the threshold (null: not within max_horizon_h)",
    ),
    _f(
        "hours_to_threshold_p90",
        pa.float64(),
        "h",
        "pessimistic (earlier) time: the upper-interval fill reaches the threshold",
    ),
    _f("stuck", pa.bool_(), None, "the sensor repeats one value: its readings are not believed", False),
]
_ACC_FIELDS = [
    _f("horizon_h", pa.float64(), "h", "calibration horizon the forecasts were made for", False),
    _f("n_scored", pa.int64(), None, "forecasts of this container scored so far", False),
    _f("mae", pa.float64(), "ratio", "rolling mean absolute error of fill_p50 (last ~20 forecasts)"),
    _f("bias", pa.float64(), "ratio", "rolling mean of (observed - fill_p50)"),
    _f("coverage", pa.float64(), None, "rolling share of observations inside [fill_p10, fill_p90]"),
    _f("last_scored_at", _TS, None, "time of the last scored forecast"),
]
_STATE_FIELDS = [
    _f("last_reading_at", _TS, None, "time of the last accepted reading", False),
    _f("fill", pa.float64(), "ratio", "the forecaster's estimate of the level at the last reading", False),
    _f(
        "rate_per_day",
        pa.float64(),
        "ratio/d",
        "current fill rate (fleet activity and profile included)",
        False,
    ),
    _f("last_emptied_at", _TS, None, "last detected emptying (null: none yet)"),
    _f("readings", pa.int64(), None, "accepted readings", False),
    _f("emptyings", pa.int64(), None, "detected emptyings", False),
    _f("stuck", pa.bool_(), None, "the sensor currently repeats one value", False),
    _f("noise", pa.float64(), "ratio", "estimated reading noise (0 for coarse, quantised sensors)", False),
    _f("resolution", pa.float64(), "ratio", "smallest step seen between readings", False),
]

#: ``Forecaster.predict`` output (``container_id`` is int64 or string, as fed).
FORECAST_SCHEMA = _schema(pa.int64(), _FORECAST_FIELDS, b"forecast/1")
#: ``Forecaster.accountability`` output.
ACCOUNTABILITY_SCHEMA = _schema(pa.int64(), _ACC_FIELDS, b"forecast-accountability/1")
#: ``Forecaster.states`` output.
FORECASTER_STATE_SCHEMA = _schema(pa.int64(), _STATE_FIELDS, b"forecaster-state/1")


def _with_id_type(schema: pa.Schema, id_type: pa.DataType) -> pa.Schema:
    return schema.set(0, schema.field(0).with_type(id_type))


# -- input conversion ------------------------------------------------------------------


def _to_numpy_any(a: Any) -> Any:
    if isinstance(a, pa.ChunkedArray):
        return a.combine_chunks() if a.num_chunks != 1 else a.chunk(0)
    return a


def to_epoch_seconds(t: Any) -> np.ndarray:
    """UTC seconds (int64) from datetime64 / Arrow timestamps / epoch seconds."""
    t = _to_numpy_any(t)
    if isinstance(t, pa.Array):
        if t.null_count:
            raise ValueError("timestamps contain nulls: drop those readings first")
        if pa.types.is_timestamp(t.type):
            return pc.cast(pc.cast(t, pa.timestamp("s", tz=t.type.tz), safe=False), pa.int64()).to_numpy()
        if pa.types.is_date(t.type):
            return pc.cast(pc.cast(t, pa.timestamp("s")), pa.int64()).to_numpy()
        t = t.to_numpy(zero_copy_only=False)
    a = np.asarray(t)
    if a.dtype.kind == "M":
        if np.isnat(a).any():
            raise ValueError("timestamps contain NaT: drop those readings first")
        return np.ascontiguousarray(a.astype("datetime64[s]").astype(np.int64))
    if a.dtype.kind in "iu":
        out = np.ascontiguousarray(a, dtype=np.int64)
    elif a.dtype.kind == "f":
        if not np.isfinite(a).all():
            raise ValueError("timestamps contain NaN or inf: drop those readings first")
        out = np.floor(a).astype(np.int64)
    elif a.dtype.kind == "O":
        try:
            arr = pa.array(list(a))
        except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
            raise TypeError(
                "timestamps must be datetime64, Arrow timestamps, datetimes or epoch seconds"
            ) from e
        return to_epoch_seconds(arr)
    else:
        raise TypeError(
            f"timestamps must be datetime64, Arrow timestamps or epoch seconds (int/float), got dtype {a.dtype}"
        )
    if out.size and max(out.max(), -out.min()) > 100_000_000_000:
        raise ValueError(
            "timestamps look like milliseconds or nanoseconds since the epoch: pass epoch seconds "
            "(e.g. t // 1000) or a datetime64 array"
        )
    return np.ascontiguousarray(out)


def _instant(at: Any) -> int:
    if isinstance(at, (int, np.integer)) and not isinstance(at, bool):
        return int(to_epoch_seconds(np.array([at], np.int64))[0])
    if isinstance(at, (float, np.floating)):
        return int(to_epoch_seconds(np.array([at], np.float64))[0])
    if isinstance(at, str):
        try:
            at = dt.datetime.fromisoformat(at)
        except ValueError:
            raise ValueError(f"at must be an ISO date/time like 2025-01-06T00:00:00Z, got {at!r}") from None
    if isinstance(at, dt.datetime):
        if at.tzinfo is None:
            at = at.replace(tzinfo=dt.timezone.utc)
        return int(np.floor(at.timestamp()))
    if isinstance(at, dt.date):
        return int(dt.datetime(at.year, at.month, at.day, tzinfo=dt.timezone.utc).timestamp())
    if isinstance(at, np.datetime64):
        return int(at.astype("datetime64[s]").astype(np.int64))
    if isinstance(at, pa.TimestampScalar):
        return _instant(at.as_py())
    raise TypeError(
        f"at must be a datetime, datetime64, ISO string or epoch seconds, got {type(at).__name__}"
    )


def _fill(x: Any) -> np.ndarray:
    x = _to_numpy_any(x)
    if isinstance(x, pa.Array):
        x = pc.fill_null(pc.cast(x, pa.float64()), float("nan")).to_numpy()
    a = np.asarray(x)
    if a.dtype.kind not in "fiub":
        raise TypeError(f"fill must be numeric (a fill ratio 0..1), got dtype {a.dtype}")
    return np.ascontiguousarray(a, dtype=np.float64)


def _tilt(t: Any, n: int) -> np.ndarray | None:
    if t is None:
        return None
    t = _to_numpy_any(t)
    if isinstance(t, pa.Array):
        valid = pc.is_valid(t).to_numpy(zero_copy_only=False)
        v = pc.fill_null(pc.cast(t, pa.bool_()), False).to_numpy(zero_copy_only=False)
        out = np.where(valid, v.astype(np.int8), np.int8(-1)).astype(np.int8)
    else:
        a = np.asarray(t)
        if a.dtype == object:
            out = np.array([-1 if v is None else int(bool(v)) for v in a], np.int8)
        else:
            out = a.astype(np.int8)
    if len(out) != n:
        raise ValueError(f"tilt must have one value per reading ({n}), got {len(out)}")
    return np.ascontiguousarray(out)


def _ids(ids: Any) -> tuple[str, Any]:
    """("int", int64 array) or ("str", (offsets, data)) from any id column."""
    ids = _to_numpy_any(ids)
    if isinstance(ids, pa.Array):
        if ids.null_count:
            raise ValueError("container_ids contain nulls: drop those readings first")
        typ = ids.type
        if pa.types.is_dictionary(typ):
            ids = ids.dictionary_decode()
            typ = ids.type
        if pa.types.is_integer(typ):
            return "int", np.ascontiguousarray(pc.cast(ids, pa.int64()).to_numpy())
        if pa.types.is_string(typ) or pa.types.is_large_string(typ) or pa.types.is_binary(typ):
            return "str", _str_buffers(ids)
        raise TypeError(f"container_ids must be int64 or strings, got Arrow type {typ}")
    a = np.asarray(ids)
    if a.dtype.kind in "iu":
        if a.dtype == np.uint64 and a.size and a.max() > np.iinfo(np.int64).max:
            raise ValueError("container_ids above 2**63-1: pass them as strings")
        return "int", np.ascontiguousarray(a, dtype=np.int64)
    if a.dtype.kind in "UOS":
        try:
            arr = pa.array(a, pa.string()) if a.dtype.kind != "S" else pa.array(a, pa.binary())
        except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
            raise TypeError("container_ids must be all strings or all integers") from e
        if arr.null_count:
            raise ValueError("container_ids contain None: drop those readings first")
        return "str", _str_buffers(arr)
    raise TypeError(f"container_ids must be int64 or strings, got dtype {a.dtype}")


def _str_buffers(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    if pa.types.is_large_string(arr.type):
        arr = arr.cast(pa.large_binary())
        off_t = np.int64
    else:
        arr = arr.cast(pa.binary()) if pa.types.is_string(arr.type) else arr
        off_t = np.int32
    bufs = arr.buffers()
    n = len(arr)
    offsets = np.frombuffer(bufs[1], dtype=off_t, count=n + 1 + arr.offset)[arr.offset :]
    data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
    return np.ascontiguousarray(offsets), data


# -- the forecaster ----------------------------------------------------------------------


class Forecaster:
    """Per-container fill forecaster (Rust core, streaming and batch).

    Args:
        threshold: fill ratio whose crossing is forecast (``p_over_threshold``,
            ``hours_to_threshold``).
        calibration_horizons_h: horizons (hours) at which the forecaster scores its
            own forecasts, learns its predictive distributions and keeps each
            container's rolling error; forecasts at other horizons interpolate.
        utc_offset_h: local time offset of the day/hour activity profile.
        drop_threshold: smallest fall of the fill counted as an emptying.
        confirm_emptying: without tilt, believe a fall only once the next reading
            stays low (a lid-open reading that comes back is a spike, not an
            emptying).
        max_horizon_h: longest time searched for ``hours_to_threshold``.
        score_rule: which of its own forecasts the forecaster learns from:
            ``"cycle"`` (default: no emptying detected in between, i.e. "if not
            emptied") or ``"endpoints"`` (the level at the target is not below the
            level at forecast time: the Wyndham evaluation protocol's pair rule).
        calibrate: score the forecaster's own forecasts (fleet calibration tables,
            adaptive interval levels, per-container accountability). ``False``
            gives a lighter update whose forecasts come from the parametric model
            alone and whose accountability stays empty.
    """

    def __init__(
        self,
        threshold: float = 0.8,
        *,
        calibration_horizons_h: Sequence[float] = (24, 48, 72),
        utc_offset_h: float = 0.0,
        drop_threshold: float = 0.1,
        confirm_emptying: bool = True,
        max_horizon_h: float = 336.0,
        score_rule: str = "cycle",
        calibrate: bool = True,
    ) -> None:
        try:
            hz = [float(h) for h in calibration_horizons_h]
        except (TypeError, ValueError):
            raise TypeError("calibration_horizons_h must be a sequence of hours, e.g. (24, 48, 72)") from None
        self._core = _core.ForecasterCore(
            float(threshold),
            hz,
            round(float(utc_offset_h) * 3600),
            float(drop_threshold),
            bool(confirm_emptying),
            float(max_horizon_h),
            str(score_rule),
            bool(calibrate),
        )

    @classmethod
    def _wrap(cls, core: Any) -> Forecaster:
        fc = cls.__new__(cls)
        fc._core = core
        return fc

    # -- feeding ---------------------------------------------------------------

    def update(self, container_ids: Any, timestamps: Any, fill: Any, tilt: Any = None) -> None:
        """Take a batch of readings.

        Args:
            container_ids: int64 or string ids (numpy, Arrow, list).
            timestamps: datetime64 / Arrow timestamps (any unit) or epoch seconds.
            fill: fill ratio (0..1, above 1 when overfull); NaN / null = no reading.
            tilt: optional tilt flags (bool, nullable); a fall with tilt is an
                emptying at once, other tilted readings are ignored.

        Rows must be time-ordered per container (different containers may
        interleave). Out-of-order or duplicate rows are skipped and counted in
        :meth:`stats`. The GIL is released while the batch is processed.
        """
        kind, ids = _ids(container_ids)
        t = to_epoch_seconds(timestamps)
        x = _fill(fill)
        n = len(t)
        tl = _tilt(tilt, n)
        if kind == "int":
            self._core.update_int(ids, t, x, tl)
        else:
            offsets, data = ids
            self._core.update_str(offsets, data, t, x, tl)

    def step(
        self, container_id: str, t: int, fill: float | None, tilt: bool | None, horizon_h: float
    ) -> dict[str, Any] | None:
        """Streaming: take ONE reading of one container (string id) and say what the
        forecaster now believes about it, in plain Python values.

        One reading per call makes the state a function of the reading sequence alone
        (the fleet sums are folded after each call), so a replay of the same stream
        gives the same forecasts whatever the micro-batching: this is what the alerting
        dataflow needs for deterministic alert ids. ``t`` is UTC epoch seconds,
        ``fill`` the fill ratio (None / NaN = no level in this reading).

        Returns None while the container has no accepted reading yet, else a dict:
        ``fill_p50``, ``fill_p10``, ``fill_p90``, ``p_over_threshold`` (at
        ``horizon_h`` hours after ``t``, if not emptied), ``hours_to_threshold``,
        ``hours_to_threshold_p90`` (hours after ``t``; None beyond ``max_horizon_h``),
        ``stuck``, ``level`` (estimated fill now), ``rate_per_day`` (fill ratio per day),
        ``last_emptied_s`` (epoch s or None) and ``accountability``: one dict per
        calibration horizon (``horizon_h``, ``n_scored``, ``mae``, ``bias``,
        ``coverage``; None before the first scored forecast).
        """
        raw = container_id.encode()
        x = float("nan") if fill is None else float(fill)
        tl = None if tilt is None else np.array([1 if tilt else 0], np.int8)
        self._core.update_str(
            np.array([0, len(raw)], np.int32),
            np.frombuffer(raw, np.uint8).copy(),
            np.array([int(t)], np.int64),
            np.array([x], np.float64),
            tl,
        )
        idx = self._core.lookup_str([container_id])
        if idx[0] == _MISSING:
            return None
        p = self._core.predict(int(t), [float(horizon_h)], idx)
        if len(p["idx"]) == 0:
            return None  # no accepted reading yet
        s = self._core.states(idx)
        a = self._core.accountability(idx)

        def opt(v: float) -> float | None:
            return None if np.isnan(v) else float(v)

        le = int(s["last_emptied_s"][0])
        return {
            "fill_p50": float(p["fill_p50"][0]),
            "fill_p10": float(p["fill_p10"][0]),
            "fill_p90": float(p["fill_p90"][0]),
            "p_over_threshold": float(p["p_over_threshold"][0]),
            "hours_to_threshold": opt(p["hours_to_threshold"][0]),
            "hours_to_threshold_p90": opt(p["hours_to_threshold_p90"][0]),
            "stuck": bool(p["stuck"][0]),
            "level": float(s["fill"][0]),
            "rate_per_day": float(s["rate_per_day"][0]),
            "last_emptied_s": None if le == np.iinfo(np.int64).min else le,
            "accountability": [
                {
                    "horizon_h": float(a["horizon_h"][j]),
                    "n_scored": int(a["n"][j]),
                    "mae": float(a["mae"][j]) if a["n"][j] else None,
                    "bias": float(a["bias"][j]) if a["n"][j] else None,
                    "coverage": float(a["coverage"][j]) if a["n"][j] else None,
                }
                for j in range(len(a["idx"]))
            ],
        }

    # -- outputs ---------------------------------------------------------------

    def _subset(self, container_ids: Any) -> tuple[np.ndarray | None, Any]:
        if container_ids is None:
            return None, None
        if self._core.id_kind is None:
            return np.zeros(0, np.uint32), None
        kind, ids = _ids(container_ids)
        if kind != self._core.id_kind:
            raise TypeError(f"this Forecaster has {self._core.id_kind} container ids; got {kind} ids")
        if kind == "int":
            idx = self._core.lookup_int(ids)
        else:
            idx = self._core.lookup_str(pa.array(_to_numpy_any(container_ids)).cast(pa.string()).to_pylist())
        return idx[idx != _MISSING], None

    def _id_column(self, idx: np.ndarray) -> pa.Array:
        kind = self._core.id_kind
        if kind == "str":
            offsets, data = self._core.str_ids()
            n = len(offsets) - 1
            arr = pa.Array.from_buffers(
                pa.large_string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)]
            )
            return pc.take(arr, pa.array(idx, pa.uint32())).cast(pa.string())
        ints = self._core.int_ids() if kind == "int" else np.zeros(0, np.int64)
        return pa.array(ints[idx], pa.int64())

    def _id_type(self) -> pa.DataType:
        return pa.string() if self._core.id_kind == "str" else pa.int64()

    def predict(
        self,
        at: Any,
        horizons_h: Sequence[float] = (24, 48, 72),
        container_ids: Any = None,
    ) -> pa.Table:
        """Forecasts at ``at`` for each container and horizon (hours after ``at``).

        Returns a pyarrow Table (:data:`FORECAST_SCHEMA`): ``container_id``,
        ``horizon_h``, ``fill_p50``, ``fill_p10``, ``fill_p90``,
        ``p_over_threshold``, ``hours_to_threshold`` (median) and
        ``hours_to_threshold_p90`` (pessimistic: earlier), ``stuck``. Containers
        are those seen by :meth:`update` (or the known ones among
        ``container_ids``).
        """
        t = _instant(at)
        try:
            hz = [float(h) for h in horizons_h]
        except (TypeError, ValueError):
            raise TypeError("horizons_h must be a sequence of hours, e.g. [24, 48, 72]") from None
        sub, _ = self._subset(container_ids)
        d = self._core.predict(t, hz, sub)
        cols: list[pa.Array] = [self._id_column(d["idx"]), pa.array(d["horizon_h"], pa.float64())]
        for name in ("fill_p50", "fill_p10", "fill_p90", "p_over_threshold"):
            cols.append(pa.array(d[name], pa.float64()))
        for name in ("hours_to_threshold", "hours_to_threshold_p90"):
            v = d[name]
            cols.append(pa.array(v, pa.float64(), mask=np.isnan(v)))
        cols.append(pa.array(d["stuck"], pa.bool_()))
        return pa.Table.from_arrays(cols, schema=_with_id_type(FORECAST_SCHEMA, self._id_type()))

    def accountability(self, container_ids: Any = None) -> pa.Table:
        """Every container's rolling forecast error at each calibration horizon.

        Columns (:data:`ACCOUNTABILITY_SCHEMA`): ``container_id``, ``horizon_h``,
        ``n_scored``, ``mae``, ``bias`` (observed - median), ``coverage`` (share
        inside the p10-p90 interval), ``last_scored_at``. Rolling = about the last
        20 scored forecasts; null before the first.
        """
        sub, _ = self._subset(container_ids)
        d = self._core.accountability(sub)
        n = d["n"].astype(np.int64)
        none = n == 0
        last = d["last_scored_s"]
        return pa.Table.from_arrays(
            [
                self._id_column(d["idx"]),
                pa.array(d["horizon_h"], pa.float64()),
                pa.array(n, pa.int64()),
                pa.array(d["mae"], pa.float64(), mask=none),
                pa.array(d["bias"], pa.float64(), mask=none),
                pa.array(d["coverage"], pa.float64(), mask=none),
                pa.array(np.where(none, 0, last), pa.int64(), mask=none).cast(_TS),
            ],
            schema=_with_id_type(ACCOUNTABILITY_SCHEMA, self._id_type()),
        )

    def states(self, container_ids: Any = None) -> pa.Table:
        """One row per container: last reading, estimated fill, rate, last emptying..."""
        sub, _ = self._subset(container_ids)
        d = self._core.states(sub)
        le = d["last_emptied_s"]
        none = le == np.iinfo(np.int64).min
        return pa.Table.from_arrays(
            [
                self._id_column(d["idx"]),
                pa.array(d["last_reading_s"], pa.int64()).cast(_TS),
                pa.array(d["fill"], pa.float64()),
                pa.array(d["rate_per_day"], pa.float64()),
                pa.array(np.where(none, 0, le), pa.int64(), mask=none).cast(_TS),
                pa.array(d["readings"].astype(np.int64), pa.int64()),
                pa.array(d["emptyings"].astype(np.int64), pa.int64()),
                pa.array(d["stuck"], pa.bool_()),
                pa.array(d["noise"], pa.float64()),
                pa.array(d["resolution"], pa.float64()),
            ],
            schema=_with_id_type(FORECASTER_STATE_SCHEMA, self._id_type()),
        )

    def stats(self) -> dict[str, int]:
        """Counters: readings, accepted, missing, invalid, out_of_order, emptyings,
        spikes_low, spikes_high, jumps, stuck, tilted, scored, containers."""
        return dict(self._core.stats())

    @property
    def config(self) -> dict[str, Any]:
        """The settings this forecaster runs with."""
        return dict(self._core.config())

    @property
    def threshold(self) -> float:
        return float(self._core.config()["threshold"])

    def interval_levels(self) -> list[tuple[float, float, float]]:
        """(horizon_h, lower, upper) probability levels currently used for p10/p90."""
        return list(self._core.interval_levels())

    def __len__(self) -> int:
        return len(self._core)

    def __repr__(self) -> str:
        c = self.config
        return f"Forecaster(threshold={c['threshold']}, containers={len(self)}, calibration_horizons_h={c['horizons_h']})"

    # -- persistence -----------------------------------------------------------

    def to_bytes(self) -> bytes:
        """Versioned binary snapshot of the whole state (config, fleet, containers)."""
        return bytes(self._core.to_bytes())

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> Forecaster:
        """Rebuild a forecaster from :meth:`to_bytes` output (raises ValueError on
        corrupt data or an unsupported format version)."""
        return cls._wrap(_core.ForecasterCore.from_bytes(bytes(data)))

    def __getstate__(self) -> bytes:
        return self.to_bytes()

    def __setstate__(self, state: bytes) -> None:
        self._core = _core.ForecasterCore.from_bytes(bytes(state))
