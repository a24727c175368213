//! Container ids to dense state indices: int64 ids (open addressing, no hashing
//! library) or byte-string ids (interned). One kind per forecaster.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A small, fast multiplicative hasher for the interned string ids (ids are
/// application-chosen, not attacker-controlled, and the table only grows).
#[derive(Default, Clone, Copy)]
pub struct MulHasher(u64);

impl Hasher for MulHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut h = self.0 ^ 0xcbf2_9ce4_8422_2325;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut b = [0u8; 8];
            b.copy_from_slice(c);
            h = (h ^ u64::from_le_bytes(b))
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                .rotate_left(29);
        }
        for &b in chunks.remainder() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h ^ (h >> 31);
    }
}

type StrMap = HashMap<Box<[u8]>, u32, BuildHasherDefault<MulHasher>>;

/// Open-addressing map i64 -> u32 (linear probing, power-of-two capacity).
///
/// Small non-negative ids (below [`DENSE_MAX`]) go to a direct table instead.
#[derive(Clone, Default)]
pub struct IntMap {
    keys: Vec<i64>,
    vals: Vec<u32>,
    len: usize,
    shift: u32,
    dense: Vec<u32>,
}

/// Ids in `0..DENSE_MAX` are looked up in a direct table (4 bytes per id value).
pub const DENSE_MAX: i64 = 1 << 22;

const EMPTY: u32 = u32::MAX;

impl IntMap {
    #[inline]
    fn slot(&self, k: i64) -> usize {
        ((k as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> self.shift) as usize
    }

    fn grow(&mut self) {
        let cap = (self.keys.len() * 2).max(64);
        let old_k = std::mem::take(&mut self.keys);
        let old_v = std::mem::take(&mut self.vals);
        self.keys = vec![0; cap];
        self.vals = vec![EMPTY; cap];
        self.shift = 64 - cap.trailing_zeros();
        let mask = cap - 1;
        for (k, v) in old_k.into_iter().zip(old_v) {
            if v != EMPTY {
                let mut i = self.slot(k);
                while self.vals[i] != EMPTY {
                    i = (i + 1) & mask;
                }
                self.keys[i] = k;
                self.vals[i] = v;
            }
        }
    }

    #[inline]
    pub fn get(&self, k: i64) -> Option<u32> {
        if (0..DENSE_MAX).contains(&k) {
            return self.dense.get(k as usize).copied().filter(|&v| v != EMPTY);
        }
        if self.keys.is_empty() {
            return None;
        }
        let mask = self.keys.len() - 1;
        let mut i = self.slot(k);
        loop {
            let v = self.vals[i];
            if v == EMPTY {
                return None;
            }
            if self.keys[i] == k {
                return Some(v);
            }
            i = (i + 1) & mask;
        }
    }

    /// Index of `k`, inserting `next` if absent; returns (index, inserted).
    #[inline(always)]
    pub fn get_or_insert(&mut self, k: i64, next: u32) -> (u32, bool) {
        // hot path: a known id in the direct table
        if let Some(&v) = usize::try_from(k).ok().and_then(|ku| self.dense.get(ku)) {
            if v != EMPTY {
                return (v, false);
            }
        }
        self.get_or_insert_slow(k, next)
    }

    #[inline(never)]
    fn get_or_insert_slow(&mut self, k: i64, next: u32) -> (u32, bool) {
        if (0..DENSE_MAX).contains(&k) {
            let ku = k as usize;
            if ku >= self.dense.len() {
                self.dense
                    .resize((ku + 1).next_power_of_two().max(1024), EMPTY);
            }
            let v = self.dense[ku];
            if v != EMPTY {
                return (v, false);
            }
            self.dense[ku] = next;
            return (next, true);
        }
        if (self.len + 1) * 4 > self.keys.len() * 3 {
            self.grow();
        }
        let mask = self.keys.len() - 1;
        let mut i = self.slot(k);
        loop {
            let v = self.vals[i];
            if v == EMPTY {
                self.keys[i] = k;
                self.vals[i] = next;
                self.len += 1;
                return (next, true);
            }
            if self.keys[i] == k {
                return (v, false);
            }
            i = (i + 1) & mask;
        }
    }
}

/// The id kind of a forecaster (set by the first batch).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdKind {
    Unset,
    Int,
    Str,
}

