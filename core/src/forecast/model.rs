//! The per-container state and its O(1) update per reading.

use super::calib::{band, Calib, Dist, Param, N_STALL};
use super::profile::{split, Profile, NONE_T};
use super::{Config, ScoreRule, Stats};

/// Pending forecasts kept per container and calibration horizon.
pub const RING: usize = 3;

/// Below this resolution a sensor is "fine" (noise dominates); at or above it the
/// readings sit on a coarse grid (e.g. Bigbelly's tenths) and are taken as exact.
pub const COARSE: f64 = 0.02;
/// Level smoothing time constant for fine sensors (hours).
const TAU_L: f64 = 2.0;
/// Memory of the rate estimate (hours of wall time, ~20 days).
const TAU_R: f64 = 480.0;
/// Prior weight of the fleet rate in a container's rate (effective hours).
const N0_R: f64 = 48.0;
/// Learning steps of the container's day-of-week (per day of data) and hour-of-day
/// (per hourly sample) multipliers.
const ETA_D: f64 = 0.01;
const ETA_H: f64 = 0.002;
/// Learning step of a container's logit offset on its exceedance probabilities.
const ETA_P: f64 = 0.02;
/// Readings with the exact same value before a fine sensor is declared stuck.
const STUCK_REPEATS: u8 = 3;
/// Consecutive high readings (and hours) before a level jump is believed.
const JUMP_CONFIRM: u8 = 3;
const JUMP_CONFIRM_S: i64 = 2 * 3600;

/// `max` / `min` as one `maxsd` / `minsd` (no NaN fix-up), for the per-reading path
/// where no operand is NaN (readings are checked finite first and every state value
/// stays finite). Equal to `f64::max` / `f64::min` there (up to the sign of a zero).
trait FastMinMax {
    fn fmax(self, o: f64) -> f64;
    fn fmin(self, o: f64) -> f64;
}

impl FastMinMax for f64 {
    #[inline(always)]
    fn fmax(self, o: f64) -> f64 {
        if self > o {
            self
        } else {
            o
        }
    }
    #[inline(always)]
    fn fmin(self, o: f64) -> f64 {
        if self < o {
            self
        } else {
            o
        }
    }
}

pub const F_INIT: u8 = 1;
pub const F_PROVISIONAL: u8 = 2;
pub const F_STUCK: u8 = 4;

/// A forecast waiting for its target time (for calibration and accountability).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pending {
    pub due: i64,
    pub made: i64,
    pub base: f32,
    pub m: f32,
    pub p10: f32,
    pub p50: f32,
    pub p90: f32,
    /// P(fill >= threshold) from the fleet tables (before the container's offset).
    pub po: f32,
    pub cyc: u32,
    pub band: u8,
    pub stall: u8,
}

impl Pending {
    pub const EMPTY: Pending = Pending {
        due: NONE_T,
        made: NONE_T,
        base: 0.0,
        m: 0.0,
        p10: 0.0,
        p50: 0.0,
        p90: 0.0,
        po: 0.0,
        cyc: 0,
        band: 0,
        stall: 0,
    };
}

/// Rolling forecast error of one container at one horizon.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Acc {
    pub n: u32,
    pub mae: f32,
    pub bias: f32,
    pub cov: f32,
    pub last: i64,
}

/// Per-container state (about 250 bytes).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct State {
    pub t_last: i64,
    pub hour: i64,
    pub t_cycle: i64,
    pub t_rise: i64,
    pub up_t: i64,
    pub bk_t_last: i64,
    pub bk_hour: i64,
    pub bk_t_cycle: i64,
    pub bk_t_rise: i64,
    pub level: f64,
    pub x_last: f64,
    pub prev_raw: f64,
    pub rnum: f64,
    pub rden: f64,
    pub noise: f64,
    pub res: f64,
    pub max_level: f64,
    pub anchor: f64,
    pub up_level: f64,
    /// Logit offset of this container's exceedance probabilities (learned from its scored forecasts).
    pub p_off: f64,
    pub bk_level: f64,
    pub bk_x_last: f64,
    pub bk_anchor: f64,
    pub bk_du: f64,
    /// Earliest due time among the pending forecasts (i64::MAX: none).
    pub next_due: i64,
    /// Earliest time a new pending forecast may be issued (i64::MIN: now).
    pub next_issue: i64,
    /// Local day of the last rotation issue (sub-daily streams).
    pub issue_day: i64,
    pub cd: [f64; 7],
    pub ch: [f64; 24],
    /// Day-of-week evidence not yet applied to `cd[d_dow]`.
    pub d_sum: f64,
    pub cyc: u32,
    pub n_obs: u32,
    pub n_empty: u32,
    pub hod: u8,
    pub dow: u8,
    pub bk_hod: u8,
    pub bk_dow: u8,
    pub n_same: u8,
    pub up_count: u8,
    pub flags: u8,
    pub d_dow: u8,
}

