//! The columnar batch path of the layout engine.
//!
//! A layout is interpreted once per batch *per field*, not once per frame: a
//! [`Shape`] is a frame layout with every normalized field at a fixed offset (a fixed
//! layout as written; a TLV layout's record sequence taken from a sample frame of
//! the batch, with its tag / length bytes as a signature). Each field's read is
//! compiled once into an [`Op`] (its bytes' row word and bit position, or a per-row
//! gather; mask, shift, sign extension; special values as raw bit patterns). The
//! batch is walked in chunks of [`CHUNK`] rows: the first [`WORDS`] 8-byte words of
//! every row are loaded once, the rows that have the shape (length, signature words,
//! fPort, the wrapper's guard) are found column by column, then each field runs two
//! branch-free loops over the chunk that LLVM vectorises: its raw integers (cut out
//! of the row words, mask / shift / sign), then one fused loop for the value (the
//! vendor's arithmetic), specials as a mask, alarm flags and the values written
//! straight into the output column (appended by the first op on the column in the
//! chunk, with ordinary stores: [`CHUNK`] is small enough that one chunk's output
//! stores fit the store buffer, so their cache misses overlap with the next chunk's
//! arithmetic), plus the validity words. The next chunk's bytes are prefetched while
//! a chunk is computed. The pass is compiled three times, for the baseline target,
//! AVX2 and AVX-512 (picked at run time). Rows without the shape (other record sequences,
//! truncated or null frames, bad fPorts) go through the per-frame path afterwards,
//! which overwrites every cell of those rows, so the values the field loops computed
//! for them never show.
//!
//! The arithmetic is the operations of [`Field::scale`] in the vendor's order (with
//! exact identities for the absent ones), or `Field::scale` itself row by row for
//! rounding and f32 fields, so results are bit-identical to the per-frame path
//! (`core/tests/codec_props.rs` and the Python property tests check it).

use super::{Body, Field, Framing, LayoutCodec, Target, Tlv, Ty};
use crate::codec::bytes::Order;
use crate::codec::{
    check_fport, decode_rows, Codec, FlatView, FportSource, ModelInfo, PayloadSource,
};
use crate::reading::{alarm, chunk_col, ChunkCols, ReadingColumns, CHUNK, CHUNK_WORDS};

/// One normalized field at a fixed offset of the frame, with its read compiled:
/// `raw = (((bytes & mask) >> rshift) << sx) as i32 >> sx` (unsigned: mask and
/// shift; signed: sign extension from `8 * width` bits; widths are 1..=4).
#[derive(Debug, Clone)]
struct Op {
    at: usize,
    field: Field,
    width: usize,
    be: bool,
    mask: u32,
    rshift: u32,
    sx: u32,
    signed: bool,
    float: bool,
    /// The field's special raw values as `raw` bit patterns (values `raw` cannot
    /// hold can never match and are left out).
    special: Vec<u32>,
    src: Src,
}

/// Where an op's bytes are read from.
#[derive(Debug, Clone, Copy)]
enum Src {
    /// No bytes (a constant field: raw 0).
    Zero,
    /// Inside row word `word` (see [`RowWords`]), from bit `shift`.
    Word { word: usize, shift: u32 },
    /// Read per row at `at`.
    Gather,
}

impl Op {
    fn new(at: usize, field: &Field) -> Op {
        let (width, signed, float) = match field.ty {
            Ty::Uint(n) => (n.min(4), false, false),
            Ty::Sint(n) => (n.min(4), true, false),
            Ty::F32 => (4, false, true),
            Ty::Hex(_) | Ty::Ascii(_) | Ty::Const => (0, false, false),
        };
        let (mut mask, mut rshift, mut sx) = (u32::MAX, 0, 0);
        if let Ty::Uint(_) = field.ty {
            // Values are below 2^32 (widths 1..=4, compile_field): the mask's low 32
            // bits are all that matter, and a shift of 32 or more leaves 0.
            mask = field.mask.map_or(u32::MAX, |m| m as u32);
            if field.shift >= 32 {
                mask = 0;
            } else {
                rshift = field.shift;
            }
        }
        if signed {
            sx = 32 - 8 * width as u32;
        }
        let special = if float {
            Vec::new()
        } else {
            field
                .special
                .iter()
                .filter_map(|&(k, _)| {
                    if signed {
                        i32::try_from(k).ok().map(|v| v as u32)
                    } else {
                        u32::try_from(k).ok()
                    }
                })
                .collect()
        };
        let src = if width == 0 {
            Src::Zero
        } else if at / 8 < WORDS && at % 8 + width <= 8 {
            Src::Word {
                word: at / 8,
                shift: 8 * (at % 8) as u32,
            }
        } else {
            Src::Gather
        };
        Op {
            at,
            field: field.clone(),
            width,
            be: field.order == Order::Big,
            mask,
            rshift,
            sx,
            signed,
            float,
            special,
            src,
        }
    }
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
                .map(|f| Op::new(f.at, f))
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
                    ops.push(Op::new(data_at + f.at, f));
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
}

