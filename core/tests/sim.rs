//! Simulator integration tests (pure Rust): determinism, every frame decodes to what
//! was encoded, envelopes parse, collections follow the schedule, fill statistics.

use _core::codec::Registry;
use _core::envelope::{parse_one, Format};
use _core::reading::Reading;
use _core::sim::calendar::{days_from_civil, to_local_ms, weekday, Holidays, MS_PER_DAY};
use _core::sim::engine::schedule_of;
use _core::sim::{Chunk, DeviceSpec, EnvelopeMode, Kind, Schedule, SimConfig, Simulator, MODELS};

fn fleet(n: usize) -> Vec<DeviceSpec> {
    (0..n)
        .map(|i| {
            let kind = Kind::ALL[i % 5];
            let (depth, offset, vol) = match kind {
                Kind::GroupingPoint => (1000.0, 100.0, 770.0),
                Kind::ParkBin => (600.0, 60.0, 100.0),
                _ => (1600.0, 200.0, 3000.0),
            };
            let model = (i / 5) % MODELS.len();
            DeviceSpec {
                kind,
                model,
                dev_eui: (MODELS[model].eui_prefix << 40) | i as u64,
                name: format!("c-{i}"),
                depth_mm: depth,
                offset_mm: offset,
                volume_l: vol,
                market_dow: if i % 7 == 0 { 2 } else { -1 },
            }
        })
        .collect()
}

fn start(y: i32, m: u32, d: u32) -> i64 {
    days_from_civil(y, m, d) * MS_PER_DAY
}

fn run(devs: Vec<DeviceSpec>, cfg: SimConfig, rows: usize) -> Vec<Chunk> {
    let mut sim = Simulator::new(devs, cfg).expect("valid config");
    let mut out = Vec::new();
    while let Some(c) = sim.next_chunk(rows).expect("chunk") {
        out.push(c);
    }
    out
}

fn digest(chunks: &[Chunk]) -> (Vec<i64>, Vec<u8>, Vec<u8>, Vec<f64>) {
    let mut t = Vec::new();
    let mut p = Vec::new();
    let mut e = Vec::new();
    let mut f = Vec::new();
    for c in chunks {
        t.extend(&c.up_received_ns);
        p.extend(&c.up_payload);
        e.extend(&c.up_env);
        f.extend(&c.tr_true_fill);
    }
    (t, p, e, f)
}

#[test]
fn same_seed_same_output_different_seed_different_output() {
    let cfg = |seed| SimConfig {
        seed,
        start_ms: start(2025, 3, 1),
        steps: 24 * 5,
        ..SimConfig::default()
    };
    let a = digest(&run(fleet(60), cfg(1), 500));
    let b = digest(&run(fleet(60), cfg(1), 500));
    let c = digest(&run(fleet(60), cfg(2), 500));
    assert_eq!(a, b);
    assert_ne!(a.1, c.1);
    assert_ne!(a.3, c.3);
    // Chunk size does not change the content.
    let d = digest(&run(fleet(60), cfg(1), 37));
    assert_eq!(a, d);
}