impl Default for State {
    fn default() -> Self {
        State {
            t_last: NONE_T,
            hour: 0,
            t_cycle: NONE_T,
            t_rise: NONE_T,
            up_t: NONE_T,
            bk_t_last: NONE_T,
            bk_hour: 0,
            bk_t_cycle: NONE_T,
            bk_t_rise: NONE_T,
            level: 0.0,
            x_last: 0.0,
            prev_raw: f64::NAN,
            rnum: 0.0,
            rden: 0.0,
            noise: 0.01,
            res: 0.0,
            max_level: 1.0,
            anchor: 0.0,
            up_level: 0.0,
            p_off: 0.0,
            bk_level: 0.0,
            bk_x_last: 0.0,
            bk_anchor: 0.0,
            bk_du: 0.0,
            next_due: i64::MAX,
            next_issue: i64::MIN,
            issue_day: NONE_T,
            cd: [1.0; 7],
            ch: [1.0; 24],
            d_sum: 0.0,
            cyc: 0,
            n_obs: 0,
            n_empty: 0,
            hod: 0,
            dow: 0,
            bk_hod: 0,
            bk_dow: 0,
            n_same: 0,
            up_count: 0,
            flags: 0,
            d_dow: 0,
        }
    }
}

/// Earliest due time of a container's pending forecasts (i64::MAX when none).
pub fn next_due(pend: &[Pending]) -> i64 {
    pend.iter()
        .filter(|p| p.due != NONE_T)
        .map(|p| p.due)
        .min()
        .unwrap_or(i64::MAX)
}

/// Fleet quantities frozen for one batch (or one predict call).
#[derive(Clone, Copy, Debug)]
pub struct Env {
    pub fd: [f64; 7],
    pub fh: [f64; 24],
    pub inv_fd: [f64; 7],
    pub inv_fh: [f64; 24],
    /// Fleet activity factor and its inverse.
    pub phi: f64,
    pub inv_phi: f64,
    /// Fleet mean rate (fill per effective hour, factor-free).
    pub fleet_r: f64,
    pub off: i64,
}

/// Fleet accumulators updated by every reading.
#[derive(Clone, Debug)]
pub struct Fleet {
    pub fd_num: [f64; 7],
    pub fd_den: [f64; 7],
    pub fh_num: [f64; 24],
    pub fh_den: [f64; 24],
    pub rnum: f64,
    pub rden: f64,
    /// Day buckets of the activity factor: (day, observed rise, expected rise).
    pub days: Vec<(i64, f64, f64)>,
    pub last_day: i64,
}

pub const N_DAYS: usize = 64;
/// Memory of the activity factor (days) and its prior mass (fill units).
const TAU_F: f64 = 10.0;
const PRIOR_F: f64 = 1.0;
/// Per-sample forgetting of the fleet rate and profile sums.
const FLEET_DECAY: f64 = 1.0 - 1.0 / 200_000.0;
/// Prior mass (fill units) pulling the fleet profile to flat.
const PRIOR_P: f64 = 2.0;

impl Default for Fleet {
    fn default() -> Self {
        Fleet {
            fd_num: [0.0; 7],
            fd_den: [0.0; 7],
            fh_num: [0.0; 24],
            fh_den: [0.0; 24],
            // prior: 0.125 of capacity per day, worth 1000 effective hours
            rnum: 0.125 / 24.0 * 1000.0,
            rden: 1000.0,
            days: vec![(NONE_T, 0.0, 0.0); N_DAYS],
            last_day: NONE_T,
        }
    }
}

/// Fleet sums of one batch, folded into [`Fleet`] at its end (one forgetting step
/// per batch instead of one per reading).
#[derive(Clone, Debug)]
pub struct FleetAcc {
    /// Activity-factor sums of the current day (flushed into the day buckets when
    /// the day changes and at the end of the batch).
    pub day: i64,
    pub day_num: f64,
    pub day_den: f64,
    pub n: f64,
    pub rnum: f64,
    pub rden: f64,
    pub fd_num: [f64; 7],
    pub fd_den: [f64; 7],
    pub fh_num: [f64; 24],
    pub fh_den: [f64; 24],
}

impl Default for FleetAcc {
    fn default() -> Self {
        FleetAcc {
            day: NONE_T,
            day_num: 0.0,
            day_den: 0.0,
            n: 0.0,
            rnum: 0.0,
            rden: 0.0,
            fd_num: [0.0; 7],
            fd_den: [0.0; 7],
            fh_num: [0.0; 24],
            fh_den: [0.0; 24],
        }
    }
}

impl Fleet {
    /// Add a batch's sums, forgetting the old ones as if per sample.
    pub fn fold(&mut self, a: &FleetAcc) {
        if a.day != NONE_T && (a.day_num != 0.0 || a.day_den != 0.0) {
            self.add_day(a.day, a.day_num, a.day_den);
        }
        if a.n == 0.0 {
            return;
        }
        let d = FLEET_DECAY.powf(a.n);
        self.rnum = d * self.rnum + a.rnum;
        self.rden = d * self.rden + a.rden;
        for i in 0..7 {
            self.fd_num[i] = d * self.fd_num[i] + a.fd_num[i];
            self.fd_den[i] = d * self.fd_den[i] + a.fd_den[i];
        }
        for i in 0..24 {
            self.fh_num[i] = d * self.fh_num[i] + a.fh_num[i];
            self.fh_den[i] = d * self.fh_den[i] + a.fh_den[i];
        }
    }

