//! PyO3 bindings of the route-cost kernels (`core/src/routes/`).
//!
//! numpy in, numpy out: coordinates as float64 degrees, matrices as C-contiguous
//! float64 `(n, n)` arrays (the Rust `Vec` is moved into numpy, no copy). The GIL is
//! released for every matrix and evaluation kernel. `tidstream.routes` is the public
//! face (it makes arrays contiguous and documents the semantics).

use numpy::{
    PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods,
};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use pyo3::types::PyDict;

use crate::routes::eval::{self, Durations, EvalParams, Routes};
use crate::routes::matrix::{self, SpeedProfile};
use crate::routes::vrplib::{self, Rounding};
use crate::routes::{knn, Matrix, RouteError};

fn err(e: RouteError) -> PyErr {
    PyValueError::new_err(e.to_string())
}

fn slice<'a, T: numpy::Element>(a: &'a PyReadonlyArray1<'_, T>, name: &str) -> PyResult<&'a [T]> {
    a.as_slice().map_err(|e| {
        PyValueError::new_err(format!(
            "{name}: {e}; pass a contiguous numpy array (np.ascontiguousarray)"
        ))
    })
}

fn slice2<'a, T: numpy::Element>(a: &'a PyReadonlyArray2<'_, T>, name: &str) -> PyResult<&'a [T]> {
    a.as_slice().map_err(|e| {
        PyValueError::new_err(format!(
            "{name}: {e}; pass a C-contiguous numpy array (np.ascontiguousarray)"
        ))
    })
}

fn square<'py>(
    py: Python<'py>,
    v: Vec<f64>,
    m: usize,
    n: usize,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    PyArray1::from_vec(py, v).reshape([m, n])
}

/// Haversine great-circle distance in metres between two points in degrees.
#[pyfunction]
fn haversine_m(lat1_deg: f64, lon1_deg: f64, lat2_deg: f64, lon2_deg: f64) -> f64 {
    matrix::haversine_m(lat1_deg, lon1_deg, lat2_deg, lon2_deg)
}

/// (n, n) great-circle distances in metres times circuity (GIL released).
#[pyfunction]
#[pyo3(signature = (lat_deg, lon_deg, circuity=1.0))]
fn distance_matrix<'py>(
    py: Python<'py>,
    lat_deg: PyReadonlyArray1<'py, f64>,
    lon_deg: PyReadonlyArray1<'py, f64>,
    circuity: f64,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let lat = slice(&lat_deg, "lat_deg")?;
    let lon = slice(&lon_deg, "lon_deg")?;
    let n = lat.len();
    let out = py
        .detach(|| matrix::distance_matrix(lat, lon, circuity))
        .map_err(err)?;
    square(py, out, n, n)
}

/// (m, n) great-circle distances in metres from m origins to n destinations (GIL released).
#[pyfunction]
#[pyo3(signature = (lat_from, lon_from, lat_to, lon_to, circuity=1.0))]
fn distance_matrix_between<'py>(
    py: Python<'py>,
    lat_from: PyReadonlyArray1<'py, f64>,
    lon_from: PyReadonlyArray1<'py, f64>,
    lat_to: PyReadonlyArray1<'py, f64>,
    lon_to: PyReadonlyArray1<'py, f64>,
    circuity: f64,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let (la, lo) = (slice(&lat_from, "lat_from")?, slice(&lon_from, "lon_from")?);
    let (lb, lob) = (slice(&lat_to, "lat_to")?, slice(&lon_to, "lon_to")?);
    let (m, n) = (la.len(), lb.len());
    let out = py
        .detach(|| matrix::distance_matrix_between(la, lo, lb, lob, circuity))
        .map_err(err)?;
    square(py, out, m, n)
}

/// Durations in seconds of a (m, n) distance matrix in metres with a speed profile
/// given as (up_to_m, speed_kmh) bands, the last one up to inf (GIL released).
#[pyfunction]
fn duration_matrix<'py>(
    py: Python<'py>,
    distance_m: PyReadonlyArray2<'py, f64>,
    bands: Vec<(f64, f64)>,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let shape = distance_m.shape();
    let (m, n) = (shape[0], shape[1]);
    let d = slice2(&distance_m, "distance_m")?;
    let profile = SpeedProfile::new(&bands).map_err(err)?;
    let out = py
        .detach(|| matrix::duration_matrix(d, &profile))
        .map_err(err)?;
    square(py, out, m, n)
}

/// Three numpy columns: (int64, int64, float64).
type Triple<'py> = (
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<f64>>,
);

fn matrix_of<'a>(a: &'a PyReadonlyArray2<'_, f64>, name: &str) -> PyResult<Matrix<'a>> {
    let shape = a.shape();
    if shape[0] != shape[1] {
        return Err(PyValueError::new_err(format!(
            "{name} must be square, got shape ({}, {})",
            shape[0], shape[1]
        )));
    }
    Matrix::new(shape[0], slice2(a, name)?, name).map_err(err)
}

