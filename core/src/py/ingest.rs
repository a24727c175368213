//! Binding of `crate::ingest`: the ingest step for a batch of raw messages in one call
//! (the GIL released while envelopes, frames, reading messages and dead letters are
//! processed), the registry index it reads and the frame-counter state it updates.

use std::collections::HashMap;

use numpy::PyReadonlyArray1;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};

use super::json_rows::PubBatch;
use crate::ingest::{
    header_pairs, ingest_batch as run, needs_raw_fields, split_subject, write_output,
    DeadLetterSpec, FcntState as State, Frame, IngestIndex as Index, Op, RawFields, TimeWindow,
};

/// The registry as the ingest kernel reads it, built once per ingestor.
#[pyclass(frozen, module = "tidstream._core")]
pub struct IngestIndex {
    ix: Index,
}

fn f64s(a: &PyReadonlyArray1<'_, f64>, name: &str, n: usize) -> PyResult<Vec<f64>> {
    let s = a
        .as_slice()
        .map_err(|e| PyValueError::new_err(format!("{name}: {e}")))?;
    if s.len() != n {
        return Err(PyValueError::new_err(format!(
            "{name} has {} rows, expected {n}",
            s.len()
        )));
    }
    Ok(s.to_vec())
}

#[pymethods]
impl IngestIndex {
    #[new]
    #[pyo3(signature = (device_id, model, depth_mm, offset_mm, lat, lon, container_id, container_kind, stream, commune_insee, commune, subject))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        device_id: Vec<Option<String>>,
        model: Vec<Option<String>>,
        depth_mm: PyReadonlyArray1<'_, f64>,
        offset_mm: PyReadonlyArray1<'_, f64>,
        lat: PyReadonlyArray1<'_, f64>,
        lon: PyReadonlyArray1<'_, f64>,
        container_id: Vec<Option<String>>,
        container_kind: Vec<Option<String>>,
        stream: Vec<Option<String>>,
        commune_insee: Vec<Option<String>>,
        commune: Vec<Option<String>>,
        subject: Vec<Option<String>>,
    ) -> PyResult<Self> {
        let n = device_id.len();
        for (name, len) in [
            ("model", model.len()),
            ("container_id", container_id.len()),
            ("container_kind", container_kind.len()),
            ("stream", stream.len()),
            ("commune_insee", commune_insee.len()),
            ("commune", commune.len()),
            ("subject", subject.len()),
        ] {
            if len != n {
                return Err(PyValueError::new_err(format!(
                    "{name} has {len} rows, expected {n}"
                )));
            }
        }
        let mut rows = HashMap::with_capacity(n);
        for (i, d) in device_id.iter().enumerate() {
            if let Some(d) = d {
                rows.insert(d.clone(), i); // the last row of a repeated id, as a dict
            }
        }
        let mut ix = Index {
            rows,
            model,
            depth_mm: f64s(&depth_mm, "depth_mm", n)?,
            offset_mm: f64s(&offset_mm, "offset_mm", n)?,
            lat: f64s(&lat, "lat", n)?,
            lon: f64s(&lon, "lon", n)?,
            device_id,
            container_id,
            container_kind,
            stream,
            commune_insee,
            commune,
            subject,
            json: Default::default(),
        };
        ix.render();
        Ok(IngestIndex { ix })
    }

    fn __len__(&self) -> usize {
        self.ix.device_id.len()
    }
}

/// Last accepted ``(fcnt, raw_seq)`` per device (the state of ``FcntGuard``).
#[pyclass(module = "tidstream._core")]
#[derive(Default)]
pub struct FcntState {
    st: State,
}

#[pymethods]
impl FcntState {
    #[new]
    #[pyo3(signature = (last=None))]
    fn new(last: Option<HashMap<String, (i64, i64)>>) -> Self {
        FcntState {
            st: State {
                last: last.unwrap_or_default(),
            },
        }
    }

    /// ``None`` to accept the frame (and remember it), else why it is a regression.
    #[pyo3(signature = (device, fcnt, raw_seq))]
    fn check(&mut self, device: &str, fcnt: Option<i64>, raw_seq: i64) -> Option<String> {
        self.st.check(device, fcnt, raw_seq)
    }