    /// Fleet activity factor as of local day `day` (buckets up to and including it).
    pub fn phi(&self, day: i64) -> f64 {
        if day == NONE_T {
            return 1.0;
        }
        let lam = (-1.0 / TAU_F).exp();
        let (mut num, mut den) = (PRIOR_F, PRIOR_F);
        for &(d, n, e) in &self.days {
            if d == NONE_T || d > day || day - d >= N_DAYS as i64 {
                continue;
            }
            let w = lam.powi((day - d) as i32);
            num += w * n;
            den += w * e;
        }
        (num / den).clamp(0.25, 4.0)
    }

    /// Add one observation to the activity factor's day bucket.
    #[inline]
    pub fn add_day(&mut self, day: i64, rise: f64, expected: f64) {
        let slot = day.rem_euclid(N_DAYS as i64) as usize;
        let b = &mut self.days[slot];
        if b.0 != day {
            if b.0 != NONE_T && b.0 > day {
                return; // older than the ring holds
            }
            *b = (day, 0.0, 0.0);
        }
        b.1 += rise;
        b.2 += expected;
        if self.last_day == NONE_T || day > self.last_day {
            self.last_day = day;
        }
    }

    pub fn rate(&self) -> f64 {
        (self.rnum / self.rden).max(1e-6)
    }

    /// Normalised fleet profiles (mean 1).
    pub fn profiles(&self) -> ([f64; 7], [f64; 24]) {
        let mut fd = [1.0f64; 7];
        let mut fh = [1.0f64; 24];
        for (o, (n, d)) in fd.iter_mut().zip(self.fd_num.iter().zip(&self.fd_den)) {
            *o = ((n + PRIOR_P) / (d + PRIOR_P)).clamp(0.02, 50.0);
        }
        let s: f64 = fd.iter().sum();
        fd.iter_mut().for_each(|v| *v *= 7.0 / s);
        for (o, (n, d)) in fh.iter_mut().zip(self.fh_num.iter().zip(&self.fh_den)) {
            *o = ((n + PRIOR_P) / (d + PRIOR_P)).clamp(0.02, 50.0);
        }
        let s: f64 = fh.iter().sum();
        fh.iter_mut().for_each(|v| *v *= 24.0 / s);
        (fd, fh)
    }
}

/// What a container needs from its neighbours in the forecaster to take a reading.
pub struct Ctx<'a> {
    pub cfg: &'a Config,
    pub env: &'a Env,
    pub fleet: &'a mut Fleet,
    pub acc: &'a mut FleetAcc,
    pub calib: &'a mut Calib,
    pub stats: &'a mut Stats,
}

/// The forecaster's pending forecasts (K x RING per container) and rolling errors
/// (K per container), with the container `i` taking a reading: sliced only when a
/// forecast is scored or issued.
pub struct Slots<'a> {
    pub pend: &'a mut [Pending],
    pub acc: &'a mut [Acc],
    pub i: usize,
}

impl Slots<'_> {
    /// Container `i`'s pending forecasts and rolling errors (`k` horizons).
    #[inline]
    pub fn get(&mut self, k: usize) -> (&mut [Pending], &mut [Acc]) {
        let i = self.i;
        (
            &mut self.pend[i * k * RING..(i + 1) * k * RING],
            &mut self.acc[i * k..(i + 1) * k],
        )
    }
}

impl State {
    #[inline]
    pub fn profile<'a>(&'a self, env: &'a Env) -> Profile<'a> {
        Profile {
            fd: &env.fd,
            fh: &env.fh,
            cd: &self.cd,
            ch: &self.ch,
        }
    }

    /// The container's fill rate per effective hour (activity factor excluded),
    /// shrunk toward the fleet rate while its history is short.
    #[inline]
    pub fn rate(&self, fleet_r: f64) -> f64 {
        ((self.rnum + N0_R * fleet_r) / (self.rden + N0_R)).fmax(0.0)
    }

    #[inline]
    pub fn coarse(&self) -> bool {
        self.res >= COARSE
    }

    #[inline]
    pub fn noise_eff(&self) -> f64 {
        if self.coarse() {
            0.0
        } else {
            self.noise
        }
    }

    /// Level step that counts as a rise.
    #[inline]
    fn step_size(&self) -> f64 {
        self.res.fmax(2.0 * self.noise_eff()).fmax(0.01)
    }

