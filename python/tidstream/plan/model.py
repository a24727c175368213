"""The day's collection problem and its PyVRP solve.

Units: distances in metres (integers in PyVRP), durations in seconds, loads in litres of
container volume, prizes in metres-equivalent (a prize of 2,000 is worth a 2 km detour).
Times in the outputs are UTC.
"""

from __future__ import annotations

import datetime as dt
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from ..config import PlanSettings, TruckSettings
from ..exceptions import TidstreamError

__all__ = [
    "ROUTES_SCHEMA",
    "DayPlan",
    "Facility",
    "PlanProblem",
    "Truck",
    "assign_trucks",
    "expand_fleet",
    "solve_day",
    "stop_iterations",
]

#: One row per stop of every route (``routes.parquet``).
ROUTES_SCHEMA = pa.schema(
    [
        pa.field("date", pa.date32(), False),
        pa.field("truck", pa.string(), False),
        pa.field("stream", pa.string(), False),
        pa.field("trip", pa.int32(), False),
        pa.field("seq", pa.int32(), False),
        pa.field("stop_kind", pa.string(), False, metadata={"doc": "start, container, unload, end"}),
        pa.field("container_id", pa.string(), True),
        pa.field("name", pa.string(), False),
        pa.field("lat", pa.float64(), False),
        pa.field("lon", pa.float64(), False),
        pa.field("arrival", pa.timestamp("ms", "UTC"), False),
        pa.field("departure", pa.timestamp("ms", "UTC"), False),
        pa.field(
            "leg_m",
            pa.float64(),
            False,
            metadata={"unit": "m", "doc": "road distance from the previous stop"},
        ),
        pa.field(
            "load_l", pa.float64(), False, metadata={"unit": "L", "doc": "load on board after the stop"}
        ),
        pa.field("litres", pa.float64(), True, metadata={"unit": "L", "doc": "expected litres picked up"}),
        pa.field("fill_forecast", pa.float64(), True, metadata={"doc": "forecast fill at the visit (p50)"}),
        pa.field("required", pa.bool_(), True),
        pa.field("prize", pa.float64(), True, metadata={"unit": "m-equivalent"}),
    ]
)


@dataclass(frozen=True)
class Truck:
    """One physical truck."""

    id: str
    streams: tuple[str, ...]
    capacity_l: float


@dataclass(frozen=True)
class Facility:
    """A depot (where trucks start and end the day) or an unloading facility."""

    name: str
    kind: str
    lat: float
    lon: float


@dataclass
class PlanProblem:
    """The day's problem: candidate containers (row-aligned arrays), trucks, facilities.

    ``required`` containers must be visited; the others are optional with ``prize``.
    ``litres`` is the expected load picked up at each container.
    """

    date: dt.date
    shift_start: dt.datetime  # UTC, aware
    container_id: np.ndarray  # str
    stream: np.ndarray  # str
    kind: np.ndarray  # str
    lat: np.ndarray
    lon: np.ndarray
    litres: np.ndarray
    service_s: np.ndarray
    required: np.ndarray  # bool
    prize: np.ndarray  # metres-equivalent
    fill_forecast: np.ndarray
    #: P(fill >= full level before the next possible visit) if not visited today
    p_full_next: np.ndarray
    trucks: list[Truck]
    depot: Facility
    unload: dict[str, Facility]
    settings: PlanSettings = field(default_factory=PlanSettings)

    def __len__(self) -> int:
        return len(self.container_id)


@dataclass
class DayPlan:
    """A solved day: the stops (:data:`ROUTES_SCHEMA`), the visited containers and a summary."""

    date: dt.date
    routes: pa.Table
    #: indices (into the problem's arrays) of the visited containers, and their arrival times (UTC s)
    visited: np.ndarray
    arrival_s: np.ndarray
    summary: dict[str, Any]
    problem: PlanProblem | None = None


def expand_fleet(fleet: Sequence[TruckSettings]) -> list[Truck]:
    """One :class:`Truck` per unit of every fleet entry (``crane-1``, ``crane-2``...)."""
    out = []
    for t in fleet:
        for i in range(int(t.count)):
            out.append(Truck(f"{t.name}-{i + 1}", tuple(t.streams), float(t.capacity_l)))
    return out