#[test]
fn uplinks_are_in_time_order_and_every_frame_decodes_to_what_was_encoded() {
    let cfg = SimConfig {
        seed: 5,
        start_ms: start(2025, 6, 2),
        steps: 24 * 10,
        faults: 3.0,
        ..SimConfig::default()
    };
    let devs = fleet(60);
    let chunks = run(devs.clone(), cfg, 1000);
    let mut last = i64::MIN;
    let mut reading = Reading::default();
    let (mut frames, mut stored_frames, mut ttn, mut cs) = (0, 0, 0, 0);
    for c in &chunks {
        // Truth rows of delivered readings, by (device, fcnt).
        let mut truth = std::collections::HashMap::new();
        for j in 0..c.tr_dev.len() {
            if c.tr_delivered[j] == 1 {
                truth.insert((c.tr_dev[j], c.tr_fcnt[j]), j);
            }
        }
        for i in 0..c.uplinks() {
            assert!(c.up_received_ns[i] >= last, "time order");
            last = c.up_received_ns[i];
            let dev = c.up_dev[i] as usize;
            let model = MODELS[devs[dev].model].name;
            let codec = Registry::global().get(model).unwrap();
            let p = &c.up_payload
                [c.up_payload_offsets[i] as usize..c.up_payload_offsets[i + 1] as usize];
            reading.clear();
            codec
                .decode(p, Some(c.up_fport[i] as u8), &mut reading)
                .unwrap_or_else(|e| panic!("{model}: {e}"));
            let j = truth[&(c.up_dev[i], c.up_fcnt[i])];
            let want = c.tr_distance[j];
            match reading.distance_mm {
                Some(d) => assert_eq!(d, want, "{model} distance"),
                None => assert!(want.is_nan(), "{model}: no distance but truth {want}"),
            }
            let t = c.tr_temperature[j];
            if !t.is_nan() {
                assert!(
                    (reading.temperature_c.unwrap() - t).abs() < 1e-9,
                    "{model} temperature"
                );
            }
            let b = c.tr_battery_pct[j];
            if !b.is_nan() {
                assert_eq!(reading.battery_pct, Some(b));
            }
            let v = c.tr_battery_v[j];
            if !v.is_nan() {
                assert!(
                    (reading.battery_v.unwrap() - v).abs() < 1e-9,
                    "{model} battery_v"
                );
            }
            if c.tr_tilt[j] >= 0 {
                assert_eq!(reading.tilt, Some(c.tr_tilt[j] == 1), "{model} tilt");
            }
            if !reading.stored.is_empty() {
                stored_frames += 1;
            }
            // The envelope parses to the same payload, fcnt, fport and device.
            let env = &c.up_env[c.up_env_offsets[i] as usize..c.up_env_offsets[i + 1] as usize];
            let fmt = if c.up_format[i] == 0 {
                Format::TtnV3
            } else {
                Format::ChirpstackV4
            };
            if c.up_format[i] == 0 {
                ttn += 1
            } else {
                cs += 1
            }
            let up = parse_one(fmt, env)
                .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(env)));
            assert_eq!(up.payload, p);
            assert_eq!(i64::from(up.fcnt), c.up_fcnt[i]);
            assert_eq!(i32::from(up.fport), c.up_fport[i]);
            assert_eq!(up.dev_eui, format!("{:016x}", devs[dev].dev_eui));
            assert_eq!(up.received_at_ns, Some(c.up_received_ns[i]));
            frames += 1;
        }
    }
    assert!(frames > 10_000);
    assert!(
        stored_frames > 0,
        "some tid1 devices resend stored readings"
    );
    let share = f64::from(ttn) / f64::from(ttn + cs);
    assert!((0.5..0.9).contains(&share), "TTN share {share}");
}

#[test]
fn collections_follow_the_fixed_schedule() {
    let devs = fleet(50);
    let cfg = SimConfig {
        seed: 3,
        start_ms: start(2025, 4, 7),
        steps: 24 * 28,
        faults: 0.0,
        missed_collection_p: 0.0,
        ..SimConfig::default()
    };
    let chunks = run(devs.clone(), cfg, 100_000);
    let mut per_dev = vec![Vec::new(); devs.len()];
    for c in &chunks {
        for j in 0..c.col_dev.len() {
            per_dev[c.col_dev[j] as usize].push(c.col_at_ns[j] / 1_000_000);
        }
    }
    for (i, times) in per_dev.iter().enumerate() {
        let s = schedule_of(3, devs[i].kind, devs[i].dev_eui);
        let h = Holidays::french(days_from_civil(2025, 1, 1), days_from_civil(2025, 12, 31));
        let expected = 28.0 / s.mean_interval_days();
        assert!(
            (times.len() as f64 - expected).abs() <= 1.5,
            "device {i}: {} collections, expected {expected}",
            times.len()
        );
        for &t in times {
            let local = to_local_ms(t);
            let day = local.div_euclid(MS_PER_DAY);
            let minute = (local.rem_euclid(MS_PER_DAY) / 60_000) as u16;
            assert_eq!(minute, s.minute, "collection at the round's time");
            // A round planned on a public holiday (Easter Monday 21 April, 1 May)
            // moves to the next working day.
            let planned = (0..=3)
                .map(|k| day - k)
                .find(|&p| s.planned_on(p) && Schedule::shifted(p, &h) == day);
            assert!(
                planned.is_some(),
                "device {i} collected on weekday {}",
                weekday(day)
            );
            assert!(!h.contains(day), "no collection on a holiday");
        }
    }
}

