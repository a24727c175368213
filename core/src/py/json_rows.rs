//! Binding of `crate::json_rows`: columns (numpy arrays, string tables) to one JSON
//! object per row, written with the GIL released; and [`PubBatch`], the messages the
//! JetStream sink publishes (subjects, ids, headers, payloads in one Rust buffer,
//! written out as `HPUB` commands in one call).

use numpy::{PyArray1, PyReadonlyArray1};
use pyo3::exceptions::{PyIndexError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};

use crate::json_rows::{write_messages, write_rows, JsonColumn, MessageError, Messages, TextPiece};

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

fn extract_specs<'py>(columns: &Bound<'py, PyList>) -> PyResult<(Vec<String>, Vec<Spec<'py>>)> {
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
    Ok((keys, specs))
}

fn columns_of<'a>(
    keys: &'a [String],
    specs: &'a [Spec<'_>],
) -> PyResult<Vec<(&'a str, JsonColumn<'a>)>> {
    let mut cols: Vec<(&str, JsonColumn<'_>)> = Vec::with_capacity(specs.len());
    for (key, s) in keys.iter().zip(specs) {
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
    Ok(cols)
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
    let (keys, specs) = extract_specs(columns)?;
    let cols = columns_of(&keys, &specs)?;
    let rows = py
        .detach(|| write_rows(n, &cols))
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    PyList::new(py, (0..rows.len()).map(|i| PyBytes::new(py, rows.row(i))))
}

/// One text piece as extracted from Python.
enum Piece<'py> {
    Lit(String),
    Dict(PyReadonlyArray1<'py, i64>, Strings<'py>),
    Int(PyReadonlyArray1<'py, i64>),
}

fn extract_pieces<'py>(what: &str, pieces: &Bound<'py, PyList>) -> PyResult<Vec<Piece<'py>>> {
    let bad = |e: PyErr| PyTypeError::new_err(format!("{what} piece: {e}"));
    let mut out = Vec::with_capacity(pieces.len());
    for item in pieces.iter() {
        if let Ok(text) = item.extract::<String>() {
            out.push(Piece::Lit(text));
            continue;
        }
        let t = item.cast::<PyTuple>().map_err(|_| {
            PyTypeError::new_err(format!(
                "{what} piece must be a str, (\"dict\", indices, strings) or (\"int\", values)"
            ))
        })?;
        let kind: String = t.get_item(0)?.extract()?;
        match (kind.as_str(), t.len()) {
            ("int", 2) => out.push(Piece::Int(t.get_item(1)?.extract().map_err(bad)?)),
            ("dict", 3) => {
                let b = t.get_item(2)?;
                let strings = match b.cast::<JsonStrings>() {
                    Ok(s) => Strings::Shared(s.clone()),
                    Err(_) => Strings::Owned(b.extract().map_err(bad)?),
                };
                out.push(Piece::Dict(t.get_item(1)?.extract().map_err(bad)?, strings));
            }
            _ => {
                return Err(PyValueError::new_err(format!(
                    "{what} piece: unknown kind {kind:?}"
                )))
            }
        }
    }
    Ok(out)
}

