//! Container geometry: sensor distance to fill ratio, and back.
//!
//! A sensor is mounted at the top of the container looking down. `offset_mm` is the
//! distance from the sensor to the "full" line (100 %), `depth_mm` the usable depth from
//! that line to the bottom (0 %). So for a measured distance `d`:
//!
//! ```text
//! fill = (offset + depth - d) / depth
//! ```
//!
//! Values above 1 mean content above the full line (overfilled, heaped); a distance
//! beyond the bottom gives a negative raw value that is clamped to 0. The upper clamp
//! is [`MAX_FILL`]: echoes closer than the offset are lids, hands or heaps.

/// Largest fill ratio reported (content heaped 50 % above the full line).
pub const MAX_FILL: f64 = 1.5;

/// Fill ratio for one reading; `None` when the geometry is unusable.
#[inline]
pub fn fill_ratio(distance_mm: f64, depth_mm: f64, offset_mm: f64) -> Option<f64> {
    // NaN depth is rejected too: `> 0.0` is false for NaN.
    if depth_mm.is_nan() || depth_mm <= 0.0 || !distance_mm.is_finite() || !offset_mm.is_finite() {
        return None;
    }
    let f = (offset_mm + depth_mm - distance_mm) / depth_mm;
    Some(f.clamp(0.0, MAX_FILL))
}

/// The distance a sensor would measure at a given fill ratio (for simulators).
#[inline]
pub fn distance_for_fill(fill: f64, depth_mm: f64, offset_mm: f64) -> f64 {
    offset_mm + depth_mm * (1.0 - fill)
}

/// Batch version: `out[i] = fill_ratio(distance[i], depth[i], offset[i])`, NaN where
/// the input is missing (NaN) or the geometry unusable.
pub fn fill_ratio_batch(
    distance_mm: &[f64],
    depth_mm: &[f64],
    offset_mm: &[f64],
    out: &mut Vec<f64>,
) {
    out.clear();
    out.extend(
        distance_mm
            .iter()
            .zip(depth_mm)
            .zip(offset_mm)
            .map(|((&d, &h), &o)| fill_ratio(d, h, o).unwrap_or(f64::NAN)),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry() {
        // 1000 mm usable depth, full line 200 mm below the sensor.
        assert_eq!(fill_ratio(1200.0, 1000.0, 200.0), Some(0.0));
        assert_eq!(fill_ratio(200.0, 1000.0, 200.0), Some(1.0));
        assert_eq!(fill_ratio(700.0, 1000.0, 200.0), Some(0.5));
        assert_eq!(fill_ratio(1500.0, 1000.0, 200.0), Some(0.0));
        assert_eq!(fill_ratio(0.0, 1000.0, 200.0), Some(1.2));
        assert_eq!(fill_ratio(700.0, 0.0, 200.0), None);
        assert_eq!(distance_for_fill(0.5, 1000.0, 200.0), 700.0);
        let mut out = Vec::new();
        fill_ratio_batch(
            &[700.0, f64::NAN],
            &[1000.0, 1000.0],
            &[200.0, 200.0],
            &mut out,
        );
        assert_eq!(out[0], 0.5);
        assert!(out[1].is_nan());
    }
}
