//! Rust-only timing of `decode_batch` over flat Arrow-like buffers (diagnostic):
//! `cargo run --release -p tidstream-core --example decode_bench [frames] [repeats] [model]`.
//! Prints the best wall time and the best CPU time of the decoding thread per frame
//! (the CPU time is the steadier figure on a shared machine: time-slicing does not
//! count, page faults taken for the fresh output columns do). For dragino-ldds75 it
//! also times the numba baseline's loop written in plain Rust (one pass per row,
//! ordinary stores): the reference for how a batch beyond the caches should scale.
use _core::codec::{FlatPayloads, FportSource, Registry};
use _core::reading::Reading;
use std::time::Instant;

fn main() {
    // Keep freed output buffers in the heap for the next repeat, as a long-running
    // Python process does (glibc would otherwise give them back to the kernel after
    // every repeat and each decode would time fresh-page faults).
    // SAFETY: mallopt only changes allocator thresholds.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2_000_000);
    let only = std::env::args().nth(3).unwrap_or_default();
    for model in ["milesight-em310-udl", "dragino-ldds75", "tid1"] {
        if !only.is_empty() && only != model {
            continue;
        }
        let c = Registry::global().get(model).unwrap();
        let mut data = Vec::new();
        let mut offsets = vec![0i32];
        let mut x = 12345u64;
        for i in 0..n {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let r = Reading {
                distance_mm: Some((x % 4000) as f64 + 25.0),
                battery_pct: Some((x % 101) as f64),
                battery_v: Some(2.5 + (x % 1000) as f64 / 1000.0),
                temperature_c: Some((x % 900) as f64 / 10.0 - 40.0),
                tilt: Some(x.is_multiple_of(20)),
                fire_alarm: Some(false),
                measured_at_ms: Some(1_700_000_000_000 + i as i64 * 1000),
                ..Reading::default()
            };
            c.encode(&r, &mut data).unwrap();
            offsets.push(data.len() as i32);
        }
        let src = FlatPayloads {
            data: &data,
            offsets: &offsets,
            validity: None,
            validity_bit_offset: 0,
        };
        let mut best = f64::MAX;
        let mut best_cpu = f64::MAX;
        let reps: usize = std::env::args()
            .nth(2)
            .and_then(|s| s.parse().ok())
            .unwrap_or(15);
        let (mut nb_best, mut nb_cpu) = (f64::MAX, f64::MAX);
        for _ in 0..reps {
            if model == "dragino-ldds75" {
                // The numba baseline's loop (benches/baselines.py `ldds75`), in Rust:
                // one pass per row, ordinary stores into fresh columns.
                let (t, c0) = (Instant::now(), thread_cpu_s());
                std::hint::black_box(ldds75_plain(&data, &offsets));
                nb_best = nb_best.min(t.elapsed().as_secs_f64());
                nb_cpu = nb_cpu.min(thread_cpu_s() - c0);
            }
            let (t, c0) = (Instant::now(), thread_cpu_s());
            let cols = c.decode_batch(&src, &FportSource::None);
            let (dt, dc) = (t.elapsed().as_secs_f64(), thread_cpu_s() - c0);
            best_cpu = best_cpu.min(dc);
            assert_eq!(cols.error_count, 0);
            std::hint::black_box(cols);
            best = best.min(dt);
        }
        println!(
            "{model:22} {:6.2} ns/frame wall, {:6.2} ns/frame thread CPU",
            best / n as f64 * 1e9,
            best_cpu / n as f64 * 1e9
        );
        if nb_best < f64::MAX {
            println!(
                "{:22} {:6.2} ns/frame wall, {:6.2} ns/frame thread CPU",
                "  numba-like plain loop",
                nb_best / n as f64 * 1e9,
                nb_cpu / n as f64 * 1e9
            );
        }
    }
}

/// The numba baseline's LDDS75 kernel as a plain Rust loop (the reference the
/// columnar path is compared with at large batches): (distance, battery, temperature,
/// ok) columns, one pass per row, ordinary stores.
#[allow(clippy::type_complexity)]
fn ldds75_plain(data: &[u8], offsets: &[i32]) -> (Vec<f64>, Vec<f64>, Vec<f64>, Vec<bool>) {
    let n = offsets.len() - 1;
    let (mut dist, mut bat, mut temp, mut ok) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for k in 0..n {
        let i = offsets[k] as usize;
        if offsets[k + 1] as usize - i < 8 {
            ok.push(false);
            dist.push(f64::NAN);
            bat.push(f64::NAN);
            temp.push(f64::NAN);
            continue;
        }
        let b = ((u32::from(data[i]) << 8) | u32::from(data[i + 1])) & 0x3FFF;
        let d = (u32::from(data[i + 2]) << 8) | u32::from(data[i + 3]);
        let t = i16::from_be_bytes([data[i + 5], data[i + 6]]);
        ok.push(true);
        bat.push(f64::from(b) / 1000.0);
        dist.push(if d == 0 || d == 20 {
            f64::NAN
        } else {
            f64::from(d)
        });
        temp.push(f64::from(t) / 10.0);
    }
    (dist, bat, temp, ok)
}

/// CPU time of the calling thread, seconds.
fn thread_cpu_s() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}
