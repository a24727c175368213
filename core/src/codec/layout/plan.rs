//! The columnar batch path of the layout engine.
//!
//! A layout is interpreted once per batch *per field*, not once per frame: a
//! [`Shape`] is a frame layout with every normalized field at a fixed offset (a fixed
//! layout as written; a TLV layout's record sequence taken from a sample frame of
//! the batch, with its tag / length bytes as a signature). The batch is walked in
//! chunks of [`CHUNK`] rows: one pass finds the rows that have the shape (length,
//! signature bytes, fPort, the wrapper's guard), then each field runs one tight,
//! monomorphised loop over the chunk (read, mask / sign, the vendor's arithmetic)
//! writing straight into the preallocated column slices and validity words. Rows
//! without the shape (other record sequences, truncated or null frames, bad fPorts)
//! go through the per-frame path afterwards, which overwrites every cell of those
//! rows, so the values the field loops computed for them never show.
//!
//! The arithmetic is [`Field::scale`] itself, in the vendor's order, so results are
//! bit-identical to the per-frame path (tested in `tests` below and by the Python
//! property tests).

use super::{Body, Field, Framing, LayoutCodec, Target, Tlv, Ty};
use crate::codec::bytes::Order;
use crate::codec::{
    check_fport, decode_rows, Codec, FlatView, FportSource, ModelInfo, PayloadSource,
};
use crate::reading::{alarm, chunk_col, ChunkCols, ReadingColumns, CHUNK, CHUNK_WORDS};

/// One normalized field at a fixed offset of the frame.
#[derive(Debug, Clone)]
struct Op {
    at: usize,
    field: Field,
}

/// A frame layout every field of which is at a fixed offset.
#[derive(Debug, Clone)]
pub struct Shape {
    /// Frames must be exactly this long (`exact`) or at least this long.
    len: usize,
    exact: bool,
    /// (8-byte word index, mask, expected bits): the tag / length bytes.
    sig: Vec<(usize, u64, u64)>,
    ops: Vec<Op>,
}

impl Shape {
    /// A fixed layout: fields where the layout puts them.
    pub(super) fn fixed(
        fields: &[Field],
        norm: &[usize],
        span: usize,
        length: Option<usize>,
    ) -> Shape {
        Shape {
            len: length.unwrap_or(span).max(1),
            exact: length.is_some(),
            sig: Vec::new(),
            ops: norm
                .iter()
                .filter_map(|&i| fields.get(i))
                .filter(|f| !has_no_effect(f))
                .map(|f| Op {
                    at: f.at,
                    field: f.clone(),
                })
                .collect(),
        }
    }

    /// The record sequence of one TLV frame as a shape; `None` when the frame is not
    /// one the per-frame path decodes without error or has history records.
    pub(super) fn tlv(t: &Tlv, p: &[u8]) -> Option<Shape> {
        if p.is_empty() {
            return None;
        }
        let mut sig: Vec<(usize, u8)> = Vec::new();
        let mut ops = Vec::new();
        let mut i = 0;
        while i < p.len() {
            let (tag_at, data_at, next_prefix, data_len) = match t.framing {
                Framing::Implied => (i, i + t.tag_size, 0, 0),
                Framing::Prefix => {
                    let len = usize::from(*p.get(i)?);
                    if len < t.tag_size || p.len() < i + 1 + len {
                        return None;
                    }
                    sig.push((i, p[i]));
                    (i + 1, i + 1 + t.tag_size, i + 1 + len, len - t.tag_size)
                }
            };
            let tag_bytes = p.get(tag_at..tag_at + t.tag_size)?;
            let mut tag = 0u32;
            for (k, &b) in tag_bytes.iter().enumerate() {
                tag = (tag << 8) | u32::from(b);
                sig.push((tag_at + k, b));
            }
            let Some(rec) = LayoutCodec::find(t, tag) else {
                if t.framing == Framing::Prefix {
                    i = next_prefix;
                    continue;
                }
                return None;
            };
            if rec.history.is_some() {
                return None;
            }
            let size = if t.framing == Framing::Implied {
                rec.size
            } else {
                data_len
            };
            if p.len() < data_at + size {
                return None;
            }
            for &fi in &rec.norm {
                let f = rec.fields.get(fi)?;
                if f.at + f.ty.width() > size {
                    return None;
                }
                if !has_no_effect(f) {
                    ops.push(Op {
                        at: data_at + f.at,
                        field: f.clone(),
                    });
                }
            }
            i = if t.framing == Framing::Implied {
                data_at + size
            } else {
                next_prefix
            };
        }
        let mut words: Vec<(usize, u64, u64)> = Vec::new();
        for (pos, b) in sig {
            let (w, sh) = (pos / 8, 8 * (pos % 8));
            match words.iter_mut().find(|x| x.0 == w) {
                Some(x) => {
                    x.1 |= 0xFF << sh;
                    x.2 |= u64::from(b) << sh;
                }
                None => words.push((w, 0xFF << sh, u64::from(b) << sh)),
            }
        }
        Some(Shape {
            len: p.len(),
            exact: true,
            sig: words,
            ops,
        })
    }

