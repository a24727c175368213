//! Decentlab protocol v2 (DL-MBX, DL-LID): a version byte, a device id, a bitmask of
//! sensor groups present, then the u16 big-endian words of each present group in bit
//! order. Each value is emitted as `{displayName, value, unit?}` like the vendor's JS.

use crate::codec::bytes::{u16_be, u8_at};
use crate::codec::{check_fport, Codec, EncodeError, ModelInfo};
use crate::error::{DecodeError, DecodeResult, ErrorKind};
use crate::reading::{alarm, Fields, Reading};
use crate::value::Value;

/// How a group word becomes a value.
#[derive(Clone, Copy)]
enum Conv {
    Word(usize),
    Div(usize, f64),
}

struct Val {
    name: &'static str,
    display: &'static str,
    conv: Conv,
    unit: Option<&'static str>,
}

struct Group {
    words: usize,
    values: &'static [Val],
}

const MBX: &[Group] = &[
    Group {
        words: 2,
        values: &[
            Val {
                name: "distance",
                display: "Distance",
                conv: Conv::Word(0),
                unit: Some("mm"),
            },
            Val {
                name: "number_of_valid_samples",
                display: "Number of valid samples",
                conv: Conv::Word(1),
                unit: None,
            },
        ],
    },
    Group {
        words: 1,
        values: &[Val {
            name: "battery_voltage",
            display: "Battery voltage",
            conv: Conv::Div(0, 1000.0),
            unit: Some("V"),
        }],
    },
];

const LID: &[Group] = &[
    Group {
        words: 11,
        values: &[
            Val {
                name: "distance_average",
                display: "Distance: average",
                conv: Conv::Word(0),
                unit: Some("mm"),
            },
            Val {
                name: "distance_minimum",
                display: "Distance: minimum",
                conv: Conv::Word(1),
                unit: Some("mm"),
            },
            Val {
                name: "distance_maximum",
                display: "Distance: maximum",
                conv: Conv::Word(2),
                unit: Some("mm"),
            },
            Val {
                name: "distance_median",
                display: "Distance: median",
                conv: Conv::Word(3),
                unit: Some("mm"),
            },
            Val {
                name: "distance_10th_percentile",
                display: "Distance: 10th percentile",
                conv: Conv::Word(4),
                unit: Some("mm"),
            },
            Val {
                name: "distance_25th_percentile",
                display: "Distance: 25th percentile",
                conv: Conv::Word(5),
                unit: Some("mm"),
            },
            Val {
                name: "distance_75th_percentile",
                display: "Distance: 75th percentile",
                conv: Conv::Word(6),
                unit: Some("mm"),
            },
            Val {
                name: "distance_90th_percentile",
                display: "Distance: 90th percentile",
                conv: Conv::Word(7),
                unit: Some("mm"),
            },
            Val {
                name: "distance_most_frequent_value",
                display: "Distance: most frequent value",
                conv: Conv::Word(8),
                unit: Some("mm"),
            },
            Val {
                name: "number_of_samples",
                display: "Number of samples",
                conv: Conv::Word(9),
                unit: None,
            },
            Val {
                name: "total_acquisition_time",
                display: "Total acquisition time",
                conv: Conv::Div(10, 1.024),
                unit: Some("ms"),
            },
        ],
    },
    Group {
        words: 1,
        values: &[Val {
            name: "battery_voltage",
            display: "Battery voltage",
            conv: Conv::Div(0, 1000.0),
            unit: Some("V"),
        }],
    },
];

pub struct Decentlab {
    info: ModelInfo,
    groups: &'static [Group],
    /// (word index in group 0 of the distance used as `distance_mm`, word of the sample count)
    distance_word: usize,
    samples_word: usize,
}

impl Decentlab {
    pub fn mbx() -> Self {
        Decentlab {
            info: ModelInfo {
                name: "decentlab-dl-mbx".into(),
                vendor: "Decentlab".into(),
                description: "DL-MBX ultrasonic distance / level sensor, protocol v2".into(),
                fports: vec![],
                engine: "builtin",
                can_encode: true,
            },
            groups: MBX,
            distance_word: 0,
            samples_word: 1,
        }
    }
    pub fn lid() -> Self {
        Decentlab {
            info: ModelInfo {
                name: "decentlab-dl-lid".into(),
                vendor: "Decentlab".into(),
                description: "DL-LID laser distance / level sensor, protocol v2 (normalized distance = median)".into(),
                fports: vec![],
                engine: "builtin",
                can_encode: false,
            },
            groups: LID,
            // The median is robust to the lid and rim echoes the average includes.
            distance_word: 3,
            samples_word: 9,
        }
    }

