"""tidstream.routes: matrices, durations, route evaluation, VRPLIB, external matrices."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import tidstream.routes as R

# --------------------------------------------------------------------------------------
# Great-circle distances
# --------------------------------------------------------------------------------------

PARIS = (48.8566, 2.3522)
LYON = (45.7640, 4.8357)
LONDON = (51.5074, -0.1278)
NEW_YORK = (40.7128, -74.0060)


def py_haversine(lat1: float, lon1: float, lat2: float, lon2: float, r: float = 6_371_008.8) -> float:
    """Textbook haversine, written independently of the Rust kernel."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(min(1.0, math.sqrt(h)))


@pytest.mark.parametrize(
    ("a", "b", "published_km", "tol_km"),
    [
        # Commonly published great-circle ("as the crow flies") distances between city centres.
        (PARIS, LYON, 392.0, 1.5),
        (PARIS, LONDON, 344.0, 1.5),
        (LONDON, NEW_YORK, 5570.0, 10.0),
    ],
)
def test_city_pairs_match_published_great_circle_distances(a, b, published_km, tol_km):
    d = R.distance_matrix([a[0], b[0]], [a[1], b[1]])
    assert d.shape == (2, 2) and d.dtype == np.float64
    assert abs(d[0, 1] / 1000 - published_km) < tol_km
    assert d[0, 1] == d[1, 0]
    assert R.haversine_m(*a, *b) == pytest.approx(d[0, 1], rel=1e-12)
    assert d[0, 1] == pytest.approx(py_haversine(*a, *b), rel=1e-12)


def test_exact_spherical_geometry():
    # One degree along a meridian, a quarter of the equator, antipodes: R * angle.
    r = R.EARTH_RADIUS_M
    assert r == 6_371_008.8
    d = R.distance_matrix([0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 90.0, 180.0])
    assert d[0, 1] == pytest.approx(r * math.pi / 180, rel=1e-14)  # 111,195.08 m
    assert d[0, 2] == pytest.approx(r * math.pi / 2, rel=1e-14)  # 10,007,557 m
    assert d[0, 3] == pytest.approx(r * math.pi, rel=1e-14)  # antipodes
    assert d[0, 1] == pytest.approx(111_195.08, abs=0.01)


def test_matrix_matches_python_haversine_on_random_points():
    rng = np.random.default_rng(1)
    # Mixed scales: a territory (Pays de Montbéliard), metre-scale neighbours, the globe.
    lat = np.concatenate(
        [rng.uniform(47.4, 47.6, 40), 47.5 + rng.normal(0, 1e-5, 10), rng.uniform(-89, 89, 30)]
    )
    lon = np.concatenate(
        [rng.uniform(6.7, 7.0, 40), 6.8 + rng.normal(0, 1e-5, 10), rng.uniform(-179, 179, 30)]
    )
    d = R.distance_matrix(lat, lon)
    n = len(lat)
    ref = np.array([[py_haversine(lat[i], lon[i], lat[j], lon[j]) for j in range(n)] for i in range(n)])
    assert np.array_equal(d, d.T)
    assert np.all(np.diag(d) == 0.0)
    off = ~np.eye(n, dtype=bool)
    # Both formulas round differently; what matters is metres: below a micrometre everywhere
    # (metre-scale pairs included), and 1e-12 relative from 1 km on.
    assert np.abs(d - ref).max() < 1e-6
    rel = np.abs(d[off] - ref[off]) / ref[off]
    far = ref[off] > 1000.0
    assert rel[far].max() < 1e-12
    assert d.flags.c_contiguous


def test_circuity_scales_and_between_matches_full():
    rng = np.random.default_rng(2)
    lat, lon = rng.uniform(47.4, 47.6, 25), rng.uniform(6.7, 7.0, 25)
    d1 = R.distance_matrix(lat, lon)
    d13 = R.distance_matrix(lat, lon, circuity=1.3)
    np.testing.assert_allclose(d13, 1.3 * d1, rtol=1e-15)
    sub = R.distance_matrix_between(lat[:5], lon[:5], lat, lon, circuity=1.3)
    assert sub.shape == (5, 25)
    np.testing.assert_array_equal(sub, d13[:5])
    assert R.DEFAULT_CIRCUITY == 1.3