def assign_trucks(
    trucks: Sequence[Truck], work_s: dict[str, float], required: Sequence[str] = ()
) -> dict[str, list[Truck]]:
    """Give each truck one stream for the day (a truck has one body: no mixing).

    Streams with work get a compatible truck first (the least versatile truck first), then
    every remaining truck goes to the compatible stream with the most work per truck.
    Raises :class:`TidstreamError` when a stream with ``required`` containers has no
    compatible truck left (streams with optional containers only may get none).
    """
    need = {s: w for s, w in work_s.items() if w > 0}
    out: dict[str, list[Truck]] = {s: [] for s in need}
    pool = sorted(trucks, key=lambda t: (len(t.streams), t.id))
    for s in sorted(need, key=lambda s: (s not in required, -need[s])):
        pick = next((t for t in pool if s in t.streams), None)
        if pick is None:
            if s in required:
                raise TidstreamError(
                    f"no truck of the fleet is left for stream {s!r}: add one to [[plan.fleet]]"
                )
            continue
        out[s].append(pick)
        pool.remove(pick)
    for t in pool:
        cands = [s for s in need if s in t.streams and out[s]]
        if cands:
            s = max(cands, key=lambda s: need[s] / len(out[s]))
            out[s].append(t)
    return out


def _matrices(lat: np.ndarray, lon: np.ndarray, s: PlanSettings) -> tuple[np.ndarray, np.ndarray]:
    """Road distances (m: great circle x ``s.circuity``) and driving times (s: ``s.speed_kmh``,
    or the distance layer's default speed profile) between every pair of points."""
    from .. import routes

    d = routes.distance_matrix(np.asarray(lat, np.float64), np.asarray(lon, np.float64), circuity=s.circuity)
    speed: Any = routes.DEFAULT_SPEED_PROFILE if s.speed_kmh is None else s.speed_kmh
    return d, routes.duration_matrix(d, speed_kmh=speed)


def stop_iterations(n: int, s: PlanSettings, effort: float = 1.0) -> tuple[int, int]:
    """``(no_improvement, max_iterations)`` of PyVRP for a problem of ``n`` candidates:
    :class:`PlanSettings`' per-client rule, both scaled by ``effort`` (2.0 doubles the search)."""
    no_imp = max(float(s.min_no_improvement), s.no_improvement_per_client * n) * effort
    cap = max(float(s.min_iterations_cap), s.max_iterations_per_client * n) * effort
    return max(1, round(no_imp)), max(1, round(cap))


