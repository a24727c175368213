//! A per-message structural index (simdjson's "stage 1", reduced to what the
//! envelope walk needs), built 64 bytes at a time with SIMD, and the walker over it.
//!
//! The byte-wise walk ([`super::scan::Scanner`]) is latency-bound: each token's end
//! is searched for before the next token can be read, so the address of every load
//! depends on the bytes read just before. Here the positions of all tokens are
//! found first, block by block with no dependency between blocks but one carry
//! (the in-string state): every `"`, every `{ } [ ] : ,` outside strings and the
//! first byte of every other run outside strings (a number or literal). The walk
//! ([`Indexed`]) then steps through that array: the next token's position is a
//! load whose address depends only on a counter, and a string is the span between
//! two consecutive quote tokens.
//!
//! The index only speeds the walk up; it never decides on its own. A message is
//! indexed only if it has no backslash (so every `"` opens or closes a string), no
//! control byte inside a string, balanced quotes, and is valid UTF-8 as a whole (so
//! every string is). On such a message the indexed walk accepts exactly what the
//! byte-wise walk accepts and returns the same tokens: the bytes between tokens are
//! whitespace, and a number or literal must be followed by whitespace, a structural
//! character, a quote or the end, so it is the whole run. Anything else, or any
//! syntax error met on the indexed walk, is walked again byte-wise, which owns every
//! error message and offset.
//!
//! The index is built with AVX-512 (BW for the classification, a carry-less
//! multiply for the in-string mask, VBMI2 `compress` to turn a block's token bits
//! into positions in a few instructions), chosen at run time ([`Level::detect`]).
//! Without AVX-512 the byte-wise walk is used: flattening bit by bit costs about what
//! the index saves. The portable byte loops ([`Level::Portable`]) are the tests'
//! reference.

use super::scan::{number_end, RawStr, SResult, SyntaxError, Tokens, MAX_DEPTH};

/// How to build the index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Level {
    /// Byte loops: the tests' reference, never chosen by [`Level::detect`] (a
    /// bit-by-bit flatten alone costs what the index saves).
    #[cfg_attr(not(test), allow(dead_code))]
    Portable,
    /// AVX-512: 64 bytes classified at once, positions flattened by VBMI2 compress.
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

impl Level {
    /// The level that pays on this CPU, if any: AVX-512 (F, BW, VBMI2) with
    /// PCLMULQDQ. Without them the flattening alone costs what the index saves
    /// (measured with AVX-512 classification and the portable flatten: no gain),
    /// so the byte-wise walk is used.
    pub fn detect() -> Option<Level> {
        #[cfg(target_arch = "x86_64")]
        {
            if avx512() {
                return Some(Level::Avx512);
            }
        }
        None
    }

    /// Every level this CPU can run (for tests comparing them).
    #[cfg(test)]
    pub fn all_supported() -> Vec<Level> {
        let mut v = vec![Level::Portable];
        #[cfg(target_arch = "x86_64")]
        if avx512() {
            v.push(Level::Avx512);
        }
        v
    }
}

/// Whether the CPU has what [`Level::Avx512`] uses.
#[cfg(target_arch = "x86_64")]
fn avx512() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512bw")
        && std::arch::is_x86_feature_detected!("avx512vbmi2")
        && std::arch::is_x86_feature_detected!("pclmulqdq")
}

/// Longest message indexed (the flow's default `max_message_bytes`): the index takes
/// 4 bytes a message byte, so longer messages (hostile, or a direct call) take the
/// byte-wise walk, which needs no memory.
pub(crate) const MAX_INDEXED_BYTES: usize = 64 * 1024;

/// The index of one message: token positions, then two sentinels (the length).
#[derive(Debug, Default)]
pub(crate) struct Index {
    toks: Vec<u32>,
    /// Number of positions written (tokens and sentinels).
    len: usize,
}

/// Masks of one 64-byte block (bit `i` = byte `i`).
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
struct Block {
    quote: u64,
    backslash: u64,
    /// Bytes below 0x20.
    ctrl: u64,
    /// Bytes 0x80 and above.
    high: u64,
    /// `{ } [ ] : ,`
    op: u64,
    /// Space, tab, line feed, carriage return.
    ws: u64,
    /// [`prefix_xor`] of `quote`.
    quote_xor: u64,
}