    /// Does the frame at `data[s .. s + len]` have this shape?
    #[inline]
    fn matches(&self, data: &[u8], s: usize, len: usize) -> bool {
        if len == usize::MAX
            || if self.exact {
                len != self.len
            } else {
                len < self.len
            }
        {
            return false;
        }
        self.sig
            .iter()
            .all(|&(w, mask, want)| word_at(data, s + 8 * w) & mask == want)
    }
}

/// Byte-string fields feed no column (the per-frame path only checks they fit,
/// which the shape guarantees).
fn has_no_effect(f: &Field) -> bool {
    matches!(f.ty, Ty::Hex(_) | Ty::Ascii(_))
}

/// Little-endian 8 bytes at `at` (zero past the end of `data`).
#[inline]
fn word_at(data: &[u8], at: usize) -> u64 {
    match data.get(at..at + 8) {
        Some(s) => {
            let mut a = [0u8; 8];
            a.copy_from_slice(s);
            u64::from_le_bytes(a)
        }
        None => {
            let mut a = [0u8; 8];
            for (k, x) in a.iter_mut().enumerate() {
                *x = data.get(at + k).copied().unwrap_or(0);
            }
            u64::from_le_bytes(a)
        }
    }
}

/// Unsigned `W`-byte read at `at` (0 when out of bounds: only for rows that are
/// not fast-path rows, whose cells are overwritten afterwards).
#[inline(always)]
fn read<const W: usize, const BE: bool>(data: &[u8], at: usize) -> u64 {
    let Some(s) = data.get(at..at + W) else {
        return 0;
    };
    match (W, BE) {
        (1, _) => u64::from(s[0]),
        (2, true) => u64::from(u16::from_be_bytes([s[0], s[1]])),
        (2, false) => u64::from(u16::from_le_bytes([s[0], s[1]])),
        (4, true) => u64::from(u32::from_be_bytes([s[0], s[1], s[2], s[3]])),
        (4, false) => u64::from(u32::from_le_bytes([s[0], s[1], s[2], s[3]])),
        _ => {
            let mut v = 0u64;
            for k in 0..W {
                let b = if BE { s[k] } else { s[W - 1 - k] };
                v = (v << 8) | u64::from(b);
            }
            v
        }
    }
}

fn read_loop<const W: usize, const BE: bool>(
    data: &[u8],
    starts: &[usize],
    at: usize,
    raw: &mut [u64],
) {
    for (r, &s) in raw.iter_mut().zip(starts) {
        *r = read::<W, BE>(data, s + at);
    }
}

/// Raw integers of one field over a chunk: unsigned after mask and shift, signed
/// sign-extended (as `i64` bits), f32 as its bits.
fn read_raw(f: &Field, data: &[u8], starts: &[usize], at: usize, raw: &mut [u64]) {
    let (w, be) = match f.ty {
        Ty::Uint(n) | Ty::Sint(n) => (n, f.order == Order::Big),
        Ty::F32 => (4, f.order == Order::Big),
        Ty::Hex(_) | Ty::Ascii(_) | Ty::Const => {
            raw.fill(0);
            return;
        }
    };
    match (w, be) {
        (1, _) => read_loop::<1, true>(data, starts, at, raw),
        (2, true) => read_loop::<2, true>(data, starts, at, raw),
        (2, false) => read_loop::<2, false>(data, starts, at, raw),
        (3, true) => read_loop::<3, true>(data, starts, at, raw),
        (3, false) => read_loop::<3, false>(data, starts, at, raw),
        (4, true) => read_loop::<4, true>(data, starts, at, raw),
        (4, false) => read_loop::<4, false>(data, starts, at, raw),
        _ => {
            // Widths are 1..=4 by construction (compile_field).
            for (r, &s) in raw.iter_mut().zip(starts) {
                *r = crate::codec::bytes::uint(data, s + at, w, f.order).unwrap_or(0);
            }
        }
    }
    match f.ty {
        Ty::Uint(_) => {
            if let Some(m) = f.mask {
                raw.iter_mut().for_each(|r| *r &= m);
            }
            if f.shift != 0 {
                let sh = f.shift.min(63);
                raw.iter_mut().for_each(|r| *r >>= sh);
            }
        }
        Ty::Sint(n) => {
            let bits = (n * 8) as u32;
            raw.iter_mut()
                .for_each(|r| *r = crate::codec::bytes::sign_extend(*r, bits) as u64);
        }
        _ => {}
    }
}