    /// Stall class at the last reading.
    pub fn stall(&self, r_phi: f64) -> usize {
        if self.t_rise == self.t_last {
            return 0;
        }
        let hours = (self.t_last - self.t_rise) as f64 / 3600.0;
        let sr = hours * r_phi / self.step_size();
        if sr < 1.0 {
            1
        } else if sr < 2.0 {
            2
        } else {
            N_STALL - 1
        }
    }

    /// Effective hours from the last reading to `t` and the calendar cache at `t`.
    #[inline(always)]
    fn elapsed(&self, env: &Env, t: i64) -> (f64, (i64, u8, u8)) {
        let from = self.t_last + env.off;
        let to = t + env.off;
        let p = self.profile(env);
        if to - from <= 6 * 3600 {
            let mut cache = (self.hour, self.hod, self.dow);
            let w = p.walk(&mut cache, from, to);
            (w, cache)
        } else {
            (p.cum().between(from, to), split(to))
        }
    }

    fn init(&mut self, t: i64, x: f64, env: &Env) {
        *self = State::default();
        self.flags = F_INIT;
        self.t_last = t;
        let (h, hod, dow) = split(t + env.off);
        self.hour = h;
        self.hod = hod;
        self.dow = dow;
        self.level = x;
        self.x_last = x;
        self.prev_raw = x;
        self.anchor = x;
        self.t_rise = t;
        self.max_level = x.clamp(1.0, 1.5);
        self.n_obs = 1;
    }

