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
        if self.len.is_multiple_of(8) {
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
        self.bytes
            .get(i / 8)
            .is_some_and(|b| b & (1 << (i % 8)) != 0)
    }

    /// `bits` bits, all 0 (zeroed allocation: the pages are not touched until written).
    pub fn zeros(bits: usize) -> Self {
        Bitmap {
            bytes: vec![0; bits.div_ceil(8)],
            len: bits,
        }
    }

    /// `bits` bits, all 1 (the bits past `bits` in the last byte stay 0).
    pub fn ones(bits: usize) -> Self {
        let mut bytes = vec![0xFF; bits.div_ceil(8)];
        if !bits.is_multiple_of(8) {
            if let Some(last) = bytes.last_mut() {
                *last = (1u8 << (bits % 8)) - 1;
            }
        }
        Bitmap { bytes, len: bits }
    }

    /// Set bit `i` to `bit` (no-op past the end).
    #[inline]
    pub fn assign(&mut self, i: usize, bit: bool) {
        if let Some(b) = self.bytes.get_mut(i / 8) {
            let m = 1u8 << (i % 8);
            *b = if bit { *b | m } else { *b & !m };
        }
    }

    /// OR 64 bits into the bitmap starting at bit `at` (a multiple of 64); bits past
    /// the end are dropped (the caller never sets bits past `len`).
    #[inline]
    pub fn or_word(&mut self, at: usize, word: u64) {
        let a = at / 8;
        let end = (a + 8).min(self.bytes.len());
        if let Some(dst) = self.bytes.get_mut(a..end) {
            for (d, s) in dst.iter_mut().zip(word.to_le_bytes()) {
                *d |= s;
            }
        }
    }

    /// For the 64 bits from bit `at` (a multiple of 64): set the `set` bits, clear
    /// the `clear` bits.
    #[inline]
    pub fn merge_word(&mut self, at: usize, set: u64, clear: u64) {
        if set == 0 && clear == 0 {
            return;
        }
        let a = at / 8;
        let end = (a + 8).min(self.bytes.len());
        if let Some(dst) = self.bytes.get_mut(a..end) {
            for ((d, s), c) in dst
                .iter_mut()
                .zip(set.to_le_bytes())
                .zip(clear.to_le_bytes())
            {
                *d = (*d & !c) | s;
            }
        }
    }

    /// Number of set bits among the first `len`.
    pub fn count_ones(&self) -> usize {
        let full = self.len / 8;
        let mut c: usize = self.bytes.get(..full).map_or(0, |b| {
            let mut words = b.chunks_exact(8);
            let mut c = 0usize;
            for w in &mut words {
                let mut a = [0u8; 8];
                a.copy_from_slice(w);
                c += u64::from_le_bytes(a).count_ones() as usize;
            }
            c + words
                .remainder()
                .iter()
                .map(|x| x.count_ones() as usize)
                .sum::<usize>()
        });
        if !self.len.is_multiple_of(8) {
            let m = (1u8 << (self.len % 8)) - 1;
            c += self
                .bytes
                .get(full)
                .map_or(0, |b| (b & m).count_ones() as usize);
        }
        c
    }
}

/// A nullable primitive column: values plus a validity bitmap (dropped when no nulls).
#[derive(Debug, Clone, Default)]
pub struct PrimCol<T> {
    pub values: Vec<T>,
    pub validity: Bitmap,
    pub null_count: usize,
}

/// An empty `Vec` with room for `n` values. On Linux, buffers of 4 MiB and more are
/// advised to use transparent huge pages before their first touch, as numpy does for
/// its own large arrays (and `routes::matrix::alloc_matrix`): a 2-million-row batch
/// writes ~16 MB per column, which in fresh 4 KiB pages costs ~4,000 page faults per
/// column, more than the decode itself.
pub fn vec_for<T>(n: usize) -> Vec<T> {
    let v: Vec<T> = Vec::with_capacity(n);
    crate::mem::advise_huge_pages(v.as_ptr(), v.capacity() * std::mem::size_of::<T>());
    v
}

