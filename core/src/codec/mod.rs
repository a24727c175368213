//! Sensor frame codecs.
//!
//! One [`Codec`] per model. Most built-in models are *declarative*: a layout file
//! (`core/layouts/*.toml`, see [`layout`]) compiled once into a table the same
//! engine walks for every frame; the few vendor parts a layout cannot say (Dingtek's
//! length dispatch and float bug, Decentlab's sensor-group bitmask, Dragino's
//! firmware dispatch, tidstream's own `tid1`) are written by hand in [`vendor`].
//!
//! Every codec has two outputs: the vendor-native tree ([`Value`]), identical to the
//! vendor's JavaScript decoder, and the normalized [`Reading`] (correct physics).

pub mod bytes;
pub mod layout;
pub mod tid1;
pub mod vendor;

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock, RwLock};

use crate::error::{DecodeError, DecodeResult, ErrorKind, LayoutError};
use crate::reading::{Fields, Reading, ReadingColumns};
use crate::value::Value;

/// Descriptive facts about a model, for `tidstream.models()` and docs.
#[derive(Debug, Clone, Default)]
pub struct ModelInfo {
    pub name: String,
    pub vendor: String,
    pub description: String,
    /// fPorts the vendor decoder accepts; empty means the decoder ignores the fPort.
    pub fports: Vec<u8>,
    /// `layout` (declarative) or `builtin` (hand-written).
    pub engine: &'static str,
    /// Whether `encode` is supported.
    pub can_encode: bool,
}

/// A frame that cannot be encoded from a reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodeError(pub String);

impl std::fmt::Display for EncodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for EncodeError {}

/// A sensor model's decoder (and optionally encoder).
pub trait Codec: Send + Sync {
    /// Facts about the model.
    fn info(&self) -> &ModelInfo;

    /// Normalized columns this codec can fill (others come back all-null).
    fn fields(&self) -> Fields;

    /// Vendor-native decode: the same keys, types and values as the vendor decoder.
    fn decode_vendor(&self, payload: &[u8], fport: Option<u8>) -> DecodeResult<Value>;

    /// Normalized decode into `out` (cleared by the caller).
    fn decode(&self, payload: &[u8], fport: Option<u8>, out: &mut Reading) -> DecodeResult<()>;

    /// Encode a reading into a frame of this model.
    fn encode(&self, reading: &Reading, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let _ = (reading, out);
        Err(EncodeError(format!(
            "model `{}` has no encoder",
            self.info().name
        )))
    }

    /// Decode a batch into columns (one virtual call per batch). This default runs
    /// the per-frame [`Codec::decode`] for every row; codecs with a columnar fast
    /// path override it and send the rows it does not cover through
    /// [`decode_rows`].
    fn decode_batch(&self, batch: &dyn PayloadSource, fports: &FportSource) -> ReadingColumns {
        let mut cols = ReadingColumns::new(batch.len(), self.fields());
        decode_rows(self, batch, fports, 0..batch.len(), &mut cols);
        cols.finish()
    }
}

/// The per-frame path: decode `rows` (increasing) of `batch` one at a time with
/// `codec.decode` and write each row (value or error) into `cols`.
pub fn decode_rows<C: Codec + ?Sized>(
    codec: &C,
    batch: &dyn PayloadSource,
    fports: &FportSource,
    rows: impl IntoIterator<Item = usize>,
    cols: &mut ReadingColumns,
) {
    let mut reading = Reading::default();
    for i in rows {
        let result = match batch.get(i) {
            None => Err(DecodeError::new(ErrorKind::MissingPayload, 0)),
            Some(p) => match fports.get(i) {
                Err(e) => Err(e),
                Ok(fp) => {
                    reading.clear();
                    codec.decode(p, fp, &mut reading)
                }
            },
        };
        match result {
            Ok(()) => cols.set_ok(i, &reading),
            Err(e) => cols.set_err(i, e),
        }
    }
}

/// A batch as one flat buffer and its offsets, for the columnar fast paths.
#[derive(Clone, Copy)]
pub struct FlatView<'a> {
    pub data: &'a [u8],
    pub offsets: Offsets<'a>,
    /// Arrow validity bitmap and the bit offset of row 0 (None: no nulls).
    pub validity: Option<(&'a [u8], usize)>,
}

