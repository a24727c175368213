"""The savings ledger: the fixed schedule against sensor-driven planning, on the same demand.

One simulator run (``tidstream.simulate``, fixed seeds) gives the ground truth: every
container's deposits, the fixed schedule's collections and overflows, and what each sensor
measured (noise, faults, lost and resent frames). Both policies are replayed on that same
demand over the ledger days:

* **fixed**: the simulator's own collections (the fixed schedule of docs/SIMULATOR.md),
  routed each day with PyVRP (all scheduled containers required);
* **planned**: every working morning, a :class:`tidstream.Forecaster` fed only with the
  readings known by then (a reading resent after an outage is known when it arrives)
  forecasts every container; :func:`tidstream.plan.forecast_problem` and
  :func:`tidstream.plan.solve_day` choose and route the day's containers; each visit
  empties its container at the route's arrival time.

The demand is the simulator's: the fill a container would have if never emptied is
reconstructed from the ground truth (exact where the container is below its physical
cap; while it is capped, between the cap and the next collection, the missing deposits
are spread linearly in time up to the uncapped demand the simulator records at the
collection). The planned policy's sensors report the planned fill plus the very error
the simulated sensor made at that reading (noise, faults), and lose the same frames.

Counted the same way for both policies: a visit empties the container (1 % of visits
missed, as in the simulator, residual 0-3 %); an overflow is a cycle whose fill passes
100 % before its emptying; fill at emptying is capped at the container's heap maximum.
For the fixed policy these figures equal the simulator's own (tested).
"""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..config import PlanSettings
from .build import TZ, Containers, fixed_problem, forecast_problem, is_working_day, shift_start
from .model import DayPlan, solve_day

__all__ = ["HEAP_MAX", "LEDGER_SCHEMA", "Demand", "LedgerResult", "demand_from_truth", "run_ledger"]

#: Physical cap of the fill per container kind (docs/SIMULATOR.md "Overflow").
HEAP_MAX = {
    "glass_bank": 1.0,
    "paper_bank": 1.0,
    "packaging_bank": 1.0,
    "grouping_point": 1.15,
    "park_bin": 1.25,
}

LEDGER_SCHEMA = pa.schema(
    [
        pa.field("date", pa.date32(), True, metadata={"doc": "null on the total rows"}),
        pa.field("policy", pa.string(), False, metadata={"doc": "fixed or planned"}),
        pa.field("km", pa.float64(), False, metadata={"unit": "km"}),
        pa.field("truck_hours", pa.float64(), False, metadata={"unit": "h"}),
        pa.field("trucks", pa.int32(), False, metadata={"doc": "trucks used (sum over days on total rows)"}),
        pa.field("stops", pa.int64(), False, metadata={"doc": "container visits routed"}),
        pa.field("emptyings", pa.int64(), False, metadata={"doc": "visits that emptied the container"}),
        pa.field("missed", pa.int64(), False, metadata={"doc": "visits that did not (missed collections)"}),
        pa.field("mean_fill_at_emptying", pa.float64(), True),
        pa.field("litres", pa.float64(), False, metadata={"unit": "L", "doc": "true volume collected"}),
        pa.field("overflows", pa.int64(), False, metadata={"doc": "overflow events starting that day"}),
        pa.field(
            "overflow_hours",
            pa.float64(),
            False,
            metadata={"unit": "h", "doc": "container-hours overflowing"},
        ),
        pa.field("co2_kg", pa.float64(), False, metadata={"unit": "kg CO2e"}),
        pa.field(
            "feasible",
            pa.bool_(),
            False,
            metadata={"doc": "every route within capacity and shift + overtime"},
        ),
    ]
)


