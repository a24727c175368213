//! Rust-only timing of `envelope::decode_uplinks` (diagnostic, no Python involved):
//! `cargo run --release -p tidstream-core --example envelope_bench FILE [ttn|chirpstack] [repeats]`.
//! Times the default walk (over a structural index where the CPU has AVX-512, see
//! `core/src/envelope/index.rs`) and the byte-wise walk alone, alternating repeats
//! so that both see the same machine load.
//!
//! `FILE` holds one compact JSON envelope per line, e.g. written by
//! `benches/baselines.py` (`make_ttn_messages` / `make_chirpstack_messages` joined with
//! `\n`). Each batch is timed three times: from one flat Arrow-like buffer (the BinaryArray
//! input), from separately allocated messages (what a `list[bytes]` looks like to
//! the core) allocated one after the other, and from ones spaced as `orjson.dumps`
//! leaves them (~8 kB apart; the case the list path's prefetching is for). Prints the
//! best wall and thread-CPU time per message.
use _core::codec::FlatPayloads;
use _core::envelope::{decode_uplinks, decode_uplinks_bytewise, Format};
use std::time::Instant;

fn main() {
    // Keep freed output buffers in the heap for the next repeat, as a long-running
    // Python process does.
    // SAFETY: mallopt only changes allocator thresholds.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .expect("usage: envelope_bench FILE [ttn|chirpstack] [repeats]");
    let format = Format::parse(&args.next().unwrap_or_else(|| "ttn".into())).expect("format");
    let reps: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(15);
    let text = std::fs::read(&path).expect("read FILE");
    let mut data = Vec::with_capacity(text.len());
    let mut offsets = vec![0i32];
    let mut owned: Vec<Vec<u8>> = Vec::new();
    // As `orjson.dumps` leaves a list of `bytes`: each message ~8 kB from the next (a
    // freed 6.4 kB buffer between two), on 4 KiB pages.
    let mut spaced: Vec<Vec<u8>> = Vec::new();
    let mut spacers: Vec<Vec<u8>> = Vec::new();
    for line in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        data.extend_from_slice(line);
        offsets.push(i32::try_from(data.len()).expect("under 2 GiB"));
        owned.push(line.to_vec());
        spacers.push(vec![0u8; 6400]);
        spaced.push(line.to_vec());
    }
    drop(spacers);
    let n = owned.len();
    let flat = FlatPayloads {
        data: &data,
        offsets: &offsets,
        validity: None,
        validity_bit_offset: 0,
    };
    let inputs: [(&str, &dyn _core::codec::PayloadSource); 3] =
        [("flat", &flat), ("scattered", &owned), ("spaced", &spaced)];
    type Decode = fn(Format, &dyn _core::codec::PayloadSource) -> _core::envelope::UplinkColumns;
    let walks: [(&str, Decode); 2] = [
        ("indexed", |f, s| decode_uplinks(f, s)),
        ("bytewise", decode_uplinks_bytewise),
    ];
    for (name, src) in inputs {
        let mut best = [(f64::MAX, f64::MAX); 2];
        for _ in 0..reps {
            for ((_, decode), b) in walks.iter().zip(best.iter_mut()) {
                let (t, c0) = (Instant::now(), thread_cpu_s());
                let cols = decode(format, src);
                let (dt, dc) = (t.elapsed().as_secs_f64(), thread_cpu_s() - c0);
                assert_eq!(cols.error_count, 0, "{:?}", cols.error.get(0));
                std::hint::black_box(cols);
                b.0 = b.0.min(dt);
                b.1 = b.1.min(dc);
            }
        }
        for ((walk, _), (wall, cpu)) in walks.iter().zip(best) {
            println!(
                "{format} {name:9} {walk:8} {n} msgs: {:7.1} ns/msg wall, {:7.1} ns/msg thread CPU",
                wall / n as f64 * 1e9,
                cpu / n as f64 * 1e9
            );
        }
    }
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