/// Byte-string fields feed no column (the per-frame path only checks they fit,
/// which the shape guarantees).
fn has_no_effect(f: &Field) -> bool {
    matches!(f.ty, Ty::Hex(_) | Ty::Ascii(_))
}

/// Little-endian 8 bytes at `at` (zero past the end of `data`).
#[inline(always)]
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

/// The first `nw` row words of `m` rows of `len` bytes each (a multiple of 8, at
/// least `8 * nw`) lying back to back in `rows` (`m * len` bytes).
#[inline(always)]
fn load_tiled(rows: &[u8], len: usize, nw: usize, words: &mut RowWords, m: usize) {
    let le = |b: &[u8]| {
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        u64::from_le_bytes(a)
    };
    if len == 8 {
        // One word per row (the LDDS75 frame): a straight copy of 8-byte words.
        if nw == 1 {
            for (x, r) in words[0][..m].iter_mut().zip(rows.chunks_exact(8)) {
                *x = le(r);
            }
        }
        return;
    }
    for (wi, ws) in words.iter_mut().enumerate().take(nw) {
        for (x, r) in ws[..m].iter_mut().zip(rows.chunks_exact(len)) {
            *x = r.get(8 * wi..8 * wi + 8).map_or(0, le);
        }
    }
}

/// Unsigned `W`-byte read at `at` (0 when out of bounds: only for rows that are
/// not fast-path rows, whose cells are overwritten afterwards).
#[inline(always)]
fn read<const W: usize, const BE: bool>(data: &[u8], at: usize) -> u32 {
    let Some(s) = data.get(at..at + W) else {
        return 0;
    };
    let mut v = 0u32;
    for k in 0..W {
        let b = if BE { s[k] } else { s[W - 1 - k] };
        v = (v << 8) | u32::from(b);
    }
    v
}

#[inline(always)]
fn read_loop<const W: usize, const BE: bool>(
    data: &[u8],
    starts: &[usize],
    at: usize,
    raw: &mut [u32],
) {
    for (r, &s) in raw.iter_mut().zip(starts) {
        *r = read::<W, BE>(data, s + at);
    }
}

/// The first [`WORDS`] 8-byte words of every row of a chunk (little-endian; bytes
/// past the end of `data` read as 0), loaded once per row: the signature checks and
/// every field inside one word then run as vectorisable loops over these arrays
/// instead of one gather per field.
const WORDS: usize = 4;
type RowWords = [[u64; CHUNK]; WORDS];

/// Raw integers of one op over a chunk: masked and shifted if unsigned,
/// sign-extended to 32 bits if signed, the bits if f32. One loop per source.
#[inline(always)]
fn read_raw(op: &Op, data: &[u8], starts: &[usize], words: &RowWords, raw: &mut [u32]) {
    let w = op.width;
    let (mask, rsh, sx) = (op.mask, op.rshift, op.sx);
    let post = |v: u32| ((((v & mask) >> rsh) << sx) as i32 >> sx) as u32;
    match op.src {
        Src::Zero => raw.fill(0),
        Src::Word { word, shift } => {
            let ws = &words[word % WORDS][..raw.len()];
            let be = op.be;
            let down = 32 - 8 * w as u32;
            let keep = u32::MAX >> down;
            for (r, &x) in raw.iter_mut().zip(ws) {
                let y = (x >> shift) as u32;
                *r = post(if be { y.swap_bytes() >> down } else { y & keep });
            }
        }
        Src::Gather => {
            match (w, op.be) {
                (1, _) => read_loop::<1, true>(data, starts, op.at, raw),
                (2, true) => read_loop::<2, true>(data, starts, op.at, raw),
                (2, false) => read_loop::<2, false>(data, starts, op.at, raw),
                (3, true) => read_loop::<3, true>(data, starts, op.at, raw),
                (3, false) => read_loop::<3, false>(data, starts, op.at, raw),
                (4, true) => read_loop::<4, true>(data, starts, op.at, raw),
                _ => read_loop::<4, false>(data, starts, op.at, raw),
            }
            for r in raw.iter_mut() {
                *r = post(*r);
            }
        }
    }
}