fn pieces_of<'a>(what: &str, pieces: &'a [Piece<'_>]) -> PyResult<Vec<TextPiece<'a>>> {
    pieces
        .iter()
        .map(|p| {
            Ok(match p {
                Piece::Lit(t) => TextPiece::Lit(t),
                Piece::Int(a) => TextPiece::Int(slice(a, what)?),
                Piece::Dict(a, v) => TextPiece::Dict {
                    indices: slice(a, what)?,
                    values: v.get(),
                },
            })
        })
        .collect()
}

fn msg_err(e: MessageError) -> PyErr {
    PyValueError::new_err(e.to_string())
}

/// Messages for the JetStream sink: subject, `Nats-Msg-Id`, headers and payload of each,
/// held in one Rust buffer. Built by :func:`json_messages` (a batch of readings in one
/// call) or :meth:`push` (one message); written out as `HPUB` commands in one call.
#[pyclass(module = "tidstream._core")]
#[derive(Default)]
pub struct PubBatch {
    /// Read by the Rust JetStream publisher (`py/natsio.rs`).
    pub(crate) m: Messages,
}

fn rows_arg<'a>(rows: &'a Option<PyReadonlyArray1<'_, i64>>) -> PyResult<Option<&'a [i64]>> {
    rows.as_ref().map(|r| slice(r, "rows")).transpose()
}

impl PubBatch {
    fn check(&self, i: usize) -> PyResult<()> {
        if i < self.m.len() {
            Ok(())
        } else {
            Err(PyIndexError::new_err(format!("message {i} out of range")))
        }
    }
}

#[pymethods]
impl PubBatch {
    #[new]
    fn new() -> Self {
        PubBatch::default()
    }

    fn __len__(&self) -> usize {
        self.m.len()
    }

    /// Append one message; raises ValueError for a subject NATS cannot publish to.
    #[pyo3(signature = (subject, data, msg_id, headers=None))]
    fn push(
        &mut self,
        subject: &str,
        data: &[u8],
        msg_id: &str,
        headers: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<()> {
        let mut hs: Vec<(String, String)> = Vec::new();
        if let Some(h) = headers {
            for (k, v) in h.iter() {
                hs.push((k.str()?.to_string(), v.str()?.to_string()));
            }
        }
        let refs: Vec<(&str, &str)> = hs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        self.m.push(subject, msg_id, &refs, data).map_err(msg_err)
    }

    /// Append the messages ``rows`` of ``other`` (all when None), in that order.
    #[pyo3(signature = (other, rows=None))]
    fn extend(
        &mut self,
        other: &Bound<'_, PubBatch>,
        rows: Option<PyReadonlyArray1<'_, i64>>,
    ) -> PyResult<()> {
        let rows = rows_arg(&rows)?;
        // `other` is `self`: already borrowed mutably, so this raises instead of aliasing.
        let o = other.try_borrow()?;
        self.m.extend_from(&o.m, rows).map_err(msg_err)
    }

    /// Subject of message ``i``.
    fn subject(&self, i: usize) -> PyResult<String> {
        self.check(i)?;
        Ok(self.m.subject(i).to_string())
    }

    /// ``Nats-Msg-Id`` of message ``i``.
    fn msg_id(&self, i: usize) -> PyResult<String> {
        self.check(i)?;
        Ok(self.m.msg_id(i).to_string())
    }

    /// Payload of message ``i``.
    fn data<'py>(&self, py: Python<'py>, i: usize) -> PyResult<Bound<'py, PyBytes>> {
        self.check(i)?;
        Ok(PyBytes::new(py, self.m.payload(i)))
    }

    /// Every message as ``(subject, data, msg_id, headers or None)``, in order.
    fn messages<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let out = PyList::empty(py);
        for i in 0..self.m.len() {
            let lines = self.m.header_lines(i);
            let headers: Bound<'py, PyAny> = if lines.is_empty() {
                py.None().into_bound(py)
            } else {
                let d = PyDict::new(py);
                for line in String::from_utf8_lossy(lines)
                    .split("\r\n")
                    .filter(|l| !l.is_empty())
                {
                    let (k, v) = line.split_once(": ").unwrap_or((line, ""));
                    d.set_item(k, v)?;
                }
                d.into_any()
            };
            out.append((
                self.m.subject(i),
                PyBytes::new(py, self.m.payload(i)),
                self.m.msg_id(i),
                headers,
            ))?;
        }
        Ok(out)
    }

    /// Largest payload in bytes (to check against the server's ``max_payload``).
    fn max_payload_len(&self) -> usize {
        self.m.max_payload_len()
    }

    /// ``HPUB`` commands of messages ``rows`` (all when None): the ``k``-th with reply
    /// subject ``reply_prefix + str(k)`` (one PubAck per message). GIL released.
    #[pyo3(signature = (reply_prefix, rows=None))]
    fn encode<'py>(
        &self,
        py: Python<'py>,
        reply_prefix: &[u8],
        rows: Option<PyReadonlyArray1<'py, i64>>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let rows = rows_arg(&rows)?;
        let out = py
            .detach(|| self.m.encode(rows, reply_prefix))
            .map_err(msg_err)?;
        Ok(PyBytes::new(py, &out))
    }

    /// One ADR-50 atomic batch of messages ``rows``: ``Nats-Batch-Id``,
    /// ``Nats-Batch-Sequence`` 1..n, ``Nats-Batch-Commit: 1`` and the reply subject on
    /// the last message only (one PubAck for the batch). GIL released.
    fn encode_atomic<'py>(
        &self,
        py: Python<'py>,
        rows: PyReadonlyArray1<'py, i64>,
        batch_id: &str,
        reply: &[u8],
    ) -> PyResult<Bound<'py, PyBytes>> {
        let rows = slice(&rows, "rows")?;
        let out = py
            .detach(|| self.m.encode_atomic(rows, batch_id, reply))
            .map_err(msg_err)?;
        Ok(PyBytes::new(py, &out))
    }

    /// Message indices grouped by the first two subject tokens (one stream each in
    /// tidstream's layout), order kept, in groups of at most ``max_msgs``.
    fn atomic_groups<'py>(
        &self,
        py: Python<'py>,
        max_msgs: usize,
    ) -> Vec<Bound<'py, PyArray1<i64>>> {
        self.m
            .atomic_groups(max_msgs)
            .into_iter()
            .map(|g| PyArray1::from_vec(py, g))
            .collect()
    }
}

/// Messages whose payloads are the JSON rows of :func:`json_rows` (same ``columns``) and
/// whose subjects and ids are built row by row from pieces: a ``str`` (literal),
/// ``("dict", int64 indices, list[str] or JsonStrings)`` or ``("int", int64 array)``.
/// Raises ValueError for a null piece, a short column or an unpublishable subject.
#[pyfunction]
pub fn json_messages<'py>(
    py: Python<'py>,
    n: usize,
    columns: &Bound<'py, PyList>,
    subject: &Bound<'py, PyList>,
    msg_id: &Bound<'py, PyList>,
) -> PyResult<PubBatch> {
    let (keys, specs) = extract_specs(columns)?;
    let cols = columns_of(&keys, &specs)?;
    let sp = extract_pieces("subject", subject)?;
    let ip = extract_pieces("msg_id", msg_id)?;
    let s = pieces_of("subject", &sp)?;
    let i = pieces_of("msg_id", &ip)?;
    let m = py
        .detach(|| write_messages(n, &cols, &s, &i))
        .map_err(msg_err)?;
    Ok(PubBatch { m })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(json_rows, m)?)?;
    m.add_function(wrap_pyfunction!(json_messages, m)?)?;
    m.add_class::<JsonStrings>()?;
    m.add_class::<PubBatch>()?;
    Ok(())
}
