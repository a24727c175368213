//! Conversions between core types and Python objects: vendor-native trees to dicts,
//! column builders to numpy buffers (ownership moves, no copy) that the Python side
//! wraps into Arrow arrays with `pyarrow.Array.from_buffers`.

use numpy::PyArray1;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};
use pyo3::IntoPyObjectExt;

use crate::envelope::UplinkColumns;
use crate::reading::{Bitmap, BoolCol, PrimCol, ReadingColumns, StrCol};
use crate::value::{is_js_integer, Value};

/// A vendor-native tree as Python objects. JS numbers that are integral become `int`
/// (as `JSON.stringify` prints them), others `float`.
pub fn value_to_py<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => b.into_bound_py_any(py)?,
        Value::Num(n) => {
            if is_js_integer(*n) {
                (*n as i64).into_bound_py_any(py)?
            } else {
                n.into_bound_py_any(py)?
            }
        }
        Value::Str(s) => s.into_bound_py_any(py)?,
        Value::Arr(items) => {
            let l = PyList::empty(py);
            for it in items {
                l.append(value_to_py(py, it)?)?;
            }
            l.into_any()
        }
        Value::Obj(entries) => {
            let d = PyDict::new(py);
            for (k, it) in entries {
                d.set_item(k, value_to_py(py, it)?)?;
            }
            d.into_any()
        }
    })
}

fn bitmap<'py>(py: Python<'py>, b: Bitmap) -> Bound<'py, PyAny> {
    PyArray1::from_vec(py, b.bytes).into_any()
}

fn validity<'py>(py: Python<'py>, b: Bitmap, nulls: usize) -> Bound<'py, PyAny> {
    if nulls == 0 {
        py.None().into_bound(py)
    } else {
        bitmap(py, b)
    }
}

/// `(values, validity | None, null_count)`.
pub fn prim<'py, T: numpy::Element>(
    py: Python<'py>,
    c: PrimCol<T>,
) -> PyResult<Bound<'py, PyTuple>> {
    let n = c.null_count;
    PyTuple::new(
        py,
        [
            PyArray1::from_vec(py, c.values).into_any(),
            validity(py, c.validity, n),
            n.into_bound_py_any(py)?,
        ],
    )
}

/// `(values bitmap, validity | None, null_count)`.
pub fn boolean<'py>(py: Python<'py>, c: BoolCol) -> PyResult<Bound<'py, PyTuple>> {
    let n = c.null_count;
    PyTuple::new(
        py,
        [
            bitmap(py, c.values),
            validity(py, c.validity, n),
            n.into_bound_py_any(py)?,
        ],
    )
}

/// `(offsets, data, validity | None, null_count)`.
pub fn string<'py>(py: Python<'py>, c: StrCol) -> PyResult<Bound<'py, PyTuple>> {
    let n = c.null_count;
    PyTuple::new(
        py,
        [
            PyArray1::from_vec(py, c.offsets).into_any(),
            PyArray1::from_vec(py, c.data).into_any(),
            validity(py, c.validity, n),
            n.into_bound_py_any(py)?,
        ],
    )
}

fn put<'py>(d: &Bound<'py, PyDict>, k: &str, v: Option<Bound<'py, PyTuple>>) -> PyResult<()> {
    match v {
        Some(t) => d.set_item(k, t),
        None => d.set_item(k, d.py().None()),
    }
}

/// Every column of a decoded batch as buffers; a column the model cannot fill, and
/// the error columns of a batch without errors, are `None` (all null).
pub fn reading_columns<'py>(py: Python<'py>, c: ReadingColumns) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("__len__", c.len)?;
    d.set_item("ok", bitmap(py, c.ok))?;
    let f = |c: Option<PrimCol<f64>>| c.map(|c| prim(py, c)).transpose();
    put(&d, "distance_mm", f(c.distance_mm)?)?;
    put(&d, "fill_pct_reported", f(c.fill_pct_reported)?)?;
    put(&d, "temperature_c", f(c.temperature_c)?)?;
    put(&d, "battery_pct", f(c.battery_pct)?)?;
    put(&d, "battery_v", f(c.battery_v)?)?;
    put(&d, "tilt", c.tilt.map(|c| boolean(py, c)).transpose()?)?;
    put(
        &d,
        "fire_alarm",
        c.fire_alarm.map(|c| boolean(py, c)).transpose()?,
    )?;
    put(&d, "alarm_flags", Some(prim(py, c.alarm_flags)?))?;
    put(
        &d,
        "measured_at",
        c.measured_at_ms.map(|c| prim(py, c)).transpose()?,
    )?;
    put(&d, "latitude", f(c.latitude)?)?;
    put(&d, "longitude", f(c.longitude)?)?;
    match c.stored {
        Some(s) => {
            let n = s.null_count;
            let t = PyTuple::new(
                py,
                [
                    PyArray1::from_vec(py, s.offsets).into_any(),
                    validity(py, s.validity, n),
                    n.into_bound_py_any(py)?,
                    PyArray1::from_vec(py, s.measured_at_ms).into_any(),
                    prim(py, s.distance_mm)?.into_any(),
                    prim(py, s.temperature_c)?.into_any(),
                ],
            )?;
            d.set_item("stored_readings", t)?;
        }
        None => d.set_item("stored_readings", py.None())?,
    }
    put(&d, "error", c.error.map(|c| string(py, c)).transpose()?)?;
    put(
        &d,
        "error_kind",
        c.error_kind.map(|c| string(py, c)).transpose()?,
    )?;
    put(
        &d,
        "error_offset",
        c.error_offset.map(|c| prim(py, c)).transpose()?,
    )?;
    Ok(d)
}

/// Every column of a parsed envelope batch as buffers.
pub fn uplink_columns<'py>(py: Python<'py>, c: UplinkColumns) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("__len__", c.len)?;
    d.set_item("ok", bitmap(py, c.ok))?;
    d.set_item("dev_eui", string(py, c.dev_eui)?)?;
    d.set_item("device_id", string(py, c.device_id)?)?;
    d.set_item("received_at", prim(py, c.received_at_ns)?)?;
    d.set_item("fport", prim(py, c.fport)?)?;
    d.set_item("fcnt", prim(py, c.fcnt)?)?;
    let nulls = c.error_count;
    d.set_item(
        "payload",
        PyTuple::new(
            py,
            [
                PyArray1::from_vec(py, c.payload_offsets).into_any(),
                PyArray1::from_vec(py, c.payload_data).into_any(),
                validity(py, c.payload_validity, nulls),
                nulls.into_bound_py_any(py)?,
            ],
        )?,
    )?;
    d.set_item("rssi", prim(py, c.rssi)?)?;
    d.set_item("snr", prim(py, c.snr)?)?;
    d.set_item("gateway_count", prim(py, c.gateway_count)?)?;
    d.set_item("error", string(py, c.error)?)?;
    d.set_item("error_kind", string(py, c.error_kind)?)?;
    d.set_item("error_offset", prim(py, c.error_offset)?)?;
    Ok(d)
}
