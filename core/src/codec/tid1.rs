//! `tid1`: tidstream's own compact frame, version 1 (documented byte by byte in
//! `docs/TID1.md`; a published version never changes: a new layout gets a new
//! version number).
//!
//! ```text
//! off  len  type     field
//! 0    1    u8       version = 1
//! 1    1    u8       flags: bit0 tilt, bit1 fire, bit2 low battery, bit3 lid open,
//!                    bit4 interrupt uplink, bit5 no echo (distance invalid),
//!                    bits 6-7 reserved (must be 0)
//! 2    4    u32 LE   measured_at: device clock, Unix seconds (UTC)
//! 6    2    u16 LE   distance, mm
//! 8    2    s16 LE   temperature, 0.1 °C; -32768 (0x8000) = not measured
//! 10   1    u8       battery, % (0..100); 255 = unknown
//! 11   1    u8       battery voltage: 2.00 V + n × 0.01 V; 255 = unknown
//! 12   1    u8       n = stored readings that follow (0..=32)
//! 13   4n            stored reading i: u16 LE age (minutes before measured_at),
//!                    u16 LE distance mm (65535 = no echo); oldest first
//! 13+4n 2   u16 LE   CRC-16/CCITT-FALSE of bytes 0 .. 13+4n
//! ```
//! Frame length is 15 + 4n bytes (15 to 143).

use super::bytes::{crc16_ccitt, u16_le, u8_at};
use super::{decode_rows, Codec, EncodeError, FportSource, ModelInfo, PayloadSource};
use crate::error::{DecodeError, DecodeResult, ErrorKind};
use crate::reading::{
    alarm, chunk_col, ChunkCols, Fields, Reading, ReadingColumns, StoredReading, CHUNK,
};
use crate::value::Value;

pub const VERSION: u8 = 1;
pub const HEADER_LEN: usize = 13;
pub const CRC_LEN: usize = 2;
pub const MAX_STORED: usize = 32;
/// Field starts of the fixed header (for truncation offsets).
const HEADER_FIELDS: [usize; 8] = [0, 1, 2, 6, 8, 10, 11, 12];

pub mod flag {
    pub const TILT: u8 = 1 << 0;
    pub const FIRE: u8 = 1 << 1;
    pub const LOW_BATTERY: u8 = 1 << 2;
    pub const LID_OPEN: u8 = 1 << 3;
    pub const INTERRUPT: u8 = 1 << 4;
    pub const NO_ECHO: u8 = 1 << 5;
    pub const RESERVED: u8 = 0b1100_0000;
}

/// A parsed, checked tid1 frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Tid1Frame {
    pub flags: u8,
    pub measured_at_s: u32,
    pub distance_mm: u16,
    pub temperature_dc: i16,
    pub battery_pct: u8,
    pub battery_code: u8,
    /// (age in minutes, distance mm)
    pub stored: Vec<(u16, u16)>,
}

pub fn parse(p: &[u8]) -> DecodeResult<Tid1Frame> {
    if p.is_empty() {
        return Err(DecodeError::new(ErrorKind::EmptyPayload, 0));
    }
    let version = u8_at(p, 0)?;
    if version != VERSION {
        return Err(DecodeError::new(
            ErrorKind::UnsupportedVersion {
                version: u32::from(version),
                expected: u32::from(VERSION),
            },
            0,
        ));
    }
    if p.len() < HEADER_LEN {
        // The header field that is cut.
        let at = HEADER_FIELDS
            .iter()
            .rev()
            .copied()
            .find(|&s| s <= p.len())
            .unwrap_or(0);
        let end = HEADER_FIELDS
            .iter()
            .copied()
            .find(|&s| s > at)
            .unwrap_or(HEADER_LEN);
        return Err(DecodeError::truncated(at, end - at, p.len() - at));
    }
    let n = usize::from(p[12]);
    if n > MAX_STORED {
        return Err(DecodeError::new(
            ErrorKind::InvalidValue {
                what: "more than 32 stored readings",
            },
            12,
        ));
    }
    let body = HEADER_LEN + 4 * n;
    if p.len() < body {
        let at = HEADER_LEN + 4 * ((p.len() - HEADER_LEN) / 4);
        return Err(DecodeError::truncated(at, 4, p.len() - at));
    }
    if p.len() < body + CRC_LEN {
        return Err(DecodeError::truncated(body, CRC_LEN, p.len() - body));
    }
    if p.len() > body + CRC_LEN {
        return Err(DecodeError::new(
            ErrorKind::LengthMismatch {
                expected: body + CRC_LEN,
                actual: p.len(),
            },
            body + CRC_LEN,
        ));
    }
    let expected = u16_le(p, body)?;
    let actual = crc16_ccitt(&p[..body]);
    if expected != actual {
        return Err(DecodeError::new(
            ErrorKind::CrcMismatch {
                expected: u32::from(expected),
                actual: u32::from(actual),
            },
            body,
        ));
    }
    let flags = p[1];
    if flags & flag::RESERVED != 0 {
        return Err(DecodeError::new(
            ErrorKind::InvalidValue {
                what: "reserved flag bits set",
            },
            1,
        ));
    }
    let mut stored = Vec::with_capacity(n);
    for k in 0..n {
        let at = HEADER_LEN + 4 * k;
        stored.push((u16_le(p, at)?, u16_le(p, at + 2)?));
    }
    Ok(Tid1Frame {
        flags,
        measured_at_s: u32::from_le_bytes([p[2], p[3], p[4], p[5]]),
        distance_mm: u16_le(p, 6)?,
        temperature_dc: u16_le(p, 8)? as i16,
        battery_pct: p[10],
        battery_code: p[11],
        stored,
    })
}

