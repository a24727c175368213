//! Versioned binary snapshot of a forecaster (`to_bytes` / `from_bytes`).
//!
//! Layout (little endian): magic `TIDFCST\0`, format version (u16), then config,
//! counters, fleet state, calibration tables, ids, container states, pending
//! forecasts (a tag byte each, fields only when present) and rolling errors, and a
//! trailing FNV-1a 64 checksum of everything before it. Readers reject other
//! versions with a message naming the version found.

use super::calib::Calib;
use super::ids::{IdKind, Ids};
use super::model::{Acc, Fleet, Pending, State, N_DAYS, RING};
use super::profile::NONE_T;
use super::{Config, ForecastError, Forecaster, ScoreRule, Stats, MAX_HORIZONS};

pub const MAGIC: &[u8; 8] = b"TIDFCST\0";
pub const VERSION: u16 = 1;

struct W(Vec<u8>);

impl W {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn f32(&mut self, v: f32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn f64(&mut self, v: f64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn f32s(&mut self, v: &[f32]) {
        self.u64(v.len() as u64);
        for &x in v {
            self.f32(x);
        }
    }
}

struct R<'a> {
    b: &'a [u8],
    p: usize,
}

fn trunc() -> ForecastError {
    ForecastError::value(
        "forecaster snapshot is truncated or corrupt: pass the exact bytes from to_bytes()",
    )
}

impl R<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], ForecastError> {
        let end = self.p.checked_add(n).ok_or_else(trunc)?;
        let s = self.b.get(self.p..end).ok_or_else(trunc)?;
        self.p = end;
        Ok(s)
    }
    fn arr<const N: usize>(&mut self) -> Result<[u8; N], ForecastError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, ForecastError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, ForecastError> {
        Ok(u16::from_le_bytes(self.arr()?))
    }
    fn u32(&mut self) -> Result<u32, ForecastError> {
        Ok(u32::from_le_bytes(self.arr()?))
    }
    fn u64(&mut self) -> Result<u64, ForecastError> {
        Ok(u64::from_le_bytes(self.arr()?))
    }
    fn i64(&mut self) -> Result<i64, ForecastError> {
        Ok(i64::from_le_bytes(self.arr()?))
    }
    fn f32(&mut self) -> Result<f32, ForecastError> {
        Ok(f32::from_le_bytes(self.arr()?))
    }
    fn f64(&mut self) -> Result<f64, ForecastError> {
        Ok(f64::from_le_bytes(self.arr()?))
    }
    fn len(&mut self, max: usize) -> Result<usize, ForecastError> {
        let n = usize::try_from(self.u64()?).map_err(|_| trunc())?;
        if n > max {
            return Err(trunc());
        }
        Ok(n)
    }
    fn f32s(&mut self, expect: usize) -> Result<Vec<f32>, ForecastError> {
        let n = self.len(expect)?;
        if n != expect {
            return Err(trunc());
        }
        (0..n).map(|_| self.f32()).collect()
    }
}

