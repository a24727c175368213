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
//! fPort, the wrapper's guard) are found column by column, then each field runs a few
//! branch-free loops over the chunk (cut out of the row words, mask / sign, the
//! vendor's arithmetic, specials as a mask) that LLVM vectorises, writing into the
//! chunk's column slices and validity words. The pass is compiled twice, for the
//! baseline target and for AVX2 (picked at run time). Rows
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

/// Raw integers of one op over a chunk (`raw`: masked and shifted if unsigned,
/// sign-extended to 32 bits if signed, the bits if f32) and, for integer ops, their
/// values as `f64` (`xs`).
#[inline(always)]
fn read_raw(
    op: &Op,
    data: &[u8],
    starts: &[usize],
    words: &RowWords,
    raw: &mut [u32],
    xs: &mut [f64],
) {
    let w = op.width;
    match op.src {
        Src::Zero => raw.fill(0),
        Src::Word { word, shift } => {
            let ws = &words[word % WORDS][..raw.len()];
            if op.be {
                let down = 32 - 8 * w as u32;
                for (r, &x) in raw.iter_mut().zip(ws) {
                    *r = ((x >> shift) as u32).swap_bytes() >> down;
                }
            } else {
                let keep = u32::MAX >> (32 - 8 * w as u32);
                for (r, &x) in raw.iter_mut().zip(ws) {
                    *r = (x >> shift) as u32 & keep;
                }
            }
        }
        Src::Gather => match (w, op.be) {
            (1, _) => read_loop::<1, true>(data, starts, op.at, raw),
            (2, true) => read_loop::<2, true>(data, starts, op.at, raw),
            (2, false) => read_loop::<2, false>(data, starts, op.at, raw),
            (3, true) => read_loop::<3, true>(data, starts, op.at, raw),
            (3, false) => read_loop::<3, false>(data, starts, op.at, raw),
            (4, true) => read_loop::<4, true>(data, starts, op.at, raw),
            _ => read_loop::<4, false>(data, starts, op.at, raw),
        },
    }
    let (mask, rsh, sx) = (op.mask, op.rshift, op.sx);
    if (mask, rsh, sx) != (u32::MAX, 0, 0) {
        for r in raw.iter_mut() {
            *r = ((((*r & mask) >> rsh) << sx) as i32 >> sx) as u32;
        }
    }
    if op.float {
        return;
    }
    let xs = &mut xs[..raw.len()];
    if op.signed {
        for (x, &r) in xs.iter_mut().zip(raw.iter()) {
            *x = f64::from(r as i32);
        }
    } else {
        for (x, &r) in xs.iter_mut().zip(raw.iter()) {
            *x = f64::from(r);
        }
    }
}

