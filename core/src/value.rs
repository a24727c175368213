//! Vendor-native output: a small JSON-like tree that mirrors what a vendor's
//! JavaScript decoder returns, plus the JavaScript number formatting those decoders
//! rely on (`Number.prototype.toFixed`, `String(n)`).

/// A JSON-like value with JavaScript number semantics.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    /// A JavaScript number. Integral values print (and convert to Python) as integers,
    /// as `JSON.stringify` would print them.
    Num(f64),
    Str(String),
    Arr(Vec<Value>),
    Obj(Vec<(String, Value)>),
}

impl Value {
    /// Set `key` in an object, replacing an existing entry in place (JS assignment order).
    pub fn set(&mut self, key: &str, v: Value) {
        if let Value::Obj(entries) = self {
            if let Some(slot) = entries.iter_mut().find(|(k, _)| k == key) {
                slot.1 = v;
            } else {
                entries.push((key.to_string(), v));
            }
        }
    }

    /// Look a key up in an object.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Obj(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Serialise as compact JSON (for tests and tools; Python gets dicts directly).
    pub fn to_json(&self) -> String {
        let mut s = String::new();
        self.write_json(&mut s);
        s
    }

    fn write_json(&self, out: &mut String) {
        match self {
            Value::Null => out.push_str("null"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Num(n) => {
                if n.is_finite() {
                    out.push_str(&js_number_to_string(*n));
                } else {
                    out.push_str("null");
                }
            }
            Value::Str(s) => write_json_str(s, out),
            Value::Arr(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    v.write_json(out);
                }
                out.push(']');
            }
            Value::Obj(entries) => {
                out.push('{');
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_json_str(k, out);
                    out.push(':');
                    v.write_json(out);
                }
                out.push('}');
            }
        }
    }
}

fn write_json_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// True when a JS number would print without a fraction and converts exactly to i64.
pub fn is_js_integer(n: f64) -> bool {
    n.is_finite() && n.fract() == 0.0 && n.abs() <= 9_007_199_254_740_992.0
}

/// `String(n)` for the numbers decoders produce (shortest round-trip form; integers
/// without a fraction). Exponent forms (|n| >= 1e21 or < 1e-6) are not produced by
/// any supported decoder and are printed in Rust's plain form.
pub fn js_number_to_string(n: f64) -> String {
    if n.is_nan() {
        return "NaN".to_string();
    }
    if n.is_infinite() {
        return if n > 0.0 { "Infinity" } else { "-Infinity" }.to_string();
    }
    if n == 0.0 {
        return "0".to_string(); // JS prints -0 as "0"
    }
    if is_js_integer(n) {
        return format!("{}", n as i64);
    }
    format!("{n}")
}

/// `Number.prototype.toFixed(digits)`: the exact decimal value of the double, rounded
/// half away from zero at `digits` places (ECMA-262 picks the larger n on a tie, and
/// applies it to |x|). Rust's own `{:.N}` rounds ties to even, so it is not used.
pub fn js_to_fixed(x: f64, digits: usize) -> String {
    if !x.is_finite() {
        return js_number_to_string(x);
    }
    if x.abs() >= 1e21 {
        return js_number_to_string(x);
    }
    let neg = x < 0.0;
    // 1100 digits print any double exactly (Rust formats the exact binary value).
    let exact = format!("{:.1100}", x.abs());
    let (int_part, frac_part) = exact.split_once('.').unwrap_or((&exact, ""));
    let mut digits_vec: Vec<u8> = int_part.bytes().map(|b| b - b'0').collect();
    let frac: Vec<u8> = frac_part.bytes().map(|b| b - b'0').collect();
    digits_vec.extend(frac.iter().take(digits));
    let round_up = frac.get(digits).is_some_and(|&d| d >= 5);
    if round_up {
        let mut i = digits_vec.len();
        loop {
            if i == 0 {
                digits_vec.insert(0, 1);
                break;
            }
            i -= 1;
            if digits_vec[i] == 9 {
                digits_vec[i] = 0;
            } else {
                digits_vec[i] += 1;
                break;
            }
        }
    }
    let split = digits_vec.len() - digits;
    let mut s = String::with_capacity(digits_vec.len() + 2);
    if neg {
        s.push('-');
    }
    for d in &digits_vec[..split] {
        s.push((b'0' + d) as char);
    }
    if digits > 0 {
        s.push('.');
        for d in &digits_vec[split..] {
            s.push((b'0' + d) as char);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_fixed_matches_javascript() {
        assert_eq!(js_to_fixed(0.0, 2), "0.00");
        assert_eq!(js_to_fixed(26.1, 2), "26.10");
        assert_eq!(js_to_fixed(-19.3, 2), "-19.30");
        // 0.125 is exact in binary: JS rounds the tie up, Rust's {:.2} would give 0.12.
        assert_eq!(js_to_fixed(0.125, 2), "0.13");
        assert_eq!(js_to_fixed(1.005, 2), "1.00"); // 1.005 is really 1.00499999...
        assert_eq!(js_to_fixed(116.507_430_1, 6), "116.507430");
        assert_eq!(js_to_fixed(9.999, 2), "10.00");
        assert_eq!(js_to_fixed(-0.001, 2), "-0.00"); // JS keeps the sign
        assert_eq!(js_to_fixed(-0.0, 2), "0.00");
        assert_eq!(js_to_fixed(-1.5, 0), "-2");
        assert_eq!(js_to_fixed(5.0, 0), "5");
    }

    #[test]
    fn number_to_string() {
        assert_eq!(js_number_to_string(2799.0), "2799");
        assert_eq!(js_number_to_string(3.387), "3.387");
        assert_eq!(js_number_to_string(-0.0), "0");
    }
}