@dataclass
class Demand:
    """Per-container cumulative demand on a timeline (sorted by container, then time).

    ``D`` is in container volumes (fraction of capacity), non-decreasing per container:
    the fill a container would gain between two times is ``D(t2) - D(t1)``.
    """

    dev: np.ndarray  # int64
    t: np.ndarray  # float64, UTC seconds
    D: np.ndarray  # float64
    bounds: np.ndarray  # start offset of each container (len n + 1)
    _key_t: np.ndarray = field(init=False, repr=False)
    _key_d: np.ndarray = field(init=False, repr=False)

    T_SPAN = 1e10  # seconds: larger than any epoch time used
    D_SPAN = 1e6

    def __post_init__(self) -> None:
        self._key_t = self.dev * self.T_SPAN + self.t
        self._key_d = self.dev * self.D_SPAN + self.D

    def at(self, dev: np.ndarray, t: np.ndarray) -> np.ndarray:
        """D at times ``t`` (linear between points, constant beyond the ends)."""
        dev = np.asarray(dev, np.int64)
        t = np.asarray(t, np.float64)
        lo, hi = self.bounds[dev], self.bounds[dev + 1]
        k = np.searchsorted(self._key_t, dev * self.T_SPAN + t, side="right")
        k = np.clip(k, lo + 1, np.maximum(hi - 1, lo + 1))
        k0 = np.clip(k - 1, lo, np.maximum(hi - 1, lo))
        k1 = np.clip(k, lo, np.maximum(hi - 1, lo))
        t0, t1 = self.t[k0], self.t[k1]
        d0, d1 = self.D[k0], self.D[k1]
        w = np.where(t1 > t0, np.clip((t - t0) / np.where(t1 > t0, t1 - t0, 1.0), 0.0, 1.0), 1.0)
        return np.where(t < t0, d0, d0 + w * (d1 - d0))

    def first_time_reaching(self, dev: np.ndarray, target: np.ndarray) -> np.ndarray:
        """First time D reaches ``target`` (inf when it never does)."""
        dev = np.asarray(dev, np.int64)
        target = np.asarray(target, np.float64)
        lo, hi = self.bounds[dev], self.bounds[dev + 1]
        k = np.searchsorted(self._key_d, dev * self.D_SPAN + target, side="left")
        out = np.full(len(dev), np.inf)
        ok = (k < hi) & (hi > lo)
        kk = np.where(ok, k, lo)
        first = ok & (kk == lo)
        out[first] = self.t[kk[first]]
        mid = ok & (kk > lo)
        k1 = kk[mid]
        k0 = k1 - 1
        d0, d1 = self.D[k0], self.D[k1]
        w = np.where(d1 > d0, (target[mid] - d0) / np.where(d1 > d0, d1 - d0, 1.0), 1.0)
        out[mid] = self.t[k0] + w * (self.t[k1] - self.t[k0])
        return out


def demand_from_truth(
    n: int,
    r_dev: np.ndarray,
    r_t: np.ndarray,
    r_fill: np.ndarray,
    c_dev: np.ndarray,
    c_t: np.ndarray,
    c_demand: np.ndarray,
    c_after: np.ndarray,
    c_missed: np.ndarray,
    cap: np.ndarray,
) -> Demand:
    """Reconstruct each container's cumulative demand from the simulator's ground truth:
    readings ``(dev, t, true fill)`` (capped at ``cap``) and collections ``(dev, t, uncapped
    demand fill before, fill after, missed)``. Times in UTC seconds."""
    ro = np.lexsort((r_t, r_dev))
    r_dev, r_t, r_fill = r_dev[ro], r_t[ro].astype(np.float64), r_fill[ro]
    co = np.lexsort((c_t, c_dev))
    c_dev, c_t, c_demand, c_after, c_missed = (
        c_dev[co],
        c_t[co].astype(np.float64),
        c_demand[co],
        c_after[co],
        c_missed[co],
    )
    rb = np.searchsorted(r_dev, np.arange(n + 1))
    cb = np.searchsorted(c_dev, np.arange(n + 1))
    out_dev: list[np.ndarray] = []
    out_t: list[np.ndarray] = []
    out_d: list[np.ndarray] = []
    for i in range(n):
        t = r_t[rb[i] : rb[i + 1]]
        u = r_fill[rb[i] : rb[i + 1]].astype(np.float64).copy()
        ct = c_t[cb[i] : cb[i + 1]]
        cd = c_demand[cb[i] : cb[i + 1]]
        ca = c_after[cb[i] : cb[i + 1]]
        cm = c_missed[cb[i] : cb[i + 1]].astype(bool)
        if len(t) == 0:
            continue
        capped = u >= cap[i] - 1e-9
        if capped.any():
            _uncap(t, u, capped, ct, cd, cm, float(cap[i]))
        # merge readings and (non-missed) emptyings into one timeline
        et = ct[~cm]
        ed = cd[~cm]
        ea = ca[~cm]
        times = np.r_[t, et]
        is_col = np.r_[np.zeros(len(t), bool), np.ones(len(et), bool)]
        vals = np.r_[u, ed]
        after = np.r_[u, ea]
        order = np.lexsort((~is_col, times))  # at equal times, the emptying first
        times, is_col, vals, after = times[order], is_col[order], vals[order], after[order]
        inc = np.empty(len(times))
        inc[0] = 0.0
        inc[1:] = vals[1:] - after[:-1]
        D = np.cumsum(np.maximum(inc, 0.0))
        out_dev.append(np.full(len(times), i, np.int64))
        out_t.append(times)
        out_d.append(D)
    dev = np.concatenate(out_dev) if out_dev else np.zeros(0, np.int64)
    return Demand(
        dev=dev,
        t=np.concatenate(out_t) if out_t else np.zeros(0),
        D=np.concatenate(out_d) if out_d else np.zeros(0),
        bounds=np.searchsorted(dev, np.arange(n + 1)),
    )