/// Flat routes (nodes int64, offsets int64 of len routes + 1) checked against n nodes.
fn routes_of<'a>(
    nodes: &'a PyReadonlyArray1<'_, i64>,
    offsets: &'a PyReadonlyArray1<'_, i64>,
    n: usize,
) -> PyResult<Routes<'a>> {
    Routes::new(
        slice(nodes, "route nodes")?,
        slice(offsets, "route offsets")?,
        n,
    )
    .map_err(err)
}

/// Evaluation settings as given by `tidstream.routes.evaluate_routes`.
#[derive(FromPyObject)]
struct EvalArgs<'py> {
    #[pyo3(item)]
    depot: usize,
    #[pyo3(item)]
    demand: Option<PyReadonlyArray1<'py, f64>>,
    #[pyo3(item)]
    capacity: f64,
    #[pyo3(item)]
    service_s: Option<PyReadonlyArray1<'py, f64>>,
    #[pyo3(item)]
    facilities: Vec<usize>,
    #[pyo3(item)]
    unload_s: f64,
    #[pyo3(item)]
    shift_s: f64,
}

fn params<'a>(a: &'a EvalArgs<'_>) -> PyResult<EvalParams<'a>> {
    Ok(EvalParams {
        depot: a.depot,
        demand: match &a.demand {
            Some(d) => Some(slice(d, "demand")?),
            None => None,
        },
        capacity: a.capacity,
        service_s: match &a.service_s {
            Some(d) => Some(slice(d, "service_s")?),
            None => None,
        },
        facilities: &a.facilities,
        unload_s: a.unload_s,
        shift_s: a.shift_s,
    })
}

/// Per-route metrics as numpy columns (GIL released). `duration_s`: a duration matrix,
/// else `bands` (speed profile) applied to each leg's distance.
#[pyfunction]
#[pyo3(signature = (distance_m, nodes, offsets, args, duration_s=None, bands=None))]
fn evaluate_routes<'py>(
    py: Python<'py>,
    distance_m: PyReadonlyArray2<'py, f64>,
    nodes: PyReadonlyArray1<'py, i64>,
    offsets: PyReadonlyArray1<'py, i64>,
    args: EvalArgs<'py>,
    duration_s: Option<PyReadonlyArray2<'py, f64>>,
    bands: Option<Vec<(f64, f64)>>,
) -> PyResult<Bound<'py, PyDict>> {
    let dist = matrix_of(&distance_m, "distance_m")?;
    let routes = routes_of(&nodes, &offsets, dist.n)?;
    let p = params(&args)?;
    let dur_arr = duration_s;
    let profile = match (&dur_arr, bands) {
        (None, Some(b)) => Some(SpeedProfile::new(&b).map_err(err)?),
        (Some(_), None) => None,
        _ => {
            return Err(PyValueError::new_err(
                "give exactly one of duration_s (a matrix) and bands (a speed profile)",
            ))
        }
    };
    let dur = match (&dur_arr, &profile) {
        (Some(d), _) => Durations::Matrix(matrix_of(d, "duration_s")?),
        (None, Some(p)) => Durations::Profile(p),
        (None, None) => unreachable!("checked above"),
    };
    let m = py
        .detach(|| eval::evaluate(dist, dur, routes, &p))
        .map_err(err)?;
    let d = PyDict::new(py);
    d.set_item("n_stops", PyArray1::from_vec(py, m.n_stops))?;
    d.set_item("distance_m", PyArray1::from_vec(py, m.distance))?;
    d.set_item("duration_s", PyArray1::from_vec(py, m.duration_s))?;
    d.set_item("travel_s", PyArray1::from_vec(py, m.travel_s))?;
    d.set_item("service_s", PyArray1::from_vec(py, m.service_s))?;
    d.set_item("unload_s", PyArray1::from_vec(py, m.unload_s))?;
    d.set_item("load", PyArray1::from_vec(py, m.load))?;
    d.set_item("peak_load", PyArray1::from_vec(py, m.peak_load))?;
    d.set_item("unloads", PyArray1::from_vec(py, m.unloads))?;
    d.set_item("excess_load", PyArray1::from_vec(py, m.excess_load))?;
    d.set_item("shift_excess_s", PyArray1::from_vec(py, m.shift_excess_s))?;
    Ok(d)
}

/// Total distance of routes starting and ending at the depot (GIL released).
#[pyfunction]
fn route_cost(
    py: Python<'_>,
    matrix: PyReadonlyArray2<'_, f64>,
    nodes: PyReadonlyArray1<'_, i64>,
    offsets: PyReadonlyArray1<'_, i64>,
    depot: usize,
) -> PyResult<f64> {
    let dist = matrix_of(&matrix, "matrix")?;
    let routes = routes_of(&nodes, &offsets, dist.n)?;
    py.detach(|| eval::total_distance(dist, routes, depot))
        .map_err(err)
}

