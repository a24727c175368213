//! Fill-rate profiles per container kind: hour of day, day of week, season, public
//! holidays and market days, plus the collection schedule policy and the rate ranges.
//!
//! Every profile is normalized to a mean of 1 over its period, so a container's
//! `base rate` (fill fraction per day) is its long-run average. The numbers and their
//! sources are documented in `docs/SIMULATOR.md`.

use super::calendar::{civil_from_days, day_of_year, weekday, Holidays};

/// Container kinds (same names and order as `tidstream.schema.CONTAINER_KINDS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Kind {
    GlassBank = 0,
    PaperBank = 1,
    PackagingBank = 2,
    GroupingPoint = 3,
    ParkBin = 4,
}

pub const N_KINDS: usize = 5;

impl Kind {
    pub const ALL: [Kind; N_KINDS] = [
        Kind::GlassBank,
        Kind::PaperBank,
        Kind::PackagingBank,
        Kind::GroupingPoint,
        Kind::ParkBin,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::GlassBank => "glass_bank",
            Kind::PaperBank => "paper_bank",
            Kind::PackagingBank => "packaging_bank",
            Kind::GroupingPoint => "grouping_point",
            Kind::ParkBin => "park_bin",
        }
    }

    pub fn from_name(s: &str) -> Option<Kind> {
        Kind::ALL.iter().copied().find(|k| k.name() == s)
    }

    pub fn from_code(c: u8) -> Option<Kind> {
        Kind::ALL.get(usize::from(c)).copied()
    }

    #[inline]
    pub fn idx(self) -> usize {
        self as usize
    }

    /// Bring-banks (apport volontaire): open hatch, no lid.
    pub fn is_bank(self) -> bool {
        matches!(
            self,
            Kind::GlassBank | Kind::PaperBank | Kind::PackagingBank
        )
    }
}

/// Per-kind parameters of the fill model and of the schedule policy.
#[derive(Debug, Clone, Copy)]
pub struct KindParams {
    /// Mean fill ratio at collection the base rates are drawn for (before the
    /// calendar effects): rate mean = target / mean collection interval.
    pub target_fill: f64,
    /// Log-space sigma of the per-container base rate (spread between containers).
    pub rate_sigma: f64,
    /// Log-space sigma of the day-to-day factor of one container.
    pub day_sigma: f64,
    /// How far content can heap above the full line (ratio): 1.0 for a bring-bank
    /// whose hatch blocks, more for a lidded bin.
    pub heap_max: f64,
    /// Surface irregularity: sigma of the surface height as a fraction of depth.
    pub surface_sigma: f64,
    /// Hour-of-day weights (local time), 24 values.
    pub hour: [f64; 24],
    /// Day-of-week weights Monday..Sunday.
    pub dow: [f64; 7],
    /// Monthly weights January..December (interpolated between mid-months).
    pub month: [f64; 12],
    /// Market-day multiplier on the market hours (07:00-13:00), 1 = no effect.
    pub market: f64,
    /// Extra multiplier on public holidays (on top of the Sunday profile).
    pub holiday: f64,
}

const NIGHT: f64 = 0.03;