/// Arrow offsets of either width (`len + 1` entries).
#[derive(Clone, Copy)]
pub enum Offsets<'a> {
    I32(&'a [i32]),
    I64(&'a [i64]),
}

impl FlatView<'_> {
    /// Number of rows.
    pub fn len(&self) -> usize {
        match self.offsets {
            Offsets::I32(o) => o.len().saturating_sub(1),
            Offsets::I64(o) => o.len().saturating_sub(1),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Fill `start[k]`, `len[k]` for rows `r0 .. r0 + start.len()`. A row that is null
    /// or whose offsets are not a valid range of `data` gets `len = usize::MAX` (never
    /// a fast-path row; the per-frame path reports it). Always inlined, so that it is
    /// compiled with the caller's CPU features (the AVX2 / AVX-512 builds of the
    /// columnar passes): as a call of its own it ran on SSE2, ~15 % of an LDDS75 batch.
    #[inline(always)]
    pub fn ranges(&self, r0: usize, start: &mut [usize], len: &mut [usize]) {
        let dl = self.data.len();
        macro_rules! fill {
            ($o:expr) => {{
                let m = start.len();
                match $o.get(r0..r0 + m + 1) {
                    // The usual case, branch-free: offsets ascending within `data`.
                    Some(o) if o[0] >= 0 && o[m] as u64 <= dl as u64 => {
                        let mut descending = false;
                        // Zipped with the next offsets: no bounds checks, so it vectorises.
                        for ((s, l), (&a, &b)) in start
                            .iter_mut()
                            .zip(len.iter_mut())
                            .zip(o.iter().zip(&o[1..]))
                        {
                            descending |= b < a;
                            *s = a as usize;
                            *l = b.wrapping_sub(a) as usize;
                        }
                        if descending {
                            // Corrupt offsets: check each row (ranges of ascending
                            // rows between 0 and o[m] are inside `data`).
                            for (k, (s, l)) in start.iter_mut().zip(len.iter_mut()).enumerate() {
                                if o[k + 1] < o[k] || o[k] < 0 || o[k + 1] as u64 > dl as u64 {
                                    *s = 0;
                                    *l = usize::MAX;
                                }
                            }
                        }
                    }
                    o => {
                        let o = o.unwrap_or(&[]);
                        for (k, (s, l)) in start.iter_mut().zip(len.iter_mut()).enumerate() {
                            let (a, b) = match (o.get(k), o.get(k + 1)) {
                                (Some(&a), Some(&b)) => (a as i128, b as i128),
                                _ => (0, -1),
                            };
                            let good = 0 <= a && a <= b && b <= dl as i128;
                            *s = if good { a as usize } else { 0 };
                            *l = if good { (b - a) as usize } else { usize::MAX };
                        }
                    }
                }
            }};
        }
        match self.offsets {
            Offsets::I32(o) => fill!(o),
            Offsets::I64(o) => fill!(o),
        }
        if let Some((v, off)) = self.validity {
            for (k, l) in len.iter_mut().enumerate() {
                let bit = r0 + k + off;
                if v.get(bit / 8).is_none_or(|b| b & (1 << (bit % 8)) == 0) {
                    *l = usize::MAX;
                }
            }
        }
    }
}

/// Random access to a batch of payloads (a `null` entry is `None`).
pub trait PayloadSource: Sync {
    fn len(&self) -> usize;
    fn get(&self, i: usize) -> Option<&[u8]>;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The flat Arrow layout, when the batch has one (enables the columnar fast paths).
    fn flat(&self) -> Option<FlatView<'_>> {
        None
    }
}

/// Payloads as one flat buffer plus Arrow-style offsets and an optional validity bitmap.
pub struct FlatPayloads<'a, O> {
    pub data: &'a [u8],
    /// `len + 1` offsets into `data`.
    pub offsets: &'a [O],
    /// Arrow validity bitmap (LSB first), already sliced so bit 0 is row 0's
    /// bit at `validity_bit_offset`.
    pub validity: Option<&'a [u8]>,
    pub validity_bit_offset: usize,
}