/// Id registry: index -> id (for output) and id -> index.
#[derive(Clone)]
pub struct Ids {
    pub kind: IdKind,
    int_map: IntMap,
    str_map: StrMap,
    /// Int ids by index.
    pub ints: Vec<i64>,
    /// String ids by index (offsets into `str_data`, len + 1 entries).
    pub str_offsets: Vec<u64>,
    pub str_data: Vec<u8>,
}

impl Default for Ids {
    fn default() -> Self {
        Ids {
            kind: IdKind::Unset,
            int_map: IntMap::default(),
            str_map: StrMap::default(),
            ints: Vec::new(),
            str_offsets: vec![0],
            str_data: Vec::new(),
        }
    }
}

impl Ids {
    pub fn len(&self) -> usize {
        match self.kind {
            IdKind::Unset => 0,
            IdKind::Int => self.ints.len(),
            IdKind::Str => self.str_offsets.len() - 1,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Index of an int id; the second value is true when the id is new.
    #[inline(always)]
    pub fn int_index(&mut self, k: i64) -> (u32, bool) {
        let next = self.ints.len() as u32;
        let (i, new) = self.int_map.get_or_insert(k, next);
        if new {
            self.ints.push(k);
        }
        (i, new)
    }

    pub fn int_lookup(&self, k: i64) -> Option<u32> {
        self.int_map.get(k)
    }

    #[inline]
    pub fn str_index(&mut self, k: &[u8]) -> (u32, bool) {
        if let Some(&i) = self.str_map.get(k) {
            return (i, false);
        }
        let next = (self.str_offsets.len() - 1) as u32;
        self.str_map.insert(k.into(), next);
        self.str_data.extend_from_slice(k);
        self.str_offsets.push(self.str_data.len() as u64);
        (next, true)
    }

    pub fn str_lookup(&self, k: &[u8]) -> Option<u32> {
        self.str_map.get(k).copied()
    }

    /// The string id at `i` (bytes).
    pub fn str_at(&self, i: usize) -> &[u8] {
        let a = self.str_offsets[i] as usize;
        let b = self.str_offsets[i + 1] as usize;
        &self.str_data[a..b]
    }

    /// Rebuild the lookup maps from `ints` / `str_*` (after deserialising).
    pub fn rebuild(&mut self) {
        self.int_map = IntMap::default();
        self.str_map = StrMap::default();
        match self.kind {
            IdKind::Int => {
                for (i, &k) in self.ints.iter().enumerate() {
                    self.int_map.get_or_insert(k, i as u32);
                }
            }
            IdKind::Str => {
                for i in 0..self.str_offsets.len() - 1 {
                    let k: Box<[u8]> = self.str_at(i).into();
                    self.str_map.insert(k, i as u32);
                }
            }
            IdKind::Unset => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int_map_many() {
        let mut ids = Ids {
            kind: IdKind::Int,
            ..Default::default()
        };
        for k in 0..10_000i64 {
            let (i, new) = ids.int_index(k * 7919 - 5_000_000);
            assert!(new);
            assert_eq!(i as i64, k);
        }
        for k in 0..10_000i64 {
            assert_eq!(ids.int_lookup(k * 7919 - 5_000_000), Some(k as u32));
            assert_eq!(ids.int_index(k * 7919 - 5_000_000), (k as u32, false));
        }
        assert_eq!(ids.int_lookup(1), None);
    }

    #[test]
    fn str_ids_round_trip() {
        let mut ids = Ids {
            kind: IdKind::Str,
            ..Default::default()
        };
        assert_eq!(ids.str_index(b"a"), (0, true));
        assert_eq!(ids.str_index(b"bb"), (1, true));
        assert_eq!(ids.str_index(b"a"), (0, false));
        assert_eq!(ids.str_at(1), b"bb");
        let mut c = ids.clone();
        c.rebuild();
        assert_eq!(c.str_lookup(b"bb"), Some(1));
    }
}
