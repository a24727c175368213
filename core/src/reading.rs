//! The normalized reading: one schema shared by every model, filled by every codec,
//! and the columnar builders that turn a batch of readings into Arrow-ready buffers
//! (values + validity bitmaps, no Arrow dependency in the core).

use crate::error::DecodeError;

/// Bits of the `alarm_flags` column (stable API, documented in docs/SCHEMAS.md).
pub mod alarm {
    /// The container is reported full (level threshold / "full" alarm).
    pub const FULL: u16 = 1 << 0;
    /// Fire: temperature threshold or a fire alarm bit.
    pub const FIRE: u16 = 1 << 1;
    /// The sensor is tilted, fallen or was moved.
    pub const TILT: u16 = 1 << 2;
    /// Low battery.
    pub const LOW_BATTERY: u16 = 1 << 3;
    /// A temperature threshold alarm (vendor-configured).
    pub const TEMPERATURE_THRESHOLD: u16 = 1 << 4;
    /// A distance threshold alarm (vendor-configured).
    pub const DISTANCE_THRESHOLD: u16 = 1 << 5;
    /// The uplink was triggered by an interrupt / event, not the periodic schedule.
    pub const INTERRUPT: u16 = 1 << 6;
    /// The probe is absent or gave no valid echo (distance is then null).
    pub const NO_SENSOR: u16 = 1 << 7;
    /// The lid was open during the measurement (tid1).
    pub const LID_OPEN: u16 = 1 << 8;
    /// The frame carries stored readings sent after an outage.
    pub const STORED: u16 = 1 << 9;

    /// (bit, name) pairs, in bit order.
    pub const NAMES: &[(u16, &str)] = &[
        (FULL, "full"),
        (FIRE, "fire"),
        (TILT, "tilt"),
        (LOW_BATTERY, "low_battery"),
        (TEMPERATURE_THRESHOLD, "temperature_threshold"),
        (DISTANCE_THRESHOLD, "distance_threshold"),
        (INTERRUPT, "interrupt"),
        (NO_SENSOR, "no_sensor"),
        (LID_OPEN, "lid_open"),
        (STORED, "stored"),
    ];

    /// Look a flag up by name.
    pub fn by_name(name: &str) -> Option<u16> {
        NAMES.iter().find(|(_, n)| *n == name).map(|(b, _)| *b)
    }
}

/// A reading stored by the device and sent later (after a network outage).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct StoredReading {
    /// Device-side time, milliseconds since the Unix epoch (UTC).
    pub measured_at_ms: i64,
    pub distance_mm: Option<f64>,
    pub temperature_c: Option<f64>,
}

/// One decoded frame in physical units. `None` means "not in this frame".
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Reading {
    /// Distance from the sensor to the surface of the content, millimetres.
    pub distance_mm: Option<f64>,
    /// Fill level computed by the sensor itself, percent (0 = empty).
    pub fill_pct_reported: Option<f64>,
    /// Temperature, degrees Celsius.
    pub temperature_c: Option<f64>,
    /// Battery level, percent.
    pub battery_pct: Option<f64>,
    /// Battery voltage, volts.
    pub battery_v: Option<f64>,
    /// Sensor tilted / fallen.
    pub tilt: Option<bool>,
    /// Fire alarm (temperature threshold or explicit fire bit).
    pub fire_alarm: Option<bool>,
    /// Bitmask of [`alarm`] flags.
    pub alarm_flags: u16,
    /// Device-side measurement time of the main reading, ms since the Unix epoch.
    pub measured_at_ms: Option<i64>,
    /// WGS84 latitude, degrees (GPS-equipped sensors).
    pub latitude: Option<f64>,
    /// WGS84 longitude, degrees.
    pub longitude: Option<f64>,
    /// Readings stored during an outage, oldest first.
    pub stored: Vec<StoredReading>,
}

impl Reading {
    /// Reset for reuse without giving back the `stored` allocation.
    pub fn clear(&mut self) {
        let mut stored = std::mem::take(&mut self.stored);
        stored.clear();
        *self = Reading {
            stored,
            ..Reading::default()
        };
    }
}

/// Which normalized columns a codec can fill; the others are returned as all-null
/// columns without allocating per-row buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Fields(pub u32);

impl Fields {
    pub const DISTANCE: u32 = 1 << 0;
    pub const FILL: u32 = 1 << 1;
    pub const TEMPERATURE: u32 = 1 << 2;
    pub const BATTERY_PCT: u32 = 1 << 3;
    pub const BATTERY_V: u32 = 1 << 4;
    pub const TILT: u32 = 1 << 5;
    pub const FIRE: u32 = 1 << 6;
    pub const MEASURED_AT: u32 = 1 << 7;
    pub const LOCATION: u32 = 1 << 8;
    pub const STORED: u32 = 1 << 9;
    pub const ALL: u32 = (1 << 10) - 1;

