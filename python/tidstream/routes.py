"""Route costs: distance and duration matrices, route evaluation, VRPLIB (Rust kernels).

Distances are metres (float64), durations seconds (float64). A matrix is a
C-contiguous ``(n, n)`` array whose entry ``[i, j]`` is the cost of driving from node
``i`` to node ``j``; ``inf`` means unreachable. Coordinates are WGS84 degrees::

    import tidstream.routes as R
    d = R.distance_matrix(lat_deg, lon_deg)                    # great circle, metres
    d = R.distance_matrix(lat_deg, lon_deg, circuity=1.3)      # road estimate
    t = R.duration_matrix(d)                                   # seconds, default speed profile
    inst = R.read_vrplib("X-n101-k25.vrp")
    R.route_cost(inst.matrix, routes, depot=inst.depot)

Two circuity defaults, on purpose: :func:`distance_matrix` defaults to ``circuity=1.0``
(the plain great-circle distance: a function should return what its name says), while
planning uses :data:`DEFAULT_CIRCUITY` = 1.3 (road distance over straight line;
published urban figures 1.2 to 1.34) whenever no road matrix (OSRM ``table``,
Parquet/NumPy) is given. See docs/ROUTES.md.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from . import _core

__all__ = [
    "DEFAULT_CIRCUITY",
    "DEFAULT_SPEED_PROFILE",
    "EARTH_RADIUS_M",
    "ROUTE_METRICS_SCHEMA",
    "ExternalMatrix",
    "FlatRoutes",
    "Insertions",
    "KnnMatrix",
    "VrpInstance",
    "VrpSolution",
    "cheapest_insertion",
    "distance_matrix",
    "distance_matrix_between",
    "duration_matrix",
    "evaluate_routes",
    "haversine_m",
    "knn_matrix",
    "read_matrix",
    "read_osrm_table",
    "read_vrplib",
    "read_vrplib_solution",
    "route_cost",
    "speed_bands",
    "write_matrix",
]

#: Mean Earth radius (IUGG) of the spherical model, metres.
EARTH_RADIUS_M: float = _core.EARTH_RADIUS_M

#: Road circuity used by planning when no road matrix is given: road distance over
#: great-circle distance. Published urban figures: 1.2 (Newell 1980, random urban pairs),
#: 1.21-1.23 (O'Sullivan 1996), 1.343 (radial detour, 300 European cities, EPB 2023).
#: Measure it per territory from an OSRM table when one is available.
DEFAULT_CIRCUITY: float = 1.3

#: Default speed profile of a collection truck, as ``(up_to_m, speed_kmh)`` bands of leg
#: length: the first 1 km of a leg at 20 km/h (pull out, turns, narrow streets between
#: neighbouring containers), up to 5 km at 35 km/h, beyond at 50 km/h. An assumption of
#: ours, not a measured figure: replace it by measured speeds or by an OSRM duration
#: matrix (``read_osrm_table``) for real plans.
DEFAULT_SPEED_PROFILE: tuple[tuple[float, float], ...] = ((1000.0, 20.0), (5000.0, 35.0), (math.inf, 50.0))

FloatArray = npt.NDArray[np.float64]


def _coords(a: Any, name: str) -> FloatArray:
    arr = np.ascontiguousarray(a, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    return arr


def haversine_m(lat1_deg: float, lon1_deg: float, lat2_deg: float, lon2_deg: float) -> float:
    """Great-circle distance in metres between two points in degrees (haversine formula,
    sphere of radius :data:`EARTH_RADIUS_M`)."""
    return _core.haversine_m(float(lat1_deg), float(lon1_deg), float(lat2_deg), float(lon2_deg))


def distance_matrix(lat_deg: npt.ArrayLike, lon_deg: npt.ArrayLike, *, circuity: float = 1.0) -> FloatArray:
    """Full ``(n, n)`` matrix of great-circle distances in metres, times ``circuity``.

    ``lat_deg``, ``lon_deg``: WGS84 degrees, same length ``n``. ``circuity``: road
    distance over straight-line distance, finite and ``>= 1`` (default 1.0: the plain
    great-circle distance; planning uses :data:`DEFAULT_CIRCUITY` = 1.3). Guarantees:
    float64, C-contiguous, exactly symmetric, zero diagonal; each entry within a
    micrometre (and 1e-12 relative beyond 1 km) of the haversine formula
    (:func:`haversine_m`) times ``circuity``.
    Computed in Rust, rows in parallel, GIL released (10,000 points, 10^8 entries and
    800 MB, in well under a second on 2 cores). Raises ValueError for lengths that
    differ, NaN, latitudes outside [-90, 90], longitudes outside [-180, 180] or a bad
    circuity.
    """
    lat = _coords(lat_deg, "lat_deg")
    lon = _coords(lon_deg, "lon_deg")
    return _core.distance_matrix(lat, lon, float(circuity))


def distance_matrix_between(
    lat_from: npt.ArrayLike,
    lon_from: npt.ArrayLike,
    lat_to: npt.ArrayLike,
    lon_to: npt.ArrayLike,
    *,
    circuity: float = 1.0,
) -> FloatArray:
    """``(m, n)`` great-circle distances in metres (times ``circuity``) from ``m`` origins
    to ``n`` destinations, e.g. depots and facilities to containers. Same guarantees and
    validation as :func:`distance_matrix`."""
    return _core.distance_matrix_between(
        _coords(lat_from, "lat_from"),
        _coords(lon_from, "lon_from"),
        _coords(lat_to, "lat_to"),
        _coords(lon_to, "lon_to"),
        float(circuity),
    )


def speed_bands(speed_kmh: float | Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """Normalise a speed profile: a constant speed in km/h, or ``(up_to_m, speed_kmh)``
    bands of leg length with strictly increasing bounds, the last one ``inf``."""
    if isinstance(speed_kmh, (int, float, np.floating, np.integer)):
        return [(math.inf, float(speed_kmh))]
    return [(float(up), float(v)) for up, v in speed_kmh]


def duration_matrix(
    distance_m: npt.ArrayLike,
    *,
    speed_kmh: float | Sequence[tuple[float, float]] = DEFAULT_SPEED_PROFILE,
) -> FloatArray:
    """Driving durations in seconds for legs of ``distance_m`` metres (any shape: a
    ``(n, n)`` matrix, a row, a scalar; the result has the same shape, float64).

    ``speed_kmh`` is a constant speed in km/h or a speed profile: ``(up_to_m,
    speed_kmh)`` bands of leg length, bounds strictly increasing, the last ``inf``.
    With bands ``((1000, 20), (5000, 35), (inf, 50))`` a 3 km leg takes
    1000 m at 20 km/h + 2000 m at 35 km/h = 180 s + 205.7 s. The default is
    :data:`DEFAULT_SPEED_PROFILE` (an assumption, see there). ``inf`` (unreachable)
    stays ``inf``; NaN or negative distances raise ValueError. Travel time only:
    service and unloading times are added by route evaluation. Rust, parallel, GIL
    released.
    """
    d = np.asarray(distance_m, dtype=np.float64)
    shape = d.shape
    d2 = np.ascontiguousarray(d.reshape(1, -1) if d.ndim != 2 else d)
    out = _core.duration_matrix(d2, speed_bands(speed_kmh))
    return out.reshape(shape)


# --------------------------------------------------------------------------------------
# Routes and their evaluation
# --------------------------------------------------------------------------------------

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class FlatRoutes:
    """Routes flattened CSR-style: route ``r`` is ``nodes[offsets[r]:offsets[r + 1]]``
    (node indices into the matrix, depot excluded). Build once with :meth:`from_lists`
    to evaluate the same routes against several matrices without re-converting."""

    nodes: IntArray
    offsets: IntArray

    @classmethod
    def from_lists(cls, routes: Iterable[Sequence[int]]) -> FlatRoutes:
        lists = [list(r) for r in routes]
        lengths = np.fromiter((len(r) for r in lists), dtype=np.int64, count=len(lists))
        offsets = np.zeros(len(lists) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        nodes = np.fromiter(itertools.chain.from_iterable(lists), dtype=np.int64, count=int(offsets[-1]))
        return cls(nodes, offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def to_lists(self) -> list[list[int]]:
        return [self.nodes[a:b].tolist() for a, b in itertools.pairwise(self.offsets.tolist())]


RoutesLike = FlatRoutes | Iterable[Sequence[int]]


def _flat(routes: RoutesLike) -> FlatRoutes:
    r = routes if isinstance(routes, FlatRoutes) else FlatRoutes.from_lists(routes)
    return FlatRoutes(
        np.ascontiguousarray(r.nodes, dtype=np.int64), np.ascontiguousarray(r.offsets, dtype=np.int64)
    )


def _square(m: Any, name: str) -> FloatArray:
    arr = np.ascontiguousarray(m, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
        raise ValueError(f"{name} must be a square (n, n) matrix, got shape {arr.shape}")
    return arr


def _per_node(v: Any, n: int, name: str) -> FloatArray | None:
    if v is None:
        return None
    arr = np.asarray(v, dtype=np.float64)
    if arr.ndim == 0:
        arr = np.full(n, float(arr))
    if arr.shape != (n,):
        raise ValueError(f"{name} must be a scalar or have one value per node ({n}), got shape {arr.shape}")
    return np.ascontiguousarray(arr)


def route_cost(matrix: npt.ArrayLike, routes: RoutesLike, depot: int = 0) -> float:
    """Total cost of routes that leave ``depot`` and return to it (the CVRP objective).

    ``matrix``: ``(n, n)`` costs (metres, seconds, or VRPLIB units); ``routes``: a list of
    lists of node indices, depot excluded (or :class:`FlatRoutes`). An empty route costs
    0. Sums exactly when the matrix holds integers (VRPLIB rounding), so a CVRPLIB
    ``.sol`` gives back its published cost. Raises ValueError for an index outside the
    matrix or a NaN entry on a route. Rust, GIL released.
    """
    m = _square(matrix, "matrix")
    r = _flat(routes)
    return _core.route_cost(m, r.nodes, r.offsets, int(depot))


def _eval_args(
    n: int,
    depot: int,
    demand: Any,
    capacity: float | None,
    service_s: Any,
    facilities: Sequence[int],
    unload_s: float,
    shift_s: float | None,
) -> dict[str, Any]:
    return {
        "depot": int(depot),
        "demand": _per_node(demand, n, "demand"),
        "capacity": math.inf if capacity is None else float(capacity),
        "service_s": _per_node(service_s, n, "service_s"),
        "facilities": [int(f) for f in facilities],
        "unload_s": float(unload_s),
        "shift_s": math.inf if shift_s is None else float(shift_s),
    }


def _mf(name: str, typ: pa.DataType, unit: str | None, doc: str) -> pa.Field:
    meta = {b"doc": doc.encode()}
    if unit:
        meta[b"unit"] = unit.encode()
    return pa.field(name, typ, nullable=False, metadata=meta)


#: Columns of :func:`evaluate_routes`, one row per route, units in the field metadata.
ROUTE_METRICS_SCHEMA = pa.schema(
    [
        _mf("route", pa.int64(), None, "route index, in the order given"),
        _mf("n_stops", pa.uint32(), None, "stops on the route (depot and facility visits excluded)"),
        _mf("distance_m", pa.float64(), "m", "distance driven, unloading trips included"),
        _mf("duration_s", pa.float64(), "s", "travel + service + unloading"),
        _mf("travel_s", pa.float64(), "s", "driving time"),
        _mf("service_s", pa.float64(), "s", "time spent at the stops"),
        _mf("unload_s", pa.float64(), "s", "time spent unloading at facilities"),
        _mf("load", pa.float64(), None, "demand collected (unit of `demand`)"),
        _mf("peak_load", pa.float64(), None, "largest load carried at once"),
        _mf("unloads", pa.uint32(), None, "facility visits (unloading trips, the final one included)"),
        _mf("excess_load", pa.float64(), None, "load beyond capacity that no unloading trip could avoid"),
        _mf("shift_excess_s", pa.float64(), "s", "duration beyond the shift length"),
    ],
    metadata={b"tidstream.schema": b"route_metrics"},
)


def evaluate_routes(
    distance_m: npt.ArrayLike,
    routes: RoutesLike,
    *,
    depot: int = 0,
    duration_s: npt.ArrayLike | None = None,
    speed_kmh: float | Sequence[tuple[float, float]] = DEFAULT_SPEED_PROFILE,
    demand: npt.ArrayLike | float | None = None,
    capacity: float | None = None,
    service_s: npt.ArrayLike | float | None = None,
    facilities: Sequence[int] = (),
    unload_s: float = 0.0,
    shift_s: float | None = None,
) -> pa.Table:
    """Evaluate many routes at once; one row per route (:data:`ROUTE_METRICS_SCHEMA`).

    A route (list of node indices, depot excluded) leaves ``depot`` empty, visits its
    stops in order and returns to ``depot``. Travel times come from ``duration_s`` (a
    matrix in seconds) or else from ``speed_kmh`` applied to each leg's distance (see
    :func:`duration_matrix`). ``service_s`` (scalar or per node) is spent at each stop,
    ``unload_s`` at each facility visit.

    Load: each stop adds ``demand[stop]``. Without ``facilities`` a route is one trip
    (CVRP: the depot is where the load goes) and ``excess_load = max(0, load -
    capacity)``. With facilities (transfer stations, incinerators), a stop that would
    overflow the vehicle is preceded by an unloading trip to the facility minimising the
    detour, and after the last stop the vehicle unloads at the facility nearest to the
    way home, then returns to the depot empty. ``shift_excess_s = max(0, duration -
    shift_s)``. ``None`` means no capacity / no shift limit. See docs/ROUTES.md.

    Rust, routes in parallel, GIL released. Raises ValueError for indices outside the
    matrix, lengths that do not match, negative or NaN parameters, or a NaN matrix entry
    on a route.
    """
    d = _square(distance_m, "distance_m")
    n = d.shape[0]
    r = _flat(routes)
    args = _eval_args(n, depot, demand, capacity, service_s, facilities, unload_s, shift_s)
    if duration_s is not None:
        t = _square(duration_s, "duration_s")
        cols = _core.evaluate_routes(d, r.nodes, r.offsets, args, duration_s=t)
    else:
        cols = _core.evaluate_routes(d, r.nodes, r.offsets, args, bands=speed_bands(speed_kmh))
    cols["route"] = np.arange(len(r), dtype=np.int64)
    return pa.Table.from_arrays(
        [pa.array(cols[f.name], type=f.type) for f in ROUTE_METRICS_SCHEMA], schema=ROUTE_METRICS_SCHEMA
    )


class Insertions(NamedTuple):
    """Cheapest insertion per candidate: route index (-1 if none can take it), position
    in that route (0 = before the first stop), added distance in matrix units."""

    route: IntArray
    position: IntArray
    added: FloatArray


def cheapest_insertion(
    distance_m: npt.ArrayLike,
    routes: RoutesLike,
    candidates: int | npt.ArrayLike,
    *,
    depot: int = 0,
    demand: npt.ArrayLike | None = None,
    capacity: float | None = None,
) -> Insertions:
    """Where each candidate node (a container to add) is cheapest to insert into the
    existing routes: the route and position minimising ``d(a, c) + d(c, b) - d(a, b)``
    over every pair of consecutive nodes ``(a, b)``, depot ends included (an empty route
    costs ``d(depot, c) + d(c, depot)``). Ties go to the first route, then the first
    position. With ``demand`` and ``capacity``, routes that cannot take the candidate's
    demand are skipped. Candidates in parallel (Rust, GIL released).
    """
    d = _square(distance_m, "distance_m")
    r = _flat(routes)
    c = np.ascontiguousarray(np.atleast_1d(np.asarray(candidates)), dtype=np.int64)
    args = _eval_args(d.shape[0], depot, demand, capacity, None, (), 0.0, None)
    route, position, added = _core.cheapest_insertion(d, r.nodes, r.offsets, c, args)
    return Insertions(route, position, added)


# --------------------------------------------------------------------------------------
# Sparse k-nearest-neighbour matrices
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KnnMatrix:
    """The ``k`` nearest other points of every point, CSR layout (scipy.sparse.csr_matrix
    takes ``(distances_m, indices, indptr)`` as is): row ``i`` is
    ``indices[indptr[i]:indptr[i + 1]]``, sorted by distance (ties by index)."""

    indptr: IntArray
    indices: IntArray
    distances_m: FloatArray

    @property
    def n(self) -> int:
        return len(self.indptr) - 1

    def to_dense(self, fill: float = math.inf) -> FloatArray:
        """``(n, n)`` matrix with the kept distances, 0 on the diagonal, ``fill`` elsewhere."""
        out = np.full((self.n, self.n), fill, dtype=np.float64)
        rows = np.repeat(np.arange(self.n), np.diff(self.indptr))
        out[rows, self.indices] = self.distances_m
        np.fill_diagonal(out, 0.0)
        return out


def knn_matrix(lat_deg: npt.ArrayLike, lon_deg: npt.ArrayLike, k: int, *, circuity: float = 1.0) -> KnnMatrix:
    """Sparse great-circle distance matrix: the ``min(k, n - 1)`` nearest other points of
    each point, in metres times ``circuity``, for territories too large for a full
    matrix (n = 10^6 points, k = 20: 2 * 10^7 entries instead of 10^12). Exact (a k-d tree
    over unit vectors, whose chord order is the great-circle order); entries equal
    :func:`distance_matrix` bit for bit. Rust, parallel, GIL released. Same validation
    as :func:`distance_matrix`, plus ``k >= 1``.
    """
    if int(k) < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    indptr, indices, dist = _core.knn_matrix(
        _coords(lat_deg, "lat_deg"), _coords(lon_deg, "lon_deg"), int(k), float(circuity)
    )
    return KnnMatrix(indptr, indices, dist)


# --------------------------------------------------------------------------------------
# VRPLIB
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VrpInstance:
    """A VRPLIB / TSPLIB instance. ``matrix`` follows the instance's rounding convention
    (TSPLIB ``nint`` per edge for EUC_2D by default); indices are 0-based (node ``k`` of
    the file is index ``k - 1``), so ``depot`` is usually 0."""

    name: str
    dimension: int
    edge_weight_type: str
    capacity: float | None
    coords: FloatArray | None
    demands: FloatArray
    depot: int
    depots: list[int]
    matrix: FloatArray
    service_times: FloatArray | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class VrpSolution:
    """CVRPLIB solution: routes of customer numbers (= matrix indices, depot left out)
    and the stated cost."""

    routes: list[list[int]]
    cost: float | None


PathLike = str | os.PathLike[str]


def read_vrplib(path: PathLike, *, rounding: str = "tsplib") -> VrpInstance:
    """Read a VRPLIB instance (``.vrp``): coordinates, demands, capacity, depot and the
    distance matrix. ``rounding``: ``"tsplib"`` (the convention of the file's
    EDGE_WEIGHT_TYPE: nearest integer per edge for EUC_2D, as CVRPLIB best-known costs
    use; up for CEIL_2D), ``"exact"`` (no rounding) or ``"dimacs"`` (``floor(10 d)``).
    EXPLICIT weights (FULL_MATRIX, LOWER_ROW, UPPER_ROW, LOWER_DIAG_ROW,
    UPPER_DIAG_ROW) are read as given. Raises ValueError with the line number on
    malformed text. Parsed in Rust.
    """
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    d = _core.parse_vrplib(text, rounding)
    return VrpInstance(
        name=d["name"],
        dimension=d["dimension"],
        edge_weight_type=d["edge_weight_type"],
        capacity=d["capacity"],
        coords=d["coords"],
        demands=d["demands"],
        depot=d["depots"][0],
        depots=d["depots"],
        matrix=d["matrix"],
        service_times=d["service_times"],
        headers=dict(d["headers"]),
    )


def read_vrplib_solution(path: PathLike) -> VrpSolution:
    """Read a CVRPLIB ``.sol`` file (``Route #k: ...`` lines and ``Cost x``)."""
    routes, cost = _core.parse_vrplib_solution(Path(path).read_text(encoding="utf-8", errors="replace"))
    return VrpSolution(routes, cost)


# --------------------------------------------------------------------------------------
# External matrices: OSRM table, Parquet, NumPy
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExternalMatrix:
    """Road matrices from a routing engine: ``distance_m`` and/or ``duration_s``
    (``(sources, destinations)``, ``inf`` = no route), and the snapped WGS84 locations of
    the sources and destinations (degrees) when the engine gives them."""

    distance_m: FloatArray | None
    duration_s: FloatArray | None
    source_lat_deg: FloatArray | None = None
    source_lon_deg: FloatArray | None = None
    destination_lat_deg: FloatArray | None = None
    destination_lon_deg: FloatArray | None = None


def _table(rows: Any, name: str) -> FloatArray | None:
    if rows is None:
        return None
    if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
        raise ValueError(f"OSRM table: {name} must be an array of arrays")
    widths = {len(r) for r in rows}
    if len(widths) > 1:
        raise ValueError(f"OSRM table: {name} rows have different lengths {sorted(widths)}")
    try:
        arr = np.array([[math.inf if v is None else v for v in r] for r in rows], dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"OSRM table: {name} holds a non-number: {e}") from None
    arr = arr.reshape(len(rows), widths.pop() if widths else 0)
    if np.isnan(arr).any() or (arr < 0).any():
        raise ValueError(f"OSRM table: {name} has NaN or negative entries")
    return arr


def _locations(wps: Any, name: str) -> tuple[FloatArray | None, FloatArray | None]:
    if wps is None:
        return None, None
    try:
        lonlat = np.array([w["location"] for w in wps], dtype=np.float64).reshape(-1, 2)
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"OSRM table: {name} waypoints need a [lon, lat] location: {e!r}") from None
    return lonlat[:, 1].copy(), lonlat[:, 0].copy()


