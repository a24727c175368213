//! Dingtek DF702 / DF703 waste-bin sensors (fPort 3): a `0x80 … 0x81` frame dispatched
//! on its total length (17: heartbeat, 25: heartbeat with GPS, or parameters when
//! byte 3 is 0x03). Multi-byte integers big-endian; GPS floats little-endian.
//!
//! Vendor-native output reproduces two vendor bugs on purpose (CODECS.md):
//! - `hex2float` divides the mantissa by 0x7FFFFF instead of 2^23, so the GPS strings
//!   differ from IEEE-754 in the 6th decimal;
//! - the angle test `bytes[9] & (0x0f === 0x00)` is always 0, so the angle is always
//!   negated.
//!
//! The normalized reading uses IEEE-754 floats and does not carry the angle.

use crate::codec::bytes::{u16_be, u8_at};
use crate::codec::{check_fport, Codec, EncodeError, ModelInfo};
use crate::error::{DecodeError, DecodeResult, ErrorKind};
use crate::reading::{alarm, Fields, Reading};
use crate::value::{js_to_fixed, Value};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Variant {
    Df702,
    Df703,
}

pub struct Dingtek {
    info: ModelInfo,
    variant: Variant,
}

/// The vendor's `hex2float` (mantissa / 0x7FFFFF: wrong on purpose, see module docs).
fn vendor_hex2float(num: u32) -> f64 {
    let sign = if num & 0x8000_0000 != 0 { -1.0 } else { 1.0 };
    let exponent = i32::try_from((num >> 23) & 0xFF).unwrap_or(0) - 127;
    let mantissa = 1.0 + f64::from(num & 0x7F_FFFF) / f64::from(0x7F_FFFFu32);
    sign * mantissa * 2f64.powi(exponent)
}

fn f32_le(p: &[u8], at: usize) -> DecodeResult<u32> {
    match p.get(at..at + 4) {
        Some(s) => Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]])),
        None => Err(DecodeError::truncated(at, 4, p.len().saturating_sub(at))),
    }
}

/// Offsets of the heartbeat fields (they shift by 8 in GPS frames).
struct Layout {
    gps: bool,
    temp: usize,
    angle: usize,
    alarms1: usize,
    alarms2: usize,
    counter: usize,
}

impl Layout {
    fn for_len(n: usize) -> Layout {
        let s = if n == 25 { 8 } else { 0 };
        Layout {
            gps: n == 25,
            temp: 8 + s,
            angle: 10 + s,
            alarms1: 11 + s,
            alarms2: 12 + s,
            counter: 13 + s,
        }
    }
}

impl Dingtek {
    pub fn df702() -> Self {
        Self::new(
            "dingtek-df702",
            "DF702 ultrasonic waste-bin sensor",
            Variant::Df702,
        )
    }
    pub fn df703() -> Self {
        Self::new(
            "dingtek-df703",
            "DF703 ultrasonic waste-bin sensor",
            Variant::Df703,
        )
    }
    fn new(name: &str, description: &str, variant: Variant) -> Self {
        Dingtek {
            info: ModelInfo {
                name: name.into(),
                vendor: "Dingtek".into(),
                description: description.into(),
                fports: vec![3],
                engine: "builtin",
                can_encode: variant == Variant::Df703,
            },
            variant,
        }
    }

    /// Frame checks shared by both outputs: length, head and tail markers.
    fn check(&self, p: &[u8]) -> DecodeResult<()> {
        if p.is_empty() {
            return Err(DecodeError::new(ErrorKind::EmptyPayload, 0));
        }
        let head = u8_at(p, 0)?;
        if head != 0x80 {
            return Err(DecodeError::new(
                ErrorKind::BadHeader {
                    found: u32::from(head),
                },
                0,
            ));
        }
        match p.len() {
            17 | 25 => {}
            n if n < 17 => return Err(DecodeError::truncated(n, 17 - n, 0)),
            n if n < 25 => return Err(DecodeError::truncated(n, 25 - n, 0)),
            n => {
                return Err(DecodeError::new(
                    ErrorKind::LengthMismatch {
                        expected: 25,
                        actual: n,
                    },
                    25,
                ))
            }
        }
        let tail = p[p.len() - 1];
        if tail != 0x81 {
            return Err(DecodeError::new(
                ErrorKind::BadHeader {
                    found: u32::from(tail),
                },
                p.len() - 1,
            ));
        }
        Ok(())
    }

