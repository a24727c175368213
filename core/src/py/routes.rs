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

use crate::routes::matrix::{self, SpeedProfile};
use crate::routes::RouteError;

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

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("EARTH_RADIUS_M", matrix::EARTH_RADIUS_M)?;
    m.add_function(wrap_pyfunction!(haversine_m, m)?)?;
    m.add_function(wrap_pyfunction!(distance_matrix, m)?)?;
    m.add_function(wrap_pyfunction!(distance_matrix_between, m)?)?;
    m.add_function(wrap_pyfunction!(duration_matrix, m)?)?;
    Ok(())
}