impl Tid1Frame {
    fn temperature_c(&self) -> Option<f64> {
        (self.temperature_dc != i16::MIN).then(|| f64::from(self.temperature_dc) / 10.0)
    }
    fn battery_pct(&self) -> Option<f64> {
        (self.battery_pct != 255).then(|| f64::from(self.battery_pct))
    }
    fn battery_v(&self) -> Option<f64> {
        (self.battery_code != 255).then(|| (200.0 + f64::from(self.battery_code)) / 100.0)
    }
    fn distance(&self) -> Option<f64> {
        (self.flags & flag::NO_ECHO == 0).then(|| f64::from(self.distance_mm))
    }
}

pub struct Tid1 {
    info: ModelInfo,
}

/// A frame without stored readings.
const SHORT_LEN: usize = HEADER_LEN + CRC_LEN;
/// Validity / boolean bits of 64 rows, kept in registers while the rows are decoded.
#[derive(Default)]
struct RowWords {
    fast: u64,
    dist: u64,
    temp: u64,
    bpct: u64,
    bv: u64,
    tilt: u64,
    fire: u64,
}

impl RowWords {
    fn store(&self, j: usize, c: &mut ChunkCols) {
        use chunk_col as col;
        c.valid[col::DISTANCE][j] = self.dist;
        c.valid[col::TEMPERATURE][j] = self.temp;
        c.valid[col::BATTERY_PCT][j] = self.bpct;
        c.valid[col::BATTERY_V][j] = self.bv;
        c.valid[col::MEASURED_AT][j] = self.fast;
        c.valid[col::TILT][j] = self.fast;
        c.valid[col::FIRE][j] = self.fast;
        c.tilt[j] = self.tilt;
        c.fire_alarm[j] = self.fire;
    }
}

/// Row `k` of a chunk: the same values as [`Codec::decode`] for a checked 15-byte
/// frame (no stored readings).
#[inline(always)]
fn short_row(k: usize, p: &[u8; SHORT_LEN], c: &mut ChunkCols, w: &mut RowWords) {
    let bit = 1u64 << (k % 64);
    let flags = p[1];
    let dist = u16::from_le_bytes([p[6], p[7]]);
    let temp = i16::from_le_bytes([p[8], p[9]]);
    let (bpct, bcode) = (p[10], p[11]);
    let on = |cond: bool| if cond { bit } else { 0 };
    w.fast |= bit;
    w.dist |= on(flags & flag::NO_ECHO == 0);
    w.temp |= on(temp != i16::MIN);
    w.bpct |= on(bpct != 255);
    w.bv |= on(bcode != 255);
    w.tilt |= on(flags & flag::TILT != 0);
    w.fire |= on(flags & flag::FIRE != 0);
    c.distance_mm[k] = f64::from(dist);
    c.temperature_c[k] = f64::from(temp) / 10.0;
    c.battery_pct[k] = f64::from(bpct);
    c.battery_v[k] = (200.0 + f64::from(bcode)) / 100.0;
    c.measured_at_ms[k] = i64::from(u32::from_le_bytes([p[2], p[3], p[4], p[5]])) * 1000;
    let f = u16::from(flags);
    // tid1 flag bits -> alarm bits (TILT 0->2, FIRE 1->1, LOW_BATTERY 2->3,
    // LID_OPEN 3->8, INTERRUPT 4->6, NO_ECHO 5->7), as `decode` maps them.
    c.alarm_flags[k] =
        (f & 1) << 2 | (f & 2) | (f & 4) << 1 | (f & 8) << 5 | (f & 16) << 2 | (f & 32) << 2;
}

