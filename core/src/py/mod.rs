//! The only `#[pymodule]`: argument conversion, GIL release around batch work, and the
//! error mapping in `errors.rs`. No logic lives here.

mod convert;
mod errors;
mod forecast;
mod ingest;
mod json_rows;
mod natsio;
mod routes;
mod sim;

use std::sync::Arc;

use numpy::{PyArray1, PyReadonlyArray1};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString};

use crate::codec::{Codec, FlatPayloads, FportSource, Registry};
use crate::reading::{Reading, StoredReading};

fn codec(model: &str) -> PyResult<Arc<dyn Codec>> {
    Registry::global().get(model).ok_or_else(|| {
        PyValueError::new_err(format!(
            "unknown model {model:?}; known models: {}. A custom model can be added with tidstream.load_layout()",
            Registry::global().names().join(", ")
        ))
    })
}

fn fport_u8(fport: Option<i64>) -> PyResult<Option<u8>> {
    match fport {
        None => Ok(None),
        Some(f) => u8::try_from(f)
            .map(Some)
            .map_err(|_| PyValueError::new_err(format!("fport must be 0..255 or None, got {f}"))),
    }
}

/// Names of the supported models, sorted.
#[pyfunction]
fn models() -> Vec<String> {
    Registry::global().names()
}

/// Facts about a model: vendor, description, fports, engine, can_encode.
#[pyfunction]
fn model_info<'py>(py: Python<'py>, model: &str) -> PyResult<Bound<'py, PyDict>> {
    let c = codec(model)?;
    let i = c.info();
    let d = PyDict::new(py);
    d.set_item("name", &i.name)?;
    d.set_item("vendor", &i.vendor)?;
    d.set_item("description", &i.description)?;
    d.set_item(
        "fports",
        i.fports.iter().map(|&f| u32::from(f)).collect::<Vec<u32>>(),
    )?;
    d.set_item("engine", i.engine)?;
    d.set_item("can_encode", i.can_encode)?;
    Ok(d)
}

/// Vendor-native decode of one frame.
#[pyfunction]
#[pyo3(signature = (model, payload, fport=None))]
fn decode_vendor<'py>(
    py: Python<'py>,
    model: &str,
    payload: &[u8],
    fport: Option<i64>,
) -> PyResult<Bound<'py, PyAny>> {
    let c = codec(model)?;
    let v = c
        .decode_vendor(payload, fport_u8(fport)?)
        .map_err(|e| errors::decode_error(&e, None))?;
    convert::value_to_py(py, &v)
}

/// Normalized decode of a batch given as Arrow buffers (one FFI crossing per batch;
/// the GIL is released while decoding).
///
/// `data`: the binary array's data buffer (uint8); `offsets`: its offsets (int32 or
/// int64, `len + 1`, already sliced to the array's offset); `validity`: its validity
/// bitmap (uint8) or None, with `validity_offset` the bit offset of row 0;
/// `fports`: None, one int, or an int32 array with -1 for "not given".
#[pyfunction]
#[pyo3(signature = (model, data, offsets, validity=None, validity_offset=0, fports=None, fport=None))]
#[allow(clippy::too_many_arguments)]
fn decode_batch_buffers<'py>(
    py: Python<'py>,
    model: &str,
    data: PyReadonlyArray1<'py, u8>,
    offsets: &Bound<'py, PyAny>,
    validity: Option<PyReadonlyArray1<'py, u8>>,
    validity_offset: usize,
    fports: Option<PyReadonlyArray1<'py, i32>>,
    fport: Option<i64>,
) -> PyResult<Bound<'py, PyDict>> {
    let c = codec(model)?;
    let data = data
        .as_slice()
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    let validity_arr = validity;
    let validity = match &validity_arr {
        Some(v) => Some(
            v.as_slice()
                .map_err(|e| PyValueError::new_err(e.to_string()))?,
        ),
        None => None,
    };
    let fports_arr = fports;
    let fport_src = match (&fports_arr, fport) {
        (Some(a), _) => FportSource::PerRow(
            a.as_slice()
                .map_err(|e| PyValueError::new_err(e.to_string()))?,
        ),
        (None, Some(f)) => FportSource::All(fport_u8(Some(f))?),
        (None, None) => FportSource::None,
    };
    let cols = if let Ok(o) = offsets.extract::<PyReadonlyArray1<'py, i32>>() {
        let o = o
            .as_slice()
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        let src = FlatPayloads {
            data,
            offsets: o,
            validity,
            validity_bit_offset: validity_offset,
        };
        py.detach(|| c.decode_batch(&src, &fport_src))
    } else if let Ok(o) = offsets.extract::<PyReadonlyArray1<'py, i64>>() {
        let o = o
            .as_slice()
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        let src = FlatPayloads {
            data,
            offsets: o,
            validity,
            validity_bit_offset: validity_offset,
        };
        py.detach(|| c.decode_batch(&src, &fport_src))
    } else {
        return Err(PyTypeError::new_err(
            "offsets must be a contiguous int32 or int64 numpy array",
        ));
    };
    convert::reading_columns(py, cols)
}

