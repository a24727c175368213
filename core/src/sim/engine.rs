//! The simulation engine: per-container fill dynamics, collections and overflows,
//! sensor faults, and the frames (payloads and envelopes) in time order, in chunks.
//!
//! Time advances in steps of `interval` (UTC-aligned to `start`). In step k every
//! working device takes one periodic measurement at `T_k + phase + jitter`, where
//! `phase` is fixed per device; alarm (interrupt) uplinks happen at the event onset.
//! The step windows never overlap, so sorting each step's frames gives a global time
//! order. Fill grows linearly inside a step at the step's rate (hour-of-day,
//! day-of-week, season, holiday and market-day weights times the container's base
//! rate and its day-to-day factor).

use std::sync::Arc;

use super::calendar::{
    from_local_ms, to_local_ms, weekday, Holidays, TimeFormatter, MS_PER_DAY, MS_PER_HOUR,
};
use super::json::{self, DeviceIds, EnvContext, Radio, Times};
use super::models::{Caps, Measure, Reported, MODELS};
use super::profile::{params, schedule_options, Kind, Profiles, Schedule, N_KINDS};
use super::rng::{hash2, mix64, Rng, SplitMix64, Xoshiro256pp};
use super::SimError;
use crate::codec::{Codec, Registry};
use crate::fill::distance_for_fill;
use crate::reading::{alarm, Reading};

/// Envelope format of one uplink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Envelope {
    Ttn = 0,
    Chirpstack = 1,
    Raw = 2,
}

impl Envelope {
    pub const NAMES: [&'static str; 3] = ["ttn-v3", "chirpstack-v4", "raw"];
}

/// Which envelopes the run produces.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum EnvelopeMode {
    /// Each device is on TTN with probability `ttn_share`, else on ChirpStack.
    Mixed {
        ttn_share: f64,
    },
    Ttn,
    Chirpstack,
    /// Payloads only, no envelope JSON.
    Raw,
}

impl EnvelopeMode {
    pub fn parse(s: &str, ttn_share: f64) -> Option<Self> {
        match s {
            "mixed" => Some(EnvelopeMode::Mixed { ttn_share }),
            "ttn" | "ttn-v3" => Some(EnvelopeMode::Ttn),
            "chirpstack" | "chirpstack-v4" => Some(EnvelopeMode::Chirpstack),
            "raw" => Some(EnvelopeMode::Raw),
            _ => None,
        }
    }
}

/// One container with its sensor, as the territory gives it.
#[derive(Debug, Clone)]
pub struct DeviceSpec {
    pub kind: Kind,
    /// Index into [`MODELS`].
    pub model: usize,
    pub dev_eui: u64,
    /// Network-server device name (container id).
    pub name: String,
    pub depth_mm: f64,
    pub offset_mm: f64,
    pub volume_l: f64,
    /// Weekday (Monday = 0) of the commune's market near this container, or -1.
    pub market_dow: i8,
}

/// Run parameters.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub seed: u64,
    /// UTC ms of the first step.
    pub start_ms: i64,
    /// Number of measurement steps per device.
    pub steps: u64,
    /// Measurement interval, ms (5 min .. 24 h).
    pub interval_ms: i64,
    pub envelopes: EnvelopeMode,
    /// Reading-level ground truth rows.
    pub truth: bool,
    /// Multiplier on the rates of sensor faults (0 = a perfect fleet).
    pub faults: f64,
    /// Probability that a planned collection is missed.
    pub missed_collection_p: f64,
    /// Application name in the envelopes.
    pub application: String,
    /// Multiplier on every container's base fill rate.
    pub rate_scale: f64,
    /// Fill level at the start: "random" phase of the collection cycle.
    pub warm_start: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 0,
            start_ms: 1_735_689_600_000, // 2025-01-01T00:00:00Z
            steps: 24,
            interval_ms: MS_PER_HOUR,
            envelopes: EnvelopeMode::Mixed { ttn_share: 0.7 },
            truth: true,
            faults: 1.0,
            missed_collection_p: 0.01,
            application: "tidstream-sim".into(),
            rate_scale: 1.0,
            warm_start: true,
        }
    }
}

/// Arrow-ready columns of one chunk.
#[derive(Debug, Default)]
pub struct Chunk {
    // uplinks
    pub up_received_ns: Vec<i64>,
    pub up_dev: Vec<u32>,
    pub up_format: Vec<u8>,
    pub up_fport: Vec<i32>,
    pub up_fcnt: Vec<i64>,
    pub up_payload_offsets: Vec<i32>,
    pub up_payload: Vec<u8>,
    pub up_env_offsets: Vec<i32>,
    pub up_env: Vec<u8>,
    pub up_rssi: Vec<f32>,
    pub up_snr: Vec<f32>,
    // reading-level truth
    pub tr_measured_ns: Vec<i64>,
    pub tr_dev: Vec<u32>,
    pub tr_fcnt: Vec<i64>,
    pub tr_delivered: Vec<u8>,
    pub tr_interrupt: Vec<u8>,
    pub tr_condition: Vec<u8>,
    pub tr_true_fill: Vec<f64>,
    pub tr_true_distance: Vec<f64>,
    pub tr_distance: Vec<f64>,
    pub tr_temperature: Vec<f64>,
    pub tr_battery_pct: Vec<f64>,
    pub tr_battery_v: Vec<f64>,
    pub tr_tilt: Vec<i8>,
    pub tr_fire: Vec<i8>,
    pub tr_flags: Vec<u16>,
    // collections
    pub col_at_ns: Vec<i64>,
    pub col_dev: Vec<u32>,
    pub col_fill_before: Vec<f64>,
    pub col_demand: Vec<f64>,
    pub col_fill_after: Vec<f64>,
    pub col_overflowed: Vec<u8>,
    pub col_missed: Vec<u8>,
    // overflows
    pub ov_start_ns: Vec<i64>,
    pub ov_end_ns: Vec<i64>,
    pub ov_dev: Vec<u32>,
    pub ov_peak: Vec<f64>,
    pub ov_excess_l: Vec<f64>,
    /// Steps completed so far, of `steps`.
    pub step: u64,
    pub steps: u64,
}

impl Chunk {
    pub fn uplinks(&self) -> usize {
        self.up_dev.len()
    }
    pub fn is_empty(&self) -> bool {
        self.up_dev.is_empty()
            && self.tr_dev.is_empty()
            && self.col_dev.is_empty()
            && self.ov_dev.is_empty()
    }
}