    fn is_params(p: &[u8]) -> bool {
        p.len() == 25 && p.get(3) == Some(&0x03)
    }
}

impl Codec for Dingtek {
    fn info(&self) -> &ModelInfo {
        &self.info
    }
    fn fields(&self) -> Fields {
        Fields(
            Fields::DISTANCE | Fields::TEMPERATURE | Fields::TILT | Fields::FIRE | Fields::LOCATION,
        )
    }

    fn decode_vendor(&self, p: &[u8], fport: Option<u8>) -> DecodeResult<Value> {
        check_fport(&self.info, fport)?;
        if p.len() != 17 && p.len() != 25 {
            // The vendor decoder answers "wrong length" for any other length.
            return Err(DecodeError::new(
                ErrorKind::VendorError {
                    message: "wrong length",
                },
                0,
            ));
        }
        let num = |x: u32| Value::Num(f64::from(x));
        let s = |x: String| Value::Str(x);
        if Self::is_params(p) {
            let b = |i: usize| u32::from(p[i]);
            return Ok(Value::Obj(match self.variant {
                Variant::Df702 => vec![
                    ("periodic_interval".into(), s(format!("{} hours", b(7)))),
                    ("detection_interval".into(), s(format!("{} minutes", b(8)))),
                    ("full_alarm_threshold".into(), s(format!("{} cm", b(9)))),
                    ("fire_alarm_threshold".into(), s(format!("{} ℃", b(10)))),
                    ("tilt_alarm_threshold".into(), s(format!("{} °", b(11)))),
                    ("tilt_enable".into(), Value::Bool(b(12) != 0)),
                    (
                        "ultrasonic_range".into(),
                        s(format!("{} mm", if b(13) == 0 { 2000 } else { 5000 })),
                    ),
                ],
                Variant::Df703 => vec![
                    ("firmware".into(), s(format!("{}.{}", b(5), b(6)))),
                    ("uploadInterval".into(), num(b(7))),
                    ("detectInterval".into(), num(b(8))),
                    ("levelThreshold".into(), num(b(9))),
                    ("fireThreshold".into(), num(b(10))),
                    ("fallThreshold".into(), num(b(11))),
                    ("fallEnable".into(), Value::Bool(b(12) != 0)),
                    ("workMode".into(), num(b(14))),
                ],
            }));
        }
        let l = Layout::for_len(p.len());
        let level = u32::from(u16_be(p, 5)?);
        // Always negated: the vendor's precedence bug (module docs). JS `0 - 0` is 0.
        let angle = -f64::from(p[l.angle]) + 0.0;
        let temp = u32::from(p[l.temp]);
        let a1 = p[l.alarms1];
        let a2 = p[l.alarms2];
        let mut out: Vec<(String, Value)> = Vec::with_capacity(10);
        match self.variant {
            Variant::Df702 => out.push(("level".into(), s(format!("{level} mm")))),
            Variant::Df703 => out.push(("level".into(), num(level))),
        }
        if l.gps {
            let lon = vendor_hex2float(f32_le(p, 8)?);
            let lat = vendor_hex2float(f32_le(p, 12)?);
            out.push(("longitude".into(), s(js_to_fixed(lon, 6))));
            out.push(("latitude".into(), s(js_to_fixed(lat, 6))));
        }
        let (k_full, k_fire, k_tilt, k_bat) = match self.variant {
            Variant::Df702 => ("full", "fire", "tilt", "battery"),
            Variant::Df703 => ("alarmLevel", "alarmFire", "alarmFall", "alarmBattery"),
        };
        out.push((k_full.into(), Value::Bool(a1 >> 4 != 0)));
        out.push((k_fire.into(), Value::Bool(a1 & 0x0F != 0)));
        out.push((k_tilt.into(), Value::Bool(a2 >> 4 != 0)));
        out.push((k_bat.into(), Value::Bool(a2 & 0x0F != 0)));
        match self.variant {
            Variant::Df702 => {
                out.push((
                    "angle".into(),
                    s(format!("{} °", crate::value::js_number_to_string(angle))),
                ));
                out.push(("temperature".into(), s(format!("{temp} ℃"))));
            }
            Variant::Df703 => {
                out.push(("angle".into(), Value::Num(angle)));
                out.push(("temperature".into(), num(temp)));
                out.push(("frameCounter".into(), num(u32::from(u16_be(p, l.counter)?))));
            }
        }
        Ok(Value::Obj(out))
    }

