//! PyO3 bindings of the fill forecaster (`core/src/forecast/`).
//!
//! `ForecasterCore` takes numpy columns (ids as int64, or Arrow string buffers;
//! UTC seconds; fill ratios; optional tilt as int8 -1/0/1) and returns dicts of numpy
//! arrays that `tidstream.forecast` turns into Arrow tables. The GIL is released for
//! `update` and `predict`.

use numpy::{PyArray1, PyReadonlyArray1};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use crate::forecast::{
    Config, ErrorKind, ForecastError, Forecaster, IdKind, IdSource, ScoreRule, Stats,
};

fn err(e: ForecastError) -> PyErr {
    match e.kind {
        ErrorKind::Value => PyValueError::new_err(e.msg),
        ErrorKind::Type => PyTypeError::new_err(e.msg),
    }
}

fn slice<'a, T: numpy::Element>(a: &'a PyReadonlyArray1<'_, T>, name: &str) -> PyResult<&'a [T]> {
    a.as_slice().map_err(|e| {
        PyValueError::new_err(format!(
            "{name}: {e}; pass a contiguous numpy array (np.ascontiguousarray)"
        ))
    })
}

/// The fill forecaster's Rust core (use `tidstream.Forecaster`).
#[pyclass(module = "tidstream._core", name = "ForecasterCore")]
pub struct PyForecaster {
    inner: Forecaster,
}