fn fnv(b: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &x in b {
        h = (h ^ u64::from(x)).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn write_state(w: &mut W, s: &State) {
    for v in [
        s.t_last,
        s.hour,
        s.t_cycle,
        s.t_rise,
        s.up_t,
        s.bk_t_last,
        s.bk_hour,
        s.bk_t_cycle,
        s.bk_t_rise,
        s.issue_day,
    ] {
        w.i64(v);
    }
    for v in [
        s.level,
        s.x_last,
        s.prev_raw,
        s.rnum,
        s.rden,
        s.noise,
        s.res,
        s.max_level,
        s.anchor,
        s.up_level,
        s.p_off,
        s.bk_level,
        s.bk_x_last,
        s.bk_anchor,
        s.bk_du,
    ] {
        w.f64(v);
    }
    for &v in s.cd.iter().chain(s.ch.iter()) {
        w.f64(v);
    }
    w.f64(s.d_sum);
    w.u32(s.cyc);
    w.u32(s.n_obs);
    w.u32(s.n_empty);
    for v in [
        s.hod, s.dow, s.bk_hod, s.bk_dow, s.n_same, s.up_count, s.flags, s.d_dow,
    ] {
        w.u8(v);
    }
}

#[allow(clippy::field_reassign_with_default)]
fn read_state(r: &mut R<'_>) -> Result<State, ForecastError> {
    let mut s = State::default();
    s.t_last = r.i64()?;
    s.hour = r.i64()?;
    s.t_cycle = r.i64()?;
    s.t_rise = r.i64()?;
    s.up_t = r.i64()?;
    s.bk_t_last = r.i64()?;
    s.bk_hour = r.i64()?;
    s.bk_t_cycle = r.i64()?;
    s.bk_t_rise = r.i64()?;
    s.issue_day = r.i64()?;
    s.level = r.f64()?;
    s.x_last = r.f64()?;
    s.prev_raw = r.f64()?;
    s.rnum = r.f64()?;
    s.rden = r.f64()?;
    s.noise = r.f64()?;
    s.res = r.f64()?;
    s.max_level = r.f64()?;
    s.anchor = r.f64()?;
    s.up_level = r.f64()?;
    s.p_off = r.f64()?;
    s.bk_level = r.f64()?;
    s.bk_x_last = r.f64()?;
    s.bk_anchor = r.f64()?;
    s.bk_du = r.f64()?;
    for v in s.cd.iter_mut() {
        *v = r.f64()?;
    }
    for v in s.ch.iter_mut() {
        *v = r.f64()?;
    }
    s.d_sum = r.f64()?;
    s.cyc = r.u32()?;
    s.n_obs = r.u32()?;
    s.n_empty = r.u32()?;
    s.hod = r.u8()?;
    s.dow = r.u8()?;
    s.bk_hod = r.u8()?;
    s.bk_dow = r.u8()?;
    s.n_same = r.u8()?;
    s.up_count = r.u8()?;
    s.flags = r.u8()?;
    s.d_dow = r.u8()?;
    if s.hod > 23 || s.dow > 6 || s.bk_hod > 23 || s.bk_dow > 6 || s.d_dow > 6 {
        return Err(trunc());
    }
    Ok(s)
}

impl Forecaster {
    /// Serialise everything (config, fleet, calibration, every container).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = W(Vec::with_capacity(
            64 + self.st.len() * 400 + self.calib.hist.len() * 4,
        ));
        w.0.extend_from_slice(MAGIC);
        w.u16(VERSION);
        let c = &self.cfg;
        w.f64(c.threshold);
        w.u8(c.horizons_h.len() as u8);
        for &h in &c.horizons_h {
            w.f64(h);
        }
        w.i64(c.utc_offset_s);
        w.f64(c.drop_threshold);
        w.u8(u8::from(c.confirm_emptying));
        w.f64(c.max_horizon_h);
        w.u8(match c.score_rule {
            ScoreRule::Endpoints => 0,
            ScoreRule::Cycle => 1,
        });
        w.u8(u8::from(c.calibrate));
        for v in self.stats.values() {
            w.u64(v);
        }
        let f = &self.fleet;
        for &v in f
            .fd_num
            .iter()
            .chain(&f.fd_den)
            .chain(&f.fh_num)
            .chain(&f.fh_den)
        {
            w.f64(v);
        }
        w.f64(f.rnum);
        w.f64(f.rden);
        w.i64(f.last_day);
        for &(d, a, b) in &f.days {
            w.i64(d);
            w.f64(a);
            w.f64(b);
        }
        let k = self.calib.horizons.len();
        for i in 0..k {
            w.f64(self.calib.lo[i]);
            w.f64(self.calib.hi[i]);
            w.u64(self.calib.scored[i]);
        }
        w.f32s(&self.calib.hist);
        w.f32s(&self.calib.cnt);
        w.f32s(&self.calib.scale);
        match self.ids.kind {
            IdKind::Unset => w.u8(0),
            IdKind::Int => {
                w.u8(1);
                w.u64(self.ids.ints.len() as u64);
                for &v in &self.ids.ints {
                    w.i64(v);
                }
            }
            IdKind::Str => {
                w.u8(2);
                w.u64((self.ids.str_offsets.len() - 1) as u64);
                for &o in &self.ids.str_offsets {
                    w.u64(o);
                }
                w.u64(self.ids.str_data.len() as u64);
                w.0.extend_from_slice(&self.ids.str_data);
            }
        }
        w.u64(self.st.len() as u64);
        for s in &self.st {
            write_state(&mut w, s);
        }
        for p in &self.pend {
            if p.due == NONE_T {
                w.u8(0);
                continue;
            }
            w.u8(1);
            w.i64(p.due);
            w.i64(p.made);
            for v in [p.base, p.m, p.p10, p.p50, p.p90, p.po] {
                w.f32(v);
            }
            w.u32(p.cyc);
            w.u8(p.band);
            w.u8(p.stall);
        }
        for a in &self.acc {
            w.u32(a.n);
            w.f32(a.mae);
            w.f32(a.bias);
            w.f32(a.cov);
            w.i64(a.last);
        }
        let sum = fnv(&w.0);
        w.u64(sum);
        w.0
    }

    /// Rebuild a forecaster from `to_bytes` output.
    pub fn from_bytes(b: &[u8]) -> Result<Forecaster, ForecastError> {
        if b.len() < MAGIC.len() + 2 + 8 || &b[..MAGIC.len()] != MAGIC {
            return Err(ForecastError::value(
                "not a tidstream forecaster snapshot (bad magic): pass bytes made by Forecaster.to_bytes()",
            ));
        }
        let (body, tail) = b.split_at(b.len() - 8);
        let mut r = R {
            b: body,
            p: MAGIC.len(),
        };
        let ver = r.u16()?;
        if ver != VERSION {
            return Err(ForecastError::value(format!(
                "forecaster snapshot format version {ver} is not supported by this build (reads version {VERSION}); \
                 upgrade tidstream or rebuild the state from readings"
            )));
        }
        let mut sum = [0u8; 8];
        sum.copy_from_slice(tail);
        if u64::from_le_bytes(sum) != fnv(body) {
            return Err(ForecastError::value(
                "forecaster snapshot checksum mismatch (corrupt or truncated): pass the exact bytes from to_bytes()",
            ));
        }
        let threshold = r.f64()?;
        let nh = usize::from(r.u8()?);
        if nh == 0 || nh > MAX_HORIZONS {
            return Err(trunc());
        }
        let horizons_h = (0..nh).map(|_| r.f64()).collect::<Result<Vec<_>, _>>()?;
        let utc_offset_s = r.i64()?;
        let drop_threshold = r.f64()?;
        let confirm_emptying = r.u8()? != 0;
        let max_horizon_h = r.f64()?;
        let score_rule = match r.u8()? {
            0 => ScoreRule::Endpoints,
            1 => ScoreRule::Cycle,
            _ => return Err(trunc()),
        };
        let calibrate = r.u8()? != 0;
        let cfg = Config {
            threshold,
            horizons_h,
            utc_offset_s,
            drop_threshold,
            confirm_emptying,
            max_horizon_h,
            score_rule,
            calibrate,
        };
        let mut fc = Forecaster::new(cfg)?;
        if fc.cfg.horizons_h.len() != nh {
            return Err(trunc());
        }
        let mut sv = [0u64; 12];
        for v in sv.iter_mut() {
            *v = r.u64()?;
        }
        fc.stats = Stats::from_values(sv);
        let mut fl = Fleet::default();
        for v in fl
            .fd_num
            .iter_mut()
            .chain(fl.fd_den.iter_mut())
            .chain(fl.fh_num.iter_mut())
            .chain(fl.fh_den.iter_mut())
        {
            *v = r.f64()?;
        }
        fl.rnum = r.f64()?;
        fl.rden = r.f64()?;
        fl.last_day = r.i64()?;
        fl.days = (0..N_DAYS)
            .map(|_| Ok((r.i64()?, r.f64()?, r.f64()?)))
            .collect::<Result<Vec<_>, ForecastError>>()?;
        fc.fleet = fl;
        let k = nh;
        let mut cal = Calib::new(fc.cfg.horizons_h.clone());
        for i in 0..k {
            cal.lo[i] = r.f64()?;
            cal.hi[i] = r.f64()?;
            cal.scored[i] = r.u64()?;
        }
        let nc = cal.n_cells();
        cal.hist = r.f32s(cal.hist.len())?;
        cal.cnt = r.f32s(nc)?;
        cal.scale = r.f32s(nc)?;
        fc.calib = cal;
        let remaining = body.len();
        let mut ids = Ids::default();
        match r.u8()? {
            0 => {}
            1 => {
                ids.kind = IdKind::Int;
                let n = r.len(remaining / 8)?;
                ids.ints = (0..n).map(|_| r.i64()).collect::<Result<_, _>>()?;
            }
            2 => {
                ids.kind = IdKind::Str;
                let n = r.len(remaining / 8)?;
                ids.str_offsets = (0..=n).map(|_| r.u64()).collect::<Result<_, _>>()?;
                let dl = r.len(remaining)?;
                ids.str_data = r.take(dl)?.to_vec();
                let ok = ids.str_offsets.first() == Some(&0)
                    && ids.str_offsets.windows(2).all(|w| w[0] <= w[1])
                    && ids.str_offsets.last().copied() == Some(dl as u64);
                if !ok {
                    return Err(trunc());
                }
            }
            _ => return Err(trunc()),
        }
        ids.rebuild();
        let n = r.len(remaining / 100)?;
        if n != ids.len() {
            return Err(trunc());
        }
        fc.st = (0..n)
            .map(|_| read_state(&mut r))
            .collect::<Result<_, _>>()?;
        fc.pend = Vec::with_capacity(n * k * RING);
        for _ in 0..n * k * RING {
            let p = match r.u8()? {
                0 => Pending::EMPTY,
                1 => Pending {
                    due: r.i64()?,
                    made: r.i64()?,
                    base: r.f32()?,
                    m: r.f32()?,
                    p10: r.f32()?,
                    p50: r.f32()?,
                    p90: r.f32()?,
                    po: r.f32()?,
                    cyc: r.u32()?,
                    band: r.u8()?,
                    stall: r.u8()?,
                },
                _ => return Err(trunc()),
            };
            if usize::from(p.band) >= super::calib::N_BAND
                || usize::from(p.stall) >= super::calib::N_STALL
            {
                return Err(trunc());
            }
            fc.pend.push(p);
        }
        for (i, s) in fc.st.iter_mut().enumerate() {
            s.next_due = super::model::next_due(&fc.pend[i * k * RING..(i + 1) * k * RING]);
            s.next_issue = i64::MIN;
        }
        fc.acc = (0..n * k)
            .map(|_| {
                Ok(Acc {
                    n: r.u32()?,
                    mae: r.f32()?,
                    bias: r.f32()?,
                    cov: r.f32()?,
                    last: r.i64()?,
                })
            })
            .collect::<Result<_, ForecastError>>()?;
        if r.p != body.len() {
            return Err(trunc());
        }
        fc.ids = ids;
        Ok(fc)
    }
}