    /// Take one reading. `slots` holds this container's pending forecasts (K x RING)
    /// and rolling errors (K). The caller counts it in `stats.readings`.
    #[allow(clippy::too_many_lines)]
    #[inline(always)]
    pub fn step<const AVX2: bool>(
        &mut self,
        ctx: &mut Ctx<'_>,
        slots: &mut Slots<'_>,
        t: i64,
        x: f64,
        tilt: i8,
    ) {
        if !x.is_finite() {
            ctx.stats.missing += 1;
            return;
        }
        if !(-0.5..=3.0).contains(&x) {
            ctx.stats.invalid += 1;
            return;
        }
        if self.flags & F_INIT == 0 {
            self.init(t, x, ctx.env);
            ctx.stats.accepted += 1;
            // cadence unknown yet: one horizon now, the others from the next reading
            let (pend, _) = slots.get(ctx.calib.horizons.len());
            self.issue(ctx, pend, 24.0);
            return;
        }
        if t <= self.t_last {
            ctx.stats.out_of_order += 1;
            return;
        }
        let env: &Env = ctx.env;
        let r_c = self.rate(env.fleet_r);
        let r = r_c * env.phi;

        // A provisional emptying is confirmed, or reverted as a spike, by the next reading.
        if self.flags & F_PROVISIONAL != 0 {
            self.flags &= !F_PROVISIONAL;
            let (du, _) = self.elapsed(env, t);
            let bk_pred = self.bk_level + r * (self.bk_du + du);
            let tol = (0.5 * self.drop_min(ctx.cfg)).fmax(3.0 * self.noise_eff());
            if tilt != 1 && x >= bk_pred.fmin(self.max_level) - tol {
                self.level = self.bk_level;
                self.x_last = self.bk_x_last;
                self.anchor = self.bk_anchor;
                self.t_last = self.bk_t_last;
                self.hour = self.bk_hour;
                self.hod = self.bk_hod;
                self.dow = self.bk_dow;
                self.t_cycle = self.bk_t_cycle;
                self.t_rise = self.bk_t_rise;
                self.cyc = self.cyc.wrapping_sub(1);
                self.n_empty = self.n_empty.saturating_sub(1);
                ctx.stats.emptyings = ctx.stats.emptyings.saturating_sub(1);
                ctx.stats.spikes_low += 1;
            }
        }

        let (du, cache) = self.elapsed(env, t);
        let dt_h = (t - self.t_last) as f64 * (1.0 / 3600.0);
        let level = self.level;
        let cap = self.max_level;
        let pred = (level + r * du).fmin(cap.fmax(level));

        // resolution: the smallest step seen between raw readings
        let d = (x - self.prev_raw).abs();
        if d > 1e-4 && (self.res == 0.0 || d < self.res) {
            self.res = d;
        }
        // stuck: a fine sensor repeating the exact same value
        let same = x == self.prev_raw;
        self.prev_raw = x;
        self.n_same = if same {
            self.n_same.saturating_add(1)
        } else {
            0
        };
        let coarse = self.coarse();
        if !coarse
            && self.res > 0.0
            && self.n_obs >= 10
            && self.n_same >= STUCK_REPEATS
            && self.noise > 1.5 * self.res
        {
            self.flags |= F_STUCK;
            ctx.stats.stuck += 1;
            return;
        }
        self.flags &= !F_STUCK;

        let noise_eff = self.noise_eff();
        let drop_min = self.drop_min(ctx.cfg);
        // Emptying (or a low spike: confirmed by the next reading unless tilt says so).
        // A fine sensor must also fall near the bottom (surface noise is not an emptying).
        let fall = level - x;
        if fall >= drop_min && (coarse || fall >= 0.25 || x <= 0.6 * level) {
            let confirmed = tilt == 1 || !ctx.cfg.confirm_emptying;
            if !confirmed {
                self.flags |= F_PROVISIONAL;
                self.bk_level = self.level;
                self.bk_x_last = self.x_last;
                self.bk_anchor = self.anchor;
                self.bk_t_last = self.t_last;
                self.bk_hour = self.hour;
                self.bk_hod = self.hod;
                self.bk_dow = self.dow;
                self.bk_t_cycle = self.t_cycle;
                self.bk_t_rise = self.t_rise;
                self.bk_du = du;
            }
            self.level = x;
            self.x_last = x;
            self.anchor = x;
            self.t_rise = t;
            self.t_cycle = t;
            self.cyc = self.cyc.wrapping_add(1);
            self.n_empty += 1;
            self.up_count = 0;
            self.commit(t, cache);
            ctx.stats.emptyings += 1;
            ctx.stats.accepted += 1;
            self.bookkeep::<AVX2>(ctx, slots, t, x, dt_h);
            return;
        }
        if tilt == 1 {
            ctx.stats.tilted += 1;
            return;
        }
        // A jump far above the model: an obstruction or lid spike until it persists.
        let e = x - pred;
        let up_thr = 0.15f64.fmax(5.0 * noise_eff).fmax(1.5 * self.res) + 4.0 * r * du;
        // (after half a day or more, any rise is plausible: no spike test)
        if e > up_thr && dt_h < 12.0 {
            let tol = 0.1f64.fmax(4.0 * noise_eff).fmax(self.res);
            if self.up_count > 0 && (x - self.up_level).abs() <= tol {
                self.up_count = self.up_count.saturating_add(1);
            } else {
                self.up_count = 1;
                self.up_level = x;
                self.up_t = t;
            }
            if self.up_count < JUMP_CONFIRM || t - self.up_t < JUMP_CONFIRM_S {
                ctx.stats.spikes_high += 1;
                return;
            }
            // believed: a real jump (bulk deposit); no rate sample from it
            self.up_count = 0;
            self.level = x;
            self.x_last = x;
            self.anchor = x;
            self.t_rise = t;
            self.max_level = self.max_level.fmax(x.fmin(1.5));
            self.commit(t, cache);
            ctx.stats.jumps += 1;
            ctx.stats.accepted += 1;
            self.bookkeep::<AVX2>(ctx, slots, t, x, dt_h);
            return;
        }
        self.up_count = 0;

        // Accepted reading.
        let alpha = if coarse { 1.0 } else { dt_h / (dt_h + TAU_L) };
        let new_level = (pred + alpha * e).clamp(-0.2, 1.5);
        if !coarse {
            let n = self.noise;
            self.noise = (n + 0.03 * (e.abs().fmin(0.2) - n)).fmax(0.002);
        }
        // Rate, activity factor and profile samples (not at the cap: it cannot rise).
        let x_prev = self.x_last;
        if du > 1e-9 && x_prev < cap - 0.01 - 0.5 * self.res {
            let expected = r_c * du; // factor-free
            let exp_phi = expected * env.phi;
            let c = (5.6 * noise_eff)
                .fmax(5.0 * exp_phi)
                .fmax(2.0 * self.res + 0.05);
            let dx = (x - x_prev).fmax(exp_phi - c).fmin(exp_phi + c);
            // forgetting 1 / (1 + dt / tau): ~ 1 - dt / tau for short intervals
            let lam = if dt_h < 2.0 {
                1.0 - dt_h * (1.0 / TAU_R)
            } else {
                1.0 / (1.0 + dt_h * (1.0 / TAU_R))
            };
            let dxn = dx * env.inv_phi;
            self.rnum = lam * self.rnum + dxn;
            self.rden = lam * self.rden + du;
            let fa = &mut *ctx.acc;
            fa.n += 1.0;
            fa.rnum += dxn;
            fa.rden += du;
            let day = (t + env.off).div_euclid(86_400);
            if day != fa.day {
                if fa.day_num != 0.0 || fa.day_den != 0.0 {
                    ctx.fleet.add_day(fa.day, fa.day_num, fa.day_den);
                }
                fa.day = day;
                fa.day_num = 0.0;
                fa.day_den = 0.0;
            }
            fa.day_num += dx;
            fa.day_den += expected;
            if exp_phi > 1e-6 {
                let ratio = (dx / exp_phi).clamp(-2.0, 6.0);
                if dt_h <= 26.0 {
                    // attribute to the day (and hour) of the interval's midpoint
                    let mid = (self.t_last + t) / 2 + env.off;
                    let (_, mh, md) = if dt_h <= 1.5 {
                        if mid >= cache.0 {
                            cache
                        } else {
                            (self.hour, self.hod, self.dow)
                        }
                    } else {
                        split(mid)
                    };
                    let (md, mh) = (usize::from(md), usize::from(mh));
                    // day-of-week evidence is summed over the day and applied when
                    // the day changes (no per-reading dependency on the multiplier)
                    if md as u8 != self.d_dow {
                        self.flush_dow();
                        self.d_dow = md as u8;
                    }
                    self.d_sum += (dt_h * (1.0 / 24.0)).fmin(1.0) * (ratio - 1.0);
                    if dt_h >= 12.0 {
                        self.flush_dow();
                    }
                    fa.fd_num[md] += dxn;
                    fa.fd_den[md] += expected * env.inv_fd[md];
                    if dt_h <= 1.5 {
                        let g = 1.0 + ETA_H * (ratio - 1.0);
                        self.ch[mh] = (self.ch[mh] * g).clamp(0.05, 20.0);
                        fa.fh_num[mh] += dxn;
                        fa.fh_den[mh] += expected * env.inv_fh[mh];
                    }
                }
            }
        }
        let step = self.step_size();
        let nl = new_level;
        if nl - self.anchor >= 0.999 * step {
            self.anchor = nl;
            self.t_rise = t;
        } else if self.anchor - nl >= step {
            self.anchor = nl;
        }
        self.level = nl;
        self.max_level = self.max_level.fmax(nl.fmin(1.5));
        self.x_last = x;
        self.commit(t, cache);
        self.n_obs = self.n_obs.saturating_add(1);
        ctx.stats.accepted += 1;
        self.bookkeep::<AVX2>(ctx, slots, t, x, dt_h);
    }