def test_empty_and_single_point():
    assert R.distance_matrix([], []).shape == (0, 0)
    one = R.distance_matrix([47.5], [6.8])
    assert one.shape == (1, 1) and one[0, 0] == 0.0


@pytest.mark.parametrize(
    ("lat", "lon", "kw", "match"),
    [
        ([47.5, 47.6], [6.8], {}, "lat_deg has 2 values, lon_deg 1"),
        ([47.5, float("nan")], [6.8, 6.9], {}, r"lat_deg\[1\] = NaN"),
        ([47.5, 91.0], [6.8, 6.9], {}, r"lat_deg\[1\] = 91 is not a latitude"),
        ([47.5, 47.6], [6.8, 181.0], {}, r"lon_deg\[1\] = 181 is not a longitude"),
        ([47.5, 47.6], [6.8, float("inf")], {}, r"lon_deg\[1\] = inf"),
        ([47.5, 47.6], [6.8, 6.9], {"circuity": 0.9}, "circuity = 0.9"),
        ([47.5, 47.6], [6.8, 6.9], {"circuity": float("nan")}, "circuity = NaN"),
        ([[47.5, 47.6]], [6.8, 6.9], {}, "one-dimensional"),
    ],
)
def test_distance_matrix_validates_inputs(lat, lon, kw, match):
    with pytest.raises(ValueError, match=match):
        R.distance_matrix(lat, lon, **kw)


# --------------------------------------------------------------------------------------
# Durations
# --------------------------------------------------------------------------------------


def test_duration_profile_hand_computed():
    bands = ((1000.0, 20.0), (5000.0, 35.0), (math.inf, 50.0))
    d = np.array([[0.0, 500.0, 3000.0], [10_000.0, math.inf, 1000.0]])
    t = R.duration_matrix(d, speed_kmh=bands)
    v1, v2, v3 = 20 / 3.6, 35 / 3.6, 50 / 3.6
    expected = [
        [0.0, 500 / v1, 1000 / v1 + 2000 / v2],
        [1000 / v1 + 4000 / v2 + 5000 / v3, math.inf, 1000 / v1],
    ]
    np.testing.assert_allclose(t, expected, rtol=1e-14)
    assert t[0, 2] == pytest.approx(180.0 + 205.714285714, rel=1e-9)
    # The default is the documented profile; a constant speed is one band.
    np.testing.assert_array_equal(R.duration_matrix(d), t)
    np.testing.assert_allclose(R.duration_matrix(np.array([3600.0, 7200.0]), speed_kmh=36.0), [360.0, 720.0])
    assert R.duration_matrix(1000.0, speed_kmh=36.0).shape == ()


@pytest.mark.parametrize(
    ("d", "bands", "match"),
    [
        ([[float("nan")]], 30.0, "distances must be >= 0"),
        ([[-1.0]], 30.0, "distances must be >= 0"),
        ([[1.0]], 0.0, "speed_kmh = 0 must be finite and > 0"),
        ([[1.0]], [(1000.0, 20.0)], "only the last band has up_to_m = inf"),
        ([[1.0]], [(1000.0, 20.0), (500.0, 30.0), (math.inf, 40.0)], "bounds strictly increasing"),
        ([[1.0]], [], "at least one"),
    ],
)
def test_duration_matrix_validates(d, bands, match):
    with pytest.raises(ValueError, match=match):
        R.duration_matrix(np.array(d), speed_kmh=bands)


def test_durations_of_a_distance_matrix_are_symmetric_and_monotone():
    rng = np.random.default_rng(4)
    lat, lon = rng.uniform(47.4, 47.6, 30), rng.uniform(6.7, 7.0, 30)
    d = R.distance_matrix(lat, lon, circuity=R.DEFAULT_CIRCUITY)
    t = R.duration_matrix(d)
    assert np.array_equal(t, t.T)
    order = np.argsort(d.ravel())
    assert np.all(np.diff(t.ravel()[order]) >= 0)


# --------------------------------------------------------------------------------------
# VRPLIB: every CVRPLIB .sol costs exactly its best-known value
# --------------------------------------------------------------------------------------

