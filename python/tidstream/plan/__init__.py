"""Forecast-driven collection planning (PyVRP) and the savings ledger (docs/PLANNING.md).

* :func:`forecast_problem` / :func:`fixed_problem` build the day's problem (which
  containers are required, which are optional and what they are worth);
* :func:`solve_day` solves it with PyVRP and returns the routes (:data:`ROUTES_SCHEMA`)
  and a summary;
* :func:`write_plan` writes ``routes.parquet``, ``routes.geojson``, ``map.png``,
  ``summary.json``;
* :func:`run_ledger` replays the fixed schedule and the planned policy on the same
  simulated demand;
* :func:`cvrplib_gap` checks the solver on CVRPLIB instances against their best-known costs.
"""

from __future__ import annotations

from .build import Containers, facilities_for, fixed_problem, forecast_problem, shift_start
from .cvrplib import CvrpGap, cvrplib_gap
from .ledger import LEDGER_SCHEMA, LedgerResult, run_ledger
from .model import (
    ROUTES_SCHEMA,
    DayPlan,
    Facility,
    PlanProblem,
    Truck,
    assign_trucks,
    expand_fleet,
    solve_day,
)
from .output import routes_geojson, write_map, write_plan

__all__ = [
    "LEDGER_SCHEMA",
    "ROUTES_SCHEMA",
    "Containers",
    "CvrpGap",
    "DayPlan",
    "Facility",
    "LedgerResult",
    "PlanProblem",
    "Truck",
    "assign_trucks",
    "cvrplib_gap",
    "expand_fleet",
    "facilities_for",
    "fixed_problem",
    "forecast_problem",
    "routes_geojson",
    "run_ledger",
    "shift_start",
    "solve_day",
    "write_map",
    "write_plan",
]