/// Apply one op to a chunk: `put(row in chunk, normalized value, raw non-zero, skip)`
/// for every row (`skip`: the row's raw value is one of the field's special values,
/// so the op sets no value for it), alarm flags into `flags`, validity into `valid`.
/// `scale` is [`Field::scale`] (or an equivalent specialisation of it).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn apply<S: Fn(f64) -> f64, V: FnMut(usize, f64, bool, bool)>(
    op: &Op,
    raw: &[u32],
    xs: &[f64],
    skip: &mut [bool; CHUNK],
    flags: &mut [u16],
    valid: &mut [u64; CHUNK_WORDS],
    scale: S,
    mut put: V,
) {
    let f = &op.field;
    let m = raw.len();
    let set_bit = match f.target {
        Some(Target::Tilt) => alarm::TILT,
        Some(Target::Fire) => alarm::FIRE,
        Some(Target::Alarm(b)) => b,
        _ => 0,
    };
    let nscale = f.nscale;
    if op.float {
        for (k, (&r, fl)) in raw.iter().zip(flags.iter_mut()).enumerate() {
            // The per-frame `Field::normalize`, row by row, minus the reads.
            let v = scale(f64::from(f32::from_bits(r)));
            let nonzero = v != 0.0;
            valid[k / 64] |= 1 << (k % 64);
            if nonzero {
                *fl |= set_bit;
            }
            put(k, v * nscale, nonzero, false);
        }
        return;
    }
    let xs = &xs[..m];
    if op.special.is_empty() {
        // Every row is set: whole validity words, then loops LLVM can vectorise.
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
        for (k, (&r, &x)) in raw.iter().zip(xs).enumerate() {
            put(k, scale(x) * nscale, r != 0, false);
        }
        return;
    }
    // Special raw values (e.g. "No Sensor"): no value, the NO_SENSOR flag.
    let skip = &mut skip[..m];
    skip.fill(false);
    for &s in &op.special {
        for (b, &r) in skip.iter_mut().zip(raw) {
            *b |= r == s;
        }
    }
    for (j, w) in valid.iter_mut().enumerate() {
        let lo = (64 * j).min(m);
        let mut bits = 0u64;
        for (i, &b) in skip[lo..(lo + 64).min(m)].iter().enumerate() {
            bits |= u64::from(!b) << i;
        }
        *w |= bits;
    }
    for ((fl, &b), &r) in flags.iter_mut().zip(skip.iter()).zip(raw) {
        *fl |= if b {
            alarm::NO_SENSOR
        } else {
            set_bit * u16::from(r != 0)
        };
    }
    for (k, ((&r, &x), &b)) in raw.iter().zip(xs).zip(skip.iter()).enumerate() {
        put(k, scale(x) * nscale, r != 0, b);
    }
}

/// [`apply`] with the field's arithmetic specialised for the common forms (same
/// operations in the same order as [`Field::scale`], so bit-identical).
#[inline(always)]
fn apply_scaled<V: FnMut(usize, f64, bool, bool)>(
    op: &Op,
    raw: &[u32],
    xs: &[f64],
    skip: &mut [bool; CHUNK],
    flags: &mut [u16],
    valid: &mut [u64; CHUNK_WORDS],
    put: V,
) {
    let f = &op.field;
    match (f.mul, f.div, f.add, f.round) {
        (None, None, None, None) => apply(op, raw, xs, skip, flags, valid, |x| x, put),
        (None, Some(d), None, None) => apply(op, raw, xs, skip, flags, valid, move |x| x / d, put),
        (Some(m), None, None, None) => apply(op, raw, xs, skip, flags, valid, move |x| x * m, put),
        _ => apply(op, raw, xs, skip, flags, valid, |x| f.scale(x), put),
    }
}

