//! Binding of `crate::natsio` (prototype, docs/NATSIO.md): a JetStream consumer handing out
//! one columnar batch per call and a publisher awaiting every PubAck, both with the GIL
//! released while they wait on the network.

use std::sync::Mutex;
use std::time::Duration;

use numpy::{PyArray1, PyReadonlyArray1};
use pyo3::exceptions::{PyConnectionError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use super::json_rows::PubBatch;
use crate::natsio::{ConnectSettings, Consumer, NatsIoError, PublishResults, Publisher};

fn to_py(e: NatsIoError) -> PyErr {
    match e {
        NatsIoError::Config(_) => PyValueError::new_err(e.to_string()),
        NatsIoError::Connect(_) => PyConnectionError::new_err(e.to_string()),
        NatsIoError::Consumer(_) | NatsIoError::Publish(_) => {
            PyRuntimeError::new_err(e.to_string())
        }
    }
}

/// `ConnectSettings` from the dict the Python wrapper builds out of `NatsSettings`.
fn settings(d: &Bound<'_, PyDict>) -> PyResult<ConnectSettings> {
    fn get<'py, T: FromPyObjectOwned<'py>>(d: &Bound<'py, PyDict>, k: &str) -> PyResult<Option<T>> {
        match d.get_item(k)? {
            None => Ok(None),
            Some(v) if v.is_none() => Ok(None),
            Some(v) => Ok(Some(v.extract::<T>().map_err(|e| {
                let e: PyErr = e.into();
                PyValueError::new_err(format!("NATS setting {k:?}: {e}"))
            })?)),
        }
    }
    Ok(ConnectSettings {
        urls: get::<Vec<String>>(d, "urls")?.unwrap_or_default(),
        user: get(d, "user")?,
        password: get(d, "password")?,
        token: get(d, "token")?,
        nkey_seed_file: get::<String>(d, "nkey_seed_file")?.map(Into::into),
        credentials_file: get::<String>(d, "credentials_file")?.map(Into::into),
        tls_ca_file: get::<String>(d, "tls_ca_file")?.map(Into::into),
        tls_cert_file: get::<String>(d, "tls_cert_file")?.map(Into::into),
        tls_key_file: get::<String>(d, "tls_key_file")?.map(Into::into),
        connect_timeout_s: get(d, "connect_timeout")?.unwrap_or(5.0),
        name: get(d, "name")?.unwrap_or_else(|| "tidstream".to_string()),
        inbox_prefix: get(d, "inbox_prefix")?,
    })
}

fn duration_ms(ms: f64) -> PyResult<Duration> {
    if !(ms.is_finite() && ms >= 0.0) {
        return Err(PyValueError::new_err(format!(
            "timeout must be >= 0 ms, got {ms}"
        )));
    }
    Ok(Duration::from_secs_f64(ms / 1000.0))
}

/// Ordered pull consumer on a JetStream stream (see `tidstream.nats.rustio.RustConsumer`).
#[pyclass(frozen, module = "tidstream._core")]
pub struct NatsConsumer {
    inner: Mutex<Consumer>,
}

#[pymethods]
impl NatsConsumer {
    /// With `filter_subject`: one partition (lane 0), the server-side consumer made now.
    /// Without: connect only; partitions come by `add_lane`, the consumer is made by the
    /// first `next_batch` (see `crate::natsio::Consumer::connect`).
    #[new]
    #[pyo3(signature = (
        settings, stream, filter_subject=None, after_seq=0, start_ns=None, *,
        part_token=None, read_whole=false, end_ns=None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        settings: &Bound<'_, PyDict>,
        stream: &str,
        filter_subject: Option<&str>,
        after_seq: u64,
        start_ns: Option<i64>,
        part_token: Option<usize>,
        read_whole: bool,
        end_ns: Option<i64>,
    ) -> PyResult<Self> {
        let s = self::settings(settings)?;
        let c = py
            .detach(|| match filter_subject {
                Some(f) => Consumer::open(&s, stream, f, after_seq, start_ns),
                None => Consumer::connect(&s, stream, part_token, read_whole, start_ns, end_ns),
            })
            .map_err(to_py)?;
        Ok(NatsConsumer {
            inner: Mutex::new(c),
        })
    }

    /// Add a partition (messages whose `part_token`-th subject token is `key`, server
    /// filter `filter`, after stream sequence `after_seq`); returns its lane index.
    fn add_lane(&self, key: &str, filter: &str, after_seq: u64) -> PyResult<usize> {
        let mut c = self
            .inner
            .lock()
            .map_err(|_| PyRuntimeError::new_err("consumer poisoned by an earlier panic"))?;
        Ok(c.add_lane(key, filter, after_seq))
    }

    /// Close a lane: its queued and later messages are dropped.
    fn close_lane(&self, lane: usize) -> PyResult<()> {
        let mut c = self
            .inner
            .lock()
            .map_err(|_| PyRuntimeError::new_err("consumer poisoned by an earlier panic"))?;
        c.close_lane(lane);
        Ok(())
    }

    /// Up to `max_msgs` messages of lane `lane` as one columnar dict (see the stub).
    #[pyo3(signature = (max_msgs, timeout_ms, lane=0))]
    fn next_batch<'py>(
        &self,
        py: Python<'py>,
        max_msgs: usize,
        timeout_ms: f64,
        lane: usize,
    ) -> PyResult<Bound<'py, PyDict>> {
        let timeout = duration_ms(timeout_ms)?;
        let b = py.detach(|| {
            let mut c = self
                .inner
                .lock()
                .map_err(|_| PyRuntimeError::new_err("consumer poisoned by an earlier panic"))?;
            c.next_batch(lane, max_msgs.max(1), timeout).map_err(to_py)
        })?;
        let d = PyDict::new(py);
        d.set_item("seqs", PyArray1::from_vec(py, b.seqs))?;
        d.set_item("timestamps_ns", PyArray1::from_vec(py, b.timestamps_ns))?;
        d.set_item("num_pending", b.num_pending)?;
        d.set_item("subject_offsets", PyArray1::from_vec(py, b.subject_offsets))?;
        d.set_item("subject_data", PyArray1::from_vec(py, b.subject_data))?;
        d.set_item("payload_offsets", PyArray1::from_vec(py, b.payload_offsets))?;
        d.set_item("payload_data", PyArray1::from_vec(py, b.payload_data))?;
        d.set_item("header_offsets", PyArray1::from_vec(py, b.header_offsets))?;
        d.set_item("header_data", PyArray1::from_vec(py, b.header_data))?;
        d.set_item("errors", b.transient_errors)?;
        d.set_item("queued", b.queued)?;
        d.set_item("consumer_pending", b.consumer_pending)?;
        d.set_item("at_end", b.at_end)?;
        d.set_item("position", b.position)?;
        Ok(d)
    }

    /// Connection events since the last call (`connected`, `disconnected`, ...), masked.
    fn take_events(&self) -> PyResult<Vec<String>> {
        let c = self
            .inner
            .lock()
            .map_err(|_| PyRuntimeError::new_err("consumer poisoned by an earlier panic"))?;
        Ok(c.events.take())
    }

    /// Messages the consumer had to deliver when it was created (0: nothing to read).
    #[getter]
    fn initial_pending(&self) -> PyResult<u64> {
        let c = self
            .inner
            .lock()
            .map_err(|_| PyRuntimeError::new_err("consumer poisoned by an earlier panic"))?;
        Ok(c.initial_pending)
    }

    /// True while the connection is up.
    #[getter]
    fn is_connected(&self) -> PyResult<bool> {
        let c = self
            .inner
            .lock()
            .map_err(|_| PyRuntimeError::new_err("consumer poisoned by an earlier panic"))?;
        Ok(c.is_connected())
    }

    /// Stream sequence of the last message handed out (the resume point).
    #[getter]
    fn last_seq(&self) -> PyResult<u64> {
        let c = self
            .inner
            .lock()
            .map_err(|_| PyRuntimeError::new_err("consumer poisoned by an earlier panic"))?;
        Ok(c.last_seq)
    }
}