def read_osrm_table(source: PathLike | bytes | Mapping[str, Any]) -> ExternalMatrix:
    """Read an OSRM ``table`` service response (``/table/v1/{profile}/...?annotations=
    duration,distance``): a path to the JSON file, its bytes, or the parsed dict.

    ``durations`` (seconds) and ``distances`` (metres) are arrays of rows, one row per
    source and one column per destination; ``null`` (no route) becomes ``inf``.
    ``sources`` / ``destinations`` waypoints give the snapped ``[lon, lat]`` locations.
    A response whose ``code`` is not ``"Ok"`` raises ValueError with OSRM's message, as
    do missing or ragged tables and NaN or negative entries. Parsed with orjson.
    """
    if isinstance(source, Mapping):
        doc: Any = source
    else:
        raw = source if isinstance(source, bytes) else Path(source).read_bytes()
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError as e:
            raise ValueError(f"OSRM table: not JSON: {e}") from None
    if not isinstance(doc, Mapping):
        raise ValueError("OSRM table: the response must be a JSON object")
    if doc.get("code") != "Ok":
        raise ValueError(f"OSRM table: code {doc.get('code')!r}: {doc.get('message', 'no message')}")
    dur = _table(doc.get("durations"), "durations")
    dist = _table(doc.get("distances"), "distances")
    if dur is None and dist is None:
        raise ValueError(
            "OSRM table: neither durations nor distances (request annotations=duration,distance)"
        )
    if dur is not None and dist is not None and dur.shape != dist.shape:
        raise ValueError(f"OSRM table: durations {dur.shape} and distances {dist.shape} differ in shape")
    slat, slon = _locations(doc.get("sources"), "sources")
    dlat, dlon = _locations(doc.get("destinations"), "destinations")
    shape = (dur if dur is not None else dist).shape  # type: ignore[union-attr]
    if slat is not None and len(slat) != shape[0]:
        raise ValueError(f"OSRM table: {len(slat)} sources for {shape[0]} rows")
    if dlat is not None and len(dlat) != shape[1]:
        raise ValueError(f"OSRM table: {len(dlat)} destinations for {shape[1]} columns")
    return ExternalMatrix(dist, dur, slat, slon, dlat, dlon)