pub const PARAMS: [KindParams; N_KINDS] = [
    // glass bank: deposits by day only (noise rules 22:00-07:00), Monday and Saturday
    // peaks after the weekend, few on Sunday, December peak.
    KindParams {
        target_fill: 0.52,
        rate_sigma: 0.38,
        day_sigma: 0.45,
        heap_max: 1.0,
        surface_sigma: 0.025,
        hour: [
            NIGHT, NIGHT, NIGHT, NIGHT, NIGHT, NIGHT, 0.05, 0.3, 0.8, 1.3, 1.7, 1.8, 1.3, 1.1, 1.4,
            1.6, 1.8, 2.0, 2.0, 1.5, 0.8, 0.3, 0.05, NIGHT,
        ],
        dow: [1.4, 1.0, 0.95, 0.9, 0.95, 1.2, 0.6],
        month: [
            1.1, 0.85, 0.9, 0.95, 1.0, 1.05, 1.1, 1.0, 0.95, 0.95, 0.95, 1.2,
        ],
        market: 1.0,
        holiday: 0.9,
    },
    // paper bank
    KindParams {
        target_fill: 0.54,
        rate_sigma: 0.36,
        day_sigma: 0.4,
        heap_max: 1.0,
        surface_sigma: 0.035,
        hour: [
            NIGHT, NIGHT, NIGHT, NIGHT, NIGHT, NIGHT, 0.1, 0.4, 0.9, 1.3, 1.6, 1.7, 1.3, 1.1, 1.3,
            1.5, 1.7, 1.9, 1.9, 1.5, 0.9, 0.4, 0.1, NIGHT,
        ],
        dow: [1.25, 1.0, 1.0, 0.95, 0.95, 1.15, 0.7],
        month: [
            1.1, 1.0, 1.0, 1.0, 1.0, 1.0, 0.95, 0.8, 1.05, 1.0, 1.0, 1.15,
        ],
        market: 1.0,
        holiday: 1.0,
    },
    // packaging bank (yellow stream): bulky, fast, December gifts
    KindParams {
        target_fill: 0.56,
        rate_sigma: 0.34,
        day_sigma: 0.4,
        heap_max: 1.0,
        surface_sigma: 0.05,
        hour: [
            NIGHT, NIGHT, NIGHT, NIGHT, NIGHT, NIGHT, 0.1, 0.4, 0.9, 1.3, 1.6, 1.7, 1.3, 1.1, 1.3,
            1.5, 1.7, 1.9, 1.9, 1.5, 0.9, 0.4, 0.1, NIGHT,
        ],
        dow: [1.3, 1.0, 0.95, 0.95, 1.0, 1.1, 0.7],
        month: [
            1.1, 0.95, 1.0, 1.0, 1.0, 1.0, 0.95, 0.85, 1.0, 1.0, 1.0, 1.2,
        ],
        market: 1.3,
        holiday: 1.0,
    },
    // grouping point (residual waste, 660-770 L wheelie bins): before work and evening
    KindParams {
        target_fill: 0.55,
        rate_sigma: 0.3,
        day_sigma: 0.35,
        heap_max: 1.15,
        surface_sigma: 0.03,
        hour: [
            0.1, 0.05, 0.05, 0.05, 0.05, 0.1, 0.5, 1.6, 1.8, 1.2, 1.0, 1.0, 1.2, 1.1, 0.9, 0.9,
            1.0, 1.3, 1.8, 2.0, 1.8, 1.2, 0.6, 0.3,
        ],
        dow: [1.25, 1.0, 0.95, 0.95, 1.0, 0.95, 0.9],
        month: [
            1.05, 1.0, 1.0, 1.0, 1.0, 1.0, 0.95, 0.85, 1.0, 1.0, 1.0, 1.1,
        ],
        market: 1.5,
        holiday: 1.0,
    },
    // park / street bin (50-120 L): weekend, lunchtime and summer peaks
    KindParams {
        target_fill: 0.36,
        rate_sigma: 0.45,
        day_sigma: 0.5,
        heap_max: 1.25,
        surface_sigma: 0.05,
        hour: [
            NIGHT, NIGHT, NIGHT, NIGHT, NIGHT, NIGHT, 0.1, 0.2, 0.5, 0.8, 1.2, 1.6, 2.2, 2.0, 1.7,
            1.8, 2.0, 1.9, 1.5, 1.0, 0.6, 0.3, 0.1, 0.05,
        ],
        dow: [0.8, 0.8, 0.95, 0.8, 0.9, 1.3, 1.45],
        month: [
            0.6, 0.65, 0.8, 1.0, 1.2, 1.35, 1.5, 1.45, 1.15, 0.9, 0.7, 0.7,
        ],
        market: 3.0,
        holiday: 1.2,
    },
];

#[inline]
pub fn params(kind: Kind) -> &'static KindParams {
    &PARAMS[kind.idx()]
}

fn normalized<const N: usize>(w: &[f64; N]) -> [f64; N] {
    let mean = w.iter().sum::<f64>() / N as f64;
    let mut out = *w;
    if mean > 0.0 {
        for x in &mut out {
            *x /= mean;
        }
    }
    out
}

/// Normalized profile tables, computed once per simulation.
#[derive(Debug, Clone)]
pub struct Profiles {
    hour: [[f64; 24]; N_KINDS],
    dow: [[f64; 7]; N_KINDS],
    month: [[f64; 12]; N_KINDS],
}

impl Default for Profiles {
    fn default() -> Self {
        Self::new()
    }
}

impl Profiles {
    pub fn new() -> Self {
        let mut p = Profiles {
            hour: [[0.0; 24]; N_KINDS],
            dow: [[0.0; 7]; N_KINDS],
            month: [[0.0; 12]; N_KINDS],
        };
        for k in Kind::ALL {
            let kp = params(k);
            p.hour[k.idx()] = normalized(&kp.hour);
            p.dow[k.idx()] = normalized(&kp.dow);
            p.month[k.idx()] = normalized(&kp.month);
        }
        p
    }