/// Prefix XOR: bit `i` of the result is the XOR of bits `0..=i` of `x` (the
/// in-string mask from the quote mask, by a shift cascade).
#[inline(always)]
fn prefix_xor(mut x: u64) -> u64 {
    x ^= x << 1;
    x ^= x << 2;
    x ^= x << 4;
    x ^= x << 8;
    x ^= x << 16;
    x ^= x << 32;
    x
}

impl Index {
    /// Index `msg`. `false` if it must take the byte-wise walk instead: a backslash
    /// (escapes), a control byte inside a string, an unterminated string, bytes
    /// above 0x7f that are not valid UTF-8, or a message over [`MAX_INDEXED_BYTES`].
    pub fn build(&mut self, msg: &[u8], level: Level) -> bool {
        match level {
            Level::Portable => self.build_with(msg, block_portable, flatten_portable),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Level::Avx512` is only chosen when the CPU has AVX-512F/BW/VBMI2 and
            // PCLMULQDQ (`avx512()`).
            Level::Avx512 => unsafe { self.build_avx512(msg) },
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi2,pclmulqdq,avx2,bmi1,popcnt")]
    unsafe fn build_avx512(&mut self, msg: &[u8]) -> bool {
        self.build_with(
            msg,
            |b| {
                // SAFETY: this function only runs when the CPU has AVX-512F/BW, PCLMULQDQ.
                unsafe { x86::block_avx512(b) }
            },
            |out, base, mask| {
                // SAFETY: this function only runs when the CPU has AVX-512F/BW/VBMI2.
                unsafe { x86::flatten_avx512(out, base, mask) }
            },
        )
    }

    #[inline(always)]
    fn build_with(
        &mut self,
        msg: &[u8],
        block: impl Fn(&[u8; 64]) -> Block,
        flatten: impl Fn(&mut [u32], u32, u64),
    ) -> bool {
        let Ok(total) = u32::try_from(msg.len()) else {
            return false;
        };
        if msg.len() > MAX_INDEXED_BYTES {
            return false;
        }
        // At most one token a byte, plus room for whole 64-slot writes and sentinels.
        let need = msg.len() + 64 + 2;
        if self.toks.len() < need {
            self.toks.resize(need, 0);
        }
        let mut n = 0usize;
        let (mut in_string, mut prev_scalar, mut high) = (0u64, 0u64, 0u64);
        let (blocks, tail) = msg.as_chunks::<64>();
        let mut last = [b' '; 64];
        if let Some(dst) = last.get_mut(..tail.len()) {
            dst.copy_from_slice(tail);
        }
        let tail_block = (!tail.is_empty()).then_some(&last);
        for (i, b) in blocks.iter().chain(tail_block).enumerate() {
            let m = block(b);
            // Inside a string: from an opening quote (included) to its closing quote
            // (excluded); no backslash, so every quote toggles.
            let inside = m.quote_xor ^ in_string;
            in_string = 0u64.wrapping_sub(inside >> 63);
            if (m.backslash | (m.ctrl & inside)) != 0 {
                return false;
            }
            high |= m.high;
            let scalar = !(m.ws | m.op | m.quote | inside);
            let scalar_start = scalar & !((scalar << 1) | prev_scalar);
            prev_scalar = scalar >> 63;
            let t = (m.op & !inside) | m.quote | scalar_start;
            let count = t.count_ones() as usize;
            if let Some(out) = self.toks.get_mut(n..n + 64) {
                flatten(out, (i * 64) as u32, t);
            }
            n += count;
        }
        if in_string != 0 || (high != 0 && std::str::from_utf8(msg).is_err()) {
            return false;
        }
        if let Some(s) = self.toks.get_mut(n..n + 2) {
            s.fill(total);
        }
        self.len = n + 2;
        true
    }
}

/// A syntax error on the indexed walk: never reported (the byte-wise walk runs
/// again and reports its own).
#[cold]
fn bail<T>(pos: usize) -> SResult<T> {
    Err(SyntaxError {
        what: "indexed walk",
        pos,
    })
}

/// Whether byte `b` may follow a number or literal (`None`: the end).
#[inline(always)]
fn ends_scalar(b: Option<&u8>) -> bool {
    matches!(
        b,
        None | Some(b' ' | b'\t' | b'\n' | b'\r' | b',' | b':' | b'{' | b'}' | b'[' | b']' | b'"')
    )
}

/// The walker over an [`Index`]: `k` is the next token.
pub(crate) struct Indexed<'a> {
    data: &'a [u8],
    toks: &'a [u32],
    k: usize,
}

impl<'a> Indexed<'a> {
    /// The walker over `data`; `index` must be its successful [`Index::build`].
    pub fn new(data: &'a [u8], index: &'a Index) -> Self {
        Indexed {
            data,
            toks: index.toks.get(..index.len).unwrap_or_default(),
            k: 0,
        }
    }

    /// Position of token `k` (the length past the last one).
    #[inline(always)]
    fn at(&self, k: usize) -> usize {
        self.toks.get(k).map_or(self.data.len(), |&p| p as usize)
    }

    /// First byte of token `k` (`None` past the last one).
    #[inline(always)]
    fn byte(&self, k: usize) -> Option<u8> {
        self.data.get(self.at(k)).copied()
    }

    /// Consume a key (the current token is its `"`) and the `:` after it.
    #[inline(always)]
    fn member_key(&mut self) -> SResult<RawStr<'a>> {
        let key = self.string()?;
        if self.byte(self.k) != Some(b':') {
            return bail(self.at(self.k));
        }
        self.k += 1;
        Ok(key)
    }

    /// Consume the scalar value starting with byte `b` (the current token).
    #[inline(always)]
    fn scalar(&mut self, b: u8) -> SResult<()> {
        match b {
            b'"' => self.string().map(drop),
            b'-' | b'0'..=b'9' => self.number().map(drop),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => bail(self.at(self.k)),
        }
    }

    /// Skip an object or array (the current token), validating it, without
    /// recursion (a bit stack records the nesting, as in the byte-wise walk).
    fn skip_container(&mut self, object: bool) -> SResult<()> {
        let mut stack = [0u64; MAX_DEPTH / 64];
        if let Some(w) = stack.first_mut() {
            *w |= u64::from(object);
        }
        let mut depth = 1usize;
        let mut in_obj = object;
        let mut just_opened = true;
        self.k += 1;
        loop {
            let Some(c) = self.byte(self.k) else {
                return bail(self.data.len());
            };
            let close = if in_obj { b'}' } else { b']' };
            if c == close {
                self.k += 1;
                depth -= 1;
                if depth == 0 {
                    return Ok(());
                }
                let top = depth - 1;
                in_obj = stack
                    .get(top / 64)
                    .is_some_and(|w| w & (1 << (top % 64)) != 0);
                just_opened = false;
                continue;
            }
            if !just_opened {
                if c != b',' {
                    return bail(self.at(self.k));
                }
                self.k += 1;
            }
            just_opened = false;
            if in_obj {
                if self.byte(self.k) != Some(b'"') {
                    return bail(self.at(self.k));
                }
                self.member_key()?;
            }
            let Some(v) = self.byte(self.k) else {
                return bail(self.data.len());
            };
            if v == b'{' || v == b'[' {
                if depth >= MAX_DEPTH {
                    return bail(self.at(self.k));
                }
                in_obj = v == b'{';
                if let Some(w) = stack.get_mut(depth / 64) {
                    let bit = 1u64 << (depth % 64);
                    if in_obj {
                        *w |= bit;
                    } else {
                        *w &= !bit;
                    }
                }
                depth += 1;
                self.k += 1;
                just_opened = true;
            } else {
                self.scalar(v)?;
            }
        }
    }
}

impl<'a> Tokens<'a> for Indexed<'a> {
    #[inline(always)]
    fn pos(&self) -> usize {
        self.at(self.k)
    }

