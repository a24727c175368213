"""Route-cost kernels vs numba and numpy: distance matrix, route evaluation, route cost.

``make test`` runs each once at small sizes (a correctness check of every baseline against
tidstream); ``benches/run.py --only routes`` measures for real (10,000-point matrix,
100-stop routes). Sizes: ``TIDSTREAM_BENCH_ROUTE_POINTS`` (default 600) and
``TIDSTREAM_BENCH_ROUTES`` (default 300 routes of 100 stops).
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import route_baselines as RB
import tidstream.routes as R

POINTS = int(os.environ.get("TIDSTREAM_BENCH_ROUTE_POINTS", "600"))
ROUTES = int(os.environ.get("TIDSTREAM_BENCH_ROUTES", "300"))


@pytest.fixture(scope="module")
def points() -> tuple[np.ndarray, np.ndarray]:
    return RB.make_points(POINTS)


@pytest.fixture(scope="module")
def workload() -> dict:
    return RB.make_route_workload(400, ROUTES, 100)


@pytest.mark.parametrize("impl", ["tidstream", "numba-haversine", "numba-chord", "numpy"])
def test_distance_matrix(benchmark, points, impl):
    lat, lon = points
    benchmark.group = "distance-matrix"
    benchmark.extra_info["pairs"] = POINTS * POINTS
    fn = {
        "tidstream": lambda: R.distance_matrix(lat, lon, circuity=1.3),
        "numba-haversine": lambda: RB.nb_haversine_matrix(lat, lon, 1.3),
        "numba-chord": lambda: RB.nb_chord_matrix(lat, lon, 1.3),
        "numpy": lambda: RB.np_haversine_matrix(lat, lon, 1.3),
    }[impl]
    fn()  # numba: compile before timing
    out = benchmark(fn)
    ref = R.distance_matrix(lat, lon, circuity=1.3)
    assert out.shape == (POINTS, POINTS)
    np.testing.assert_allclose(out, ref, rtol=1e-9, atol=1e-6)


@pytest.mark.parametrize("impl", ["tidstream", "numba"])
def test_evaluate_routes(benchmark, workload, impl):
    w = workload
    benchmark.group = "route-evaluation"
    benchmark.extra_info["routes"] = len(w["flat"])
    kw = dict(
        duration_s=w["dur"], demand=w["demand"], capacity=w["capacity"], service_s=w["service"],
        facilities=w["facilities"], unload_s=w["unload_s"], shift_s=w["shift_s"],
    )  # fmt: skip
    ref = R.evaluate_routes(w["dist"], w["flat"], **kw)
    if impl == "tidstream":
        tab = benchmark(R.evaluate_routes, w["dist"], w["flat"], **kw)
        got = np.column_stack(
            [tab.column(c).to_numpy() for c in ("distance_m", "duration_s", "load", "unloads", "excess_load")]
        )
    else:
        args = (w["dist"], w["dur"], w["flat"], 0, w["demand"], w["capacity"], w["service"])
        args2 = (w["facilities"], w["unload_s"], w["shift_s"])
        RB.nb_evaluate(*args, *args2)
        got = benchmark(RB.nb_evaluate, *args, *args2)[:, :5]
    expected = np.column_stack(
        [ref.column(c).to_numpy() for c in ("distance_m", "duration_s", "load", "unloads", "excess_load")]
    )
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert ref.column("unloads").to_numpy().min() >= 1  # facilities are used


@pytest.mark.parametrize("impl", ["tidstream", "numpy"])
def test_route_cost(benchmark, workload, impl):
    w = workload
    benchmark.group = "route-cost"
    if impl == "tidstream":
        total = benchmark(R.route_cost, w["dist"], w["flat"])
    else:
        total = float(benchmark(RB.np_route_cost, w["dist"], w["flat"]).sum())
    assert total == pytest.approx(
        R.evaluate_routes(w["dist"], w["flat"]).column("distance_m").to_numpy().sum()
    )
