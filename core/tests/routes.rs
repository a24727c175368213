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
fn invalid_coordinates_are_typed_errors() {
    let e = distance_matrix(&[1.0, f64::NAN], &[1.0, 2.0], 1.0).unwrap_err();
    assert_eq!(e.kind, RouteErrorKind::InvalidInput);
    assert!(e.message.contains("lat_deg[1]"), "{e}");
    assert!(distance_matrix(&[1.0], &[1.0, 2.0], 1.0).is_err());
    assert!(distance_matrix(&[1.0], &[-180.5], 1.0).is_err());
    assert!(distance_matrix(&[1.0], &[1.0], 0.5).is_err());
    assert!(distance_matrix(&[], &[], 1.0).unwrap().is_empty());
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
