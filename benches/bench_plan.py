"""Collection planning: PyVRP quality on CVRPLIB, whole-territory planning time, the ledger.

``benches/run.py --only plan`` runs the real sizes (``family_plan``): the CVRPLIB gaps at
several time limits, a planning day of the whole simulated PMA territory (1,444
containers) and the savings ledger at 1,444 containers x 28 days. ``make test`` runs the
small pytest cases below once.

Real figures by hand::

    .venv/bin/python benches/bench_plan.py --cvrplib      # gaps only
    .venv/bin/python benches/bench_plan.py --territory    # one day, whole territory
    .venv/bin/python benches/bench_plan.py --ledger 28    # the ledger
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from typing import Any

import numpy as np
import pytest

#: (instance, clients): small classics and X instances up to 1,000 clients
CVRPLIB = ["P-n16-k8", "A-n32-k5", "F-n72-k4", "M-n101-k10", "X-n101-k25", "X-n120-k6", "X-n1001-k43"]


def cvrplib_rows(
    time_limits: tuple[float, ...] = (2.0, 10.0, 60.0), names: list[str] = CVRPLIB
) -> list[dict[str, Any]]:
    """Gap to the best-known cost of each instance at each time limit (seed 1)."""
    from tidstream.plan import cvrplib_gap

    rows = []
    for name in names:
        for tl in time_limits:
            g = cvrplib_gap(name, time_limit_s=tl, seed=1)
            rows.append(g.to_dict())
            print(
                f"  {name:12s} {tl:5.0f} s  cost {g.cost:>7d}  BKS {g.bks:>7d}  gap {g.gap:+.2%}", flush=True
            )
    return rows


def territory_day(
    efforts: tuple[float, ...] = (0.5, 1.0, 2.0), day: str = "2025-03-24", scale: float = 1.0
) -> dict[str, Any]:
    """Plan one day of the whole simulated territory: the forecast-driven problem and the
    fixed schedule's day, at several PyVRP efforts (iterations x effort). Times: building
    the problem (distance matrices and model) and the solve (wall and CPU)."""
    from tidstream.config import PlanSettings
    from tidstream.plan import cli as plan_cli
    from tidstream.plan.model import solve_day

    s = PlanSettings()
    out: dict[str, Any] = {"day": day, "solves": []}
    for fixed in (False, True):
        t0 = time.perf_counter()
        plan, cont = plan_cli.plan_simulated_day(
            dt.date.fromisoformat(day), settings=s, scale=scale, fixed=fixed, effort=0.01
        )
        prob = plan.problem
        assert prob is not None
        # the build alone (distance matrix and model), without the simulation: one iteration
        t1 = time.perf_counter()
        solve_day(prob, effort=1e-9)
        build_s = time.perf_counter() - t1
        out["containers"] = len(cont)
        for eff in efforts:
            a = time.perf_counter()
            c = time.process_time()
            p = solve_day(prob, effort=eff)
            row = {
                "policy": "fixed" if fixed else "planned",
                "candidates": len(prob),
                "required": int(prob.required.sum()),
                "effort": eff,
                "iterations": p.summary["iterations"],
                "wall_s": round(time.perf_counter() - a, 2),
                "cpu_s": round(time.process_time() - c, 2),
                "build_s": round(build_s, 3),
                "km": p.summary["km"],
                "stops": p.summary["stops"],
                "truck_hours": p.summary["truck_hours"],
                "feasible": p.summary["feasible"],
            }
            out["solves"].append(row)
            print(f"  {row}", flush=True)
        out.setdefault("simulate_and_forecast_s", []).append(round(t1 - t0, 2))
    return out


def ledger(days: int = 28, scale: float = 1.0, seed: int = 1, keep_plans: bool = False) -> Any:
    """The savings ledger at the given size (default settings; the fixed schedule routed in
    three other processes)."""
    from tidstream.plan import run_ledger

    return run_ledger(
        scale=scale,
        days=days,
        warmup_days=21,
        seed=seed,
        workers=4,
        keep_plans=keep_plans,
        progress=lambda m: print(f"  seed {seed}: " + m, flush=True),
    )


def ledger_job(
    days: int, seed: int, convergence_every: int = 0, scale: float = 1.0
) -> tuple[Any, dict[str, Any]]:
    """:func:`ledger` for a process pool: the result (plans dropped) and, when
    ``convergence_every``, :func:`convergence` of its days at twice the iterations."""
    res = ledger(days, scale=scale, seed=seed, keep_plans=convergence_every > 0)
    conv = convergence(res, effort=2.0, every=convergence_every, workers=4) if convergence_every else {}
    res.plans = []
    return res, conv


def convergence(
    res: Any, effort: float = 2.0, every: int = 1, workers: int = 2
) -> dict[str, dict[str, float]]:
    """Solver convergence of a ledger run kept with ``keep_plans``: every ``every``-th day's
    problem of each policy solved again at ``effort`` x the iterations; km per policy at
    1x and at ``effort`` x over those days (the same problems: only the search differs)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    plans = [p for p in res.plans if p.problem is not None and len(p.problem)]
    days = sorted({p.date for p in plans})[::every]
    pick = [p for p in plans if p.date in days]
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as ex:
        again = list(ex.map(_solve_effort, [p.problem for p in pick], [effort] * len(pick)))
    out: dict[str, dict[str, float]] = {}
    for p, q in zip(pick, again):
        pol = p.summary["policy"]
        o = out.setdefault(pol, {"days": 0, "km_1x": 0.0, f"km_{effort:g}x": 0.0, "iterations_1x": 0})
        o["days"] += 1
        o["km_1x"] += p.summary["km"]
        o[f"km_{effort:g}x"] += q["km"]
        o["iterations_1x"] += p.summary["iterations"]
    for o in out.values():
        o["change"] = o[f"km_{effort:g}x"] / o["km_1x"] - 1.0 if o["km_1x"] else 0.0
    return out


