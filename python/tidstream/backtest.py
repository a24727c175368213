"""Backtests of the fill forecaster: real Wyndham smart-bin data and the simulated fleet.

``tidstream backtest wyndham [--csv PATH]`` replays the Wyndham City daily fill levels
(``shared/data/wyndham-smartbins``) with the evaluation protocol of its SOURCE.md and
prints MAE at 1, 2 and 3 days beside persistence computed in the same run, Brier score
and ROC AUC for "fill >= 0.8", and the coverage of the p10-p90 interval.

``tidstream backtest sim`` runs the simulated fleet (``tidstream.simulate``) and scores
hours-to-threshold against the simulator's ground truth, beside a naive last-rate
baseline.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import itertools
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .forecast import Forecaster

__all__ = [
    "SOURCE_PERSISTENCE_MAE",
    "SimResult",
    "WyndhamResult",
    "add_parser",
    "auc",
    "default_wyndham_csv",
    "load_wyndham",
    "run",
    "sim_backtest",
    "wyndham_backtest",
]

#: Persistence MAE per horizon (days) as published in the data set's SOURCE.md.
SOURCE_PERSISTENCE_MAE = {1: 0.121, 2: 0.189, 3: 0.216}
#: Goals (issue 5).
GOAL_GAIN_H23 = 0.15
GOAL_AUC_H1 = 0.90
GOAL_COVERAGE = (0.75, 0.85)

TEST_START = dt.date(2020, 7, 1)
TEST_END = dt.date(2021, 5, 3)
DAY_S = 86_400


def default_wyndham_csv() -> Path:
    """``$TIDSTREAM_SHARED/data/wyndham-smartbins/fill_levels_daily.csv``, else the
    repository's sibling ``../shared``."""
    from .simulate.territory import default_shared_dir

    return default_shared_dir() / "data" / "wyndham-smartbins" / "fill_levels_daily.csv"


