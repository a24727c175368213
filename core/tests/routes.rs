//! Route-cost kernels without Python: matrices, speed profiles, route evaluation,
//! VRPLIB parsing and the CVRPLIB best-known solutions.

use _core::routes::matrix::{
    asin_unit, distance_matrix, distance_matrix_between, duration_matrix, haversine_m,
    SpeedProfile, EARTH_RADIUS_M,
};
use _core::routes::RouteErrorKind;
use proptest::prelude::*;

#[test]
fn asin_unit_matches_libm_to_a_few_ulp() {
    let n = 200_000;
    for k in 0..=n {
        let x = k as f64 / n as f64;
        let (a, b) = (asin_unit(x), x.asin());
        let err = (a - b).abs();
        assert!(
            err <= 4.0 * f64::EPSILON * b.abs().max(f64::MIN_POSITIVE),
            "x = {x}: {a} vs {b}"
        );
    }
    for x in [
        1e-300,
        1e-12,
        1e-8,
        0.499_999_999_999,
        0.5,
        0.500_000_000_001,
        0.625,
        0.999_999,
        1.0,
    ] {
        let (a, b) = (asin_unit(x), x.asin());
        assert!(
            (a - b).abs() <= 4.0 * f64::EPSILON * b,
            "x = {x}: {a} vs {b}"
        );
    }
}

#[test]
fn matrix_agrees_with_haversine_and_is_symmetric() {
    let lat = [
        48.8566, 45.7640, 51.5074, 40.7128, -33.8688, 47.51, 47.510_001,
    ];
    let lon = [2.3522, 4.8357, -0.1278, -74.0060, 151.2093, 6.79, 6.79];
    let n = lat.len();
    let d = distance_matrix(&lat, &lon, 1.0).unwrap();
    for i in 0..n {
        assert_eq!(d[i * n + i], 0.0);
        for j in 0..n {
            assert_eq!(d[i * n + j], d[j * n + i]);
            let h = haversine_m(lat[i], lon[i], lat[j], lon[j]);
            assert!(
                (d[i * n + j] - h).abs() < 1e-6,
                "{i},{j}: {} vs {h}",
                d[i * n + j]
            );
        }
    }
    // 0.000001 degree of latitude = 0.111 m.
    assert!((d[5 * n + 6] - EARTH_RADIUS_M * 1e-6_f64.to_radians()).abs() < 1e-6);
    let d13 = distance_matrix(&lat, &lon, 1.3).unwrap();
    let b = distance_matrix_between(&lat[..2], &lon[..2], &lat, &lon, 1.3).unwrap();
    assert_eq!(&d13[..2 * n], &b[..]);
}

#[test]
fn larger_matrix_is_symmetric_and_matches_haversine() {
    // 300 points spread over the globe: many pairs beyond 6,670 km (the asin fix-up path).
    let lat: Vec<f64> = (0..300)
        .map(|i| ((i * 37) % 170) as f64 - 85.0 + 0.01 * i as f64)
        .collect();
    let lon: Vec<f64> = (0..300).map(|i| ((i * 91) % 350) as f64 - 175.0).collect();
    let full = distance_matrix(&lat, &lon, 1.3).unwrap();
    let rows = distance_matrix_between(&lat, &lon, &lat, &lon, 1.3).unwrap();
    assert_eq!(full, rows);
    for i in 0..300 {
        for j in 0..300 {
            assert_eq!(full[i * 300 + j], full[j * 300 + i]);
            let h = 1.3 * haversine_m(lat[i], lon[i], lat[j], lon[j]);
            assert!((full[i * 300 + j] - h).abs() < 1e-6, "{i},{j}");
        }
    }
}

#[test]
fn invalid_coordinates_are_typed_errors() {
    let e = distance_matrix(&[1.0, f64::NAN], &[1.0, 2.0], 1.0).unwrap_err();
    assert_eq!(e.kind, RouteErrorKind::InvalidInput);
    assert!(e.message.contains("lat_deg[1]"), "{e}");
    assert!(distance_matrix(&[1.0], &[1.0, 2.0], 1.0).is_err());
    assert!(distance_matrix(&[1.0], &[-180.5], 1.0).is_err());
    assert!(distance_matrix(&[1.0], &[1.0], 0.5).is_err());
    assert!(distance_matrix(&[], &[], 1.0).unwrap().is_empty());
    // A matrix that cannot be allocated is an error, not an abort.
    let e = _core::routes::matrix::alloc_matrix(usize::MAX / 16).unwrap_err();
    assert!(e.message.contains("cannot allocate"), "{e}");
    assert_eq!(
        _core::routes::matrix::alloc_matrix(3).unwrap(),
        vec![0.0; 3]
    );
}