    /// Score the pending forecasts due by `t` and issue new ones when it is time
    /// (the only use of the container's pending forecasts and rolling errors).
    /// `AVX2`: the caller runs the AVX2 build of the update (see `forecast::process`).
    #[inline(always)]
    fn bookkeep<const AVX2: bool>(
        &mut self,
        ctx: &mut Ctx<'_>,
        slots: &mut Slots<'_>,
        t: i64,
        x: f64,
        dt_h: f64,
    ) {
        if t >= self.next_due || t >= self.next_issue {
            #[cfg(target_arch = "x86_64")]
            if AVX2 {
                // SAFETY: `AVX2` is only true in the update's AVX2 build, which runs
                // after `is_x86_feature_detected!("avx2")`.
                unsafe { self.bookkeep_due_avx2(ctx, slots, t, x, dt_h) };
                return;
            }
            self.bookkeep_due(ctx, slots, t, x, dt_h);
        }
    }

    #[inline(never)]
    fn bookkeep_due(
        &mut self,
        ctx: &mut Ctx<'_>,
        slots: &mut Slots<'_>,
        t: i64,
        x: f64,
        dt_h: f64,
    ) {
        self.bookkeep_due_body(ctx, slots, t, x, dt_h);
    }

    /// [`State::bookkeep_due`] compiled for AVX2 (the same IEEE operations: identical
    /// results).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    #[inline(never)]
    unsafe fn bookkeep_due_avx2(
        &mut self,
        ctx: &mut Ctx<'_>,
        slots: &mut Slots<'_>,
        t: i64,
        x: f64,
        dt_h: f64,
    ) {
        self.bookkeep_due_body(ctx, slots, t, x, dt_h);
    }

    #[inline(always)]
    fn bookkeep_due_body(
        &mut self,
        ctx: &mut Ctx<'_>,
        slots: &mut Slots<'_>,
        t: i64,
        x: f64,
        dt_h: f64,
    ) {
        let (pend, acc) = slots.get(ctx.calib.horizons.len());
        if (t >= self.next_due && self.score(ctx, pend, acc, t, x)) || t >= self.next_issue {
            self.issue_body(ctx, pend, dt_h);
        }
    }

    /// Apply the day-of-week evidence gathered so far.
    #[inline]
    fn flush_dow(&mut self) {
        if self.d_sum != 0.0 {
            let d = usize::from(self.d_dow);
            self.cd[d] = (self.cd[d] * (1.0 + ETA_D * self.d_sum)).clamp(0.05, 20.0);
            self.d_sum = 0.0;
        }
    }

    #[inline]
    fn drop_min(&self, cfg: &Config) -> f64 {
        cfg.drop_threshold
            .fmax(0.75 * self.res)
            .fmax(4.0 * self.noise_eff())
    }

    #[inline]
    fn commit(&mut self, t: i64, cache: (i64, u8, u8)) {
        self.t_last = t;
        self.hour = cache.0;
        self.hod = cache.1;
        self.dow = cache.2;
    }

