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
    time_limits: tuple[float, ...] = (5.0, 20.0, 60.0), day: str = "2025-03-24", scale: float = 1.0
) -> dict[str, Any]:
    """Plan one day of the whole simulated territory: the forecast-driven problem and the
    fixed schedule's day, at several PyVRP time limits. Times: building the problem
    (forecast, candidate selection, distance matrix) and the solve."""
    from tidstream.config import PlanSettings
    from tidstream.plan import cli as plan_cli
    from tidstream.plan.model import solve_day

    s = PlanSettings(time_limit_s=0.1)
    out: dict[str, Any] = {"day": day, "solves": []}
    for fixed in (False, True):
        t0 = time.perf_counter()
        plan, cont = plan_cli.plan_simulated_day(
            dt.date.fromisoformat(day), settings=s, scale=scale, fixed=fixed
        )
        prob = plan.problem
        assert prob is not None
        # the build alone (distance matrix and model), without the simulation: solve with a tiny limit
        t1 = time.perf_counter()
        solve_day(prob, time_limit_s=0.01)
        build_s = time.perf_counter() - t1 - 0.01
        out["containers"] = len(cont)
        for tl in time_limits:
            a = time.perf_counter()
            p = solve_day(prob, time_limit_s=tl)
            wall = time.perf_counter() - a
            row = {
                "policy": "fixed" if fixed else "planned",
                "candidates": len(prob),
                "required": int(prob.required.sum()),
                "time_limit_s": tl,
                "wall_s": round(wall, 2),
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


def ledger(days: int = 28, scale: float = 1.0) -> Any:
    """The savings ledger at the given size (default settings)."""
    from tidstream.plan import run_ledger

    return run_ledger(scale=scale, days=days, warmup_days=21, progress=lambda m: print("  " + m, flush=True))


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
    a = ap.parse_args()
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