/// The alarm bit an op sets when its raw value is non-zero.
fn set_bit(f: &Field) -> u16 {
    match f.target {
        Some(Target::Tilt) => alarm::TILT,
        Some(Target::Fire) => alarm::FIRE,
        Some(Target::Alarm(b)) => b,
        _ => 0,
    }
}

/// An integer raw value as `f64` (exact: `raw` holds a `u32`, or an `i32` when
/// `signed`), branch-free so that the column loops vectorise.
#[inline(always)]
fn int_value(r: u32, unsigned: u32) -> f64 {
    f64::from(r as i32) + f64::from((r >> 31) & unsigned) * 4_294_967_296.0
}

/// Where an f64 op writes its chunk of values.
enum Dst<'a> {
    /// Append the chunk's rows to the column (the first op on it in this chunk): the
    /// values go straight into the output buffer, written once.
    Append(&'a mut Vec<f64>),
    /// Overwrite the chunk's rows (a later op on the same column, or a scratch
    /// chunk): special-value rows keep what was there.
    Over(&'a mut [f64]),
}

/// Apply one op to a chunk, row by row, exactly as the per-frame
/// `Field::normalize` (minus the reads): for f32 fields, rounding, or many special
/// values. `put(row in chunk, normalized value, raw non-zero, skip)`; `skip` rows
/// (special values) set no value.
#[inline(always)]
fn apply_rows<V: FnMut(usize, f64, bool, bool)>(
    op: &Op,
    raw: &[u32],
    flags: &mut [u16],
    valid: &mut [u64; CHUNK_WORDS],
    mut put: V,
) {
    let f = &op.field;
    let (bit, nscale) = (set_bit(f), f.nscale);
    let unsigned = u32::from(!op.signed);
    for (k, (&r, fl)) in raw.iter().zip(flags.iter_mut()).enumerate() {
        let (value, nonzero) = if op.float {
            let v = f.scale(f64::from(f32::from_bits(r)));
            (v, v != 0.0)
        } else {
            if op.special.contains(&r) {
                *fl |= alarm::NO_SENSOR;
                put(k, 0.0, false, true);
                continue;
            }
            (f.scale(int_value(r, unsigned)), r != 0)
        };
        if let Some(w) = valid.get_mut(k / 64) {
            *w |= 1 << (k % 64);
        }
        if nonzero {
            *fl |= bit;
        }
        put(k, value * nscale, nonzero, false);
    }
}

/// Apply one integer op to a chunk with branch-free loops LLVM vectorises: value =
/// ((x * mul) / div + add) * nscale, the operations of [`Field::scale`] in its
/// order, with exact identities (`* 1.0`, `+ -0.0`) for the absent ones, so results
/// are bit-identical. `SPECIAL`: up to 4 special values (padded by repetition) make
/// the row null and set `no_sensor`. `WIDE`: raw values may be 2^31 or more
/// (unsigned 32-bit fields); otherwise `raw as i32` is the value (signed fields are
/// sign-extended, narrower unsigned ones are below 2^31).
#[inline(always)]
fn apply_fused<
    const SPECIAL: bool,
    const DIV: bool,
    const WIDE: bool,
    V: FnMut(usize, f64, bool, bool),
>(
    op: &Op,
    raw: &[u32],
    skip: &mut [bool; CHUNK],
    flags: &mut [u16],
    valid: &mut [u64; CHUNK_WORDS],
    vals: Option<Dst<'_>>,
    mut put: V,
) {
    let f = &op.field;
    let m = raw.len();
    let mul = f.mul.unwrap_or(1.0);
    let div = f.div.unwrap_or(1.0);
    let add = f.add.unwrap_or(-0.0);
    let nscale = f.nscale;
    let bit = set_bit(f);
    let mut sp = [0u32; 4];
    for (i, s) in sp.iter_mut().enumerate() {
        *s = op
            .special
            .get(i)
            .or(op.special.first())
            .copied()
            .unwrap_or(0);
    }
    let skip = &mut skip[..m];
    let flags = &mut flags[..m];
    if SPECIAL {
        for (sk, &r) in skip.iter_mut().zip(raw) {
            *sk = (r == sp[0]) | (r == sp[1]) | (r == sp[2]) | (r == sp[3]);
        }
    }
    let value = |r: u32| {
        let x = if WIDE {
            f64::from(r)
        } else {
            f64::from(r as i32)
        };
        let mut v = x * mul;
        if DIV {
            v /= div;
        }
        (v + add) * nscale
    };
    if let Some(Dst::Append(vals)) = vals {
        // Straight into the column (a special-value row's value is never read: its
        // validity bit stays 0).
        vals.extend(raw.iter().map(|&r| value(r)));
    } else if let Some(Dst::Over(vals)) = vals {
        // An f64 column: zipped, so no bounds check keeps LLVM from vectorising.
        for ((x, &r), &b) in vals.iter_mut().zip(raw).zip(skip.iter()) {
            let v = value(r);
            *x = if SPECIAL && b { *x } else { v };
        }
    } else {
        for (k, (&r, &b)) in raw.iter().zip(skip.iter()).enumerate() {
            put(k, value(r), r != 0, SPECIAL && b);
        }
    }
    if SPECIAL {
        for ((fl, &b), &r) in flags.iter_mut().zip(skip.iter()).zip(raw) {
            *fl |= if b {
                alarm::NO_SENSOR
            } else {
                bit * u16::from(r != 0)
            };
        }
    } else if bit != 0 {
        for (fl, &r) in flags.iter_mut().zip(raw) {
            *fl |= bit * u16::from(r != 0);
        }
    }
    for (j, w) in valid.iter_mut().enumerate() {
        let lo = (64 * j).min(m);
        let hi = (lo + 64).min(m);
        *w |= if !SPECIAL {
            if hi - lo == 64 {
                u64::MAX
            } else {
                (1u64 << (hi - lo)) - 1
            }
        } else {
            let mut bits = 0u64;
            for (i, &b) in skip[lo..hi].iter().enumerate() {
                bits |= u64::from(!b) << i;
            }
            bits
        };
    }
}

/// One op over a chunk: the fused loop for the common forms, else row by row.
#[inline(always)]
fn apply<V: FnMut(usize, f64, bool, bool)>(
    op: &Op,
    raw: &[u32],
    skip: &mut [bool; CHUNK],
    flags: &mut [u16],
    valid: &mut [u64; CHUNK_WORDS],
    vals: Option<Dst<'_>>,
    put: V,
) {
    let f = &op.field;
    if op.float || f.round.is_some() || op.special.len() > 4 {
        if let Some(dst) = vals {
            let vals = match dst {
                Dst::Append(v) => {
                    let at = v.len();
                    v.resize(at + raw.len(), 0.0);
                    &mut v[at..]
                }
                Dst::Over(v) => v,
            };
            return apply_rows(op, raw, flags, valid, |k, v, _, s| {
                if let (false, Some(x)) = (s, vals.get_mut(k)) {
                    *x = v;
                }
            });
        }
        return apply_rows(op, raw, flags, valid, put);
    }
    let wide = !op.signed && op.width == 4 && op.rshift == 0 && op.mask >> 31 != 0;
    macro_rules! fused {
        ($sp:literal, $div:literal, $wide:literal) => {
            apply_fused::<$sp, $div, $wide, V>(op, raw, skip, flags, valid, vals, put)
        };
    }
    match (!op.special.is_empty(), f.div.is_some(), wide) {
        (false, false, false) => fused!(false, false, false),
        (false, true, false) => fused!(false, true, false),
        (true, false, false) => fused!(true, false, false),
        (true, true, false) => fused!(true, true, false),
        (false, false, true) => fused!(false, false, true),
        (false, true, true) => fused!(false, true, true),
        (true, false, true) => fused!(true, false, true),
        (true, true, true) => fused!(true, true, true),
    }
}

/// The rows `r0..r0 + m` of an output column for an op that overwrites them: the
/// column is extended to them first (with zeros) if no op wrote them yet.
fn rows_of<T: Copy + Default>(v: &mut Vec<T>, r0: usize, m: usize) -> &mut [T] {
    if v.len() < r0 + m {
        v.resize(r0 + m, T::default());
    }
    &mut v[r0..r0 + m]
}

/// Run one op over the chunk's `raw.len()` rows (rows `r0..` of the batch): values
/// straight into `cols`' value columns (a column the codec does not fill into the
/// chunk's scratch arrays), alarm flags into `cols` (already extended to the chunk),
/// validity and boolean words into `c`.
#[inline(always)]
fn run_op(
    op: &Op,
    raw: &[u32],
    skip: &mut [bool; CHUNK],
    c: &mut ChunkCols,
    cols: &mut ReadingColumns,
    r0: usize,
) {
    let Some(t) = op.field.target else { return };
    let m = raw.len();
    let flags = &mut cols.alarm_flags.values[r0..r0 + m];
    let (col, scratch, idx) = match t {
        Target::Distance => (
            &mut cols.distance_mm,
            &mut c.distance_mm,
            chunk_col::DISTANCE,
        ),
        Target::Fill => (
            &mut cols.fill_pct_reported,
            &mut c.fill_pct_reported,
            chunk_col::FILL,
        ),
        Target::Temperature => (
            &mut cols.temperature_c,
            &mut c.temperature_c,
            chunk_col::TEMPERATURE,
        ),
        Target::BatteryPct => (
            &mut cols.battery_pct,
            &mut c.battery_pct,
            chunk_col::BATTERY_PCT,
        ),
        Target::BatteryV => (&mut cols.battery_v, &mut c.battery_v, chunk_col::BATTERY_V),
        Target::Latitude => (&mut cols.latitude, &mut c.latitude, chunk_col::LATITUDE),
        Target::Longitude => (&mut cols.longitude, &mut c.longitude, chunk_col::LONGITUDE),
        Target::MeasuredAtS => {
            let vals = match cols.measured_at_ms.as_mut() {
                Some(col) => rows_of(&mut col.values, r0, m),
                None => &mut c.measured_at_ms[..m],
            };
            let valid = &mut c.valid[chunk_col::MEASURED_AT];
            return apply(op, raw, skip, flags, valid, None, |k, v, _, s| {
                if let (false, Some(x)) = (s, vals.get_mut(k)) {
                    *x = (v * 1000.0) as i64;
                }
            });
        }
        Target::Tilt | Target::Fire => {
            let (bits, idx) = if t == Target::Tilt {
                (&mut c.tilt, chunk_col::TILT)
            } else {
                (&mut c.fire_alarm, chunk_col::FIRE)
            };
            // A later op on the same column overrides an earlier one's value.
            let f = &op.field;
            if op.float || f.round.is_some() || op.special.len() > 4 {
                return apply(
                    op,
                    raw,
                    skip,
                    flags,
                    &mut c.valid[idx],
                    None,
                    |k, _, nz, s| {
                        if let (false, Some(w)) = (s, bits.get_mut(k / 64)) {
                            let b = 1u64 << (k % 64);
                            *w = if nz { *w | b } else { *w & !b };
                        }
                    },
                );
            }
            // Flags and validity, then the value bits a word at a time (a row-by-row
            // read-modify-write of the same word is a store-forwarding chain).
            apply(
                op,
                raw,
                skip,
                flags,
                &mut c.valid[idx],
                None,
                |_, _, _, _| {},
            );
            let has_special = !op.special.is_empty();
            for (j, w) in bits.iter_mut().enumerate() {
                let lo = (64 * j).min(m);
                let (mut set, mut touched) = (0u64, 0u64);
                for (i, &r) in raw[lo..(lo + 64).min(m)].iter().enumerate() {
                    let t = u64::from(!(has_special && op.special.contains(&r)));
                    touched |= t << i;
                    set |= (t & u64::from(r != 0)) << i;
                }
                *w = (*w & !touched) | set;
            }
            return;
        }
        Target::Alarm(_) => {
            let mut unused = [0; CHUNK_WORDS];
            return apply(op, raw, skip, flags, &mut unused, None, |_, _, _, _| {});
        }
    };
    // The first op on the column in this chunk appends its rows; a later one
    // overwrites them (a skipped row keeps what the earlier op wrote).
    let dst = match col.as_mut() {
        Some(col) if col.values.len() == r0 => Dst::Append(&mut col.values),
        Some(col) => Dst::Over(&mut col.values[r0..r0 + m]),
        None => Dst::Over(&mut scratch[..m]),
    };
    apply(
        op,
        raw,
        skip,
        flags,
        &mut c.valid[idx],
        Some(dst),
        |_, _, _, _| {},
    )
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
        guard: Guard<'_>,
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
        let mut cols = ReadingColumns::for_chunks(n, codec.fields());
        let slow = fast_rows_dispatch(&shape, &flat, info, fports, guard, &mut cols);
        // Rows without the shape: the per-frame path rewrites every cell of them.
        decode_rows(codec, batch, fports, slow, &mut cols);
        cols.finish()
    }
}