    fn decode(&self, p: &[u8], fport: Option<u8>, out: &mut Reading) -> DecodeResult<()> {
        check_fport(&self.info, fport)?;
        self.check(p)?;
        if Self::is_params(p) {
            return Err(DecodeError::new(
                ErrorKind::VendorError {
                    message: "parameter packet, not a measurement",
                },
                3,
            ));
        }
        let kind = p[3];
        if kind != 0x01 && kind != 0x02 {
            return Err(DecodeError::new(
                ErrorKind::InvalidValue {
                    what: "unknown data type (byte 3)",
                },
                3,
            ));
        }
        let l = Layout::for_len(p.len());
        out.distance_mm = Some(f64::from(u16_be(p, 5)?));
        out.temperature_c = Some(f64::from(p[l.temp]));
        let a1 = p[l.alarms1];
        let a2 = p[l.alarms2];
        let full = a1 >> 4 != 0;
        let fire = a1 & 0x0F != 0;
        let tilt = a2 >> 4 != 0;
        let low = a2 & 0x0F != 0;
        out.fire_alarm = Some(fire);
        out.tilt = Some(tilt);
        for (on, bit) in [
            (full, alarm::FULL),
            (fire, alarm::FIRE),
            (tilt, alarm::TILT),
            (low, alarm::LOW_BATTERY),
        ] {
            if on {
                out.alarm_flags |= bit;
            }
        }
        if l.gps {
            out.longitude = Some(f64::from(f32::from_bits(f32_le(p, 8)?)));
            out.latitude = Some(f64::from(f32::from_bits(f32_le(p, 12)?)));
        }
        Ok(())
    }

    fn encode(&self, r: &Reading, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        if self.variant != Variant::Df703 {
            return Err(EncodeError("model `dingtek-df702` has no encoder".into()));
        }
        let level = r.distance_mm.map_or(0.0, f64::round);
        if !(0.0..=65535.0).contains(&level) {
            return Err(EncodeError(format!("distance {level} mm does not fit u16")));
        }
        let temp = r.temperature_c.map_or(0.0, f64::round);
        if !(0.0..=255.0).contains(&temp) {
            return Err(EncodeError(format!(
                "temperature {temp} °C: DF703 sends 0..255 °C only"
            )));
        }
        let gps = r.latitude.is_some() && r.longitude.is_some();
        let n: u8 = if gps { 25 } else { 17 };
        let start = out.len();
        out.extend_from_slice(&[0x80, 0x00, 0x01, 0x01, n]);
        out.extend_from_slice(&(level as u16).to_be_bytes());
        out.push(u8::from(gps));
        if let (Some(lat), Some(lon)) = (r.latitude, r.longitude) {
            out.extend_from_slice(&(lon as f32).to_bits().to_le_bytes());
            out.extend_from_slice(&(lat as f32).to_bits().to_le_bytes());
        }
        out.push(temp as u8);
        out.push(0); // angle sign
        out.push(0); // angle
        let f = |b: bool| u8::from(b);
        let full = r.alarm_flags & alarm::FULL != 0;
        let fire = r.fire_alarm == Some(true) || r.alarm_flags & alarm::FIRE != 0;
        let tilt = r.tilt == Some(true) || r.alarm_flags & alarm::TILT != 0;
        let low = r.alarm_flags & alarm::LOW_BATTERY != 0;
        out.push((f(full) << 4) | f(fire));
        out.push((f(tilt) << 4) | f(low));
        out.extend_from_slice(&1u16.to_be_bytes()); // frame counter
        out.push(0);
        out.push(0x81);
        debug_assert_eq!(out.len() - start, usize::from(n));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendor_float_bug_is_reproduced() {
        assert_eq!(js_to_fixed(vendor_hex2float(0x42E9_03CD), 6), "116.507430");
        assert_eq!(js_to_fixed(vendor_hex2float(0x4220_27EF), 6), "40.038999");
        // Correct IEEE-754 for the normalized output.
        assert_eq!(
            js_to_fixed(f64::from(f32::from_bits(0x42E9_03CD)), 6),
            "116.507423"
        );
    }
}