/// (offsets, data) of an Arrow binary array.
type BinaryBuffers<'py> = (Bound<'py, PyArray1<i32>>, Bound<'py, PyArray1<u8>>);

/// Readings to encode, as numpy float64 columns (NaN = absent) plus flags.
#[derive(FromPyObject)]
struct EncodeColumns<'py> {
    #[pyo3(item)]
    distance_mm: Option<PyReadonlyArray1<'py, f64>>,
    #[pyo3(item)]
    fill_pct_reported: Option<PyReadonlyArray1<'py, f64>>,
    #[pyo3(item)]
    temperature_c: Option<PyReadonlyArray1<'py, f64>>,
    #[pyo3(item)]
    battery_pct: Option<PyReadonlyArray1<'py, f64>>,
    #[pyo3(item)]
    battery_v: Option<PyReadonlyArray1<'py, f64>>,
    #[pyo3(item)]
    latitude: Option<PyReadonlyArray1<'py, f64>>,
    #[pyo3(item)]
    longitude: Option<PyReadonlyArray1<'py, f64>>,
    /// -1 = absent, 0 = false, 1 = true
    #[pyo3(item)]
    tilt: Option<PyReadonlyArray1<'py, i8>>,
    #[pyo3(item)]
    fire_alarm: Option<PyReadonlyArray1<'py, i8>>,
    #[pyo3(item)]
    alarm_flags: Option<PyReadonlyArray1<'py, u16>>,
    /// ms since the epoch; i64::MIN = absent
    #[pyo3(item)]
    measured_at: Option<PyReadonlyArray1<'py, i64>>,
}

/// Encode `n` readings into frames; returns (offsets int32, data uint8) for a pyarrow
/// BinaryArray. Raises EncodeError naming the first row that cannot be encoded.
#[pyfunction]
fn encode_batch_buffers<'py>(
    py: Python<'py>,
    model: &str,
    n: usize,
    columns: EncodeColumns<'py>,
) -> PyResult<BinaryBuffers<'py>> {
    let c = codec(model)?;
    fn sl<'a, T: numpy::Element>(
        a: &'a Option<PyReadonlyArray1<'_, T>>,
        n: usize,
        name: &str,
    ) -> PyResult<Option<&'a [T]>> {
        match a {
            None => Ok(None),
            Some(a) => {
                let s = a
                    .as_slice()
                    .map_err(|e| PyValueError::new_err(format!("{name}: {e}")))?;
                if s.len() != n {
                    return Err(PyValueError::new_err(format!(
                        "column {name} has {} rows, expected {n}",
                        s.len()
                    )));
                }
                Ok(Some(s))
            }
        }
    }
    let dist = sl(&columns.distance_mm, n, "distance_mm")?;
    let fill = sl(&columns.fill_pct_reported, n, "fill_pct_reported")?;
    let temp = sl(&columns.temperature_c, n, "temperature_c")?;
    let bpct = sl(&columns.battery_pct, n, "battery_pct")?;
    let bv = sl(&columns.battery_v, n, "battery_v")?;
    let lat = sl(&columns.latitude, n, "latitude")?;
    let lon = sl(&columns.longitude, n, "longitude")?;
    let tilt = sl(&columns.tilt, n, "tilt")?;
    let fire = sl(&columns.fire_alarm, n, "fire_alarm")?;
    let flags = sl(&columns.alarm_flags, n, "alarm_flags")?;
    let at = sl(&columns.measured_at, n, "measured_at")?;
    let result = py.detach(|| {
        let f =
            |c: Option<&[f64]>, i: usize| c.and_then(|c| c.get(i).copied()).filter(|x| !x.is_nan());
        let b = |c: Option<&[i8]>, i: usize| {
            c.and_then(|c| c.get(i).copied())
                .filter(|x| *x >= 0)
                .map(|x| x != 0)
        };
        let mut offsets = Vec::with_capacity(n + 1);
        let mut data = Vec::with_capacity(n * 16);
        offsets.push(0i32);
        let mut r = Reading::default();
        for i in 0..n {
            r.clear();
            r.distance_mm = f(dist, i);
            r.fill_pct_reported = f(fill, i);
            r.temperature_c = f(temp, i);
            r.battery_pct = f(bpct, i);
            r.battery_v = f(bv, i);
            r.latitude = f(lat, i);
            r.longitude = f(lon, i);
            r.tilt = b(tilt, i);
            r.fire_alarm = b(fire, i);
            r.alarm_flags = flags.and_then(|c| c.get(i).copied()).unwrap_or(0);
            r.measured_at_ms = at
                .and_then(|c| c.get(i).copied())
                .filter(|x| *x != i64::MIN);
            if let Err(e) = c.encode(&r, &mut data) {
                return Err((e, i));
            }
            offsets.push(i32::try_from(data.len()).map_err(|_| {
                (
                    crate::codec::EncodeError("batch larger than 2 GiB: split it".into()),
                    i,
                )
            })?);
        }
        Ok((offsets, data))
    });
    match result {
        Ok((o, d)) => Ok((PyArray1::from_vec(py, o), PyArray1::from_vec(py, d))),
        Err((e, i)) => Err(errors::encode_error(&e, Some(i))),
    }
}