    /// Walk the frame: calls `f(group index, words)` for each present group.
    fn walk(&self, p: &[u8], mut f: impl FnMut(usize, &[u16; 11])) -> DecodeResult<(u8, u16)> {
        if p.is_empty() {
            return Err(DecodeError::new(ErrorKind::EmptyPayload, 0));
        }
        let version = u8_at(p, 0)?;
        if version != 2 {
            return Err(DecodeError::new(
                ErrorKind::UnsupportedVersion {
                    version: u32::from(version),
                    expected: 2,
                },
                0,
            ));
        }
        let device_id = u16_be(p, 1)?;
        let mut flags = u16_be(p, 3)?;
        let mut pos = 5;
        for (gi, g) in self.groups.iter().enumerate() {
            if flags & 1 == 1 {
                let mut words = [0u16; 11];
                if p.len() < pos + 2 * g.words {
                    return Err(DecodeError::truncated(
                        pos,
                        2 * g.words,
                        p.len().saturating_sub(pos),
                    ));
                }
                for w in words.iter_mut().take(g.words) {
                    *w = u16_be(p, pos)?;
                    pos += 2;
                }
                f(gi, &words);
            }
            flags >>= 1;
        }
        Ok((version, device_id))
    }
}

fn conv(c: Conv, w: &[u16; 11]) -> f64 {
    match c {
        Conv::Word(i) => f64::from(w[i]),
        Conv::Div(i, d) => f64::from(w[i]) / d,
    }
}

impl Codec for Decentlab {
    fn info(&self) -> &ModelInfo {
        &self.info
    }
    fn fields(&self) -> Fields {
        Fields(Fields::DISTANCE | Fields::BATTERY_V)
    }
    fn decode_vendor(&self, p: &[u8], fport: Option<u8>) -> DecodeResult<Value> {
        check_fport(&self.info, fport)?;
        let mut values: Vec<(String, Value)> = Vec::new();
        let (version, device_id) = self.walk(p, |gi, w| {
            for v in self.groups[gi].values {
                let mut o = vec![
                    ("displayName".to_string(), Value::Str(v.display.into())),
                    ("value".to_string(), Value::Num(conv(v.conv, w))),
                ];
                if let Some(u) = v.unit {
                    o.push(("unit".to_string(), Value::Str(u.into())));
                }
                values.push((v.name.to_string(), Value::Obj(o)));
            }
        })?;
        let mut out = vec![
            (
                "protocol_version".to_string(),
                Value::Num(f64::from(version)),
            ),
            ("device_id".to_string(), Value::Num(f64::from(device_id))),
        ];
        out.extend(values);
        Ok(Value::Obj(out))
    }
    fn decode(&self, p: &[u8], fport: Option<u8>, out: &mut Reading) -> DecodeResult<()> {
        check_fport(&self.info, fport)?;
        let (dw, sw) = (self.distance_word, self.samples_word);
        self.walk(p, |gi, w| {
            if gi == 0 {
                if w[sw] == 0 {
                    // No valid echo: the distance word is meaningless.
                    out.alarm_flags |= alarm::NO_SENSOR;
                } else {
                    out.distance_mm = Some(f64::from(w[dw]));
                }
            } else {
                out.battery_v = Some(f64::from(w[0]) / 1000.0);
            }
        })?;
        Ok(())
    }
    fn encode(&self, r: &Reading, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        if !self.info.can_encode {
            return Err(EncodeError(format!(
                "model `{}` has no encoder",
                self.info.name
            )));
        }
        let word = |v: f64, what: &str| -> Result<u16, EncodeError> {
            let x = v.round();
            if (0.0..=65535.0).contains(&x) {
                Ok(x as u16)
            } else {
                Err(EncodeError(format!("{what} {v} does not fit a u16 word")))
            }
        };
        let mut flags = 0u16;
        let mut words = Vec::new();
        if let Some(d) = r.distance_mm {
            flags |= 1;
            words.push(word(d, "distance_mm")?);
            words.push(1); // one valid sample
        }
        if let Some(v) = r.battery_v {
            flags |= 2;
            words.push(word(v * 1000.0, "battery_v (mV)")?);
        }
        out.push(2);
        out.extend_from_slice(&0u16.to_be_bytes()); // device id
        out.extend_from_slice(&flags.to_be_bytes());
        for w in words {
            out.extend_from_slice(&w.to_be_bytes());
        }
        Ok(())
    }
}
