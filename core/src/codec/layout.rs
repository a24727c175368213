//! Declarative codecs: a layout file describes a fixed-offset or TLV frame, and one
//! engine decodes every such model (vendor-native tree and normalized reading) and
//! encodes readings back into frames.
//!
//! The file format is documented in `docs/LAYOUTS.md`. In short (TOML):
//!
//! ```toml
//! model = "acme-bin-sensor"        # registry name
//! format = "fixed"                 # "fixed" or "tlv"
//! byte_order = "big"               # default for multi-byte fields
//! fports = [2]                     # accepted fPorts (empty: any)
//!
//! [[fields]]                       # fixed: offsets from the start of the frame
//! name = "battery"                 # vendor key (dotted = nested object); omit to hide
//! at = 0
//! type = "u16"                     # u8 s8 u16 s16 u24 s24 u32 s32 f32 hex ascii const
//! mask = 0x3fff                    # then `shift`, then mul / div / add / round
//! div = 1000
//! unit = "V"
//! normalized = "battery_v"         # which normalized column it feeds
//! ```

mod plan;
pub use plan::Guard;

use std::collections::BTreeMap;

use serde::Deserialize;

use super::bytes::{self, Order};
use super::{check_fport, Codec, EncodeError, FportSource, ModelInfo, PayloadSource};
use crate::error::{DecodeError, DecodeResult, ErrorKind, LayoutError};
use crate::reading::{alarm, Fields, Reading, ReadingColumns, StoredReading};
use crate::value::{js_number_to_string, js_to_fixed, Value};

// ---------------------------------------------------------------------------
// The file format (serde); unknown keys are rejected so typos surface.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Spec {
    model: String,
    #[serde(default)]
    vendor: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    source: String,
    format: String,
    #[serde(default)]
    byte_order: Option<String>,
    #[serde(default)]
    fports: Vec<u8>,
    /// Exact frame length (fixed layouts); shorter frames are truncated, longer ones
    /// a length mismatch. Without it, bytes after the last field are ignored.
    #[serde(default)]
    length: Option<usize>,
    #[serde(default)]
    fields: Vec<FieldSpec>,
    #[serde(default)]
    tlv: Option<TlvSpec>,
    #[serde(default)]
    records: Vec<RecordSpec>,
    /// Add the whole payload as an uppercase hex string under this key (vendor-native).
    #[serde(default)]
    payload_hex_key: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlvSpec {
    /// 1 or 2 bytes of tag (2 = channel byte then type byte).
    tag_size: u8,
    /// "implied" (record size from the layout) or "prefix" (a length byte before the
    /// tag, counting tag + data).
    #[serde(default = "default_implied")]
    length: String,
    /// Vendor-native behaviour on an unknown tag: "stop" (return what was decoded so
    /// far, as the vendor decoders do), "skip" (prefix framing only) or "error".
    #[serde(default = "default_stop")]
    on_unknown: String,
    /// First tag bytes on which an unknown tag is an error even when `on_unknown`
    /// is "stop" (Milesight throws on unknown 0xFF/0xFE responses).
    #[serde(default)]
    error_on_unknown_first_byte: Vec<u8>,
    /// The message of that error.
    #[serde(default)]
    unknown_error_message: Option<String>,
}

