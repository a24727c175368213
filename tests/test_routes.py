"""tidstream.routes: matrices, durations, route evaluation, VRPLIB, external matrices."""

from __future__ import annotations

import math

import numpy as np
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