def _check_matrix(m: FloatArray, what: str) -> FloatArray:
    if m.ndim != 2:
        raise ValueError(f"{what}: a matrix must be two-dimensional, got shape {m.shape}")
    if np.isnan(m).any():
        i, j = np.argwhere(np.isnan(m))[0]
        raise ValueError(f"{what}: entry [{i}, {j}] is NaN (use inf for unreachable)")
    if (m < 0).any():
        i, j = np.argwhere(m < 0)[0]
        raise ValueError(f"{what}: entry [{i}, {j}] = {m[i, j]} is negative")
    return np.ascontiguousarray(m)


def read_matrix(path: PathLike, *, column: str | None = None) -> FloatArray:
    """Read a cost matrix (float64, C-contiguous; ``inf`` = unreachable) from a NumPy
    ``.npy`` file or a Parquet file.

    Parquet layouts: *long* (an OD table: integer ``origin`` and ``destination`` columns
    plus a value column: ``column``, else ``distance_m``, else ``duration_s``; pairs not
    listed are ``inf`` except the diagonal, 0; nulls are ``inf``) or *wide* (``n``
    numeric columns of ``n`` rows, row ``i`` = origin ``i``). Raises ValueError on NaN,
    negative entries, duplicate pairs or a shape that is not a matrix.
    """
    p = Path(path)
    if p.suffix == ".npy":
        return _check_matrix(np.load(p, allow_pickle=False).astype(np.float64, copy=False), str(p))
    table = pq.read_table(p)
    names = table.column_names
    if "origin" in names and "destination" in names:
        value = column or next((c for c in ("distance_m", "duration_s") if c in names), None)
        if value is None or value not in names:
            raise ValueError(f"{p}: no value column (give column=, or name it distance_m / duration_s)")
        o = table.column("origin").to_numpy().astype(np.int64)
        d = table.column("destination").to_numpy().astype(np.int64)
        v = table.column(value).to_numpy(zero_copy_only=False).astype(np.float64)
        v = np.where(table.column(value).is_null().to_numpy(zero_copy_only=False), math.inf, v)
        if len(o) and (o.min() < 0 or d.min() < 0):
            raise ValueError(f"{p}: negative origin or destination index")
        n = int(max(o.max(initial=-1), d.max(initial=-1))) + 1
        stated = (table.schema.metadata or {}).get(b"n")
        if stated is not None:
            if int(stated) < n:
                raise ValueError(f"{p}: index {n - 1} outside the stated n = {int(stated)}")
            n = int(stated)
        if len(np.unique(o * n + d)) != len(o):
            raise ValueError(f"{p}: duplicate (origin, destination) pairs")
        m = np.full((n, n), math.inf)
        np.fill_diagonal(m, 0.0)
        m[o, d] = v
        return _check_matrix(m, str(p))
    cols = [table.column(c).to_numpy(zero_copy_only=False).astype(np.float64) for c in names]
    m = np.column_stack(cols) if cols else np.zeros((0, 0))
    if m.shape[0] != m.shape[1]:
        raise ValueError(f"{p}: wide matrix with {m.shape[0]} rows and {m.shape[1]} columns is not square")
    return _check_matrix(m, str(p))