/// Measurement condition recorded in the truth (`condition` column).
pub mod condition {
    pub const OK: u8 = 0;
    pub const NO_ECHO: u8 = 1;
    pub const LID_OPEN: u8 = 2;
    pub const OBSTRUCTED: u8 = 3;
    pub const STUCK: u8 = 4;
    pub const TILTED: u8 = 5;
    pub const FIRE: u8 = 6;
    pub const NAMES: [&str; 7] = [
        "ok",
        "no_echo",
        "lid_open",
        "obstructed",
        "stuck",
        "tilted",
        "fire",
    ];
}

/// `delivered` column of the truth.
pub mod delivered {
    /// Lost in a network outage (the frame counter still advanced).
    pub const LOST: u8 = 0;
    /// Received live.
    pub const LIVE: u8 = 1;
    /// Lost live, kept by the device (the 32 most recent) and resent with the
    /// first frame after the outage.
    pub const STORED: u8 = 2;
}

const NONE_T: i64 = i64::MAX;
const MAX_STORED: usize = 32;

/// Per-device state. Static parameters first, then the dynamic state.
#[derive(Debug, Clone)]
struct Dev {
    /// Index of the device in the caller's list (devices are stored in phase order).
    ext: u32,
    kind: Kind,
    model: u8,
    env: Envelope,
    sf: u8,
    n_gw: u8,
    gw0: u16,
    market_dow: i8,
    dead: bool,
    depth: f64,
    offset: f64,
    volume_l: f64,
    rate: f64,
    phase_ms: i64,
    sched: Schedule,
    rssi0: f64,
    temp_offset: f64,
    sun: f64,
    batt0: f64,
    drain_per_day: f64,
    rng: SplitMix64,
    // fill
    fill: f64,
    day_factor: f64,
    surface_mm: f64,
    overflow_start: i64,
    peak: f64,
    next_collection: i64,
    // radio / counters
    fcnt: u32,
    // faults: end times (NONE_T = inactive) and next onsets
    outage: (i64, i64),
    next_outage: i64,
    stuck: (i64, i64),
    stuck_mm: f64,
    next_stuck: i64,
    obstruct: (i64, i64),
    obstruct_mm: f64,
    next_obstruct: i64,
    tilt: (i64, i64),
    next_tilt: i64,
    fire_start: i64,
    fire_until: i64,
    fire_peak: f64,
    next_fire: i64,
    last_distance: f64,
    stored: Vec<(i64, Option<u16>)>,
}

/// A measurement waiting to be emitted (sorted within its step).
#[derive(Debug, Clone, Copy)]
struct Rec {
    recv_ns: i64,
    dev: u32,
    interrupt: bool,
    delivered: u8,
    cond: u8,
    fcnt: u32,
    measured_ms: i64,
    true_fill: f64,
    true_dist: f64,
    rep: Reported,
    rssi: f64,
    snr: f64,
    channel: u8,
    stored_start: u32,
    stored_len: u8,
}

/// Fault rates (events per device-day at `faults = 1`) and sizes.
mod faults {
    pub const OUTAGE_SHORT_PER_DAY: f64 = 1.0 / 30.0;
    pub const OUTAGE_SHORT_MEAN_H: f64 = 4.0;
    pub const OUTAGE_LONG_PER_DAY: f64 = 1.0 / 250.0;
    pub const STUCK_PER_DAY: f64 = 1.0 / 500.0;
    pub const OBSTRUCT_BANK_PER_DAY: f64 = 1.0 / 60.0;
    pub const OBSTRUCT_OTHER_PER_DAY: f64 = 1.0 / 150.0;
    pub const TILT_PARK_PER_DAY: f64 = 1.0 / 150.0;
    pub const TILT_OTHER_PER_DAY: f64 = 1.0 / 1000.0;
    pub const FIRE_PER_DAY: f64 = 0.005 / 365.0;
    pub const LID_OPEN_GROUPING_P: f64 = 0.006;
    pub const LID_OPEN_PARK_P: f64 = 0.003;
    pub const DEFECTIVE_BATTERY_P: f64 = 0.01;
}

/// The simulator. Deterministic: the same devices, config and seed give the same
/// chunks, byte for byte, whatever `max_rows` is asked per chunk... except where
/// the chunk boundaries fall.
pub struct Simulator {
    cfg: SimConfig,
    specs: Vec<DeviceSpec>,
    devs: Vec<Dev>,
    codecs: Vec<Arc<dyn Codec>>,
    profiles: Profiles,
    holidays: Holidays,
    rng: Xoshiro256pp,
    seed_hash: u64,
    n_gateways: u16,
    gw_down_until: Vec<i64>,
    gw_next_outage: Vec<i64>,
    step: u64,
    // current-step precomputation
    weather: f64,
    weather_day: i64,
    local_day: i64,
    // pending records of the last generated step
    pending: Vec<Rec>,
    order: Vec<(i64, u64, u32)>,
    pending_pos: usize,
    stored_arena: Vec<(i64, Option<u16>)>,
    events: Chunk,
    reading: Reading,
    tf: TimeFormatter,
    env_ctx: EnvContext,
    finished: bool,
}

fn check(cond: bool, msg: impl FnOnce() -> String) -> Result<(), SimError> {
    if cond {
        Ok(())
    } else {
        Err(SimError(msg()))
    }
}

