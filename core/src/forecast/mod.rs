//! Fill forecaster: per-container streaming state, fleet-level calibration.
//!
//! Each container keeps a small state updated in O(1) per reading
//! ([`model::State::step`]): a robust level (spikes from lid openings and
//! obstructions rejected, stuck sensors not believed), emptying detection (a drop,
//! confirmed by tilt or by the next reading), a fill rate per "effective hour"
//! (hours weighted by a learned day-of-week x hour-of-day profile), and a few pending
//! forecasts that are scored when their time comes. Scores feed
//!
//! * the container's rolling forecast error (accountability), and
//! * the fleet's calibration tables ([`calib::Calib`]): the empirical distribution of
//!   the increment given the level band, the model's expected increment and how long
//!   the level has stalled, per calibration horizon. Forecast quantiles, exceedance
//!   probabilities and times to a threshold come from these distributions.
//!
//! Forecasts are "if not emptied": the level the sensor will report at a horizon if
//! no collection happens in between.
//!
//! ```
//! use _core::forecast::{Config, Forecaster, IdSource};
//! let mut fc = Forecaster::new(Config::default()).unwrap();
//! let t: Vec<i64> = (0..48).map(|h| 1_736_121_600 + h * 3600).collect();
//! let x: Vec<f64> = (0..48).map(|h| 0.1 + 0.01 * h as f64).collect();
//! fc.update(IdSource::Int(&vec![7; 48]), &t, &x, None).unwrap();
//! let p = fc.predict(t[47], &[24.0], None).unwrap();
//! assert!(p.p50[0] > 0.5 && p.p50[0] < 0.9);
//! ```

pub mod calib;
pub mod ids;
pub mod model;
pub mod persist;
pub mod profile;

use calib::Calib;
pub use ids::{IdKind, Ids};
use model::{Acc, Ctx, Env, Fleet, FleetAcc, Pending, Slots, State, F_INIT, F_STUCK, RING};
use profile::NONE_T;

/// When a pending forecast counts for calibration and accountability.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScoreRule {
    /// The reading at the target is not below the level at forecast time (the
    /// Wyndham evaluation protocol's pair rule).
    Endpoints,
    /// No emptying was detected in between.
    Cycle,
}

/// Forecaster settings.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Fill ratio whose crossing is forecast (`p_over_threshold`, `hours_to_threshold`).
    pub threshold: f64,
    /// Calibration horizons in hours (forecasts at other horizons interpolate).
    pub horizons_h: Vec<f64>,
    /// Local time offset for the day/hour profile, seconds east of UTC.
    pub utc_offset_s: i64,
    /// Smallest fall of the level counted as an emptying (fill ratio).
    pub drop_threshold: f64,
    /// Wait for the next reading before believing a fall without tilt.
    pub confirm_emptying: bool,
    /// Longest time searched for `hours_to_threshold` (hours).
    pub max_horizon_h: f64,
    pub score_rule: ScoreRule,
    /// Score the forecaster's own forecasts (calibration tables, interval levels,
    /// per-container accountability). Off: forecasts come from the parametric model
    /// alone and nothing is scored (a lighter update, for comparisons).
    pub calibrate: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            threshold: 0.8,
            horizons_h: vec![24.0, 48.0, 72.0],
            utc_offset_s: 0,
            drop_threshold: 0.1,
            confirm_emptying: true,
            max_horizon_h: 336.0,
            score_rule: ScoreRule::Cycle,
            calibrate: true,
        }
    }
}

/// Error kinds (mapped to ValueError / TypeError in Python).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    Value,
    Type,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForecastError {
    pub kind: ErrorKind,
    pub msg: String,
}

impl ForecastError {
    pub fn value(msg: impl Into<String>) -> Self {
        ForecastError {
            kind: ErrorKind::Value,
            msg: msg.into(),
        }
    }
    pub fn type_(msg: impl Into<String>) -> Self {
        ForecastError {
            kind: ErrorKind::Type,
            msg: msg.into(),
        }
    }
}

impl std::fmt::Display for ForecastError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for ForecastError {}

pub const MAX_HORIZONS: usize = 8;