impl<O: OffsetType> PayloadSource for FlatPayloads<'_, O> {
    fn len(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }
    #[inline]
    fn get(&self, i: usize) -> Option<&[u8]> {
        if let Some(v) = self.validity {
            let bit = i + self.validity_bit_offset;
            let byte = v.get(bit / 8)?;
            if byte & (1 << (bit % 8)) == 0 {
                return None;
            }
        }
        let a: usize = (*self.offsets.get(i)?).try_into().ok()?;
        let b: usize = (*self.offsets.get(i + 1)?).try_into().ok()?;
        self.data.get(a..b)
    }
    fn flat(&self) -> Option<FlatView<'_>> {
        Some(FlatView {
            data: self.data,
            offsets: O::offsets(self.offsets),
            validity: self.validity.map(|v| (v, self.validity_bit_offset)),
        })
    }
}

/// Offset element types of Arrow binary arrays.
pub trait OffsetType: Copy + TryInto<usize> + Sync {
    fn offsets(o: &[Self]) -> Offsets<'_>;
}
impl OffsetType for i32 {
    fn offsets(o: &[i32]) -> Offsets<'_> {
        Offsets::I32(o)
    }
}
impl OffsetType for i64 {
    fn offsets(o: &[i64]) -> Offsets<'_> {
        Offsets::I64(o)
    }
}

/// A list of owned payloads (tests, small batches).
impl PayloadSource for Vec<Vec<u8>> {
    fn len(&self) -> usize {
        <[Vec<u8>]>::len(self)
    }
    fn get(&self, i: usize) -> Option<&[u8]> {
        <[Vec<u8>]>::get(self, i).map(Vec::as_slice)
    }
}

/// The fPort of each payload: none given, one for all, or one per row
/// (`-1` meaning "not given").
pub enum FportSource<'a> {
    None,
    All(Option<u8>),
    PerRow(&'a [i32]),
}

impl FportSource<'_> {
    #[inline]
    pub fn get(&self, i: usize) -> DecodeResult<Option<u8>> {
        match self {
            FportSource::None => Ok(None),
            FportSource::All(f) => Ok(*f),
            FportSource::PerRow(v) => match v.get(i) {
                None | Some(-1) => Ok(None),
                Some(&x) => u8::try_from(x).map(Some).map_err(|_| {
                    DecodeError::new(
                        ErrorKind::UnknownFport {
                            fport: i64::from(x),
                        },
                        0,
                    )
                }),
            },
        }
    }
}

/// Check an fPort against a model's list. `None` means "the model's usual port".
#[inline]
pub fn check_fport(info: &ModelInfo, fport: Option<u8>) -> DecodeResult<()> {
    match fport {
        Some(f) if !info.fports.is_empty() && !info.fports.contains(&f) => {
            Err(DecodeError::unknown_fport(Some(f)))
        }
        _ => Ok(()),
    }
}

/// The models known to this process: the built-ins plus any layouts loaded at run time.
pub struct Registry {
    codecs: RwLock<BTreeMap<String, Arc<dyn Codec>>>,
}

impl Registry {
    fn with_builtins() -> Self {
        let mut map: BTreeMap<String, Arc<dyn Codec>> = BTreeMap::new();
        for c in builtin_codecs() {
            map.insert(c.info().name.clone(), c);
        }
        Registry {
            codecs: RwLock::new(map),
        }
    }

    /// The process-wide registry.
    pub fn global() -> &'static Registry {
        static REG: OnceLock<Registry> = OnceLock::new();
        REG.get_or_init(Registry::with_builtins)
    }

    /// Find a model by name.
    pub fn get(&self, name: &str) -> Option<Arc<dyn Codec>> {
        self.codecs.read().ok()?.get(name).cloned()
    }

    /// Names of all models, sorted.
    pub fn names(&self) -> Vec<String> {
        self.codecs
            .read()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Compile a layout (TOML text) and register it under its `model` name.
    /// A built-in model cannot be replaced; a run-time layout can be reloaded.
    pub fn register_layout(&self, toml_text: &str) -> Result<String, LayoutError> {
        let codec = layout::LayoutCodec::from_toml(toml_text)?;
        let name = codec.info().name.clone();
        let mut map = self.codecs.write().map_err(|_| LayoutError {
            path: String::new(),
            message: "registry lock poisoned".into(),
        })?;
        if let Some(existing) = map.get(&name) {
            if existing.info().engine != "runtime-layout" {
                return Err(LayoutError {
                    path: "model".into(),
                    message: format!(
                        "`{name}` is a built-in model and cannot be replaced; pick another name"
                    ),
                });
            }
        }
        map.insert(name.clone(), Arc::new(codec));
        Ok(name)
    }
}