    /// A copy of the state: device -> (fcnt, raw_seq).
    fn snapshot<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (k, v) in &self.st.last {
            d.set_item(k, *v)?;
        }
        Ok(d)
    }

    fn __len__(&self) -> usize {
        self.st.last.len()
    }
}

/// The step's result: ``(raw partition, PubBatch)`` per partition, dead letters per
/// reason, readings accepted.
type StepResult<'py> = (Bound<'py, PyList>, Vec<(String, usize)>, usize);

/// One batch of raw messages (``RawMsg`` tuples) through the ingest step.
///
/// Returns ``(parts, dead, readings_out)``: one ``(raw partition, PubBatch)`` per
/// partition present (first-seen order) with its readings (stored readings included)
/// and dead letters in order, the dead letters per reason ``[(reason, count), ...]``
/// (first-seen order), and the readings accepted. ``raw_fields(headers)`` parses the
/// ``Tid-*`` headers of a raw-format frame: ``(fport, fcnt, received_ns)`` or None (not
/// valid). Dead letters go to ``<dlq_prefix><reason>`` and name ``raw_stream``.
#[pyfunction]
#[pyo3(signature = (index, fcnt, batch, prefix_tokens, max_bytes, earliest_ns, future_ns, raw_fields, raw_stream, dlq_prefix))]
#[allow(clippy::too_many_arguments)]
pub fn ingest_batch<'py>(
    py: Python<'py>,
    index: &Bound<'py, IngestIndex>,
    fcnt: &Bound<'py, FcntState>,
    batch: &Bound<'py, PyList>,
    prefix_tokens: usize,
    max_bytes: usize,
    earliest_ns: i64,
    future_ns: i64,
    raw_fields: &Bound<'py, PyAny>,
    raw_stream: &str,
    dlq_prefix: &str,
) -> PyResult<StepResult<'py>> {
    let n = batch.len();
    let mut parts: Vec<String> = Vec::new();
    let mut tuples: Vec<Bound<'py, PyTuple>> = Vec::with_capacity(n);
    for (i, item) in batch.iter().enumerate() {
        let t = item
            .cast_into::<PyTuple>()
            .map_err(|_| PyTypeError::new_err(format!("batch[{i}] must be a RawMsg tuple")))?;
        if t.len() < 6 {
            return Err(PyTypeError::new_err(format!(
                "batch[{i}] must be a RawMsg (part, seq, subject, data, stored_ns, headers)"
            )));
        }
        tuples.push(t);
    }
    // The tuples (immutable, held above) keep their items alive while the GIL is
    // released: the borrowed `str` and `bytes` slices stay valid.
    let mut frames: Vec<Frame<'_>> = Vec::with_capacity(n);
    for (i, t) in tuples.iter().enumerate() {
        let part: &str = t.get_borrowed_item(0)?.extract()?;
        let p = match parts.iter().position(|q| q == part) {
            Some(p) => p,
            None => {
                parts.push(part.to_string());
                parts.len() - 1
            }
        };
        let subject: &str = t.get_borrowed_item(2)?.extract()?;
        let data: &[u8] = t
            .get_borrowed_item(3)?
            .extract()
            .map_err(|_| PyTypeError::new_err(format!("batch[{i}].data must be bytes")))?;
        let raw = if needs_raw_fields(subject, data.len(), prefix_tokens, max_bytes) {
            raw_fields_of(&raw_fields.call1((t.get_borrowed_item(5)?,))?)?
        } else {
            None
        };
        frames.push(Frame {
            part: p as u32,
            seq: t.get_borrowed_item(1)?.extract()?,
            subject,
            data,
            stored_ns: t.get_borrowed_item(4)?.extract()?,
            raw,
        });
    }
    let window = TimeWindow {
        earliest_ns,
        future_ns,
    };
    let spec = DeadLetterSpec {
        raw_stream,
        dlq_prefix,
    };
    let out = kernel(py, index, fcnt, &frames, prefix_tokens, max_bytes, window)?;
    // The headers of the frames that become dead letters (a dict each, in its order).
    let mut headers: HashMap<usize, Vec<(String, String)>> = HashMap::new();
    for op in &out.ops {
        if let Op::Dead { frame, .. } = op {
            let h = tuples[*frame].get_borrowed_item(5)?;
            if let Ok(d) = h.cast::<PyDict>() {
                let mut v = Vec::with_capacity(d.len());
                for (k, x) in d.iter() {
                    v.push((k.str()?.to_string(), x.str()?.to_string()));
                }
                headers.insert(*frame, v);
            }
        }
    }
    let res = py
        .detach(|| {
            write_output(out, &frames, spec, |i| {
                headers.get(&i).cloned().unwrap_or_default()
            })
        })
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    into_py(py, res, &parts)
}