/// Encode one reading (keyword arguments in normalized units) into a frame.
#[pyfunction]
#[pyo3(signature = (model, *, distance_mm=None, fill_pct_reported=None, temperature_c=None, battery_pct=None, battery_v=None, tilt=None, fire_alarm=None, alarm_flags=0, measured_at_ms=None, latitude=None, longitude=None, stored=None))]
#[allow(clippy::too_many_arguments)]
fn encode<'py>(
    py: Python<'py>,
    model: &str,
    distance_mm: Option<f64>,
    fill_pct_reported: Option<f64>,
    temperature_c: Option<f64>,
    battery_pct: Option<f64>,
    battery_v: Option<f64>,
    tilt: Option<bool>,
    fire_alarm: Option<bool>,
    alarm_flags: u16,
    measured_at_ms: Option<i64>,
    latitude: Option<f64>,
    longitude: Option<f64>,
    stored: Option<Vec<(i64, Option<f64>)>>,
) -> PyResult<Bound<'py, PyBytes>> {
    let c = codec(model)?;
    let r = Reading {
        distance_mm,
        fill_pct_reported,
        temperature_c,
        battery_pct,
        battery_v,
        tilt,
        fire_alarm,
        alarm_flags,
        measured_at_ms,
        latitude,
        longitude,
        stored: stored
            .unwrap_or_default()
            .into_iter()
            .map(|(t, d)| StoredReading {
                measured_at_ms: t,
                distance_mm: d,
                temperature_c: None,
            })
            .collect(),
    };
    let mut out = Vec::new();
    c.encode(&r, &mut out)
        .map_err(|e| errors::encode_error(&e, None))?;
    Ok(PyBytes::new(py, &out))
}

/// Compile a layout (TOML text) and register it; returns the model name.
#[pyfunction]
fn load_layout(text: &str) -> PyResult<String> {
    Registry::global()
        .register_layout(text)
        .map_err(|e| errors::layout_error(&e))
}