def _uncap(
    t: np.ndarray,
    u: np.ndarray,
    capped: np.ndarray,
    ct: np.ndarray,
    cd: np.ndarray,
    cm: np.ndarray,
    cap: float,
) -> None:
    """Replace capped readings by the demand fill: linear from the cap (at the first capped
    reading) through the uncapped demand recorded at each collection pass in the run."""
    idx = np.flatnonzero(capped)
    starts = idx[np.r_[True, np.diff(idx) > 1]]
    ends = idx[np.r_[np.diff(idx) > 1, True]] + 1
    for i0, i1 in zip(starts, ends):
        ta, tb = t[i0], t[i1 - 1]
        # collection passes from the first capped reading until the first non-missed one
        nxt = t[i1] if i1 < len(t) else np.inf
        m = (ct > ta) & (ct < nxt)
        # the crossing of the cap: at the slope of the last two readings below it
        t_cross = ta
        j = i0 - 1
        if j >= 1 and not capped[j - 1] and u[j - 1] <= u[j] and t[j] > t[j - 1]:
            rate = (u[j] - u[j - 1]) / (t[j] - t[j - 1])
            if rate > 0:
                t_cross = float(np.clip(t[j] + (cap - u[j]) / rate, t[j], ta))
        at = [t_cross]
        av = [cap]
        for tc, dc, missed in zip(ct[m], cd[m], cm[m]):
            at.append(tc)
            av.append(max(dc, av[-1]))
            if not missed:
                break
        if len(at) == 1 or at[-1] < tb:
            # capped until the end of the run: extend at the cycle's mean rate before the cap
            j = i0 - 1
            k = j
            while k > 0 and u[k - 1] <= u[k] and not capped[k - 1]:
                k -= 1
            rate = (u[j] - u[k]) / (t[j] - t[k]) if j > k and t[j] > t[k] else 0.0
            at.append(tb + 1.0)
            av.append(av[-1] + max(rate, 0.0) * (tb + 1.0 - at[-2]))
        u[i0:i1] = np.interp(t[i0:i1], at, av)


@dataclass
class Replay:
    """Emptyings of one policy (sorted by container, then time) and the figures they give."""

    dev: np.ndarray
    t: np.ndarray
    residual: np.ndarray
    fill_before: np.ndarray  # uncapped demand fill just before the emptying (NaN for the initial state)


