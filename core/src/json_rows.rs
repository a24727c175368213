//! Columns to one JSON object per row, in one pass (the ingest step's reading messages).
//!
//! The ingest step used to build a Python dict per reading and serialise it with orjson;
//! here the columns of a whole batch are written as compact JSON objects (keys in the
//! order given) into one buffer, with row offsets. Output matches orjson's for the same
//! values: floats in shortest round-trip form with a `.0` on integral values, NaN and
//! infinities as `null`, strings escaped per RFC 8259, timestamps as RFC 3339 UTC with
//! microseconds (`2026-01-02T03:04:05.678901Z`).

use std::io::Write;

/// One output column; every slice holds at least `n` rows.
#[derive(Debug, Clone, Copy)]
pub enum JsonColumn<'a> {
    /// Floats; NaN and infinities are written as `null`.
    F64(&'a [f64]),
    /// Integers; `valid[i] == false` (when given) writes `null`.
    I64 {
        values: &'a [i64],
        valid: Option<&'a [bool]>,
    },
    /// Booleans as -1 (null), 0 (false), 1 (true).
    Bool(&'a [i8]),
    /// Nanoseconds since the Unix epoch, written as an RFC 3339 string (µs, `Z`).
    TimestampNs {
        values: &'a [i64],
        valid: Option<&'a [bool]>,
    },
    /// Strings by index into `values`; a negative index or a `None` entry writes `null`.
    Dict {
        indices: &'a [i64],
        values: &'a [Option<String>],
    },
    /// `"<prefix><value><suffix>"` (e.g. ids like `r:123:0`).
    IntString {
        values: &'a [i64],
        prefix: &'a str,
        suffix: &'a str,
    },
    /// The same JSON text on every row (written as given: a literal, a number, a quoted string).
    Literal(&'a str),
}

impl JsonColumn<'_> {
    fn len_ok(&self, n: usize) -> bool {
        let opt = |v: Option<&[bool]>| v.is_none_or(|v| v.len() >= n);
        match self {
            JsonColumn::F64(v) => v.len() >= n,
            JsonColumn::I64 { values, valid } | JsonColumn::TimestampNs { values, valid } => {
                values.len() >= n && opt(*valid)
            }
            JsonColumn::Bool(v) => v.len() >= n,
            JsonColumn::Dict { indices, .. } => indices.len() >= n,
            JsonColumn::IntString { values, .. } => values.len() >= n,
            JsonColumn::Literal(_) => true,
        }
    }
}

/// Error: a column shorter than the row count (names the column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShortColumn(pub String);

impl std::fmt::Display for ShortColumn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "column {:?} has fewer values than rows", self.0)
    }
}

impl std::error::Error for ShortColumn {}

/// JSON rows: row `i` is `data[offsets[i]..offsets[i + 1]]`.
#[derive(Debug, Default, Clone)]
pub struct JsonRows {
    pub data: Vec<u8>,
    pub offsets: Vec<usize>,
}

