//! Civil calendar for the simulator: dates, weekdays, French public holidays, the
//! Europe/Paris UTC offset (EU summer-time rule) and RFC 3339 formatting.
//!
//! Days are counted from 1970-01-01 (day 0, a Thursday). Algorithms from Howard
//! Hinnant's `chrono`-compatible date algorithms; Easter from the anonymous Gregorian
//! computus (Meeus/Jones/Butcher).

pub const MS_PER_DAY: i64 = 86_400_000;
pub const MS_PER_HOUR: i64 = 3_600_000;

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub fn days_from_civil(y: i32, m: u32, d: u32) -> i64 {
    let y = i64::from(y) - i64::from(m <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// (year, month 1..=12, day 1..=31) of a day number.
pub fn civil_from_days(z: i64) -> (i32, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    ((y + i64::from(m <= 2)) as i32, m, d)
}

/// ISO weekday, Monday = 0 .. Sunday = 6.
#[inline]
pub fn weekday(days: i64) -> u32 {
    // 1970-01-01 was a Thursday (3).
    (days + 3).rem_euclid(7) as u32
}

/// Day of the year, 0-based.
pub fn day_of_year(days: i64) -> u32 {
    let (y, _, _) = civil_from_days(days);
    (days - days_from_civil(y, 1, 1)) as u32
}

pub fn is_leap(y: i32) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

/// Easter Sunday of a Gregorian year, as (month, day).
pub fn easter(y: i32) -> (u32, u32) {
    let a = y % 19;
    let b = y / 100;
    let c = y % 100;
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    (month as u32, day as u32)
}

/// The 11 French public holidays (jours fériés, metropolitan France outside
/// Alsace-Moselle) of a year, as day numbers, sorted.
pub fn french_holidays(y: i32) -> Vec<i64> {
    let (em, ed) = easter(y);
    let easter = days_from_civil(y, em, ed);
    let mut v = vec![
        days_from_civil(y, 1, 1),   // Jour de l'an
        easter + 1,                 // Lundi de Pâques
        days_from_civil(y, 5, 1),   // Fête du travail
        days_from_civil(y, 5, 8),   // Victoire 1945
        easter + 39,                // Ascension
        easter + 50,                // Lundi de Pentecôte
        days_from_civil(y, 7, 14),  // Fête nationale
        days_from_civil(y, 8, 15),  // Assomption
        days_from_civil(y, 11, 1),  // Toussaint
        days_from_civil(y, 11, 11), // Armistice
        days_from_civil(y, 12, 25), // Noël
    ];
    v.sort_unstable();
    v
}

/// A set of holiday day numbers over a span of years, for O(1)-ish lookups.
#[derive(Debug, Clone, Default)]
pub struct Holidays {
    first_day: i64,
    bits: Vec<bool>,
}

impl Holidays {
    /// French holidays for every year touching `[from_day, to_day]` (plus one year
    /// of margin so schedule look-ahead past the end works).
    pub fn french(from_day: i64, to_day: i64) -> Self {
        let (y0, _, _) = civil_from_days(from_day);
        let (y1, _, _) = civil_from_days(to_day);
        let first_day = days_from_civil(y0, 1, 1);
        let last_day = days_from_civil(y1 + 2, 1, 1);
        let mut bits = vec![false; (last_day - first_day).max(0) as usize];
        for y in y0..=y1 + 1 {
            for d in french_holidays(y) {
                if let Some(b) = bits.get_mut((d - first_day) as usize) {
                    *b = true;
                }
            }
        }
        Holidays { first_day, bits }
    }

    #[inline]
    pub fn contains(&self, day: i64) -> bool {
        let i = day - self.first_day;
        i >= 0 && self.bits.get(i as usize).copied().unwrap_or(false)
    }
}

/// Europe/Paris offset from UTC in ms at a UTC instant: +1 h, or +2 h between the
/// last Sunday of March 01:00 UTC and the last Sunday of October 01:00 UTC.
pub fn paris_offset_ms(utc_ms: i64) -> i64 {
    let days = utc_ms.div_euclid(MS_PER_DAY);
    let (y, _, _) = civil_from_days(days);
    let last_sunday = |m: u32, last: u32| {
        let d = days_from_civil(y, m, last);
        d - i64::from(weekday(d) + 1) % 7
    };
    let start = last_sunday(3, 31) * MS_PER_DAY + MS_PER_HOUR;
    let end = last_sunday(10, 31) * MS_PER_DAY + MS_PER_HOUR;
    if utc_ms >= start && utc_ms < end {
        2 * MS_PER_HOUR
    } else {
        MS_PER_HOUR
    }
}

/// Local (Paris) time of a UTC instant, in ms since the epoch "as if UTC".
#[inline]
pub fn to_local_ms(utc_ms: i64) -> i64 {
    utc_ms + paris_offset_ms(utc_ms)
}

/// UTC instant of a local (Paris) wall-clock time given as ms "as if UTC".
/// Ambiguous or skipped times (the DST change night) resolve to the first offset.
pub fn from_local_ms(local_ms: i64) -> i64 {
    let guess = local_ms - MS_PER_HOUR;
    let off = paris_offset_ms(guess);
    local_ms - off
}

/// Writes RFC 3339 UTC timestamps with nanoseconds, caching the date part.
#[derive(Debug, Clone, Default)]
pub struct TimeFormatter {
    cached_day: Option<i64>,
    date: [u8; 11],
    last_ns: Option<i64>,
    last: [u8; 29],
}

impl TimeFormatter {
    /// Append `YYYY-MM-DDTHH:MM:SS.nnnnnnnnn` (no zone suffix).
    #[inline]
    pub fn write(&mut self, out: &mut Vec<u8>, ns: i64) {
        if self.last_ns == Some(ns) {
            out.extend_from_slice(&self.last);
            return;
        }
        let start = out.len();
        self.write_uncached(out, ns);
        if let Some(w) = out.get(start..) {
            if w.len() == self.last.len() {
                self.last.copy_from_slice(w);
                self.last_ns = Some(ns);
            }
        }
    }

    fn write_uncached(&mut self, out: &mut Vec<u8>, ns: i64) {
        let secs = ns.div_euclid(1_000_000_000);
        let frac = ns.rem_euclid(1_000_000_000) as u32;
        let day = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400) as u32;
        if self.cached_day != Some(day) {
            let (y, m, d) = civil_from_days(day);
            let y = y.clamp(0, 9999) as u32;
            self.date = [
                b'0' + (y / 1000) as u8,
                b'0' + (y / 100 % 10) as u8,
                b'0' + (y / 10 % 10) as u8,
                b'0' + (y % 10) as u8,
                b'-',
                b'0' + (m / 10) as u8,
                b'0' + (m % 10) as u8,
                b'-',
                b'0' + (d / 10) as u8,
                b'0' + (d % 10) as u8,
                b'T',
            ];
            self.cached_day = Some(day);
        }
        out.extend_from_slice(&self.date);
        let (h, mi, s) = (sod / 3600, sod / 60 % 60, sod % 60);
        out.extend_from_slice(&[
            b'0' + (h / 10) as u8,
            b'0' + (h % 10) as u8,
            b':',
            b'0' + (mi / 10) as u8,
            b'0' + (mi % 10) as u8,
            b':',
            b'0' + (s / 10) as u8,
            b'0' + (s % 10) as u8,
            b'.',
        ]);
        let mut buf = [b'0'; 9];
        let mut f = frac;
        for b in buf.iter_mut().rev() {
            *b = b'0' + (f % 10) as u8;
            f /= 10;
        }
        out.extend_from_slice(&buf);
    }
}

/// Parse `YYYY-MM-DD` into a day number.
pub fn parse_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<u32>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if !(1..=12).contains(&m) || d == 0 {
        return None;
    }
    let y = y as i32;
    let dim = [
        31,
        if is_leap(y) { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if d > dim[(m - 1) as usize] {
        return None;
    }
    Some(days_from_civil(y, m, d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip_and_weekday() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        for z in -800_000..800_000i64 {
            if z % 997 != 0 {
                continue;
            }
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
        assert_eq!(weekday(0), 3); // Thursday
        assert_eq!(weekday(days_from_civil(2025, 1, 6)), 0); // Monday
        assert_eq!(weekday(days_from_civil(2024, 12, 25)), 2); // Wednesday
        assert_eq!(day_of_year(days_from_civil(2024, 12, 31)), 365);
    }

    #[test]
    fn easter_and_holidays() {
        assert_eq!(easter(2024), (3, 31));
        assert_eq!(easter(2025), (4, 20));
        assert_eq!(easter(2026), (4, 5));
        assert_eq!(easter(2019), (4, 21));
        let h = french_holidays(2025);
        assert_eq!(h.len(), 11);
        let has = |m, d| h.contains(&days_from_civil(2025, m, d));
        assert!(has(4, 21)); // Easter Monday
        assert!(has(5, 29)); // Ascension
        assert!(has(6, 9)); // Whit Monday
        assert!(has(7, 14) && has(12, 25) && has(11, 11));
        let set = Holidays::french(days_from_civil(2025, 1, 1), days_from_civil(2025, 12, 31));
        assert!(set.contains(days_from_civil(2025, 5, 8)));
        assert!(!set.contains(days_from_civil(2025, 5, 9)));
        assert!(set.contains(days_from_civil(2026, 1, 1)));
    }

    #[test]
    fn paris_summer_time() {
        let t = |y, m, d, h: i64| days_from_civil(y, m, d) * MS_PER_DAY + h * MS_PER_HOUR;
        // 2025: summer time from 30 March 01:00 UTC to 26 October 01:00 UTC.
        assert_eq!(paris_offset_ms(t(2025, 3, 30, 0)), MS_PER_HOUR);
        assert_eq!(paris_offset_ms(t(2025, 3, 30, 1)), 2 * MS_PER_HOUR);
        assert_eq!(paris_offset_ms(t(2025, 10, 26, 0)), 2 * MS_PER_HOUR);
        assert_eq!(paris_offset_ms(t(2025, 10, 26, 1)), MS_PER_HOUR);
        assert_eq!(paris_offset_ms(t(2025, 1, 15, 12)), MS_PER_HOUR);
        let local = t(2025, 7, 1, 8);
        assert_eq!(from_local_ms(local), t(2025, 7, 1, 6));
        assert_eq!(to_local_ms(from_local_ms(local)), local);
    }

    #[test]
    fn formats_rfc3339() {
        let mut f = TimeFormatter::default();
        let mut out = Vec::new();
        f.write(&mut out, 1_581_520_546_014_773_143);
        assert_eq!(out, b"2020-02-12T15:15:46.014773143");
        f.write(&mut out, 1_581_520_546_014_773_143);
        f.write(&mut out, 1_581_520_547_000_000_001);
        assert_eq!(out, b"2020-02-12T15:15:46.0147731432020-02-12T15:15:46.0147731432020-02-12T15:15:47.000000001");
        assert_eq!(parse_date("2024-02-29"), Some(days_from_civil(2024, 2, 29)));
        assert_eq!(parse_date("2025-02-29"), None);
        assert_eq!(parse_date("2025-13-01"), None);
        assert_eq!(parse_date("25-01-01"), None);
    }
}