def overflow_events(dem: Demand, emp: Replay, t_end: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(container, start, end) of every overflow: the fill of a cycle (from an emptying to
    the next, or ``t_end``) passing 1.0."""
    o = np.lexsort((emp.t, emp.dev))
    dev, t, r = emp.dev[o], emp.t[o], emp.residual[o]
    nxt = np.r_[t[1:], np.inf]
    nxt[np.r_[dev[1:] != dev[:-1], True]] = np.inf
    nxt = np.minimum(nxt, t_end)
    d_e = dem.at(dev, t)
    tau = dem.first_time_reaching(dev, d_e + 1.0 - r)
    tau = np.maximum(tau, t)
    m = tau < nxt
    return dev[m], tau[m], nxt[m]


@dataclass
class LedgerResult:
    table: pa.Table
    days: list[dict[str, Any]]
    totals: dict[str, dict[str, Any]]
    params: dict[str, Any]
    elapsed_s: float
    plans: list[DayPlan] = field(default_factory=list, repr=False)
    #: consistency of the replay with the simulator's own figures (fixed policy)
    checks: dict[str, Any] = field(default_factory=dict)

    def text(self) -> str:
        """The per-day table and the totals, as Markdown."""
        lines = [
            "| date | policy | km | truck-h | trucks | stops | emptyings | mean fill at emptying | overflows | overflow-h | CO2 (kg) |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for r in self.table.to_pylist():
            day = r["date"].isoformat() if r["date"] else "**total**"
            mf = "" if r["mean_fill_at_emptying"] is None else f"{r['mean_fill_at_emptying']:.3f}"
            lines.append(
                f"| {day} | {r['policy']} | {r['km']:.1f} | {r['truck_hours']:.1f} | {r['trucks']} | {r['stops']} | "
                f"{r['emptyings']} | {mf} | {r['overflows']} | {r['overflow_hours']:.0f} | {r['co2_kg']:.0f} |"
            )
        f, p = self.totals["fixed"], self.totals["planned"]
        km_change = p["km"] / f["km"] - 1.0 if f["km"] else float("nan")
        lines.append("")
        lines.append(
            f"km {km_change:+.1%} (goal -30 %), overflows {int(p['overflows'])} vs {int(f['overflows'])} "
            f"(goal: no more), truck-hours {p['truck_hours'] / f['truck_hours'] - 1.0 if f['truck_hours'] else 0:+.1%}, "
            f"emptyings {int(p['emptyings'])} vs {int(f['emptyings'])}."
        )
        return "\n".join(lines)

    def write(self, out_dir: str | os.PathLike[str]) -> dict[str, Path]:
        """``ledger.parquet``, ``ledger.png`` and ``ledger.json`` (totals, goals, checks, parameters)."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {"table": out / "ledger.parquet", "chart": out / "ledger.png", "json": out / "ledger.json"}
        pq.write_table(self.table, paths["table"])
        write_chart(self.table, paths["chart"])
        paths["json"].write_text(
            json.dumps(
                {"totals": self.totals, "goals": self.goals(), "checks": self.checks, "params": self.params},
                indent=2,
                default=str,
            ),
            encoding="utf-8",
        )
        return paths

    def goals(self) -> dict[str, dict[str, Any]]:
        f, p = self.totals["fixed"], self.totals["planned"]
        km = p["km"] / f["km"] - 1.0 if f["km"] else float("nan")
        return {
            "km_reduction": {"goal": "<= -30 %", "measured": round(km, 4), "met": bool(km <= -0.30)},
            "overflows": {
                "goal": "planned <= fixed",
                "measured": f"{int(p['overflows'])} vs {int(f['overflows'])}",
                "met": bool(p["overflows"] <= f["overflows"]),
            },
        }


def write_chart(table: pa.Table, path: str | os.PathLike[str]) -> Path:
    """PNG: km per day for both policies (bars) and cumulative overflows (lines)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    days = table.filter(pc.is_valid(table.column("date")))
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(10, 7), dpi=100, sharex=True)
    dates = sorted(set(days.column("date").to_pylist()))
    x = np.arange(len(dates))
    for k, (pol, col) in enumerate((("fixed", "#888888"), ("planned", "#1f77b4"))):
        sub = days.filter(pc.equal(days.column("policy"), pol)).to_pylist()
        by = {r["date"]: r for r in sub}
        km = [by[d]["km"] if d in by else 0.0 for d in dates]
        ov = np.cumsum([by[d]["overflows"] if d in by else 0 for d in dates])
        a1.bar(x + (k - 0.5) * 0.4, km, width=0.4, color=col, label=f"{pol}: {sum(km):,.0f} km")
        a2.plot(x, ov, "-o", ms=3, color=col, label=f"{pol}: {int(ov[-1]) if len(ov) else 0} overflows")
    a1.set_ylabel("km per day")
    a1.legend()
    a2.set_ylabel("cumulative overflows")
    a2.legend()
    a2.set_xticks(x)
    a2.set_xticklabels([d.isoformat()[5:] for d in dates], rotation=90, fontsize=7)
    a1.set_title("savings ledger: fixed schedule vs sensor-driven planning (same simulated demand)")
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


def _local_date(ts: np.ndarray) -> np.ndarray:
    """Local (Europe/Paris) date of UTC seconds, as numpy datetime64[D]."""
    # the UTC offset is 1 or 2 h: take it per distinct UTC hour
    hours = np.floor(np.asarray(ts, np.float64) / 3600.0).astype(np.int64)
    uniq, inv = np.unique(hours, return_inverse=True)
    off = np.array(
        [dt.datetime.fromtimestamp(int(h) * 3600, TZ).utcoffset().total_seconds() for h in uniq]  # type: ignore[union-attr]
    )
    local = np.asarray(ts, np.float64) + off[inv]
    return np.floor(local / 86400.0).astype("datetime64[D]")


def run_ledger(
    *,
    scale: float = 1.0,
    days: int = 28,
    warmup_days: int = 21,
    start: str = "2025-02-03",
    seed: int = 1,
    territory_seed: int = 0,
    settings: PlanSettings | None = None,
    time_limit_s: float | None = None,
    effort: float = 1.0,
    solve_fixed: bool = True,
    workers: int = 1,
    shared_dir: str | os.PathLike[str] | None = None,
    max_containers: int | None = None,
    progress: Callable[[str], None] | None = None,
    keep_plans: bool = False,
) -> LedgerResult:
    """Replay ``days`` days (after ``warmup_days`` of shared history) under both policies.

    ``max_containers`` keeps the first containers of the territory (tests). The result's
    ``checks`` compare the fixed policy's replayed overflows with the simulator's.
    ``effort`` scales PyVRP's iterations for both policies (``time_limit_s``: wall-clock
    instead). ``solve_fixed=False`` does not route the fixed schedule (its km, hours and
    trucks are 0; its emptyings and overflows are counted): for tuning the planned policy.
    ``workers`` > 1 routes the fixed schedule's days in ``workers - 1`` other processes while
    this one plans (the result is the same: PyVRP stops on iterations).
    """
    from ..forecast import Forecaster
    from ..simulate import Territory, simulate, truth_columns

    s = settings or PlanSettings()
    t_start = time.perf_counter()
    say = progress or (lambda _m: None)
    ter = Territory.pma(shared_dir, scale=scale, seed=territory_seed)
    if max_containers is not None and max_containers < len(ter):
        ter.registry = ter.registry.slice(0, max_containers)
        ter.sim = ter.sim.slice(0, max_containers)
    cont = Containers(ter.registry)
    n = len(cont)
    reg = ter.registry
    dev_ids = reg.column("device_id").to_pylist()
    depth = np.asarray(reg.column("depth_mm").to_numpy(), np.float64)
    offset = np.asarray(reg.column("offset_mm").to_numpy(), np.float64)
    cap = np.array([HEAP_MAX.get(k, 1.0) for k in cont.kind], np.float64)
    sim = simulate(
        ter, days=warmup_days + days + 1, start=start, interval_h=1.0, seed=seed, envelopes="raw", truth=True
    )
    missed_p = float(sim.params().get("missed_collection_p", 0.01)) if hasattr(sim, "params") else 0.01

    # -- ground truth ------------------------------------------------------------
    tc = truth_columns(sim, dev_ids, depth, offset)
    rd = {
        "t": tc.t_ns / 1e9,
        "y": tc.true_fill,
        "m": tc.fill,
        "tilt": tc.tilt,
        "status": tc.delivery,
    }
    r_dev = tc.dev
    cd = {
        "t": tc.c_t_ns / 1e9,
        "before": tc.c_fill_before,
        "demand": tc.c_demand,
        "after": tc.c_after,
    }
    c_dev = tc.c_dev
    c_missed = tc.c_missed
    say(f"simulated {n} containers, {len(r_dev):,} measurements, {len(c_dev):,} collection passes")
    dem = demand_from_truth(
        n, r_dev, rd["t"], rd["y"], c_dev, cd["t"], cd["demand"], cd["after"], c_missed, cap
    )

    first_day = dt.date.fromisoformat(start) + dt.timedelta(days=warmup_days)
    dates = [first_day + dt.timedelta(days=k) for k in range(days)]
    T0 = dt.datetime(first_day.year, first_day.month, first_day.day, tzinfo=TZ).timestamp()
    last = dates[-1] + dt.timedelta(days=1)
    T_end = dt.datetime(last.year, last.month, last.day, tzinfo=TZ).timestamp()

    # readings: when each becomes known (live: measured; stored: with the next live frame)
    ro = np.lexsort((rd["t"], r_dev))
    r_dev, r_t, r_y, r_m, r_tilt, r_st = (
        r_dev[ro],
        rd["t"][ro],
        rd["y"][ro],
        rd["m"][ro],
        rd["tilt"][ro].astype(np.int8),
        rd["status"][ro].astype(np.int8),
    )
    known = np.full(len(r_t), np.inf)
    live = r_st == 0
    known[live] = r_t[live]
    live_idx = np.flatnonzero(live)
    lk = r_dev[live_idx] * Demand.T_SPAN + r_t[live_idx]
    st_idx = np.flatnonzero(r_st == 1)
    j = np.searchsorted(lk, r_dev[st_idx] * Demand.T_SPAN + r_t[st_idx], side="left")
    okj = j < len(live_idx)
    same = np.zeros(len(st_idx), bool)
    same[okj] = r_dev[live_idx[j[okj]]] == r_dev[st_idx[okj]]
    known[st_idx[same]] = r_t[live_idx[j[same]]]
    r_err = r_m - r_y  # what the sensor got wrong (NaN: no distance)
    D_r = dem.at(r_dev, r_t)

    # -- fixed policy: the simulator's collections -----------------------------------
    c_local = _local_date(cd["t"])
    fixed_rows: list[dict[str, Any]] = []
    fixed_jobs: list[tuple[dict[str, Any], Any]] = []
    plans: list[DayPlan] = []
    pool = (
        ProcessPoolExecutor(max_workers=workers - 1, mp_context=multiprocessing.get_context("spawn"))
        if workers > 1 and solve_fixed
        else None
    )

    # -- planned policy -------------------------------------------------------------------
    fc = Forecaster(threshold=s.full_level, utc_offset_h=1.0)
    # initial state at T0: last non-missed collection before T0, else the first reading
    E_dev: list[int] = []
    E_t: list[float] = []
    E_r: list[float] = []
    E_before: list[float] = []
    done = ~c_missed & (cd["t"] < T0)
    for i in range(n):
        m = np.flatnonzero(done & (c_dev == i))
        if len(m):
            k = m[np.argmax(cd["t"][m])]
            E_dev.append(i)
            E_t.append(float(cd["t"][k]))
            E_r.append(float(cd["after"][k]))
        else:
            lo = dem.bounds[i]
            if lo == dem.bounds[i + 1]:
                continue
            k = np.searchsorted(r_dev, i)
            E_dev.append(i)
            E_t.append(float(dem.t[lo]))
            E_r.append(float(r_y[k]) if k < len(r_y) and r_dev[k] == i else 0.0)
        E_before.append(np.nan)
    rng = np.random.default_rng(seed * 7919 + 17)
    value = np.where(r_t < T0, r_m, np.nan)  # what the planned policy's sensors report
    fed = np.zeros(len(r_t), bool)
    cut = T0
    planned_days: dict[dt.date, dict[str, Any]] = {}

    def synth(t_lo: float, t_hi: float) -> None:
        sel = np.flatnonzero((r_t >= t_lo) & (r_t < t_hi))
        if not len(sel):
            return
        ed = np.asarray(E_dev, np.int64)
        et = np.asarray(E_t)
        er = np.asarray(E_r)
        o = np.lexsort((et, ed))
        ek = ed[o] * Demand.T_SPAN + et[o]
        q = np.searchsorted(ek, r_dev[sel] * Demand.T_SPAN + r_t[sel], side="right") - 1
        ok = q >= 0
        ok[ok] &= ed[o][q[ok]] == r_dev[sel][ok]
        base_t = np.where(ok, et[o][np.maximum(q, 0)], np.nan)
        base_r = np.where(ok, er[o][np.maximum(q, 0)], 0.0)
        f = base_r + D_r[sel] - dem.at(r_dev[sel], np.nan_to_num(base_t))
        phys = np.clip(f, 0.0, cap[r_dev[sel]])
        value[sel] = np.where(ok, phys + r_err[sel], r_m[sel])

    def feed(until: float) -> None:
        sel = np.flatnonzero(~fed & (known <= until))
        if not len(sel):
            return
        o = sel[np.lexsort((r_t[sel], known[sel]))]
        fed[o] = True
        fc.update(r_dev[o], r_t[o].astype(np.int64), value[o], r_tilt[o])

    feed(T0)
    for day in dates:
        morning = shift_start(day, s).timestamp()
        synth(cut, morning)
        cut = morning
        feed(morning)
        # fixed policy: the day's non-missed collections, routed (in the pool when there is one)
        sel = np.flatnonzero(c_local == np.datetime64(day))
        job: Any = None
        if len(sel) and solve_fixed:
            fp = fixed_problem(
                day, cont, c_dev[sel], np.minimum(cd["demand"][sel], cap[c_dev[sel]]), ter.facilities, s
            )
            if pool is not None:
                job = pool.submit(solve_day, fp, effort=effort, time_limit_s=time_limit_s)
            else:
                job = solve_day(fp, effort=effort, time_limit_s=time_limit_s)
        fixed_jobs.append(({"date": day, "stops": len(sel), "missed": int(c_missed[sel].sum())}, job))
        # planned policy
        if not is_working_day(day, s):
            planned_days[day] = {
                "km": 0.0,
                "truck_hours": 0.0,
                "trucks": 0,
                "stops": 0,
                "missed": 0,
                "feasible": True,
            }
            continue
        prob = forecast_problem(day, cont, fc, ter.facilities, s)
        plan = solve_day(prob, effort=effort, time_limit_s=time_limit_s)
        plan.summary["policy"] = "planned"
        if keep_plans:
            plans.append(plan)
        idx = np.array([cont.index[c] for c in prob.container_id[plan.visited]], np.int64)
        arr = plan.arrival_s.astype(np.float64)
        miss = rng.random(len(idx)) < missed_p
        res = rng.uniform(0.0, 0.03, len(idx))
        ed = np.asarray(E_dev, np.int64)
        for i, ta, mi, rr in zip(idx, arr, miss, res):
            if mi:
                continue
            # fill just before: from this container's last emptying
            mm = np.flatnonzero(ed == i) if len(ed) else np.zeros(0, np.int64)
            k = mm[-1] if len(mm) else -1
            if k >= 0:
                fb = E_r[k] + float(
                    dem.at(np.array([i]), np.array([ta]))[0] - dem.at(np.array([i]), np.array([E_t[k]]))[0]
                )
            else:
                fb = float("nan")
            E_dev.append(int(i))
            E_t.append(float(ta))
            E_r.append(float(rr))
            E_before.append(fb)
            ed = np.r_[ed, i]
        ps = plan.summary
        planned_days[day] = {
            "km": ps["km"],
            "truck_hours": ps["truck_hours"],
            "trucks": ps["trucks_used"],
            "stops": ps["stops"],
            "missed": int(miss.sum()),
            "feasible": ps["feasible"],
            "required": ps["required"],
            "optional": ps["optional"],
            "required_not_visited": ps["required_not_visited"],
        }
        say(
            f"{day}: planned {ps['km']:.0f} km {ps['stops']} stops "
            f"({ps['required']} required, {ps['optional']} optional), {ps['iterations']} iterations"
        )
    for row, job in fixed_jobs:
        fs: dict[str, Any] = {"km": 0.0, "truck_hours": 0.0, "trucks_used": 0, "feasible": True}
        if job is not None:
            fplan = job.result() if pool is not None else job
            fplan.summary["policy"] = "fixed"
            if keep_plans:
                plans.append(fplan)
            fs = fplan.summary
            say(f"{row['date']}: fixed {fs['km']:.0f} km {row['stops']} stops, {fs['iterations']} iterations")
        row.update(
            km=fs["km"], truck_hours=fs["truck_hours"], trucks=fs["trucks_used"], feasible=fs["feasible"]
        )
        fixed_rows.append(row)
    if pool is not None:
        pool.shutdown()

    # -- figures per day, same bookkeeping for both policies ---------------------------------
    fixed_emp = Replay(
        dev=np.r_[c_dev[~c_missed]],
        t=cd["t"][~c_missed],
        residual=cd["after"][~c_missed],
        fill_before=cd["demand"][~c_missed],
    )
    # the fixed replay also needs the state at the start of the run (first reading)
    first_dev = np.flatnonzero(dem.bounds[1:] > dem.bounds[:-1])
    init_t = dem.t[dem.bounds[first_dev]]
    k0 = np.searchsorted(r_dev, first_dev)
    fixed_emp = Replay(
        dev=np.r_[first_dev, fixed_emp.dev],
        t=np.r_[init_t, fixed_emp.t],
        residual=np.r_[r_y[k0], fixed_emp.residual],
        fill_before=np.r_[np.full(len(first_dev), np.nan), fixed_emp.fill_before],
    )
    planned_emp = Replay(
        dev=np.asarray(E_dev, np.int64),
        t=np.asarray(E_t),
        residual=np.asarray(E_r),
        fill_before=np.asarray(E_before),
    )
    rows: list[dict[str, Any]] = []
    totals: dict[str, dict[str, Any]] = {}
    for pol, emp, info in (
        ("fixed", fixed_emp, {r["date"]: r for r in fixed_rows}),
        ("planned", planned_emp, planned_days),
    ):
        _, ov_start, ov_end = overflow_events(dem, emp, T_end)
        ov_day = _local_date(ov_start) if len(ov_start) else np.zeros(0, "datetime64[D]")
        real = np.isfinite(emp.fill_before) & (emp.t >= T0) & (emp.t < T_end)
        e_day = _local_date(emp.t[real]) if real.any() else np.zeros(0, "datetime64[D]")
        e_fill = np.minimum(emp.fill_before[real], cap[emp.dev[real]])
        e_lit = e_fill * cont.volume_l[emp.dev[real]]
        tot: dict[str, Any] = {
            k: 0.0
            for k in (
                "km",
                "truck_hours",
                "trucks",
                "stops",
                "emptyings",
                "missed",
                "litres",
                "overflows",
                "overflow_hours",
                "co2_kg",
            )
        }
        fills: list[float] = []
        feas = True
        for day in dates:
            inf = info.get(
                day, {"km": 0.0, "truck_hours": 0.0, "trucks": 0, "stops": 0, "missed": 0, "feasible": True}
            )
            dm = e_day == np.datetime64(day)
            om = ov_day == np.datetime64(day)
            ohours = _overlap_hours(ov_start, ov_end, day)
            row: dict[str, Any] = {
                "date": day,
                "policy": pol,
                "km": float(inf["km"]),
                "truck_hours": float(inf["truck_hours"]),
                "trucks": int(inf["trucks"]),
                "stops": int(inf["stops"]),
                "emptyings": int(dm.sum()),
                "missed": int(inf["missed"]),
                "mean_fill_at_emptying": float(e_fill[dm].mean()) if dm.any() else None,
                "litres": float(e_lit[dm].sum()),
                "overflows": int(om.sum()),
                "overflow_hours": ohours,
                "co2_kg": float(inf["km"]) * s.co2_kg_per_km,
                "feasible": bool(inf["feasible"]),
            }
            rows.append(row)
            for k in tot:
                tot[k] += row[k]
            fills.extend(e_fill[dm].tolist())
            feas &= row["feasible"]
        tot["mean_fill_at_emptying"] = float(np.mean(fills)) if fills else None
        tot["feasible"] = feas
        totals[pol] = tot
    for pol in ("fixed", "planned"):
        t = totals[pol]
        rows.append(
            {
                "date": None,
                "policy": pol,
                **{k: t[k] for k in ("km", "truck_hours", "co2_kg", "litres", "overflow_hours")},
                "trucks": int(t["trucks"]),
                "stops": int(t["stops"]),
                "emptyings": int(t["emptyings"]),
                "missed": int(t["missed"]),
                "overflows": int(t["overflows"]),
                "mean_fill_at_emptying": t["mean_fill_at_emptying"],
                "feasible": t["feasible"],
            }
        )
    rows.sort(key=lambda r: (r["date"] is None, r["date"] or dt.date.min, r["policy"]))
    table = pa.Table.from_pylist(rows, schema=LEDGER_SCHEMA)

    # consistency with the simulator's own figures (fixed policy)
    sim_ov = tc.o_start_ns / 1e9
    sim_dev = tc.o_dev
    in_period = (sim_ov >= T0) & (sim_ov < T_end)
    f_ov_dev, f_ov_start, _ = overflow_events(dem, fixed_emp, T_end)
    mine = (f_ov_start >= T0) & (f_ov_start < T_end)
    fixed_real = (cd["t"] >= T0) & (cd["t"] < T_end) & ~c_missed
    checks = {
        "sim_overflows_in_period": int(in_period.sum()),
        "replayed_fixed_overflows": int(mine.sum()),
        "sim_emptyings_in_period": int(fixed_real.sum()),
        "replayed_fixed_emptyings": int(totals["fixed"]["emptyings"]),
        "sim_mean_fill_at_emptying": float(cd["before"][fixed_real].mean()) if fixed_real.any() else None,
        "sim_overflow_starts": sorted(zip(sim_dev[in_period].tolist(), sim_ov[in_period].tolist())),
        "replayed_overflow_starts": sorted(zip(f_ov_dev[mine].tolist(), f_ov_start[mine].tolist())),
    }
    params = {
        "scale": scale,
        "containers": n,
        "days": days,
        "warmup_days": warmup_days,
        "start": start,
        "first_day": first_day.isoformat(),
        "seed": seed,
        "territory_seed": territory_seed,
        "missed_p": missed_p,
        "settings": _settings_dict(s),
        "time_limit_s": s.time_limit_s if time_limit_s is None else time_limit_s,
        "effort": effort,
        "solve_fixed": solve_fixed,
        "workers": workers,
        "planned_days": {d.isoformat(): v for d, v in planned_days.items()},
    }
    return LedgerResult(
        table=table,
        days=rows,
        totals=totals,
        params=params,
        elapsed_s=time.perf_counter() - t_start,
        plans=plans,
        checks=checks,
    )


def _overlap_hours(start: np.ndarray, end: np.ndarray, day: dt.date) -> float:
    a = dt.datetime(day.year, day.month, day.day, tzinfo=TZ).timestamp()
    nd = day + dt.timedelta(days=1)
    b = dt.datetime(nd.year, nd.month, nd.day, tzinfo=TZ).timestamp()
    if not len(start):
        return 0.0
    return float(np.clip(np.minimum(end, b) - np.maximum(start, a), 0.0, None).sum() / 3600.0)


def _settings_dict(s: PlanSettings) -> dict[str, Any]:
    import dataclasses

    return dataclasses.asdict(s)