impl Simulator {
    pub fn new(specs: Vec<DeviceSpec>, cfg: SimConfig) -> Result<Self, SimError> {
        check(!specs.is_empty(), || {
            "no devices: the territory has no containers (check scale and places)".into()
        })?;
        check(specs.len() <= u32::MAX as usize / 2, || {
            "too many devices (at most 2 billion)".into()
        })?;
        check((5 * 60_000..=MS_PER_DAY).contains(&cfg.interval_ms), || {
            format!(
                "interval must be between 5 minutes and 24 hours, got {} ms",
                cfg.interval_ms
            )
        })?;
        check(cfg.steps <= 10_000_000, || {
            format!(
                "{} steps is too many: shorten the run or widen the interval",
                cfg.steps
            )
        })?;
        check((0..=4_000_000_000_000).contains(&cfg.start_ms), || {
            "start must be between 1970 and 2096".into()
        })?;
        check(cfg.faults.is_finite() && cfg.faults >= 0.0, || {
            "faults must be a finite number >= 0".into()
        })?;
        check(cfg.rate_scale.is_finite() && cfg.rate_scale > 0.0, || {
            "rate_scale must be a finite number > 0".into()
        })?;
        check((0.0..=1.0).contains(&cfg.missed_collection_p), || {
            "missed_collection_p must be in 0..1".into()
        })?;
        if let EnvelopeMode::Mixed { ttn_share } = cfg.envelopes {
            check((0.0..=1.0).contains(&ttn_share), || {
                "ttn_share must be in 0..1".into()
            })?;
        }
        check(json::json_safe(&cfg.application), || {
            "application name must be printable ASCII without quotes or backslashes".into()
        })?;
        let mut codecs = Vec::new();
        for m in &MODELS {
            let c = Registry::global()
                .get(m.name)
                .ok_or_else(|| SimError(format!("codec {} is not registered", m.name)))?;
            codecs.push(c);
        }
        let mut seen = std::collections::HashSet::with_capacity(specs.len());
        for (i, s) in specs.iter().enumerate() {
            check(s.model < MODELS.len(), || {
                format!("device {i}: unknown model index {}", s.model)
            })?;
            check(
                s.depth_mm.is_finite() && s.depth_mm >= 50.0 && s.depth_mm <= 10_000.0,
                || format!("device {i}: depth_mm must be 50..10000, got {}", s.depth_mm),
            )?;
            check(
                s.offset_mm.is_finite() && s.offset_mm >= 0.0 && s.offset_mm <= 5_000.0,
                || format!("device {i}: offset_mm must be 0..5000, got {}", s.offset_mm),
            )?;
            check(s.volume_l.is_finite() && s.volume_l > 0.0, || {
                format!("device {i}: volume_l must be > 0")
            })?;
            check((-1..=6).contains(&s.market_dow), || {
                format!("device {i}: market_dow must be -1..6")
            })?;
            check(json::json_safe(&s.name) && !s.name.is_empty(), || {
                format!(
                    "device {i}: name {:?} must be non-empty printable ASCII without quotes",
                    s.name
                )
            })?;
            check(seen.insert(s.dev_eui), || {
                format!("device {i}: duplicate DevEUI {:016x}", s.dev_eui)
            })?;
        }
        let seed_hash = mix64(cfg.seed ^ 0x7469_6473_7472_6561);
        let end_ms = cfg.start_ms + cfg.interval_ms * cfg.steps as i64;
        let holidays = Holidays::french(
            cfg.start_ms.div_euclid(MS_PER_DAY) - 1,
            end_ms.div_euclid(MS_PER_DAY) + 1,
        );
        let n_gateways = (specs.len() / 120).clamp(3, 60_000) as u16;
        let mut rng = Xoshiro256pp::new(seed_hash);
        let mut sim = Simulator {
            profiles: Profiles::new(),
            holidays,
            seed_hash,
            n_gateways,
            gw_down_until: vec![i64::MIN; usize::from(n_gateways)],
            gw_next_outage: (0..n_gateways)
                .map(|_| {
                    cfg.start_ms
                        + (rng.exp(90.0) * MS_PER_DAY as f64 / cfg.faults.max(1e-9)).min(4e15)
                            as i64
                })
                .collect(),
            rng,
            devs: Vec::with_capacity(specs.len()),
            codecs,
            step: 0,
            weather: 0.0,
            weather_day: i64::MIN,
            local_day: i64::MIN,
            pending: Vec::new(),
            order: Vec::new(),
            pending_pos: 0,
            stored_arena: Vec::new(),
            events: Chunk::default(),
            reading: Reading::default(),
            tf: TimeFormatter::default(),
            env_ctx: EnvContext::new(
                &cfg.application,
                seed_hash,
                &super::models::model_names(),
                n_gateways,
            ),
            finished: false,
            specs: Vec::new(),
            cfg,
        };
        let mut devs: Vec<Dev> = specs.iter().map(|s| sim.init_dev(s)).collect();
        for (i, d) in devs.iter_mut().enumerate() {
            d.ext = i as u32;
        }
        // Store devices in the order they measure within a step, so that emitting the
        // step's frames in time order walks memory sequentially.
        devs.sort_by_key(|d| (d.phase_ms, d.ext));
        let mut slots: Vec<Option<DeviceSpec>> = specs.into_iter().map(Some).collect();
        sim.specs = devs
            .iter()
            .filter_map(|d| slots.get_mut(d.ext as usize).and_then(Option::take))
            .collect();
        sim.devs = devs;
        Ok(sim)
    }

    pub fn steps(&self) -> u64 {
        self.cfg.steps
    }
    pub fn step(&self) -> u64 {
        self.step
    }
    pub fn n_gateways(&self) -> u16 {
        self.n_gateways
    }
    pub fn config(&self) -> &SimConfig {
        &self.cfg
    }

    fn rate_days(&self, per_day: f64) -> f64 {
        // Mean waiting time in ms for a Poisson process of `per_day` events per day.
        MS_PER_DAY as f64 / (per_day * self.cfg.faults).max(1e-12)
    }

    fn next_after(&self, rng: &mut SplitMix64, t: i64, per_day: f64) -> i64 {
        if self.cfg.faults <= 0.0 || per_day <= 0.0 {
            return NONE_T;
        }
        let dt = rng.exp(self.rate_days(per_day));
        if dt > 1e15 {
            NONE_T
        } else {
            t + dt as i64
        }
    }