/// Run the kernel on `frames` (GIL released); the `invalid_dev_eui` error of a raw-format
/// subject token quoted as Python's `repr()` quotes it.
fn kernel<'py>(
    py: Python<'py>,
    index: &Bound<'py, IngestIndex>,
    fcnt: &Bound<'py, FcntState>,
    frames: &[Frame<'_>],
    prefix_tokens: usize,
    max_bytes: usize,
    window: TimeWindow,
) -> PyResult<crate::ingest::IngestOutput> {
    let ix = &index.get().ix;
    let mut st = fcnt.borrow_mut();
    let state = &mut st.st;
    let mut out = py
        .detach(|| run(ix, state, window, frames, prefix_tokens, max_bytes))
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    drop(st);
    for op in &mut out.ops {
        if let Op::Dead {
            frame,
            reason,
            error,
            offset: None,
            ..
        } = op
        {
            if reason == "invalid_dev_eui" {
                // a raw-format subject token (envelope errors carry an offset)
                let dev = split_subject(frames[*frame].subject, prefix_tokens).map_or("", |s| s.1);
                *error = format!(
                    "device token {} is not a DevEUI",
                    PyString::new(py, dev).repr()?
                );
            }
        }
    }
    Ok(out)
}

/// The step's output as Python objects.
fn into_py<'py>(
    py: Python<'py>,
    res: crate::ingest::StepOutput,
    parts: &[String],
) -> PyResult<StepResult<'py>> {
    let items = PyList::empty(py);
    for (part, m) in res.parts {
        let p = parts.get(part as usize).map_or("", String::as_str);
        items.append((p, Bound::new(py, PubBatch { m })?))?;
    }
    Ok((items, res.dead, res.readings_out))
}

/// One consumer batch as the columnar ingest input takes it (numpy arrays, Arrow
/// large-binary layout for subjects, payloads and header lines).
type Columns<'py> = (
    String,
    PyReadonlyArray1<'py, i64>,
    PyReadonlyArray1<'py, i64>,
    PyReadonlyArray1<'py, i64>,
    PyReadonlyArray1<'py, u8>,
    PyReadonlyArray1<'py, i64>,
    PyReadonlyArray1<'py, u8>,
    PyReadonlyArray1<'py, i64>,
    PyReadonlyArray1<'py, u8>,
    usize,
);

fn arr<'a, T: numpy::Element>(a: &'a PyReadonlyArray1<'_, T>, what: &str) -> PyResult<&'a [T]> {
    a.as_slice()
        .map_err(|e| PyValueError::new_err(format!("{what}: {e}")))
}

/// Row `i` of an Arrow large-binary layout (`None` when the offsets are out of range).
fn row<'a>(offsets: &[i64], data: &'a [u8], i: usize) -> Option<&'a [u8]> {
    let a = usize::try_from(*offsets.get(i)?).ok()?;
    let b = usize::try_from(*offsets.get(i + 1)?).ok()?;
    data.get(a..b)
}