impl Config {
    pub fn validate(&mut self) -> Result<(), ForecastError> {
        if !(self.threshold.is_finite() && self.threshold > 0.0 && self.threshold <= 1.5) {
            return Err(ForecastError::value(format!(
                "threshold must be a fill ratio in (0, 1.5], e.g. 0.8; got {}",
                self.threshold
            )));
        }
        let mut h = self.horizons_h.clone();
        if h.is_empty() || h.len() > MAX_HORIZONS {
            return Err(ForecastError::value(format!(
                "calibration horizons: give 1 to {MAX_HORIZONS} horizons in hours, e.g. (24, 48, 72); got {}",
                h.len()
            )));
        }
        for &v in &h {
            if !(v.is_finite() && (1.0..=24.0 * 366.0).contains(&v)) {
                return Err(ForecastError::value(format!(
                    "calibration horizons must be between 1 and 8784 hours; got {v}"
                )));
            }
        }
        h.sort_by(f64::total_cmp);
        h.dedup();
        self.horizons_h = h;
        if self.utc_offset_s.abs() > 18 * 3600 {
            return Err(ForecastError::value(format!(
                "utc offset must be within +-18 hours; got {} s",
                self.utc_offset_s
            )));
        }
        if !(self.drop_threshold.is_finite()
            && self.drop_threshold > 0.0
            && self.drop_threshold <= 1.0)
        {
            return Err(ForecastError::value(format!(
                "drop_threshold must be a fill ratio in (0, 1], e.g. 0.1; got {}",
                self.drop_threshold
            )));
        }
        if !(self.max_horizon_h.is_finite() && (1.0..=24.0 * 366.0).contains(&self.max_horizon_h)) {
            return Err(ForecastError::value(format!(
                "max_horizon_h must be between 1 and 8784 hours; got {}",
                self.max_horizon_h
            )));
        }
        Ok(())
    }
}

/// Counters over the forecaster's life.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub readings: u64,
    pub accepted: u64,
    pub missing: u64,
    pub invalid: u64,
    pub out_of_order: u64,
    pub emptyings: u64,
    pub spikes_low: u64,
    pub spikes_high: u64,
    pub jumps: u64,
    pub stuck: u64,
    pub tilted: u64,
    pub scored: u64,
}

impl Stats {
    pub const NAMES: [&'static str; 12] = [
        "readings",
        "accepted",
        "missing",
        "invalid",
        "out_of_order",
        "emptyings",
        "spikes_low",
        "spikes_high",
        "jumps",
        "stuck",
        "tilted",
        "scored",
    ];

    pub fn values(&self) -> [u64; 12] {
        [
            self.readings,
            self.accepted,
            self.missing,
            self.invalid,
            self.out_of_order,
            self.emptyings,
            self.spikes_low,
            self.spikes_high,
            self.jumps,
            self.stuck,
            self.tilted,
            self.scored,
        ]
    }

    pub fn from_values(v: [u64; 12]) -> Self {
        Stats {
            readings: v[0],
            accepted: v[1],
            missing: v[2],
            invalid: v[3],
            out_of_order: v[4],
            emptyings: v[5],
            spikes_low: v[6],
            spikes_high: v[7],
            jumps: v[8],
            stuck: v[9],
            tilted: v[10],
            scored: v[11],
        }
    }
}

/// Container ids of a batch.
#[derive(Clone, Copy, Debug)]
pub enum IdSource<'a> {
    Int(&'a [i64]),
    /// Arrow-style string column: `offsets` has len + 1 entries into `data`.
    Str32 {
        offsets: &'a [i32],
        data: &'a [u8],
    },
    Str64 {
        offsets: &'a [i64],
        data: &'a [u8],
    },
}

impl IdSource<'_> {
    fn len(&self) -> usize {
        match self {
            IdSource::Int(a) => a.len(),
            IdSource::Str32 { offsets, .. } => offsets.len().saturating_sub(1),
            IdSource::Str64 { offsets, .. } => offsets.len().saturating_sub(1),
        }
    }
}

/// Forecast rows (container-major, then horizons).
#[derive(Clone, Debug, Default)]
pub struct Predictions {
    pub idx: Vec<u32>,
    pub horizon_h: Vec<f64>,
    pub p50: Vec<f64>,
    pub p10: Vec<f64>,
    pub p90: Vec<f64>,
    pub p_over: Vec<f64>,
    /// Hours from `at` until the p50 (resp. p90) fill reaches the threshold; NaN
    /// when not within `max_horizon_h`.
    pub t50: Vec<f64>,
    pub t90: Vec<f64>,
    pub stuck: Vec<bool>,
}

/// Accountability rows (container-major, then calibration horizons).
#[derive(Clone, Debug, Default)]
pub struct AccRows {
    pub idx: Vec<u32>,
    pub horizon_h: Vec<f64>,
    pub n: Vec<u32>,
    pub mae: Vec<f64>,
    pub bias: Vec<f64>,
    pub coverage: Vec<f64>,
    pub last: Vec<i64>,
}

/// One row per container: what the forecaster believes now.
#[derive(Clone, Debug, Default)]
pub struct StateRows {
    pub idx: Vec<u32>,
    pub last_at: Vec<i64>,
    pub level: Vec<f64>,
    pub rate_per_day: Vec<f64>,
    pub last_emptied_at: Vec<i64>,
    pub readings: Vec<u32>,
    pub emptyings: Vec<u32>,
    pub stuck: Vec<bool>,
    pub noise: Vec<f64>,
    pub resolution: Vec<f64>,
}

