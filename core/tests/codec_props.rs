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
