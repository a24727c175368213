"""A run's ground truth as numpy columns, walked once over the simulator's chunks.

Used by the forecast backtest (``tidstream.backtest.sim_backtest``) and the savings ledger
(``tidstream.plan.run_ledger``): both need every reading (true fill, what the sensor
measured, delivery status), every collection pass and every overflow start, with the
devices as row indices of the territory's registry.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["DELIVERY_CODES", "TruthColumns", "truth_columns"]

#: ``delivered`` of a truth reading as a code: live (on time), stored (resent later), lost.
DELIVERY_CODES = {"live": 0, "stored": 1, "lost": 2}


@dataclass
class TruthColumns:
    """Readings, collection passes and overflow starts of a run (each in chunk order).

    Devices are row indices into the registry given to :func:`truth_columns` (-1: not in
    it). Times are UTC nanoseconds (int64); fills are ratios of the container's capacity.
    """

    #: readings (one per measurement a sensor took, delivered or not)
    dev: np.ndarray  # int64
    t_ns: np.ndarray  # int64
    true_fill: np.ndarray  # float64
    #: fill the frame's distance gives (``_core.fill_ratio``; NaN: no echo)
    fill: np.ndarray  # float64
    #: tilt flag of the frame: 1, 0, or -1 when the frame carries none
    tilt: np.ndarray  # int8
    #: :data:`DELIVERY_CODES`
    delivery: np.ndarray  # int8
    #: collection passes (missed ones included)
    c_dev: np.ndarray  # int64
    c_t_ns: np.ndarray  # int64
    c_fill_before: np.ndarray  # float64, capped at the heap maximum
    c_demand: np.ndarray  # float64, uncapped demand fill before the pass
    c_after: np.ndarray  # float64
    c_missed: np.ndarray  # bool
    #: overflow starts
    o_dev: np.ndarray  # int64
    o_start_ns: np.ndarray  # int64


def truth_columns(
    sim: Any, device_ids: Sequence[str], depth_mm: np.ndarray, offset_mm: np.ndarray
) -> TruthColumns:
    """Walk ``sim.chunks()`` (a :class:`tidstream.simulate.Simulation` run with ``truth=True``)
    once and return its ground truth as columns. ``device_ids``, ``depth_mm`` and
    ``offset_mm`` are the registry's, row-aligned (the measured fill is computed with them)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from .. import _core

    keys = pa.array(list(device_ids), pa.string())
    depth = np.asarray(depth_mm, np.float64)
    offset = np.asarray(offset_mm, np.float64)

    def index(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
        return pc.index_in(col, value_set=keys).to_numpy(zero_copy_only=False).astype(np.int64)

    def ns(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
        return pc.cast(col, pa.int64()).to_numpy()

    R: dict[str, list[np.ndarray]] = {k: [] for k in ("dev", "t", "y", "m", "tilt", "status")}
    C: dict[str, list[np.ndarray]] = {k: [] for k in ("dev", "t", "before", "demand", "after", "missed")}
    O: dict[str, list[np.ndarray]] = {k: [] for k in ("dev", "start")}  # noqa: E741
    for ch in sim.chunks():
        r = ch.readings
        if r is not None and r.num_rows:
            d = index(r.column("device_id"))
            dist = pc.fill_null(r.column("distance_mm"), float("nan")).to_numpy(zero_copy_only=False)
            R["dev"].append(d)
            R["t"].append(ns(r.column("measured_at")))
            R["y"].append(r.column("true_fill").to_numpy())
            R["m"].append(_core.fill_ratio(np.ascontiguousarray(dist, np.float64), depth[d], offset[d]))
            tl = r.column("tilt")
            R["tilt"].append(
                np.where(
                    pc.is_valid(tl).to_numpy(zero_copy_only=False),
                    pc.fill_null(tl, False).to_numpy(zero_copy_only=False),
                    -1,
                ).astype(np.int8)
            )
            st = r.column("delivered").to_pylist()
            R["status"].append(np.array([DELIVERY_CODES.get(x, 2) for x in st], np.int8))
        c = ch.collections
        if c is not None and c.num_rows:
            C["dev"].append(index(c.column("device_id")))
            C["t"].append(ns(c.column("collected_at")))
            C["before"].append(c.column("fill_before").to_numpy())
            C["demand"].append(c.column("demand_fill").to_numpy())
            C["after"].append(c.column("fill_after").to_numpy())
            C["missed"].append(c.column("missed").to_numpy(zero_copy_only=False).astype(bool))
        o = ch.overflows
        if o is not None and o.num_rows:
            O["dev"].append(index(o.column("device_id")))
            O["start"].append(ns(o.column("started_at")))

    def cat(xs: list[np.ndarray], dtype: Any) -> np.ndarray:
        return np.concatenate(xs).astype(dtype, copy=False) if xs else np.zeros(0, dtype)

    return TruthColumns(
        dev=cat(R["dev"], np.int64),
        t_ns=cat(R["t"], np.int64),
        true_fill=cat(R["y"], np.float64),
        fill=cat(R["m"], np.float64),
        tilt=cat(R["tilt"], np.int8),
        delivery=cat(R["status"], np.int8),
        c_dev=cat(C["dev"], np.int64),
        c_t_ns=cat(C["t"], np.int64),
        c_fill_before=cat(C["before"], np.float64),
        c_demand=cat(C["demand"], np.float64),
        c_after=cat(C["after"], np.float64),
        c_missed=cat(C["missed"], bool),
        o_dev=cat(O["dev"], np.int64),
        o_start_ns=cat(O["start"], np.int64),
    )