impl<T: Copy + Default> PrimCol<T> {
    pub fn with_capacity(n: usize) -> Self {
        PrimCol {
            values: vec_for(n),
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
        self.offsets
            .push(i32::try_from(self.data.len()).unwrap_or(i32::MAX));
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

/// A nullable primitive column of `n` rows written by index (values and validity
/// preallocated, all null until set); `finish` counts the nulls.
impl<T: Copy + Default> PrimCol<T> {
    /// `n` null rows (zeroed values: no page is touched until written).
    pub fn nulls(n: usize) -> Self {
        PrimCol {
            values: vec![T::default(); n],
            validity: Bitmap::zeros(n),
            null_count: n,
        }
    }
    /// Row `i` = `v` (None = null).
    #[inline]
    pub fn set(&mut self, i: usize, v: Option<T>) {
        if let Some(slot) = self.values.get_mut(i) {
            *slot = v.unwrap_or_default();
        }
        self.validity.assign(i, v.is_some());
    }
    fn finish(&mut self) {
        self.null_count = self.validity.len - self.validity.count_ones();
    }
}

impl BoolCol {
    /// `n` null rows.
    pub fn nulls(n: usize) -> Self {
        BoolCol {
            values: Bitmap::zeros(n),
            validity: Bitmap::zeros(n),
            null_count: n,
        }
    }
    /// Row `i` = `v` (None = null).
    #[inline]
    pub fn set(&mut self, i: usize, v: Option<bool>) {
        self.values.assign(i, v.unwrap_or(false));
        self.validity.assign(i, v.is_some());
    }
    fn finish(&mut self) {
        self.null_count = self.validity.len - self.validity.count_ones();
    }
}

/// Columns of a decoded batch of `len` rows, preallocated and written by row index
/// (the batch decoders write whole chunks of a column at once, the per-frame path one
/// row at a time). Columns a model cannot fill are `None` (all null, no buffers).
/// Errors are kept sparse (`errors`, in row order) and the three error columns are
/// only built by [`ReadingColumns::finish`] when there is at least one error.
#[derive(Debug, Clone, Default)]
pub struct ReadingColumns {
    pub len: usize,
    /// All 1 until a row fails.
    pub ok: Bitmap,
    pub distance_mm: Option<PrimCol<f64>>,
    pub fill_pct_reported: Option<PrimCol<f64>>,
    pub temperature_c: Option<PrimCol<f64>>,
    pub battery_pct: Option<PrimCol<f64>>,
    pub battery_v: Option<PrimCol<f64>>,
    pub tilt: Option<BoolCol>,
    pub fire_alarm: Option<BoolCol>,
    /// Valid exactly on the ok rows (set by `finish`).
    pub alarm_flags: PrimCol<u16>,
    pub measured_at_ms: Option<PrimCol<i64>>,
    pub latitude: Option<PrimCol<f64>>,
    pub longitude: Option<PrimCol<f64>>,
    /// Built by `finish` from `stored_rows`; valid on the ok rows.
    pub stored: Option<StoredCol>,
    /// (row, stored-reading count) of the rows that carry stored readings, in row
    /// order; their readings are appended to `stored`'s child columns in that order.
    stored_rows: Vec<(usize, usize)>,
    /// (row, error), in row order.
    pub errors: Vec<(usize, DecodeError)>,
    /// Built by `finish`; `None` when no row failed (all null).
    pub error: Option<StrCol>,
    pub error_kind: Option<StrCol>,
    pub error_offset: Option<PrimCol<i32>>,
    pub error_count: usize,
}

fn opt_col<T: Copy + Default>(on: bool, n: usize) -> Option<PrimCol<T>> {
    on.then(|| PrimCol::nulls(n))
}

impl ReadingColumns {
    /// `n` rows, allocating only the columns in `fields`.
    pub fn new(n: usize, fields: Fields) -> Self {
        let f = |b| fields.has(b);
        ReadingColumns {
            len: n,
            ok: Bitmap::ones(n),
            distance_mm: opt_col(f(Fields::DISTANCE), n),
            fill_pct_reported: opt_col(f(Fields::FILL), n),
            temperature_c: opt_col(f(Fields::TEMPERATURE), n),
            battery_pct: opt_col(f(Fields::BATTERY_PCT), n),
            battery_v: opt_col(f(Fields::BATTERY_V), n),
            tilt: f(Fields::TILT).then(|| BoolCol::nulls(n)),
            fire_alarm: f(Fields::FIRE).then(|| BoolCol::nulls(n)),
            alarm_flags: PrimCol::nulls(n),
            measured_at_ms: opt_col(f(Fields::MEASURED_AT), n),
            latitude: opt_col(f(Fields::LOCATION), n),
            longitude: opt_col(f(Fields::LOCATION), n),
            stored: f(Fields::STORED).then(StoredCol::default),
            stored_rows: Vec::new(),
            errors: Vec::new(),
            error: None,
            error_kind: None,
            error_offset: None,
            error_count: 0,
        }
    }

    /// Row `i` (rows must be set in increasing order when they carry stored readings)
    /// = a successfully decoded reading; every column of the row is written.
    #[inline]
    pub fn set_ok(&mut self, i: usize, r: &Reading) {
        macro_rules! put {
            ($col:ident, $v:expr) => {
                if let Some(c) = self.$col.as_mut() {
                    c.set(i, $v);
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
        if let Some(slot) = self.alarm_flags.values.get_mut(i) {
            *slot = r.alarm_flags;
        }
        if let Some(s) = self.stored.as_mut() {
            if !r.stored.is_empty() {
                for sr in &r.stored {
                    s.measured_at_ms.push(sr.measured_at_ms);
                    s.distance_mm.push(sr.distance_mm);
                    s.temperature_c.push(sr.temperature_c);
                }
                self.stored_rows.push((i, r.stored.len()));
            }
        }
    }

    /// Row `i` failed: `ok = false`, every value column null, the error recorded.
    /// Rows must fail in increasing order.
    pub fn set_err(&mut self, i: usize, e: DecodeError) {
        self.ok.assign(i, false);
        self.errors.push((i, e));
    }

    /// Count nulls, null the failed rows, build the stored-readings offsets and (when
    /// a row failed) the error columns.
    pub fn finish(mut self) -> Self {
        let n = self.len;
        self.error_count = self.errors.len();
        for &(i, _) in &self.errors {
            macro_rules! null {
                ($($col:ident),*) => { $( if let Some(c) = self.$col.as_mut() { c.set(i, None); } )* };
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
            if let Some(slot) = self.alarm_flags.values.get_mut(i) {
                *slot = 0;
            }
        }
        macro_rules! fin {
            ($($col:ident),*) => { $( if let Some(c) = self.$col.as_mut() { c.finish(); } )* };
        }
        fin!(
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
        self.alarm_flags.validity = self.ok.clone();
        self.alarm_flags.null_count = self.error_count;
        if let Some(s) = self.stored.as_mut() {
            let mut offsets = vec![0i32; n + 1];
            let mut total = 0usize;
            let mut next = self.stored_rows.iter().peekable();
            for (i, o) in offsets.iter_mut().skip(1).enumerate() {
                if let Some(&&(row, count)) = next.peek() {
                    if row == i {
                        total += count;
                        next.next();
                    }
                }
                // Child lengths stay within i32: at most 32 stored readings per frame.
                *o = i32::try_from(total).unwrap_or(i32::MAX);
            }
            s.offsets = offsets;
            s.validity = self.ok.clone();
            s.null_count = self.error_count;
        }
        if !self.errors.is_empty() {
            let mut error = StrCol::with_capacity(n);
            let mut kind = StrCol::with_capacity(n);
            let mut offset = PrimCol::with_capacity(n);
            let mut next = self.errors.iter().peekable();
            for i in 0..n {
                match next.peek() {
                    Some(&&(row, ref e)) if row == i => {
                        error.push(Some(&e.to_string()));
                        kind.push(Some(e.kind.name()));
                        offset.push(Some(i32::try_from(e.offset).unwrap_or(i32::MAX)));
                        next.next();
                    }
                    _ => {
                        error.push(None);
                        kind.push(None);
                        offset.push(None);
                    }
                }
            }
            self.error = Some(error);
            self.error_kind = Some(kind);
            self.error_offset = Some(offset);
        }
        self
    }
}

/// Rows per chunk of the columnar batch paths (a multiple of 64).
///
/// 64, not more: a chunk writes each of its value columns in one burst of vector
/// stores, and in a batch beyond the caches every output line written is a miss.
/// With 256-row chunks (2 KiB, 32 lines per f64 column, three or four columns in a
/// row) the bursts outnumbered the store buffer's entries and the core stalled on
/// the misses instead of computing; a 64-row chunk's ~30 output lines fit, so their
/// misses overlap with the next chunk's arithmetic, as the stores of a
/// one-pass-per-row loop do. Figures (1 M frames: ldds75 ~5.0 -> ~4.1 ns/frame) and
/// the price in cache (5-9 % at 50 k frames for ldds75 / em310) in docs/LAYOUTS.md.
pub const CHUNK: usize = 64;
/// Validity words per chunk.
pub const CHUNK_WORDS: usize = CHUNK / 64;

/// One chunk of every column, filled by a columnar batch path and appended to a
/// [`ReadingColumns`] made by [`ReadingColumns::for_chunks`] (so the column buffers
/// are written once, never zeroed first). Validity / boolean words start at 0 for
/// each chunk ([`ChunkCols::reset`]); values are only read where valid.
#[derive(Clone)]
pub struct ChunkCols {
    pub distance_mm: [f64; CHUNK],
    pub fill_pct_reported: [f64; CHUNK],
    pub temperature_c: [f64; CHUNK],
    pub battery_pct: [f64; CHUNK],
    pub battery_v: [f64; CHUNK],
    pub latitude: [f64; CHUNK],
    pub longitude: [f64; CHUNK],
    pub measured_at_ms: [i64; CHUNK],
    pub alarm_flags: [u16; CHUNK],
    /// Validity words, in the order of the fields above (f64 columns, then
    /// measured_at), then tilt and fire_alarm.
    pub valid: [[u64; CHUNK_WORDS]; 10],
    pub tilt: [u64; CHUNK_WORDS],
    pub fire_alarm: [u64; CHUNK_WORDS],
}

/// Indices into [`ChunkCols::valid`].
pub mod chunk_col {
    pub const DISTANCE: usize = 0;
    pub const FILL: usize = 1;
    pub const TEMPERATURE: usize = 2;
    pub const BATTERY_PCT: usize = 3;
    pub const BATTERY_V: usize = 4;
    pub const LATITUDE: usize = 5;
    pub const LONGITUDE: usize = 6;
    pub const MEASURED_AT: usize = 7;
    pub const TILT: usize = 8;
    pub const FIRE: usize = 9;
}

impl Default for ChunkCols {
    fn default() -> Self {
        ChunkCols {
            distance_mm: [0.0; CHUNK],
            fill_pct_reported: [0.0; CHUNK],
            temperature_c: [0.0; CHUNK],
            battery_pct: [0.0; CHUNK],
            battery_v: [0.0; CHUNK],
            latitude: [0.0; CHUNK],
            longitude: [0.0; CHUNK],
            measured_at_ms: [0; CHUNK],
            alarm_flags: [0; CHUNK],
            valid: [[0; CHUNK_WORDS]; 10],
            tilt: [0; CHUNK_WORDS],
            fire_alarm: [0; CHUNK_WORDS],
        }
    }
}

impl ChunkCols {
    /// Start a chunk: every row null, no flags.
    #[inline]
    pub fn reset(&mut self, m: usize) {
        self.valid = [[0; CHUNK_WORDS]; 10];
        self.tilt = [0; CHUNK_WORDS];
        self.fire_alarm = [0; CHUNK_WORDS];
        if let Some(f) = self.alarm_flags.get_mut(..m) {
            f.fill(0);
        }
    }
}

/// Append `m` rows' worth of bits from `words` (byte-aligned: the bitmap's length is
/// a multiple of [`CHUNK`] before every chunk but the last).
fn push_words(b: &mut Bitmap, words: &[u64; CHUNK_WORDS], m: usize) {
    let nbytes = m.div_ceil(8);
    let mut bytes = [0u8; CHUNK / 8];
    for (dst, w) in bytes.chunks_exact_mut(8).zip(words) {
        dst.copy_from_slice(&w.to_le_bytes());
    }
    if !m.is_multiple_of(8) {
        // Bits past the last row stay 0.
        bytes[nbytes - 1] &= (1u8 << (m % 8)) - 1;
    }
    b.bytes.extend_from_slice(&bytes[..nbytes]);
    b.len += m;
}

impl ReadingColumns {
    /// `n` rows to be filled chunk by chunk with [`ReadingColumns::push_chunk`]
    /// (capacity reserved, nothing written yet), then row by row for the rows the
    /// chunks did not cover.
    pub fn for_chunks(n: usize, fields: Fields) -> Self {
        let f = |b| fields.has(b);
        let col = |on: bool| on.then(|| PrimCol::with_capacity(n));
        let bools = |on: bool| on.then(|| BoolCol::with_capacity(n));
        ReadingColumns {
            len: n,
            ok: Bitmap::ones(n),
            distance_mm: col(f(Fields::DISTANCE)),
            fill_pct_reported: col(f(Fields::FILL)),
            temperature_c: col(f(Fields::TEMPERATURE)),
            battery_pct: col(f(Fields::BATTERY_PCT)),
            battery_v: col(f(Fields::BATTERY_V)),
            tilt: bools(f(Fields::TILT)),
            fire_alarm: bools(f(Fields::FIRE)),
            alarm_flags: PrimCol::with_capacity(n),
            measured_at_ms: f(Fields::MEASURED_AT).then(|| PrimCol::with_capacity(n)),
            latitude: col(f(Fields::LOCATION)),
            longitude: col(f(Fields::LOCATION)),
            stored: f(Fields::STORED).then(StoredCol::default),
            ..ReadingColumns::default()
        }
    }

    /// Append the next `m` rows from a chunk.
    pub fn push_chunk(&mut self, c: &ChunkCols, m: usize) {
        for (col, vals) in [
            (&mut self.distance_mm, &c.distance_mm),
            (&mut self.fill_pct_reported, &c.fill_pct_reported),
            (&mut self.temperature_c, &c.temperature_c),
            (&mut self.battery_pct, &c.battery_pct),
            (&mut self.battery_v, &c.battery_v),
            (&mut self.latitude, &c.latitude),
            (&mut self.longitude, &c.longitude),
        ] {
            if let Some(col) = col.as_mut() {
                col.values.extend_from_slice(&vals[..m]);
            }
        }
        if let Some(col) = self.measured_at_ms.as_mut() {
            col.values.extend_from_slice(&c.measured_at_ms[..m]);
        }
        self.alarm_flags
            .values
            .extend_from_slice(&c.alarm_flags[..m]);
        self.push_chunk_bits(c, m);
    }

    /// Append the next `m` rows' validity and boolean words from a chunk whose values
    /// were written straight into the columns (by a columnar path that extends each
    /// value column by `m` rows itself); a value column the chunk did not write (still
    /// `m` rows short) is padded with default values, which its validity marks null.
    pub fn push_chunk_bits(&mut self, c: &ChunkCols, m: usize) {
        use chunk_col as k;
        fn bits<T: Copy + Default>(
            col: &mut Option<PrimCol<T>>,
            words: &[u64; CHUNK_WORDS],
            m: usize,
        ) {
            if let Some(col) = col.as_mut() {
                let want = col.validity.len + m;
                if col.values.len() < want {
                    col.values.resize(want, T::default());
                }
                push_words(&mut col.validity, words, m);
            }
        }
        bits(&mut self.distance_mm, &c.valid[k::DISTANCE], m);
        bits(&mut self.fill_pct_reported, &c.valid[k::FILL], m);
        bits(&mut self.temperature_c, &c.valid[k::TEMPERATURE], m);
        bits(&mut self.battery_pct, &c.valid[k::BATTERY_PCT], m);
        bits(&mut self.battery_v, &c.valid[k::BATTERY_V], m);
        bits(&mut self.latitude, &c.valid[k::LATITUDE], m);
        bits(&mut self.longitude, &c.valid[k::LONGITUDE], m);
        bits(&mut self.measured_at_ms, &c.valid[k::MEASURED_AT], m);
        for (col, vals, valid) in [
            (&mut self.tilt, &c.tilt, &c.valid[k::TILT]),
            (&mut self.fire_alarm, &c.fire_alarm, &c.valid[k::FIRE]),
        ] {
            if let Some(b) = col.as_mut() {
                push_words(&mut b.values, vals, m);
                push_words(&mut b.validity, valid, m);
            }
        }
    }
}