/// The forecaster: containers' states, fleet learning and calibration.
#[derive(Clone, Debug)]
pub struct Forecaster {
    pub cfg: Config,
    pub ids: Ids,
    pub st: Vec<State>,
    pub pend: Vec<Pending>,
    pub acc: Vec<Acc>,
    pub fleet: Fleet,
    pub calib: Calib,
    pub stats: Stats,
    /// Run the update's AVX2 build when the CPU has it (the default). False: the
    /// portable build, which gives the same results (for tests and comparisons).
    pub simd: bool,
}

impl std::fmt::Debug for Ids {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Ids({:?}, {})", self.kind, self.len())
    }
}

impl Forecaster {
    pub fn new(mut cfg: Config) -> Result<Self, ForecastError> {
        cfg.validate()?;
        let calib = Calib::new(cfg.horizons_h.clone());
        Ok(Forecaster {
            cfg,
            ids: Ids::default(),
            st: Vec::new(),
            pend: Vec::new(),
            acc: Vec::new(),
            fleet: Fleet::default(),
            calib,
            stats: Stats::default(),
            simd: true,
        })
    }

    /// Number of containers seen.
    pub fn len(&self) -> usize {
        self.st.len()
    }

    pub fn is_empty(&self) -> bool {
        self.st.is_empty()
    }

    fn k(&self) -> usize {
        self.calib.horizons.len()
    }

    /// Fleet quantities as of local day `day`.
    pub fn env(&self, day: i64) -> Env {
        let (fd, fh) = self.fleet.profiles();
        let phi = self.fleet.phi(day);
        let inv_fd = fd.map(|v| 1.0 / v.max(1e-6));
        let inv_fh = fh.map(|v| 1.0 / v.max(1e-6));
        Env {
            fd,
            fh,
            inv_fd,
            inv_fh,
            phi,
            inv_phi: 1.0 / phi,
            fleet_r: self.fleet.rate(),
            off: self.cfg.utc_offset_s,
        }
    }

    fn grow(&mut self, n: usize) {
        let k = self.k();
        self.st.resize(n, State::default());
        self.pend.resize(n * k * RING, Pending::EMPTY);
        self.acc.resize(n * k, Acc::default());
    }

    fn set_kind(&mut self, kind: IdKind) -> Result<(), ForecastError> {
        match (self.ids.kind, kind) {
            (IdKind::Unset, _) => {
                self.ids.kind = kind;
                Ok(())
            }
            (a, b) if a == b => Ok(()),
            (IdKind::Int, _) => Err(ForecastError::type_(
                "this Forecaster was fed int64 container ids; pass int64 ids again (or a new Forecaster for string ids)",
            )),
            _ => Err(ForecastError::type_(
                "this Forecaster was fed string container ids; pass strings again (or a new Forecaster for int64 ids)",
            )),
        }
    }

    fn resolve(&mut self, ids: IdSource<'_>) -> Result<Vec<u32>, ForecastError> {
        let n = ids.len();
        let mut idx = Vec::with_capacity(n);
        match ids {
            IdSource::Int(a) => {
                self.set_kind(IdKind::Int)?;
                let mut last: Option<(i64, u32)> = None;
                for &k in a {
                    let i = match last {
                        Some((lk, li)) if lk == k => li,
                        _ => {
                            let (i, _) = self.ids.int_index(k);
                            last = Some((k, i));
                            i
                        }
                    };
                    idx.push(i);
                }
            }
            IdSource::Str32 { offsets, data } => {
                self.set_kind(IdKind::Str)?;
                let off: Vec<usize> = offsets
                    .iter()
                    .map(|&o| {
                        usize::try_from(o)
                            .map_err(|_| ForecastError::value("string id offsets must be >= 0"))
                    })
                    .collect::<Result<_, _>>()?;
                self.resolve_str(&off, data, &mut idx)?;
            }
            IdSource::Str64 { offsets, data } => {
                self.set_kind(IdKind::Str)?;
                let off: Vec<usize> = offsets
                    .iter()
                    .map(|&o| {
                        usize::try_from(o)
                            .map_err(|_| ForecastError::value("string id offsets must be >= 0"))
                    })
                    .collect::<Result<_, _>>()?;
                self.resolve_str(&off, data, &mut idx)?;
            }
        }
        Ok(idx)
    }

    fn resolve_str(
        &mut self,
        off: &[usize],
        data: &[u8],
        idx: &mut Vec<u32>,
    ) -> Result<(), ForecastError> {
        let mut last: Option<(usize, usize, u32)> = None;
        for w in off.windows(2) {
            let (a, b) = (w[0], w[1]);
            if a > b || b > data.len() {
                return Err(ForecastError::value(
                    "string id offsets are not increasing or run past the data: pass a pyarrow string array",
                ));
            }
            let key = &data[a..b];
            let i = match last {
                Some((la, lb, li)) if &data[la..lb] == key => li,
                _ => {
                    let (i, _) = self.ids.str_index(key);
                    last = Some((a, b, i));
                    i
                }
            };
            idx.push(i);
        }
        Ok(())
    }