#[pymethods]
impl PyForecaster {
    #[new]
    #[pyo3(signature = (
        threshold=0.8, horizons_h=vec![24.0, 48.0, 72.0], utc_offset_s=0, drop_threshold=0.1,
        confirm_emptying=true, max_horizon_h=336.0, score_rule="cycle", calibrate=true
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        threshold: f64,
        horizons_h: Vec<f64>,
        utc_offset_s: i64,
        drop_threshold: f64,
        confirm_emptying: bool,
        max_horizon_h: f64,
        score_rule: &str,
        calibrate: bool,
    ) -> PyResult<Self> {
        let score_rule = match score_rule {
            "endpoints" => ScoreRule::Endpoints,
            "cycle" => ScoreRule::Cycle,
            other => {
                return Err(PyValueError::new_err(format!(
                    "score_rule must be \"endpoints\" or \"cycle\"; got {other:?}"
                )))
            }
        };
        let cfg = Config {
            threshold,
            horizons_h,
            utc_offset_s,
            drop_threshold,
            confirm_emptying,
            max_horizon_h,
            score_rule,
            calibrate,
        };
        Ok(PyForecaster {
            inner: Forecaster::new(cfg).map_err(err)?,
        })
    }

    /// Readings with int64 container ids (GIL released).
    #[pyo3(signature = (ids, t, x, tilt=None))]
    fn update_int(
        &mut self,
        py: Python<'_>,
        ids: PyReadonlyArray1<'_, i64>,
        t: PyReadonlyArray1<'_, i64>,
        x: PyReadonlyArray1<'_, f64>,
        tilt: Option<PyReadonlyArray1<'_, i8>>,
    ) -> PyResult<()> {
        let ids = slice(&ids, "container_ids")?;
        let t = slice(&t, "timestamps")?;
        let x = slice(&x, "fill")?;
        let tilt_arr = tilt;
        let tilt = match &tilt_arr {
            Some(a) => Some(slice(a, "tilt")?),
            None => None,
        };
        let inner = &mut self.inner;
        py.detach(|| inner.update(IdSource::Int(ids), t, x, tilt))
            .map_err(err)
    }

    /// Readings with string container ids given as Arrow buffers (GIL released).
    #[pyo3(signature = (offsets, data, t, x, tilt=None))]
    fn update_str<'py>(
        &mut self,
        py: Python<'py>,
        offsets: &Bound<'py, PyAny>,
        data: PyReadonlyArray1<'py, u8>,
        t: PyReadonlyArray1<'py, i64>,
        x: PyReadonlyArray1<'py, f64>,
        tilt: Option<PyReadonlyArray1<'py, i8>>,
    ) -> PyResult<()> {
        let data = slice(&data, "container_ids data")?;
        let t = slice(&t, "timestamps")?;
        let x = slice(&x, "fill")?;
        let tilt_arr = tilt;
        let tilt = match &tilt_arr {
            Some(a) => Some(slice(a, "tilt")?),
            None => None,
        };
        let inner = &mut self.inner;
        if let Ok(o) = offsets.extract::<PyReadonlyArray1<'py, i32>>() {
            let o = slice(&o, "container_ids offsets")?;
            py.detach(|| inner.update(IdSource::Str32 { offsets: o, data }, t, x, tilt))
                .map_err(err)
        } else if let Ok(o) = offsets.extract::<PyReadonlyArray1<'py, i64>>() {
            let o = slice(&o, "container_ids offsets")?;
            py.detach(|| inner.update(IdSource::Str64 { offsets: o, data }, t, x, tilt))
                .map_err(err)
        } else {
            Err(PyTypeError::new_err(
                "offsets must be a contiguous int32 or int64 numpy array",
            ))
        }
    }

    /// Forecasts at `at` (UTC seconds) per container and horizon (GIL released).
    #[pyo3(signature = (at, horizons_h, subset=None))]
    fn predict<'py>(
        &self,
        py: Python<'py>,
        at: i64,
        horizons_h: Vec<f64>,
        subset: Option<PyReadonlyArray1<'py, u32>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let sub_arr = subset;
        let sub = match &sub_arr {
            Some(a) => Some(slice(a, "subset")?),
            None => None,
        };
        let inner = &self.inner;
        let p = py
            .detach(|| inner.predict(at, &horizons_h, sub))
            .map_err(err)?;
        let d = PyDict::new(py);
        d.set_item("idx", PyArray1::from_vec(py, p.idx))?;
        d.set_item("horizon_h", PyArray1::from_vec(py, p.horizon_h))?;
        d.set_item("fill_p50", PyArray1::from_vec(py, p.p50))?;
        d.set_item("fill_p10", PyArray1::from_vec(py, p.p10))?;
        d.set_item("fill_p90", PyArray1::from_vec(py, p.p90))?;
        d.set_item("p_over_threshold", PyArray1::from_vec(py, p.p_over))?;
        d.set_item("hours_to_threshold", PyArray1::from_vec(py, p.t50))?;
        d.set_item("hours_to_threshold_p90", PyArray1::from_vec(py, p.t90))?;
        d.set_item("stuck", PyArray1::from_vec(py, p.stuck))?;
        Ok(d)
    }

    /// Rolling forecast error per container and calibration horizon.
    #[pyo3(signature = (subset=None))]
    fn accountability<'py>(
        &self,
        py: Python<'py>,
        subset: Option<PyReadonlyArray1<'py, u32>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let sub_arr = subset;
        let sub = match &sub_arr {
            Some(a) => Some(slice(a, "subset")?),
            None => None,
        };
        let a = self.inner.accountability(sub);
        let d = PyDict::new(py);
        d.set_item("idx", PyArray1::from_vec(py, a.idx))?;
        d.set_item("horizon_h", PyArray1::from_vec(py, a.horizon_h))?;
        d.set_item("n", PyArray1::from_vec(py, a.n))?;
        d.set_item("mae", PyArray1::from_vec(py, a.mae))?;
        d.set_item("bias", PyArray1::from_vec(py, a.bias))?;
        d.set_item("coverage", PyArray1::from_vec(py, a.coverage))?;
        d.set_item("last_scored_s", PyArray1::from_vec(py, a.last))?;
        Ok(d)
    }

    /// What the forecaster believes about each container now.
    #[pyo3(signature = (subset=None))]
    fn states<'py>(
        &self,
        py: Python<'py>,
        subset: Option<PyReadonlyArray1<'py, u32>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let sub_arr = subset;
        let sub = match &sub_arr {
            Some(a) => Some(slice(a, "subset")?),
            None => None,
        };
        let s = self.inner.states(sub);
        let d = PyDict::new(py);
        d.set_item("idx", PyArray1::from_vec(py, s.idx))?;
        d.set_item("last_reading_s", PyArray1::from_vec(py, s.last_at))?;
        d.set_item("fill", PyArray1::from_vec(py, s.level))?;
        d.set_item("rate_per_day", PyArray1::from_vec(py, s.rate_per_day))?;
        d.set_item("last_emptied_s", PyArray1::from_vec(py, s.last_emptied_at))?;
        d.set_item("readings", PyArray1::from_vec(py, s.readings))?;
        d.set_item("emptyings", PyArray1::from_vec(py, s.emptyings))?;
        d.set_item("stuck", PyArray1::from_vec(py, s.stuck))?;
        d.set_item("noise", PyArray1::from_vec(py, s.noise))?;
        d.set_item("resolution", PyArray1::from_vec(py, s.resolution))?;
        Ok(d)
    }

    /// "int", "str" or None (no readings yet).
    #[getter]
    fn id_kind(&self) -> Option<&'static str> {
        match self.inner.ids.kind {
            IdKind::Unset => None,
            IdKind::Int => Some("int"),
            IdKind::Str => Some("str"),
        }
    }

    /// Int ids by index.
    fn int_ids<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<i64>> {
        PyArray1::from_vec(py, self.inner.ids.ints.clone())
    }

    /// String ids by index as Arrow buffers (int64 offsets, data).
    fn str_ids<'py>(
        &self,
        py: Python<'py>,
    ) -> (Bound<'py, PyArray1<i64>>, Bound<'py, PyArray1<u8>>) {
        let o: Vec<i64> = self
            .inner
            .ids
            .str_offsets
            .iter()
            .map(|&v| v as i64)
            .collect();
        (
            PyArray1::from_vec(py, o),
            PyArray1::from_vec(py, self.inner.ids.str_data.clone()),
        )
    }

    /// Indices of int ids (4294967295 where unknown).
    fn lookup_int<'py>(
        &self,
        py: Python<'py>,
        ids: PyReadonlyArray1<'py, i64>,
    ) -> PyResult<Bound<'py, PyArray1<u32>>> {
        let ids = slice(&ids, "container_ids")?;
        let v: Vec<u32> = ids
            .iter()
            .map(|&k| self.inner.index_of_int(k).unwrap_or(u32::MAX))
            .collect();
        Ok(PyArray1::from_vec(py, v))
    }

    /// Indices of string ids (4294967295 where unknown).
    fn lookup_str<'py>(&self, py: Python<'py>, ids: Vec<String>) -> Bound<'py, PyArray1<u32>> {
        let v: Vec<u32> = ids
            .iter()
            .map(|k| self.inner.index_of_str(k.as_bytes()).unwrap_or(u32::MAX))
            .collect();
        PyArray1::from_vec(py, v)
    }

    /// Counters: readings, accepted, missing, invalid, out_of_order, emptyings,
    /// spikes_low, spikes_high, jumps, stuck, tilted, scored.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (k, v) in Stats::NAMES.iter().zip(self.inner.stats.values()) {
            d.set_item(*k, v)?;
        }
        d.set_item("containers", self.inner.len())?;
        Ok(d)
    }

    /// The settings (as given to the constructor, horizons sorted).
    fn config<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let c = &self.inner.cfg;
        let d = PyDict::new(py);
        d.set_item("threshold", c.threshold)?;
        d.set_item("horizons_h", c.horizons_h.clone())?;
        d.set_item("utc_offset_s", c.utc_offset_s)?;
        d.set_item("drop_threshold", c.drop_threshold)?;
        d.set_item("confirm_emptying", c.confirm_emptying)?;
        d.set_item("max_horizon_h", c.max_horizon_h)?;
        d.set_item("calibrate", c.calibrate)?;
        d.set_item(
            "score_rule",
            match c.score_rule {
                ScoreRule::Endpoints => "endpoints",
                ScoreRule::Cycle => "cycle",
            },
        )?;
        Ok(d)
    }

    /// (horizon_h, lower level, upper level) of the p10 / p90 interval per
    /// calibration horizon (adapted online to keep 80 % coverage).
    fn interval_levels(&self) -> Vec<(f64, f64, f64)> {
        self.inner.interval_levels()
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    /// Versioned binary snapshot of the whole state.
    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        let b = self.inner.to_bytes();
        PyBytes::new(py, &b)
    }

    /// Rebuild from `to_bytes()` output.
    #[staticmethod]
    fn from_bytes(data: &[u8]) -> PyResult<Self> {
        Ok(PyForecaster {
            inner: Forecaster::from_bytes(data).map_err(err)?,
        })
    }
}

/// Register the forecaster on the `_core` module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyForecaster>()?;
    Ok(())
}