    fn init_dev(&self, s: &DeviceSpec) -> Dev {
        let cfg = &self.cfg;
        let mut rng = SplitMix64::new(hash2(self.seed_hash, s.dev_eui));
        let kp = params(s.kind);
        let (opts, period) = schedule_options(s.kind);
        let weekdays = opts[rng.below(opts.len() as u64) as usize];
        let sched = Schedule {
            weekdays,
            period_weeks: period,
            parity: rng.below(u64::from(period)) as u8,
            minute: (6 * 60 + rng.below(6 * 60)) as u16,
        };
        let mean_rate = kp.target_fill / sched.mean_interval_days();
        let rate = rng.lognormal_mean(mean_rate, kp.rate_sigma) * cfg.rate_scale;
        let env = match cfg.envelopes {
            EnvelopeMode::Raw => Envelope::Raw,
            EnvelopeMode::Ttn => Envelope::Ttn,
            EnvelopeMode::Chirpstack => Envelope::Chirpstack,
            EnvelopeMode::Mixed { ttn_share } => {
                if (hash2(self.seed_hash ^ 0xe11, s.dev_eui) % 10_000) as f64 / 10_000.0 < ttn_share
                {
                    Envelope::Ttn
                } else {
                    Envelope::Chirpstack
                }
            }
        };
        let rssi0 = (-104.0 + 9.0 * rng.normal()).clamp(-124.0, -62.0);
        let sf = match rssi0 {
            r if r > -100.0 => 7,
            r if r > -106.0 => 8,
            r if r > -112.0 => 9,
            r if r > -117.0 => 10,
            r if r > -121.0 => 11,
            _ => 12,
        };
        let n_gw = 1 + rng.weighted(&[0.5, 0.35, 0.15]) as u8;
        let gw0 = rng.below(u64::from(self.n_gateways)) as u16;
        let jitter_guard = self.jitter_ms() + 2_000;
        let phase_ms = rng.below((cfg.interval_ms - jitter_guard).max(1) as u64) as i64;
        let defective = rng.chance(faults::DEFECTIVE_BATTERY_P * cfg.faults.min(10.0));
        let life_days = if defective {
            rng.range(60.0, 240.0)
        } else {
            rng.range(5.0, 10.0) * 365.0
        };
        let batt0 = if defective {
            rng.range(60.0, 100.0)
        } else {
            rng.range(35.0, 100.0)
        };
        let t0 = cfg.start_ms;
        let interval_days = sched.mean_interval_days();
        let fill = if cfg.warm_start {
            // Somewhere in the collection cycle.
            rate * interval_days * rng.f64()
        } else {
            0.0
        };
        let mut d = Dev {
            ext: 0,
            kind: s.kind,
            model: s.model as u8,
            env,
            sf,
            n_gw,
            gw0,
            market_dow: s.market_dow,
            dead: false,
            depth: s.depth_mm,
            offset: s.offset_mm,
            volume_l: s.volume_l,
            rate,
            phase_ms,
            sched,
            rssi0,
            temp_offset: 1.2 * rng.normal(),
            sun: rng.f64(),
            batt0,
            drain_per_day: 100.0 / life_days,
            fill,
            day_factor: 1.0,
            surface_mm: 0.0,
            overflow_start: NONE_T,
            peak: 0.0,
            next_collection: NONE_T,
            fcnt: rng.below(20_000) as u32,
            outage: (NONE_T, NONE_T),
            next_outage: NONE_T,
            stuck: (NONE_T, NONE_T),
            stuck_mm: 0.0,
            next_stuck: NONE_T,
            obstruct: (NONE_T, NONE_T),
            obstruct_mm: 0.0,
            next_obstruct: NONE_T,
            tilt: (NONE_T, NONE_T),
            next_tilt: NONE_T,
            fire_start: NONE_T,
            fire_until: NONE_T,
            fire_peak: 0.0,
            next_fire: NONE_T,
            last_distance: s.offset_mm + s.depth_mm,
            stored: Vec::new(),
            rng,
        };
        let mut r = d.rng;
        d.next_outage = self.next_after(
            &mut r,
            t0,
            faults::OUTAGE_SHORT_PER_DAY + faults::OUTAGE_LONG_PER_DAY,
        );
        d.next_stuck = self.next_after(&mut r, t0, faults::STUCK_PER_DAY);
        let obstruct = if s.kind.is_bank() {
            faults::OBSTRUCT_BANK_PER_DAY
        } else {
            faults::OBSTRUCT_OTHER_PER_DAY
        };
        d.next_obstruct = self.next_after(&mut r, t0, obstruct);
        let tilt = if s.kind == Kind::ParkBin {
            faults::TILT_PARK_PER_DAY
        } else {
            faults::TILT_OTHER_PER_DAY
        };
        d.next_tilt = self.next_after(&mut r, t0, tilt);
        d.next_fire = self.next_after(&mut r, t0, faults::FIRE_PER_DAY);
        d.rng = r;
        d.next_collection = next_collection_after(&self.holidays, &d, t0 - 1);
        d
    }

    fn jitter_ms(&self) -> i64 {
        (self.cfg.interval_ms / 10).min(60_000)
    }

    /// Weights of the step [t, t + interval) per kind: the expected fraction of a
    /// mean day's deposits, and the market-day extra per weekday.
    fn step_weights(&self, t: i64) -> ([f64; N_KINDS], [[f64; 7]; N_KINDS]) {
        let mut w = [0.0; N_KINDS];
        let mut m = [[0.0; 7]; N_KINDS];
        let end = t + self.cfg.interval_ms;
        let mut a = t;
        while a < end {
            let b = ((a.div_euclid(MS_PER_HOUR) + 1) * MS_PER_HOUR).min(end);
            let local = to_local_ms(a);
            let lday = local.div_euclid(MS_PER_DAY);
            let lhour = (local.rem_euclid(MS_PER_DAY) / MS_PER_HOUR) as usize;
            let frac = (b - a) as f64 / MS_PER_DAY as f64;
            let wd = weekday(lday) as usize;
            for k in Kind::ALL {
                let x = self.profiles.day_weight(k, lday, &self.holidays)
                    * self.profiles.hour_weight(k, lhour)
                    * frac;
                w[k.idx()] += x;
                let mk = params(k).market;
                if mk != 1.0 && (7..13).contains(&lhour) && !self.holidays.contains(lday) {
                    m[k.idx()][wd] += x * (mk - 1.0);
                }
            }
            a = b;
        }
        (w, m)
    }

    /// Ambient temperature (°C) at a UTC instant, Montbéliard-like climate:
    /// January mean about 2 °C, July about 19.5 °C, diurnal swing peaking at 15:00.
    fn ambient(&self, t: i64) -> f64 {
        let local = to_local_ms(t);
        let day = local.div_euclid(MS_PER_DAY);
        let doy = super::calendar::day_of_year(day) as f64;
        let hour = local.rem_euclid(MS_PER_DAY) as f64 / MS_PER_HOUR as f64;
        let annual = 10.8 - 8.7 * (std::f64::consts::TAU * (doy - 15.0) / 365.25).cos();
        let amp = 4.0
            + 1.5
                * (std::f64::consts::TAU * (doy - 100.0) / 365.25)
                    .sin()
                    .max(0.0);
        annual + amp * (std::f64::consts::TAU * (hour - 15.0) / 24.0).cos() + self.weather
    }

    fn battery_at(d: &Dev, t: i64, t0: i64) -> f64 {
        d.batt0 - d.drain_per_day * (t - t0) as f64 / MS_PER_DAY as f64
    }

