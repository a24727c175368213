//! Property tests of every codec, without Python: arbitrary bytes never panic (both
//! outputs), batches have one row per payload, encode-then-decode round-trips, and
//! every cut of a tid1 frame is a truncation at the cut field.

use _core::codec::{Codec, FportSource, Registry};
use _core::reading::{Reading, StoredReading};
use proptest::prelude::*;

fn all() -> Vec<std::sync::Arc<dyn Codec>> {
    let r = Registry::global();
    r.names().iter().filter_map(|n| r.get(n)).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(payload in proptest::collection::vec(any::<u8>(), 0..200), fport in proptest::option::of(any::<u8>())) {
        for c in all() {
            let _ = c.decode_vendor(&payload, fport);
            let mut r = Reading::default();
            let res = c.decode(&payload, fport, &mut r);
            if let Err(e) = res {
                prop_assert!(e.offset <= payload.len() + 25, "{}: offset {} for {} bytes", c.info().name, e.offset, payload.len());
            }
        }
    }

    #[test]
    fn batches_have_one_row_per_payload(payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..30)) {
        for c in all() {
            let cols = c.decode_batch(&payloads, &FportSource::None);
            prop_assert_eq!(cols.len, payloads.len());
            prop_assert_eq!(cols.ok.len, payloads.len());
        }
    }

    #[test]
    fn encode_decode_round_trip(dist in 25u32..4000, bat in 0u32..=100, mv in 2100u32..3600, t10 in 0i32..500, tilt in any::<bool>(), secs in 1_600_000_000i64..2_000_000_000) {
        let reading = Reading {
            distance_mm: Some(f64::from(dist)),
            battery_pct: Some(f64::from(bat)),
            battery_v: Some(f64::from(mv) / 1000.0),
            temperature_c: Some(f64::from(t10) / 10.0),
            tilt: Some(tilt),
            measured_at_ms: Some(secs * 1000),
            ..Reading::default()
        };
        for c in all() {
            if !c.info().can_encode {
                continue;
            }
            let mut frame = Vec::new();
            c.encode(&reading, &mut frame).unwrap();
            let mut back = Reading::default();
            c.decode(&frame, None, &mut back).unwrap_or_else(|e| panic!("{}: {e}", c.info().name));
            let d = back.distance_mm.unwrap();
            prop_assert!((d - f64::from(dist)).abs() < 1e-6, "{}: {} != {}", c.info().name, d, dist);
        }
    }

    #[test]
    fn every_cut_of_a_tid1_frame_is_a_truncation(n in 0usize..6, secs in 1_600_000_000i64..2_000_000_000) {
        let c = Registry::global().get("tid1").unwrap();
        let t = secs * 1000;
        let reading = Reading {
            distance_mm: Some(700.0),
            measured_at_ms: Some(t),
            stored: (0..n).map(|i| StoredReading { measured_at_ms: t - 60_000 * (i as i64 + 1), distance_mm: Some(800.0), temperature_c: None }).collect(),
            ..Reading::default()
        };
        let mut frame = Vec::new();
        c.encode(&reading, &mut frame).unwrap();
        for k in 1..frame.len() {
            let mut r = Reading::default();
            let e = c.decode(&frame[..k], None, &mut r).unwrap_err();
            prop_assert_eq!(e.kind.name(), "truncated");
            prop_assert!(e.offset <= k);
        }
    }
}

// ---------------------------------------------------------------------------------
// The columnar batch paths (layout shapes, tid1) against the per-frame path, on Arrow
// layouts with nulls, mixed shapes, damaged frames and per-row fPorts, over several
// chunks of rows.

use _core::codec::{decode_rows, FlatPayloads};
use _core::reading::{BoolCol, PrimCol, ReadingColumns};

/// A frame of `model` from `seed`: a valid encoded reading (varied optional fields),
/// sometimes damaged (cut, a byte changed, bytes appended, random bytes).
fn frame(c: &dyn Codec, seed: u64) -> Option<Vec<u8>> {
    let mut x = seed | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let pick = |v: u64, k: u64| v.is_multiple_of(k);
    let r = Reading {
        distance_mm: (!pick(next(), 9)).then(|| (next() % 4000) as f64),
        battery_pct: (!pick(next(), 7)).then(|| (next() % 101) as f64),
        battery_v: (!pick(next(), 7)).then(|| 2.1 + (next() % 1500) as f64 / 1000.0),
        temperature_c: (!pick(next(), 5)).then(|| (next() % 900) as f64 / 10.0 - 40.0),
        tilt: (!pick(next(), 4)).then(|| pick(next(), 3)),
        fire_alarm: (!pick(next(), 4)).then(|| pick(next(), 5)),
        alarm_flags: (next() % 1024) as u16 & !(1 << 9),
        measured_at_ms: Some(1_700_000_000_000 + (next() % 1_000_000) as i64 * 1000),
        stored: if pick(next(), 6) {
            (0..next() % 3)
                .map(|i| StoredReading {
                    measured_at_ms: 1_700_000_000_000 - 60_000 * (i as i64 + 1),
                    distance_mm: Some(500.0),
                    temperature_c: None,
                })
                .collect()
        } else {
            Vec::new()
        },
        ..Reading::default()
    };
    let mut f = Vec::new();
    if !c.info().can_encode || c.encode(&r, &mut f).is_err() || pick(next(), 11) {
        f = (0..next() % 24).map(|_| next() as u8).collect();
    }
    match next() % 12 {
        0 => f.truncate((next() as usize) % (f.len() + 1)),
        1 if !f.is_empty() => {
            let i = (next() as usize) % f.len();
            f[i] = next() as u8;
        }
        2 => f.push(next() as u8),
        3 => return None,
        _ => {}
    }
    Some(f)
}