#[test]
fn fill_statistics_are_in_the_published_range() {
    let devs = fleet(300);
    let cfg = SimConfig {
        seed: 11,
        start_ms: start(2025, 3, 3),
        steps: 24 * 60,
        ..SimConfig::default()
    };
    let chunks = run(devs.clone(), cfg, 1 << 20);
    let (mut n, mut sum, mut over) = (0.0, 0.0, 0.0);
    for c in &chunks {
        for j in 0..c.col_dev.len() {
            if c.col_missed[j] == 1 {
                continue;
            }
            let k = devs[c.col_dev[j] as usize].kind;
            if k != Kind::ParkBin {
                n += 1.0;
                sum += c.col_fill_before[j];
            }
            over += f64::from(c.col_overflowed[j]);
        }
    }
    let mean = sum / n;
    assert!(
        (0.489..=0.63).contains(&mean),
        "mean fill at collection {mean}"
    );
    let total: usize = chunks.iter().map(|c| c.col_dev.len()).sum();
    let share = over / total as f64;
    assert!((0.005..=0.10).contains(&share), "overflow share {share}");
}

#[test]
fn bad_arguments_are_errors_not_panics() {
    let cfg = SimConfig {
        interval_ms: 1000,
        ..SimConfig::default()
    };
    let e = Simulator::new(fleet(3), cfg).err().unwrap();
    assert!(e.0.contains("interval"), "{e}");
    assert!(Simulator::new(Vec::new(), SimConfig::default()).is_err());
    let mut devs = fleet(2);
    devs[1].dev_eui = devs[0].dev_eui;
    assert!(Simulator::new(devs, SimConfig::default())
        .err()
        .unwrap()
        .0
        .contains("duplicate"));
    let mut devs = fleet(2);
    devs[0].depth_mm = f64::NAN;
    assert!(Simulator::new(devs, SimConfig::default()).is_err());
    let mut devs = fleet(2);
    devs[0].name = "a\"b".into();
    assert!(Simulator::new(devs, SimConfig::default()).is_err());
    let cfg = SimConfig {
        envelopes: EnvelopeMode::Mixed { ttn_share: 2.0 },
        ..SimConfig::default()
    };
    assert!(Simulator::new(fleet(2), cfg).is_err());
}

#[test]
fn raw_mode_has_no_envelopes() {
    let cfg = SimConfig {
        envelopes: EnvelopeMode::Raw,
        steps: 10,
        ..SimConfig::default()
    };
    let chunks = run(fleet(10), cfg, 1000);
    let c = &chunks[0];
    assert!(c.uplinks() > 0);
    assert!(c.up_env.is_empty());
    assert!(c.up_format.iter().all(|&f| f == 2));
}

/// Throughput check (run with `cargo test --release --test sim -- --ignored --nocapture`).
#[test]
#[ignore = "benchmark, not a test: cargo test --release --test sim bench_generation -- --ignored --nocapture"]
fn bench_generation() {
    for (mode, rows) in [
        (EnvelopeMode::Raw, 262_144),
        (EnvelopeMode::Mixed { ttn_share: 0.7 }, 262_144),
        (EnvelopeMode::Mixed { ttn_share: 0.7 }, 16_384),
    ] {
        let cfg = SimConfig {
            seed: 1,
            start_ms: start(2025, 3, 3),
            steps: 24 * 3,
            envelopes: mode,
            truth: false,
            ..SimConfig::default()
        };
        let mut sim = Simulator::new(fleet(10_000), cfg).unwrap();
        let t0 = std::time::Instant::now();
        let mut frames = 0;
        while let Some(c) = sim.next_chunk(rows).unwrap() {
            frames += c.uplinks();
        }
        let s = t0.elapsed().as_secs_f64();
        println!(
            "{mode:?} ({rows} rows per chunk): {frames} frames in {s:.2} s = {:.2} M frames/s",
            frames as f64 / s / 1e6
        );
    }
}