def _solve_effort(problem: Any, effort: float) -> dict[str, Any]:
    from tidstream.plan.model import solve_day

    return solve_day(problem, effort=effort).summary


#: Variants of the planned policy tried on the tuning run (``--tune``; docs/PLANNING.md "How
#: the policy's parameters were chosen"): changes from :class:`tidstream.config.PlanSettings`'
#: defaults. The reported runs (seeds 1 and 3) never enter the choice.
TUNE_VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "fixed": {},  # the default, and the fixed schedule routed (its km)
    "required_p_0.45": {"required_p": 0.45},
    "required_p_0.55": {"required_p": 0.55},
    "truck_cost_20k": {"truck_cost_m": 20_000.0},
    "required_p_0.45_truck_cost_20k": {"required_p": 0.45, "truck_cost_m": 20_000.0},
    "mon_fri": {"working_days": [0, 1, 2, 3, 4]},
    "prizes_half": {"prize_fill_m": 400.0, "prize_risk_m": 750.0},
    "optional_0.6": {"optional_min_fill": 0.6},
}


def tune_one(
    name: str, changes: dict[str, Any], seed: int, days: int, start: str, solve_fixed: bool
) -> dict[str, Any]:
    """One variant of the planned policy on one run: its totals (the fixed schedule routed
    only when ``solve_fixed``; its overflows and emptyings are counted either way)."""
    import dataclasses

    from tidstream.config import PlanSettings
    from tidstream.plan import run_ledger

    s = dataclasses.replace(PlanSettings(), **changes)
    t0 = time.perf_counter()
    res = run_ledger(
        days=days,
        warmup_days=21,
        start=start,
        seed=seed,
        settings=s,
        solve_fixed=solve_fixed,
        workers=2,
        progress=lambda m: print(f"  {name}: {m}", file=sys.stderr, flush=True),
    )
    f, p = res.totals["fixed"], res.totals["planned"]
    return {
        "variant": name,
        "changes": changes,
        "seed": seed,
        "days": days,
        "start": start,
        "fixed": {
            k: f[k] for k in ("km", "truck_hours", "trucks", "emptyings", "overflows", "overflow_hours")
        },
        "planned": {
            k: p[k]
            for k in (
                "km",
                "truck_hours",
                "trucks",
                "emptyings",
                "overflows",
                "overflow_hours",
                "mean_fill_at_emptying",
                "feasible",
            )
        },
        "wall_s": round(time.perf_counter() - t0, 1),
    }


