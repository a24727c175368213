"""From containers and fill forecasts to the day's :class:`PlanProblem`.

The rule (docs/PLANNING.md): a container is **required** today when, if it is not
visited, the forecast gives it at least ``required_p`` chance of reaching the full level
before the end of the next working shift (the latest the next visit could come). Other
containers whose forecast fill at the end of today's shift is at least
``optional_min_fill`` are **optional**, with a prize that grows with that fill and with
the chance of being full before the end of the second working shift.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa

from ..config import PlanSettings
from ..exceptions import TidstreamError
from .model import Facility, PlanProblem, expand_fleet

__all__ = [
    "TZ",
    "Containers",
    "facilities_for",
    "fixed_problem",
    "forecast_problem",
    "is_working_day",
    "next_working_days",
    "shift_start",
]

TZ = ZoneInfo("Europe/Paris")


class Containers:
    """Container columns the planner needs, from a registry table
    (:data:`tidstream.schema.REGISTRY_SCHEMA`: ``container_id, container_kind, stream,
    volume_l, lat, lon``)."""

    def __init__(self, registry: pa.Table) -> None:
        col = registry.column
        self.id = np.asarray(col("container_id").to_pylist(), dtype=object)
        self.kind = np.asarray(col("container_kind").to_pylist(), dtype=object)
        self.stream = np.asarray(col("stream").to_pylist(), dtype=object)
        self.volume_l = np.asarray(col("volume_l").to_numpy(), np.float64)
        self.lat = np.asarray(col("lat").to_numpy(), np.float64)
        self.lon = np.asarray(col("lon").to_numpy(), np.float64)
        self.index = {c: i for i, c in enumerate(self.id.tolist())}

    def __len__(self) -> int:
        return len(self.id)

    def service_s(self, s: PlanSettings) -> np.ndarray:
        return np.array([float(s.service_s.get(k, s.service_s_default)) for k in self.kind], np.float64)


def facilities_for(facilities: pa.Table, s: PlanSettings) -> tuple[Facility, dict[str, Facility]]:
    """The depot and, per stream, the unloading facility (first facility of the configured kind)."""
    rows = facilities.to_pylist()

    def first(kind: str) -> Facility:
        for r in rows:
            if r["kind"] == kind and r.get("lat") is not None:
                return Facility(str(r["name"]), kind, float(r["lat"]), float(r["lon"]))
        raise TidstreamError(f"no facility of kind {kind!r} in the territory's facilities")

    return first(s.depot_kind), {st: first(k) for st, k in s.unload_kind.items()}


def shift_start(day: dt.date, s: PlanSettings) -> dt.datetime:
    """UTC start of the shift on ``day`` (``shift_start_h`` local time, Europe/Paris)."""
    h = int(s.shift_start_h)
    m = round((s.shift_start_h - h) * 60)
    return dt.datetime(day.year, day.month, day.day, h, m, tzinfo=TZ).astimezone(dt.timezone.utc)


@functools.lru_cache(maxsize=64)
def _holidays(year: int) -> frozenset[tuple[int, int]]:
    from .. import _core

    return frozenset((int(m), int(d)) for m, d in _core.sim_french_holidays(year))


def is_working_day(day: dt.date, s: PlanSettings) -> bool:
    """A day of ``s.working_days``, and not a French public holiday when
    ``s.skip_public_holidays`` (the simulator's calendar)."""
    if day.weekday() not in s.working_days:
        return False
    return not (s.skip_public_holidays and (day.month, day.day) in _holidays(day.year))


def next_working_days(day: dt.date, s: PlanSettings, n: int = 2) -> list[dt.date]:
    """The ``n`` working days after ``day``."""
    out: list[dt.date] = []
    d = day
    while len(out) < n:
        d += dt.timedelta(days=1)
        if is_working_day(d, s):
            out.append(d)
    return out


def forecast_problem(
    day: dt.date,
    cont: Containers,
    forecaster: Any,
    facilities: pa.Table,
    s: PlanSettings,
) -> PlanProblem:
    """The day's problem from a :class:`tidstream.Forecaster` fed with readings up to the
    shift start (its threshold should be ``s.full_level``). The forecaster's container ids
    are either the registry's ``container_id`` strings or row indices into ``cont``."""
    start = shift_start(day, s)
    t0 = start.timestamp()
    nxt = next_working_days(day, s, 2)
    h_mid = s.shift_h / 2.0
    h_end = s.shift_h
    h_n1 = (shift_start(nxt[0], s).timestamp() - t0) / 3600.0 + s.shift_h
    h_n2 = (shift_start(nxt[1], s).timestamp() - t0) / 3600.0 + s.shift_h
    hz = [h_mid, h_end, h_n1, h_n2]
    tab = forecaster.predict(int(t0), horizons_h=hz)
    ids_col = tab.column("container_id")
    # ids: the registry's container_id strings, or row indices (int) into ``cont``
    int_ids = pa.types.is_integer(ids_col.type)
    ids = ids_col.to_numpy() if int_ids else np.asarray(ids_col.to_pylist(), dtype=object)
    hh = tab.column("horizon_h").to_numpy()
    p50 = tab.column("fill_p50").to_numpy(zero_copy_only=False)
    po = tab.column("p_over_threshold").to_numpy(zero_copy_only=False)
    n = len(cont)
    fill = np.full((n, 4), np.nan)
    pov = np.zeros((n, 4))
    for k, h in enumerate(hz):
        m = np.isclose(hh, h)
        if int_ids:
            idx = ids[m].astype(np.int64)
        else:
            idx = np.array([cont.index.get(str(c), -1) for c in ids[m]], np.int64)
        ok = (idx >= 0) & (idx < n)
        fill[idx[ok], k] = p50[m][ok]
        pov[idx[ok], k] = po[m][ok]
    known = np.isfinite(fill[:, 0])
    required = known & (pov[:, 2] >= s.required_p)
    optional = known & ~required & (np.nan_to_num(fill[:, 1]) >= s.optional_min_fill)
    keep = np.flatnonzero(required | optional)
    f_end = np.clip(np.nan_to_num(fill[keep, 1]), 0.0, 1.25)
    prize = np.where(required[keep], 0.0, s.prize_fill_m * f_end**2 + s.prize_risk_m * pov[keep, 3])
    f_visit = np.clip(np.nan_to_num(fill[keep, 0]), 0.0, 1.25)
    return _problem(day, start, cont, keep, required[keep], prize, f_visit, pov[keep, 2], facilities, s)


def fixed_problem(
    day: dt.date,
    cont: Containers,
    idx: np.ndarray,
    fill: np.ndarray,
    facilities: pa.Table,
    s: PlanSettings,
) -> PlanProblem:
    """The fixed schedule's day: every scheduled container ``idx`` is required; ``fill`` is
    its fill at the visit (the load)."""
    start = shift_start(day, s)
    idx = np.asarray(idx, np.int64)
    k = len(idx)
    return _problem(
        day,
        start,
        cont,
        idx,
        np.ones(k, bool),
        np.zeros(k),
        np.asarray(fill, np.float64),
        np.zeros(k),
        facilities,
        s,
    )


def _problem(
    day: dt.date,
    start: dt.datetime,
    cont: Containers,
    keep: np.ndarray,
    required: np.ndarray,
    prize: np.ndarray,
    fill_visit: np.ndarray,
    p_full_next: np.ndarray,
    facilities: pa.Table,
    s: PlanSettings,
) -> PlanProblem:
    depot, unload = facilities_for(facilities, s)
    return PlanProblem(
        date=day,
        shift_start=start,
        container_id=cont.id[keep],
        stream=cont.stream[keep],
        kind=cont.kind[keep],
        lat=cont.lat[keep],
        lon=cont.lon[keep],
        litres=cont.volume_l[keep] * np.clip(fill_visit, 0.0, 1.25),
        service_s=cont.service_s(s)[keep],
        required=np.asarray(required, bool),
        prize=np.asarray(prize, np.float64),
        fill_forecast=np.asarray(fill_visit, np.float64),
        p_full_next=np.asarray(p_full_next, np.float64),
        trucks=expand_fleet(s.fleet),
        depot=depot,
        unload=unload,
        settings=s,
    )