impl Tid1 {
    pub fn new() -> Self {
        Tid1 {
            info: ModelInfo {
                name: "tid1".into(),
                vendor: "tidstream".into(),
                description: "tidstream compact frame v1 (docs/TID1.md)".into(),
                fports: vec![],
                engine: "builtin",
                can_encode: true,
            },
        }
    }
}

impl Default for Tid1 {
    fn default() -> Self {
        Self::new()
    }
}

fn opt_num(v: Option<f64>) -> Value {
    v.map_or(Value::Null, Value::Num)
}

impl Codec for Tid1 {
    fn info(&self) -> &ModelInfo {
        &self.info
    }
    fn fields(&self) -> Fields {
        Fields(
            Fields::DISTANCE
                | Fields::TEMPERATURE
                | Fields::BATTERY_PCT
                | Fields::BATTERY_V
                | Fields::TILT
                | Fields::FIRE
                | Fields::MEASURED_AT
                | Fields::STORED,
        )
    }

    fn decode_vendor(&self, payload: &[u8], _fport: Option<u8>) -> DecodeResult<Value> {
        let f = parse(payload)?;
        let flags = Value::Obj(
            [
                ("tilt", flag::TILT),
                ("fire", flag::FIRE),
                ("low_battery", flag::LOW_BATTERY),
                ("lid_open", flag::LID_OPEN),
                ("interrupt", flag::INTERRUPT),
                ("no_echo", flag::NO_ECHO),
            ]
            .iter()
            .map(|(k, b)| ((*k).to_string(), Value::Bool(f.flags & b != 0)))
            .collect(),
        );
        let stored = Value::Arr(
            f.stored
                .iter()
                .map(|&(age, d)| {
                    Value::Obj(vec![
                        (
                            "measured_at".into(),
                            Value::Num(f64::from(f.measured_at_s) - 60.0 * f64::from(age)),
                        ),
                        (
                            "distance_mm".into(),
                            if d == u16::MAX {
                                Value::Null
                            } else {
                                Value::Num(f64::from(d))
                            },
                        ),
                    ])
                })
                .collect(),
        );
        Ok(Value::Obj(vec![
            ("version".into(), Value::Num(f64::from(VERSION))),
            ("flags".into(), flags),
            ("measured_at".into(), Value::Num(f64::from(f.measured_at_s))),
            ("distance_mm".into(), opt_num(f.distance())),
            ("temperature_c".into(), opt_num(f.temperature_c())),
            ("battery_pct".into(), opt_num(f.battery_pct())),
            ("battery_v".into(), opt_num(f.battery_v())),
            ("stored".into(), stored),
        ]))
    }

    fn decode(&self, payload: &[u8], _fport: Option<u8>, out: &mut Reading) -> DecodeResult<()> {
        let f = parse(payload)?;
        out.distance_mm = f.distance();
        out.temperature_c = f.temperature_c();
        out.battery_pct = f.battery_pct();
        out.battery_v = f.battery_v();
        out.tilt = Some(f.flags & flag::TILT != 0);
        out.fire_alarm = Some(f.flags & flag::FIRE != 0);
        let t = i64::from(f.measured_at_s) * 1000;
        out.measured_at_ms = Some(t);
        let mut flags = 0;
        for (bit, a) in [
            (flag::TILT, alarm::TILT),
            (flag::FIRE, alarm::FIRE),
            (flag::LOW_BATTERY, alarm::LOW_BATTERY),
            (flag::LID_OPEN, alarm::LID_OPEN),
            (flag::INTERRUPT, alarm::INTERRUPT),
            (flag::NO_ECHO, alarm::NO_SENSOR),
        ] {
            if f.flags & bit != 0 {
                flags |= a;
            }
        }
        if !f.stored.is_empty() {
            flags |= alarm::STORED;
        }
        out.alarm_flags = flags;
        for &(age, d) in &f.stored {
            out.stored.push(StoredReading {
                measured_at_ms: t - i64::from(age) * 60_000,
                distance_mm: (d != u16::MAX).then(|| f64::from(d)),
                temperature_c: None,
            });
        }
        Ok(())
    }