#[test]
fn speed_profile_bands() {
    let p = SpeedProfile::new(&[(1000.0, 36.0), (f64::INFINITY, 72.0)]).unwrap();
    assert_eq!(p.duration_s(0.0), 0.0);
    assert!((p.duration_s(500.0) - 50.0).abs() < 1e-12);
    assert!((p.duration_s(1000.0) - 100.0).abs() < 1e-12);
    assert!((p.duration_s(3000.0) - 200.0).abs() < 1e-12);
    assert_eq!(p.duration_s(f64::INFINITY), f64::INFINITY);
    assert!(SpeedProfile::new(&[(1000.0, 36.0)]).is_err());
    assert!(SpeedProfile::new(&[(f64::INFINITY, -1.0)]).is_err());
    assert!(SpeedProfile::constant(f64::NAN).is_err());
    let t = duration_matrix(&[0.0, 3000.0, f64::INFINITY], &p).unwrap();
    assert_eq!(t.len(), 3);
    assert!(duration_matrix(&[f64::NAN], &p).is_err());
}

proptest! {
    #[test]
    fn triangle_inequality_and_bounds(
        pts in proptest::collection::vec((-89.9f64..89.9, -179.9f64..179.9), 3..12)
    ) {
        let lat: Vec<f64> = pts.iter().map(|p| p.0).collect();
        let lon: Vec<f64> = pts.iter().map(|p| p.1).collect();
        let n = lat.len();
        let d = distance_matrix(&lat, &lon, 1.0).unwrap();
        for i in 0..n {
            for j in 0..n {
                prop_assert!(d[i * n + j] <= std::f64::consts::PI * EARTH_RADIUS_M * (1.0 + 1e-15));
                for k in 0..n {
                    prop_assert!(d[i * n + j] <= d[i * n + k] + d[k * n + j] + 1e-6);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// VRPLIB and route evaluation
// ---------------------------------------------------------------------------------------

use _core::routes::eval::{
    cheapest_insertion, evaluate, total_distance, Durations, EvalParams, Routes,
};
use _core::routes::vrplib::{parse_instance, parse_solution, Rounding};
use _core::routes::Matrix;
use std::path::PathBuf;

fn cvrplib_dir() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let shared = std::env::var_os("TIDSTREAM_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| here.join("../../shared"));
    let dir = shared.join("data/cvrplib");
    assert!(
        dir.is_dir(),
        "CVRPLIB data not found at {}: the shared/ folder must sit beside the project",
        dir.display()
    );
    dir
}

fn flat(routes: &[Vec<usize>]) -> (Vec<i64>, Vec<i64>) {
    let mut nodes = Vec::new();
    let mut offsets = vec![0i64];
    for r in routes {
        nodes.extend(r.iter().map(|&v| v as i64));
        offsets.push(nodes.len() as i64);
    }
    (nodes, offsets)
}

#[test]
fn every_cvrplib_solution_costs_its_best_known_value() {
    let dir = cvrplib_dir();
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("vrp") {
            continue;
        }
        let inst =
            parse_instance(&std::fs::read_to_string(&path).unwrap(), Rounding::Tsplib).unwrap();
        let sol =
            parse_solution(&std::fs::read_to_string(path.with_extension("sol")).unwrap()).unwrap();
        let n = inst.dimension;
        assert_eq!(inst.depots, vec![0], "{}", inst.name);
        let (nodes, offsets) = flat(&sol.routes);
        let m = Matrix::new(n, &inst.matrix, "matrix").unwrap();
        let routes = Routes::new(&nodes, &offsets, n).unwrap();
        let cost = total_distance(m, routes, 0).unwrap();
        assert_eq!(Some(cost), sol.cost, "{}", inst.name);
        // Every customer visited once, and each route within capacity.
        let mut visits = vec![0; n];
        for &v in &nodes {
            visits[v as usize] += 1;
        }
        assert!(visits[1..].iter().all(|&c| c == 1), "{}", inst.name);
        let params = EvalParams {
            demand: Some(&inst.demands),
            capacity: inst.capacity.unwrap(),
            ..EvalParams::new(0)
        };
        let unit = _core::routes::matrix::SpeedProfile::constant(36.0).unwrap();
        let metrics = evaluate(m, Durations::Profile(&unit), routes, &params).unwrap();
        assert_eq!(metrics.distance.iter().sum::<f64>(), cost);
        assert!(
            metrics.excess_load.iter().all(|&e| e == 0.0),
            "{}",
            inst.name
        );
        assert_eq!(
            metrics.load.iter().sum::<f64>(),
            inst.demands.iter().sum::<f64>()
        );
        // 36 km/h = 10 m/s: travel seconds are a tenth of the distance.
        for (d, t) in metrics.distance.iter().zip(&metrics.travel_s) {
            assert!((t - d / 10.0).abs() < 1e-9 * d.max(1.0));
        }
        seen += 1;
    }
    assert_eq!(seen, 9, "instances in {}", dir.display());
}

#[test]
fn explicit_lower_row_and_rounding_options() {
    let text = "NAME : tiny\nDIMENSION : 3\nEDGE_WEIGHT_TYPE : EXPLICIT\nEDGE_WEIGHT_FORMAT: LOWER_ROW\n\
                EDGE_WEIGHT_SECTION\n 5\n 7 9\nDEMAND_SECTION\n1 0\n2 3\n3 4\nDEPOT_SECTION\n 1\n -1\nEOF\n";
    let inst = parse_instance(text, Rounding::Tsplib).unwrap();
    assert_eq!(
        inst.matrix,
        vec![0.0, 5.0, 7.0, 5.0, 0.0, 9.0, 7.0, 9.0, 0.0]
    );
    assert_eq!(inst.demands, vec![0.0, 3.0, 4.0]);
    let euc = "NAME : e\nDIMENSION : 2\nEDGE_WEIGHT_TYPE : EUC_2D\nNODE_COORD_SECTION\n1 0 0\n2 1 1\nEOF\n";
    let m = |r| parse_instance(euc, r).unwrap().matrix[1];
    assert_eq!(m(Rounding::Tsplib), 1.0);
    assert_eq!(m(Rounding::Exact), 2f64.sqrt());
    assert_eq!(m(Rounding::Dimacs), 14.0);
    let ceil = euc.replace("EUC_2D", "CEIL_2D");
    assert_eq!(
        parse_instance(&ceil, Rounding::Tsplib).unwrap().matrix[1],
        2.0
    );
}

#[test]
fn malformed_vrplib_is_a_typed_error_with_a_line() {
    let cases = [
        ("NAME : x\nEDGE_WEIGHT_TYPE : EUC_2D\n", "DIMENSION"),
        ("DIMENSION : 2\nEDGE_WEIGHT_TYPE : EUC_2D\nNODE_COORD_SECTION\n1 0 0\n3 1 1\n", "node id 3"),
        ("DIMENSION : 2\nEDGE_WEIGHT_TYPE : EUC_2D\nNODE_COORD_SECTION\n1 0 0\n2 1 zz\n", "\"zz\""),
        ("DIMENSION : 2\nEDGE_WEIGHT_TYPE : GEO\nNODE_COORD_SECTION\n1 0 0\n2 1 1\n", "GEO"),
        ("DIMENSION : 3\nEDGE_WEIGHT_TYPE : EXPLICIT\nEDGE_WEIGHT_FORMAT : LOWER_ROW\nEDGE_WEIGHT_SECTION\n1 2\n", "needs more"),
        ("garbage line\n", "expected"),
    ];
    for (text, needle) in cases {
        let e = parse_instance(text, Rounding::Tsplib).unwrap_err();
        assert!(matches!(e.kind, RouteErrorKind::Parse { .. }), "{e}");
        assert!(e.to_string().contains(needle), "{e} (wanted {needle})");
    }
    assert!(parse_solution("Route #1: 1 x\n").is_err());
    assert!(parse_solution("hello\n").is_err());
}

/// Four nodes on a line, 1 km apart: 0 (depot) - 1 - 2 - 3, and a facility 4 at 5 km.
fn line_matrix() -> Vec<f64> {
    let pos = [0.0, 1000.0, 2000.0, 3000.0, 5000.0];
    let mut m = vec![0.0; 25];
    for i in 0..5 {
        for j in 0..5 {
            m[i * 5 + j] = f64::abs(pos[i] - pos[j]);
        }
    }
    m
}

#[test]
fn hand_computed_route_with_unloading_trip() {
    let m = line_matrix();
    let dist = Matrix::new(5, &m, "m").unwrap();
    let demand = [0.0, 6.0, 6.0, 6.0, 0.0];
    let service = [0.0, 30.0, 30.0, 30.0, 0.0];
    let nodes = [1i64, 2, 3];
    let offsets = [0i64, 3];
    let routes = Routes::new(&nodes, &offsets, 5).unwrap();
    let facilities = [4usize];
    let params = EvalParams {
        demand: Some(&demand),
        capacity: 10.0,
        service_s: Some(&service),
        facilities: &facilities,
        unload_s: 600.0,
        shift_s: 3600.0,
        ..EvalParams::new(0)
    };
    let v = SpeedProfile::constant(36.0).unwrap(); // 10 m/s
    let r = evaluate(dist, Durations::Profile(&v), routes, &params).unwrap();
    // 0->1 (1000) load 6; stop 2 would make 12 > 10: 1->4 (4000), unload, 4->2 (3000);
    // stop 3 again 12 > 10: 2->4 (3000), unload, 4->3 (2000); end: 3->4 (2000), unload,
    // 4->0 (5000). 20 km at 10 m/s = 2000 s, + 3 x 30 s service + 3 x 600 s unloading.
    assert_eq!(
        r.distance,
        vec![1000.0 + 4000.0 + 3000.0 + 3000.0 + 2000.0 + 2000.0 + 5000.0]
    );
    assert_eq!(r.unloads, vec![3]);
    assert_eq!(r.load, vec![18.0]);
    assert_eq!(r.peak_load, vec![6.0]);
    assert_eq!(r.excess_load, vec![0.0]);
    assert_eq!(r.travel_s, vec![2000.0]);
    assert_eq!(r.service_s, vec![90.0]);
    assert_eq!(r.unload_s, vec![1800.0]);
    assert_eq!(r.duration_s, vec![3890.0]);
    assert_eq!(r.shift_excess_s, vec![290.0]);
    // Without facilities: one trip, 8 over capacity, 6 km.
    let single = EvalParams {
        facilities: &[],
        ..params.clone()
    };
    let r = evaluate(dist, Durations::Profile(&v), routes, &single).unwrap();
    assert_eq!(r.distance, vec![6000.0]);
    assert_eq!(r.excess_load, vec![8.0]);
    assert_eq!(r.unloads, vec![0]);
    // Duration matrix instead of a profile: twice the distance in seconds.
    let t: Vec<f64> = m.iter().map(|d| 2.0 * d).collect();
    let dm = Matrix::new(5, &t, "t").unwrap();
    let r = evaluate(dist, Durations::Matrix(dm), routes, &single).unwrap();
    assert_eq!(r.travel_s, vec![12000.0]);
}

#[test]
fn insertion_and_errors() {
    let m = line_matrix();
    let dist = Matrix::new(5, &m, "m").unwrap();
    let nodes = [1i64, 3];
    let offsets = [0i64, 2, 2];
    let routes = Routes::new(&nodes, &offsets, 5).unwrap();
    let ins = cheapest_insertion(dist, routes, &[2, 4], &EvalParams::new(0)).unwrap();
    // 2 goes between 1 and 3 for free. 4 costs +4000 between 1 and 3 or after 3 (the
    // first position wins the tie), +8000 before 1, +10000 alone in the empty route.
    assert_eq!((ins[0].route, ins[0].position, ins[0].added), (0, 1, 0.0));
    assert_eq!(
        (ins[1].route, ins[1].position, ins[1].added),
        (0, 1, 4000.0)
    );
    // Capacity: route 0 is full, so 2 goes to the empty route 1.
    let demand = [0.0, 5.0, 5.0, 5.0, 5.0];
    let p = EvalParams {
        demand: Some(&demand),
        capacity: 10.0,
        ..EvalParams::new(0)
    };
    let ins = cheapest_insertion(dist, routes, &[2], &p).unwrap();
    assert_eq!(
        (ins[0].route, ins[0].position, ins[0].added),
        (1, 0, 4000.0)
    );
    assert!(Routes::new(&[1, 7], &[0, 2], 5).is_err());
    assert!(Routes::new(&[1, 2], &[0, 1], 5).is_err());
    assert!(Routes::new(&[1, 2], &[0, 2, 1, 2], 5).is_err());
    let nan = {
        let mut x = m.clone();
        x[1] = f64::NAN;
        x
    };
    let bad = Matrix::new(5, &nan, "m").unwrap();
    assert!(total_distance(bad, routes, 0).is_err());
    assert!(total_distance(dist, routes, 9).is_err());
    assert!(Matrix::new(5, &m[..20], "m").is_err());
}