/// Run one op over the chunk's `raw.len()` rows.
#[inline(always)]
fn run_op(op: &Op, raw: &[u32], xs: &[f64], skip: &mut [bool; CHUNK], c: &mut ChunkCols) {
    let Some(t) = op.field.target else { return };
    let m = raw.len();
    let flags = &mut c.alarm_flags[..m];
    macro_rules! f64_col {
        ($col:ident, $idx:expr) => {{
            let vals = &mut c.$col;
            // A skipped row keeps what an earlier op on the column wrote.
            apply_scaled(
                op,
                raw,
                xs,
                skip,
                flags,
                &mut c.valid[$idx],
                |k, v, _, s| vals[k] = if s { vals[k] } else { v },
            )
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
                op,
                raw,
                xs,
                skip,
                flags,
                &mut c.valid[chunk_col::MEASURED_AT],
                |k, v, _, s| {
                    if !s {
                        vals[k] = (v * 1000.0) as i64;
                    }
                },
            )
        }
        Target::Tilt | Target::Fire => {
            let (bits, idx) = if t == Target::Tilt {
                (&mut c.tilt, chunk_col::TILT)
            } else {
                (&mut c.fire_alarm, chunk_col::FIRE)
            };
            // A later op on the same column overrides an earlier one's value.
            apply_scaled(
                op,
                raw,
                xs,
                skip,
                flags,
                &mut c.valid[idx],
                |k, _, nz, s| {
                    if !s {
                        let (j, b) = (k / 64, 1u64 << (k % 64));
                        bits[j] = if nz { bits[j] | b } else { bits[j] & !b };
                    }
                },
            )
        }
        Target::Alarm(_) => {
            let mut unused = [0; CHUNK_WORDS];
            apply_scaled(op, raw, xs, skip, flags, &mut unused, |_, _, _, _| {})
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
        let mut cols = ReadingColumns::for_chunks(n, codec.fields());
        let slow = fast_rows_dispatch(&shape, &flat, info, fports, &guard, &mut cols);
        // Rows without the shape: the per-frame path rewrites every cell of them.
        decode_rows(codec, batch, fports, slow, &mut cols);
        cols.finish()
    }
}

/// [`fast_rows`], compiled for AVX2 when the CPU has it (the column loops then run
/// on 4 lanes; the arithmetic is the same IEEE operations, so results are identical).
fn fast_rows_dispatch<G: Fn(&[u8]) -> bool>(
    shape: &Shape,
    flat: &FlatView<'_>,
    info: &ModelInfo,
    fports: &FportSource,
    guard: &G,
    cols: &mut ReadingColumns,
) -> Vec<usize> {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            return unsafe { fast_rows_avx2(shape, flat, info, fports, guard, cols) };
        }
    }
    fast_rows(shape, flat, info, fports, guard, cols)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn fast_rows_avx2<G: Fn(&[u8]) -> bool>(
    shape: &Shape,
    flat: &FlatView<'_>,
    info: &ModelInfo,
    fports: &FportSource,
    guard: &G,
    cols: &mut ReadingColumns,
) -> Vec<usize> {
    fast_rows(shape, flat, info, fports, guard, cols)
}

/// The columnar pass over the whole batch, chunk by chunk: every row's cells are
/// written into `cols` from the shape's ops; returns the rows without the shape (or
/// failing `guard` / the fPort check), whose cells the per-frame path must rewrite.
#[inline(always)]
fn fast_rows<G: Fn(&[u8]) -> bool>(
    shape: &Shape,
    flat: &FlatView<'_>,
    info: &ModelInfo,
    fports: &FportSource,
    guard: &G,
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
    let mut slow: Vec<usize> = Vec::new();
    let mut starts = [0usize; CHUNK];
    let mut lens = [0usize; CHUNK];
    let mut raw = [0u32; CHUNK];
    let mut xs = [0f64; CHUNK];
    let mut skip = [false; CHUNK];
    let mut fast = [false; CHUNK];
    let mut words: Box<RowWords> = Box::new([[0u64; CHUNK]; WORDS]);
    let mut chunk = Box::<ChunkCols>::default();
    let mut r0 = 0;
    while r0 < n {
        let m = CHUNK.min(n - r0);
        flat.ranges(r0, &mut starts[..m], &mut lens[..m]);
        for (wi, ws) in words.iter_mut().enumerate().take(nw) {
            for (x, &s) in ws[..m].iter_mut().zip(&starts[..m]) {
                *x = word_at(data, s + 8 * wi);
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
        for (k, &f) in fast.iter().enumerate() {
            let (s, l) = (starts[k], lens[k]);
            let ok = f
                && data.get(s..s.saturating_add(l)).is_some_and(guard)
                && (!per_row_fports
                    || fports
                        .get(r0 + k)
                        .is_ok_and(|fp| check_fport(info, fp).is_ok()));
            if !ok {
                slow.push(r0 + k);
            }
        }
        chunk.reset(m);
        for op in &shape.ops {
            read_raw(op, data, &starts[..m], &words, &mut raw[..m], &mut xs[..m]);
            run_op(op, &raw[..m], &xs[..m], &mut skip, &mut chunk);
        }
        cols.push_chunk(&chunk, m);
        r0 += m;
    }
    slow
}