    /// Frames without stored readings (15 bytes, the usual case) are decoded in one
    /// fused loop per chunk of rows straight into the columns; any other row (stored
    /// readings, a bad CRC, truncated, null) goes through [`Codec::decode`].
    fn decode_batch(&self, batch: &dyn PayloadSource, fports: &FportSource) -> ReadingColumns {
        let n = batch.len();
        let Some(flat) = batch.flat() else {
            let mut cols = ReadingColumns::new(n, self.fields());
            decode_rows(self, batch, fports, 0..n, &mut cols);
            return cols.finish();
        };
        let mut cols = ReadingColumns::for_chunks(n, self.fields());
        // tid1 ignores the fPort, but a per-row fPort outside 0..=255 is an error.
        let per_row_fports = matches!(fports, FportSource::PerRow(_));
        let mut slow = Vec::new();
        let mut starts = [0usize; CHUNK];
        let mut lens = [0usize; CHUNK];
        let mut chunk = Box::<ChunkCols>::default();
        let mut r0 = 0;
        while r0 < n {
            let m = CHUNK.min(n - r0);
            flat.ranges(r0, &mut starts[..m], &mut lens[..m]);
            chunk.reset(m);
            for j in 0..m.div_ceil(64) {
                let mut w = RowWords::default();
                for k in 64 * j..(64 * j + 64).min(m) {
                    let frame = match lens[k] {
                        SHORT_LEN => flat.data.get(starts[k]..starts[k] + SHORT_LEN),
                        _ => None,
                    };
                    let fast = frame
                        .and_then(|p| <&[u8; SHORT_LEN]>::try_from(p).ok())
                        .filter(|p| {
                            p[0] == VERSION
                                && p[12] == 0
                                && p[1] & flag::RESERVED == 0
                                && crc16_ccitt(&p[..HEADER_LEN])
                                    == u16::from_le_bytes([p[13], p[14]])
                                && (!per_row_fports || fports.get(r0 + k).is_ok())
                        });
                    match fast {
                        Some(p) => short_row(k, p, &mut chunk, &mut w),
                        None => slow.push(r0 + k),
                    }
                }
                w.store(j, &mut chunk);
            }
            cols.push_chunk(&chunk, m);
            r0 += m;
        }
        decode_rows(self, batch, fports, slow, &mut cols);
        cols.finish()
    }

