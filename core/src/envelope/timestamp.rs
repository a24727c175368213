//! A small, allocation-free RFC 3339 timestamp parser (the subset network servers emit).

/// Nanoseconds per second.
const NS_PER_SEC: i64 = 1_000_000_000;

/// Parse an RFC 3339 timestamp into UTC nanoseconds since the Unix epoch.
///
/// Accepted form: `YYYY-MM-DDTHH:MM:SS[.F]Z` where `T` may also be `t` or a space,
/// `.F` is an optional fraction of 1 to 9 digits (so nanosecond precision is kept
/// exactly), and the zone is `Z`, `z`, `+hh:mm` or `-hh:mm`.
///
/// Returns `None` for anything else: a malformed string, an impossible date or time
/// (month 13, February 30, hour 24, second 60: leap seconds are rejected like
/// protobuf's `Timestamp` does), an offset beyond ±23:59, more than 9 fraction digits,
/// or an instant outside what `i64` nanoseconds can hold (about years 1677 to 2262).
#[inline]
pub fn parse_rfc3339_ns(s: &[u8]) -> Option<i64> {
    let (head, rest) = s.split_first_chunk::<19>()?;
    let [y0, y1, y2, y3, dash1, mo0, mo1, dash2, d0, d1, sep, h0, h1, colon1, mi0, mi1, colon2, s0, s1] =
        *head;
    if dash1 != b'-'
        || dash2 != b'-'
        || !matches!(sep, b'T' | b't' | b' ')
        || colon1 != b':'
        || colon2 != b':'
    {
        return None;
    }
    let year = num4(y0, y1, y2, y3)?;
    let month = num2(mo0, mo1)?;
    let day = num2(d0, d1)?;
    let hour = num2(h0, h1)?;
    let minute = num2(mi0, mi1)?;
    let second = num2(s0, s1)?;

    let mut rest = rest;
    let mut nanos: u32 = 0;
    if let Some((b'.', frac)) = rest.split_first() {
        let n = frac.iter().take_while(|b| b.is_ascii_digit()).count();
        if n == 0 || n > 9 {
            return None;
        }
        let (digits, after) = frac.split_at_checked(n)?;
        // Right-pad to 9 digits, then one independent product per digit (no serial
        // multiply chain).
        let mut padded = [b'0'; 9];
        for (p, &d) in padded.iter_mut().zip(digits) {
            *p = d;
        }
        let [a, b, c, d, e, f, g, h, i] = padded.map(|x| u32::from(x.wrapping_sub(b'0')));
        nanos = a * 100_000_000
            + b * 10_000_000
            + c * 1_000_000
            + d * 100_000
            + e * 10_000
            + f * 1_000
            + g * 100
            + h * 10
            + i;
        rest = after;
    }

    let offset_secs: i64 = match *rest {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), oh0, oh1, b':', om0, om1] => {
            let oh = num2(oh0, oh1)?;
            let om = num2(om0, om1)?;
            if oh > 23 || om > 59 {
                return None;
            }
            let secs = i64::from(oh * 3600 + om * 60);
            if sign == b'-' {
                -secs
            } else {
                secs
            }
        }
        _ => return None,
    };

    if !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }

    let days = days_from_civil(i64::from(year), month, day);
    let secs = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second) - offset_secs;
    secs.checked_mul(NS_PER_SEC)?.checked_add(i64::from(nanos))
}

#[inline(always)]
fn digit(b: u8) -> Option<u32> {
    let d = b.wrapping_sub(b'0');
    (d < 10).then_some(u32::from(d))
}

#[inline(always)]
fn num2(a: u8, b: u8) -> Option<u32> {
    Some(digit(a)? * 10 + digit(b)?)
}

#[inline(always)]
fn num4(a: u8, b: u8, c: u8, d: u8) -> Option<u32> {
    Some(num2(a, b)? * 100 + num2(c, d)?)
}

fn is_leap(year: u32) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
/// `month` is 1..=12 and `day` 1..=31 (already validated).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400; // [0, 399]
    let mp = i64::from((month + 9) % 12); // March = 0
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Option<i64> {
        parse_rfc3339_ns(s.as_bytes())
    }

    #[test]
    fn epoch_and_known_instants() {
        assert_eq!(p("1970-01-01T00:00:00Z"), Some(0));
        // `date -u -d 2020-02-12T15:15:46Z +%s` = 1581520546
        assert_eq!(
            p("2020-02-12T15:15:46.014773143Z"),
            Some(1_581_520_546_014_773_143)
        );
        // `date -u -d 2022-07-18T09:34:15Z +%s` = 1658136855
        assert_eq!(
            p("2022-07-18T09:34:15.775023242+00:00"),
            Some(1_658_136_855_775_023_242)
        );
        assert_eq!(p("2000-02-29T00:00:00Z"), Some(951_782_400 * NS_PER_SEC));
        assert_eq!(p("1969-12-31T23:59:59Z"), Some(-NS_PER_SEC));
        assert_eq!(p("1969-12-31T23:59:59.5Z"), Some(-NS_PER_SEC / 2));
    }

    #[test]
    fn fractions_and_offsets() {
        assert_eq!(p("1970-01-01T00:00:00.1Z"), Some(100_000_000));
        assert_eq!(p("1970-01-01T00:00:00.000000001Z"), Some(1));
        assert_eq!(p("1970-01-01T00:00:00.123456z"), Some(123_456_000));
        assert_eq!(p("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(p("1969-12-31T23:30:00-00:30"), Some(0));
        assert_eq!(p("1970-01-01 00:00:00Z"), Some(0));
        assert_eq!(p("1970-01-01t00:00:00-00:00"), Some(0));
    }

    #[test]
    fn rejects_invalid() {
        for s in [
            "",
            "2020",
            "2020-02-12",
            "2020-02-12T15:15:46",
            "2020-02-12T15:15:46.Z",
            "2020-02-12T15:15:46.0123456789Z",
            "2020-13-12T15:15:46Z",
            "2020-00-12T15:15:46Z",
            "2021-02-29T15:15:46Z",
            "1900-02-29T15:15:46Z",
            "2020-04-31T00:00:00Z",
            "2020-02-00T00:00:00Z",
            "2020-02-12T24:00:00Z",
            "2020-02-12T23:60:00Z",
            "2020-02-12T23:59:60Z",
            "2020-02-12T15:15:46+24:00",
            "2020-02-12T15:15:46+01:60",
            "2020-02-12T15:15:46+0100",
            "2020-02-12T15:15:46+01",
            "2020-02-12T15:15:46ZZ",
            "2020-02-12T15:15:46Z ",
            "2020/02/12T15:15:46Z",
            "2020-02-12X15:15:46Z",
            "+020-02-12T15:15:46Z",
            "2020-02-12T15:15:46.-1Z",
            "1600-01-01T00:00:00Z",
            "2300-01-01T00:00:00Z",
        ] {
            assert_eq!(p(s), None, "{s}");
        }
        assert!(p("2262-04-11T23:47:16.854775807Z").is_some());
        assert!(p("2262-04-11T23:47:16.854775808Z").is_none());
    }

    #[test]
    fn days_match_a_naive_count() {
        // Walk day by day from 1970 and compare with the closed form.
        let mut days = 0i64;
        for year in 1970..2100u32 {
            for month in 1..=12 {
                for day in 1..=days_in_month(year, month) {
                    assert_eq!(days_from_civil(i64::from(year), month, day), days);
                    days += 1;
                }
            }
        }
    }
}