/// Parse a batch of uplink JSON envelopes given as Arrow binary buffers (GIL released).
#[pyfunction]
#[pyo3(signature = (format, data, offsets, validity=None, validity_offset=0))]
fn decode_uplinks_buffers<'py>(
    py: Python<'py>,
    format: &str,
    data: PyReadonlyArray1<'py, u8>,
    offsets: &Bound<'py, PyAny>,
    validity: Option<PyReadonlyArray1<'py, u8>>,
    validity_offset: usize,
) -> PyResult<Bound<'py, PyDict>> {
    let fmt = crate::envelope::Format::parse(format).ok_or_else(|| {
        PyValueError::new_err(format!(
            "unknown envelope format {format:?}; use \"ttn-v3\", \"chirpstack-v4\" or \"raw\""
        ))
    })?;
    let data = data
        .as_slice()
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    let validity_arr = validity;
    let validity = match &validity_arr {
        Some(v) => Some(
            v.as_slice()
                .map_err(|e| PyValueError::new_err(e.to_string()))?,
        ),
        None => None,
    };
    let cols = if let Ok(o) = offsets.extract::<PyReadonlyArray1<'py, i32>>() {
        let o = o
            .as_slice()
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        let src = FlatPayloads {
            data,
            offsets: o,
            validity,
            validity_bit_offset: validity_offset,
        };
        py.detach(|| crate::envelope::decode_uplinks(fmt, &src))
    } else if let Ok(o) = offsets.extract::<PyReadonlyArray1<'py, i64>>() {
        let o = o
            .as_slice()
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        let src = FlatPayloads {
            data,
            offsets: o,
            validity,
            validity_bit_offset: validity_offset,
        };
        py.detach(|| crate::envelope::decode_uplinks(fmt, &src))
    } else {
        return Err(PyTypeError::new_err(
            "offsets must be a contiguous int32 or int64 numpy array",
        ));
    };
    convert::uplink_columns(py, cols)
}

/// Payloads borrowed from Python objects (`None` = null).
struct Borrowed<'a>(Vec<Option<&'a [u8]>>);

impl crate::codec::PayloadSource for Borrowed<'_> {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn get(&self, i: usize) -> Option<&[u8]> {
        self.0.get(i).copied().flatten()
    }
}

/// Messages of a list parsed per GIL release: the items' headers and first bytes are
/// still in cache when the chunk is parsed and again when its references are dropped
/// (one pass per chunk instead of three passes over a whole batch of scattered
/// objects); about 0.5 MB of typical envelopes.
const LIST_CHUNK: usize = 256;
/// How many items ahead the reference loop of a chunk prefetches object headers
/// (those of the first chunk: the later ones were prefetched while the previous
/// chunk was parsed).
const LIST_PREFETCH_AHEAD: usize = 8;

/// Parse a batch of uplink JSON envelopes given as a list of `bytes` / `str` / `None`,
/// read in place (no copy into an Arrow array first); the GIL is released while parsing,
/// chunk by chunk of [`LIST_CHUNK`] messages into one set of columns.
///
/// Where the time goes, per 1.7 kB TTN message of a `list[bytes]` (the benchmark's,
/// built by `orjson.dumps`: each object 8 kB from the next, on 4 KiB pages, while an
/// Arrow buffer lies on huge pages): collecting a chunk's items under the GIL costs
/// ~15 ns when their headers are in cache, ~33 ns when not; the parse itself pays for
/// the scattered layout (a new hardware-prefetch stream and a page walk or two per
/// message) unless each message is prefetched whole ahead of its parse
/// (`envelope::decode_with`). So: the next chunk's headers are prefetched while this
/// one is parsed, and each message's later pages are translated while its chunk is
/// collected (`envelope::prefetch_pages`). `docs/CODECS.md` has the figures.
#[pyfunction]
fn decode_uplinks_list<'py>(
    py: Python<'py>,
    format: &str,
    messages: &Bound<'py, PyList>,
) -> PyResult<Bound<'py, PyDict>> {
    let fmt = crate::envelope::Format::parse(format).ok_or_else(|| {
        PyValueError::new_err(format!(
            "unknown envelope format {format:?}; use \"ttn-v3\", \"chirpstack-v4\" or \"raw\""
        ))
    })?;
    let n = messages.len();
    let mut cols = crate::envelope::UplinkColumns::with_capacity(n);
    let mut items: Vec<Bound<'py, PyAny>> = Vec::with_capacity(LIST_CHUNK.min(n));
    let mut upcoming: Vec<usize> = Vec::with_capacity(LIST_CHUNK.min(n));
    let mut start = 0;
    while start < n {
        // The GIL was released: another thread may have resized the list meanwhile.
        if messages.len() != n {
            return Err(PyRuntimeError::new_err(
                "decode_uplinks: the list of messages changed size during the call",
            ));
        }
        let end = (start + LIST_CHUNK).min(n);
        // Strong references: every message of the chunk stays alive while the GIL is
        // released, and `bytes` / `str` objects are immutable, so the borrowed slices
        // stay valid.
        items.clear();
        for i in start..end {
            let ahead = i + LIST_PREFETCH_AHEAD;
            if start == 0 && ahead < n {
                // Start loading a later item's header (scattered objects: a cache miss
                // each) while this one is referenced.
                crate::envelope::prefetch_line(borrowed_item(messages, ahead).cast::<u8>());
            }
            items.push(messages.get_item(i)?);
        }
        // The next chunk's item addresses, prefetched while this one is parsed. Hints
        // only: nothing is read through them, and the list may change meanwhile.
        upcoming.clear();
        upcoming
            .extend((end..(end + LIST_CHUNK).min(n)).map(|i| borrowed_item(messages, i) as usize));
        let mut slices = Vec::with_capacity(items.len());
        for (i, it) in (start..).zip(&items) {
            if it.is_none() {
                slices.push(None);
                continue;
            }
            let msg = if let Ok(b) = it.cast::<PyBytes>() {
                b.as_bytes()
            } else if let Ok(s) = it.cast::<PyString>() {
                s.to_str()?.as_bytes()
            } else {
                return Err(PyTypeError::new_err(format!(
                    "messages[{i}] must be bytes, str or None, got {}",
                    it.get_type().name()?
                )));
            };
            // The message's other pages are translated now, overlapping across the
            // chunk, rather than one by one while parsing.
            crate::envelope::prefetch_pages(msg);
            slices.push(Some(msg));
        }
        let src = Borrowed(slices);
        py.detach(|| crate::envelope::decode_uplinks_into_hinting(fmt, &src, &mut cols, &upcoming));
        start = end;
    }
    drop(items);
    convert::uplink_columns(py, cols)
}