/// Cheapest insertion of each candidate: (route, position, added distance) arrays (GIL released).
#[pyfunction]
fn cheapest_insertion<'py>(
    py: Python<'py>,
    distance_m: PyReadonlyArray2<'py, f64>,
    nodes: PyReadonlyArray1<'py, i64>,
    offsets: PyReadonlyArray1<'py, i64>,
    candidates: PyReadonlyArray1<'py, i64>,
    args: EvalArgs<'py>,
) -> PyResult<Triple<'py>> {
    let dist = matrix_of(&distance_m, "distance_m")?;
    let routes = routes_of(&nodes, &offsets, dist.n)?;
    let cands = slice(&candidates, "candidates")?;
    let p = params(&args)?;
    let ins = py
        .detach(|| eval::cheapest_insertion(dist, routes, cands, &p))
        .map_err(err)?;
    Ok((
        PyArray1::from_iter(py, ins.iter().map(|i| i.route)),
        PyArray1::from_iter(py, ins.iter().map(|i| i.position)),
        PyArray1::from_iter(py, ins.iter().map(|i| i.added)),
    ))
}

/// The k nearest neighbours as CSR (indptr, indices, distances) (GIL released).
#[pyfunction]
#[pyo3(signature = (lat_deg, lon_deg, k, circuity=1.0))]
fn knn_matrix<'py>(
    py: Python<'py>,
    lat_deg: PyReadonlyArray1<'py, f64>,
    lon_deg: PyReadonlyArray1<'py, f64>,
    k: usize,
    circuity: f64,
) -> PyResult<Triple<'py>> {
    let lat = slice(&lat_deg, "lat_deg")?;
    let lon = slice(&lon_deg, "lon_deg")?;
    let r = py.detach(|| knn::knn(lat, lon, k, circuity)).map_err(err)?;
    Ok((
        PyArray1::from_vec(py, r.indptr),
        PyArray1::from_vec(py, r.indices),
        PyArray1::from_vec(py, r.distances),
    ))
}

/// Parse VRPLIB instance text into a dict of fields and numpy arrays.
#[pyfunction]
#[pyo3(signature = (text, rounding="tsplib"))]
fn parse_vrplib<'py>(py: Python<'py>, text: &str, rounding: &str) -> PyResult<Bound<'py, PyDict>> {
    let r = Rounding::parse(rounding).ok_or_else(|| {
        PyValueError::new_err(format!(
            "rounding must be \"tsplib\", \"exact\" or \"dimacs\"; got {rounding:?}"
        ))
    })?;
    let inst = py.detach(|| vrplib::parse_instance(text, r)).map_err(err)?;
    let n = inst.dimension;
    let d = PyDict::new(py);
    d.set_item("name", &inst.name)?;
    d.set_item("headers", inst.headers.clone())?;
    d.set_item("dimension", n)?;
    d.set_item("edge_weight_type", &inst.edge_weight_type)?;
    d.set_item("capacity", inst.capacity)?;
    match inst.coords {
        Some(c) => {
            let flat: Vec<f64> = c.iter().flat_map(|&(x, y)| [x, y]).collect();
            d.set_item("coords", PyArray1::from_vec(py, flat).reshape([n, 2])?)?
        }
        None => d.set_item("coords", py.None())?,
    }
    d.set_item("demands", PyArray1::from_vec(py, inst.demands))?;
    match inst.service_times {
        Some(s) => d.set_item("service_times", PyArray1::from_vec(py, s))?,
        None => d.set_item("service_times", py.None())?,
    }
    d.set_item("depots", inst.depots)?;
    d.set_item("matrix", square(py, inst.matrix, n, n)?)?;
    Ok(d)
}

/// Parse a CVRPLIB solution: (routes as lists of customer numbers, cost or None).
#[pyfunction]
fn parse_vrplib_solution(text: &str) -> PyResult<(Vec<Vec<usize>>, Option<f64>)> {
    let s = vrplib::parse_solution(text).map_err(err)?;
    Ok((s.routes, s.cost))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("EARTH_RADIUS_M", matrix::EARTH_RADIUS_M)?;
    m.add_function(wrap_pyfunction!(haversine_m, m)?)?;
    m.add_function(wrap_pyfunction!(distance_matrix, m)?)?;
    m.add_function(wrap_pyfunction!(distance_matrix_between, m)?)?;
    m.add_function(wrap_pyfunction!(duration_matrix, m)?)?;
    m.add_function(wrap_pyfunction!(evaluate_routes, m)?)?;
    m.add_function(wrap_pyfunction!(route_cost, m)?)?;
    m.add_function(wrap_pyfunction!(cheapest_insertion, m)?)?;
    m.add_function(wrap_pyfunction!(knn_matrix, m)?)?;
    m.add_function(wrap_pyfunction!(parse_vrplib, m)?)?;
    m.add_function(wrap_pyfunction!(parse_vrplib_solution, m)?)?;
    Ok(())
}
