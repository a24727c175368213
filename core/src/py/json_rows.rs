//! Binding of `crate::json_rows`: columns (numpy arrays, string tables) to one JSON
//! object per row, written with the GIL released.

use numpy::PyReadonlyArray1;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};

use crate::json_rows::{write_rows, JsonColumn};

/// A string table for `"dict"` columns, converted from Python once and reused.
#[pyclass(frozen, module = "tidstream._core")]
pub struct JsonStrings {
    values: Vec<Option<String>>,
}

#[pymethods]
impl JsonStrings {
    #[new]
    fn new(values: Vec<Option<String>>) -> Self {
        JsonStrings { values }
    }

    fn __len__(&self) -> usize {
        self.values.len()
    }
}

/// Strings of a `"dict"` column: a table given as a list, or a shared [`JsonStrings`].
enum Strings<'py> {
    Owned(Vec<Option<String>>),
    Shared(Bound<'py, JsonStrings>),
}

impl Strings<'_> {
    fn get(&self) -> &[Option<String>] {
        match self {
            Strings::Owned(v) => v,
            Strings::Shared(t) => &t.get().values,
        }
    }
}

/// One column spec as extracted from Python (owns what the writer borrows).
enum Spec<'py> {
    F64(PyReadonlyArray1<'py, f64>),
    I64(
        PyReadonlyArray1<'py, i64>,
        Option<PyReadonlyArray1<'py, bool>>,
    ),
    Bool(PyReadonlyArray1<'py, i8>),
    Ts(
        PyReadonlyArray1<'py, i64>,
        Option<PyReadonlyArray1<'py, bool>>,
    ),
    Dict(PyReadonlyArray1<'py, i64>, Strings<'py>),
    IntStr(PyReadonlyArray1<'py, i64>, String, String),
    Literal(String),
}

fn slice<'a, T: numpy::Element>(a: &'a PyReadonlyArray1<'_, T>, key: &str) -> PyResult<&'a [T]> {
    a.as_slice()
        .map_err(|e| PyValueError::new_err(format!("column {key:?}: {e}")))
}

fn spec<'py>(
    key: &str,
    kind: &str,
    a: &Bound<'py, PyAny>,
    b: &Bound<'py, PyAny>,
) -> PyResult<Spec<'py>> {
    let opt_mask = |b: &Bound<'py, PyAny>| -> PyResult<Option<PyReadonlyArray1<'py, bool>>> {
        if b.is_none() {
            Ok(None)
        } else {
            Ok(Some(b.extract()?))
        }
    };
    let bad = |e: PyErr| PyTypeError::new_err(format!("column {key:?} ({kind}): {e}"));
    Ok(match kind {
        "f64" => Spec::F64(a.extract().map_err(bad)?),
        "i64" => Spec::I64(a.extract().map_err(bad)?, opt_mask(b).map_err(bad)?),
        "bool" => Spec::Bool(a.extract().map_err(bad)?),
        "ts_ns" => Spec::Ts(a.extract().map_err(bad)?, opt_mask(b).map_err(bad)?),
        "dict" => {
            let strings = match b.cast::<JsonStrings>() {
                Ok(t) => Strings::Shared(t.clone()),
                Err(_) => Strings::Owned(b.extract().map_err(bad)?),
            };
            Spec::Dict(a.extract().map_err(bad)?, strings)
        }
        "intstr" => {
            let (p, s): (String, String) = b.extract().map_err(bad)?;
            Spec::IntStr(a.extract().map_err(bad)?, p, s)
        }
        "literal" => Spec::Literal(a.extract().map_err(bad)?),
        _ => {
            return Err(PyValueError::new_err(format!(
                "column {key:?}: unknown kind {kind:?}"
            )))
        }
    })
}

/// `n` rows, one compact JSON object (bytes) each, keys in the order of `columns`.
///
/// Each column is `(key, kind, a, b)`: `("f64", float64 array, None)` (NaN = null);
/// `("i64", int64 array, bool mask or None)`; `("bool", int8 array, None)` (-1 = null);
/// `("ts_ns", int64 ns array, bool mask or None)` (RFC 3339 µs `Z` strings);
/// `("dict", int64 indices, list[str | None] or JsonStrings)` (negative = null);
/// `("intstr", int64 array, (prefix, suffix))`; `("literal", json_text, None)`.
#[pyfunction]
pub fn json_rows<'py>(
    py: Python<'py>,
    n: usize,
    columns: &Bound<'py, PyList>,
) -> PyResult<Bound<'py, PyList>> {
    let mut keys: Vec<String> = Vec::with_capacity(columns.len());
    let mut specs: Vec<Spec<'py>> = Vec::with_capacity(columns.len());
    for item in columns.iter() {
        let t = item
            .cast::<PyTuple>()
            .map_err(|_| PyTypeError::new_err("each column must be a tuple (key, kind, a, b)"))?;
        if t.len() != 4 {
            return Err(PyTypeError::new_err(
                "each column must be a tuple (key, kind, a, b)",
            ));
        }
        let key: String = t.get_item(0)?.extract()?;
        let kind: String = t.get_item(1)?.extract()?;
        specs.push(spec(&key, &kind, &t.get_item(2)?, &t.get_item(3)?)?);
        keys.push(key);
    }
    let mut cols: Vec<(&str, JsonColumn<'_>)> = Vec::with_capacity(specs.len());
    for (key, s) in keys.iter().zip(&specs) {
        let c = match s {
            Spec::F64(a) => JsonColumn::F64(slice(a, key)?),
            Spec::I64(a, m) => JsonColumn::I64 {
                values: slice(a, key)?,
                valid: m.as_ref().map(|m| slice(m, key)).transpose()?,
            },
            Spec::Bool(a) => JsonColumn::Bool(slice(a, key)?),
            Spec::Ts(a, m) => JsonColumn::TimestampNs {
                values: slice(a, key)?,
                valid: m.as_ref().map(|m| slice(m, key)).transpose()?,
            },
            Spec::Dict(a, v) => JsonColumn::Dict {
                indices: slice(a, key)?,
                values: v.get(),
            },
            Spec::IntStr(a, p, s) => JsonColumn::IntString {
                values: slice(a, key)?,
                prefix: p,
                suffix: s,
            },
            Spec::Literal(t) => JsonColumn::Literal(t),
        };
        cols.push((key.as_str(), c));
    }
    let rows = py
        .detach(|| write_rows(n, &cols))
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    PyList::new(py, (0..rows.len()).map(|i| PyBytes::new(py, rows.row(i))))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(json_rows, m)?)?;
    m.add_class::<JsonStrings>()?;
    Ok(())
}