def write_matrix(path: PathLike, matrix: npt.ArrayLike, *, column: str = "distance_m") -> None:
    """Write a cost matrix to ``.npy`` (as is) or Parquet (long layout: ``origin``,
    ``destination`` int32 and the ``column`` float64 values; ``inf`` entries are left
    out, so :func:`read_matrix` gives them back as ``inf``)."""
    p = Path(path)
    m = _check_matrix(np.asarray(matrix, dtype=np.float64), str(p))
    if p.suffix == ".npy":
        np.save(p, m, allow_pickle=False)
        return
    o, d = np.nonzero(np.isfinite(m))
    unit = {"distance_m": b"m", "duration_s": b"s"}.get(column)
    meta = {b"unit": unit} if unit else None
    schema = pa.schema(
        [
            pa.field("origin", pa.int32(), nullable=False),
            pa.field("destination", pa.int32(), nullable=False),
            pa.field(column, pa.float64(), nullable=False, metadata=meta),
        ],
        metadata={b"tidstream.schema": b"cost_matrix", b"n": str(m.shape[0]).encode()},
    )
    tab = pa.Table.from_arrays(
        [pa.array(o.astype(np.int32)), pa.array(d.astype(np.int32)), pa.array(m[o, d])], schema=schema
    )
    pq.write_table(tab, p)