    /// Index of a container id, if known.
    pub fn index_of_int(&self, k: i64) -> Option<u32> {
        self.ids.int_lookup(k)
    }

    pub fn index_of_str(&self, k: &[u8]) -> Option<u32> {
        self.ids.str_lookup(k)
    }

    /// Take a batch of readings (time-ordered per container; rows of different
    /// containers may interleave). `t` in UTC seconds, `x` fill ratio (NaN =
    /// missing), `tilt` -1 unknown / 0 / 1.
    pub fn update(
        &mut self,
        ids: IdSource<'_>,
        t: &[i64],
        x: &[f64],
        tilt: Option<&[i8]>,
    ) -> Result<(), ForecastError> {
        let n = ids.len();
        if t.len() != n || x.len() != n {
            return Err(ForecastError::value(format!(
                "container_ids, timestamps and fill must have the same length; got {n}, {} and {}",
                t.len(),
                x.len()
            )));
        }
        if let Some(tl) = tilt {
            if tl.len() != n {
                return Err(ForecastError::value(format!(
                    "tilt must have one value per reading ({n}); got {}",
                    tl.len()
                )));
            }
        }
        if n == 0 {
            return Ok(());
        }
        let idx = self.resolve(ids)?;
        let n_ids = self.ids.len();
        if n_ids > self.st.len() {
            self.grow(n_ids);
        }
        // A batch spanning several local days is taken one day at a time (fleet
        // profile, activity factor and fleet rate refreshed in between), as if it
        // had come in daily batches.
        let off = self.cfg.utc_offset_s;
        let (tmin, tmax, sorted) = t.iter().fold((i64::MAX, i64::MIN, true), |(a, b, s), &v| {
            (a.min(v), b.max(v), s && v >= b)
        });
        let dmin = tmin.saturating_add(off).div_euclid(86_400);
        let dmax = tmax.saturating_add(off).div_euclid(86_400);
        if dmin == dmax || dmax - dmin > 100_000 {
            self.run_rows(&idx, None, t, x, tilt);
        } else if sorted {
            // time-major batch: the days are consecutive ranges of rows
            let mut a = 0;
            while a < n {
                let end_t = ((t[a] + off).div_euclid(86_400) + 1) * 86_400 - off;
                let b = a + t[a..].partition_point(|&v| v < end_t);
                self.run_range(&idx[a..b], &t[a..b], &x[a..b], tilt.map(|tl| &tl[a..b]));
                a = b;
            }
        } else {
            let nd = (dmax - dmin + 1) as usize;
            let base = dmin * 86_400 - off;
            let day: Vec<u32> = t
                .iter()
                .map(|&v| ((v - base) as u64 / 86_400) as u32)
                .collect();
            let mut start = vec![0u32; nd + 1];
            for &d in &day {
                start[d as usize + 1] += 1;
            }
            for j in 0..nd {
                start[j + 1] += start[j];
            }
            let bounds = start.clone();
            let mut rows = vec![0u32; n];
            for (r, &d) in day.iter().enumerate() {
                let p = &mut start[d as usize];
                rows[*p as usize] = r as u32;
                *p += 1;
            }
            for j in 0..nd {
                let (a, b) = (bounds[j] as usize, bounds[j + 1] as usize);
                if a < b {
                    self.run_rows(&idx, Some(&rows[a..b]), t, x, tilt);
                }
            }
        }
        Ok(())
    }

    /// Process consecutive rows with the fleet frozen.
    fn run_range(&mut self, idx: &[u32], t: &[i64], x: &[f64], tilt: Option<&[i8]>) {
        self.run_rows(idx, None, t, x, tilt);
    }

    /// Process `rows` (all when None) grouped by container, with the fleet frozen.
    fn run_rows(
        &mut self,
        idx: &[u32],
        rows: Option<&[u32]>,
        t: &[i64],
        x: &[f64],
        tilt: Option<&[i8]>,
    ) {
        let n_ids = self.ids.len();
        let env = self.env(self.fleet.last_day);
        let sub_idx: Vec<u32>;
        let (ridx, order): (&[u32], Grouping) = match rows {
            None => (idx, group(idx, n_ids)),
            Some(rs) => {
                sub_idx = rs.iter().map(|&r| idx[r as usize]).collect();
                let o = group(&sub_idx, n_ids);
                (&sub_idx, o)
            }
        };
        let mut fa = FleetAcc::default();
        let Forecaster {
            cfg,
            st,
            pend,
            acc,
            fleet,
            calib,
            stats,
            simd,
            ..
        } = self;
        let mut ctx = Ctx {
            cfg,
            env: &env,
            fleet,
            acc: &mut fa,
            calib,
            stats,
        };
        let mut b = Batch {
            rows,
            ridx,
            order: match &order {
                Grouping::AsIs => Order::AsIs,
                Grouping::Periodic(d) => Order::Periodic(*d),
                Grouping::Perm(o) => Order::Perm(o),
            },
            t,
            x,
            tilt,
            st,
            pend,
            acc,
        };
        process_dispatch(&mut b, &mut ctx, *simd);
        self.fleet.fold(&fa);
    }

