"""``tidstream plan`` and ``tidstream ledger``."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from typing import Any

import numpy as np

__all__ = ["add_parser", "cmd_ledger", "cmd_plan", "plan_simulated_day"]


def _settings(args: argparse.Namespace) -> Any:
    from ..config import load_settings

    s = load_settings(getattr(args, "config", None)).plan
    if getattr(args, "time_limit", None) is not None:
        s.time_limit_s = float(args.time_limit)
    return s


def plan_simulated_day(
    day: dt.date,
    *,
    settings: Any,
    scale: float = 1.0,
    history_days: int = 21,
    seed: int = 1,
    territory_seed: int = 0,
    shared_dir: str | None = None,
    fixed: bool = False,
    effort: float = 1.0,
) -> tuple[Any, Any]:
    """Plan ``day`` on the simulated territory: simulate ``history_days`` of readings up to
    the shift start, feed a :class:`Forecaster` with the readings delivered by then, build
    the problem and solve it. ``fixed=True`` plans the fixed schedule's containers of that
    day instead. ``effort`` scales PyVRP's iterations (:func:`tidstream.plan.solve_day`).
    Returns ``(DayPlan, Containers)``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from .. import _core
    from ..forecast import Forecaster
    from ..simulate import Territory, simulate
    from .build import Containers, fixed_problem, forecast_problem, shift_start
    from .ledger import HEAP_MAX, _local_date
    from .model import solve_day

    ter = Territory.pma(shared_dir, scale=scale, seed=territory_seed)
    cont = Containers(ter.registry)
    morning = shift_start(day, settings).timestamp()
    start = day - dt.timedelta(days=history_days)
    sim = simulate(
        ter, days=history_days + 1, start=start.isoformat(), interval_h=1.0, seed=seed, envelopes="raw"
    )
    reg = ter.registry
    keys = pa.array(reg.column("device_id").to_pylist())
    depth = np.asarray(reg.column("depth_mm").to_numpy(), np.float64)
    offset = np.asarray(reg.column("offset_mm").to_numpy(), np.float64)
    fc = Forecaster(threshold=settings.full_level, utc_offset_h=1.0)
    col_idx: list[np.ndarray] = []
    col_fill: list[np.ndarray] = []
    col_t: list[np.ndarray] = []
    for ch in sim.chunks():
        r = ch.readings
        if r is not None and r.num_rows:
            t = pc.cast(r.column("measured_at"), pa.int64()).to_numpy() // 1_000_000_000
            keep = (t < morning) & pc.equal(r.column("delivered"), "live").to_numpy(zero_copy_only=False)
            if keep.any():
                rr = r.filter(pa.array(keep))
                d = (
                    pc.index_in(rr.column("device_id"), value_set=keys)
                    .to_numpy(zero_copy_only=False)
                    .astype(np.int64)
                )
                dist = pc.fill_null(rr.column("distance_mm"), float("nan")).to_numpy(zero_copy_only=False)
                fill = _core.fill_ratio(np.ascontiguousarray(dist, np.float64), depth[d], offset[d])
                tl = rr.column("tilt")
                tilt = np.where(
                    pc.is_valid(tl).to_numpy(zero_copy_only=False),
                    pc.fill_null(tl, False).to_numpy(zero_copy_only=False),
                    -1,
                ).astype(np.int8)
                o = np.argsort(t[keep], kind="stable")
                fc.update(d[o], t[keep][o], fill[o], tilt[o])
        c = ch.collections
        if fixed and c.num_rows:
            col_idx.append(
                pc.index_in(c.column("device_id"), value_set=keys)
                .to_numpy(zero_copy_only=False)
                .astype(np.int64)
            )
            col_fill.append(c.column("demand_fill").to_numpy())
            col_t.append(pc.cast(c.column("collected_at"), pa.int64()).to_numpy() / 1e9)
    if fixed:
        ci = np.concatenate(col_idx) if col_idx else np.zeros(0, np.int64)
        cf = np.concatenate(col_fill) if col_fill else np.zeros(0)
        ct = np.concatenate(col_t) if col_t else np.zeros(0)
        m = _local_date(ct) == np.datetime64(day) if len(ct) else np.zeros(0, bool)
        cap = np.array([HEAP_MAX.get(k, 1.0) for k in cont.kind[ci[m]]])
        prob = fixed_problem(day, cont, ci[m], np.minimum(cf[m], cap), ter.facilities, settings)
    else:
        prob = forecast_problem(day, cont, fc, ter.facilities, settings)
    return solve_day(prob, effort=effort), cont


def cmd_plan(args: argparse.Namespace) -> int:
    """``tidstream plan``."""
    from .output import write_plan

    s = _settings(args)
    if args.cvrplib:
        from .cvrplib import cvrplib_gap

        out = []
        for name in args.cvrplib.split(","):
            g = cvrplib_gap(name.strip(), time_limit_s=s.time_limit_s or 10.0, seed=s.seed)
            out.append(g.to_dict())
            if not args.json:
                print(
                    f"{g.instance}: {g.clients} clients, cost {g.cost} vs best-known {g.bks}: gap {g.gap:+.2%} "
                    f"({g.time_limit_s:g} s)"
                )
        if args.json:
            print(json.dumps(out, indent=2))
        return 0
    day = dt.date.fromisoformat(args.date)
    t0 = time.perf_counter()
    plan, cont = plan_simulated_day(
        day,
        settings=s,
        scale=args.scale,
        history_days=args.history_days,
        seed=args.seed,
        territory_seed=args.territory_seed,
        shared_dir=args.shared,
        fixed=args.fixed,
        effort=args.effort,
    )
    paths = write_plan(plan, args.out, all_lat=cont.lat, all_lon=cont.lon)
    summ = {
        **plan.summary,
        "elapsed_s": round(time.perf_counter() - t0, 2),
        "files": {k: str(v) for k, v in paths.items()},
    }
    if args.json:
        print(json.dumps(summ, indent=2))
        return 0
    print(
        f"{summ['date']}: {summ['stops']} stops ({summ['required']} required, {summ['optional']} optional offered), "
        f"{summ['km']:.1f} km, {summ['truck_hours']:.1f} truck-hours, {summ['trucks_used']} trucks, {summ['trips']} trips, "
        f"{summ['litres']:,.0f} L, expected containers full before the next visit: {summ['expected_overflows']:.2f}, "
        f"CO2 {summ['co2_kg']:.0f} kg{'' if summ['feasible'] else ' (NOT feasible: over capacity or shift)'}"
    )
    for k, v in paths.items():
        print(f"  {k:<8} {v}")
    return 0