CVRPLIB = (
    Path(os.environ.get("TIDSTREAM_SHARED", Path(__file__).resolve().parents[2] / "shared"))
    / "data"
    / "cvrplib"
)
INSTANCES = sorted(p.stem for p in CVRPLIB.glob("*.vrp"))
# SOURCE.md's table, transcribed: the published best-known costs.
BKS = {
    "E-n13-k4": 247,
    "P-n16-k8": 450,
    "B-n31-k5": 672,
    "A-n32-k5": 784,
    "F-n72-k4": 237,
    "M-n101-k10": 820,
    "X-n101-k25": 27591,
    "X-n120-k6": 13332,
    "X-n1001-k43": 72355,
}


def test_cvrplib_data_is_present():
    assert sorted(BKS) == INSTANCES, f"CVRPLIB files in {CVRPLIB} (shared/ must sit beside the project)"


@pytest.mark.parametrize("name", sorted(BKS))
def test_cvrplib_solution_costs_exactly_the_best_known_value(name):
    inst = R.read_vrplib(CVRPLIB / f"{name}.vrp")
    sol = R.read_vrplib_solution(CVRPLIB / f"{name}.sol")
    assert inst.name == name and inst.depot == 0
    assert inst.matrix.shape == (inst.dimension, inst.dimension)
    assert sol.cost == BKS[name]
    assert R.route_cost(inst.matrix, sol.routes, depot=inst.depot) == BKS[name]
    # The same routes through the full evaluator: within capacity, all demand collected.
    tab = R.evaluate_routes(inst.matrix, sol.routes, demand=inst.demands, capacity=inst.capacity)
    assert sum(tab.column("distance_m").to_pylist()) == BKS[name]
    assert max(tab.column("peak_load").to_pylist()) <= inst.capacity
    assert sum(tab.column("excess_load").to_pylist()) == 0
    assert sum(tab.column("load").to_pylist()) == inst.demands.sum()
    if inst.coords is not None:  # TSPLIB nint per edge, recomputed independently
        x, y = inst.coords[:, 0], inst.coords[:, 1]
        exact = np.hypot(x[:, None] - x[None, :], y[:, None] - y[None, :])
        np.testing.assert_array_equal(inst.matrix, np.floor(exact + 0.5))
        unrounded = R.read_vrplib(CVRPLIB / f"{name}.vrp", rounding="exact")
        np.testing.assert_allclose(unrounded.matrix, exact, rtol=1e-15)


def test_vrplib_errors_name_the_line(tmp_path):
    bad = tmp_path / "bad.vrp"
    bad.write_text(
        "NAME : bad\nDIMENSION : 2\nEDGE_WEIGHT_TYPE : EUC_2D\nNODE_COORD_SECTION\n1 0 0\n2 1 x\nEOF\n"
    )
    with pytest.raises(ValueError, match=r'line 6: y: "x" is not a finite number'):
        R.read_vrplib(bad)
    with pytest.raises(ValueError, match="rounding must be"):
        R.read_vrplib(CVRPLIB / "P-n16-k8.vrp", rounding="up")


# --------------------------------------------------------------------------------------
# Route evaluation
# --------------------------------------------------------------------------------------


def line_matrix() -> np.ndarray:
    """Depot 0, stops 1-3 at 1, 2, 3 km on a line, a facility 4 at 5 km."""
    pos = np.array([0.0, 1000.0, 2000.0, 3000.0, 5000.0])
    return np.abs(pos[:, None] - pos[None, :])


