//! Calendar arithmetic and the day-of-week x hour-of-day activity profile.
//!
//! Effective time: hours weighted by the profile `p(dow, hod) = Df[dow] Dc[dow] Hf[hod]
//! Hc[hod]` (fleet weights `f` times the container's own multipliers `c`). Fill grows
//! by `rate x effective hours`. Scale is free (the rate absorbs it), so the profile is
//! never renormalised per reading.

/// "No time" marker.
pub const NONE_T: i64 = i64::MIN;

/// Day-of-week of local day 0 (1970-01-01, a Thursday) with Monday = 0.
const DOW_EPOCH: i64 = 3;

/// (start of the local hour holding `t_local`, hour of day, day of week Mon=0).
#[inline]
pub fn split(t_local: i64) -> (i64, u8, u8) {
    let hour = t_local.div_euclid(3600);
    let day = hour.div_euclid(24);
    (
        hour * 3600,
        hour.rem_euclid(24) as u8,
        (day + DOW_EPOCH).rem_euclid(7) as u8,
    )
}

/// A container's effective profile (fleet weights times its own multipliers).
#[derive(Clone, Copy)]
pub struct Profile<'a> {
    pub fd: &'a [f64; 7],
    pub fh: &'a [f64; 24],
    pub cd: &'a [f64; 7],
    pub ch: &'a [f64; 24],
}

impl Profile<'_> {
    #[inline]
    pub fn w(&self, dow: u8, hod: u8) -> f64 {
        let d = usize::from(dow);
        let h = usize::from(hod);
        self.fd[d] * self.cd[d] * self.fh[h] * self.ch[h]
    }

    /// Prefix tables for O(1) effective time between any two instants.
    pub fn cum(&self) -> Cum {
        let mut c = Cum {
            dpre: [0.0; 8],
            h: [0.0; 24],
            hpre: [0.0; 25],
            d: [0.0; 7],
            week: 0.0,
        };
        for i in 0..24 {
            c.h[i] = self.fh[i] * self.ch[i];
            c.hpre[i + 1] = c.hpre[i] + c.h[i];
        }
        for i in 0..7 {
            c.d[i] = self.fd[i] * self.cd[i];
            c.dpre[i + 1] = c.dpre[i] + c.d[i] * c.hpre[24];
        }
        c.week = c.dpre[7];
        c
    }

    /// Walk hour by hour from `from` to `to` (local seconds, `to >= from`), with the
    /// cached (hour start, hod, dow) of `from` updated to `to`. Effective hours.
    #[inline(always)]
    pub fn walk(&self, cache: &mut (i64, u8, u8), from: i64, to: i64) -> f64 {
        let (mut hs, mut hod, mut dow) = *cache;
        let mut cur = from;
        let mut acc = 0.0;
        loop {
            let he = hs + 3600;
            if to < he {
                acc += self.w(dow, hod) * (to - cur) as f64;
                break;
            }
            acc += self.w(dow, hod) * (he - cur) as f64;
            cur = he;
            hs = he;
            hod += 1;
            if hod == 24 {
                hod = 0;
                dow = if dow == 6 { 0 } else { dow + 1 };
            }
            if to == he {
                // on the hour (the usual case): the next hour adds exactly 0
                break;
            }
        }
        *cache = (hs, hod, dow);
        acc * (1.0 / 3600.0)
    }
}

/// Cumulative effective-time tables of one profile.
#[derive(Clone, Copy, Debug)]
pub struct Cum {
    /// Effective hours of each whole day (by dow) accumulated Monday..dow.
    dpre: [f64; 8],
    h: [f64; 24],
    hpre: [f64; 25],
    d: [f64; 7],
    week: f64,
}

impl Cum {
    /// Effective hours from the local Monday 1969-12-29 00:00 to `t_local`.
    #[inline]
    pub fn at(&self, t_local: i64) -> f64 {
        let day = t_local.div_euclid(86_400);
        let sec = (t_local - day * 86_400) as f64;
        let wd = day + DOW_EPOCH;
        let week = wd.div_euclid(7);
        let dow = wd.rem_euclid(7) as usize;
        let hf = sec / 3600.0;
        let hi = (hf as usize).min(23);
        let within = self.hpre[hi] + self.h[hi] * (hf - hi as f64);
        week as f64 * self.week + self.dpre[dow] + self.d[dow] * within
    }

    /// Effective hours between two local instants (`t2 >= t1`).
    #[inline]
    pub fn between(&self, t1: i64, t2: i64) -> f64 {
        (self.at(t2) - self.at(t1)).max(0.0)
    }

    /// Effective hours of a whole week.
    pub fn week(&self) -> f64 {
        self.week
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat() -> ([f64; 7], [f64; 24]) {
        ([1.0; 7], [1.0; 24])
    }

    #[test]
    fn split_epoch() {
        // 1970-01-01 was a Thursday (dow 3).
        assert_eq!(split(0), (0, 0, 3));
        assert_eq!(split(-1), (-3600, 23, 2));
        // 2025-01-06 (Monday) 13:30 UTC
        let t = 1_736_170_200;
        let (hs, hod, dow) = split(t);
        assert_eq!((hod, dow), (13, 0));
        assert_eq!(hs, t - 1800);
    }

    #[test]
    fn flat_profile_is_wall_clock() {
        let (d, h) = flat();
        let p = Profile {
            fd: &d,
            fh: &h,
            cd: &d,
            ch: &h,
        };
        let c = p.cum();
        assert!((c.between(1000, 1000 + 7200) - 2.0).abs() < 1e-9);
        assert!((c.between(5, 5 + 86_400 * 10 + 1800) - 240.5).abs() < 1e-9);
        let mut cache = (split(1000).0, split(1000).1, split(1000).2);
        let w = p.walk(&mut cache, 1000, 1000 + 3 * 3600 + 60);
        assert!((w - (3.0 + 60.0 / 3600.0)).abs() < 1e-9);
        assert_eq!(cache, split(1000 + 3 * 3600 + 60));
    }

    #[test]
    fn walk_matches_cum_on_a_profile() {
        let mut d = [1.0f64; 7];
        let mut h = [1.0f64; 24];
        for (i, x) in d.iter_mut().enumerate() {
            *x = 0.5 + i as f64 * 0.2;
        }
        for (i, x) in h.iter_mut().enumerate() {
            *x = if (7..22).contains(&i) { 1.5 } else { 0.1 };
        }
        let one_d = [1.0f64; 7];
        let one_h = [1.0f64; 24];
        let p = Profile {
            fd: &d,
            fh: &h,
            cd: &one_d,
            ch: &one_h,
        };
        let c = p.cum();
        for &(a, b) in &[
            (0i64, 3600i64),
            (1234, 98_765),
            (-50_000, 400_000),
            (1_736_170_200, 1_736_170_200 + 86_400 * 9 + 17),
        ] {
            let s = split(a);
            let mut cache = s;
            let w = p.walk(&mut cache, a, b);
            assert!(
                (w - c.between(a, b)).abs() < 1e-6,
                "{a} {b}: {w} vs {}",
                c.between(a, b)
            );
        }
    }
}