fn same_prim<T: Copy + Default + PartialEq + std::fmt::Debug>(
    name: &str,
    a: &Option<PrimCol<T>>,
    b: &Option<PrimCol<T>>,
    n: usize,
    eq: impl Fn(T, T) -> bool,
) -> Result<(), TestCaseError> {
    match (a, b) {
        (None, None) => {}
        (Some(a), Some(b)) => {
            prop_assert_eq!(a.null_count, b.null_count, "{} null_count", name);
            for i in 0..n {
                match (a.get(i), b.get(i)) {
                    (Some(x), Some(y)) => {
                        prop_assert!(eq(x, y), "{} row {}: {:?} != {:?}", name, i, x, y)
                    }
                    (x, y) => prop_assert!(
                        x.is_none() && y.is_none(),
                        "{} row {}: {:?} != {:?}",
                        name,
                        i,
                        x,
                        y
                    ),
                }
            }
        }
        _ => prop_assert!(false, "{} present in one output only", name),
    }
    Ok(())
}

fn same_bool(
    name: &str,
    a: &Option<BoolCol>,
    b: &Option<BoolCol>,
    n: usize,
) -> Result<(), TestCaseError> {
    match (a, b) {
        (None, None) => {}
        (Some(a), Some(b)) => {
            prop_assert_eq!(a.null_count, b.null_count, "{} null_count", name);
            for i in 0..n {
                prop_assert_eq!(a.get(i), b.get(i), "{} row {}", name, i);
            }
        }
        _ => prop_assert!(false, "{} present in one output only", name),
    }
    Ok(())
}

fn same_columns(model: &str, a: &ReadingColumns, b: &ReadingColumns) -> Result<(), TestCaseError> {
    let n = a.len;
    prop_assert_eq!(n, b.len);
    prop_assert_eq!(&a.ok.bytes, &b.ok.bytes, "{} ok", model);
    let bits = |x: f64, y: f64| x.to_bits() == y.to_bits();
    same_prim("distance_mm", &a.distance_mm, &b.distance_mm, n, bits)?;
    same_prim(
        "fill_pct_reported",
        &a.fill_pct_reported,
        &b.fill_pct_reported,
        n,
        bits,
    )?;
    same_prim("temperature_c", &a.temperature_c, &b.temperature_c, n, bits)?;
    same_prim("battery_pct", &a.battery_pct, &b.battery_pct, n, bits)?;
    same_prim("battery_v", &a.battery_v, &b.battery_v, n, bits)?;
    same_prim("latitude", &a.latitude, &b.latitude, n, bits)?;
    same_prim("longitude", &a.longitude, &b.longitude, n, bits)?;
    same_prim(
        "measured_at_ms",
        &a.measured_at_ms,
        &b.measured_at_ms,
        n,
        |x, y| x == y,
    )?;
    same_bool("tilt", &a.tilt, &b.tilt, n)?;
    same_bool("fire_alarm", &a.fire_alarm, &b.fire_alarm, n)?;
    same_prim(
        "alarm_flags",
        &Some(a.alarm_flags.clone()),
        &Some(b.alarm_flags.clone()),
        n,
        |x, y| x == y,
    )?;
    prop_assert_eq!(a.errors.len(), b.errors.len(), "{} errors", model);
    for ((ra, ea), (rb, eb)) in a.errors.iter().zip(&b.errors) {
        prop_assert_eq!(ra, rb);
        prop_assert_eq!(ea, eb, "{} row {}", model, ra);
    }
    match (&a.stored, &b.stored) {
        (None, None) => {}
        (Some(x), Some(y)) => {
            prop_assert_eq!(&x.offsets, &y.offsets);
            prop_assert_eq!(&x.validity.bytes, &y.validity.bytes);
            prop_assert_eq!(&x.measured_at_ms, &y.measured_at_ms);
        }
        _ => prop_assert!(false, "stored present in one output only"),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn columnar_batches_equal_the_per_frame_path(seed in any::<u64>(), n in 0usize..700, fport_mode in 0u8..4) {
        for c in all() {
            let frames: Vec<Option<Vec<u8>>> = (0..n as u64).map(|i| frame(&*c, seed ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15))).collect();
            let mut data = Vec::new();
            let mut offsets = vec![0i32];
            let mut validity = vec![0u8; n.div_ceil(8)];
            for (i, f) in frames.iter().enumerate() {
                if let Some(f) = f {
                    data.extend_from_slice(f);
                    validity[i / 8] |= 1 << (i % 8);
                }
                offsets.push(data.len() as i32);
            }
            let fport_rows: Vec<i32> = (0..n).map(|i| match (seed as usize + i) % 7 { 0 => -1, 1 => 300, 2 => 3, _ => 2 }).collect();
            let fports = match fport_mode {
                0 => FportSource::None,
                1 => FportSource::All(Some(2)),
                2 => FportSource::All(Some(85)),
                _ => FportSource::PerRow(&fport_rows),
            };
            let src = FlatPayloads { data: &data, offsets: &offsets, validity: Some(&validity), validity_bit_offset: 0 };
            let fast = c.decode_batch(&src, &fports);
            let mut slow = ReadingColumns::new(n, c.fields());
            decode_rows(&*c, &src, &fports, 0..n, &mut slow);
            let slow = slow.finish();
            same_columns(&c.info().name, &fast, &slow)?;
        }
    }
}