    fn battery_v(pct: f64, temp: f64) -> f64 {
        // Li-SOCl2: flat near 3.6 V, a knee below 10 %, sag in the cold.
        let p = pct.clamp(0.0, 100.0);
        let mut v = 3.67 - 0.12 * (1.0 - p / 100.0) - 0.6 * ((10.0 - p) / 10.0).max(0.0);
        if temp < 0.0 {
            v += 0.004 * temp;
        }
        v
    }

    /// Advance one step: update every device and queue its measurements, sorted.
    fn run_step(&mut self) -> Result<(), SimError> {
        let k = self.step;
        let iv = self.cfg.interval_ms;
        let t = self.cfg.start_ms + iv * k as i64;
        let t_end = t + iv;
        let (w, market) = self.step_weights(t);
        // Day-level: weather anomaly (AR(1) over days), day factors.
        let lday = to_local_ms(t).div_euclid(MS_PER_DAY);
        let new_day = lday != self.local_day;
        if new_day {
            if self.weather_day == i64::MIN {
                self.weather = 2.5 * self.rng.normal();
            } else {
                for _ in self.weather_day..lday {
                    self.weather =
                        0.7 * self.weather + 2.5 * (1.0f64 - 0.49).sqrt() * self.rng.normal();
                }
            }
            self.weather_day = lday;
            self.local_day = lday;
        }
        // Gateways: outages of a few hours now and then.
        for g in 0..usize::from(self.n_gateways) {
            if self.gw_next_outage[g] < t_end {
                let dur = (self.rng.exp(6.0) + 0.5) * MS_PER_HOUR as f64;
                self.gw_down_until[g] = self.gw_next_outage[g] + dur as i64;
                let gap = self.rng.exp(90.0) * MS_PER_DAY as f64 / self.cfg.faults.max(1e-9);
                self.gw_next_outage[g] = if gap > 1e15 {
                    NONE_T
                } else {
                    self.gw_down_until[g] + gap as i64
                };
            }
        }
        let ambient = self.ambient(t + iv / 2);
        let jitter = self.jitter_ms().max(1);
        self.pending.clear();
        self.pending_pos = 0;
        self.stored_arena.clear();
        let t0 = self.cfg.start_ms;
        let n = self.devs.len();
        // Local time offset of the step (the sun's hour; DST switches on an hour boundary).
        let local_offset = super::calendar::paris_offset_ms(t);
        for i in 0..n {
            self.step_device(
                i,
                t,
                t_end,
                &w,
                &market,
                new_day,
                ambient,
                jitter,
                t0,
                local_offset,
            )?;
        }
        // Sort compact keys, not the records.
        self.order.clear();
        self.order
            .extend(self.pending.iter().enumerate().map(|(j, r)| {
                (
                    r.recv_ns,
                    (u64::from(r.dev) << 1) | u64::from(r.interrupt),
                    j as u32,
                )
            }));
        self.order.sort_unstable();
        self.step += 1;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn step_device(
        &mut self,
        i: usize,
        t: i64,
        t_end: i64,
        w: &[f64; N_KINDS],
        market: &[[f64; 7]; N_KINDS],
        new_day: bool,
        ambient: f64,
        jitter: i64,
        t0: i64,
        local_offset: i64,
    ) -> Result<(), SimError> {
        let iv = t_end - t;
        let missed_p = self.cfg.missed_collection_p;
        let gw_down = {
            let d = &self.devs[i];
            let g0 = usize::from(d.gw0);
            let down = |g: usize| self.gw_down_until.get(g).is_some_and(|&u| u > t);
            let first = down(g0);
            first && (d.n_gw < 2 || down((g0 + 1) % usize::from(self.n_gateways)))
        };
        let d = &mut self.devs[i];
        let kp = params(d.kind);
        let mut rng = d.rng;
        if new_day {
            d.day_factor = rng.lognormal_mean(1.0, kp.day_sigma);
            d.surface_mm = kp.surface_sigma * d.depth * rng.normal();
        }
        // Fill increment over the step.
        let mut weight = w[d.kind.idx()];
        if d.market_dow >= 0 {
            weight += market[d.kind.idx()][d.market_dow as usize];
        }
        let inc = d.rate * d.day_factor * weight;
        let f0 = d.fill;
        let frac = |x: i64| (x - t) as f64 / iv as f64;
        // Collection inside this step?
        let mut collected_at = NONE_T;
        let mut residual = 0.0;
        if d.next_collection < t_end {
            let tc = d.next_collection.max(t);
            let fc = f0 + inc * frac(tc);
            // Overflow crossing before the truck.
            if f0 < 1.0 && fc >= 1.0 && d.overflow_start == NONE_T {
                d.overflow_start = t + ((1.0 - f0) / inc.max(1e-300) * iv as f64) as i64;
            }
            d.peak = d.peak.max(fc);
            let missed = rng.chance(missed_p);
            let before = fc.min(kp.heap_max);
            let overflowed = d.overflow_start != NONE_T;
            let after = if missed { fc } else { rng.range(0.0, 0.03) };
            let ev = &mut self.events;
            ev.col_at_ns.push(tc * 1_000_000);
            ev.col_dev.push(d.ext);
            ev.col_fill_before.push(before);
            ev.col_demand.push(fc);
            ev.col_fill_after.push(after.min(kp.heap_max));
            ev.col_overflowed.push(u8::from(overflowed));
            ev.col_missed.push(u8::from(missed));
            if !missed {
                if overflowed {
                    ev.ov_start_ns.push(d.overflow_start * 1_000_000);
                    ev.ov_end_ns.push(tc * 1_000_000);
                    ev.ov_dev.push(d.ext);
                    ev.ov_peak.push(d.peak);
                    ev.ov_excess_l.push((d.peak - 1.0).max(0.0) * d.volume_l);
                }
                d.overflow_start = NONE_T;
                d.peak = after;
                collected_at = tc;
                residual = after;
                // Emptying also clears an obstruction (the crew sees it).
                d.obstruct.1 = d.obstruct.1.min(tc);
            }
            d.next_collection = next_collection_after(&self.holidays, d, tc);
        }
        let f_end = if collected_at != NONE_T {
            residual + inc * (1.0 - frac(collected_at))
        } else {
            f0 + inc
        };
        if collected_at == NONE_T && f0 < 1.0 && f_end >= 1.0 && d.overflow_start == NONE_T {
            d.overflow_start = t + ((1.0 - f0) / inc.max(1e-300) * iv as f64) as i64;
        } else if collected_at != NONE_T
            && residual < 1.0
            && f_end >= 1.0
            && d.overflow_start == NONE_T
        {
            d.overflow_start =
                collected_at + ((1.0 - residual) / inc.max(1e-300) * iv as f64) as i64;
        }
        d.fill = f_end;
        d.peak = d.peak.max(f_end);

        if d.dead {
            d.rng = rng;
            return Ok(());
        }
        let batt = Self::battery_at(d, t, t0);
        if batt <= 0.0 {
            d.dead = true;
            d.rng = rng;
            return Ok(());
        }

        // Fault onsets in this step.
        let faults_on = self.cfg.faults > 0.0;
        if faults_on {
            if d.next_outage < t_end {
                let long = rng.chance(
                    faults::OUTAGE_LONG_PER_DAY
                        / (faults::OUTAGE_LONG_PER_DAY + faults::OUTAGE_SHORT_PER_DAY),
                );
                let dur = if long {
                    rng.range(1.0, 5.0) * MS_PER_DAY as f64
                } else {
                    (rng.exp(faults::OUTAGE_SHORT_MEAN_H) + 1.0) * MS_PER_HOUR as f64
                };
                d.outage = (d.next_outage, d.next_outage + dur as i64);
                let gap = rng.exp(
                    MS_PER_DAY as f64
                        / ((faults::OUTAGE_SHORT_PER_DAY + faults::OUTAGE_LONG_PER_DAY)
                            * self.cfg.faults),
                );
                d.next_outage = if gap > 1e15 {
                    NONE_T
                } else {
                    d.outage.1 + gap as i64
                };
            }
            if d.next_stuck < t_end {
                d.stuck = (
                    d.next_stuck,
                    d.next_stuck + (rng.range(1.0, 10.0) * MS_PER_DAY as f64) as i64,
                );
                d.stuck_mm = d.last_distance;
                let gap = rng.exp(MS_PER_DAY as f64 / (faults::STUCK_PER_DAY * self.cfg.faults));
                d.next_stuck = if gap > 1e15 {
                    NONE_T
                } else {
                    d.stuck.1 + gap as i64
                };
            }
            if d.next_obstruct < t_end {
                d.obstruct = (
                    d.next_obstruct,
                    d.next_obstruct + ((rng.exp(10.0) + 1.0) * MS_PER_HOUR as f64) as i64,
                );
                d.obstruct_mm = d.offset * rng.range(0.2, 1.0) + d.depth * rng.range(0.0, 0.12);
                let per_day = if d.kind.is_bank() {
                    faults::OBSTRUCT_BANK_PER_DAY
                } else {
                    faults::OBSTRUCT_OTHER_PER_DAY
                };
                let gap = rng.exp(MS_PER_DAY as f64 / (per_day * self.cfg.faults));
                d.next_obstruct = if gap > 1e15 {
                    NONE_T
                } else {
                    d.obstruct.1 + gap as i64
                };
            }
        }
        let mut onset: Option<(i64, u8)> = None;
        if faults_on && d.next_tilt < t_end {
            let at = d.next_tilt.max(t);
            d.tilt = (at, at + ((rng.exp(12.0) + 1.0) * MS_PER_HOUR as f64) as i64);
            let per_day = if d.kind == Kind::ParkBin {
                faults::TILT_PARK_PER_DAY
            } else {
                faults::TILT_OTHER_PER_DAY
            };
            let gap = rng.exp(MS_PER_DAY as f64 / (per_day * self.cfg.faults));
            d.next_tilt = if gap > 1e15 {
                NONE_T
            } else {
                d.tilt.1 + gap as i64
            };
            onset = Some((at, condition::TILTED));
        }
        if faults_on && d.next_fire < t_end {
            let at = d.next_fire.max(t);
            d.fire_start = at;
            d.fire_until = at + (rng.range(1.0, 6.0) * MS_PER_HOUR as f64) as i64;
            d.fire_peak = rng.range(60.0, 180.0);
            let gap = rng.exp(MS_PER_DAY as f64 / (faults::FIRE_PER_DAY * self.cfg.faults));
            d.next_fire = if gap > 1e15 {
                NONE_T
            } else {
                d.fire_until + gap as i64
            };
            onset = Some((at, condition::FIRE));
        }

        let caps: &Caps = &MODELS[usize::from(d.model)];
        let lid_p = match d.kind {
            Kind::GroupingPoint => faults::LID_OPEN_GROUPING_P,
            Kind::ParkBin => faults::LID_OPEN_PARK_P,
            _ => 0.0,
        } * self.cfg.faults;
        let no_echo_p = caps.no_echo_p * self.cfg.faults;

        // Interrupt uplink at an alarm onset (before the periodic one if earlier).
        let mut times: [(i64, bool); 2] = [
            (t + d.phase_ms + rng.below(jitter as u64) as i64, false),
            (NONE_T, true),
        ];
        if let Some((at, _)) = onset {
            let at = at.min(t_end - 3_000).max(t);
            times[1] = (at, true);
        }
        for &(tm, interrupt) in &times {
            if tm == NONE_T {
                continue;
            }
            // True fill at the measurement time.
            let fill = if collected_at != NONE_T && tm >= collected_at {
                residual + inc * (frac(tm) - frac(collected_at))
            } else {
                f0 + inc * frac(tm)
            };
            let true_fill = fill.clamp(0.0, kp.heap_max);
            let true_dist = distance_for_fill(true_fill, d.depth, d.offset).max(30.0);
            // What the sensor sees.
            let mut cond = condition::OK;
            let mut dist = Some(
                true_dist
                    + if true_fill > 0.02 { d.surface_mm } else { 0.0 }
                    + caps.noise_mm * rng.fast_normal(),
            );
            let within = |iv: (i64, i64)| iv.0 != NONE_T && tm >= iv.0 && tm < iv.1;
            let tilted = within(d.tilt);
            let fire_temp = if d.fire_start != NONE_T && tm >= d.fire_start && tm < d.fire_until {
                let ramp = ((tm - d.fire_start) as f64 / (30.0 * 60_000.0)).min(1.0);
                d.fire_peak * ramp
            } else {
                0.0
            };
            if tilted {
                cond = condition::TILTED;
                dist = Some(rng.range(d.offset.max(30.0), 3.0 * (d.offset + d.depth)));
            } else if within(d.obstruct) {
                cond = condition::OBSTRUCTED;
                dist = Some(d.obstruct_mm.max(40.0) + caps.noise_mm * rng.fast_normal());
            } else if within(d.stuck) {
                cond = condition::STUCK;
                dist = Some(d.stuck_mm);
            } else if lid_p > 0.0 && rng.chance(lid_p) {
                cond = condition::LID_OPEN;
                dist = if rng.chance(0.5) {
                    None
                } else {
                    Some(rng.range(1.3, 3.0) * (d.offset + d.depth))
                };
            } else if no_echo_p > 0.0 && rng.chance(no_echo_p) {
                cond = condition::NO_ECHO;
                dist = None;
            }
            if fire_temp > 0.0 {
                cond = condition::FIRE;
            }
            let hour_local = ((tm + local_offset).rem_euclid(MS_PER_DAY) / MS_PER_HOUR) as f64;
            let sun = if (8.0..19.0).contains(&hour_local) {
                d.sun * 5.0 * (std::f64::consts::PI * (hour_local - 8.0) / 11.0).sin()
            } else {
                0.0
            };
            let temp = ambient + d.temp_offset + sun + fire_temp + 0.3 * rng.fast_normal();
            let batt_now = Self::battery_at(d, tm, t0).max(0.0);
            let m = Measure {
                distance_mm: dist,
                temperature_c: temp,
                battery_pct: batt_now,
                battery_v: Self::battery_v(batt_now, temp),
                tilt: tilted,
                fire: fire_temp > 0.0 && temp >= 60.0,
                lid_open: cond == condition::LID_OPEN,
                interrupt,
                full: dist.is_some_and(|x| x <= d.offset + 0.1 * d.depth),
                measured_at_ms: tm,
            };
            let rep = caps.report(&m);
            if let Some(x) = dist {
                if cond != condition::STUCK {
                    d.last_distance = x.round().clamp(30.0, 65_000.0);
                }
            }
            d.fcnt = d.fcnt.wrapping_add(1);
            // Delivery.
            let in_outage = within(d.outage) || gw_down;
            let mut delivered = delivered::LIVE;
            let mut stored_start = 0u32;
            let mut stored_len = 0u8;
            if in_outage {
                if caps.stored && !interrupt {
                    delivered = delivered::STORED;
                    if d.stored.len() == MAX_STORED {
                        d.stored.remove(0);
                    }
                    let sd = if rep.distance_mm.is_nan() {
                        None
                    } else {
                        Some(rep.distance_mm as u16)
                    };
                    d.stored.push((tm.div_euclid(60_000) * 60_000, sd));
                } else {
                    delivered = delivered::LOST;
                }
            } else if caps.stored && !d.stored.is_empty() && !interrupt {
                // Ages are whole minutes before this measurement, at most 65535.
                let tm_s = tm.div_euclid(1000) * 1000;
                d.stored
                    .retain(|&(ts, _)| (tm_s - ts) / 60_000 <= 65_535 && ts <= tm_s);
                stored_start = self.stored_arena.len() as u32;
                stored_len = d.stored.len() as u8;
                self.stored_arena.extend_from_slice(&d.stored);
                d.stored.clear();
            }
            let latency = 50 + rng.below(1_200) as i64;
            let rssi = (d.rssi0 + 3.0 * rng.fast_normal()).clamp(-135.0, -30.0);
            let snr = ((rssi + 121.0) * 0.6 + 1.5 * rng.fast_normal()).clamp(-20.0, 13.5);
            let channel = rng.below(8) as u8;
            let mut rep = rep;
            if stored_len > 0 {
                rep.alarm_flags |= alarm::STORED;
            }
            self.pending.push(Rec {
                recv_ns: if delivered == delivered::LIVE {
                    (tm + latency) * 1_000_000 + (rng.below(1_000_000) as i64)
                } else {
                    tm * 1_000_000
                },
                dev: i as u32,
                interrupt,
                delivered,
                cond,
                fcnt: d.fcnt,
                measured_ms: tm,
                true_fill,
                true_dist,
                rep,
                rssi,
                snr: (snr * 10.0).round() / 10.0,
                channel,
                stored_start,
                stored_len,
            });
        }
        d.rng = rng;
        Ok(())
    }

    /// Produce the next chunk of at most about `max_rows` uplinks (whole steps are
    /// split as needed). `None` when the run is over.
    pub fn next_chunk(&mut self, max_rows: usize) -> Result<Option<Chunk>, SimError> {
        if self.finished {
            return Ok(None);
        }
        let max_rows = max_rows.max(1);
        let mut out = std::mem::take(&mut self.events);
        // Reserve once: growing a vector of hundreds of MB by doubling costs copies.
        let cap = max_rows.min(1 << 22);
        out.up_received_ns.reserve(cap);
        out.up_dev.reserve(cap);
        out.up_format.reserve(cap);
        out.up_fport.reserve(cap);
        out.up_fcnt.reserve(cap);
        out.up_rssi.reserve(cap);
        out.up_snr.reserve(cap);
        out.up_payload_offsets.reserve(cap + 1);
        out.up_payload.reserve(cap * 24);
        out.up_env_offsets.reserve(cap + 1);
        if self.cfg.envelopes != EnvelopeMode::Raw {
            out.up_env.reserve(cap * 1300);
        }
        out.up_payload_offsets.push(0);
        out.up_env_offsets.push(0);
        loop {
            if self.pending_pos >= self.pending.len() {
                if self.step >= self.cfg.steps {
                    break;
                }
                self.run_step()?;
                // Events produced by the step belong to this chunk.
                let ev = std::mem::take(&mut self.events);
                merge_events(&mut out, ev);
                continue;
            }
            if out.up_dev.len() >= max_rows {
                break;
            }
            let j = self.order[self.pending_pos].2 as usize;
            let rec = self.pending[j];
            self.pending_pos += 1;
            self.emit(&rec, &mut out)?;
        }
        if self.step >= self.cfg.steps && self.pending_pos >= self.pending.len() {
            // Close the overflows still running at the end.
            let end_ms = self.cfg.start_ms + self.cfg.interval_ms * self.cfg.steps as i64;
            for d in self.devs.iter_mut() {
                if d.overflow_start != NONE_T {
                    out.ov_start_ns
                        .push(d.overflow_start.min(end_ms) * 1_000_000);
                    out.ov_end_ns.push(i64::MIN);
                    out.ov_dev.push(d.ext);
                    out.ov_peak.push(d.peak);
                    out.ov_excess_l.push((d.peak - 1.0).max(0.0) * d.volume_l);
                    d.overflow_start = NONE_T;
                }
            }
            self.finished = true;
        }
        out.step = self.step;
        out.steps = self.cfg.steps;
        if out.is_empty() && self.finished {
            // Keep the final empty chunk only if something at all happened (never
            // return an empty chunk after the last one).
            return Ok(None);
        }
        Ok(Some(out))
    }

    fn emit(&mut self, rec: &Rec, out: &mut Chunk) -> Result<(), SimError> {
        let spec = &self.specs[rec.dev as usize];
        let d = &self.devs[rec.dev as usize];
        let caps = &MODELS[usize::from(d.model)];
        if self.cfg.truth {
            out.tr_measured_ns.push(rec.measured_ms * 1_000_000);
            out.tr_dev.push(d.ext);
            out.tr_fcnt.push(i64::from(rec.fcnt));
            out.tr_delivered.push(rec.delivered);
            out.tr_interrupt.push(u8::from(rec.interrupt));
            out.tr_condition.push(rec.cond);
            out.tr_true_fill.push(rec.true_fill);
            out.tr_true_distance.push(rec.true_dist);
            out.tr_distance.push(rec.rep.distance_mm);
            out.tr_temperature.push(rec.rep.temperature_c);
            out.tr_battery_pct.push(rec.rep.battery_pct);
            out.tr_battery_v.push(rec.rep.battery_v);
            out.tr_tilt.push(rec.rep.tilt);
            out.tr_fire.push(rec.rep.fire);
            out.tr_flags.push(rec.rep.alarm_flags);
        }
        if rec.delivered != delivered::LIVE {
            return Ok(());
        }
        let stored = self
            .stored_arena
            .get(rec.stored_start as usize..rec.stored_start as usize + usize::from(rec.stored_len))
            .unwrap_or(&[]);
        caps.to_reading(&rec.rep, rec.measured_ms, stored, &mut self.reading);
        let start = out.up_payload.len();
        self.codecs[usize::from(d.model)]
            .encode(&self.reading, &mut out.up_payload)
            .map_err(|e| SimError(format!("encoding a {} frame failed: {e}", caps.name)))?;
        let end = out.up_payload.len();
        out.up_payload_offsets.push(offset_i32(end)?);
        out.up_received_ns.push(rec.recv_ns);
        out.up_dev.push(d.ext);
        out.up_format.push(d.env as u8);
        out.up_fport.push(i32::from(caps.fport));
        out.up_fcnt.push(i64::from(rec.fcnt));
        out.up_rssi.push(rec.rssi as f32);
        out.up_snr.push(rec.snr as f32);
        if d.env != Envelope::Raw {
            let as_ns = rec.recv_ns;
            let times = Times {
                gw_ns: as_ns - 35_000_000,
                ns_ns: as_ns - 12_000_000,
                as_ns,
            };
            let radio = Radio {
                rssi: rec.rssi,
                snr: rec.snr,
                sf: d.sf,
                channel: rec.channel,
                n_gw: d.n_gw,
                gw0: d.gw0,
                n_gateways_total: self.n_gateways,
            };
            let ids = DeviceIds {
                dev_eui: spec.dev_eui,
                dev_addr: dev_addr(spec.dev_eui),
                name: &spec.name,
                model: usize::from(d.model),
                kind: spec.kind.name(),
            };
            let ctx = &self.env_ctx;
            let frame_hash = hash2(
                spec.dev_eui ^ self.seed_hash,
                u64::from(rec.fcnt) ^ (u64::from(rec.interrupt) << 40),
            );
            let payload = out.up_payload.get(start..end).unwrap_or(&[]);
            if d.env == Envelope::Ttn {
                json::write_ttn(
                    &mut out.up_env,
                    &mut self.tf,
                    ctx,
                    &ids,
                    caps.fport,
                    rec.fcnt,
                    payload,
                    times,
                    &radio,
                    frame_hash,
                );
            } else {
                json::write_chirpstack(
                    &mut out.up_env,
                    &mut self.tf,
                    ctx,
                    &ids,
                    caps.fport,
                    rec.fcnt,
                    payload,
                    times,
                    &radio,
                    frame_hash,
                );
            }
        }
        out.up_env_offsets.push(offset_i32(out.up_env.len())?);
        Ok(())
    }
}

fn offset_i32(n: usize) -> Result<i32, SimError> {
    i32::try_from(n)
        .map_err(|_| SimError("a chunk grew past 2 GiB: ask for fewer rows per chunk".into()))
}

/// TTN-style device address (NetID 0x13 prefix 0x26/0x27) from the DevEUI.
pub fn dev_addr(dev_eui: u64) -> u32 {
    0x2600_0000 | (mix64(dev_eui) as u32 & 0x01ff_ffff)
}

/// UTC time of the first collection strictly after `t` (UTC ms).
fn next_collection_after(holidays: &Holidays, d: &Dev, t: i64) -> i64 {
    let local = to_local_ms(t);
    let day = local.div_euclid(MS_PER_DAY);
    let minute_ms = i64::from(d.sched.minute) * 60_000;
    let today_at = from_local_ms(day * MS_PER_DAY + minute_ms);
    let inclusive = today_at > t;
    match d.sched.next_day(day, inclusive, holidays) {
        Some(nd) => from_local_ms(nd * MS_PER_DAY + minute_ms),
        None => NONE_T,
    }
}

fn merge_events(out: &mut Chunk, ev: Chunk) {
    out.col_at_ns.extend(ev.col_at_ns);
    out.col_dev.extend(ev.col_dev);
    out.col_fill_before.extend(ev.col_fill_before);
    out.col_demand.extend(ev.col_demand);
    out.col_fill_after.extend(ev.col_fill_after);
    out.col_overflowed.extend(ev.col_overflowed);
    out.col_missed.extend(ev.col_missed);
    out.ov_start_ns.extend(ev.ov_start_ns);
    out.ov_end_ns.extend(ev.ov_end_ns);
    out.ov_dev.extend(ev.ov_dev);
    out.ov_peak.extend(ev.ov_peak);
    out.ov_excess_l.extend(ev.ov_excess_l);
}

/// Spread one collection policy into the schedule a device would get (exposed for tests).
pub fn schedule_of(seed: u64, kind: Kind, dev_eui: u64) -> Schedule {
    let seed_hash = mix64(seed ^ 0x7469_6473_7472_6561);
    let mut rng = SplitMix64::new(hash2(seed_hash, dev_eui));
    let (opts, period) = schedule_options(kind);
    let weekdays = opts[rng.below(opts.len() as u64) as usize];
    Schedule {
        weekdays,
        period_weeks: period,
        parity: rng.below(u64::from(period)) as u8,
        minute: (6 * 60 + rng.below(6 * 60)) as u16,
    }
}