    /// Seasonal weight on a day: monthly weights placed at mid-month, linear in between.
    pub fn season(&self, kind: Kind, day: i64) -> f64 {
        let (_, m, d) = civil_from_days(day);
        let m0 = (m - 1) as usize;
        let months = &self.month[kind.idx()];
        // Position relative to the middle (15th) of the month.
        let pos = (f64::from(d) - 15.0) / 30.4;
        let (a, b, t) = if pos >= 0.0 {
            (m0, (m0 + 1) % 12, pos)
        } else {
            ((m0 + 11) % 12, m0, 1.0 + pos)
        };
        months[a] * (1.0 - t) + months[b] * t
    }

    /// Daily weight of a local calendar day (day of week, season, holidays, festive
    /// glass peak). Its mean over a year is close to 1.
    pub fn day_weight(&self, kind: Kind, day: i64, holidays: &Holidays) -> f64 {
        let wd = weekday(day) as usize;
        let dow = &self.dow[kind.idx()];
        let mut w = if holidays.contains(day) {
            dow[6] * params(kind).holiday
        } else if wd != 0 && holidays.contains(day - 1) {
            // The day after a holiday behaves like a Monday (catch-up deposits).
            dow[0]
        } else {
            dow[wd]
        };
        w *= self.season(kind, day);
        if kind == Kind::GlassBank {
            // Bottles of the festive season: 26 December to 5 January.
            let doy = day_of_year(day);
            let (y, _, _) = civil_from_days(day);
            let last = if super::calendar::is_leap(y) {
                365
            } else {
                364
            };
            if doy + 6 >= last || doy <= 4 {
                w *= 1.6;
            }
        }
        w
    }

    #[inline]
    pub fn hour_weight(&self, kind: Kind, local_hour: usize) -> f64 {
        self.hour[kind.idx()][local_hour % 24]
    }
}

/// Collection schedule of one container: fixed local weekdays, every `period_weeks`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// Bit d set = collected on weekday d (Monday = 0).
    pub weekdays: u8,
    /// 1 = every week, 2 = every other week.
    pub period_weeks: u8,
    /// Which week of the period (0 or 1) for fortnightly rounds.
    pub parity: u8,
    /// Local time of day the truck passes, minutes after midnight.
    pub minute: u16,
}

impl Schedule {
    /// Mean days between collections.
    pub fn mean_interval_days(&self) -> f64 {
        let per_week = f64::from(self.weekdays.count_ones().max(1));
        7.0 * f64::from(self.period_weeks.max(1)) / per_week
    }

    /// Whether the plan (before holiday shifts) collects on `day`.
    pub fn planned_on(&self, day: i64) -> bool {
        let wd = weekday(day);
        if self.weekdays & (1 << wd) == 0 {
            return false;
        }
        if self.period_weeks <= 1 {
            return true;
        }
        // ISO-like week index counted from a Monday (1970-01-05).
        let week = (day - 4).div_euclid(7);
        week.rem_euclid(i64::from(self.period_weeks)) == i64::from(self.parity)
    }

    /// The day the collection planned on `day` actually happens: a public holiday
    /// moves it to the next day that is neither a Sunday nor a holiday.
    pub fn shifted(day: i64, holidays: &Holidays) -> i64 {
        let mut d = day;
        while holidays.contains(d) || weekday(d) == 6 {
            d += 1;
        }
        d
    }

    /// First actual collection day strictly after `after_day` (or on it if
    /// `inclusive`), accounting for holiday shifts. Looks ahead at most 60 days.
    pub fn next_day(&self, after_day: i64, inclusive: bool, holidays: &Holidays) -> Option<i64> {
        // A planned day up to a week before can shift onto or past `after_day`.
        let start = after_day - 7;
        let mut best: Option<i64> = None;
        for d in start..after_day + 60 {
            if !self.planned_on(d) {
                continue;
            }
            let actual = Self::shifted(d, holidays);
            let ok = if inclusive {
                actual >= after_day
            } else {
                actual > after_day
            };
            if ok {
                best = Some(best.map_or(actual, |b: i64| b.min(actual)));
                if d > after_day {
                    break;
                }
            }
        }
        best
    }
}