/// JetStream publisher awaiting every PubAck (see `tidstream.nats.rustio.RustPublisher`).
#[pyclass(frozen, module = "tidstream._core")]
pub struct NatsPublisher {
    inner: Publisher,
}

#[pymethods]
impl NatsPublisher {
    /// `fast_flow` > 0: whole batches go as ADR-50 fast-ingest batches, the server acking
    /// every `fast_flow` messages (1..=65535); 0: one PubAck per message.
    #[new]
    #[pyo3(signature = (settings, ack_timeout_ms=5000.0, fast_flow=0))]
    fn new(
        py: Python<'_>,
        settings: &Bound<'_, PyDict>,
        ack_timeout_ms: f64,
        fast_flow: u16,
    ) -> PyResult<Self> {
        let s = self::settings(settings)?;
        let t = duration_ms(ack_timeout_ms)?;
        let mut p = py.detach(|| Publisher::open(&s, t)).map_err(to_py)?;
        p.set_fast_flow(fast_flow);
        Ok(NatsPublisher { inner: p })
    }

    /// Publish every message, wait for every ack: dict of `seqs` (int64, 0 = failed),
    /// `duplicate` (bool), `errors` (list of str or None).
    #[pyo3(signature = (subjects, payloads, msg_ids, max_inflight=4096))]
    fn publish_batch<'py>(
        &self,
        py: Python<'py>,
        subjects: Vec<String>,
        payloads: Vec<Bound<'py, PyBytes>>,
        msg_ids: Vec<String>,
        max_inflight: usize,
    ) -> PyResult<Bound<'py, PyDict>> {
        let subj: Vec<&str> = subjects.iter().map(String::as_str).collect();
        let pays: Vec<&[u8]> = payloads.iter().map(|p| p.as_bytes()).collect();
        let ids: Vec<&str> = msg_ids.iter().map(String::as_str).collect();
        let r = py
            .detach(|| self.inner.publish_batch(&subj, &pays, &ids, max_inflight))
            .map_err(to_py)?;
        results(py, r)
    }

    /// Publish messages `rows` of `batch` (all when None) with their ids and headers and
    /// wait for every ack: the same dict as `publish_batch`, row `k` = `k`-th published.
    /// One crossing, the GIL released while publishing.
    #[pyo3(signature = (batch, rows=None, max_inflight=4096))]
    fn publish_pubbatch<'py>(
        &self,
        py: Python<'py>,
        batch: PyRef<'py, PubBatch>,
        rows: Option<PyReadonlyArray1<'py, i64>>,
        max_inflight: usize,
    ) -> PyResult<Bound<'py, PyDict>> {
        let rows = rows
            .as_ref()
            .map(|r| {
                r.as_slice()
                    .map_err(|e| PyValueError::new_err(format!("rows: {e}")))
            })
            .transpose()?;
        let msgs = &batch.m;
        let r = py
            .detach(|| self.inner.publish_messages(msgs, rows, max_inflight))
            .map_err(to_py)?;
        results(py, r)
    }

    /// True while the connection is up.
    #[getter]
    fn is_connected(&self) -> bool {
        self.inner.is_connected()
    }

    /// Connections made so far (1 + reconnects).
    #[getter]
    fn connects(&self) -> u64 {
        self.inner.connects()
    }

    /// Connection events since the last call (`connected`, `disconnected`, ...), masked.
    fn take_events(&self) -> Vec<String> {
        self.inner.events.take()
    }
}

fn results<'py>(py: Python<'py>, r: PublishResults) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("seqs", PyArray1::from_vec(py, r.seqs))?;
    d.set_item("duplicate", PyArray1::from_vec(py, r.duplicate))?;
    d.set_item("errors", r.errors)?;
    d.set_item("fast", r.fast)?;
    d.set_item("notes", r.notes)?;
    Ok(d)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<NatsConsumer>()?;
    m.add_class::<NatsPublisher>()?;
    Ok(())
}
