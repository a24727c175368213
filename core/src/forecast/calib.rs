//! Fleet-level calibration: the empirical distribution of the fill increment
//! `y(t + H) - base(t)` conditioned on the level band of `base`, the model's expected
//! increment `m` and a "stall" class, one table per calibration horizon, learned
//! online from every scored forecast; plus online (adaptive-conformal style) levels
//! that keep the p10-p90 interval at 80 % coverage.
//!
//! Each cell holds an exponentially forgetting histogram of increments; `m` is
//! soft-binned (linear in log m between the two nearest centres) both when learning
//! and when predicting, so forecasts vary smoothly with the rate. Sparse cells are
//! blended with a parametric normal centred on `m`.

/// Level bands: [0, .2), [.2, .4), [.4, .6), [.6, .8), [.8, 1), >= 1.
pub const N_BAND: usize = 6;
/// Expected-increment centres (log-spaced, 0.003 .. 3.0 of capacity).
pub const N_M: usize = 20;
const M_LO: f64 = 0.003;
const M_HI: f64 = 3.0;
/// Stall classes: 0 = rose at the last reading; 1, 2, 3 = time since the last rise
/// times the rate is below 1, below 2, at least 2 steps of the sensor.
pub const N_STALL: usize = 4;
/// Histogram of increments: 32 bins of 0.05 over [-0.2, 1.4).
pub const N_HIST: usize = 32;
pub const H_LO: f64 = -0.2;
pub const H_BW: f64 = 0.05;
/// Pseudo-count of the parametric prior in a cell (its share is dropped below 5 %).
const N0: f64 = 5.0;
/// Forgetting per sample added to a cell (memory ~ 1000 samples).
const DECAY: f64 = 0.999;
/// Step of the interval-level adaptation.
const GAMMA: f64 = 0.005;
pub const P_LO: f64 = 0.1;
pub const P_HI: f64 = 0.9;

#[inline]
pub fn band(base: f64) -> usize {
    if base <= 0.0 {
        0
    } else {
        ((base * 5.0 + 1e-6) as usize).min(N_BAND - 1)
    }
}

/// (index of the lower centre, weight of the upper one).
#[inline]
pub fn m_pos(m: f64) -> (usize, f64) {
    let lm = m.max(M_LO).ln();
    let u = (lm - M_LO.ln()) / (M_HI.ln() - M_LO.ln()) * (N_M - 1) as f64;
    let u = u.clamp(0.0, (N_M - 1) as f64 - 1e-9);
    let j = u as usize;
    (j, u - j as f64)
}

/// The parametric fallback: increment ~ N(mean, sd^2), floored at `lower` (mass
/// below piles there) and capped at `upper` (the container cannot get fuller).
#[derive(Clone, Copy, Debug)]
pub struct Param {
    pub mean: f64,
    pub sd: f64,
    pub lower: f64,
    pub upper: f64,
    /// Reading grid (0 = continuous): the increment is then a multiple of `grid`,
    /// the latent normal rounded to it.
    pub grid: f64,
}

impl Param {
    /// P(increment < e).
    #[inline]
    pub fn cdf_below(&self, e: f64) -> f64 {
        self.cdf_below_in(phi_table(), e)
    }

    #[inline(always)]
    fn cdf_below_in(&self, tab: &[f64; PHI_N + 1], e: f64) -> f64 {
        if e <= self.lower + 1e-9 {
            return 0.0;
        }
        if e > self.upper {
            return 1.0;
        }
        let sd = self.sd.max(1e-3);
        if self.grid > 0.0 {
            // largest grid value strictly below e, and the latent up to half a step above it
            let k = (e / self.grid - 1e-6).ceil() - 1.0;
            phi_in(tab, (k * self.grid + 0.5 * self.grid - self.mean) / sd)
        } else {
            phi_in(tab, (e - self.mean) / sd)
        }
    }
}

/// CDF of the increment at the histogram edges `H_LO + i H_BW`, i = 0..=N_HIST.
#[derive(Clone, Copy, Debug)]
pub struct Dist {
    pub f: [f64; N_HIST + 1],
}

/// The histogram edges `H_LO + i H_BW` (computed at compile time with the same
/// IEEE operations as at run time).
const EDGES: [f64; N_HIST + 1] = {
    let mut e = [0.0; N_HIST + 1];
    let mut i = 0;
    while i <= N_HIST {
        e[i] = H_LO + i as f64 * H_BW;
        i += 1;
    }
    e
};

#[inline]
fn edge(i: usize) -> f64 {
    EDGES[i]
}