    #[inline(always)]
    fn peek(&mut self) -> SResult<u8> {
        match self.byte(self.k) {
            Some(b) => Ok(b),
            None => bail(self.data.len()),
        }
    }

    #[inline]
    fn finish(&mut self) -> SResult<()> {
        if self.at(self.k) < self.data.len() {
            return bail(self.at(self.k));
        }
        Ok(())
    }

    #[inline]
    fn object_first(&mut self) -> SResult<Option<RawStr<'a>>> {
        self.k += 1;
        match self.byte(self.k) {
            Some(b'"') => self.member_key().map(Some),
            Some(b'}') => {
                self.k += 1;
                Ok(None)
            }
            _ => bail(self.at(self.k)),
        }
    }

    #[inline]
    fn object_next(&mut self) -> SResult<Option<RawStr<'a>>> {
        match self.byte(self.k) {
            Some(b',') => {
                self.k += 1;
                if self.byte(self.k) != Some(b'"') {
                    return bail(self.at(self.k));
                }
                self.member_key().map(Some)
            }
            Some(b'}') => {
                self.k += 1;
                Ok(None)
            }
            _ => bail(self.at(self.k)),
        }
    }

    #[inline]
    fn array_first(&mut self) -> SResult<Option<u8>> {
        self.k += 1;
        match self.byte(self.k) {
            Some(b']') => {
                self.k += 1;
                Ok(None)
            }
            Some(b) => Ok(Some(b)),
            None => bail(self.data.len()),
        }
    }

    #[inline]
    fn array_next(&mut self) -> SResult<Option<u8>> {
        match self.byte(self.k) {
            Some(b',') => {
                self.k += 1;
                match self.byte(self.k) {
                    Some(b']') | None => bail(self.at(self.k)),
                    Some(b) => Ok(Some(b)),
                }
            }
            Some(b']') => {
                self.k += 1;
                Ok(None)
            }
            _ => bail(self.at(self.k)),
        }
    }

    /// The current token is an opening quote (quote tokens are consumed in pairs),
    /// so the next token is its closing quote.
    #[inline(always)]
    fn string(&mut self) -> SResult<RawStr<'a>> {
        let (open, close) = (self.at(self.k), self.at(self.k + 1));
        let Some(raw) = self.data.get(open + 1..close) else {
            return bail(open);
        };
        self.k += 2;
        Ok(RawStr {
            raw,
            escaped: false,
        })
    }

    #[inline(always)]
    fn number(&mut self) -> SResult<&'a [u8]> {
        let start = self.at(self.k);
        let end = number_end(self.data, start)?;
        if !ends_scalar(self.data.get(end)) {
            return bail(end);
        }
        self.k += 1;
        Ok(self.data.get(start..end).unwrap_or_default())
    }

    #[inline(always)]
    fn literal(&mut self, lit: &'static [u8]) -> SResult<()> {
        let start = self.at(self.k);
        let end = start + lit.len();
        if self.data.get(start..end) != Some(lit) || !ends_scalar(self.data.get(end)) {
            return bail(start);
        }
        self.k += 1;
        Ok(())
    }

    #[inline]
    fn skip(&mut self) -> SResult<()> {
        match self.peek()? {
            b @ (b'{' | b'[') => self.skip_container(b == b'{'),
            b => self.scalar(b),
        }
    }
}