    pub fn has(self, bit: u32) -> bool {
        self.0 & bit != 0
    }
}

/// A growable bitmap in Arrow's LSB-first bit order.
#[derive(Debug, Clone, Default)]
pub struct Bitmap {
    pub bytes: Vec<u8>,
    pub len: usize,
}

impl Bitmap {
    pub fn with_capacity(bits: usize) -> Self {
        Bitmap {
            bytes: Vec::with_capacity(bits.div_ceil(8)),
            len: 0,
        }
    }
    #[inline]
    pub fn push(&mut self, bit: bool) {
        if self.len % 8 == 0 {
            self.bytes.push(0);
        }
        if bit {
            if let Some(last) = self.bytes.last_mut() {
                *last |= 1 << (self.len % 8);
            }
        }
        self.len += 1;
    }
    pub fn get(&self, i: usize) -> bool {
        self.bytes.get(i / 8).is_some_and(|b| b & (1 << (i % 8)) != 0)
    }
}

/// A nullable primitive column: values plus a validity bitmap (dropped when no nulls).
#[derive(Debug, Clone, Default)]
pub struct PrimCol<T> {
    pub values: Vec<T>,
    pub validity: Bitmap,
    pub null_count: usize,
}

impl<T: Copy + Default> PrimCol<T> {
    pub fn with_capacity(n: usize) -> Self {
        PrimCol {
            values: Vec::with_capacity(n),
            validity: Bitmap::with_capacity(n),
            null_count: 0,
        }
    }
    #[inline]
    pub fn push(&mut self, v: Option<T>) {
        match v {
            Some(x) => {
                self.values.push(x);
                self.validity.push(true);
            }
            None => {
                self.values.push(T::default());
                self.validity.push(false);
                self.null_count += 1;
            }
        }
    }
    pub fn get(&self, i: usize) -> Option<T> {
        if self.validity.get(i) {
            self.values.get(i).copied()
        } else {
            None
        }
    }
}

/// A nullable boolean column (bit-packed values and validity).
#[derive(Debug, Clone, Default)]
pub struct BoolCol {
    pub values: Bitmap,
    pub validity: Bitmap,
    pub null_count: usize,
}

impl BoolCol {
    pub fn with_capacity(n: usize) -> Self {
        BoolCol {
            values: Bitmap::with_capacity(n),
            validity: Bitmap::with_capacity(n),
            null_count: 0,
        }
    }
    #[inline]
    pub fn push(&mut self, v: Option<bool>) {
        self.values.push(v.unwrap_or(false));
        self.validity.push(v.is_some());
        if v.is_none() {
            self.null_count += 1;
        }
    }
    pub fn get(&self, i: usize) -> Option<bool> {
        if self.validity.get(i) {
            Some(self.values.get(i))
        } else {
            None
        }
    }
}

/// A nullable UTF-8 column with i32 offsets.
#[derive(Debug, Clone, Default)]
pub struct StrCol {
    pub offsets: Vec<i32>,
    pub data: Vec<u8>,
    pub validity: Bitmap,
    pub null_count: usize,
}

impl StrCol {
    pub fn with_capacity(n: usize) -> Self {
        let mut offsets = Vec::with_capacity(n + 1);
        offsets.push(0);
        StrCol {
            offsets,
            data: Vec::new(),
            validity: Bitmap::with_capacity(n),
            null_count: 0,
        }
    }
    #[inline]
    pub fn push(&mut self, v: Option<&str>) {
        if let Some(s) = v {
            self.data.extend_from_slice(s.as_bytes());
        } else {
            self.null_count += 1;
        }
        self.validity.push(v.is_some());
        // Offsets stay within i32: error strings are short and batches bounded.
        self.offsets.push(i32::try_from(self.data.len()).unwrap_or(i32::MAX));
    }
    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn get(&self, i: usize) -> Option<&str> {
        if !self.validity.get(i) {
            return None;
        }
        let a = usize::try_from(*self.offsets.get(i)?).ok()?;
        let b = usize::try_from(*self.offsets.get(i + 1)?).ok()?;
        std::str::from_utf8(self.data.get(a..b)?).ok()
    }
}

/// The stored-readings list column: list offsets into flat child columns.
#[derive(Debug, Clone, Default)]
pub struct StoredCol {
    pub offsets: Vec<i32>,
    pub validity: Bitmap,
    pub null_count: usize,
    pub measured_at_ms: Vec<i64>,
    pub distance_mm: PrimCol<f64>,
    pub temperature_c: PrimCol<f64>,
}

