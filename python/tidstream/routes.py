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

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from . import _core

__all__ = [
    "DEFAULT_CIRCUITY",
    "DEFAULT_SPEED_PROFILE",
    "EARTH_RADIUS_M",
    "distance_matrix",
    "distance_matrix_between",
    "duration_matrix",
    "haversine_m",
    "speed_bands",
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