/// Apply one op to a chunk: `put(row in chunk, normalized value, raw non-zero)` for
/// every row the op sets, alarm flags into `flags`, validity into `valid`.
/// `scale` is [`Field::scale`] (or an equivalent specialisation of it).
#[inline(always)]
fn apply<S: Fn(f64) -> f64, V: FnMut(usize, f64, bool)>(
    f: &Field,
    raw: &[u64],
    flags: &mut [u16],
    valid: &mut [u64; CHUNK_WORDS],
    scale: S,
    mut put: V,
) {
    let float = f.ty == Ty::F32;
    let has_special = !f.special.is_empty();
    let set_bit = match f.target {
        Some(Target::Tilt) => alarm::TILT,
        Some(Target::Fire) => alarm::FIRE,
        Some(Target::Alarm(b)) => b,
        _ => 0,
    };
    let nscale = f.nscale;
    if !float && !has_special {
        // Every row is set: whole validity words, then a loop LLVM can vectorise.
        let m = raw.len();
        for (j, w) in valid.iter_mut().enumerate() {
            let rows = m.saturating_sub(64 * j).min(64);
            *w |= if rows == 64 {
                u64::MAX
            } else {
                (1u64 << rows) - 1
            };
        }
        if set_bit != 0 {
            for (&r, fl) in raw.iter().zip(flags.iter_mut()) {
                *fl |= set_bit * u16::from(r != 0);
            }
        }
        for (k, &r) in raw.iter().enumerate() {
            put(k, scale(r as i64 as f64) * nscale, r != 0);
        }
        return;
    }
    for (k, (&r, fl)) in raw.iter().zip(flags.iter_mut()).enumerate() {
        // The per-frame `Field::normalize`, row by row, minus the reads.
        let (value, nonzero) = if float {
            let v = scale(f64::from(f32::from_bits(r as u32)));
            (v, v != 0.0)
        } else {
            let i = r as i64;
            if has_special && f.special.iter().any(|(x, _)| *x == i) {
                *fl |= alarm::NO_SENSOR;
                continue;
            }
            (scale(i as f64), i != 0)
        };
        valid[k / 64] |= 1 << (k % 64);
        if nonzero {
            *fl |= set_bit;
        }
        put(k, value * nscale, nonzero);
    }
}

/// [`apply`] with the field's arithmetic specialised for the common forms (same
/// operations in the same order as [`Field::scale`], so bit-identical).
#[inline(always)]
fn apply_scaled<V: FnMut(usize, f64, bool)>(
    f: &Field,
    raw: &[u64],
    flags: &mut [u16],
    valid: &mut [u64; CHUNK_WORDS],
    put: V,
) {
    match (f.mul, f.div, f.add, f.round) {
        (None, None, None, None) => apply(f, raw, flags, valid, |x| x, put),
        (None, Some(d), None, None) => apply(f, raw, flags, valid, move |x| x / d, put),
        (Some(m), None, None, None) => apply(f, raw, flags, valid, move |x| x * m, put),
        _ => apply(f, raw, flags, valid, |x| f.scale(x), put),
    }
}

/// Run one op over the chunk's `raw.len()` rows.
fn run_op(f: &Field, raw: &[u64], c: &mut ChunkCols) {
    let Some(t) = f.target else { return };
    let m = raw.len();
    let flags = &mut c.alarm_flags[..m];
    macro_rules! f64_col {
        ($col:ident, $idx:expr) => {{
            let vals = &mut c.$col;
            apply_scaled(f, raw, flags, &mut c.valid[$idx], |k, v, _| vals[k] = v)
        }};
    }
    match t {
        Target::Distance => f64_col!(distance_mm, chunk_col::DISTANCE),
        Target::Fill => f64_col!(fill_pct_reported, chunk_col::FILL),
        Target::Temperature => f64_col!(temperature_c, chunk_col::TEMPERATURE),
        Target::BatteryPct => f64_col!(battery_pct, chunk_col::BATTERY_PCT),
        Target::BatteryV => f64_col!(battery_v, chunk_col::BATTERY_V),
        Target::Latitude => f64_col!(latitude, chunk_col::LATITUDE),
        Target::Longitude => f64_col!(longitude, chunk_col::LONGITUDE),
        Target::MeasuredAtS => {
            let vals = &mut c.measured_at_ms;
            apply_scaled(
                f,
                raw,
                flags,
                &mut c.valid[chunk_col::MEASURED_AT],
                |k, v, _| vals[k] = (v * 1000.0) as i64,
            )
        }
        Target::Tilt | Target::Fire => {
            let (bits, idx) = if t == Target::Tilt {
                (&mut c.tilt, chunk_col::TILT)
            } else {
                (&mut c.fire_alarm, chunk_col::FIRE)
            };
            // A later op on the same column overrides an earlier one's value.
            apply_scaled(f, raw, flags, &mut c.valid[idx], |k, _, nz| {
                let (j, b) = (k / 64, 1u64 << (k % 64));
                bits[j] = if nz { bits[j] | b } else { bits[j] & !b };
            })
        }
        Target::Alarm(_) => {
            let mut unused = [0; CHUNK_WORDS];
            apply_scaled(f, raw, flags, &mut unused, |_, _, _| {})
        }
    }
}