/// The frames a wrapper around a layout lets through to the layout's decode (the
/// others take the wrapper's own per-frame decode).
#[derive(Clone, Copy)]
pub enum Guard<'g> {
    /// Every frame.
    All,
    /// Frames longer than this many bytes (settled once per batch when the shape is
    /// at least that long).
    LongerThan(usize),
    /// Frames this predicate accepts (checked per row).
    Frame(&'g dyn Fn(&[u8]) -> bool),
}

/// [`fast_rows`], compiled for AVX-512 or else AVX2 when the CPU has it (the column
/// loops then run on 8 or 4 lanes; the arithmetic is the same IEEE operations, so
/// results are identical).
fn fast_rows_dispatch(
    shape: &Shape,
    flat: &FlatView<'_>,
    info: &ModelInfo,
    fports: &FportSource,
    guard: Guard<'_>,
    cols: &mut ReadingColumns,
) -> Vec<usize> {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512vl")
            && std::arch::is_x86_feature_detected!("avx512dq")
        {
            // SAFETY: the CPU supports these, checked just above.
            return unsafe { fast_rows_avx512(shape, flat, info, fports, guard, cols) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            return unsafe { fast_rows_avx2(shape, flat, info, fports, guard, cols) };
        }
    }
    fast_rows(shape, flat, info, fports, guard, cols)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2")]
unsafe fn fast_rows_avx512(
    shape: &Shape,
    flat: &FlatView<'_>,
    info: &ModelInfo,
    fports: &FportSource,
    guard: Guard<'_>,
    cols: &mut ReadingColumns,
) -> Vec<usize> {
    fast_rows(shape, flat, info, fports, guard, cols)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn fast_rows_avx2(
    shape: &Shape,
    flat: &FlatView<'_>,
    info: &ModelInfo,
    fports: &FportSource,
    guard: Guard<'_>,
    cols: &mut ReadingColumns,
) -> Vec<usize> {
    fast_rows(shape, flat, info, fports, guard, cols)
}

/// The columnar pass over the whole batch, chunk by chunk: every row's cells are
/// written into `cols` from the shape's ops; returns the rows without the shape (or
/// failing `guard` / the fPort check), whose cells the per-frame path must rewrite.
#[inline(always)]
fn fast_rows(
    shape: &Shape,
    flat: &FlatView<'_>,
    info: &ModelInfo,
    fports: &FportSource,
    guard: Guard<'_>,
    cols: &mut ReadingColumns,
) -> Vec<usize> {
    let n = flat.len();
    let per_row_fports = matches!(fports, FportSource::PerRow(_));
    let data = flat.data;
    // Row words needed by the signature and the ops.
    let nw = shape
        .ops
        .iter()
        .filter_map(|op| match op.src {
            Src::Word { word, .. } => Some(word + 1),
            _ => None,
        })
        .chain(shape.sig.iter().map(|s| s.0 + 1).filter(|&w| w <= WORDS))
        .max()
        .unwrap_or(0);
    // The guard per row only when the shape does not settle it.
    let min_len = match guard {
        Guard::LongerThan(k) if shape.len <= k => Some(k),
        _ => None,
    };
    let frame_guard = match guard {
        Guard::Frame(g) => Some(g),
        _ => None,
    };
    let row_guard = min_len.is_some() || frame_guard.is_some();
    let mut slow: Vec<usize> = Vec::new();
    let mut starts = [0usize; CHUNK];
    let mut lens = [0usize; CHUNK];
    let mut raw = [0u32; CHUNK];
    let mut skip = [false; CHUNK];
    let mut fast = [false; CHUNK];
    let mut words: Box<RowWords> = Box::new([[0u64; CHUNK]; WORDS]);
    let mut chunk = Box::<ChunkCols>::default();
    let mut r0 = 0;
    while r0 < n {
        let m = CHUNK.min(n - r0);
        flat.ranges(r0, &mut starts[..m], &mut lens[..m]);
        // The next chunk's bytes (about as many as this chunk's) on their way to the
        // cache while this chunk is computed: the load loop below then finds them.
        let (first, last) = (starts[0], starts[m - 1].saturating_add(lens[m - 1]));
        if lens[m - 1] != usize::MAX && last > first {
            let end = last.saturating_add(last - first).min(data.len());
            if let Some(next) = data.get(last..end) {
                crate::mem::prefetch(next);
            }
        }
        // Every row of the chunk exactly the shape's length (a multiple of 8, its
        // words inside the row; also when the shape is a minimum length): the rows
        // lie back to back from the first one's start, so their words are plain reads
        // of one slice, which vectorise, instead of one load and one store per row at
        // an address of its own (the store buffer is full of the output columns'
        // missing stores in a large batch: every extra store waits).
        let tiled = shape.len.is_multiple_of(8)
            && 8 * nw <= shape.len
            && lens[..m].iter().fold(true, |a, &l| a & (l == shape.len));
        let block = if tiled {
            data.get(starts[0]..starts[0].saturating_add(m * shape.len))
        } else {
            None
        };
        match block {
            Some(rows) => load_tiled(rows, shape.len, nw, &mut words, m),
            None => {
                for (wi, ws) in words.iter_mut().enumerate().take(nw) {
                    for (x, &s) in ws[..m].iter_mut().zip(&starts[..m]) {
                        *x = word_at(data, s + 8 * wi);
                    }
                }
            }
        }
        // Which rows have the shape: length, then signature words, column by column.
        let fast = &mut fast[..m];
        for (f, &l) in fast.iter_mut().zip(&lens[..m]) {
            *f = if shape.exact {
                l == shape.len
            } else {
                l >= shape.len && l != usize::MAX
            };
        }
        for &(w, mask, want) in &shape.sig {
            if w < nw {
                for (f, &x) in fast.iter_mut().zip(&words[w][..m]) {
                    *f &= x & mask == want;
                }
            } else {
                for (f, &s) in fast.iter_mut().zip(&starts[..m]) {
                    *f &= word_at(data, s + 8 * w) & mask == want;
                }
            }
        }
        let all_fast = fast.iter().fold(true, |a, &f| a & f);
        if all_fast && !row_guard && !per_row_fports {
            // Every row has the shape: no per-row checks.
        } else {
            for (k, &f) in fast.iter().enumerate() {
                let (s, l) = (starts[k], lens[k]);
                let ok = f
                    && (!row_guard
                        || data.get(s..s.saturating_add(l)).is_some_and(|p| {
                            min_len.is_none_or(|k| p.len() > k) && frame_guard.is_none_or(|g| g(p))
                        }))
                    && (!per_row_fports
                        || fports
                            .get(r0 + k)
                            .is_ok_and(|fp| check_fport(info, fp).is_ok()));
                if !ok {
                    slow.push(r0 + k);
                }
            }
        }
        chunk.reset(m);
        cols.alarm_flags.values.resize(r0 + m, 0);
        for op in &shape.ops {
            read_raw(op, data, &starts[..m], &words, &mut raw[..m]);
            run_op(op, &raw[..m], &mut skip, &mut chunk, cols, r0);
        }
        cols.push_chunk_bits(&chunk, m);
        r0 += m;
    }
    slow
}

#[cfg(test)]
mod tests {
    use crate::codec::{FlatPayloads, FportSource, Registry};
    use crate::reading::{Bitmap, PrimCol, Reading, ReadingColumns};

    /// Row `i` of a value column: `None` when null.
    fn cell<T: Copy>(c: &Option<PrimCol<T>>, i: usize) -> Option<T> {
        c.as_ref()
            .and_then(|c| c.validity.get(i).then(|| c.values[i]))
    }

    fn bit(b: &Option<crate::reading::BoolCol>, i: usize) -> Option<bool> {
        b.as_ref()
            .and_then(|c| c.validity.get(i).then(|| c.values.get(i)))
    }

    fn row(c: &ReadingColumns, i: usize) -> String {
        let ok = Bitmap::get(&c.ok, i);
        let err = c.errors.iter().find(|e| e.0 == i).map(|e| e.1.to_string());
        format!(
            "{ok} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?}",
            cell(&c.distance_mm, i).map(f64::to_bits),
            cell(&c.temperature_c, i).map(f64::to_bits),
            cell(&c.battery_pct, i).map(f64::to_bits),
            cell(&c.battery_v, i).map(f64::to_bits),
            cell(&c.measured_at_ms, i),
            bit(&c.tilt, i),
            bit(&c.fire_alarm, i),
            c.alarm_flags.values[i] * u16::from(ok),
            err,
            cell(&c.fill_pct_reported, i).map(f64::to_bits),
        )
    }

    /// Chunks whose rows all have the shape's length are read as one block of back to
    /// back rows (`load_tiled`), others row by row: both give every row exactly as
    /// the per-frame path decodes it, at any base offset of the first row (random
    /// 8-byte LDDS75 frames, special distances included; chunks broken by a longer
    /// frame, an original-firmware 5-byte frame and a null row).
    #[test]
    fn back_to_back_rows_equal_the_per_frame_path() {
        use crate::codec::decode_rows;
        let c = Registry::global().get("dragino-ldds75").unwrap();
        let n: usize = 1000;
        let mut x = 0x1234_5678_9ABC_DEF1u64;
        let mut frames: Vec<Vec<u8>> = Vec::new();
        for i in 0..n {
            let mut f = Vec::new();
            for _ in 0..8 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                f.push(x as u8);
            }
            if i % 50 == 7 {
                f[2..4].copy_from_slice(&[0, if i % 100 == 7 { 0 } else { 20 }]);
            }
            match i {
                700 => f.push(0x55),
                300 => f.truncate(5),
                _ => {}
            }
            frames.push(f);
        }
        let mut validity = vec![0xFFu8; n.div_ceil(8)];
        validity[900 / 8] &= !(1 << (900 % 8));
        for (base, nulls) in [(0usize, false), (3, false), (5, true)] {
            let mut data = vec![0xAAu8; base];
            let mut offsets = vec![base as i32];
            for f in &frames {
                data.extend_from_slice(f);
                offsets.push(data.len() as i32);
            }
            let batch = FlatPayloads {
                data: &data,
                offsets: &offsets,
                validity: nulls.then_some(&validity[..]),
                validity_bit_offset: 0,
            };
            let cols = c.decode_batch(&batch, &FportSource::None);
            let mut alone = ReadingColumns::new(n, c.fields());
            decode_rows(&*c, &batch, &FportSource::None, 0..n, &mut alone);
            let alone = alone.finish();
            for i in 0..n {
                assert_eq!(row(&cols, i), row(&alone, i), "base {base} row {i}");
            }
            assert_eq!(cols.error_count, usize::from(nulls), "base {base}");
        }
    }

    /// A big batch (hundreds of chunks, a partial last one) decodes exactly as the
    /// same frames in small batches, damaged and special-value frames included.
    #[test]
    fn big_batches_equal_small_batches() {
        let n = 33_768;
        for model in ["dragino-ldds75", "milesight-em310-udl", "tid1"] {
            let c = Registry::global().get(model).unwrap();
            let (mut data, mut offsets) = (Vec::new(), vec![0i32]);
            let mut x = 0x9E37_79B9_7F4A_7C15u64;
            for i in 0..n {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let r = Reading {
                    distance_mm: Some(if x.is_multiple_of(50) {
                        20.0
                    } else {
                        (x % 4000) as f64
                    }),
                    battery_pct: Some((x % 101) as f64),
                    battery_v: Some(2.5 + (x % 1000) as f64 / 1000.0),
                    temperature_c: Some((x % 900) as f64 / 10.0 - 40.0),
                    tilt: Some(x.is_multiple_of(7)),
                    measured_at_ms: Some(1_700_000_000_000 + i as i64 * 1000),
                    ..Reading::default()
                };
                let at = data.len();
                c.encode(&r, &mut data).unwrap();
                if x.is_multiple_of(97) {
                    data.truncate(at + (x % 4) as usize); // a damaged frame
                }
                offsets.push(data.len() as i32);
            }
            let all = FlatPayloads {
                data: &data,
                offsets: &offsets,
                validity: None,
                validity_bit_offset: 0,
            };
            let big = c.decode_batch(&all, &FportSource::None);
            let mut i = 0;
            for r0 in (0..n).step_by(1000) {
                let r1 = (r0 + 1000).min(n);
                let part = FlatPayloads {
                    data: &data,
                    offsets: &offsets[r0..=r1],
                    validity: None,
                    validity_bit_offset: 0,
                };
                let small = c.decode_batch(&part, &FportSource::None);
                for k in 0..r1 - r0 {
                    assert_eq!(row(&big, r0 + k), row(&small, k), "{model} row {}", r0 + k);
                    i += 1;
                }
            }
            assert_eq!(i, n);
            assert!(big.error_count > 0, "{model}: damaged frames fail");
        }
    }
}