def tune(
    names: list[str],
    seed: int = 2,
    days: int = 28,
    start: str = "2025-02-03",
    workers: int = 2,
    out: str = "",
) -> list[dict[str, Any]]:
    """Run ``names`` of :data:`TUNE_VARIANTS` (``workers`` at a time), the planned policy
    only (the fixed schedule's overflows and emptyings are counted, its km are not routed:
    ``--tune-fixed`` routes them once for the same run). Rows are appended to ``out`` (JSON
    lines) as they finish."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    rows = []
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as ex:
        futs = [ex.submit(tune_one, nm, TUNE_VARIANTS[nm], seed, days, start, nm == "fixed") for nm in names]
        for f in as_completed(futs):
            row = f.result()
            rows.append(row)
            print(json.dumps(row), flush=True)
            if out:
                with open(out, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps(row) + "\n")
    return rows


# -- pytest cases (small, run once by `make test`) -------------------------------------------


def test_bench_cvrplib_small(benchmark: Any) -> None:
    from tidstream.plan import cvrplib_gap
    from tidstream.plan.cvrplib import default_cvrplib_dir

    if not (default_cvrplib_dir() / "P-n16-k8.vrp").exists():
        pytest.fail("shared CVRPLIB data not found (set TIDSTREAM_SHARED)")
    g = benchmark.pedantic(lambda: cvrplib_gap("P-n16-k8", time_limit_s=0.5), rounds=1, iterations=1)
    assert g.bks == 450 and g.cost >= 450 and g.gap <= 0.01


def test_bench_solve_day_small(benchmark: Any) -> None:
    from tidstream.config import PlanSettings
    from tidstream.plan import Facility, PlanProblem, Truck, shift_start, solve_day

    s = PlanSettings()
    rng = np.random.default_rng(0)
    n = 60
    day = dt.date(2025, 3, 24)
    p = PlanProblem(
        date=day,
        shift_start=shift_start(day, s),
        container_id=np.array([f"c{i}" for i in range(n)], dtype=object),
        stream=np.array(["residual"] * n, dtype=object),
        kind=np.array(["park_bin"] * n, dtype=object),
        lat=47.5 + rng.uniform(-0.05, 0.05, n),
        lon=6.8 + rng.uniform(-0.07, 0.07, n),
        litres=np.full(n, 100.0),
        service_s=np.full(n, 60.0),
        required=rng.random(n) < 0.5,
        prize=np.full(n, 3000.0),
        fill_forecast=np.full(n, 0.7),
        p_full_next=np.zeros(n),
        trucks=[Truck("rl-1", ("residual",), 3_000.0), Truck("rl-2", ("residual",), 3_000.0)],
        depot=Facility("depot", "depot", 47.49, 6.78),
        unload={"residual": Facility("uve", "incinerator", 47.51, 6.79)},
        settings=s,
    )
    plan = benchmark.pedantic(lambda: solve_day(p, time_limit_s=0.5), rounds=1, iterations=1)
    assert plan.summary["required_not_visited"] == 0 and plan.summary["feasible"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cvrplib", action="store_true")
    ap.add_argument("--territory", action="store_true")
    ap.add_argument("--ledger", type=int, default=0, metavar="DAYS")
    ap.add_argument("--tune", default="", metavar="VARIANTS", help="comma-separated names of TUNE_VARIANTS")
    ap.add_argument("--tune-seed", type=int, default=2)
    ap.add_argument("--tune-days", type=int, default=28)
    ap.add_argument("--tune-workers", type=int, default=2)
    ap.add_argument("--tune-out", default="", help="append the rows to this JSON-lines file")
    a = ap.parse_args()
    if a.tune:
        tune(a.tune.split(","), seed=a.tune_seed, days=a.tune_days, workers=a.tune_workers, out=a.tune_out)
    if a.cvrplib:
        print(json.dumps(cvrplib_rows(), indent=2))
    if a.territory:
        print(json.dumps(territory_day(), indent=2))
    if a.ledger:
        res = ledger(a.ledger)
        print(res.text())
        print(json.dumps({"goals": res.goals(), "elapsed_s": res.elapsed_s}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