def test_hand_computed_route_with_unloading_and_shift():
    m = line_matrix()
    tab = R.evaluate_routes(
        m,
        [[1, 2, 3], [], [2]],
        demand=[0, 6, 6, 6, 0],
        capacity=10,
        service_s=[0, 30, 30, 30, 0],
        facilities=[4],
        unload_s=600,
        shift_s=3600,
        speed_kmh=36.0,  # 10 m/s
    )
    assert tab.schema == R.ROUTE_METRICS_SCHEMA
    row = tab.slice(0, 1).to_pylist()[0]
    # 0-1 (1 km), full: 1-4-2 (4 + 3 km), full again: 2-4-3 (3 + 2 km), end: 3-4-0 (2 + 5 km).
    assert row == {
        "route": 0,
        "n_stops": 3,
        "distance_m": 20_000.0,
        "duration_s": 2000.0 + 90.0 + 1800.0,
        "travel_s": 2000.0,
        "service_s": 90.0,
        "unload_s": 1800.0,
        "load": 18.0,
        "peak_load": 6.0,
        "unloads": 3,
        "excess_load": 0.0,
        "shift_excess_s": 290.0,
    }
    assert tab.column("distance_m").to_pylist()[1:] == [0.0, 2000.0 + 3000.0 + 5000.0]
    assert tab.column("unloads").to_pylist()[1:] == [0, 1]
    # No facility: a CVRP route, 6 km, 8 units over capacity; durations from a matrix.
    tab = R.evaluate_routes(m, [[1, 2, 3]], demand=[0, 6, 6, 6, 0], capacity=10, duration_s=m / 5.0)
    assert tab.column("distance_m").to_pylist() == [6000.0]
    assert tab.column("excess_load").to_pylist() == [8.0]
    assert tab.column("travel_s").to_pylist() == [1200.0]


def py_evaluate(m, t, routes, demand, cap, service, facilities, unload_s, shift_s, depot=0):
    """The semantics of docs/ROUTES.md as a plain Python loop (reference for random cases)."""
    out = []
    for stops in routes:
        dist = travel = serv = unl = load = peak = excess = 0.0
        unloads = 0
        if stops:
            pos, trip = depot, 0.0
            for s in stops:
                q = demand[s]
                if facilities and trip > 0 and trip + q > cap:
                    f = min(
                        facilities, key=lambda f, pos=pos, s=s: (m[pos, f] + m[f, s], facilities.index(f))
                    )
                    dist += m[pos, f]
                    travel += t[pos, f]
                    unl += unload_s
                    unloads += 1
                    excess += max(0.0, trip - cap)
                    trip, pos = 0.0, f
                dist += m[pos, s]
                travel += t[pos, s]
                serv += service[s]
                trip += q
                load += q
                peak = max(peak, trip)
                pos = s
            if facilities:
                f = min(facilities, key=lambda f, pos=pos: (m[pos, f] + m[f, depot], facilities.index(f)))
                dist += m[pos, f]
                travel += t[pos, f]
                unl += unload_s
                unloads += 1
                pos = f
            excess += max(0.0, trip - cap)
            dist += m[pos, depot]
            travel += t[pos, depot]
        dur = travel + serv + unl
        out.append(
            (len(stops), dist, dur, travel, serv, unl, load, peak, unloads, excess, max(0.0, dur - shift_s))
        )
    return out


@pytest.mark.parametrize("seed", range(6))
def test_evaluation_matches_a_python_loop_on_random_cases(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(8, 60))
    lat, lon = rng.uniform(47.4, 47.6, n), rng.uniform(6.7, 7.0, n)
    m = R.distance_matrix(lat, lon, circuity=1.3)
    t = R.duration_matrix(m) * rng.uniform(0.9, 1.1, (n, n))  # asymmetric durations
    demand = rng.uniform(0, 40, n)
    service = rng.uniform(20, 90, n)
    facilities = [int(f) for f in rng.choice(np.arange(1, n), size=int(rng.integers(0, 3)), replace=False)]
    customers = [i for i in range(1, n) if i not in facilities]
    rng.shuffle(customers)
    cuts = sorted(rng.choice(len(customers) + 1, size=int(rng.integers(1, 6))))
    routes = [customers[a:b] for a, b in zip([0, *cuts], [*cuts, len(customers)])]
    cap, shift = float(rng.uniform(50, 200)), float(rng.uniform(1800, 7200))
    tab = R.evaluate_routes(
        m, routes, duration_s=t, demand=demand, capacity=cap, service_s=service,
        facilities=facilities, unload_s=420.0, shift_s=shift,
    )  # fmt: skip
    ref = py_evaluate(m, t, routes, demand, cap, service, facilities, 420.0, shift)
    cols = [c for c in R.ROUTE_METRICS_SCHEMA.names if c != "route"]
    got = list(zip(*(tab.column(c).to_pylist() for c in cols)))
    assert len(got) == len(ref)
    for g, r in zip(got, ref):
        np.testing.assert_allclose(g, r, rtol=1e-12, atol=1e-9)
    assert R.route_cost(m, routes) == pytest.approx(
        sum(
            py_evaluate(m, t, routes, demand, math.inf, service, [], 0, math.inf)[k][1]
            for k in range(len(routes))
        ),
        rel=1e-12,
    )


