//! PyO3 bindings of the simulator (`core/src/sim/`).
//!
//! `Simulator(...)` takes the territory as numpy columns and yields chunks as dicts of
//! numpy arrays (Rust vectors moved, not copied); `tidstream.simulate` turns them into
//! Arrow record batches. The GIL is released while a chunk is generated.

use numpy::{PyArray1, PyReadonlyArray1};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::sim::engine::condition;
use crate::sim::{DeviceSpec, EnvelopeMode, Kind, SimConfig, SimError, Simulator, MODELS};

fn value_error(e: SimError) -> PyErr {
    PyValueError::new_err(e.0)
}

fn slice<'a, T: numpy::Element>(
    a: &'a PyReadonlyArray1<'_, T>,
    n: usize,
    name: &str,
) -> PyResult<&'a [T]> {
    let s = a.as_slice().map_err(|e| {
        PyValueError::new_err(format!("{name}: {e}; pass a contiguous numpy array"))
    })?;
    if s.len() != n {
        return Err(PyValueError::new_err(format!(
            "{name} has {} rows, expected {n} (one per device)",
            s.len()
        )));
    }
    Ok(s)
}

/// The simulated fleet: fill dynamics, sensor faults, frames and ground truth.
#[pyclass(module = "tidstream._core", name = "Simulator")]
pub struct PySimulator {
    inner: Simulator,
}

#[pymethods]
impl PySimulator {
    #[new]
    #[pyo3(signature = (
        kind, model, dev_eui, name, depth_mm, offset_mm, volume_l, market_dow, *,
        seed=0, start_ms=1_735_689_600_000, steps=24, interval_ms=3_600_000,
        envelopes="mixed", ttn_share=0.7, truth=true, faults=1.0,
        missed_collection_p=0.01, application="tidstream-sim", rate_scale=1.0, warm_start=true
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        kind: PyReadonlyArray1<'_, u8>,
        model: PyReadonlyArray1<'_, u8>,
        dev_eui: PyReadonlyArray1<'_, u64>,
        name: Vec<String>,
        depth_mm: PyReadonlyArray1<'_, f64>,
        offset_mm: PyReadonlyArray1<'_, f64>,
        volume_l: PyReadonlyArray1<'_, f64>,
        market_dow: PyReadonlyArray1<'_, i8>,
        seed: u64,
        start_ms: i64,
        steps: u64,
        interval_ms: i64,
        envelopes: &str,
        ttn_share: f64,
        truth: bool,
        faults: f64,
        missed_collection_p: f64,
        application: &str,
        rate_scale: f64,
        warm_start: bool,
    ) -> PyResult<Self> {
        let n = name.len();
        let kind = slice(&kind, n, "kind")?;
        let model = slice(&model, n, "model")?;
        let dev_eui = slice(&dev_eui, n, "dev_eui")?;
        let depth = slice(&depth_mm, n, "depth_mm")?;
        let offset = slice(&offset_mm, n, "offset_mm")?;
        let volume = slice(&volume_l, n, "volume_l")?;
        let market = slice(&market_dow, n, "market_dow")?;
        let mut specs = Vec::with_capacity(n);
        for (i, nm) in name.into_iter().enumerate() {
            let k = Kind::from_code(kind[i]).ok_or_else(|| {
                PyValueError::new_err(format!("device {i}: kind code {} is not 0..4 (glass, paper, packaging, grouping, park)", kind[i]))
            })?;
            specs.push(DeviceSpec {
                kind: k,
                model: usize::from(model[i]),
                dev_eui: dev_eui[i],
                name: nm,
                depth_mm: depth[i],
                offset_mm: offset[i],
                volume_l: volume[i],
                market_dow: market[i],
            });
        }
        let envelopes = EnvelopeMode::parse(envelopes, ttn_share).ok_or_else(|| {
            PyValueError::new_err(format!(
                "envelopes must be mixed, ttn, chirpstack or raw, got {envelopes:?}"
            ))
        })?;
        let cfg = SimConfig {
            seed,
            start_ms,
            steps,
            interval_ms,
            envelopes,
            truth,
            faults,
            missed_collection_p,
            application: application.to_string(),
            rate_scale,
            warm_start,
        };
        Ok(PySimulator {
            inner: Simulator::new(specs, cfg).map_err(value_error)?,
        })
    }

    /// Steps (measurement rounds) done so far.
    #[getter]
    fn step(&self) -> u64 {
        self.inner.step()
    }

    /// Steps in the run.
    #[getter]
    fn steps(&self) -> u64 {
        self.inner.steps()
    }

    /// Number of simulated gateways.
    #[getter]
    fn n_gateways(&self) -> u16 {
        self.inner.n_gateways()
    }

    /// Generate the next chunk of about `max_rows` uplinks; None when the run is over.
    fn next_chunk<'py>(
        &mut self,
        py: Python<'py>,
        max_rows: usize,
    ) -> PyResult<Option<Bound<'py, PyDict>>> {
        let inner = &mut self.inner;
        let chunk = py
            .detach(|| inner.next_chunk(max_rows))
            .map_err(value_error)?;
        let Some(c) = chunk else {
            return Ok(None);
        };
        let d = PyDict::new(py);
        macro_rules! put {
            ($($f:ident),*) => { $( d.set_item(stringify!($f), PyArray1::from_vec(py, c.$f))?; )* };
        }
        d.set_item("step", c.step)?;
        d.set_item("steps", c.steps)?;
        put!(
            up_received_ns,
            up_dev,
            up_format,
            up_fport,
            up_fcnt,
            up_payload_offsets,
            up_payload,
            up_env_offsets,
            up_env,
            up_rssi,
            up_snr,
            tr_measured_ns,
            tr_dev,
            tr_fcnt,
            tr_delivered,
            tr_interrupt,
            tr_condition,
            tr_true_fill,
            tr_true_distance,
            tr_distance,
            tr_temperature,
            tr_battery_pct,
            tr_battery_v,
            tr_tilt,
            tr_fire,
            tr_flags,
            col_at_ns,
            col_dev,
            col_fill_before,
            col_demand,
            col_fill_after,
            col_overflowed,
            col_missed,
            ov_start_ns,
            ov_end_ns,
            ov_dev,
            ov_peak,
            ov_excess_l
        );
        Ok(Some(d))
    }
}