    fn encode(&self, r: &Reading, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let t_ms = r.measured_at_ms.unwrap_or(0);
        let t = u32::try_from(t_ms.div_euclid(1000))
            .map_err(|_| EncodeError(format!("measured_at {t_ms} ms is outside 1970..2106")))?;
        if r.stored.len() > MAX_STORED {
            return Err(EncodeError(format!(
                "{} stored readings; tid1 carries at most {MAX_STORED}",
                r.stored.len()
            )));
        }
        let mut flags = 0u8;
        let on = |b: bool, f: u8| if b { f } else { 0 };
        flags |= on(
            r.tilt == Some(true) || r.alarm_flags & alarm::TILT != 0,
            flag::TILT,
        );
        flags |= on(
            r.fire_alarm == Some(true) || r.alarm_flags & alarm::FIRE != 0,
            flag::FIRE,
        );
        flags |= on(r.alarm_flags & alarm::LOW_BATTERY != 0, flag::LOW_BATTERY);
        flags |= on(r.alarm_flags & alarm::LID_OPEN != 0, flag::LID_OPEN);
        flags |= on(r.alarm_flags & alarm::INTERRUPT != 0, flag::INTERRUPT);
        let dist = match r.distance_mm {
            None => {
                flags |= flag::NO_ECHO;
                0
            }
            Some(d) if (0.0..=65535.0).contains(&d.round()) => d.round() as u16,
            Some(d) => return Err(EncodeError(format!("distance {d} mm is outside 0..65535"))),
        };
        let temp = match r.temperature_c {
            None => i16::MIN,
            Some(c) => {
                let v = (c * 10.0).round();
                if !(-32767.0..=32767.0).contains(&v) {
                    return Err(EncodeError(format!("temperature {c} °C is out of range")));
                }
                v as i16
            }
        };
        let bpct = match r.battery_pct {
            None => 255,
            Some(b) if (0.0..=100.0).contains(&b.round()) => b.round() as u8,
            Some(b) => return Err(EncodeError(format!("battery {b}% is outside 0..100"))),
        };
        let bv = match r.battery_v {
            None => 255,
            Some(v) => {
                let code = (v * 100.0).round() - 200.0;
                if !(0.0..=254.0).contains(&code) {
                    return Err(EncodeError(format!(
                        "battery {v} V is outside 2.00..4.54 V"
                    )));
                }
                code as u8
            }
        };
        let start = out.len();
        out.push(VERSION);
        out.push(flags);
        out.extend_from_slice(&t.to_le_bytes());
        out.extend_from_slice(&dist.to_le_bytes());
        out.extend_from_slice(&temp.to_le_bytes());
        out.push(bpct);
        out.push(bv);
        out.push(r.stored.len() as u8);
        for s in &r.stored {
            let age_min = (t_ms - s.measured_at_ms).div_euclid(60_000);
            let age = u16::try_from(age_min).map_err(|_| {
                EncodeError(format!(
                    "stored reading {age_min} min old: must be 0..65535 min before measured_at"
                ))
            })?;
            let d = match s.distance_mm {
                None => u16::MAX,
                Some(d) if (0.0..65535.0).contains(&d.round()) => d.round() as u16,
                Some(d) => {
                    return Err(EncodeError(format!(
                        "stored distance {d} mm is outside 0..65534"
                    )))
                }
            };
            out.extend_from_slice(&age.to_le_bytes());
            out.extend_from_slice(&d.to_le_bytes());
        }
        let crc = crc16_ccitt(&out[start..]);
        out.extend_from_slice(&crc.to_le_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Reading {
        Reading {
            distance_mm: Some(1234.0),
            temperature_c: Some(-3.5),
            battery_pct: Some(87.0),
            battery_v: Some(3.61),
            tilt: Some(false),
            fire_alarm: Some(true),
            alarm_flags: alarm::FIRE,
            measured_at_ms: Some(1_764_000_000_000),
            stored: vec![StoredReading {
                measured_at_ms: 1_764_000_000_000 - 3_600_000,
                distance_mm: Some(1300.0),
                temperature_c: None,
            }],
            ..Reading::default()
        }
    }

    #[test]
    fn round_trip_and_every_truncation() {
        let c = Tid1::new();
        let mut buf = Vec::new();
        c.encode(&sample(), &mut buf).unwrap();
        assert_eq!(buf.len(), 19);
        let mut r = Reading::default();
        c.decode(&buf, None, &mut r).unwrap();
        assert_eq!(r.distance_mm, Some(1234.0));
        assert_eq!(r.temperature_c, Some(-3.5));
        assert_eq!(r.battery_v, Some(3.61));
        assert_eq!(r.fire_alarm, Some(true));
        assert_eq!(r.stored.len(), 1);
        assert_eq!(r.stored[0].distance_mm, Some(1300.0));
        assert_eq!(r.alarm_flags, alarm::FIRE | alarm::STORED);
        for k in 1..buf.len() {
            let e = parse(&buf[..k]).unwrap_err();
            assert_eq!(e.kind.name(), "truncated", "cut at {k}");
            assert!(e.offset <= k);
        }
        let mut bad = buf.clone();
        bad[7] ^= 1;
        assert_eq!(parse(&bad).unwrap_err().kind.name(), "crc_mismatch");
        bad = buf.clone();
        bad[0] = 2;
        assert_eq!(parse(&bad).unwrap_err().kind.name(), "unsupported_version");
        bad = buf.clone();
        bad.push(0);
        assert_eq!(parse(&bad).unwrap_err().kind.name(), "length_mismatch");
    }

    #[test]
    fn truncation_offsets_name_the_field() {
        let c = Tid1::new();
        let mut buf = Vec::new();
        c.encode(&sample(), &mut buf).unwrap();
        assert_eq!(parse(&buf[..1]).unwrap_err().offset, 1);
        assert_eq!(parse(&buf[..4]).unwrap_err().offset, 2);
        assert_eq!(parse(&buf[..7]).unwrap_err().offset, 6);
        assert_eq!(parse(&buf[..14]).unwrap_err().offset, 13);
        assert_eq!(parse(&buf[..17]).unwrap_err().offset, 17);
    }
}