def test_flat_routes_and_evaluation_errors():
    m = line_matrix()
    flat = R.FlatRoutes.from_lists([[1, 2], [], [3]])
    assert flat.offsets.tolist() == [0, 2, 2, 3] and flat.to_lists() == [[1, 2], [], [3]]
    assert R.route_cost(m, flat) == R.route_cost(m, [[1, 2], [], [3]]) == 4000.0 + 6000.0
    with pytest.raises(ValueError, match="route 1, stop 0: node 9 is not an index"):
        R.route_cost(m, [[1], [9]])
    with pytest.raises(ValueError, match="square"):
        R.route_cost(m[:3], [[1]])
    with pytest.raises(ValueError, match="depot 7"):
        R.evaluate_routes(m, [[1]], depot=7)
    with pytest.raises(ValueError, match=r"demand must be a scalar or have one value per node \(5\)"):
        R.evaluate_routes(m, [[1]], demand=[1, 2, 3])
    with pytest.raises(ValueError, match=r"service_s\[2\] = -1"):
        R.evaluate_routes(m, [[1]], service_s=[0, 0, -1, 0, 0])
    with pytest.raises(ValueError, match="capacity = 0"):
        R.evaluate_routes(m, [[1]], capacity=0)
    with pytest.raises(ValueError, match="facility 5"):
        R.evaluate_routes(m, [[1]], facilities=[5])
    bad = m.copy()
    bad[0, 1] = np.nan
    with pytest.raises(ValueError, match="route 0: a matrix entry on its path is NaN"):
        R.evaluate_routes(bad, [[1]])


def test_cheapest_insertion():
    m = line_matrix()
    ins = R.cheapest_insertion(m, [[1, 3], []], [2, 4])
    assert ins.route.tolist() == [0, 0]
    assert ins.position.tolist() == [1, 1]
    assert ins.added.tolist() == [0.0, 4000.0]
    # Capacity: route 0 carries 10, so the candidate goes to the empty route.
    ins = R.cheapest_insertion(m, [[1, 3], []], 2, demand=[0, 5, 5, 5, 5], capacity=10)
    assert (ins.route[0], ins.position[0], ins.added[0]) == (1, 0, 4000.0)
    ins = R.cheapest_insertion(m, [[1, 3]], 2, demand=[0, 5, 5, 5, 5], capacity=10)
    assert (ins.route[0], ins.position[0], ins.added[0]) == (-1, -1, math.inf)
    # Against brute force on random routes: inserting where it says costs exactly `added`.
    rng = np.random.default_rng(9)
    lat, lon = rng.uniform(47.4, 47.6, 40), rng.uniform(6.7, 7.0, 40)
    d = R.distance_matrix(lat, lon)
    nodes = list(range(1, 30))
    routes = [nodes[:10], nodes[10:18], nodes[18:]]
    cands = np.arange(30, 40)
    ins = R.cheapest_insertion(d, routes, cands)
    base = R.route_cost(d, routes)
    for c, r, p, a in zip(cands, ins.route, ins.position, ins.added):
        best = min(
            R.route_cost(d, [*routes[:ri], [*routes[ri][:pi], int(c), *routes[ri][pi:]], *routes[ri + 1 :]])
            - base
            for ri in range(len(routes))
            for pi in range(len(routes[ri]) + 1)
        )
        assert a == pytest.approx(best, abs=1e-6)
        new = [list(x) for x in routes]
        new[r].insert(p, int(c))
        assert R.route_cost(d, new) - base == pytest.approx(a, abs=1e-6)


# --------------------------------------------------------------------------------------
# Sparse k-NN
# --------------------------------------------------------------------------------------