/// Standard normal CDF (Abramowitz-Stegun 7.1.26 on erf; |error| < 1.5e-7).
#[inline]
pub fn phi_exact(z: f64) -> f64 {
    let x = z / std::f64::consts::SQRT_2;
    let ax = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * ax);
    let y = 1.0
        - (((((1.061_405_429 * t - 1.453_152_027) * t) + 1.421_413_741) * t - 0.284_496_736) * t
            + 0.254_829_592)
            * t
            * (-ax * ax).exp();
    let erf = if x >= 0.0 { y } else { -y };
    0.5 * (1.0 + erf)
}

const PHI_N: usize = 2048;
const PHI_Z: f64 = 8.0;

fn phi_table() -> &'static [f64; PHI_N + 1] {
    static T: std::sync::OnceLock<Box<[f64; PHI_N + 1]>> = std::sync::OnceLock::new();
    T.get_or_init(|| {
        let mut t = Box::new([0.0; PHI_N + 1]);
        for (i, v) in t.iter_mut().enumerate() {
            *v = phi_exact(-PHI_Z + 2.0 * PHI_Z * i as f64 / PHI_N as f64);
        }
        t
    })
}

/// Standard normal CDF from a table (linear interpolation, |error| < 2e-6).
#[inline]
pub fn phi(z: f64) -> f64 {
    phi_in(phi_table(), z)
}

#[inline(always)]
fn phi_in(tab: &[f64; PHI_N + 1], z: f64) -> f64 {
    // NaN -> 0.5 (the clamp keeps NaN; `as usize` maps it to 0, so guard)
    let u = ((z + PHI_Z) * (PHI_N as f64 / (2.0 * PHI_Z))).clamp(0.0, PHI_N as f64);
    if u.is_nan() {
        return 0.5;
    }
    // u is in [0, PHI_N] here: an i32 conversion is exact and cheaper than usize's
    let i = (u as i32).min(PHI_N as i32 - 1);
    let t = u - f64::from(i);
    let i = i as usize;
    tab[i] + (tab[i + 1] - tab[i]) * t
}

impl Dist {
    /// Quantile `p` of the increment (linear inside a bin).
    pub fn quantile(&self, p: f64) -> f64 {
        let f = &self.f;
        if p <= f[0] {
            return H_LO;
        }
        for i in 1..=N_HIST {
            if f[i] >= p {
                let (a, b) = (f[i - 1], f[i]);
                let t = if b > a { (p - a) / (b - a) } else { 0.0 };
                return edge(i - 1) + t * H_BW;
            }
        }
        edge(N_HIST)
    }

    /// Three quantiles at increasing levels in one scan.
    #[inline]
    pub fn quantiles3(&self, p: [f64; 3]) -> [f64; 3] {
        let f = &self.f;
        let mut out = [edge(N_HIST); 3];
        let mut k = 0;
        while k < 3 && p[k] <= f[0] {
            out[k] = H_LO;
            k += 1;
        }
        let mut i = 1;
        while k < 3 && i <= N_HIST {
            if f[i] >= p[k] {
                let (a, b) = (f[i - 1], f[i]);
                let t = if b > a { (p[k] - a) / (b - a) } else { 0.0 };
                out[k] = edge(i - 1) + t * H_BW;
                k += 1;
            } else {
                i += 1;
            }
        }
        out
    }

    /// P(increment >= g).
    #[inline]
    pub fn exceed(&self, g: f64) -> f64 {
        let u = (g - H_LO) / H_BW;
        if u <= 0.0 {
            return 1.0;
        }
        if u >= N_HIST as f64 {
            return (1.0 - self.f[N_HIST]).clamp(0.0, 1.0);
        }
        let i = u as usize;
        let t = u - i as f64;
        let c = self.f[i] + (self.f[i + 1] - self.f[i]) * t;
        (1.0 - c).clamp(0.0, 1.0)
    }

    /// Mid-distribution CDF value at an observed increment (for diagnostics).
    pub fn cdf(&self, g: f64) -> f64 {
        1.0 - self.exceed(g)
    }
}

/// The calibration state of a forecaster.
#[derive(Clone, Debug)]
pub struct Calib {
    /// Calibration horizons in hours (sorted, distinct, > 0).
    pub horizons: Vec<f64>,
    /// Per cell, cumulative weights: `hist[cell * N_HIST + i]` = weight of the
    /// increments below edge i + 1 (scaled by `scale`, like `cnt`).
    pub hist: Vec<f32>,
    pub cnt: Vec<f32>,
    pub scale: Vec<f32>,
    /// Interval levels per horizon (start at 0.1 / 0.9).
    pub lo: Vec<f64>,
    pub hi: Vec<f64>,
    /// Scored forecasts per horizon.
    pub scored: Vec<u64>,
    /// `ln` of each horizon (derived, for the interpolation weights).
    ln_h: Vec<f64>,
}

