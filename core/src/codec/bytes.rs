//! Checked reads from untrusted payloads. Every read returns `Truncated` with the
//! offset of the element that did not fit; nothing here can panic.

use crate::error::{DecodeError, DecodeResult};

/// Byte order of a multi-byte field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Big,
    Little,
}

/// `len` bytes at `at`, or a truncation error naming `at` (the element's start).
#[inline]
pub fn take(p: &[u8], at: usize, len: usize) -> DecodeResult<&[u8]> {
    match p.get(at..at.saturating_add(len)) {
        Some(s) if at.checked_add(len).is_some() => Ok(s),
        _ => Err(DecodeError::truncated(at, len, p.len().saturating_sub(at))),
    }
}

/// Unsigned integer of `len` (1..=8) bytes.
#[inline]
pub fn uint(p: &[u8], at: usize, len: usize, order: Order) -> DecodeResult<u64> {
    let s = take(p, at, len)?;
    let mut v: u64 = 0;
    match order {
        Order::Big => {
            for &b in s {
                v = (v << 8) | u64::from(b);
            }
        }
        Order::Little => {
            for &b in s.iter().rev() {
                v = (v << 8) | u64::from(b);
            }
        }
    }
    Ok(v)
}

/// Sign-extend the low `bits` of `v`.
#[inline]
pub fn sign_extend(v: u64, bits: u32) -> i64 {
    if bits == 0 || bits >= 64 {
        return v as i64;
    }
    let shift = 64 - bits;
    ((v << shift) as i64) >> shift
}

#[inline]
pub fn u8_at(p: &[u8], at: usize) -> DecodeResult<u8> {
    p.get(at)
        .copied()
        .ok_or_else(|| DecodeError::truncated(at, 1, 0))
}

#[inline]
pub fn u16_be(p: &[u8], at: usize) -> DecodeResult<u16> {
    let s = take(p, at, 2)?;
    Ok(u16::from_be_bytes([s[0], s[1]]))
}

#[inline]
pub fn u16_le(p: &[u8], at: usize) -> DecodeResult<u16> {
    let s = take(p, at, 2)?;
    Ok(u16::from_le_bytes([s[0], s[1]]))
}

/// Lowercase hex of a byte slice.
pub fn hex_lower(b: &[u8]) -> String {
    const D: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for &x in b {
        s.push(D[usize::from(x >> 4)] as char);
        s.push(D[usize::from(x & 15)] as char);
    }
    s
}

/// CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no xor-out), two
/// bytes per table step (the CRC is linear, so two bytes' effects are two lookups
/// XORed: half the dependent steps of the byte-wise table).
#[inline]
pub fn crc16_ccitt(data: &[u8]) -> u16 {
    let mut crc: u16 = 0xFFFF;
    let mut pairs = data.chunks_exact(2);
    for pair in &mut pairs {
        let x = crc ^ (u16::from(pair[0]) << 8 | u16::from(pair[1]));
        crc = CRC_T2[usize::from(x >> 8)] ^ CRC_T1[usize::from(x & 0xFF)];
    }
    for &b in pairs.remainder() {
        crc = (crc << 8) ^ CRC_T1[usize::from((crc >> 8) ^ u16::from(b))];
    }
    crc
}

/// The bit-by-bit definition (reference for the tables).
pub fn crc16_ccitt_bitwise(data: &[u8]) -> u16 {
    let mut crc: u16 = 0xFFFF;
    for &b in data {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// `CRC_T1[x]`: the CRC register after shifting `x << 8` through 8 bits.
const CRC_T1: [u16; 256] = {
    let mut t = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = (i as u16) << 8;
        let mut k = 0;
        while k < 8 {
            c = if c & 0x8000 != 0 {
                (c << 1) ^ 0x1021
            } else {
                c << 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

/// `CRC_T2[x]`: the same through 16 bits (`x` in the high byte, then a zero byte).
const CRC_T2: [u16; 256] = {
    let mut t = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let a = CRC_T1[i];
        t[i] = (a << 8) ^ CRC_T1[(a >> 8) as usize];
        i += 1;
    }
    t
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_check_value() {
        // The catalogue check value of CRC-16/CCITT-FALSE.
        assert_eq!(crc16_ccitt(b"123456789"), 0x29B1);
        assert_eq!(crc16_ccitt_bitwise(b"123456789"), 0x29B1);
        let mut x = 0x1234_5678u32;
        for len in 0..40 {
            let v: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect();
            assert_eq!(crc16_ccitt(&v), crc16_ccitt_bitwise(&v), "{v:?}");
        }
    }

    #[test]
    fn reads_are_checked() {
        let p = [1u8, 2, 3];
        assert_eq!(uint(&p, 1, 2, Order::Big).unwrap(), 0x0203);
        assert_eq!(uint(&p, 1, 2, Order::Little).unwrap(), 0x0302);
        let e = uint(&p, 2, 2, Order::Big).unwrap_err();
        assert_eq!(e.offset, 2);
        assert_eq!(
            e.kind,
            crate::error::ErrorKind::Truncated {
                needed: 2,
                available: 1
            }
        );
        assert!(take(&p, usize::MAX, 2).is_err());
        assert_eq!(sign_extend(0xFFFF, 16), -1);
    }
}