def test_knn_matches_the_full_matrix():
    rng = np.random.default_rng(5)
    n = 500
    lat, lon = rng.uniform(47.4, 47.6, n), rng.uniform(6.7, 7.0, n)
    lat[:5], lon[:5] = 47.5, 6.8  # duplicates: ties broken by index
    full = R.distance_matrix(lat, lon, circuity=1.3)
    knn = R.knn_matrix(lat, lon, 7, circuity=1.3)
    assert knn.indptr.tolist() == list(range(0, 7 * n + 1, 7))
    for i in range(n):
        row = full[i].copy()
        row[i] = math.inf
        expected = np.lexsort((np.arange(n), row))[:7]
        got = knn.indices[knn.indptr[i] : knn.indptr[i + 1]]
        assert got.tolist() == expected.tolist(), i
        np.testing.assert_array_equal(knn.distances_m[knn.indptr[i] : knn.indptr[i + 1]], full[i, expected])
    dense = knn.to_dense()
    assert np.isinf(dense).sum() == n * n - n - 7 * n
    small = R.knn_matrix([47.5, 47.6], [6.8, 6.9], 5)  # k capped at n - 1
    assert small.indices.tolist() == [1, 0]
    with pytest.raises(ValueError, match="k must be >= 1"):
        R.knn_matrix([47.5], [6.8], 0)
    with pytest.raises(ValueError, match="lat_deg"):
        R.knn_matrix([95.0], [6.8], 1)


# --------------------------------------------------------------------------------------
# External matrices: OSRM table, Parquet, NumPy
# --------------------------------------------------------------------------------------

# An OSRM `table` response for 3 points in Montbéliard, as the HTTP API returns it for
# /table/v1/driving/6.7985,47.5102;6.8035,47.5081;6.7823,47.5160?annotations=duration,distance
# (shape per the OSRM HTTP docs: code, durations and distances as row arrays, one
# Waypoint per source/destination with hint, distance to the snapped point, street name
# and [lon, lat] location; null where no route exists).
OSRM_TABLE = """{
  "code": "Ok",
  "durations": [[0, 98.4, 187.2], [101.9, 0, null], [179.5, 265.3, 0]],
  "distances": [[0, 612.3, 1405.8], [640.1, 0, null], [1398.2, 2011.6, 0]],
  "sources": [
    {"hint": "AbCdEf8AAIAHAAAA", "distance": 4.21, "name": "Rue de Belfort", "location": [6.798531, 47.510244]},
    {"hint": "GhIjKl8AAIAPAAAA", "distance": 1.07, "name": "Avenue des Alliés", "location": [6.803512, 47.508066]},
    {"hint": "MnOpQr8AAIAXAAAA", "distance": 12.9, "name": "", "location": [6.782297, 47.516042]}
  ],
  "destinations": [
    {"hint": "AbCdEf8AAIAHAAAA", "distance": 4.21, "name": "Rue de Belfort", "location": [6.798531, 47.510244]},
    {"hint": "GhIjKl8AAIAPAAAA", "distance": 1.07, "name": "Avenue des Alliés", "location": [6.803512, 47.508066]},
    {"hint": "MnOpQr8AAIAXAAAA", "distance": 12.9, "name": "", "location": [6.782297, 47.516042]}
  ]
}""".encode()


def test_read_osrm_table(tmp_path):
    path = tmp_path / "table.json"
    path.write_bytes(OSRM_TABLE)
    for src in (path, str(path), OSRM_TABLE, orjson.loads(OSRM_TABLE)):
        t = R.read_osrm_table(src)
        assert t.duration_s.shape == t.distance_m.shape == (3, 3)
        assert t.duration_s[0].tolist() == [0.0, 98.4, 187.2]
        assert t.distance_m[1, 2] == math.inf and t.duration_s[1, 2] == math.inf
        assert t.source_lat_deg.tolist() == [47.510244, 47.508066, 47.516042]
        assert t.destination_lon_deg.tolist() == [6.798531, 6.803512, 6.782297]
    # The road matrix plugs straight into evaluation, and its circuity can be measured.
    tab = R.evaluate_routes(t.distance_m, [[1], [2]], duration_s=t.duration_s)
    assert tab.column("distance_m").to_pylist() == [612.3 + 640.1, 1405.8 + 1398.2]
    assert tab.column("duration_s").to_pylist() == [98.4 + 101.9, 187.2 + 179.5]
    crow = R.distance_matrix(t.source_lat_deg, t.source_lon_deg)
    ratio = t.distance_m[0, 1:] / crow[0, 1:]
    assert np.all((ratio > 1.0) & (ratio < 2.0))