/// Write `base +` the position of each set bit of `mask` to `out` (64 slots), in
/// order, eight slots at a time: the slots past the count get garbage that the next
/// block overwrites.
#[inline(always)]
fn flatten_portable(out: &mut [u32], base: u32, mut mask: u64) {
    let count = mask.count_ones() as usize;
    for group in out.chunks_exact_mut(8).take(count.div_ceil(8)) {
        for slot in group {
            *slot = base + mask.trailing_zeros();
            mask &= mask.wrapping_sub(1);
        }
    }
}

/// The portable classifier (and the reference of the SIMD ones in the tests).
#[inline(always)]
fn block_portable(b: &[u8; 64]) -> Block {
    let mut m = Block::default();
    for (i, &c) in b.iter().enumerate() {
        let bit = 1u64 << i;
        let set = |mask: &mut u64, yes: bool| *mask |= if yes { bit } else { 0 };
        set(&mut m.quote, c == b'"');
        set(&mut m.backslash, c == b'\\');
        set(&mut m.ctrl, c < 0x20);
        set(&mut m.high, c >= 0x80);
        set(
            &mut m.op,
            matches!(c, b'{' | b'}' | b'[' | b']' | b':' | b','),
        );
        set(&mut m.ws, matches!(c, b' ' | b'\t' | b'\n' | b'\r'));
    }
    m.quote_xor = prefix_xor(m.quote);
    m
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::Block;
    use std::arch::x86_64::*;

    /// [`super::flatten_portable`] with AVX-512 VBMI2: the byte indices of the set
    /// bits compressed to the front of one register, then widened 16 at a time.
    ///
    /// # Safety
    /// The CPU must support AVX-512F, AVX-512BW and AVX-512VBMI2.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi2")]
    pub(super) unsafe fn flatten_avx512(out: &mut [u32], base: u32, mask: u64) {
        const IOTA: [u8; 64] = {
            let mut a = [0u8; 64];
            let mut i = 0;
            while i < 64 {
                a[i] = i as u8;
                i += 1;
            }
            a
        };
        // SAFETY: reads the 64 bytes of IOTA.
        let iota = unsafe { _mm512_loadu_si512(IOTA.as_ptr().cast()) };
        let packed = _mm512_maskz_compress_epi8(mask, iota);
        let base = _mm512_set1_epi32(base as i32);
        let count = mask.count_ones() as usize;
        let store = |out: &mut [u32], g: usize, bytes: __m128i| {
            if let Some(dst) = out.get_mut(16 * g..16 * g + 16) {
                let v = _mm512_add_epi32(_mm512_cvtepu8_epi32(bytes), base);
                // SAFETY: `dst` holds exactly 16 u32 (unaligned store).
                unsafe { _mm512_storeu_si512(dst.as_mut_ptr().cast(), v) };
            }
        };
        store(out, 0, _mm512_castsi512_si128(packed));
        if count > 16 {
            store(out, 1, _mm512_extracti32x4_epi32::<1>(packed));
            if count > 32 {
                store(out, 2, _mm512_extracti32x4_epi32::<2>(packed));
                if count > 48 {
                    store(out, 3, _mm512_extracti32x4_epi32::<3>(packed));
                }
            }
        }
    }

    /// AVX-512BW, the whole block at once: structural and whitespace bytes by two
    /// nibble lookups (simdjson's classification, tables of our own: bit 0 `[]{}`,
    /// 1 `,`, 2 `:`, 3 space, 4 tab/LF/CR), the in-string prefix XOR by a carry-less
    /// multiply with all ones.
    ///
    /// # Safety
    /// The CPU must support AVX-512F, AVX-512BW and PCLMULQDQ.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,pclmulqdq")]
    pub(super) unsafe fn block_avx512(b: &[u8; 64]) -> Block {
        const LO: [i8; 16] = [8, 0, 0, 0, 0, 0, 0, 0, 0, 16, 20, 1, 2, 17, 0, 0];
        const HI: [i8; 16] = [16, 0, 10, 4, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
        // SAFETY: the loads read exactly the 64 bytes of `b` and the 16 of each table.
        let (v, lo_t, hi_t) = unsafe {
            (
                _mm512_loadu_si512(b.as_ptr().cast()),
                _mm512_broadcast_i32x4(_mm_loadu_si128(LO.as_ptr().cast())),
                _mm512_broadcast_i32x4(_mm_loadu_si128(HI.as_ptr().cast())),
            )
        };
        let nib = _mm512_set1_epi8(0x0f);
        let lo = _mm512_shuffle_epi8(lo_t, _mm512_and_si512(v, nib));
        let hi = _mm512_shuffle_epi8(hi_t, _mm512_and_si512(_mm512_srli_epi16(v, 4), nib));
        let class = _mm512_and_si512(lo, hi);
        let quote = _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8(b'"' as i8));
        let ones = _mm_set1_epi8(-1);
        let quote_xor = _mm_cvtsi128_si64(_mm_clmulepi64_si128(
            _mm_cvtsi64_si128(quote as i64),
            ones,
            0,
        )) as u64;
        Block {
            quote,
            backslash: _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8(b'\\' as i8)),
            ctrl: _mm512_cmplt_epu8_mask(v, _mm512_set1_epi8(0x20)),
            high: _mm512_movepi8_mask(v),
            op: _mm512_test_epi8_mask(class, _mm512_set1_epi8(0x07)),
            ws: _mm512_test_epi8_mask(class, _mm512_set1_epi8(0x18)),
            quote_xor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The AVX-512 classifier and flatten give the portable ones' results, on every
    /// byte value and on random masks.
    #[test]
    fn classifiers_agree() {
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        for round in 0..2000 {
            let mut b = [0u8; 64];
            for (i, c) in b.iter_mut().enumerate() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                // Cover all 256 values in the first rounds, then random bytes.
                *c = if round < 4 {
                    (round * 64 + i) as u8
                } else {
                    x as u8
                };
            }
            let want = block_portable(&b);
            #[cfg(target_arch = "x86_64")]
            {
                if avx512() {
                    // SAFETY: checked just above.
                    assert_eq!(unsafe { x86::block_avx512(&b) }, want);
                    let mask = x.rotate_left(round as u32) & (x >> (round % 64));
                    let (mut got, mut want) = ([0u32; 64], [0u32; 64]);
                    flatten_portable(&mut want, 640, mask);
                    // SAFETY: checked just above.
                    unsafe { x86::flatten_avx512(&mut got, 640, mask) };
                    let count = mask.count_ones() as usize;
                    assert_eq!(got[..count], want[..count]);
                }
            }
        }
    }

    /// Token positions, by every level.
    #[test]
    fn tokens() {
        let mut idx = Index::default();
        for level in Level::all_supported() {
            let toks = |idx: &mut Index, s: &[u8]| -> Option<Vec<u32>> {
                idx.build(s, level).then(|| idx.toks[..idx.len].to_vec())
            };
            let s = br#" {"a b":[12, true,"{x}"],"c":-1.5e3} "#;
            assert_eq!(
                toks(&mut idx, s),
                Some(vec![
                    1, 2, 6, 7, 8, 9, 11, 13, 17, 18, 22, 23, 24, 25, 27, 28, 29, 35, 37, 37
                ])
            );
            assert_eq!(
                toks(&mut idx, s),
                Some(idx_tokens_of(std::str::from_utf8(s).unwrap()))
            );
            assert_eq!(toks(&mut idx, b""), Some(vec![0, 0]));
            let pretty = "{\n\t\"é\": \"ü\"\r\n}";
            assert_eq!(
                toks(&mut idx, pretty.as_bytes()),
                Some(idx_tokens_of(pretty))
            );
            // Whole blocks and a tail, tokens across block edges.
            let long = format!("[{}]", vec!["\"0123456789\",123456"; 40].join(","));
            let got = toks(&mut idx, long.as_bytes()).unwrap();
            assert_eq!(got, idx_tokens_of(&long));
            for bad in [
                &br#"{"a\"b":1}"#[..],
                b"[\"tab\there\"]",
                b"[\"unterminated]",
                b"[\"\xff\"]",
                b"\"\xc3\"",
            ] {
                assert_eq!(toks(&mut idx, bad), None, "{bad:?}");
            }
            // The string state carries across blocks.
            let mut across = vec![b' '; 63];
            across.push(b'"');
            across.extend_from_slice(b"\nstill in the string\"");
            assert_eq!(toks(&mut idx, &across), None);
            across.retain(|&c| c != b'\n');
            assert_eq!(toks(&mut idx, &across), Some(vec![63, 83, 84, 84]));
        }
    }

    /// Token positions computed naively, byte by byte (no backslashes).
    fn idx_tokens_of(s: &str) -> Vec<u32> {
        let b = s.as_bytes();
        let mut out = Vec::new();
        let mut inside = false;
        let mut prev_scalar = false;
        for (i, &c) in b.iter().enumerate() {
            if c == b'"' {
                out.push(i as u32);
                inside = !inside;
                prev_scalar = false;
                continue;
            }
            if inside {
                continue;
            }
            let op = b"{}[]:,".contains(&c);
            let ws = b" \t\n\r".contains(&c);
            if op {
                out.push(i as u32);
            }
            let scalar = !op && !ws;
            if scalar && !prev_scalar {
                out.push(i as u32);
            }
            prev_scalar = scalar;
        }
        out.extend([b.len() as u32; 2]);
        out
    }
}