/// Built-in layouts, compiled into the binary.
pub const BUILTIN_LAYOUTS: &[(&str, &str)] = &[
    (
        "milesight-em310-udl",
        include_str!("../../layouts/milesight-em310-udl.toml"),
    ),
    (
        "milesight-em400-udl",
        include_str!("../../layouts/milesight-em400-udl.toml"),
    ),
    (
        "milesight-em400-tld",
        include_str!("../../layouts/milesight-em400-tld.toml"),
    ),
    (
        "milesight-em400-mud",
        include_str!("../../layouts/milesight-em400-mud.toml"),
    ),
    (
        "milesight-em500-udl",
        include_str!("../../layouts/milesight-em500-udl.toml"),
    ),
    (
        "milesight-ws201",
        include_str!("../../layouts/milesight-ws201.toml"),
    ),
    (
        "dragino-ldds45",
        include_str!("../../layouts/dragino-ldds45.toml"),
    ),
    (
        "dragino-ldds20",
        include_str!("../../layouts/dragino-ldds20.toml"),
    ),
    (
        "dragino-ldds04",
        include_str!("../../layouts/dragino-ldds04.toml"),
    ),
    (
        "dragino-llds12",
        include_str!("../../layouts/dragino-llds12.toml"),
    ),
    (
        "elsys-elt-ultrasonic",
        include_str!("../../layouts/elsys-elt-ultrasonic.toml"),
    ),
    (
        "pepperl-fuchs-wilsen-sonic-level",
        include_str!("../../layouts/pepperl-fuchs-wilsen-sonic-level.toml"),
    ),
];

fn builtin_layout(name: &str) -> layout::LayoutCodec {
    let text = BUILTIN_LAYOUTS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
        .unwrap_or("");
    match layout::LayoutCodec::from_toml_builtin(text) {
        Ok(c) => c,
        // A broken built-in layout is a build defect caught by `cargo test`.
        Err(e) => panic!("built-in layout `{name}` is invalid: {e}"),
    }
}

fn builtin_codecs() -> Vec<Arc<dyn Codec>> {
    let mut v: Vec<Arc<dyn Codec>> = Vec::new();
    for (name, _) in BUILTIN_LAYOUTS {
        match *name {
            // Layouts wrapped by a hand-written dispatcher below.
            "dragino-ldds04" | "dragino-llds12" | "dragino-ldds20" | "dragino-ldds45" => {}
            _ => v.push(Arc::new(builtin_layout(name))),
        }
    }
    for name in ["dragino-ldds75", "dragino-ldds20", "dragino-ldds45"] {
        let layout = if name == "dragino-ldds45" {
            "dragino-ldds45"
        } else {
            "dragino-ldds20"
        };
        v.push(Arc::new(vendor::dragino::Ldds75::new(
            name,
            builtin_layout(layout),
        )));
    }
    v.push(Arc::new(vendor::dragino::Guarded::ldds04(builtin_layout(
        "dragino-ldds04",
    ))));
    v.push(Arc::new(vendor::dragino::Guarded::llds12(builtin_layout(
        "dragino-llds12",
    ))));
    v.push(Arc::new(vendor::decentlab::Decentlab::mbx()));
    v.push(Arc::new(vendor::decentlab::Decentlab::lid()));
    v.push(Arc::new(vendor::dingtek::Dingtek::df702()));
    v.push(Arc::new(vendor::dingtek::Dingtek::df703()));
    v.push(Arc::new(tid1::Tid1::new()));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_builtins_compile_and_are_listed() {
        let names = Registry::global().names();
        for expected in [
            "milesight-em310-udl",
            "milesight-em400-udl",
            "milesight-em400-tld",
            "milesight-em400-mud",
            "milesight-em500-udl",
            "milesight-ws201",
            "dragino-ldds75",
            "dragino-ldds45",
            "dragino-ldds20",
            "dragino-ldds04",
            "dragino-llds12",
            "decentlab-dl-mbx",
            "decentlab-dl-lid",
            "elsys-elt-ultrasonic",
            "dingtek-df702",
            "dingtek-df703",
            "pepperl-fuchs-wilsen-sonic-level",
            "tid1",
        ] {
            assert!(names.iter().any(|n| n == expected), "{expected} missing");
        }
        assert_eq!(names.len(), 18);
    }
}