@pytest.mark.parametrize(
    ("doc", "match"),
    [
        (
            b'{"code": "InvalidQuery", "message": "Query string malformed close to position 28"}',
            "InvalidQuery",
        ),
        (b'{"code": "Ok"}', "neither durations nor distances"),
        (b'{"code": "Ok", "durations": [[0, 1], [1]]}', "different lengths"),
        (b'{"code": "Ok", "durations": [[0, "x"], [1, 0]]}', "non-number"),
        (b'{"code": "Ok", "durations": [[0, -1], [1, 0]]}', "negative"),
        (b'{"code": "Ok", "durations": [[0, 1], [1, 0]], "distances": [[0]]}', "differ in shape"),
        (b"[1, 2]", "JSON object"),
        (b"{not json", "not JSON"),
    ],
)
def test_read_osrm_table_errors(doc, match):
    with pytest.raises(ValueError, match=match):
        R.read_osrm_table(doc)


def test_matrix_files_round_trip(tmp_path):
    rng = np.random.default_rng(6)
    lat, lon = rng.uniform(47.4, 47.6, 12), rng.uniform(6.7, 7.0, 12)
    m = R.distance_matrix(lat, lon, circuity=1.3)
    m[3, 4] = math.inf  # one-way street: no route
    for name in ("m.npy", "m.parquet"):
        R.write_matrix(tmp_path / name, m)
        back = R.read_matrix(tmp_path / name)
        np.testing.assert_array_equal(back, m)
        assert back.dtype == np.float64 and back.flags.c_contiguous
    # Parquet as an analyst would write it: a long OD table with its own value column...
    o, d = np.meshgrid(np.arange(12), np.arange(12), indexing="ij")
    t = R.duration_matrix(m)
    pq.write_table(
        pa.table({"origin": o.ravel(), "destination": d.ravel(), "minutes": t.ravel() / 60}),
        tmp_path / "od.parquet",
    )
    np.testing.assert_allclose(R.read_matrix(tmp_path / "od.parquet", column="minutes") * 60, t, rtol=1e-15)
    # ... or a wide one (one column per destination), read back with pandas-free pyarrow.
    pq.write_table(pa.table({f"c{j}": m[:, j] for j in range(12)}), tmp_path / "wide.parquet")
    np.testing.assert_array_equal(R.read_matrix(tmp_path / "wide.parquet"), m)
    np.save(tmp_path / "nan.npy", np.array([[0.0, np.nan], [1.0, 0.0]]))
    with pytest.raises(ValueError, match=r"entry \[0, 1\] is NaN"):
        R.read_matrix(tmp_path / "nan.npy")
    pq.write_table(
        pa.table({"origin": [0, 0], "destination": [1, 1], "distance_m": [1.0, 2.0]}),
        tmp_path / "dup.parquet",
    )
    with pytest.raises(ValueError, match="duplicate"):
        R.read_matrix(tmp_path / "dup.parquet")
    pq.write_table(pa.table({"a": [1.0, 2.0]}), tmp_path / "rect.parquet")
    with pytest.raises(ValueError, match="not square"):
        R.read_matrix(tmp_path / "rect.parquet")


def test_the_issue_calls_work_as_written():
    import tidstream

    d = tidstream.routes.distance_matrix(np.array([47.51, 47.52]), np.array([6.79, 6.80]), circuity=1.0)
    assert d.shape == (2, 2) and d.dtype == np.float64 and d[0, 1] > 0
    inst = tidstream.routes.read_vrplib(CVRPLIB / "P-n16-k8.vrp")
    assert inst.coords.shape == (16, 2) and inst.demands.shape == (16,) and inst.capacity == 35
    assert (
        tidstream.routes.route_cost(inst.matrix, [[k] for k in range(1, 16)], depot=0)
        == 2 * inst.matrix[0].sum()
    )