/// Columns of a decoded batch. Columns a model cannot fill are `None` (all null).
#[derive(Debug, Clone, Default)]
pub struct ReadingColumns {
    pub len: usize,
    pub ok: Bitmap,
    pub distance_mm: Option<PrimCol<f64>>,
    pub fill_pct_reported: Option<PrimCol<f64>>,
    pub temperature_c: Option<PrimCol<f64>>,
    pub battery_pct: Option<PrimCol<f64>>,
    pub battery_v: Option<PrimCol<f64>>,
    pub tilt: Option<BoolCol>,
    pub fire_alarm: Option<BoolCol>,
    pub alarm_flags: PrimCol<u16>,
    pub measured_at_ms: Option<PrimCol<i64>>,
    pub latitude: Option<PrimCol<f64>>,
    pub longitude: Option<PrimCol<f64>>,
    pub stored: Option<StoredCol>,
    pub error: StrCol,
    pub error_kind: StrCol,
    pub error_offset: PrimCol<i32>,
    pub error_count: usize,
}

fn opt_col<T: Copy + Default>(on: bool, n: usize) -> Option<PrimCol<T>> {
    on.then(|| PrimCol::with_capacity(n))
}

impl ReadingColumns {
    /// Builders for `n` rows, allocating only the columns in `fields`.
    pub fn new(n: usize, fields: Fields) -> Self {
        let f = |b| fields.has(b);
        ReadingColumns {
            len: 0,
            ok: Bitmap::with_capacity(n),
            distance_mm: opt_col(f(Fields::DISTANCE), n),
            fill_pct_reported: opt_col(f(Fields::FILL), n),
            temperature_c: opt_col(f(Fields::TEMPERATURE), n),
            battery_pct: opt_col(f(Fields::BATTERY_PCT), n),
            battery_v: opt_col(f(Fields::BATTERY_V), n),
            tilt: f(Fields::TILT).then(|| BoolCol::with_capacity(n)),
            fire_alarm: f(Fields::FIRE).then(|| BoolCol::with_capacity(n)),
            alarm_flags: PrimCol::with_capacity(n),
            measured_at_ms: opt_col(f(Fields::MEASURED_AT), n),
            latitude: opt_col(f(Fields::LOCATION), n),
            longitude: opt_col(f(Fields::LOCATION), n),
            stored: f(Fields::STORED).then(|| StoredCol {
                offsets: vec![0],
                ..StoredCol::default()
            }),
            error: StrCol::with_capacity(n),
            error_kind: StrCol::with_capacity(n),
            error_offset: PrimCol::with_capacity(n),
            error_count: 0,
        }
    }

    /// Append a successfully decoded reading.
    #[inline]
    pub fn push_ok(&mut self, r: &Reading) {
        self.len += 1;
        self.ok.push(true);
        macro_rules! put {
            ($col:ident, $v:expr) => {
                if let Some(c) = self.$col.as_mut() {
                    c.push($v);
                }
            };
        }
        put!(distance_mm, r.distance_mm);
        put!(fill_pct_reported, r.fill_pct_reported);
        put!(temperature_c, r.temperature_c);
        put!(battery_pct, r.battery_pct);
        put!(battery_v, r.battery_v);
        put!(tilt, r.tilt);
        put!(fire_alarm, r.fire_alarm);
        put!(measured_at_ms, r.measured_at_ms);
        put!(latitude, r.latitude);
        put!(longitude, r.longitude);
        self.alarm_flags.push(Some(r.alarm_flags));
        if let Some(s) = self.stored.as_mut() {
            for sr in &r.stored {
                s.measured_at_ms.push(sr.measured_at_ms);
                s.distance_mm.push(sr.distance_mm);
                s.temperature_c.push(sr.temperature_c);
            }
            s.offsets
                .push(i32::try_from(s.measured_at_ms.len()).unwrap_or(i32::MAX));
            s.validity.push(true);
        }
        self.error.push(None);
        self.error_kind.push(None);
        self.error_offset.push(None);
    }

    /// Append an error row: every value column null, `ok = false`, error filled.
    pub fn push_err(&mut self, e: &DecodeError) {
        self.len += 1;
        self.error_count += 1;
        self.ok.push(false);
        macro_rules! null {
            ($($col:ident),*) => { $( if let Some(c) = self.$col.as_mut() { c.push(None); } )* };
        }
        null!(
            distance_mm,
            fill_pct_reported,
            temperature_c,
            battery_pct,
            battery_v,
            tilt,
            fire_alarm,
            measured_at_ms,
            latitude,
            longitude
        );
        self.alarm_flags.push(None);
        if let Some(s) = self.stored.as_mut() {
            s.offsets
                .push(i32::try_from(s.measured_at_ms.len()).unwrap_or(i32::MAX));
            s.validity.push(false);
            s.null_count += 1;
        }
        self.error.push(Some(&e.to_string()));
        self.error_kind.push(Some(e.kind.name()));
        self.error_offset
            .push(Some(i32::try_from(e.offset).unwrap_or(i32::MAX)));
    }
}