impl LayoutCodec {
    /// The shape rows of this batch are matched against: the fixed layout, or the
    /// record sequence of the first of the batch's first frames that decodes.
    fn batch_shape(&self, flat: &FlatView<'_>) -> Option<Shape> {
        match &self.body {
            Body::Fixed {
                fields,
                norm,
                span,
                length,
            } => Some(Shape::fixed(fields, norm, *span, *length)),
            Body::Tlv(t) => {
                let n = flat.len().min(16);
                let (mut starts, mut lens) = (vec![0; n], vec![0; n]);
                flat.ranges(0, &mut starts, &mut lens);
                starts
                    .iter()
                    .zip(&lens)
                    .filter(|(_, &l)| l != usize::MAX)
                    .find_map(|(&s, &l)| Shape::tlv(t, flat.data.get(s..s + l)?))
            }
        }
    }

    /// Decode a batch with the columnar fast path for the rows that have the batch's
    /// shape and pass `guard`, and `codec`'s per-frame decode for the others.
    /// `codec` is this layout or a wrapper around it whose `decode` is this layout's
    /// for frames that pass `guard`; `info` is the fPort list to check.
    pub fn decode_batch_with<C: Codec + ?Sized>(
        &self,
        codec: &C,
        info: &ModelInfo,
        batch: &dyn PayloadSource,
        fports: &FportSource,
        guard: impl Fn(&[u8]) -> bool,
    ) -> ReadingColumns {
        let n = batch.len();
        let per_frame = || {
            let mut cols = ReadingColumns::new(n, codec.fields());
            decode_rows(codec, batch, fports, 0..n, &mut cols);
            cols.finish()
        };
        let fport_ok = match fports {
            FportSource::None => true,
            FportSource::All(f) => check_fport(info, *f).is_ok(),
            FportSource::PerRow(_) => true,
        };
        let (flat, shape) = match (fport_ok, batch.flat()) {
            (true, Some(flat)) => match self.batch_shape(&flat) {
                Some(s) => (flat, s),
                None => return per_frame(),
            },
            _ => return per_frame(),
        };
        let per_row_fports = matches!(fports, FportSource::PerRow(_));
        let data = flat.data;
        let mut cols = ReadingColumns::for_chunks(n, codec.fields());
        let mut slow: Vec<usize> = Vec::new();
        let mut starts = [0usize; CHUNK];
        let mut lens = [0usize; CHUNK];
        let mut raw = [0u64; CHUNK];
        let mut chunk = Box::<ChunkCols>::default();
        let mut r0 = 0;
        while r0 < n {
            let m = CHUNK.min(n - r0);
            flat.ranges(r0, &mut starts[..m], &mut lens[..m]);
            for k in 0..m {
                let (s, l) = (starts[k], lens[k]);
                let mut fast = shape.matches(data, s, l) && data.get(s..s + l).is_some_and(&guard);
                if fast && per_row_fports {
                    fast = fports
                        .get(r0 + k)
                        .is_ok_and(|fp| check_fport(info, fp).is_ok());
                }
                if !fast {
                    slow.push(r0 + k);
                }
            }
            chunk.reset(m);
            for op in &shape.ops {
                read_raw(&op.field, data, &starts[..m], op.at, &mut raw[..m]);
                run_op(&op.field, &raw[..m], &mut chunk);
            }
            cols.push_chunk(&chunk, m);
            r0 += m;
        }
        // Rows without the shape: the per-frame path rewrites every cell of them.
        decode_rows(codec, batch, fports, slow, &mut cols);
        cols.finish()
    }
}