def solve_day(
    p: PlanProblem, *, effort: float = 1.0, time_limit_s: float | None = None, seed: int | None = None
) -> DayPlan:
    """Solve the day with PyVRP: capacity, shift (with bounded overtime), reloads at each
    stream's unloading facility, optional visits with prizes, several trucks (one stream each).

    Every truck starts at the depot, ends at its stream's facility (unloaded) and drives
    back to the depot; that last leg is constant per truck and is added to the figures.

    PyVRP stops on iterations (:func:`stop_iterations`, scaled by ``effort``): the same
    problem, settings and seed give the same plan on any machine and under any load.
    ``time_limit_s`` (or ``settings.time_limit_s``) stops on wall-clock time instead.
    """
    import pyvrp
    from pyvrp.exceptions import PenaltyBoundWarning
    from pyvrp.stop import MaxIterations, MaxRuntime, MultipleCriteria, NoImprovement, StoppingCriterion

    s = p.settings
    limit = s.time_limit_s if time_limit_s is None else time_limit_s
    seed = s.seed if seed is None else seed
    t0 = time.perf_counter()
    n = len(p)
    streams = sorted(set(p.stream.tolist()))
    work = {
        st: float(
            p.service_s[(p.stream == st) & p.required].sum() + 600.0 * ((p.stream == st) & p.required).sum()
        )
        + 1.0 * float(((p.stream == st) & ~p.required).any())
        for st in streams
    }
    assign = assign_trucks(p.trucks, work, sorted(set(p.stream[p.required].tolist())))
    used_streams = [st for st in streams if assign.get(st)]
    if not used_streams or n == 0:
        return _empty_plan(p, t0)
    # global locations: 0 the depot, 1.. each used stream's facility, n_f + i container i
    facs = [p.depot] + [p.unload[st] for st in used_streams]
    n_f = len(facs)
    lat = np.r_[[f.lat for f in facs], p.lat]
    lon = np.r_[[f.lon for f in facs], p.lon]
    dist_f, dur_f = _matrices(lat, lon, s)
    dist = np.rint(dist_f).astype(np.int64)
    dur = np.rint(dur_f).astype(np.int64)
    shift = int(s.shift_h * 3600)
    unload = int(s.unload_s)
    over = int(s.max_overtime_h * 3600)
    # A truck collects one stream (assigned above), so the day splits into one independent
    # PyVRP problem per stream: smaller problems, each stopped by its own size.
    solved: list[tuple[Any, Any, np.ndarray, list[tuple[Truck, str, int]]]] = []
    feasible = True
    overtime_s = 0
    iterations = 0
    for j, st in enumerate(used_streams, start=1):
        idx = np.flatnonzero(p.stream == st)
        if not len(idx):
            continue
        gmap = np.r_[0, j, n_f + idx].astype(np.int64)  # local location -> global
        locations = [pyvrp.Location(x=float(lon[g]), y=float(lat[g])) for g in gmap]
        depots = [
            pyvrp.Depot(location=0, tw_early=0, tw_late=shift + over, name=p.depot.name),
            pyvrp.Depot(location=1, service_duration=unload, name=p.unload[st].name),
        ]
        clients = [
            pyvrp.Client(
                location=2 + k,
                pickup=[max(0, round(float(p.litres[i])))],
                service_duration=round(float(p.service_s[i])),
                prize=0 if p.required[i] else max(0, round(float(p.prize[i]))),
                required=bool(p.required[i]),
                name=str(p.container_id[i]),
            )
            for k, i in enumerate(idx)
        ]
        back = int(dur[j, 0])
        vtypes = [
            pyvrp.VehicleType(
                num_available=1,
                capacity=[round(tr.capacity_l)],
                start_depot=0,
                end_depot=1,
                fixed_cost=round(s.truck_cost_m),
                tw_early=0,
                tw_late=shift + over - back - unload,
                shift_duration=max(shift - back - unload, 0),
                max_overtime=over,
                unit_overtime_cost=max(1, round(s.overtime_cost_m_per_h / 3600.0)),
                reload_depots=[1],
                name=tr.id,
            )
            for tr in assign[st]
        ]
        sub = np.ix_(gmap, gmap)
        data = pyvrp.ProblemData(locations, clients, depots, vtypes, [dist[sub]], [dur[sub]])
        stop: StoppingCriterion
        if limit is not None:
            # a wall-clock limit is shared by the streams in proportion to their containers
            stop = MaxRuntime(limit * len(idx) / n)
        else:
            no_imp, cap = stop_iterations(len(idx), s, effort)
            stop = MultipleCriteria([NoImprovement(no_imp), MaxIterations(cap)])
        with warnings.catch_warnings():
            # PyVRP warns when its penalties hit their bound (hard instance or no feasible
            # solution): the summary's ``feasible`` says which it was
            warnings.simplefilter("ignore", PenaltyBoundWarning)
            res = pyvrp.solve(data, stop=stop, seed=seed, display=False, collect_stats=False)
        feasible &= bool(res.best.is_feasible())
        overtime_s += int(res.best.overtime())
        iterations += int(res.num_iterations)
        solved.append((res.best, data, gmap, [(tr, st, j) for tr in assign[st]]))
    solve_s = time.perf_counter() - t0

    rows: dict[str, list[Any]] = {f.name: [] for f in ROUTES_SCHEMA}
    base = int(p.shift_start.timestamp())
    visited: list[int] = []
    arrivals: list[int] = []
    km = 0.0
    hours = 0.0
    trucks_used = 0
    trips = 0
    for route, data, gmap, veh_truck in (
        (r, data, gmap, vt) for sol, data, gmap, vt in solved for r in sol.routes()
    ):
        tr, st, fac = veh_truck[route.vehicle_type()]
        trucks_used += 1
        # (kind, location, arrival, departure, trip, container or -1, load after)
        stops: list[tuple[str, int, int, int, int, int, float]] = []
        load = 0.0
        sched = route.schedule()
        trip = 0
        for k, act in enumerate(sched):
            if act.is_depot():
                loc = int(gmap[data.depot(act.idx).location])
                load = load if k == 0 else 0.0
                kind = "start" if k == 0 else "unload"
                arr = int(act.start_time)
                # PyVRP does not count the end depot's service time: the final unload is added
                dep = arr + unload if k == len(sched) - 1 else int(act.end_time)
                stops.append((kind, loc, arr, dep, trip, -1, load))
                trip += int(k > 0)
            else:
                ci = int(gmap[data.client(act.idx).location]) - n_f
                load += float(p.litres[ci])
                visited.append(ci)
                arrivals.append(base + int(act.start_time))
                stops.append(("container", n_f + ci, int(act.start_time), int(act.end_time), trip, ci, load))
        # the last activity is the end depot (the facility): unloaded, then back to the depot
        back_t = stops[-1][3] + int(dur[fac, 0])
        stops.append(("end", 0, back_t, back_t, stops[-1][4], -1, 0.0))
        prev = stops[0][1]
        for seq, (kind, loc, arr, dep, trip, ci, ld) in enumerate(stops):
            leg = float(dist[prev, loc]) if seq else 0.0
            prev = loc
            km += leg / 1000.0
            c = ci >= 0
            rows["date"].append(p.date)
            rows["truck"].append(tr.id)
            rows["stream"].append(st)
            rows["trip"].append(trip)
            rows["seq"].append(seq)
            rows["stop_kind"].append(kind)
            rows["container_id"].append(str(p.container_id[ci]) if c else None)
            rows["name"].append(str(p.container_id[ci]) if c else facs[loc].name)
            rows["lat"].append(float(lat[loc]))
            rows["lon"].append(float(lon[loc]))
            rows["arrival"].append(base + arr)
            rows["departure"].append(base + dep)
            rows["leg_m"].append(leg)
            rows["load_l"].append(ld)
            rows["litres"].append(float(p.litres[ci]) if c else None)
            rows["fill_forecast"].append(float(p.fill_forecast[ci]) if c else None)
            rows["required"].append(bool(p.required[ci]) if c else None)
            rows["prize"].append(float(p.prize[ci]) if c else None)
        # travel, service and waiting in PyVRP's route (not the end depot's service; time
        # warp of an infeasible route left out), plus the final unload and the drive back
        busy = route.travel_duration() + route.service_duration() + route.wait_duration()
        hours += (busy + unload + int(dur[fac, 0])) / 3600.0
        trips += route.num_trips()
    for col in ("arrival", "departure"):  # UTC seconds -> timestamp[ms, UTC]
        rows[col] = pa.array(np.asarray(rows[col], np.int64) * 1000, pa.int64()).cast(
            pa.timestamp("ms", "UTC")
        )
    table = pa.Table.from_pydict(rows, schema=ROUTES_SCHEMA)
    vis = np.array(visited, np.int64)
    missed_req = np.flatnonzero(p.required & ~np.isin(np.arange(n), vis))
    not_vis = ~np.isin(np.arange(n), vis)
    summary = {
        "date": p.date.isoformat(),
        "candidates": n,
        "required": int(p.required.sum()),
        "optional": int((~p.required).sum()),
        "stops": len(vis),
        "km": round(km, 3),
        "truck_hours": round(hours, 3),
        "trucks_used": trucks_used,
        "trips": trips,
        "litres": round(float(p.litres[vis].sum()), 1),
        "expected_overflows": round(float(p.p_full_next[not_vis].sum()), 3),
        "required_not_visited": len(missed_req),
        "feasible": feasible,
        "overtime_h": round(overtime_s / 3600.0, 3),
        "co2_kg": round(km * s.co2_kg_per_km, 1),
        "solve_s": round(solve_s, 2),
        "iterations": iterations,
        "trucks_by_stream": {st: [t.id for t in ts] for st, ts in assign.items()},
    }
    return DayPlan(p.date, table, vis, np.array(arrivals, np.int64), summary, p)


def _empty_plan(p: PlanProblem, t0: float) -> DayPlan:
    return DayPlan(
        p.date,
        ROUTES_SCHEMA.empty_table(),
        np.zeros(0, np.int64),
        np.zeros(0, np.int64),
        {
            "date": p.date.isoformat(),
            "candidates": len(p),
            "required": int(p.required.sum()),
            "optional": int((~p.required).sum()),
            "stops": 0,
            "km": 0.0,
            "truck_hours": 0.0,
            "trucks_used": 0,
            "trips": 0,
            "litres": 0.0,
            "expected_overflows": round(float(p.p_full_next.sum()), 3),
            "required_not_visited": int(p.required.sum()),
            "feasible": True,
            "overtime_h": 0.0,
            "co2_kg": 0.0,
            "solve_s": round(time.perf_counter() - t0, 2),
            "iterations": 0,
            "trucks_by_stream": {},
        },
        p,
    )
