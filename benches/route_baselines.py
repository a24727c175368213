"""Baselines for the route-cost kernels (``tidstream.routes``): numba and numpy.

* Distance matrix: the textbook haversine per pair (radians and cos φ precomputed per
  point) as numba ``@njit(parallel=True)`` with ``prange`` over rows, the same with
  tidstream's algorithm (unit vectors, ``asin`` of the half chord, so the comparison of
  kernels is like for like), and numpy broadcasting in row blocks of 256. Outputs are
  allocated by numpy (huge pages, like tidstream's).
* Route evaluation: numba ``prange`` over routes with the semantics of docs/ROUTES.md
  (travel from a duration matrix, service per stop, unloading trips to the best
  facility, load, excess load, shift excess), and numpy for the plain route cost
  (gather the legs, ``np.add.reduceat``).

Every baseline's output is compared with tidstream's before a figure is kept.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

R_EARTH = 6_371_008.8

_nb: dict[str, Any] = {}


def _kernels() -> dict[str, Any]:
    """Define the numba kernels on first use (importing numba costs ~0.5 s)."""
    if _nb:
        return _nb
    from numba import njit, prange

    @njit(parallel=True, cache=True)
    def haversine_matrix(lat_deg, lon_deg, circuity, out):  # pragma: no cover - compiled
        n = lat_deg.shape[0]
        la = np.radians(lat_deg)
        lo = np.radians(lon_deg)
        c = np.cos(la)
        k = 2.0 * R_EARTH * circuity
        for i in prange(n):
            for j in range(n):
                s1 = math.sin((la[j] - la[i]) * 0.5)
                s2 = math.sin((lo[j] - lo[i]) * 0.5)
                h = s1 * s1 + c[i] * c[j] * s2 * s2
                out[i, j] = k * math.asin(min(1.0, math.sqrt(h)))
        return out

    @njit(parallel=True, cache=True)
    def chord_matrix(lat_deg, lon_deg, circuity, out):  # pragma: no cover - compiled
        n = lat_deg.shape[0]
        la = np.radians(lat_deg)
        lo = np.radians(lon_deg)
        x = np.cos(la) * np.cos(lo)
        y = np.cos(la) * np.sin(lo)
        z = np.sin(la)
        k = 2.0 * R_EARTH * circuity
        for i in prange(n):
            for j in range(n):
                dx = x[i] - x[j]
                dy = y[i] - y[j]
                dz = z[i] - z[j]
                out[i, j] = k * math.asin(min(1.0, math.sqrt(dx * dx + dy * dy + dz * dz) * 0.5))
        return out

    @njit(parallel=True, cache=True)
    def evaluate(
        dist, dur, nodes, offsets, depot, demand, cap, service, facilities, unload_s, shift_s
    ):  # pragma: no cover
        r_count = offsets.shape[0] - 1
        out = np.zeros((r_count, 6))  # distance, duration, load, unloads, excess, shift excess
        nf = facilities.shape[0]
        for r in prange(r_count):
            a, b = offsets[r], offsets[r + 1]
            if a == b:
                continue
            d = 0.0
            t = 0.0
            load = 0.0
            excess = 0.0
            unloads = 0
            trip = 0.0
            pos = depot
            for k in range(a, b):
                s = nodes[k]
                q = demand[s]
                if nf > 0 and trip > 0.0 and trip + q > cap:
                    best, best_d = facilities[0], np.inf
                    for f in facilities:
                        v = dist[pos, f] + dist[f, s]
                        if v < best_d:
                            best, best_d = f, v
                    d += dist[pos, best]
                    t += dur[pos, best] + unload_s
                    unloads += 1
                    excess += max(0.0, trip - cap)
                    trip = 0.0
                    pos = best
                d += dist[pos, s]
                t += dur[pos, s] + service[s]
                trip += q
                load += q
                pos = s
            if nf > 0:
                best, best_d = facilities[0], np.inf
                for f in facilities:
                    v = dist[pos, f] + dist[f, depot]
                    if v < best_d:
                        best, best_d = f, v
                d += dist[pos, best]
                t += dur[pos, best] + unload_s
                unloads += 1
                pos = best
            excess += max(0.0, trip - cap)
            d += dist[pos, depot]
            t += dur[pos, depot]
            out[r, 0] = d
            out[r, 1] = t
            out[r, 2] = load
            out[r, 3] = unloads
            out[r, 4] = excess
            out[r, 5] = max(0.0, t - shift_s)
        return out

    _nb.update(haversine=haversine_matrix, chord=chord_matrix, evaluate=evaluate)
    return _nb


# The numba kernels write into an array numpy allocates (``np.empty``, which advises
# transparent huge pages for large arrays, as tidstream does): numba's own allocator does
# not, and 200,000 page faults would then dominate the figure instead of the kernel.


def nb_haversine_matrix(lat: np.ndarray, lon: np.ndarray, circuity: float = 1.0) -> np.ndarray:
    out = np.empty((len(lat), len(lat)))
    _kernels()["haversine"](lat, lon, circuity, out)
    return out


def nb_chord_matrix(lat: np.ndarray, lon: np.ndarray, circuity: float = 1.0) -> np.ndarray:
    out = np.empty((len(lat), len(lat)))
    _kernels()["chord"](lat, lon, circuity, out)
    return out


def np_haversine_matrix(
    lat: np.ndarray, lon: np.ndarray, circuity: float = 1.0, block: int = 256
) -> np.ndarray:
    la, lo = np.radians(lat), np.radians(lon)
    c = np.cos(la)
    n = len(lat)
    out = np.empty((n, n))
    k = 2.0 * R_EARTH * circuity
    for a in range(0, n, block):
        b = min(a + block, n)
        s1 = np.sin((la[None, :] - la[a:b, None]) * 0.5)
        s2 = np.sin((lo[None, :] - lo[a:b, None]) * 0.5)
        h = s1 * s1 + c[a:b, None] * c[None, :] * s2 * s2
        np.minimum(np.sqrt(h, out=h), 1.0, out=h)
        out[a:b] = k * np.arcsin(h)
    return out


def nb_evaluate(dist, dur, flat, depot, demand, cap, service, facilities, unload_s, shift_s) -> np.ndarray:
    """(routes, 6) array: distance, duration, load, unloads, excess load, shift excess."""
    return _kernels()["evaluate"](
        dist, dur, flat.nodes, flat.offsets, depot, demand, cap, service,
        np.asarray(facilities, dtype=np.int64), unload_s, shift_s,
    )  # fmt: skip


def np_route_cost(dist: np.ndarray, flat: Any, depot: int = 0) -> np.ndarray:
    """Distance per route (depot -> stops -> depot) with numpy: legs gathered, summed per route."""
    nodes, offsets = flat.nodes, flat.offsets
    lengths = np.diff(offsets)
    nonempty = lengths > 0
    prev = np.concatenate(([depot], nodes[:-1]))
    prev[offsets[:-1][nonempty]] = depot  # every route starts at the depot
    legs = dist[prev, nodes]
    out = np.zeros(len(lengths))
    out[nonempty] = np.add.reduceat(legs, offsets[:-1][nonempty])
    last = nodes[offsets[1:][nonempty] - 1]
    out[nonempty] += dist[last, depot]
    return out


def make_points(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n points spread over the Pays de Montbéliard (about 30 x 25 km)."""
    rng = np.random.default_rng(seed)
    return rng.uniform(47.38, 47.62, n), rng.uniform(6.62, 7.02, n)


def make_route_workload(n_nodes: int, n_routes: int, stops: int, seed: int = 0) -> dict[str, Any]:
    """A territory of n_nodes (node 0 the depot, 1-2 facilities), road-like matrices,
    and n_routes routes of ``stops`` random stops each."""
    import tidstream.routes as R

    rng = np.random.default_rng(seed)
    lat, lon = make_points(n_nodes, seed)
    dist = R.distance_matrix(lat, lon, circuity=R.DEFAULT_CIRCUITY)
    dur = R.duration_matrix(dist)
    demand = rng.uniform(0.05, 0.4, n_nodes)  # tonnes per container
    demand[[0, 1, 2]] = 0.0
    service = rng.uniform(30.0, 90.0, n_nodes)
    nodes = rng.integers(3, n_nodes, n_routes * stops).astype(np.int64)
    offsets = np.arange(0, n_routes * stops + 1, stops, dtype=np.int64)
    return {
        "dist": dist,
        "dur": dur,
        "demand": demand,
        "service": service,
        "facilities": [1, 2],
        "capacity": 12.0,
        "unload_s": 900.0,
        "shift_s": 7 * 3600.0,
        "flat": R.FlatRoutes(nodes, offsets),
    }