/// :func:`ingest_batch` on columnar input: ``batches`` is a list of ``(partition, seqs,
/// stored_ns, subject_offsets, subject_data, payload_offsets, payload_data,
/// header_offsets, header_data, n)`` (rows ``0..n`` of each; frames numbered across the
/// list in order). ``raw_fields(header_lines)`` gets a raw-format frame's header lines
/// (``bytes``, None when it has none). Same result as :func:`ingest_batch`.
#[pyfunction]
#[pyo3(signature = (index, fcnt, batches, prefix_tokens, max_bytes, earliest_ns, future_ns, raw_fields, raw_stream, dlq_prefix))]
#[allow(clippy::too_many_arguments)]
pub fn ingest_columns<'py>(
    py: Python<'py>,
    index: &Bound<'py, IngestIndex>,
    fcnt: &Bound<'py, FcntState>,
    batches: Vec<Columns<'py>>,
    prefix_tokens: usize,
    max_bytes: usize,
    earliest_ns: i64,
    future_ns: i64,
    raw_fields: &Bound<'py, PyAny>,
    raw_stream: &str,
    dlq_prefix: &str,
) -> PyResult<StepResult<'py>> {
    let mut parts: Vec<String> = Vec::new();
    let mut frames: Vec<Frame<'_>> = Vec::new();
    let mut lines: Vec<&[u8]> = Vec::new();
    for (part, seqs, stored, so, sd, po, pd, ho, hd, n) in &batches {
        let p = match parts.iter().position(|q| q == part) {
            Some(p) => p,
            None => {
                parts.push(part.clone());
                parts.len() - 1
            }
        };
        let (seqs, stored) = (arr(seqs, "seqs")?, arr(stored, "stored_ns")?);
        let (so, sd, po, pd) = (
            arr(so, "subject_offsets")?,
            arr(sd, "subject_data")?,
            arr(po, "payload_offsets")?,
            arr(pd, "payload_data")?,
        );
        let (ho, hd) = (arr(ho, "header_offsets")?, arr(hd, "header_data")?);
        for i in 0..*n {
            let bad = || PyValueError::new_err(format!("columnar batch: row {i} out of range"));
            let subject = std::str::from_utf8(row(so, sd, i).ok_or_else(bad)?)
                .map_err(|_| PyValueError::new_err("columnar batch: a subject is not UTF-8"))?;
            let data = row(po, pd, i).ok_or_else(bad)?;
            let h = row(ho, hd, i).ok_or_else(bad)?;
            lines.push(h);
            let raw = if needs_raw_fields(subject, data.len(), prefix_tokens, max_bytes) {
                let h = if h.is_empty() {
                    py.None().into_bound(py)
                } else {
                    pyo3::types::PyBytes::new(py, h).into_any()
                };
                raw_fields_of(&raw_fields.call1((h,))?)?
            } else {
                None
            };
            frames.push(Frame {
                part: p as u32,
                seq: *seqs.get(i).ok_or_else(bad)?,
                subject,
                data,
                stored_ns: *stored.get(i).ok_or_else(bad)?,
                raw,
            });
        }
    }
    let window = TimeWindow {
        earliest_ns,
        future_ns,
    };
    let spec = DeadLetterSpec {
        raw_stream,
        dlq_prefix,
    };
    let out = kernel(py, index, fcnt, &frames, prefix_tokens, max_bytes, window)?;
    let res = py
        .detach(|| write_output(out, &frames, spec, |i| header_pairs(lines[i])))
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    into_py(py, res, &parts)
}

/// The callback's answer: `(fport, fcnt, received_ns)` or None (not valid).
fn raw_fields_of(r: &Bound<'_, PyAny>) -> PyResult<Option<RawFields>> {
    if r.is_none() {
        return Ok(Some(RawFields::Bad));
    }
    let (fport, fcnt, received_ns): (Option<i64>, Option<i64>, Option<i128>) = r.extract()?;
    Ok(Some(RawFields::Ok {
        fport,
        fcnt,
        received_ns,
    }))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(ingest_batch, m)?)?;
    m.add_function(wrap_pyfunction!(ingest_columns, m)?)?;
    m.add_class::<IngestIndex>()?;
    m.add_class::<FcntState>()?;
    Ok(())
}