#[inline]
fn cell(k: usize, b: usize, j: usize, s: usize) -> usize {
    ((k * N_BAND + b) * N_M + j) * N_STALL + s
}

impl Calib {
    pub fn new(horizons: Vec<f64>) -> Self {
        let k = horizons.len();
        let cells = k * N_BAND * N_M * N_STALL;
        Calib {
            ln_h: horizons.iter().map(|h| h.ln()).collect(),
            lo: vec![P_LO; k],
            hi: vec![P_HI; k],
            scored: vec![0; k],
            horizons,
            hist: vec![0.0; cells * N_HIST],
            cnt: vec![0.0; cells],
            scale: vec![1.0; cells],
        }
    }

    pub fn n_cells(&self) -> usize {
        self.cnt.len()
    }

    /// Learn one increment observed `horizons[k]` after a forecast.
    pub fn learn(&mut self, k: usize, b: usize, m: f64, s: usize, inc: f64) {
        let (j, t) = m_pos(m);
        // `floor().max(0.0) as usize` without the floor call (not inlined on the x86-64
        // baseline): truncation agrees with it at and above 0, and below 0 (and for
        // NaN) both give 0
        let bin = (((inc - H_LO) / H_BW + 1e-4) as usize).min(N_HIST - 1);
        for (jj, w) in [(j, 1.0 - t), (j + 1, t)] {
            if w <= 1e-6 {
                continue;
            }
            let c = cell(k, b, jj, s);
            let sc = f64::from(self.scale[c]) * (-(w * DECAY.ln())).exp();
            let mut sc32 = sc as f32;
            if sc > 1e12 {
                let inv = (1.0 / f64::from(self.scale[c])) as f32;
                for v in &mut self.hist[c * N_HIST..(c + 1) * N_HIST] {
                    *v *= inv;
                }
                self.cnt[c] *= inv;
                sc32 = (sc / f64::from(self.scale[c])) as f32;
            }
            self.scale[c] = sc32;
            // cumulative: every bin from `bin` up holds the new weight
            let add = w as f32 * sc32;
            for v in &mut self.hist[c * N_HIST + bin..(c + 1) * N_HIST] {
                *v += add;
            }
            self.cnt[c] += add;
        }
        self.scored[k] += 1;
    }

    /// Adapt the interval levels of horizon k after a scored forecast.
    pub fn adapt(&mut self, k: usize, below_p10: bool, above_p90: bool) {
        let lo = self.lo[k] + GAMMA * (P_LO - f64::from(u8::from(below_p10)));
        let hi = self.hi[k] + GAMMA * (f64::from(u8::from(above_p90)) - (1.0 - P_HI));
        self.lo[k] = lo.clamp(0.005, 0.45);
        self.hi[k] = hi.clamp(0.55, 0.995);
    }

    /// Weights of the calibration horizons for a forecast `h` hours ahead
    /// (linear in log h between the two nearest; the nearest outside the range).
    #[inline]
    pub fn hweights(&self, h: f64) -> [(usize, f64); 2] {
        let n = self.horizons.len();
        if n == 1 || h <= self.horizons[0] {
            return [(0, 1.0), (0, 0.0)];
        }
        if h >= self.horizons[n - 1] {
            return [(n - 1, 1.0), (n - 1, 0.0)];
        }
        let mut k = 0;
        while k + 1 < n && self.horizons[k + 1] <= h {
            k += 1;
        }
        if self.horizons[k] == h {
            // what the interpolation below gives at a calibration horizon, without the logs
            return [(k, 1.0), (k + 1, 0.0)];
        }
        let a = (h.ln() - self.ln_h[k]) / (self.ln_h[k + 1] - self.ln_h[k]);
        [(k, 1.0 - a), (k + 1, a)]
    }

    /// Interval levels (lo, hi) for a forecast `h` hours ahead.
    #[inline]
    pub fn levels(&self, h: f64) -> (f64, f64) {
        let w = self.hweights(h);
        let lo = w[0].1 * self.lo[w[0].0] + w[1].1 * self.lo[w[1].0];
        let hi = w[0].1 * self.hi[w[0].0] + w[1].1 * self.hi[w[1].0];
        (lo, hi)
    }