/// The default schedule policy: weekday pattern options per kind (one is picked
/// per container), the period, and the rounds' time window.
pub fn schedule_options(kind: Kind) -> (&'static [u8], u8) {
    const MON: u8 = 1;
    const TUE: u8 = 2;
    const WED: u8 = 4;
    const THU: u8 = 8;
    const FRI: u8 = 16;
    const SAT: u8 = 32;
    match kind {
        // Fortnightly, one weekday.
        Kind::GlassBank | Kind::PaperBank => (&[MON, TUE, WED, THU, FRI], 2),
        // Weekly, one weekday.
        Kind::PackagingBank => (&[MON, TUE, WED, THU, FRI], 1),
        // Twice a week.
        Kind::GroupingPoint => (&[MON | THU, TUE | FRI], 1),
        // Three times a week.
        Kind::ParkBin => (&[MON | WED | FRI, TUE | THU | SAT], 1),
    }
}

#[cfg(test)]
mod tests {
    use super::super::calendar::days_from_civil;
    use super::*;

    #[test]
    fn profiles_are_normalized() {
        let p = Profiles::new();
        let h = Holidays::french(days_from_civil(2025, 1, 1), days_from_civil(2025, 12, 31));
        for k in Kind::ALL {
            let hm: f64 = (0..24).map(|i| p.hour_weight(k, i)).sum::<f64>() / 24.0;
            assert!((hm - 1.0).abs() < 1e-9);
            let d0 = days_from_civil(2025, 1, 1);
            let ym: f64 = (0..365).map(|i| p.day_weight(k, d0 + i, &h)).sum::<f64>() / 365.0;
            assert!((ym - 1.0).abs() < 0.06, "{k:?} {ym}");
        }
        // Weekend peak at park bins, Monday peak at bring-banks, summer parks, December glass.
        let mon = days_from_civil(2025, 3, 10);
        let sun = days_from_civil(2025, 3, 16);
        assert!(p.day_weight(Kind::ParkBin, sun, &h) > 1.5 * p.day_weight(Kind::ParkBin, mon, &h));
        assert!(
            p.day_weight(Kind::GlassBank, mon, &h)
                > 1.3 * p.day_weight(Kind::GlassBank, mon + 2, &h)
        );
        assert!(
            p.season(Kind::ParkBin, days_from_civil(2025, 7, 15))
                > 2.0 * p.season(Kind::ParkBin, days_from_civil(2025, 1, 15))
        );
        assert!(p.day_weight(Kind::GlassBank, days_from_civil(2025, 12, 29), &h) > 1.8);
    }

    #[test]
    fn schedules_and_holiday_shifts() {
        let h = Holidays::french(days_from_civil(2025, 1, 1), days_from_civil(2025, 12, 31));
        let weekly_mon = Schedule {
            weekdays: 1,
            period_weeks: 1,
            parity: 0,
            minute: 420,
        };
        // 2025-04-21 is Easter Monday: the Monday round moves to Tuesday 22nd.
        let sat = days_from_civil(2025, 4, 19);
        assert_eq!(
            weekly_mon.next_day(sat, false, &h),
            Some(days_from_civil(2025, 4, 22))
        );
        assert_eq!(
            weekly_mon.next_day(days_from_civil(2025, 4, 22), false, &h),
            Some(days_from_civil(2025, 4, 28))
        );
        assert_eq!(
            weekly_mon.next_day(days_from_civil(2025, 4, 22), true, &h),
            Some(days_from_civil(2025, 4, 22))
        );
        // Fortnightly: consecutive collections 14 days apart.
        let fort = Schedule {
            weekdays: 4,
            period_weeks: 2,
            parity: 1,
            minute: 420,
        };
        let a = fort
            .next_day(days_from_civil(2025, 2, 1), false, &h)
            .unwrap();
        let b = fort.next_day(a, false, &h).unwrap();
        assert_eq!(b - a, 14);
        assert_eq!(weekday(a), 2);
        assert!((fort.mean_interval_days() - 14.0).abs() < 1e-12);
        let park = Schedule {
            weekdays: 1 | 4 | 16,
            period_weeks: 1,
            parity: 0,
            minute: 420,
        };
        assert!((park.mean_interval_days() - 7.0 / 3.0).abs() < 1e-12);
        // Christmas 2025 is a Thursday: a Thursday round happens on Friday 26th.
        let thu = Schedule {
            weekdays: 8,
            period_weeks: 1,
            parity: 0,
            minute: 420,
        };
        assert_eq!(
            thu.next_day(days_from_civil(2025, 12, 22), false, &h),
            Some(days_from_civil(2025, 12, 26))
        );
    }
}