def auc(y: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC (Mann-Whitney, ties counted half)."""
    y = np.asarray(y, bool)
    s = np.asarray(score, np.float64)
    n1 = int(y.sum())
    n0 = len(y) - n1
    if n1 == 0 or n0 == 0:
        return math.nan
    order = np.argsort(s, kind="mergesort")
    ss = s[order]
    ranks = np.empty(len(s), np.float64)
    # average ranks of ties
    i = 0
    n = len(ss)
    starts = np.flatnonzero(np.r_[True, ss[1:] != ss[:-1]])
    ends = np.r_[starts[1:], n]
    avg = (starts + ends + 1) / 2.0
    ranks_sorted = np.repeat(avg, ends - starts)
    ranks[order] = ranks_sorted
    del i
    return float((ranks[y].sum() - n1 * (n1 + 1) / 2.0) / (n1 * n0))


@dataclass
class Wyndham:
    """Cleaned readings: one per (bin, day), in file order within a day kept last."""

    bin: np.ndarray  # int64
    day: np.ndarray  # int64, days since 1970-01-01
    fill: np.ndarray  # float64, Fullness / 10


def load_wyndham(path: str | os.PathLike[str] | None = None) -> Wyndham:
    """Read the CSV (``Bin ID, Fullness, fullnessThreshold, timestamp, reason``).

    Duplicated (bin, day) rows keep the last one in file order; nothing else is
    cleaned (the SOURCE.md protocol's persistence figures use every bin).
    """
    p = Path(path) if path is not None else default_wyndham_csv()
    if not p.exists():
        raise FileNotFoundError(
            f"Wyndham CSV not found at {p}: pass --csv PATH or set TIDSTREAM_SHARED to the shared folder"
        )
    last: dict[tuple[int, int], float] = {}
    with p.open(newline="") as f:
        rd = csv.DictReader(f)
        need = {"Bin ID", "Fullness", "timestamp"}
        if not need <= set(rd.fieldnames or []):
            raise ValueError(f"{p}: expected columns {sorted(need)}, got {rd.fieldnames}")
        for row in rd:
            d, m, y = row["timestamp"].split("-")
            day = (dt.date(int(y), int(m), int(d)) - dt.date(1970, 1, 1)).days
            last[(int(row["Bin ID"]), day)] = float(row["Fullness"]) / 10.0
    keys = sorted(last, key=lambda k: (k[1], k[0]))
    return Wyndham(
        bin=np.array([k[0] for k in keys], np.int64),
        day=np.array([k[1] for k in keys], np.int64),
        fill=np.array([last[k] for k in keys], np.float64),
    )


@dataclass
class HorizonScore:
    h_days: int
    n: int
    mae: float
    mae_persistence: float
    gain: float
    brier: float
    brier_persistence: float
    auc: float
    auc_persistence: float
    coverage: float


@dataclass
class WyndhamResult:
    horizons: list[HorizonScore]
    elapsed_s: float
    readings: int
    bins: int
    goals: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def table(self) -> str:
        lines = [
            "| h (days) | n | MAE tidstream | MAE persistence | gain | Brier | Brier persistence | AUC | AUC persistence | p10-p90 coverage |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for s in self.horizons:
            lines.append(
                f"| {s.h_days} | {s.n:,} | {s.mae:.3f} | {s.mae_persistence:.3f} | {s.gain:+.1%} | {s.brier:.4f} | "
                f"{s.brier_persistence:.4f} | {s.auc:.3f} | {s.auc_persistence:.3f} | {s.coverage:.1%} |"
            )
        return "\n".join(lines)


def wyndham_backtest(
    path: str | os.PathLike[str] | None = None,
    *,
    threshold: float = 0.8,
    horizons_days: tuple[int, ...] = (1, 2, 3),
    test_start: dt.date = TEST_START,
    test_end: dt.date = TEST_END,
    **forecaster_kw: Any,
) -> WyndhamResult:
    """Replay the Wyndham data day by day; at each test day forecast every bin read
    that day using only readings dated up to that day (no look-ahead).

    A pair (bin, t, t+h) counts when both days have a reading and the level did not
    drop between them (SOURCE.md). Fill at t+h is compared with the forecast's p50
    (MAE), p10/p90 (coverage) and ``p_over_threshold`` (Brier, AUC of ``>= 0.8``).
    """
    t0 = time.perf_counter()
    w = load_wyndham(path)
    kw = {
        "calibration_horizons_h": tuple(24.0 * h for h in horizons_days),
        # learn from the pairs the protocol scores (level at t+h not below level at t)
        "score_rule": "endpoints",
        **forecaster_kw,
    }
    fc = Forecaster(threshold=threshold, **kw)
    obs = dict(zip(zip(w.bin.tolist(), w.day.tolist()), w.fill.tolist()))
    d0 = (test_start - dt.date(1970, 1, 1)).days
    d1 = (test_end - dt.date(1970, 1, 1)).days
    bounds = np.flatnonzero(np.r_[True, w.day[1:] != w.day[:-1], True])
    rows: dict[int, list[tuple[float, float, float, float, float, float]]] = {h: [] for h in horizons_days}
    hz = [24.0 * h for h in horizons_days]
    for a, b in itertools.pairwise(bounds):
        day = int(w.day[a])
        bins = w.bin[a:b]
        fc.update(bins, w.day[a:b] * DAY_S, w.fill[a:b])
        if not d0 <= day <= d1:
            continue
        tab = fc.predict(day * DAY_S, horizons_h=hz, container_ids=bins)
        ids = tab.column("container_id").to_numpy()
        hh = tab.column("horizon_h").to_numpy()
        p50 = tab.column("fill_p50").to_numpy()
        p10 = tab.column("fill_p10").to_numpy()
        p90 = tab.column("fill_p90").to_numpy()
        po = tab.column("p_over_threshold").to_numpy()
        for i in range(len(ids)):
            h = round(hh[i] / 24.0)
            bin_ = int(ids[i])
            x = obs[(bin_, day)]
            y = obs.get((bin_, day + h))
            if y is None or y < x:
                continue
            rows[h].append((x, y, p50[i], p10[i], p90[i], po[i]))
    scores = []
    for h in horizons_days:
        r = np.array(rows[h], np.float64).reshape(-1, 6)
        x, y, p50, p10, p90, po = r.T
        ev = y >= threshold - 1e-9
        pers_p = (x >= threshold - 1e-9).astype(np.float64)
        mae = float(np.abs(y - p50).mean())
        mp = float(np.abs(y - x).mean())
        scores.append(
            HorizonScore(
                h_days=h,
                n=len(y),
                mae=mae,
                mae_persistence=mp,
                gain=1.0 - mae / mp,
                brier=float(((po - ev) ** 2).mean()),
                brier_persistence=float(((pers_p - ev) ** 2).mean()),
                auc=auc(ev, po),
                auc_persistence=auc(ev, x),
                coverage=float(((y >= p10 - 1e-6) & (y <= p90 + 1e-6)).mean()),
            )
        )
    res = WyndhamResult(
        horizons=scores, elapsed_s=time.perf_counter() - t0, readings=len(w.fill), bins=len(np.unique(w.bin))
    )
    res.goals = _wyndham_goals(res)
    return res


def _wyndham_goals(res: WyndhamResult) -> dict[str, dict[str, Any]]:
    g: dict[str, dict[str, Any]] = {}
    by = {s.h_days: s for s in res.horizons}
    for h, s in by.items():
        need = GOAL_GAIN_H23 if h in (2, 3) else 0.0
        g[f"mae_beats_persistence_h{h}"] = {
            "goal": f"gain > {need:.0%}" if need else "gain > 0",
            "measured": round(s.gain, 4),
            "met": s.gain > need,
        }
        src = SOURCE_PERSISTENCE_MAE.get(h)
        if src is not None:
            g[f"persistence_reproduces_source_h{h}"] = {
                "goal": f"{src:.3f} within rounding",
                "measured": round(s.mae_persistence, 4),
                "met": abs(s.mae_persistence - src) < 0.0005 + 1e-9,
            }
        lo, hi = GOAL_COVERAGE
        g[f"coverage_h{h}"] = {
            "goal": f"{lo:.0%}-{hi:.0%}",
            "measured": round(s.coverage, 4),
            "met": lo <= s.coverage <= hi,
        }
    if 1 in by:
        g["auc_h1"] = {
            "goal": f">= {GOAL_AUC_H1}",
            "measured": round(by[1].auc, 4),
            "met": by[1].auc >= GOAL_AUC_H1,
        }
    return g


# -- simulated fleet -----------------------------------------------------------------


@dataclass
class HoursScore:
    """Errors of a hours-to-threshold estimate against the simulator's truth.

    Every case has an observation window (until the next emptying, the end of the
    run or ``max_horizon_h``). When the true fill crosses the threshold inside it,
    the error is ``estimate - truth``; when it does not (censored), only an estimate
    earlier than the window's end is an error, of ``window - estimate`` hours (a
    lower bound). No answer ("not within max_horizon_h") counts as max_horizon_h.
    """

    n: int
    crossed: int
    mae_h: float
    mae_crossed_h: float
    median_ae_crossed_h: float
    bias_crossed_h: float
    within_12h: float
    within_24h: float
    no_answer: float

    @staticmethod
    def of(pred: np.ndarray, truth: np.ndarray, window: np.ndarray, cap_h: float) -> HoursScore:
        if not len(truth):
            return HoursScore(0, 0, *([math.nan] * 7))
        none = ~np.isfinite(pred)
        p = np.where(none, cap_h, np.minimum(pred, cap_h))
        crossed = np.isfinite(truth)
        err = np.where(crossed, p - np.where(crossed, truth, 0.0), -np.maximum(window - p, 0.0))
        ae = np.abs(err)
        ec = err[crossed]
        return HoursScore(
            n=len(truth),
            crossed=int(crossed.sum()),
            mae_h=float(ae.mean()),
            mae_crossed_h=float(np.abs(ec).mean()) if len(ec) else math.nan,
            median_ae_crossed_h=float(np.median(np.abs(ec))) if len(ec) else math.nan,
            bias_crossed_h=float(ec.mean()) if len(ec) else math.nan,
            within_12h=float((ae <= 12).mean()),
            within_24h=float((ae <= 24).mean()),
            no_answer=float(none.mean()),
        )


@dataclass
class SimResult:
    threshold: float
    containers: int
    days: float
    readings: int
    evaluations: int
    forecaster: HoursScore
    baseline: HoursScore
    #: share of crossings that did not happen before the pessimistic estimate
    pessimistic_early_enough: float
    #: among cases whose estimate lies in the observed window, the share whose true
    #: crossing came by the estimate (calibrated: 0.5 for p50, 0.1 for p90)
    crossed_by_estimate: dict[str, float]
    by_horizon: dict[str, dict[str, HoursScore]]
    forecaster_stats: dict[str, int]
    update_s: float
    predict_s: float
    elapsed_s: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def table(self) -> str:
        lines = [
            "| estimate | cases | crossed | MAE all (h) | MAE crossed (h) | median AE crossed (h) | bias crossed (h) | within 12 h | within 24 h | no answer |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for name, s in (("tidstream (p50)", self.forecaster), ("naive last rate (24 h)", self.baseline)):
            lines.append(
                f"| {name} | {s.n:,} | {s.crossed:,} | {s.mae_h:.1f} | {s.mae_crossed_h:.1f} | {s.median_ae_crossed_h:.1f} | "
                f"{s.bias_crossed_h:+.1f} | {s.within_12h:.1%} | {s.within_24h:.1%} | {s.no_answer:.1%} |"
            )
        return "\n".join(lines)

    def horizon_table(self) -> str:
        lines = [
            "| true time to threshold | crossings | tidstream MAE (h) | baseline MAE (h) |",
            "| --- | ---: | ---: | ---: |",
        ]
        for k, v in self.by_horizon.items():
            lines.append(
                f"| {k} | {v['forecaster'].n:,} | {v['forecaster'].mae_h:.1f} | {v['baseline'].mae_h:.1f} |"
            )
        return "\n".join(lines)


def _sim_readings(
    sim: Any, reg_index: dict[str, int], depth: np.ndarray, offset: np.ndarray
) -> dict[str, np.ndarray]:
    """Truth readings and non-missed collections of a run as numpy columns (times in UTC s)."""
    from .simulate import DELIVERY_CODES, truth_columns

    tc = truth_columns(sim, list(reg_index), depth, offset)
    done = ~tc.c_missed
    return {
        "dev": tc.dev,
        "t": tc.t_ns // 1_000_000_000,
        "true_fill": tc.true_fill,
        "fill": tc.fill,
        "tilt": tc.tilt,
        "delivered": tc.delivery != DELIVERY_CODES["lost"],
        "c_dev": tc.c_dev[done],
        "c_t": tc.c_t_ns[done] // 1_000_000_000,
    }


def sim_backtest(
    *,
    scale: float = 1.0,
    days: float = 60.0,
    warmup_days: float = 21.0,
    start: str = "2025-03-03",
    seed: int = 1,
    territory_seed: int = 0,
    threshold: float = 0.8,
    max_horizon_h: float = 336.0,
    shared_dir: str | os.PathLike[str] | None = None,
    utc_offset_h: float = 1.0,
    score_rule: str = "cycle",
    min_window_h: float = 72.0,
) -> SimResult:
    """Run the simulated PMA fleet hourly, feed every delivered reading to a
    :class:`Forecaster` and, once a day at 00:00 UTC after a warm-up, compare each
    container's ``hours_to_threshold`` with the truth: hours until the true fill
    first reaches ``threshold``. A case is a (container, day) below the threshold
    whose observation window (until the next emptying, the end of the run or
    ``max_horizon_h``) is at least ``min_window_h`` long, so that cases are not
    selected by how fast the container fills; crossings after the window are
    censored (see :class:`HoursScore`).

    Baseline: the naive last rate, ``(threshold - x) / rate`` with ``x`` the last
    reading and ``rate`` the change over the last 24 h of readings (no answer when
    the level did not rise).
    """
    from .simulate import Territory, simulate

    t_start = time.perf_counter()
    ter = Territory.pma(shared_dir, scale=scale, seed=territory_seed)
    reg = ter.registry
    ids = reg.column("device_id").to_pylist()
    reg_index = {d: i for i, d in enumerate(ids)}
    depth = np.asarray(reg.column("depth_mm").to_numpy(), np.float64)
    offset = np.asarray(reg.column("offset_mm").to_numpy(), np.float64)
    sim = simulate(ter, days=days, start=start, interval_h=1.0, seed=seed, envelopes="raw", truth=True)
    cols = _sim_readings(sim, reg_index, depth, offset)
    n_dev = len(ids)

    # truth per device (all measurements, delivered or not), sorted by time
    order = np.lexsort((cols["t"], cols["dev"]))
    tdev = cols["dev"][order]
    tt = cols["t"][order]
    tf = cols["true_fill"][order]
    bounds = np.searchsorted(tdev, np.arange(n_dev + 1))
    corder = np.lexsort((cols["c_t"], cols["c_dev"]))
    cdev = cols["c_dev"][corder]
    ct = cols["c_t"][corder]
    cb = np.searchsorted(cdev, np.arange(n_dev + 1))
    run_end = int(tt.max()) if len(tt) else 0

    # the forecaster's input: delivered readings in time order
    m = cols["delivered"]
    f_order = np.argsort(cols["t"][m], kind="stable")
    fdev = cols["dev"][m][f_order]
    ft = cols["t"][m][f_order]
    fx = cols["fill"][m][f_order]
    ftilt = cols["tilt"][m][f_order]
    fc = Forecaster(
        threshold=threshold, max_horizon_h=max_horizon_h, utc_offset_h=utc_offset_h, score_rule=score_rule
    )

    t0 = int(ft.min()) if len(ft) else 0
    first_eval = (t0 // DAY_S + math.ceil(warmup_days)) * DAY_S
    evals = list(range(first_eval, run_end - DAY_S, DAY_S))
    pos = 0
    up_s = pr_s = 0.0
    pred_rows: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    # per-device delivered readings for the baseline
    dorder = np.lexsort((ft, fdev))
    ddev, dtt, dx = fdev[dorder], ft[dorder], fx[dorder]
    db = np.searchsorted(ddev, np.arange(n_dev + 1))
    for T in evals:
        end = int(np.searchsorted(ft, T, side="right"))
        a = time.perf_counter()
        fc.update(fdev[pos:end], ft[pos:end], fx[pos:end], ftilt[pos:end])
        up_s += time.perf_counter() - a
        pos = end
        a = time.perf_counter()
        tab = fc.predict(T, horizons_h=[24])
        pr_s += time.perf_counter() - a
        cid = tab.column("container_id").to_numpy()
        h50 = tab.column("hours_to_threshold").to_numpy(zero_copy_only=False)
        h90 = tab.column("hours_to_threshold_p90").to_numpy(zero_copy_only=False)
        h50 = np.asarray(h50, np.float64)
        h90 = np.asarray(h90, np.float64)
        truth = np.full(len(cid), np.nan)
        window = np.full(len(cid), np.nan)
        base = np.full(len(cid), np.nan)
        for j, d in enumerate(cid):
            lo, hi = bounds[d], bounds[d + 1]
            i0 = lo + int(np.searchsorted(tt[lo:hi], T, side="right"))
            if i0 == lo or i0 >= hi or tf[i0 - 1] >= threshold:
                continue  # no truth yet / at the end / already over at T
            c_lo, c_hi = cb[d], cb[d + 1]
            k = c_lo + int(np.searchsorted(ct[c_lo:c_hi], T, side="right"))
            next_c = ct[k] if k < c_hi else run_end
            win = min((min(next_c, run_end) - T) / 3600.0, max_horizon_h)
            if win < min_window_h:
                continue
            window[j] = win
            over = np.flatnonzero(tf[i0:hi] >= threshold)
            if len(over):
                tau_h = (tt[i0 + over[0]] - T) / 3600.0
                if tau_h <= win:
                    truth[j] = tau_h
            # naive last rate over the last 24 h of delivered readings
            l0, l1 = db[d], db[d + 1]
            e = l0 + int(np.searchsorted(dtt[l0:l1], T, side="right"))
            ok = np.flatnonzero(np.isfinite(dx[l0:e]))
            if len(ok) < 2:
                base[j] = np.inf
                continue
            last = l0 + ok[-1]
            x_now, t_now = dx[last], dtt[last]
            back = l0 + ok[np.searchsorted(dtt[l0 + ok], t_now - DAY_S, side="left").clip(0, len(ok) - 1)]
            dt_h = (t_now - dtt[back]) / 3600.0
            rate = (x_now - dx[back]) / dt_h if dt_h > 0 else 0.0
            if x_now >= threshold:
                base[j] = 0.0
            elif rate > 0:
                base[j] = max((threshold - x_now) / rate - (T - t_now) / 3600.0, 0.0)
            else:
                base[j] = np.inf
        keep = np.isfinite(window)
        pred_rows.append((truth[keep], h50[keep], h90[keep], base[keep], window[keep]))

    def cat(i: int) -> np.ndarray:
        return np.concatenate([r[i] for r in pred_rows]) if pred_rows else np.zeros(0)

    truth, p50, p90, bl, win = (cat(i) for i in range(5))
    by: dict[str, dict[str, HoursScore]] = {}
    for name, lo, hi in (("0-24 h", 0, 24), ("24-72 h", 24, 72), ("72-168 h", 72, 168), (">168 h", 168, 1e9)):
        s = np.isfinite(truth) & (truth >= lo) & (truth < hi)
        if s.any():
            by[name] = {
                "forecaster": HoursScore.of(p50[s], truth[s], win[s], max_horizon_h),
                "baseline": HoursScore.of(bl[s], truth[s], win[s], max_horizon_h),
            }
    crossed = np.isfinite(truth)
    early = np.where(np.isfinite(p90), p90, max_horizon_h)[crossed] <= truth[crossed] + 1e-9

    # calibration of the crossing times: among cases whose estimate falls inside the
    # observed window, the share that crossed by the estimate (ideal: 0.5 for the
    # median, 0.1 for the pessimistic estimate)
    def crossed_by(est: np.ndarray) -> float:
        inside = np.isfinite(est) & (est <= win)
        if not inside.any():
            return math.nan
        return float((np.nan_to_num(truth[inside], nan=np.inf) <= est[inside]).mean())

    calib = {"p50": crossed_by(p50), "p90": crossed_by(p90), "baseline": crossed_by(bl)}
    return SimResult(
        threshold=threshold,
        containers=n_dev,
        days=days,
        readings=int(m.sum()),
        evaluations=len(evals),
        forecaster=HoursScore.of(p50, truth, win, max_horizon_h),
        baseline=HoursScore.of(bl, truth, win, max_horizon_h),
        pessimistic_early_enough=float(early.mean()) if len(early) else math.nan,
        crossed_by_estimate=calib,
        by_horizon=by,
        forecaster_stats=fc.stats(),
        update_s=up_s,
        predict_s=pr_s,
        elapsed_s=time.perf_counter() - t_start,
    )


# -- command line ------------------------------------------------------------------------


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``backtest wyndham|sim`` to an argparse sub-command set (``func`` is :func:`run`)."""
    p = subparsers.add_parser(
        "backtest",
        help="score the fill forecaster on real Wyndham smart-bin data or the simulated fleet",
        description="Backtests of tidstream.Forecaster (see docs/FORECAST.md).",
    )
    sub = p.add_subparsers(dest="backtest_command", required=True, metavar="DATA")
    w = sub.add_parser(
        "wyndham",
        help="Wyndham City smart bins, SOURCE.md protocol: MAE vs persistence, Brier, AUC, coverage",
    )
    w.add_argument(
        "--csv",
        default=None,
        help="fill_levels_daily.csv (default: $TIDSTREAM_SHARED/data/wyndham-smartbins/, else ../shared/...)",
    )
    w.add_argument(
        "--score-rule",
        choices=["endpoints", "cycle"],
        default="endpoints",
        help="which scored forecasts the forecaster learns from: 'endpoints' (the protocol's pair rule, default) or 'cycle'",
    )
    w.add_argument("--json", action="store_true", help="print the result as one JSON object")
    w.set_defaults(func=run)
    s = sub.add_parser(
        "sim", help="simulated PMA fleet: hours-to-threshold vs ground truth and a naive last-rate baseline"
    )
    s.add_argument("--scale", type=float, default=1.0, help="territory scale (1 = 1,444 containers)")
    s.add_argument("--days", type=float, default=60.0, help="simulated days (default 60)")
    s.add_argument(
        "--warmup-days", type=float, default=21.0, help="days before the first evaluation (default 21)"
    )
    s.add_argument("--start", default="2025-03-03", help="first day (default 2025-03-03)")
    s.add_argument("--seed", type=int, default=1, help="dynamics seed (default 1)")
    s.add_argument("--threshold", type=float, default=0.8, help="fill ratio to reach (default 0.8)")
    s.add_argument(
        "--shared", default=None, help="shared data folder (default $TIDSTREAM_SHARED or ../shared)"
    )
    s.add_argument("--json", action="store_true", help="print the result as one JSON object")
    s.set_defaults(func=run)
    return p


def _goal_lines(goals: dict[str, dict[str, Any]]) -> list[str]:
    out = []
    for name, g in goals.items():
        mark = "met" if g["met"] else "NOT met"
        out.append(f"  {name:<36} goal {g['goal']:<22} measured {g['measured']!s:<8} {mark}")
    return out


def run(args: argparse.Namespace) -> int:
    """Run ``tidstream backtest wyndham|sim`` and print the tables."""
    if args.backtest_command == "wyndham":
        try:
            res = wyndham_backtest(args.csv, score_rule=args.score_rule)
        except FileNotFoundError as e:
            print(f"tidstream backtest: {e}", file=sys.stderr)
            return 2
        if args.json:
            print(json.dumps(res.to_dict(), default=float))
            return 0
        print(
            f"Wyndham smart bins: {res.readings:,} readings, {res.bins} bins; test 2020-07-01..2021-05-03 "
            f"(only readings dated <= t used at day t); {res.elapsed_s:.1f} s"
        )
        print(res.table())
        print("goals:")
        print("\n".join(_goal_lines(res.goals)))
        return 0
    if args.backtest_command == "sim":
        sim = sim_backtest(
            scale=args.scale,
            days=args.days,
            warmup_days=args.warmup_days,
            start=args.start,
            seed=args.seed,
            threshold=args.threshold,
            shared_dir=args.shared,
        )
        if args.json:
            print(json.dumps(sim.to_dict(), default=float))
            return 0
        print(
            f"Simulated PMA fleet: {sim.containers:,} containers, {sim.days:g} days hourly, {sim.readings:,} "
            f"delivered readings, {sim.evaluations} daily evaluations; threshold {sim.threshold:g}; "
            f"update {sim.update_s:.2f} s, predict {sim.predict_s:.2f} s, total {sim.elapsed_s:.1f} s"
        )
        print(sim.table())
        print(sim.horizon_table())
        c = sim.crossed_by_estimate
        print(
            f"calibration (share crossed by the estimate, cases inside the window): p50 {c['p50']:.2f} "
            f"(ideal 0.50), pessimistic {c['p90']:.2f} (ideal 0.10), baseline {c['baseline']:.2f}"
        )
        return 0
    raise SystemExit(f"unknown backtest {args.backtest_command!r}")  # pragma: no cover