/// The sensor models the simulator uses: (name, fport, DevEUI prefix, mix per kind %).
#[pyfunction]
fn sim_models() -> Vec<(&'static str, u8, u64, Vec<f64>)> {
    MODELS
        .iter()
        .map(|m| (m.name, m.fport, m.eui_prefix, m.mix.to_vec()))
        .collect()
}

/// Names of the truth `condition` codes, by code.
#[pyfunction]
fn sim_conditions() -> Vec<&'static str> {
    condition::NAMES.to_vec()
}

/// French public holidays of a year as (month, day), sorted.
#[pyfunction]
fn sim_french_holidays(year: i32) -> PyResult<Vec<(u32, u32)>> {
    if !(1583..=9999).contains(&year) {
        return Err(PyValueError::new_err(format!(
            "year must be 1583..9999 (Gregorian), got {year}"
        )));
    }
    Ok(crate::sim::calendar::french_holidays(year)
        .into_iter()
        .map(|d| {
            let (_, m, dd) = crate::sim::calendar::civil_from_days(d);
            (m, dd)
        })
        .collect())
}

/// Register the simulator functions on the `_core` module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PySimulator>()?;
    m.add_function(wrap_pyfunction!(sim_models, m)?)?;
    m.add_function(wrap_pyfunction!(sim_conditions, m)?)?;
    m.add_function(wrap_pyfunction!(sim_french_holidays, m)?)?;
    Ok(())
}