    /// Score the pending forecasts due by `t` against the reading `y`.
    #[inline]
    /// Returns true when a slot was freed.
    fn score(
        &mut self,
        ctx: &mut Ctx<'_>,
        pend: &mut [Pending],
        acc: &mut [Acc],
        t: i64,
        y: f64,
    ) -> bool {
        if t < self.next_due {
            return false;
        }
        let k_n = ctx.calib.horizons.len();
        let allow = if self.coarse() {
            0.5 * self.res
        } else {
            3.0 * self.noise_eff()
        };
        for k in 0..k_n {
            let hk = ctx.calib.horizons[k];
            let tol = ((0.25 * hk).max(1.0) * 3600.0) as i64;
            for p in &mut pend[k * RING..(k + 1) * RING] {
                if p.due == NONE_T || p.due > t {
                    continue;
                }
                let base = f64::from(p.base);
                let eligible = t - p.due <= tol
                    && match ctx.cfg.score_rule {
                        ScoreRule::Endpoints => y >= base - allow.max(1e-6),
                        ScoreRule::Cycle => p.cyc == self.cyc,
                    };
                if eligible {
                    ctx.calib.learn(
                        k,
                        usize::from(p.band),
                        f64::from(p.m),
                        usize::from(p.stall),
                        y - base,
                    );
                    let below = y < f64::from(p.p10) - 1e-6;
                    let above = y > f64::from(p.p90) + 1e-6;
                    ctx.calib.adapt(k, below, above);
                    let a = &mut acc[k];
                    a.n = a.n.saturating_add(1);
                    let w = (1.0 / f64::from(a.n)).max(0.05);
                    let err = y - f64::from(p.p50);
                    a.mae = (f64::from(a.mae) + w * (err.abs() - f64::from(a.mae))) as f32;
                    a.bias = (f64::from(a.bias) + w * (err - f64::from(a.bias))) as f32;
                    let cov = f64::from(u8::from(!below && !above));
                    a.cov = (f64::from(a.cov) + w * (cov - f64::from(a.cov))) as f32;
                    a.last = t;
                    ctx.stats.scored += 1;
                    let po = f64::from(p.po);
                    if po > 1e-4 && po < 1.0 - 1e-4 {
                        let ev = f64::from(u8::from(y >= ctx.cfg.threshold - 1e-6));
                        let pc = logistic(logit(po) + self.p_off);
                        self.p_off = (self.p_off + ETA_P * (ev - pc)).clamp(-3.0, 3.0);
                    }
                }
                *p = Pending::EMPTY;
            }
        }
        self.next_due = next_due(pend);
        true
    }

    /// Issue new pending forecasts from the current state (one per horizon at most
    /// every horizon / RING).
    ///
    /// Readings a day or more apart issue every horizon at every `horizon / RING`
    /// (so a daily series yields a pair for each horizon every day); sub-daily
    /// streams issue one horizon per local day, in rotation (plenty for the fleet
    /// tables, and a fixed cost per container-day however often it reports).
    fn issue(&mut self, ctx: &mut Ctx<'_>, pend: &mut [Pending], dt_h: f64) {
        self.issue_body(ctx, pend, dt_h);
    }

    #[inline(always)]
    fn issue_body(&mut self, ctx: &mut Ctx<'_>, pend: &mut [Pending], dt_h: f64) {
        if !ctx.cfg.calibrate {
            self.next_issue = i64::MAX;
            return;
        }
        let k_n = ctx.calib.horizons.len();
        let mut cum = None;
        let mut issued = false;
        let mut next_issue = i64::MAX;
        let off = ctx.env.off;
        let (k_lo, k_hi) = if dt_h < 12.0 {
            let day = (self.t_last + off).div_euclid(86_400);
            self.next_issue = (day + 1) * 86_400 - off;
            if day == self.issue_day {
                return;
            }
            self.issue_day = day;
            let k = day.rem_euclid(k_n as i64) as usize;
            next_issue = self.next_issue;
            (k, k + 1)
        } else {
            (0, k_n)
        };
        for k in k_lo..k_hi {
            let hk = ctx.calib.horizons[k];
            let slots = &mut pend[k * RING..(k + 1) * RING];
            // every horizon / RING for daily (or sparser) readings, at most daily otherwise
            let spacing = ((hk / RING as f64).max(24.0) * 3600.0) as i64 - 60;
            let mut newest = NONE_T;
            let mut free = None;
            for (i, p) in slots.iter().enumerate() {
                if p.due == NONE_T {
                    free.get_or_insert(i);
                } else {
                    newest = newest.max(p.made);
                }
            }
            let Some(i) = free else { continue };
            if dt_h >= 12.0 && newest != NONE_T && self.t_last - newest < spacing {
                next_issue = next_issue.min(newest + spacing);
                continue;
            }
            if dt_h >= 12.0 && RING > 1 && slots.iter().filter(|p| p.due == NONE_T).count() > 1 {
                next_issue = next_issue.min(self.t_last + spacing);
            }
            let cum = cum.get_or_insert_with(|| self.profile(ctx.env).cum());
            let end = self.t_last + (hk * 3600.0) as i64;
            let f = self.forecast(ctx.env, ctx.calib, cum, end, hk, ctx.cfg.threshold);
            // `levels(hk)` at a calibration horizon: its own levels (weights 1 and 0)
            let (lo, hi) = (ctx.calib.lo[k], ctx.calib.hi[k]);
            let q = f.quantiles3([lo, 0.5, hi]);
            slots[i] = Pending {
                due: end,
                made: self.t_last,
                base: self.level as f32,
                m: f.m as f32,
                p10: q[0] as f32,
                p50: q[1] as f32,
                p90: q[2] as f32,
                po: f.p_over_table() as f32,
                cyc: self.cyc,
                band: f.band as u8,
                stall: f.stall as u8,
            };
            issued = true;
        }
        if issued {
            self.next_due = next_due(pend);
        }
        self.next_issue = next_issue;
    }