    /// Predictive distribution of the increment.
    #[inline(always)]
    pub fn dist(&self, h: f64, b: usize, m: f64, s: usize, par: &Param) -> Dist {
        let mut f = [0.0f64; N_HIST + 1];
        let mut pw = 0.0;
        let (j, t) = m_pos(m);
        for (k, wk) in self.hweights(h) {
            if wk <= 1e-9 {
                continue;
            }
            for (jj, wj) in [(j, 1.0 - t), (j + 1, t)] {
                let w = wk * wj;
                if w <= 1e-9 {
                    continue;
                }
                let c = cell(k, b, jj, s);
                let cnt = f64::from(self.cnt[c]);
                let n_eff = cnt / f64::from(self.scale[c]);
                let wc = n_eff / (n_eff + N0);
                if wc > 1e-6 && cnt > 0.0 {
                    let g = w * wc / cnt;
                    let hs = &self.hist[c * N_HIST..(c + 1) * N_HIST];
                    for (fi, &h) in f[1..].iter_mut().zip(hs) {
                        *fi += g * f64::from(h);
                    }
                }
                pw += w * (1.0 - wc);
            }
        }
        if pw > 0.05 {
            // the parametric CDF is 0 below `lower` and mean - 8 sd, 1 above `upper`
            // and mean + 8 sd: only evaluate in between
            let sd = par.sd.max(1e-3);
            let lo_e = par.lower.max(par.mean - 5.0 * sd);
            let hi_e = par.upper.min(par.mean + 5.0 * sd);
            let tab = phi_table();
            for (i, fi) in f.iter_mut().enumerate() {
                let e = edge(i);
                if e <= lo_e {
                    if e > par.lower + 1e-9 {
                        *fi += pw * par.cdf_below_in(tab, e);
                    }
                    continue;
                }
                *fi += pw
                    * if e > hi_e {
                        1.0
                    } else {
                        par.cdf_below_in(tab, e)
                    };
            }
        } else if pw > 0.0 {
            // renormalise the negligible parametric share away
            let s = 1.0 / (1.0 - pw);
            for fi in f.iter_mut().skip(1) {
                *fi *= s;
            }
        }
        // within [0, 1] (each part is monotone, so is the mixture up to rounding)
        for fi in f.iter_mut() {
            *fi = fi.clamp(0.0, 1.0);
        }
        Dist { f }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phi_values() {
        for i in -100..=100 {
            let z = i as f64 * 0.083;
            assert!((phi(z) - phi_exact(z)).abs() < 2e-6, "{z}");
        }
        assert!((phi(0.0) - 0.5).abs() < 1e-7);
        assert!((phi(1.2815516) - 0.9).abs() < 1e-6);
        assert!((phi(-1.959964) - 0.025).abs() < 1e-6);
    }

    #[test]
    fn learned_cell_gives_empirical_quantiles() {
        let mut c = Calib::new(vec![24.0]);
        let par = Param {
            mean: 0.1,
            sd: 0.05,
            lower: f64::NEG_INFINITY,
            upper: 2.0,
            grid: 0.0,
        };
        // increments 0 (60 %) and 0.2 (40 %), at m exactly on a centre
        let (j, _) = m_pos(0.1);
        let m = (M_LO.ln() + j as f64 * (M_HI.ln() - M_LO.ln()) / (N_M - 1) as f64).exp();
        for i in 0..2000 {
            c.learn(0, 2, m, 1, if i % 5 < 3 { 0.0 } else { 0.2 });
        }
        let d = c.dist(24.0, 2, m, 1, &par);
        assert!(d.quantile(0.5).abs() < 0.051, "{}", d.quantile(0.5));
        assert!((d.quantile(0.75) - 0.2).abs() < 0.051);
        let p = d.exceed(0.2 - 1e-9);
        assert!((p - 0.4).abs() < 0.02, "{p}");
        // horizons outside the table use the nearest
        assert_eq!(c.hweights(100.0)[0], (0, 1.0));
    }

    #[test]
    fn hweights_interpolate_in_log() {
        let c = Calib::new(vec![24.0, 72.0]);
        let w = c.hweights(24.0 * 3f64.sqrt());
        assert_eq!(w[0].0, 0);
        assert!((w[0].1 - 0.5).abs() < 1e-9);
    }

    #[test]
    fn interval_levels_adapt() {
        let mut c = Calib::new(vec![24.0]);
        for _ in 0..1000 {
            c.adapt(0, false, true);
        }
        assert!(c.hi[0] > 0.98);
        assert!((c.lo[0] - 0.45).abs() < 1e-9);
    }
}
