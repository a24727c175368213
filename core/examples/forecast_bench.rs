//! Rust-only timing of `Forecaster::update` on the bench workload's shape (diagnostic,
//! for profiling): `cargo run --release -p tidstream-core --example forecast_bench
//! [containers] [warm days] [timed days] [calibrate 0/1] [repeats] [simd 0/1]`. Hourly readings, time-major,
//! log-normal rates with a day profile, emptying at 0.75-0.95, noise, lid-open and
//! obstruction readings (like `benches/bench_forecast.py`'s `make_workload`); one
//! `update` per day. Prints ns/reading of the timed days (thread CPU time, best of the repeats, each
//! from a copy of the warmed state) and a checksum of the outputs.
use _core::forecast::{Config, Forecaster, IdSource};

/// CPU time of this thread in seconds (on a shared machine, wall time counts the
/// other processes' time slices too).
fn cpu_s() -> f64 {
    #[cfg(target_os = "linux")]
    {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes one timespec we own.
        unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
    }
    #[cfg(not(target_os = "linux"))]
    {
        use std::time::{SystemTime, UNIX_EPOCH};
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
    }
}

struct Rng(u64);

impl Rng {
    fn u(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        let (a, b) = (self.u().max(1e-300), self.u());
        (-2.0 * a.ln()).sqrt() * (std::f64::consts::TAU * b).cos()
    }
}

fn main() {
    let arg = |i: usize, d: usize| -> usize {
        std::env::args()
            .nth(i)
            .and_then(|s| s.parse().ok())
            .unwrap_or(d)
    };
    let (n, warm, timed, calibrate) = (arg(1, 100_000), arg(2, 7), arg(3, 3), arg(4, 1) == 1);
    let repeats = arg(5, 3).max(1);
    let simd = arg(6, 1) == 1;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let rate: Vec<f64> = (0..n)
        .map(|_| (0.08f64.ln() + 0.6 * rng.normal()).exp() / 24.0)
        .collect();
    let empty_at: Vec<f64> = (0..n).map(|_| 0.75 + 0.2 * rng.u()).collect();
    let mut level: Vec<f64> = (0..n).map(|_| 0.6 * rng.u()).collect();
    let hod_w =
        |h: usize| if (7..21).contains(&h) { 1.5 } else { 0.2 } / (14.0 * 1.5 + 10.0 * 0.2) * 24.0;
    let ids: Vec<i64> = (0..24 * n).map(|r| (r % n) as i64).collect();
    let t0 = 1_735_689_600i64;
    let mut fc = Forecaster::new(Config {
        calibrate,
        ..Config::default()
    })
    .unwrap();
    fc.simd = simd;
    let mut days: Vec<(Vec<i64>, Vec<f64>)> = Vec::new();
    for d in 0..warm + timed {
        let mut t = vec![0i64; 24 * n];
        let mut x = vec![0f64; 24 * n];
        for h in 0..24 {
            let hh = d * 24 + h;
            for c in 0..n {
                let g = -0.5 * (rng.u().max(1e-300).ln() + rng.u().max(1e-300).ln());
                level[c] += rate[c] * hod_w(h) * g;
                if level[c] > empty_at[c] {
                    level[c] = 0.03 * rng.u();
                }
                let u = rng.u();
                let obs = if u < 0.003 {
                    0.0
                } else if u > 0.998 {
                    0.97
                } else {
                    level[c] + 0.005 * rng.normal()
                };
                t[h * n + c] = t0 + hh as i64 * 3600;
                x[h * n + c] = (obs * 1e4).round() / 1e4;
            }
        }
        days.push((t, x));
    }
    for (t, x) in &days[..warm] {
        fc.update(IdSource::Int(&ids), t, x, None).unwrap();
    }
    let warmed = fc.clone();
    let mut secs = f64::INFINITY;
    for _ in 0..repeats {
        fc = warmed.clone();
        let a = cpu_s();
        for (t, x) in &days[warm..] {
            fc.update(IdSource::Int(&ids), t, x, None).unwrap();
        }
        secs = secs.min(cpu_s() - a);
    }
    let rows = (timed * 24 * n) as f64;
    let at = days.last().unwrap().0[24 * n - 1];
    let a = cpu_s();
    let p = fc.predict(at, &[24.0, 48.0, 72.0], None).unwrap();
    let predict_s = cpu_s() - a;
    let acc = fc.accountability(None);
    let mut h = 0u64;
    let mut mix = |v: f64| h = (h ^ v.to_bits()).wrapping_mul(0x100_0000_01b3);
    for v in p.p10.iter().chain(&p.p50).chain(&p.p90).chain(&p.p_over) {
        mix(*v);
    }
    for v in acc.mae.iter().chain(&acc.coverage) {
        mix(*v);
    }
    for (_, lo, hi) in fc.interval_levels() {
        mix(lo);
        mix(hi);
    }
    println!(
        "{n} containers, {timed} days timed (calibrate={calibrate}, simd={simd}): {:.1} ns/reading, {:.2} M readings/s; predict {:.0} ns/container; scored {} checksum {h:016x}",
        secs / rows * 1e9,
        rows / secs / 1e6,
        predict_s / n as f64 * 1e9,
        fc.stats.scored
    );
}