    fn containers(&self, subset: Option<&[u32]>) -> Vec<u32> {
        match subset {
            Some(s) => s
                .iter()
                .copied()
                .filter(|&i| (i as usize) < self.st.len())
                .collect(),
            None => (0..self.st.len() as u32).collect(),
        }
    }

    /// Forecasts at `at` (UTC seconds) for each horizon (hours after `at`).
    pub fn predict(
        &self,
        at: i64,
        horizons_h: &[f64],
        subset: Option<&[u32]>,
    ) -> Result<Predictions, ForecastError> {
        for &h in horizons_h {
            if !(h.is_finite() && (0.0..=24.0 * 366.0).contains(&h)) {
                return Err(ForecastError::value(format!(
                    "horizons_h must be hours in [0, 8784]; got {h}"
                )));
            }
        }
        #[cfg(target_arch = "x86_64")]
        if self.simd && std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            return Ok(unsafe { self.predict_avx2(at, horizons_h, subset) });
        }
        Ok(self.predict_rows(at, horizons_h, subset))
    }

    /// [`Forecaster::predict_rows`] compiled for AVX2 (the same IEEE operations:
    /// identical results).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn predict_avx2(
        &self,
        at: i64,
        horizons_h: &[f64],
        subset: Option<&[u32]>,
    ) -> Predictions {
        self.predict_rows(at, horizons_h, subset)
    }

    /// The rows of [`Forecaster::predict`] (horizons checked).
    #[inline(always)]
    fn predict_rows(&self, at: i64, horizons_h: &[f64], subset: Option<&[u32]>) -> Predictions {
        let env = self.env((at + self.cfg.utc_offset_s).div_euclid(86_400));
        let thr = self.cfg.threshold;
        let cs = self.containers(subset);
        let mut order: Vec<usize> = (0..horizons_h.len()).collect();
        order.sort_by(|&a, &b| horizons_h[a].total_cmp(&horizons_h[b]));
        let rows = cs.len() * horizons_h.len();
        let mut out = Predictions {
            idx: Vec::with_capacity(rows),
            horizon_h: Vec::with_capacity(rows),
            p50: Vec::with_capacity(rows),
            p10: Vec::with_capacity(rows),
            p90: Vec::with_capacity(rows),
            p_over: Vec::with_capacity(rows),
            t50: Vec::with_capacity(rows),
            t90: Vec::with_capacity(rows),
            stuck: Vec::with_capacity(rows),
        };
        for i in cs {
            let s = &self.st[i as usize];
            if s.flags & F_INIT == 0 {
                continue;
            }
            let cum = s.profile(&env).cum();
            let start = at.max(s.t_last);
            let (t50, t90) = if horizons_h.is_empty() {
                (f64::NAN, f64::NAN)
            } else {
                self.times_to(s, &env, &cum, at)
            };
            // in increasing horizon order, so that a running maximum keeps the chance
            // of having passed the threshold by the horizon from decreasing with it
            let base_row = out.p50.len();
            let mut run_p = f64::NEG_INFINITY;
            let mut vals = vec![[0.0f64; 4]; horizons_h.len()];
            for &j in &order {
                let h = horizons_h[j];
                let end = start + (h * 3600.0).round() as i64;
                let h_total = ((end - s.t_last) as f64 / 3600.0).max(1e-3);
                let f = s.forecast(&env, &self.calib, &cum, end, h_total, thr);
                let (lo, hi) = self.calib.levels(h_total);
                let q = f.quantiles3([lo, 0.5, hi]);
                run_p = run_p.max(f.p_over());
                vals[j] = [q[0], q[1], q[2], run_p];
            }
            for (j, &h) in horizons_h.iter().enumerate() {
                out.idx.push(i);
                out.horizon_h.push(h);
                out.p10.push(vals[j][0]);
                out.p50.push(vals[j][1]);
                out.p90.push(vals[j][2]);
                out.p_over.push(vals[j][3]);
                out.t50.push(t50);
                out.t90.push(t90);
                out.stuck.push(s.flags & F_STUCK != 0);
            }
            debug_assert_eq!(out.p50.len(), base_row + horizons_h.len());
        }
        out
    }

    /// Hours from `at` until the median and the upper-interval fill reach the
    /// threshold (the second is the pessimistic, earlier time); NaN if not within
    /// `max_horizon_h`. Both come from the same predictive distributions, found by
    /// a safeguarded regula falsi (Illinois) on each, sharing the end points.
    #[inline(always)]
    fn times_to(&self, s: &State, env: &Env, cum: &profile::Cum, at: i64) -> (f64, f64) {
        let thr = self.cfg.threshold - 1e-9;
        let start = at.max(s.t_last);
        let lead = (start - at) as f64 / 3600.0;
        // (median, upper) fill after `hours`
        let q = |hours: f64| -> (f64, f64) {
            let end = start + (hours * 3600.0).round() as i64;
            let h_total = ((end - s.t_last) as f64 / 3600.0).max(1e-3);
            let f = s.forecast(env, &self.calib, cum, end, h_total, self.cfg.threshold);
            let hi = self.calib.levels(h_total).1;
            f.raw_quantiles2(0.5, hi)
        };
        let hmax = self.cfg.max_horizon_h;
        let q0 = q(0.0);
        if q0.0 >= thr {
            return (lead, lead);
        }
        let qm = q(hmax);
        let solve = |g0: f64, gm: f64, which: usize| -> f64 {
            if g0 >= 0.0 {
                return lead;
            }
            if gm < 0.0 {
                return f64::NAN;
            }
            // g(lo) < 0 <= g(hi)
            let (mut lo, mut hi, mut glo, mut ghi) = (0.0, hmax, g0, gm);
            let mut side = 0i8;
            for _ in 0..40 {
                if hi - lo <= 0.5 {
                    break;
                }
                let mut mid = lo - glo * (hi - lo) / (ghi - glo);
                if !(mid > lo + 0.05 && mid < hi - 0.05) {
                    mid = 0.5 * (lo + hi);
                }
                let v = q(mid);
                let g = if which == 0 { v.0 } else { v.1 } - thr;
                if g.abs() < 2e-4 {
                    return lead + mid; // within 0.0002 of capacity of the threshold
                }
                if g >= 0.0 {
                    hi = mid;
                    ghi = g;
                    if side == 1 {
                        glo *= 0.5;
                    }
                    side = 1;
                } else {
                    lo = mid;
                    glo = g;
                    if side == -1 {
                        ghi *= 0.5;
                    }
                    side = -1;
                }
            }
            lead + hi
        };
        let t90 = solve(q0.1 - thr, qm.1 - thr, 1);
        let t50 = solve(q0.0 - thr, qm.0 - thr, 0);
        // the pessimistic time is never later than the median one
        let t90 = if t50.is_finite() && t90.is_finite() {
            t90.min(t50)
        } else {
            t90
        };
        (t50, t90)
    }

    /// Every container's rolling forecast error, per calibration horizon.
    pub fn accountability(&self, subset: Option<&[u32]>) -> AccRows {
        let k = self.k();
        let cs = self.containers(subset);
        let mut out = AccRows::default();
        for i in cs {
            for kk in 0..k {
                let a = &self.acc[i as usize * k + kk];
                out.idx.push(i);
                out.horizon_h.push(self.calib.horizons[kk]);
                out.n.push(a.n);
                let nan_if = |v: f32| if a.n == 0 { f64::NAN } else { f64::from(v) };
                out.mae.push(nan_if(a.mae));
                out.bias.push(nan_if(a.bias));
                out.coverage.push(nan_if(a.cov));
                out.last.push(a.last);
            }
        }
        out
    }

    /// What the forecaster believes about each container now.
    pub fn states(&self, subset: Option<&[u32]>) -> StateRows {
        let env = self.env(self.fleet.last_day);
        let cs = self.containers(subset);
        let mut out = StateRows::default();
        for i in cs {
            let s = &self.st[i as usize];
            let cum = s.profile(&env).cum();
            out.idx.push(i);
            out.last_at.push(s.t_last);
            out.level.push(s.level);
            out.rate_per_day
                .push(s.rate(env.fleet_r) * env.phi * cum.week() / 7.0);
            out.last_emptied_at.push(s.t_cycle);
            out.readings.push(s.n_obs);
            out.emptyings.push(s.n_empty);
            out.stuck.push(s.flags & F_STUCK != 0);
            out.noise.push(s.noise_eff());
            out.resolution.push(s.res);
        }
        out
    }

    /// The calibration horizons in hours.
    pub fn horizons(&self) -> &[f64] {
        &self.calib.horizons
    }

    /// Interval levels currently used for p10 / p90 at each calibration horizon.
    pub fn interval_levels(&self) -> Vec<(f64, f64, f64)> {
        (0..self.k())
            .map(|k| (self.calib.horizons[k], self.calib.lo[k], self.calib.hi[k]))
            .collect()
    }
}

