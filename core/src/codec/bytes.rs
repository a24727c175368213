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
        _ => Err(DecodeError::truncated(
            at,
            len,
            p.len().saturating_sub(at),
        )),
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

/// CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no xor-out).
pub fn crc16_ccitt(data: &[u8]) -> u16 {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_check_value() {
        // The catalogue check value of CRC-16/CCITT-FALSE.
        assert_eq!(crc16_ccitt(b"123456789"), 0x29B1);
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