/// Item `i` of `list` as a borrowed pointer, for use as a prefetch address only.
fn borrowed_item(list: &Bound<'_, PyList>, i: usize) -> *mut pyo3::ffi::PyObject {
    // SAFETY: the GIL is held (`list` is a `Bound`) and the callers pass `i < n ==
    // list.len()` (checked with the GIL held, and no Python code runs in between), so
    // `PyList_GetItem` returns a borrowed pointer without touching the item. Callers
    // use only the address, as a prefetch hint.
    unsafe { pyo3::ffi::PyList_GetItem(list.as_ptr(), i as isize) }
}

/// Fill ratio per reading from distance and container geometry (NaN where unknown).
#[pyfunction]
fn fill_ratio<'py>(
    py: Python<'py>,
    distance_mm: PyReadonlyArray1<'py, f64>,
    depth_mm: PyReadonlyArray1<'py, f64>,
    offset_mm: PyReadonlyArray1<'py, f64>,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let d = distance_mm
        .as_slice()
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    let h = depth_mm
        .as_slice()
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    let o = offset_mm
        .as_slice()
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    if d.len() != h.len() || d.len() != o.len() {
        return Err(PyValueError::new_err(
            "distance_mm, depth_mm and offset_mm must have the same length",
        ));
    }
    let mut out = Vec::new();
    py.detach(|| crate::fill::fill_ratio_batch(d, h, o, &mut out));
    Ok(PyArray1::from_vec(py, out))
}

/// Stable names of every error kind.
#[pyfunction]
fn error_kinds() -> Vec<&'static str> {
    crate::error::ErrorKind::ALL_NAMES.to_vec()
}

/// (bit, name) of every alarm flag.
#[pyfunction]
fn alarm_flags() -> Vec<(u16, &'static str)> {
    crate::reading::alarm::NAMES.to_vec()
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", crate::VERSION)?;
    m.add(
        "build_profile",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
    )?;
    m.add_function(wrap_pyfunction!(models, m)?)?;
    m.add_function(wrap_pyfunction!(model_info, m)?)?;
    m.add_function(wrap_pyfunction!(decode_vendor, m)?)?;
    m.add_function(wrap_pyfunction!(decode_batch_buffers, m)?)?;
    m.add_function(wrap_pyfunction!(encode, m)?)?;
    m.add_function(wrap_pyfunction!(encode_batch_buffers, m)?)?;
    m.add_function(wrap_pyfunction!(load_layout, m)?)?;
    m.add_function(wrap_pyfunction!(error_kinds, m)?)?;
    m.add_function(wrap_pyfunction!(fill_ratio, m)?)?;
    m.add_function(wrap_pyfunction!(decode_uplinks_buffers, m)?)?;
    m.add_function(wrap_pyfunction!(decode_uplinks_list, m)?)?;
    m.add_function(wrap_pyfunction!(alarm_flags, m)?)?;
    sim::register(m)?;
    forecast::register(m)?;
    ingest::register(m)?;
    routes::register(m)?;
    json_rows::register(m)?;
    natsio::register(m)?;
    Ok(())
}