impl JsonRows {
    /// Row `i` as bytes.
    pub fn row(&self, i: usize) -> &[u8] {
        &self.data[self.offsets[i]..self.offsets[i + 1]]
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Write `n` rows, one JSON object each, keys in the order of `columns`.
pub fn write_rows(n: usize, columns: &[(&str, JsonColumn<'_>)]) -> Result<JsonRows, ShortColumn> {
    for (name, c) in columns {
        if !c.len_ok(n) {
            return Err(ShortColumn((*name).to_string()));
        }
    }
    // `"key":` prefixes, the first without and the others with a leading comma.
    let keys: Vec<Vec<u8>> = columns
        .iter()
        .enumerate()
        .map(|(j, (name, _))| {
            let mut k = Vec::with_capacity(name.len() + 4);
            if j > 0 {
                k.push(b',');
            }
            write_str(&mut k, name);
            k.push(b':');
            k
        })
        .collect();
    let mut out = JsonRows {
        data: Vec::with_capacity(n * 64 * columns.len().max(1)),
        offsets: Vec::with_capacity(n + 1),
    };
    out.offsets.push(0);
    let buf = &mut out.data;
    for i in 0..n {
        buf.push(b'{');
        for ((_, col), key) in columns.iter().zip(&keys) {
            buf.extend_from_slice(key);
            match *col {
                JsonColumn::F64(v) => write_f64(buf, v[i]),
                JsonColumn::I64 { values, valid } => {
                    if valid.is_none_or(|m| m[i]) {
                        write_i64(buf, values[i]);
                    } else {
                        buf.extend_from_slice(b"null");
                    }
                }
                JsonColumn::Bool(v) => buf.extend_from_slice(match v[i] {
                    0 => b"false".as_slice(),
                    x if x > 0 => b"true".as_slice(),
                    _ => b"null".as_slice(),
                }),
                JsonColumn::TimestampNs { values, valid } => {
                    if valid.is_none_or(|m| m[i]) {
                        write_rfc3339_us(buf, values[i]);
                    } else {
                        buf.extend_from_slice(b"null");
                    }
                }
                JsonColumn::Dict { indices, values } => {
                    match usize::try_from(indices[i]).ok().and_then(|k| values.get(k)) {
                        Some(Some(s)) => write_str(buf, s),
                        _ => buf.extend_from_slice(b"null"),
                    }
                }
                JsonColumn::IntString {
                    values,
                    prefix,
                    suffix,
                } => {
                    buf.push(b'"');
                    write_escaped(buf, prefix);
                    write_i64(buf, values[i]);
                    write_escaped(buf, suffix);
                    buf.push(b'"');
                }
                JsonColumn::Literal(text) => buf.extend_from_slice(text.as_bytes()),
            }
        }
        buf.push(b'}');
        out.offsets.push(buf.len());
    }
    Ok(out)
}

fn write_i64(buf: &mut Vec<u8>, v: i64) {
    buf.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// `v` (0 ≤ v < 10^width) with leading zeros.
fn write_padded(buf: &mut Vec<u8>, v: u32, width: usize) {
    let mut tmp = [b'0'; 6];
    let mut x = v;
    for i in (0..width).rev() {
        tmp[i] = b'0' + (x % 10) as u8;
        x /= 10;
    }
    buf.extend_from_slice(&tmp[..width]);
}

/// Shortest round-trip decimal with a `.0` on integral values, as orjson writes floats:
/// an exponent below 1e-5 and from 1e16 (`1.5e-7`, `1e+16`); NaN and infinities as `null`.
pub fn write_f64(buf: &mut Vec<u8>, v: f64) {
    if !v.is_finite() {
        buf.extend_from_slice(b"null");
        return;
    }
    let a = v.abs();
    if a != 0.0 && !(1e-5..1e16).contains(&a) {
        let s = format!("{v:e}"); // shortest digits: "1.5e-7", "1e16"
        let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
        buf.extend_from_slice(mant.as_bytes());
        buf.push(b'e');
        if !exp.starts_with('-') {
            buf.push(b'+');
        }
        buf.extend_from_slice(exp.as_bytes());
        return;
    }
    let mut b = zmij::Buffer::new();
    let s = b.format_finite(v);
    if !s.contains('e') {
        buf.extend_from_slice(s.as_bytes());
        if !s.contains('.') {
            buf.extend_from_slice(b".0");
        }
        return;
    }
    let start = buf.len();
    let _ = write!(buf, "{v}");
    if !buf[start..].contains(&b'.') {
        buf.extend_from_slice(b".0");
    }
}

fn write_str(buf: &mut Vec<u8>, s: &str) {
    buf.push(b'"');
    write_escaped(buf, s);
    buf.push(b'"');
}

fn write_escaped(buf: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => b"",
            _ => continue,
        };
        buf.extend_from_slice(&bytes[start..i]);
        if esc.is_empty() {
            let _ = write!(buf, "\\u{b:04x}");
        } else {
            buf.extend_from_slice(esc);
        }
        start = i + 1;
    }
    buf.extend_from_slice(&bytes[start..]);
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `"YYYY-MM-DDTHH:MM:SS.ffffffZ"` (quoted) for nanoseconds since the epoch, truncated to µs
/// towards the past (as numpy's `datetime64[ns]` → `[us]`).
pub fn write_rfc3339_us(buf: &mut Vec<u8>, ns: i64) {
    let us = ns.div_euclid(1000);
    let secs = us.div_euclid(1_000_000);
    let frac = us.rem_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    if !(0..=9999).contains(&y) {
        let _ = write!(
            buf,
            "\"{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{frac:06}Z\"",
            sod / 3600,
            (sod / 60) % 60,
            sod % 60
        );
        return;
    }
    // The common case without the formatting machinery (~5x faster).
    buf.push(b'"');
    write_padded(buf, y as u32, 4);
    buf.push(b'-');
    write_padded(buf, m, 2);
    buf.push(b'-');
    write_padded(buf, d, 2);
    buf.push(b'T');
    write_padded(buf, (sod / 3600) as u32, 2);
    buf.push(b':');
    write_padded(buf, ((sod / 60) % 60) as u32, 2);
    buf.push(b':');
    write_padded(buf, (sod % 60) as u32, 2);
    buf.push(b'.');
    write_padded(buf, frac as u32, 6);
    buf.extend_from_slice(b"Z\"");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(col: JsonColumn<'_>) -> String {
        String::from_utf8(write_rows(1, &[("k", col)]).unwrap().row(0).to_vec()).unwrap()
    }

    #[test]
    fn floats_match_python_repr() {
        let cases = [
            (3.0, "3.0"),
            (-87.5, "-87.5"),
            (0.1, "0.1"),
            (1234.5678, "1234.5678"),
            (0.0001, "0.0001"),
            (1e-5, "0.00001"),
            (2.5e-5, "0.000025"),
            (1.5e-7, "1.5e-7"),
            (1e-6, "1e-6"),
            (1e16, "1e+16"),
            (6.02e23, "6.02e+23"),
            (9_999_999_999_999_998.0, "9999999999999998.0"),
            (-0.0, "-0.0"),
            (f64::NAN, "null"),
            (f64::INFINITY, "null"),
            (0.0, "0.0"),
        ];
        for (v, want) in cases {
            assert_eq!(
                one(JsonColumn::F64(&[v])),
                format!("{{\"k\":{want}}}"),
                "{v}"
            );
        }
    }

    #[test]
    fn timestamps_are_rfc3339_microseconds() {
        let ns = [1_767_323_045_678_901_234_i64, 0, -1];
        let r = write_rows(
            3,
            &[(
                "t",
                JsonColumn::TimestampNs {
                    values: &ns,
                    valid: None,
                },
            )],
        )
        .unwrap();
        assert_eq!(r.row(0), br#"{"t":"2026-01-02T03:04:05.678901Z"}"#);
        assert_eq!(r.row(1), br#"{"t":"1970-01-01T00:00:00.000000Z"}"#);
        assert_eq!(r.row(2), br#"{"t":"1969-12-31T23:59:59.999999Z"}"#);
        // Leap day and a far year.
        let leap = 1_709_164_800_000_000_000_i64; // 2024-02-29T00:00:00Z
        assert_eq!(
            one(JsonColumn::TimestampNs {
                values: &[leap],
                valid: None
            }),
            r#"{"k":"2024-02-29T00:00:00.000000Z"}"#
        );
    }

    #[test]
    fn every_kind_and_nulls() {
        let f = [1.5, f64::NAN];
        let i = [7_i64, 8];
        let valid = [true, false];
        let b = [1_i8, -1];
        let dict = [Some("Mont\"béliard".to_string()), None];
        let idx = [0_i64, 1];
        let seq = [42_i64, 43];
        let r = write_rows(
            2,
            &[
                (
                    "id",
                    JsonColumn::IntString {
                        values: &seq,
                        prefix: "r:",
                        suffix: ":0",
                    },
                ),
                ("f", JsonColumn::F64(&f)),
                (
                    "i",
                    JsonColumn::I64 {
                        values: &i,
                        valid: Some(&valid),
                    },
                ),
                ("b", JsonColumn::Bool(&b)),
                (
                    "s",
                    JsonColumn::Dict {
                        indices: &idx,
                        values: &dict,
                    },
                ),
                ("stored", JsonColumn::Literal("false")),
            ],
        )
        .unwrap();
        assert_eq!(
            std::str::from_utf8(r.row(0)).unwrap(),
            r#"{"id":"r:42:0","f":1.5,"i":7,"b":true,"s":"Mont\"béliard","stored":false}"#
        );
        assert_eq!(
            std::str::from_utf8(r.row(1)).unwrap(),
            r#"{"id":"r:43:0","f":null,"i":null,"b":null,"s":null,"stored":false}"#
        );
        assert_eq!(r.len(), 2);
    }

    #[test]
    fn control_characters_are_escaped() {
        let dict = [Some("a\u{1}\n\t\\".to_string())];
        assert_eq!(
            one(JsonColumn::Dict {
                indices: &[0],
                values: &dict
            }),
            r#"{"k":"a\u0001\n\t\\"}"#
        );
    }

    #[test]
    fn short_column_is_an_error() {
        let e = write_rows(3, &[("x", JsonColumn::F64(&[1.0]))]).unwrap_err();
        assert_eq!(e, ShortColumn("x".into()));
    }

    #[test]
    fn output_parses_as_json() {
        let f = [0.1, 2.0, -3.25e-9, 6.02e23];
        let r = write_rows(4, &[("x", JsonColumn::F64(&f))]).unwrap();
        for (k, want) in f.iter().enumerate() {
            let v: serde_json::Value = serde_json::from_slice(r.row(k)).unwrap();
            assert_eq!(v["x"].as_f64().unwrap(), *want);
        }
    }
}