fn default_implied() -> String {
    "implied".into()
}
fn default_stop() -> String {
    "stop".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordSpec {
    tag: u32,
    /// Data bytes after the tag; default: the end of the furthest field.
    #[serde(default)]
    size: Option<usize>,
    #[serde(default)]
    fields: Vec<FieldSpec>,
    /// Append the record's fields as one object to this array (history records);
    /// normalized: a stored reading.
    #[serde(default)]
    history: Option<String>,
    /// The encoder writes this record when the reading has all its targets.
    #[serde(default)]
    encode: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldSpec {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    at: usize,
    #[serde(rename = "type")]
    ty: String,
    #[serde(default)]
    order: Option<String>,
    #[serde(default)]
    len: Option<usize>,
    #[serde(default)]
    mask: Option<u64>,
    #[serde(default)]
    shift: Option<u32>,
    #[serde(default)]
    mul: Option<f64>,
    #[serde(default)]
    div: Option<f64>,
    #[serde(default)]
    add: Option<f64>,
    /// Round like `parseFloat(v.toFixed(round))`.
    #[serde(default)]
    round: Option<usize>,
    #[serde(default)]
    render: Option<String>,
    #[serde(default)]
    digits: Option<usize>,
    #[serde(default)]
    template: Option<String>,
    #[serde(default, rename = "enum")]
    enum_map: Option<BTreeMap<String, String>>,
    #[serde(default)]
    enum_default: Option<String>,
    #[serde(default)]
    special: Option<BTreeMap<String, String>>,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    unit: Option<String>,
    #[serde(default)]
    normalized: Option<String>,
    #[serde(default)]
    normalized_scale: Option<f64>,
    /// Raw value the encoder writes when the reading has no value for the target.
    #[serde(default)]
    encode_default: Option<i64>,
}

// ---------------------------------------------------------------------------
// Compiled form.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    Uint(usize),
    Sint(usize),
    F32,
    Hex(usize),
    Ascii(usize),
    Const,
}

impl Ty {
    fn width(self) -> usize {
        match self {
            Ty::Uint(n) | Ty::Sint(n) | Ty::Hex(n) | Ty::Ascii(n) => n,
            Ty::F32 => 4,
            Ty::Const => 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Render {
    Number,
    Fixed(usize),
    Enum,
    Bool,
    Text,
    /// `v{hi}.{lo}` from the two nibbles of one byte.
    VersionNibble,
    /// `v{hex b0}.{b1 >> 4}`.
    VersionHexNibble,
    /// `v{hex b0}.{hex b1}`.
    VersionHexHex,
    /// `v{b0}.{b1}`.
    VersionDecDec,
}

/// A normalized column a field feeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Distance,
    Fill,
    Temperature,
    BatteryPct,
    BatteryV,
    Tilt,
    Fire,
    Latitude,
    Longitude,
    /// Device-side time, seconds since the Unix epoch.
    MeasuredAtS,
    /// Sets an alarm flag when the raw value is non-zero.
    Alarm(u16),
}

impl Target {
    fn parse(s: &str) -> Option<Target> {
        Some(match s {
            "distance_mm" => Target::Distance,
            "fill_pct_reported" => Target::Fill,
            "temperature_c" => Target::Temperature,
            "battery_pct" => Target::BatteryPct,
            "battery_v" => Target::BatteryV,
            "tilt" => Target::Tilt,
            "fire_alarm" => Target::Fire,
            "latitude" => Target::Latitude,
            "longitude" => Target::Longitude,
            "measured_at_s" => Target::MeasuredAtS,
            other => Target::Alarm(alarm::by_name(other.strip_prefix("alarm.")?)?),
        })
    }

    fn field_bit(self) -> u32 {
        match self {
            Target::Distance => Fields::DISTANCE,
            Target::Fill => Fields::FILL,
            Target::Temperature => Fields::TEMPERATURE,
            Target::BatteryPct => Fields::BATTERY_PCT,
            Target::BatteryV => Fields::BATTERY_V,
            Target::Tilt => Fields::TILT,
            Target::Fire => Fields::FIRE,
            Target::Latitude | Target::Longitude => Fields::LOCATION,
            Target::MeasuredAtS => Fields::MEASURED_AT,
            Target::Alarm(_) => 0,
        }
    }
}

#[derive(Debug, Clone)]
struct Field {
    /// Dotted path split into keys; empty = not in the vendor-native output.
    path: Vec<String>,
    at: usize,
    ty: Ty,
    order: Order,
    mask: Option<u64>,
    shift: u32,
    mul: Option<f64>,
    div: Option<f64>,
    add: Option<f64>,
    round: Option<usize>,
    render: Render,
    template: Option<(String, String)>,
    enum_map: Vec<(i64, String)>,
    enum_default: Option<String>,
    special: Vec<(i64, String)>,
    const_value: Option<String>,
    unit: Option<String>,
    target: Option<Target>,
    nscale: f64,
    encode_default: Option<i64>,
}

enum Raw {
    Int(i64),
    Float(f64),
    Bytes(usize, usize),
}

impl Field {
    #[inline]
    fn raw(&self, p: &[u8], base: usize) -> DecodeResult<Raw> {
        let at = base + self.at;
        Ok(match self.ty {
            Ty::Uint(n) => {
                let mut v = bytes::uint(p, at, n, self.order)?;
                if let Some(m) = self.mask {
                    v &= m;
                }
                Raw::Int((v >> self.shift) as i64)
            }
            Ty::Sint(n) => {
                let v = bytes::uint(p, at, n, self.order)?;
                Raw::Int(bytes::sign_extend(v, (n * 8) as u32))
            }
            Ty::F32 => {
                let v = bytes::uint(p, at, 4, self.order)?;
                Raw::Float(f64::from(f32::from_bits(v as u32)))
            }
            Ty::Hex(n) | Ty::Ascii(n) => {
                bytes::take(p, at, n)?;
                Raw::Bytes(at, n)
            }
            Ty::Const => Raw::Int(0),
        })
    }

    /// The vendor's arithmetic, in the vendor's order (JS division, not multiplication
    /// by a reciprocal, so results are bit-identical).
    #[inline]
    fn scale(&self, x: f64) -> f64 {
        let mut v = x;
        if let Some(m) = self.mul {
            v *= m;
        }
        if let Some(d) = self.div {
            v /= d;
        }
        if let Some(a) = self.add {
            v += a;
        }
        if let Some(d) = self.round {
            // parseFloat(v.toFixed(d)), as the vendor decoders write it.
            v = js_to_fixed(v, d).parse().unwrap_or(v);
        }
        v
    }

    fn special_for(&self, raw: i64) -> Option<&str> {
        self.special
            .iter()
            .find(|(k, _)| *k == raw)
            .map(|(_, s)| s.as_str())
    }

    fn native(&self, p: &[u8], base: usize) -> DecodeResult<Value> {
        if let Some(c) = &self.const_value {
            return Ok(Value::Str(c.clone()));
        }
        let raw = self.raw(p, base)?;
        let v = match raw {
            Raw::Bytes(at, n) => {
                let s = p.get(at..at + n).unwrap_or_default();
                match self.ty {
                    Ty::Ascii(_) => {
                        let end = s.iter().position(|&b| b == 0).unwrap_or(s.len());
                        Value::Str(String::from_utf8_lossy(&s[..end]).into_owned())
                    }
                    _ => match self.render {
                        Render::VersionHexNibble => Value::Str(format!(
                            "v{:x}.{}",
                            s.first().copied().unwrap_or(0),
                            s.get(1).copied().unwrap_or(0) >> 4
                        )),
                        Render::VersionHexHex => Value::Str(format!(
                            "v{:x}.{:x}",
                            s.first().copied().unwrap_or(0),
                            s.get(1).copied().unwrap_or(0)
                        )),
                        Render::VersionDecDec => Value::Str(format!(
                            "v{}.{}",
                            s.first().copied().unwrap_or(0),
                            s.get(1).copied().unwrap_or(0)
                        )),
                        _ => Value::Str(bytes::hex_lower(s)),
                    },
                }
            }
            Raw::Int(i) => {
                if let Some(s) = self.special_for(i) {
                    return Ok(Value::Str(s.to_string()));
                }
                match self.render {
                    Render::Enum => Value::Str(
                        self.enum_map
                            .iter()
                            .find(|(k, _)| *k == i)
                            .map(|(_, s)| s.clone())
                            .or_else(|| self.enum_default.clone())
                            .unwrap_or_else(|| "unknown".into()),
                    ),
                    Render::Bool => Value::Bool(i != 0),
                    Render::VersionNibble => Value::Str(format!("v{}.{}", (i >> 4) & 15, i & 15)),
                    _ => self.render_number(self.scale(i as f64)),
                }
            }
            Raw::Float(f) => self.render_number(self.scale(f)),
        };
        Ok(v)
    }

    fn render_number(&self, v: f64) -> Value {
        let base = match self.render {
            Render::Fixed(d) => Value::Str(js_to_fixed(v, d)),
            Render::Text => Value::Str(js_number_to_string(v)),
            _ => Value::Num(v),
        };
        match (&self.template, base) {
            (Some((pre, post)), Value::Str(s)) => Value::Str(format!("{pre}{s}{post}")),
            (Some((pre, post)), Value::Num(n)) => {
                Value::Str(format!("{pre}{}{post}", js_number_to_string(n)))
            }
            (_, b) => b,
        }
    }

    /// Feed the normalized reading.
    #[inline]
    fn normalize(&self, p: &[u8], base: usize, out: &mut Reading) -> DecodeResult<()> {
        let Some(t) = self.target else { return Ok(()) };
        let raw = self.raw(p, base)?;
        let (value, nonzero) = match raw {
            Raw::Int(i) => {
                if self.special_for(i).is_some() {
                    out.alarm_flags |= alarm::NO_SENSOR;
                    return Ok(());
                }
                (self.scale(i as f64), i != 0)
            }
            Raw::Float(f) => {
                let v = self.scale(f);
                (v, v != 0.0)
            }
            Raw::Bytes(..) => return Ok(()),
        };
        let v = value * self.nscale;
        match t {
            Target::Distance => out.distance_mm = Some(v),
            Target::Fill => out.fill_pct_reported = Some(v),
            Target::Temperature => out.temperature_c = Some(v),
            Target::BatteryPct => out.battery_pct = Some(v),
            Target::BatteryV => out.battery_v = Some(v),
            Target::Latitude => out.latitude = Some(v),
            Target::Longitude => out.longitude = Some(v),
            Target::MeasuredAtS => out.measured_at_ms = Some((v * 1000.0) as i64),
            Target::Tilt => {
                out.tilt = Some(nonzero);
                if nonzero {
                    out.alarm_flags |= alarm::TILT;
                }
            }
            Target::Fire => {
                out.fire_alarm = Some(nonzero);
                if nonzero {
                    out.alarm_flags |= alarm::FIRE;
                }
            }
            Target::Alarm(bit) => {
                if nonzero {
                    out.alarm_flags |= bit;
                }
            }
        }
        Ok(())
    }

    /// The raw integer to encode for a reading, if the reading has the target.
    fn encode_raw(&self, r: &Reading) -> Option<i64> {
        let t = self.target?;
        let phys = match t {
            Target::Distance => r.distance_mm,
            Target::Fill => r.fill_pct_reported,
            Target::Temperature => r.temperature_c,
            Target::BatteryPct => r.battery_pct,
            Target::BatteryV => r.battery_v,
            Target::Latitude => r.latitude,
            Target::Longitude => r.longitude,
            Target::MeasuredAtS => r.measured_at_ms.map(|ms| ms as f64 / 1000.0),
            Target::Tilt => return r.tilt.map(i64::from),
            Target::Fire => return r.fire_alarm.map(i64::from),
            Target::Alarm(bit) => return Some(i64::from(r.alarm_flags & bit != 0)),
        };
        let Some(phys) = phys else {
            return self.special.first().map(|(k, _)| *k);
        };
        // Invert nscale, add, div, mul.
        let mut v = phys / self.nscale;
        if let Some(a) = self.add {
            v -= a;
        }
        if let Some(d) = self.div {
            v *= d;
        }
        if let Some(m) = self.mul {
            v /= m;
        }
        Some(v.round() as i64)
    }
}

#[derive(Debug, Clone)]
struct Record {
    tag: u32,
    size: usize,
    fields: Vec<Field>,
    /// Indices into `fields` that feed a normalized column (the hot path).
    norm: Vec<usize>,
    history: Option<String>,
    encode: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Implied,
    Prefix,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OnUnknown {
    Stop,
    Skip,
    Error,
}

#[derive(Debug, Clone)]
struct Tlv {
    tag_size: usize,
    framing: Framing,
    on_unknown: OnUnknown,
    error_first: Vec<u8>,
    error_message: &'static str,
    records: Vec<Record>,
}

#[derive(Debug, Clone)]
enum Body {
    Fixed {
        fields: Vec<Field>,
        norm: Vec<usize>,
        /// Bytes the fields cover (furthest field end).
        span: usize,
        length: Option<usize>,
    },
    Tlv(Tlv),
}

/// A model compiled from a layout file.
#[derive(Debug, Clone)]
pub struct LayoutCodec {
    info: ModelInfo,
    fields: Fields,
    body: Body,
    payload_hex_key: Option<String>,
}

fn err(path: impl Into<String>, message: impl Into<String>) -> LayoutError {
    LayoutError {
        path: path.into(),
        message: message.into(),
    }
}

fn parse_order(s: &str, path: &str) -> Result<Order, LayoutError> {
    match s {
        "big" | "be" => Ok(Order::Big),
        "little" | "le" => Ok(Order::Little),
        other => Err(err(
            path,
            format!("byte order `{other}` is not one of \"big\", \"little\""),
        )),
    }
}

fn parse_keyed(
    map: &BTreeMap<String, String>,
    path: &str,
) -> Result<Vec<(i64, String)>, LayoutError> {
    map.iter()
        .map(|(k, v)| {
            let key = if let Some(h) = k.strip_prefix("0x") {
                i64::from_str_radix(h, 16)
            } else {
                k.parse::<i64>()
            };
            key.map(|k| (k, v.clone())).map_err(|_| {
                err(
                    path,
                    format!("key `{k}` is not an integer (decimal or 0x-hex)"),
                )
            })
        })
        .collect()
}

fn compile_field(f: &FieldSpec, default_order: Order, path: &str) -> Result<Field, LayoutError> {
    let need_len = |what: &str| -> Result<usize, LayoutError> {
        match f.len {
            Some(n) if n > 0 => Ok(n),
            _ => Err(err(
                format!("{path}.len"),
                format!("type `{what}` needs `len` (bytes, > 0)"),
            )),
        }
    };
    let ty = match f.ty.as_str() {
        "u8" => Ty::Uint(1),
        "s8" | "i8" => Ty::Sint(1),
        "u16" => Ty::Uint(2),
        "s16" | "i16" => Ty::Sint(2),
        "u24" => Ty::Uint(3),
        "s24" | "i24" => Ty::Sint(3),
        "u32" => Ty::Uint(4),
        "s32" | "i32" => Ty::Sint(4),
        "f32" => Ty::F32,
        "hex" | "bytes" => Ty::Hex(need_len("hex")?),
        "ascii" => Ty::Ascii(need_len("ascii")?),
        "const" => Ty::Const,
        other => {
            return Err(err(
                format!("{path}.type"),
                format!("unknown type `{other}`; use one of u8 s8 u16 s16 u24 s24 u32 s32 f32 hex ascii const"),
            ))
        }
    };
    let order = match &f.order {
        Some(o) => parse_order(o, &format!("{path}.order"))?,
        None => default_order,
    };
    let render = match f.render.as_deref() {
        None | Some("number") => {
            if f.enum_map.is_some() {
                Render::Enum
            } else {
                Render::Number
            }
        }
        Some("fixed") => Render::Fixed(f.digits.unwrap_or(2)),
        Some("enum") => Render::Enum,
        Some("bool") => Render::Bool,
        Some("string") => Render::Text,
        Some("hex") => Render::Text,
        Some("version:nibble") => Render::VersionNibble,
        Some("version:hex-nibble") => Render::VersionHexNibble,
        Some("version:hex-hex") => Render::VersionHexHex,
        Some("version:dec-dec") => Render::VersionDecDec,
        Some(other) => {
            return Err(err(
                format!("{path}.render"),
                format!(
                "unknown render `{other}`; use number, fixed, enum, bool, string, hex or version:*"
            ),
            ))
        }
    };
    if render == Render::Enum && f.enum_map.is_none() {
        return Err(err(
            format!("{path}.enum"),
            "render = \"enum\" needs an `enum` table",
        ));
    }
    if ty == Ty::Const && f.value.is_none() {
        return Err(err(
            format!("{path}.value"),
            "type = \"const\" needs a `value`",
        ));
    }
    if matches!(ty, Ty::Sint(_) | Ty::F32) && (f.mask.is_some() || f.shift.is_some()) {
        return Err(err(
            format!("{path}.mask"),
            "mask/shift apply to unsigned types only",
        ));
    }
    if let Some(d) = f.div {
        if d == 0.0 || !d.is_finite() {
            return Err(err(
                format!("{path}.div"),
                "div must be a finite non-zero number",
            ));
        }
    }
    let template = match &f.template {
        None => None,
        Some(t) => {
            let (a, b) = t.split_once("{}").ok_or_else(|| {
                err(
                    format!("{path}.template"),
                    "template must contain `{}` where the value goes",
                )
            })?;
            Some((a.to_string(), b.to_string()))
        }
    };
    let target = match &f.normalized {
        None => None,
        Some(n) => Some(Target::parse(n).ok_or_else(|| {
            err(
                format!("{path}.normalized"),
                format!(
                    "unknown normalized column `{n}`; use distance_mm, fill_pct_reported, temperature_c, battery_pct, battery_v, tilt, fire_alarm, latitude, longitude, measured_at_s or alarm.<flag>"
                ),
            )
        })?),
    };
    let path_keys: Vec<String> = f
        .name
        .as_deref()
        .map(|n| n.split('.').map(str::to_string).collect())
        .unwrap_or_default();
    if path_keys.iter().any(String::is_empty) {
        return Err(err(format!("{path}.name"), "empty key in dotted name"));
    }
    if path_keys.is_empty() && target.is_none() {
        return Err(err(
            path,
            "a field needs a `name`, a `normalized` target, or both",
        ));
    }
    Ok(Field {
        path: path_keys,
        at: f.at,
        ty,
        order,
        mask: f.mask,
        shift: f.shift.unwrap_or(0),
        mul: f.mul,
        div: f.div,
        add: f.add,
        round: f.round,
        render,
        template,
        enum_map: match &f.enum_map {
            Some(m) => parse_keyed(m, &format!("{path}.enum"))?,
            None => Vec::new(),
        },
        enum_default: f.enum_default.clone(),
        special: match &f.special {
            Some(m) => parse_keyed(m, &format!("{path}.special"))?,
            None => Vec::new(),
        },
        const_value: f.value.clone(),
        unit: f.unit.clone(),
        target,
        nscale: f.normalized_scale.unwrap_or(1.0),
        encode_default: f.encode_default,
    })
}

fn compile_fields(
    specs: &[FieldSpec],
    order: Order,
    prefix: &str,
) -> Result<(Vec<Field>, Vec<usize>, Fields), LayoutError> {
    let mut out = Vec::with_capacity(specs.len());
    let mut norm = Vec::new();
    let mut bits = 0u32;
    for (i, s) in specs.iter().enumerate() {
        let f = compile_field(s, order, &format!("{prefix}fields[{i}]"))?;
        if let Some(t) = f.target {
            norm.push(i);
            bits |= t.field_bit();
        }
        out.push(f);
    }
    Ok((out, norm, Fields(bits)))
}

impl LayoutCodec {
    /// Compile a user layout (run-time). Errors name the offending key.
    pub fn from_toml(text: &str) -> Result<Self, LayoutError> {
        let mut c = Self::compile(text)?;
        c.info.engine = "runtime-layout";
        Ok(c)
    }

    /// Compile a built-in layout.
    pub fn from_toml_builtin(text: &str) -> Result<Self, LayoutError> {
        Self::compile(text)
    }

    fn compile(text: &str) -> Result<Self, LayoutError> {
        let spec: Spec =
            toml::from_str(text).map_err(|e| err("", e.to_string().trim().to_string()))?;
        if spec.model.trim().is_empty()
            || !spec
                .model
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        {
            return Err(err(
                "model",
                "model name must be non-empty and use only letters, digits, '-', '_' or '.'",
            ));
        }
        let order = match &spec.byte_order {
            Some(o) => parse_order(o, "byte_order")?,
            None => Order::Big,
        };
        let mut fields_bits = 0u32;
        let body = match spec.format.as_str() {
            "fixed" => {
                if spec.tlv.is_some() || !spec.records.is_empty() {
                    return Err(err(
                        "format",
                        "a fixed layout takes `fields`, not `tlv`/`records`",
                    ));
                }
                if spec.fields.is_empty() {
                    return Err(err(
                        "fields",
                        "a fixed layout needs at least one [[fields]] entry",
                    ));
                }
                let (fields, norm, bits) = compile_fields(&spec.fields, order, "")?;
                fields_bits |= bits.0;
                let span = fields
                    .iter()
                    .map(|f| f.at + f.ty.width())
                    .max()
                    .unwrap_or(0);
                if let Some(l) = spec.length {
                    if l < span {
                        return Err(err(
                            "length",
                            format!("length {l} is shorter than the fields ({span} bytes)"),
                        ));
                    }
                }
                Body::Fixed {
                    fields,
                    norm,
                    span,
                    length: spec.length,
                }
            }
            "tlv" => {
                let t = spec
                    .tlv
                    .as_ref()
                    .ok_or_else(|| err("tlv", "a tlv layout needs a [tlv] table"))?;
                if !spec.fields.is_empty() {
                    return Err(err(
                        "fields",
                        "a tlv layout takes [[records]], not [[fields]]",
                    ));
                }
                let tag_size = match t.tag_size {
                    1 | 2 => usize::from(t.tag_size),
                    n => return Err(err("tlv.tag_size", format!("tag_size {n} is not 1 or 2"))),
                };
                let framing = match t.length.as_str() {
                    "implied" => Framing::Implied,
                    "prefix" => Framing::Prefix,
                    o => {
                        return Err(err(
                            "tlv.length",
                            format!("`{o}` is not \"implied\" or \"prefix\""),
                        ))
                    }
                };
                let on_unknown = match t.on_unknown.as_str() {
                    "stop" => OnUnknown::Stop,
                    "skip" if framing == Framing::Prefix => OnUnknown::Skip,
                    "skip" => return Err(err(
                        "tlv.on_unknown",
                        "\"skip\" needs length = \"prefix\" (an implied record cannot be skipped)",
                    )),
                    "error" => OnUnknown::Error,
                    o => {
                        return Err(err(
                            "tlv.on_unknown",
                            format!("`{o}` is not stop, skip or error"),
                        ))
                    }
                };
                if spec.records.is_empty() {
                    return Err(err(
                        "records",
                        "a tlv layout needs at least one [[records]] entry",
                    ));
                }
                let mut records = Vec::new();
                for (ri, r) in spec.records.iter().enumerate() {
                    let p = format!("records[{ri}].");
                    if tag_size == 1 && r.tag > 0xFF || r.tag > 0xFFFF {
                        return Err(err(
                            format!("{p}tag"),
                            format!("tag 0x{:x} does not fit in {tag_size} byte(s)", r.tag),
                        ));
                    }
                    if records.iter().any(|x: &Record| x.tag == r.tag) {
                        return Err(err(
                            format!("{p}tag"),
                            format!("tag 0x{:x} is defined twice", r.tag),
                        ));
                    }
                    let (fields, norm, bits) = compile_fields(&r.fields, order, &p)?;
                    if r.history.is_some() {
                        // History targets go to stored readings, not to the main columns.
                        fields_bits |= Fields::STORED;
                    } else {
                        fields_bits |= bits.0;
                    }
                    let span = fields
                        .iter()
                        .map(|f| f.at + f.ty.width())
                        .max()
                        .unwrap_or(0);
                    let size = r.size.unwrap_or(span);
                    if size < span {
                        return Err(err(
                            format!("{p}size"),
                            format!("size {size} is shorter than the fields ({span} bytes)"),
                        ));
                    }
                    records.push(Record {
                        tag: r.tag,
                        size,
                        fields,
                        norm,
                        history: r.history.clone(),
                        encode: r.encode,
                    });
                }
                let msg = t
                    .unknown_error_message
                    .clone()
                    .unwrap_or_else(|| "unknown record".into());
                Body::Tlv(Tlv {
                    tag_size,
                    framing,
                    on_unknown,
                    error_first: t.error_on_unknown_first_byte.clone(),
                    // Layouts live for the whole process (registry), so leaking the
                    // message once per compiled layout is bounded.
                    error_message: Box::leak(msg.into_boxed_str()),
                    records,
                })
            }
            other => {
                return Err(err(
                    "format",
                    format!("`{other}` is not \"fixed\" or \"tlv\""),
                ))
            }
        };
        let can_encode = match &body {
            Body::Fixed { .. } => true,
            Body::Tlv(t) => t.framing == Framing::Implied && t.records.iter().any(|r| r.encode),
        };
        Ok(LayoutCodec {
            info: ModelInfo {
                name: spec.model,
                vendor: spec.vendor,
                description: if spec.source.is_empty() {
                    spec.description
                } else {
                    format!("{} (source: {})", spec.description, spec.source)
                },
                fports: spec.fports,
                engine: "layout",
                can_encode,
            },
            fields: Fields(fields_bits),
            body,
            payload_hex_key: spec.payload_hex_key,
        })
    }

    fn find(t: &Tlv, tag: u32) -> Option<&Record> {
        t.records.iter().find(|r| r.tag == tag)
    }

    /// Decode a fixed-layout body into a vendor-native object (used by wrappers too).
    pub fn vendor_object(&self, p: &[u8]) -> DecodeResult<Value> {
        let mut obj = Value::Obj(Vec::new());
        match &self.body {
            Body::Fixed {
                fields,
                span,
                length,
                ..
            } => {
                check_fixed_len(p, fields, *span, *length)?;
                for f in fields {
                    if !f.path.is_empty() {
                        let v = f.native(p, 0)?;
                        set_path(&mut obj, &f.path, v);
                    }
                }
            }
            Body::Tlv(t) => {
                let mut i = 0;
                while i < p.len() {
                    let start = i;
                    let (tag, data_at, data_len, next) = read_tlv_head(t, p, i)?;
                    let Some(rec) = Self::find(t, tag) else {
                        let first = (tag >> (8 * (t.tag_size - 1))) as u8;
                        if t.on_unknown == OnUnknown::Error || t.error_first.contains(&first) {
                            return Err(DecodeError::new(
                                ErrorKind::VendorError {
                                    message: t.error_message,
                                },
                                start,
                            ));
                        }
                        if t.on_unknown == OnUnknown::Skip {
                            i = next;
                            continue;
                        }
                        break;
                    };
                    let size = if t.framing == Framing::Implied {
                        rec.size
                    } else {
                        data_len
                    };
                    bytes::take(p, data_at, size).map_err(|_| {
                        DecodeError::truncated(start, data_at - start + size, p.len() - start)
                    })?;
                    let data = &p[data_at..data_at + size];
                    match &rec.history {
                        None => {
                            for f in &rec.fields {
                                if !f.path.is_empty() {
                                    let v = f.native(data, 0)?;
                                    set_path(&mut obj, &f.path, v);
                                }
                            }
                        }
                        Some(h) => {
                            let mut item = Value::Obj(Vec::new());
                            for f in &rec.fields {
                                if !f.path.is_empty() {
                                    let v = f.native(data, 0)?;
                                    set_path(&mut item, &f.path, v);
                                }
                            }
                            push_history(&mut obj, h, item);
                        }
                    }
                    i = if t.framing == Framing::Implied {
                        data_at + size
                    } else {
                        next
                    };
                }
            }
        }
        if let Some(k) = &self.payload_hex_key {
            obj.set(k, Value::Str(bytes::hex_lower(p).to_ascii_uppercase()));
        }
        Ok(obj)
    }

    /// The normalized decode without the fPort check (for wrappers).
    #[inline]
    pub fn decode_body(&self, p: &[u8], out: &mut Reading) -> DecodeResult<()> {
        if p.is_empty() {
            return Err(DecodeError::new(ErrorKind::EmptyPayload, 0));
        }
        match &self.body {
            Body::Fixed {
                fields,
                norm,
                span,
                length,
            } => {
                check_fixed_len(p, fields, *span, *length)?;
                for &i in norm {
                    fields[i].normalize(p, 0, out)?;
                }
                Ok(())
            }
            Body::Tlv(t) => {
                let mut i = 0;
                while i < p.len() {
                    let start = i;
                    let (tag, data_at, data_len, next) = read_tlv_head(t, p, i)?;
                    let Some(rec) = Self::find(t, tag) else {
                        if t.framing == Framing::Prefix {
                            i = next;
                            continue;
                        }
                        return Err(DecodeError::new(ErrorKind::UnknownRecord { tag }, start));
                    };
                    let size = if t.framing == Framing::Implied {
                        rec.size
                    } else {
                        data_len
                    };
                    if p.len() < data_at + size {
                        return Err(DecodeError::truncated(
                            start,
                            data_at - start + size,
                            p.len() - start,
                        ));
                    }
                    let data = &p[data_at..data_at + size];
                    if rec.history.is_some() {
                        let mut tmp = Reading::default();
                        for &fi in &rec.norm {
                            rec.fields[fi].normalize(data, 0, &mut tmp)?;
                        }
                        out.stored.push(StoredReading {
                            measured_at_ms: tmp.measured_at_ms.unwrap_or(0),
                            distance_mm: tmp.distance_mm,
                            temperature_c: tmp.temperature_c,
                        });
                        out.alarm_flags |= alarm::STORED;
                    } else {
                        for &fi in &rec.norm {
                            rec.fields[fi].normalize(data, 0, out)?;
                        }
                    }
                    i = if t.framing == Framing::Implied {
                        data_at + size
                    } else {
                        next
                    };
                }
                Ok(())
            }
        }
    }

    /// Encode a reading with this layout (fixed: every field; TLV: the records
    /// marked `encode = true` whose targets the reading has).
    pub fn encode_body(&self, r: &Reading, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        match &self.body {
            Body::Fixed {
                fields,
                span,
                length,
                ..
            } => {
                let start = out.len();
                out.resize(start + length.unwrap_or(*span), 0);
                for f in fields {
                    let raw = f.encode_raw(r).or(f.encode_default);
                    if let Some(raw) = raw {
                        write_field(&mut out[start..], f, 0, raw)?;
                    }
                }
                Ok(())
            }
            Body::Tlv(t) if t.framing == Framing::Implied => {
                for rec in t.records.iter().filter(|r| r.encode) {
                    let raws: Vec<Option<i64>> =
                        rec.fields.iter().map(|f| f.encode_raw(r)).collect();
                    let has_all = rec.fields.iter().zip(&raws).all(|(f, v)| {
                        f.target.is_none() || v.is_some() || f.encode_default.is_some()
                    });
                    let has_any = rec.fields.iter().zip(&raws).any(|(f, v)| {
                        f.target.is_some() && v.is_some() && f.special.is_empty()
                            || matches!(f.target, Some(Target::Tilt | Target::Fire)) && v.is_some()
                    });
                    if !has_all || !has_any {
                        continue;
                    }
                    let tag = rec.tag.to_be_bytes();
                    out.extend_from_slice(&tag[4 - t.tag_size..]);
                    let start = out.len();
                    out.resize(start + rec.size, 0);
                    for (f, raw) in rec.fields.iter().zip(raws) {
                        if let Some(v) = raw.or(f.encode_default) {
                            write_field(&mut out[start..], f, 0, v)?;
                        }
                    }
                }
                Ok(())
            }
            Body::Tlv(_) => Err(EncodeError(format!(
                "model `{}`: prefix-framed TLV layouts have no encoder",
                self.info.name
            ))),
        }
    }
}

fn write_field(buf: &mut [u8], f: &Field, base: usize, raw: i64) -> Result<(), EncodeError> {
    let at = base + f.at;
    let n = match f.ty {
        Ty::Uint(n) | Ty::Sint(n) => n,
        Ty::F32 => {
            let bits = u64::from((raw as f32).to_bits());
            return put_uint(buf, at, 4, f.order, bits, u64::from(u32::MAX));
        }
        _ => return Ok(()),
    };
    let bits = (n * 8) as u32;
    let (lo, hi) = match f.ty {
        Ty::Sint(_) => (-(1i64 << (bits - 1)), (1i64 << (bits - 1)) - 1),
        _ => {
            let width = f
                .mask
                .map_or(bits, |m| (m >> f.shift).count_ones().min(bits));
            (0, ((1u128 << width) - 1) as i64)
        }
    };
    if raw < lo || raw > hi {
        return Err(EncodeError(format!(
            "value {raw} does not fit field at byte {at} (range {lo}..={hi})"
        )));
    }
    let mask = f.mask.unwrap_or(if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    });
    let word = ((raw as u64) << f.shift) & mask;
    put_uint(buf, at, n, f.order, word, mask)
}

fn put_uint(
    buf: &mut [u8],
    at: usize,
    n: usize,
    order: Order,
    word: u64,
    mask: u64,
) -> Result<(), EncodeError> {
    let dst = buf
        .get_mut(at..at + n)
        .ok_or_else(|| EncodeError(format!("field at byte {at} is outside the frame")))?;
    for (k, d) in dst.iter_mut().enumerate() {
        let shift = match order {
            Order::Big => 8 * (n - 1 - k),
            Order::Little => 8 * k,
        };
        let m = ((mask >> shift) & 0xFF) as u8;
        let b = ((word >> shift) & 0xFF) as u8;
        *d = (*d & !m) | (b & m);
    }
    Ok(())
}

fn check_fixed_len(
    p: &[u8],
    fields: &[Field],
    span: usize,
    length: Option<usize>,
) -> DecodeResult<()> {
    if p.is_empty() {
        return Err(DecodeError::new(ErrorKind::EmptyPayload, 0));
    }
    if p.len() < span {
        // The first field (by offset) that does not fit.
        let f = fields
            .iter()
            .filter(|f| f.at + f.ty.width() > p.len())
            .min_by_key(|f| f.at);
        if let Some(f) = f {
            return Err(DecodeError::truncated(
                f.at,
                f.ty.width(),
                p.len().saturating_sub(f.at),
            ));
        }
    }
    if let Some(l) = length {
        if p.len() > l {
            return Err(DecodeError::new(
                ErrorKind::LengthMismatch {
                    expected: l,
                    actual: p.len(),
                },
                l,
            ));
        }
        if p.len() < l {
            return Err(DecodeError::truncated(p.len(), l - p.len(), 0));
        }
    }
    Ok(())
}

/// Read a TLV head at `i`: (tag, data offset, data length for prefix framing, next).
#[inline]
fn read_tlv_head(t: &Tlv, p: &[u8], i: usize) -> DecodeResult<(u32, usize, usize, usize)> {
    match t.framing {
        Framing::Implied => {
            let tag = bytes::uint(p, i, t.tag_size, Order::Big)
                .map_err(|_| DecodeError::truncated(i, t.tag_size, p.len() - i))?
                as u32;
            Ok((tag, i + t.tag_size, 0, 0))
        }
        Framing::Prefix => {
            let len = usize::from(bytes::u8_at(p, i)?);
            if len < t.tag_size {
                return Err(DecodeError::new(
                    ErrorKind::InvalidValue {
                        what: "TLV length shorter than its tag",
                    },
                    i,
                ));
            }
            if p.len() < i + 1 + len {
                return Err(DecodeError::truncated(i, 1 + len, p.len() - i));
            }
            let tag = bytes::uint(p, i + 1, t.tag_size, Order::Big)? as u32;
            Ok((tag, i + 1 + t.tag_size, len - t.tag_size, i + 1 + len))
        }
    }
}

/// Set a (possibly nested) key, creating intermediate objects like JS does.
fn set_path(obj: &mut Value, path: &[String], v: Value) {
    match path {
        [] => {}
        [k] => obj.set(k, v),
        [k, rest @ ..] => {
            if !matches!(obj.get(k), Some(Value::Obj(_))) {
                obj.set(k, Value::Obj(Vec::new()));
            }
            if let Value::Obj(entries) = obj {
                if let Some((_, child)) = entries.iter_mut().find(|(key, _)| key == k) {
                    set_path(child, rest, v);
                }
            }
        }
    }
}

fn push_history(obj: &mut Value, key: &str, item: Value) {
    if !matches!(obj.get(key), Some(Value::Arr(_))) {
        obj.set(key, Value::Arr(Vec::new()));
    }
    if let Value::Obj(entries) = obj {
        if let Some((_, Value::Arr(a))) = entries.iter_mut().find(|(k, _)| k == key) {
            a.push(item);
        }
    }
}

impl Codec for LayoutCodec {
    fn info(&self) -> &ModelInfo {
        &self.info
    }
    fn fields(&self) -> Fields {
        self.fields
    }
    fn decode_vendor(&self, payload: &[u8], fport: Option<u8>) -> DecodeResult<Value> {
        check_fport(&self.info, fport)?;
        self.vendor_object(payload)
    }
    #[inline]
    fn decode(&self, payload: &[u8], fport: Option<u8>, out: &mut Reading) -> DecodeResult<()> {
        check_fport(&self.info, fport)?;
        self.decode_body(payload, out)
    }
    fn encode(&self, reading: &Reading, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        self.encode_body(reading, out)
    }
    fn decode_batch(&self, batch: &dyn PayloadSource, fports: &FportSource) -> ReadingColumns {
        self.decode_batch_with(self, &self.info, batch, fports, plan::Guard::All)
    }
}

/// The units a layout declares per vendor key (for docs).
pub fn field_units(c: &LayoutCodec) -> Vec<(String, String)> {
    let mut v = Vec::new();
    let mut add = |fs: &[Field]| {
        for f in fs {
            if let (false, Some(u)) = (f.path.is_empty(), &f.unit) {
                v.push((f.path.join("."), u.clone()));
            }
        }
    };
    match &c.body {
        Body::Fixed { fields, .. } => add(fields),
        Body::Tlv(t) => {
            for r in &t.records {
                add(&r.fields);
            }
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEMO: &str = r#"
model = "acme-demo"
format = "fixed"
byte_order = "big"
fports = [2]
[[fields]]
name = "Bat"
at = 0
type = "u16"
mask = 0x3fff
div = 1000
normalized = "battery_v"
[[fields]]
name = "Distance"
at = 2
type = "u16"
template = "{} mm"
special = { "0" = "No Sensor" }
normalized = "distance_mm"
"#;

    #[test]
    fn fixed_layout_decodes_and_encodes() {
        let c = LayoutCodec::from_toml(DEMO).unwrap();
        let p = [0x0D, 0x3B, 0x0A, 0xEF];
        let v = c.decode_vendor(&p, Some(2)).unwrap();
        assert_eq!(v.to_json(), r#"{"Bat":3.387,"Distance":"2799 mm"}"#);
        let mut r = Reading::default();
        c.decode(&p, Some(2), &mut r).unwrap();
        assert_eq!(r.battery_v, Some(3.387));
        assert_eq!(r.distance_mm, Some(2799.0));
        let mut out = Vec::new();
        c.encode(&r, &mut out).unwrap();
        assert_eq!(out, p);
        // Truncation names the field that does not fit.
        let e = c.decode(&p[..3], Some(2), &mut r).unwrap_err();
        assert_eq!(e.offset, 2);
        assert_eq!(e.kind.name(), "truncated");
        let e = c.decode(&p, Some(3), &mut r).unwrap_err();
        assert_eq!(e.kind.name(), "unknown_fport");
        let v = c.decode_vendor(&[0x0D, 0x3B, 0, 0], Some(2)).unwrap();
        assert_eq!(v.get("Distance"), Some(&Value::Str("No Sensor".into())));
    }

    #[test]
    fn layout_errors_name_the_key() {
        let bad = DEMO.replace("type = \"u16\"\nmask", "type = \"u17\"\nmask");
        let e = LayoutCodec::from_toml(&bad).unwrap_err();
        assert_eq!(e.path, "fields[0].type");
        assert!(e.message.contains("u17"));
        let e = LayoutCodec::from_toml("model = \"x\"\nformat = \"fixed\"\nbogus = 1").unwrap_err();
        assert!(e.to_string().contains("bogus"), "{e}");
        let e = LayoutCodec::from_toml(&DEMO.replace("battery_v", "battery_volts")).unwrap_err();
        assert_eq!(e.path, "fields[0].normalized");
    }
}