/// One batch (or day chunk) to feed to the containers' states.
struct Batch<'a> {
    rows: Option<&'a [u32]>,
    ridx: &'a [u32],
    order: Order<'a>,
    t: &'a [i64],
    x: &'a [f64],
    tilt: Option<&'a [i8]>,
    st: &'a mut [State],
    pend: &'a mut [Pending],
    acc: &'a mut [Acc],
}

/// [`process`], compiled for AVX2 when the CPU has it (checked at run time): the
/// same IEEE operations (Rust never fuses a multiply and an add), so the same results,
/// with the wider and three-operand instructions and SSE4.1's rounding.
fn process_dispatch(b: &mut Batch<'_>, ctx: &mut Ctx<'_>, simd: bool) {
    #[cfg(target_arch = "x86_64")]
    {
        if simd && std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            unsafe { process_avx2(b, ctx) };
            return;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = simd;
    process::<false>(b, ctx);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn process_avx2(b: &mut Batch<'_>, ctx: &mut Ctx<'_>) {
    process::<true>(b, ctx);
}

#[inline(always)]
fn process<const AVX2: bool>(b: &mut Batch<'_>, ctx: &mut Ctx<'_>) {
    ctx.stats.readings += b.ridx.len() as u64;
    // A large fleet's rows come (or are put) in runs per container: the rows'
    // columns are then read at scattered places (a time-major batch grouped by
    // container) and the container's state, pending forecasts and rolling errors are
    // far from the caches, so both are prefetched some rows ahead of their use.
    let ahead = b.st.len() > GROUP_ABOVE;
    match b.order {
        Order::AsIs => run::<AVX2>(b, ctx, b.ridx.len(), |p| p, ahead),
        Order::Periodic(d) => run::<AVX2>(b, ctx, b.ridx.len(), |p| d.row(p), ahead),
        Order::Perm(o) => run::<AVX2>(b, ctx, o.len(), |p| o[p] as usize, ahead),
    }
}

/// Rows ahead at which a row's columns (id index, time, fill, tilt) are prefetched.
const PREFETCH_ROWS: usize = 32;
/// Rows ahead at which a container's state and pending forecasts are prefetched
/// (its id index was prefetched `PREFETCH_ROWS - PREFETCH_STATE` rows before).
const PREFETCH_STATE: usize = 12;

/// The per-reading loop: one copy per row order, with `State::step` inlined in each.
/// `at(p)` is the position in `ridx` of the `p`-th row to process.
#[inline(always)]
fn run<const AVX2: bool>(
    b: &mut Batch<'_>,
    ctx: &mut Ctx<'_>,
    n: usize,
    at: impl Fn(usize) -> usize,
    ahead: bool,
) {
    let k = ctx.calib.horizons.len();
    let calibrate = ctx.cfg.calibrate;
    let mut fetched = usize::MAX;
    for p in 0..n {
        if ahead {
            if p + PREFETCH_ROWS < n {
                let j = at(p + PREFETCH_ROWS);
                let row = b.rows.map_or(j, |rs| rs[j] as usize);
                crate::mem::prefetch(&b.ridx[j..=j]);
                crate::mem::prefetch(&b.t[row..=row]);
                crate::mem::prefetch(&b.x[row..=row]);
                if let Some(tl) = b.tilt {
                    crate::mem::prefetch(&tl[row..=row]);
                }
            }
            if p + PREFETCH_STATE < n {
                let i = b.ridx[at(p + PREFETCH_STATE)] as usize;
                if i != fetched {
                    fetched = i;
                    crate::mem::prefetch(std::slice::from_ref(&b.st[i]));
                    if calibrate {
                        crate::mem::prefetch(&b.pend[i * k * RING..(i + 1) * k * RING]);
                        crate::mem::prefetch(&b.acc[i * k..(i + 1) * k]);
                    }
                }
            }
        }
        let j = at(p);
        let row = b.rows.map_or(j, |rs| rs[j] as usize);
        let i = b.ridx[j] as usize;
        let tilt_v = b.tilt.map_or(-1, |a| a[row]);
        let mut slots = Slots {
            pend: &mut *b.pend,
            acc: &mut *b.acc,
            i,
        };
        b.st[i].step::<AVX2>(ctx, &mut slots, b.t[row], b.x[row], tilt_v);
    }
}

/// Containers up to which interleaved rows are processed as they come (the states
/// stay in cache and independent containers overlap in the CPU).
const GROUP_ABOVE: usize = 16_384;

/// The order in which a batch's rows are processed.
enum Grouping {
    /// As they come (rows already in runs per container, or a small fleet).
    AsIs,
    /// Grouped by container, computed (a periodic batch, see [`Periodic`]).
    Periodic(Periodic),
    /// Grouped by container: the row positions.
    Perm(Vec<u32>),
}

/// [`Grouping`] as the row loop reads it.
#[derive(Clone, Copy)]
enum Order<'a> {
    AsIs,
    Periodic(Periodic),
    Perm(&'a [u32]),
}

/// A batch that lists the same containers, in increasing index order, `reps` times
/// (every container once per time step: hourly fleet snapshots): grouped by
/// container, the `q`-th row to process is row `(q % reps) * period + q / reps`, the
/// order the stable sort by container gives, computed instead of stored. The division
/// is a multiply by a 64-bit reciprocal (Lemire, Kaser and Kurz, "Faster remainder by
/// direct computation", 2019: exact for every 32-bit dividend and divisor).
#[derive(Clone, Copy, Debug)]
struct Periodic {
    period: u64,
    reps: u64,
    /// `u64::MAX / reps + 1` (reps >= 2).
    m: u64,
}

impl Periodic {
    #[inline(always)]
    fn row(&self, q: usize) -> usize {
        let q = q as u64;
        let div = ((u128::from(self.m) * u128::from(q)) >> 64) as u64;
        let rem = ((u128::from(self.m.wrapping_mul(q)) * u128::from(self.reps)) >> 64) as u64;
        (rem * self.period + div) as usize
    }
}

/// The batch's period when `idx` is the same strictly increasing run of container
/// indices repeated (at least twice).
fn periodic(idx: &[u32]) -> Option<Periodic> {
    let n = idx.len();
    if n > u32::MAX as usize {
        return None;
    }
    let mut p = 1;
    while p < n && idx[p] > idx[p - 1] {
        p += 1;
    }
    if p < 2 || !n.is_multiple_of(p) || n / p < 2 {
        return None;
    }
    if idx[p..].iter().zip(idx).any(|(a, b)| a != b) {
        return None;
    }
    let reps = (n / p) as u64;
    Some(Periodic {
        period: p as u64,
        reps,
        m: u64::MAX / reps + 1,
    })
}

/// Row order grouped by container (stable), or as is when rows already come in runs
/// or the fleet is small.
fn group(idx: &[u32], n_ids: usize) -> Grouping {
    let n = idx.len();
    if n < 64 || n_ids <= GROUP_ABOVE {
        return Grouping::AsIs;
    }
    let runs = 1 + idx.windows(2).filter(|w| w[0] != w[1]).count();
    if runs * 4 <= n {
        return Grouping::AsIs;
    }
    if let Some(d) = periodic(idx) {
        return Grouping::Periodic(d);
    }
    if n_ids <= 4 * n {
        let mut start = vec![0u32; n_ids + 1];
        for &i in idx {
            start[i as usize + 1] += 1;
        }
        for j in 0..n_ids {
            start[j + 1] += start[j];
        }
        let mut order = vec![0u32; n];
        for (row, &i) in idx.iter().enumerate() {
            let p = &mut start[i as usize];
            order[*p as usize] = row as u32;
            *p += 1;
        }
        Grouping::Perm(order)
    } else {
        let mut order: Vec<u32> = (0..n as u32).collect();
        order.sort_by_key(|&r| idx[r as usize]);
        Grouping::Perm(order)
    }
}

/// The "no time" marker used in outputs (null in Arrow).
pub const NO_TIME: i64 = NONE_T;

#[cfg(test)]
mod tests {
    use super::*;

    /// The computed order of a periodic batch is the stable sort by container.
    #[test]
    fn periodic_order_is_the_stable_sort() {
        for (period, reps) in [(3usize, 2usize), (7, 24), (1000, 5), (20_000, 3)] {
            let idx: Vec<u32> = (0..period * reps)
                .map(|r| (r % period) as u32 * 2 + 1)
                .collect();
            let d = periodic(&idx).expect("periodic");
            let mut sorted: Vec<u32> = (0..idx.len() as u32).collect();
            sorted.sort_by_key(|&r| idx[r as usize]);
            let got: Vec<u32> = (0..idx.len()).map(|q| d.row(q) as u32).collect();
            assert_eq!(got, sorted, "{period} x {reps}");
        }
        // not periodic: a repeat inside the period, a broken repetition, one period
        assert!(periodic(&[1, 2, 1, 2, 1, 2, 2, 1]).is_none());
        assert!(periodic(&[1, 2, 3, 1, 2, 4]).is_none());
        assert!(periodic(&[1, 2, 3, 1, 2]).is_none());
        assert!(periodic(&[1, 2, 3]).is_none());
        assert!(periodic(&[5, 5, 5, 5]).is_none());
        // the reciprocal division is exact up to 32-bit row counts
        for reps in [2u64, 3, 24, 25, 1000, 65_537, u64::from(u32::MAX)] {
            let d = Periodic {
                period: 1,
                reps,
                m: u64::MAX / reps + 1,
            };
            for q in [
                0u64,
                1,
                reps - 1,
                reps,
                reps + 1,
                123_456_789,
                u64::from(u32::MAX),
            ] {
                assert_eq!(
                    d.row(q as usize) as u64,
                    (q % reps) + q / reps,
                    "{q} / {reps}"
                );
            }
        }
    }
}