def cmd_ledger(args: argparse.Namespace) -> int:
    """``tidstream ledger``."""
    from .ledger import run_ledger

    s = _settings(args)
    res = run_ledger(
        scale=args.scale,
        days=args.days,
        warmup_days=args.warmup_days,
        start=args.start,
        seed=args.seed,
        territory_seed=args.territory_seed,
        settings=s,
        effort=args.effort,
        workers=args.workers,
        shared_dir=args.shared,
        progress=None if args.quiet or args.json else (lambda m: print(m, file=sys.stderr)),
    )
    paths = res.write(args.out)
    if args.json:
        print(
            json.dumps(
                {"totals": res.totals, "goals": res.goals(), "files": {k: str(v) for k, v in paths.items()}},
                indent=2,
                default=str,
            )
        )
        return 0
    print(res.text())
    for k, v in paths.items():
        print(f"  {k:<6} {v}")
    return 0


def add_parser(subparsers: Any) -> None:
    """Add ``plan`` and ``ledger`` to an argparse sub-command set."""
    p = subparsers.add_parser(
        "plan",
        help="plan a day's collection rounds from fill forecasts (PyVRP); or check the solver on CVRPLIB",
        description="Forecast-driven collection planning on the simulated territory (docs/PLANNING.md). "
        "Settings: [plan] in the config file (docs/CONFIG.md).",
    )
    p.add_argument("--date", default="2025-03-24", help="day to plan (YYYY-MM-DD, default 2025-03-24)")
    p.add_argument(
        "--history-days", type=int, default=21, help="simulated days of readings before it (default 21)"
    )
    p.add_argument("--scale", type=float, default=1.0, help="territory scale (1 = 1,444 containers)")
    p.add_argument("--seed", type=int, default=1, help="simulation seed")
    p.add_argument("--territory-seed", type=int, default=0)
    p.add_argument(
        "--shared", default=None, help="shared data folder (default $TIDSTREAM_SHARED, else ../shared)"
    )
    p.add_argument(
        "--fixed", action="store_true", help="route the fixed schedule's containers of that day instead"
    )
    p.add_argument(
        "--time-limit",
        type=float,
        default=None,
        help="stop PyVRP on wall-clock time (seconds; depends on the machine's load) instead of "
        "[plan]'s iteration rule; with --cvrplib: seconds per instance (default 10)",
    )
    p.add_argument(
        "--effort", type=float, default=1.0, help="scale PyVRP's iterations (2 = twice the search; default 1)"
    )
    p.add_argument("--out", default="out/plan", help="output folder (default out/plan)")
    p.add_argument(
        "--cvrplib",
        default=None,
        metavar="NAMES",
        help="instead: solve these CVRPLIB instances (comma-separated, e.g. A-n32-k5,X-n101-k25) and print the gap",
    )
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=cmd_plan)

    lg = subparsers.add_parser(
        "ledger",
        help="savings ledger: fixed schedule vs sensor-driven planning on the same simulated demand",
        description="Replays N days under both policies (docs/PLANNING.md): km, truck-hours, emptyings, "
        "mean fill at emptying, overflows, CO2 per day and in total; writes ledger.parquet and ledger.png.",
    )
    lg.add_argument("--days", type=int, default=28, help="days replayed (default 28)")
    lg.add_argument("--warmup-days", type=int, default=21, help="shared history before them (default 21)")
    lg.add_argument("--start", default="2025-02-03", help="first simulated day (default 2025-02-03)")
    lg.add_argument("--scale", type=float, default=1.0, help="territory scale (1 = 1,444 containers)")
    lg.add_argument("--seed", type=int, default=1)
    lg.add_argument("--territory-seed", type=int, default=0)
    lg.add_argument(
        "--shared", default=None, help="shared data folder (default $TIDSTREAM_SHARED, else ../shared)"
    )
    lg.add_argument(
        "--time-limit",
        type=float,
        default=None,
        help="stop PyVRP on wall-clock time per day and policy (seconds; load-dependent) instead of iterations",
    )
    lg.add_argument(
        "--effort", type=float, default=1.0, help="scale PyVRP's iterations (2 = twice the search; default 1)"
    )
    lg.add_argument(
        "--workers",
        type=int,
        default=2,
        help="processes: 2 or more routes the fixed schedule in workers - 1 other processes (default 2)",
    )
    lg.add_argument("--out", default="out/ledger", help="output folder (default out/ledger)")
    lg.add_argument("--quiet", action="store_true", help="no per-day progress on stderr")
    lg.add_argument("--json", action="store_true", help="print totals and goals as JSON")
    lg.set_defaults(func=cmd_ledger)