    /// Predictive distribution of the reading at `end` (UTC seconds, >= t_last),
    /// `h_total` hours after the last reading.
    #[inline(always)]
    pub fn forecast(
        &self,
        env: &Env,
        calib: &Calib,
        cum: &super::profile::Cum,
        end: i64,
        h_total: f64,
        thr: f64,
    ) -> Forecast {
        let r_phi = self.rate(env.fleet_r) * env.phi;
        let w = cum.between(self.t_last + env.off, end + env.off);
        let base = self.level;
        let cap = self.max_level.max(base);
        let m = r_phi * w;
        let coarse = self.coarse();
        let res = self.res;
        let noise = self.noise_eff();
        let b = band(base);
        let s = self.stall(r_phi);
        let mc = m.min(cap - base);
        let q = if coarse { res * 0.5 } else { 0.0 };
        let par = Param {
            mean: mc,
            sd: (noise * noise + 0.25 * mc * mc + q * q + 1e-4).sqrt(),
            lower: if coarse { 0.0 } else { f64::NEG_INFINITY },
            upper: cap - base + 1e-9,
            grid: if coarse { res } else { 0.0 },
        };
        let dist = calib.dist(h_total, b, m, s, &par);
        Forecast {
            dist,
            base,
            cap,
            m,
            band: b,
            stall: s,
            coarse,
            res,
            noise,
            thr,
            p_off: self.p_off,
        }
    }
}

/// A predictive distribution plus what is needed to turn it into fill values.
pub struct Forecast {
    pub dist: Dist,
    pub base: f64,
    pub cap: f64,
    pub m: f64,
    pub band: usize,
    pub stall: usize,
    pub coarse: bool,
    pub res: f64,
    pub noise: f64,
    pub thr: f64,
    pub p_off: f64,
}

impl Forecast {
    /// Fill quantile `p` (snapped to the sensor's grid when it is coarse).
    pub fn quantile(&self, p: f64) -> f64 {
        self.snap(self.raw_quantile(p))
    }

    /// Three quantiles (increasing levels) in one pass.
    #[inline]
    pub fn quantiles3(&self, p: [f64; 3]) -> [f64; 3] {
        let raw = self.dist.quantiles3(p);
        let low = if self.coarse {
            self.base
        } else {
            self.base - 3.0 * self.noise
        };
        raw.map(|d| {
            let v = (self.base + d)
                .max(low.max(0.0).min(self.base))
                .min(self.cap);
            self.snap(v)
        })
    }

    /// Snap to a coarse sensor's grid (rounded to 1e-6 so grid values compare
    /// equal to readings).
    #[inline]
    fn snap(&self, v: f64) -> f64 {
        if self.coarse && self.res > 0.0 {
            (((v / self.res).round() * self.res * 1e6).round() / 1e6)
                .max(self.base)
                .min(self.cap)
        } else {
            v
        }
    }

    /// Two fill quantiles (`p1 <= p2`) on a continuous scale, in one scan.
    #[inline]
    pub fn raw_quantiles2(&self, p1: f64, p2: f64) -> (f64, f64) {
        let q = self.dist.quantiles3([p1, p2, 2.0]);
        let low = if self.coarse {
            self.base
        } else {
            self.base - 3.0 * self.noise
        };
        let c = |d: f64| {
            (self.base + d)
                .max(low.max(0.0).min(self.base))
                .min(self.cap)
        };
        (c(q[0]), c(q[1]))
    }

    /// Fill quantile `p` on a continuous scale.
    pub fn raw_quantile(&self, p: f64) -> f64 {
        let low = if self.coarse {
            self.base
        } else {
            self.base - 3.0 * self.noise
        };
        (self.base + self.dist.quantile(p))
            .max(low.max(0.0).min(self.base))
            .min(self.cap)
    }

    /// P(fill >= threshold) from the fleet tables alone.
    #[inline]
    pub fn p_over_table(&self) -> f64 {
        self.dist.exceed(self.thr - self.base - 1e-9)
    }

    /// P(fill >= threshold), with the container's own calibration offset.
    pub fn p_over(&self) -> f64 {
        let p = self.p_over_table();
        if p <= 1e-4 || p >= 1.0 - 1e-4 || self.p_off == 0.0 {
            return p;
        }
        logistic(logit(p) + self.p_off)
    }
}

#[inline]
pub fn logit(p: f64) -> f64 {
    let p = p.clamp(1e-6, 1.0 - 1e-6);
    (p / (1.0 - p)).ln()
}

#[inline]
pub fn logistic(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}
