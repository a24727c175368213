//! Great-circle distance matrices and distance-to-duration speed profiles.
//!
//! Distances are haversine great-circle distances on a sphere of radius
//! [`EARTH_RADIUS_M`] (the IUGG mean radius), times a circuity factor (road distance
//! over straight-line distance; 1.0 = straight line). At territory scale the spherical
//! model is within -0.31 % .. +0.09 % of the WGS84 geodesic in France; the road network
//! (circuity 1.2-1.4) dominates that error.
//!
//! The matrix kernel evaluates the haversine formula through the chord between unit
//! vectors: with `p = (cos φ cos λ, cos φ sin λ, sin φ)`, `sin(θ/2) = |p_i - p_j| / 2`
//! and `d = 2 R asin(|p_i - p_j| / 2)`. That is the same quantity as
//! `2 R asin(sqrt(hav(Δφ) + cos φ_i cos φ_j hav(Δλ)))`, with the trigonometry done once
//! per point instead of once per pair, and an `asin` of our own (Cephes' rational
//! approximation, branch-free) that the compiler vectorises. Each row is independent;
//! rows run in parallel (rayon). The result is exactly symmetric with a zero diagonal.

use rayon::prelude::*;

use super::RouteError;

/// Mean Earth radius (IUGG), metres.
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// Haversine great-circle distance in metres between two points given in degrees
/// (the textbook formula; the matrix kernels agree with it to well under a micrometre).
pub fn haversine_m(lat1_deg: f64, lon1_deg: f64, lat2_deg: f64, lon2_deg: f64) -> f64 {
    let (p1, p2) = (lat1_deg.to_radians(), lat2_deg.to_radians());
    let dp = p2 - p1;
    let dl = (lon2_deg - lon1_deg).to_radians();
    let h = (dp * 0.5).sin().powi(2) + p1.cos() * p2.cos() * (dl * 0.5).sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.sqrt().min(1.0).asin()
}

// Cephes asin.c: asin(x) = x + x^3 P(x^2) / Q(x^2) for |x| <= 0.625 (peak relative
// error 1.2e-17 in the reference); coefficients from the highest degree down.
#[allow(clippy::excessive_precision)] // Cephes' published digits, kept verbatim
const ASIN_P: [f64; 6] = [
    4.253_011_369_004_428_248_960E-3,
    -6.019_598_008_014_123_785_661E-1,
    5.444_622_390_564_711_410_273E0,
    -1.626_247_967_210_700_244_449E1,
    1.956_261_983_317_594_739_197E1,
    -8.198_089_802_484_824_371_615E0,
];
#[allow(clippy::excessive_precision)]
const ASIN_Q: [f64; 5] = [
    -1.474_091_372_988_853_791_896E1,
    7.049_610_280_856_842_141_659E1,
    -1.471_791_292_232_726_029_859E2,
    1.395_105_614_657_485_689_735E2,
    -4.918_853_881_490_881_290_097E1,
];

/// Cephes' `asin(x) = x + x^3 P(x^2) / Q(x^2)`, valid for `|x| <= 0.625` (used for
/// `[0, 0.5]`). No branch, one division: vectorises.
#[inline(always)]
pub fn asin_small(t: f64) -> f64 {
    let z = t * t;
    let p = ((((ASIN_P[0] * z + ASIN_P[1]) * z + ASIN_P[2]) * z + ASIN_P[3]) * z + ASIN_P[4]) * z
        + ASIN_P[5];
    let q = ((((z + ASIN_Q[0]) * z + ASIN_Q[1]) * z + ASIN_Q[2]) * z + ASIN_Q[3]) * z + ASIN_Q[4];
    t + t * z * (p / q)
}

/// `asin(x)` for `x` in `[0, 1]`, branch-free (selects only) so that loops over it
/// vectorise. For `x > 0.5` it uses `asin(x) = π/2 - 2 asin(sqrt((1 - x) / 2))`, so the
/// rational approximation only ever sees `[0, 0.5]`. Error: a few ulp.
#[inline(always)]
pub fn asin_unit(x: f64) -> f64 {
    let big = x > 0.5;
    let s = ((1.0 - x) * 0.5).sqrt();
    let a = asin_small(if big { s } else { x });
    if big {
        std::f64::consts::FRAC_PI_2 - 2.0 * a
    } else {
        a
    }
}

/// Checks a coordinate list: equal lengths, finite, latitude in [-90, 90] and
/// longitude in [-180, 180] degrees. The message names the first bad index.
pub fn validate_coords(lat_deg: &[f64], lon_deg: &[f64], what: &str) -> Result<(), RouteError> {
    if lat_deg.len() != lon_deg.len() {
        return Err(RouteError::invalid(format!(
            "{what}: lat_deg has {} values, lon_deg {}",
            lat_deg.len(),
            lon_deg.len()
        )));
    }
    for (i, (&la, &lo)) in lat_deg.iter().zip(lon_deg).enumerate() {
        if !(-90.0..=90.0).contains(&la) {
            return Err(RouteError::invalid(format!(
                "{what}: lat_deg[{i}] = {la} is not a latitude in [-90, 90] degrees"
            )));
        }
        if !(-180.0..=180.0).contains(&lo) {
            return Err(RouteError::invalid(format!(
                "{what}: lon_deg[{i}] = {lo} is not a longitude in [-180, 180] degrees"
            )));
        }
    }
    Ok(())
}

/// Checks a circuity factor (road distance / great-circle distance): finite, >= 1.
pub fn validate_circuity(circuity: f64) -> Result<(), RouteError> {
    if !(circuity.is_finite() && circuity >= 1.0) {
        return Err(RouteError::invalid(format!(
            "circuity = {circuity}: a road distance over straight-line distance ratio, finite and >= 1 \
             (1.0 = straight line; published urban figures 1.2 to 1.34)"
        )));
    }
    Ok(())
}

/// Points as unit vectors on the sphere, structure of arrays.
#[derive(Debug, Clone, Default)]
pub struct UnitVectors {
    pub x: Vec<f64>,
    pub y: Vec<f64>,
    pub z: Vec<f64>,
}

impl UnitVectors {
    /// Unit vectors of validated coordinates (see [`validate_coords`]).
    pub fn new(lat_deg: &[f64], lon_deg: &[f64]) -> Self {
        let n = lat_deg.len();
        let mut u = UnitVectors {
            x: Vec::with_capacity(n),
            y: Vec::with_capacity(n),
            z: Vec::with_capacity(n),
        };
        for (&la, &lo) in lat_deg.iter().zip(lon_deg) {
            let (sp, cp) = la.to_radians().sin_cos();
            let (sl, cl) = lo.to_radians().sin_cos();
            u.x.push(cp * cl);
            u.y.push(cp * sl);
            u.z.push(sp);
        }
        u
    }

    pub fn len(&self) -> usize {
        self.x.len()
    }

    pub fn is_empty(&self) -> bool {
        self.x.is_empty()
    }

    /// Great-circle distances from point `(xi, yi, zi)` to every point, in metres with
    /// `scale = 2 R circuity`. Uses 256-bit vectors where the CPU has AVX2 (same
    /// operations, so bit-identical results either way).
    /// (`out[k]` is the distance to point `j0 + k`.)
    #[inline]
    fn row_into(&self, xi: f64, yi: f64, zi: f64, scale: f64, j0: usize, out: &mut [f64]) {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU supports AVX2, checked just above.
                unsafe { self.row_into_avx2(xi, yi, zi, scale, j0, out) };
                return;
            }
        }
        self.row_into_portable(xi, yi, zi, scale, j0, out);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn row_into_avx2(
        &self,
        xi: f64,
        yi: f64,
        zi: f64,
        scale: f64,
        j0: usize,
        out: &mut [f64],
    ) {
        self.row_into_portable(xi, yi, zi, scale, j0, out);
    }

    /// Fast path: `asin_small` (valid for half chords up to 0.5, i.e. distances up to
    /// ~6,670 km) over the whole row, vectorised; the rare longer pairs are then
    /// recomputed with [`asin_unit`]. Same values as `asin_unit` everywhere.
    #[inline(always)]
    fn row_into_portable(&self, xi: f64, yi: f64, zi: f64, scale: f64, j0: usize, out: &mut [f64]) {
        let n = out.len();
        let (xs, ys, zs) = (
            &self.x[j0..j0 + n],
            &self.y[j0..j0 + n],
            &self.z[j0..j0 + n],
        );
        let mut wide = 0u64; // an integer count keeps the loop vectorisable
        for j in 0..n {
            let (dx, dy, dz) = (xi - xs[j], yi - ys[j], zi - zs[j]);
            let half_chord = (dx * dx + dy * dy + dz * dz).sqrt() * 0.5;
            wide += u64::from(half_chord > 0.5);
            out[j] = scale * asin_small(half_chord);
        }
        if wide > 0 {
            for j in 0..n {
                let (dx, dy, dz) = (xi - xs[j], yi - ys[j], zi - zs[j]);
                let half_chord = ((dx * dx + dy * dy + dz * dz).sqrt() * 0.5).min(1.0);
                if half_chord > 0.5 {
                    out[j] = scale * asin_unit(half_chord);
                }
            }
        }
    }
}

/// Full `n × n` matrix (row-major) of great-circle distances in metres times
/// `circuity`, rows computed in parallel. Validates coordinates and circuity.
pub fn distance_matrix(
    lat_deg: &[f64],
    lon_deg: &[f64],
    circuity: f64,
) -> Result<Vec<f64>, RouteError> {
    validate_coords(lat_deg, lon_deg, "distance_matrix")?;
    validate_circuity(circuity)?;
    let u = UnitVectors::new(lat_deg, lon_deg);
    // Each pair is computed twice ((i, j) and (j, i), bit-identical): a tiled kernel that
    // computes each pair once and mirrors it was measured no faster at 10,000 points,
    // where writing the 800 MB dominates, so the simpler row kernel stays.
    distances_between(&u, &u, circuity)
}

/// `m × n` matrix (row-major) of distances in metres from each of `m` origins to each
/// of `n` destinations, times `circuity`. Validates coordinates and circuity.
pub fn distance_matrix_between(
    lat_from: &[f64],
    lon_from: &[f64],
    lat_to: &[f64],
    lon_to: &[f64],
    circuity: f64,
) -> Result<Vec<f64>, RouteError> {
    validate_coords(lat_from, lon_from, "origins")?;
    validate_coords(lat_to, lon_to, "destinations")?;
    validate_circuity(circuity)?;
    let a = UnitVectors::new(lat_from, lon_from);
    let b = UnitVectors::new(lat_to, lon_to);
    distances_between(&a, &b, circuity)
}

/// A zeroed buffer for a large matrix, or an error (not an abort) when the memory cannot
/// be had. On Linux, buffers of 4 MiB and more are advised to use transparent huge pages
/// before their first touch, as numpy does for its own large arrays: writing 800 MB into
/// fresh 4 KiB pages costs 200,000 page faults, most of a 10,000-point matrix's time.
pub fn alloc_matrix(len: usize) -> Result<Vec<f64>, RouteError> {
    if len == 0 {
        return Ok(Vec::new());
    }
    let too_big = || {
        RouteError::invalid(format!(
            "cannot allocate {len} float64 values ({:.1} GB) for the matrix: use knn_matrix for large point sets",
            len as f64 * 8e-9
        ))
    };
    let layout = std::alloc::Layout::array::<f64>(len).map_err(|_| too_big())?;
    // SAFETY: the layout has a non-zero size.
    let ptr = unsafe { std::alloc::alloc_zeroed(layout) }.cast::<f64>();
    if ptr.is_null() {
        return Err(too_big());
    }
    // SAFETY: `ptr` comes from the global allocator with the layout of `len` f64 values
    // (what `Vec` uses), and all-zero bits are a valid f64 (0.0), so all `len` values are
    // initialised.
    let v = unsafe { Vec::from_raw_parts(ptr, len, len) };
    crate::mem::advise_huge_pages(v.as_ptr(), len * std::mem::size_of::<f64>());
    Ok(v)
}

fn distances_between(
    from: &UnitVectors,
    to: &UnitVectors,
    circuity: f64,
) -> Result<Vec<f64>, RouteError> {
    let (m, n) = (from.len(), to.len());
    let len = m
        .checked_mul(n)
        .ok_or_else(|| RouteError::invalid(format!("{m} x {n} matrix is too large")))?;
    let mut out = alloc_matrix(len)?;
    if n == 0 {
        return Ok(out);
    }
    let scale = 2.0 * EARTH_RADIUS_M * circuity;
    out.par_chunks_mut(n).enumerate().for_each(|(i, row)| {
        to.row_into(from.x[i], from.y[i], from.z[i], scale, 0, row);
    });
    Ok(out)
}

/// Travel speed as a function of the leg length: the first `bands[0].0` metres of a
/// leg at `bands[0].1` km/h, the part up to `bands[1].0` metres at `bands[1].1` km/h,
/// and so on; the last band extends to infinity. Short legs between neighbouring
/// containers are driven slower (pull out, turn, stop) than long legs to a facility.
#[derive(Debug, Clone, PartialEq)]
pub struct SpeedProfile {
    /// (upper bound of the band in metres of leg length, speed in km/h), bounds increasing.
    bands: Vec<(f64, f64)>,
    /// Seconds to drive each band in full (`cum_s[k]` = time to cover `bands[k].0` metres).
    cum_s: Vec<f64>,
}

impl SpeedProfile {
    /// A profile from `(up_to_m, speed_kmh)` bands. Bounds must be strictly
    /// increasing and positive, the last one `+inf`; speeds finite and positive.
    pub fn new(bands: &[(f64, f64)]) -> Result<Self, RouteError> {
        if bands.is_empty() {
            return Err(RouteError::invalid(
                "speed profile: at least one (up_to_m, speed_kmh) band",
            ));
        }
        let mut prev = 0.0f64;
        let mut cum_s = Vec::with_capacity(bands.len());
        let mut t = 0.0f64;
        for (k, &(up, v)) in bands.iter().enumerate() {
            if !(v.is_finite() && v > 0.0) {
                return Err(RouteError::invalid(format!(
                    "speed profile band {k}: speed_kmh = {v} must be finite and > 0"
                )));
            }
            if up.is_nan() || up <= prev {
                return Err(RouteError::invalid(format!(
                    "speed profile band {k}: up_to_m = {up} must be > {prev} (bounds strictly increasing)"
                )));
            }
            let last = k + 1 == bands.len();
            if last != (up == f64::INFINITY) {
                return Err(RouteError::invalid(format!(
                    "speed profile band {k}: only the last band has up_to_m = inf, and it must (got {up})"
                )));
            }
            t += (up - prev) / (v / 3.6);
            cum_s.push(t);
            prev = up;
        }
        Ok(SpeedProfile {
            bands: bands.to_vec(),
            cum_s,
        })
    }

    /// One constant speed in km/h.
    pub fn constant(speed_kmh: f64) -> Result<Self, RouteError> {
        Self::new(&[(f64::INFINITY, speed_kmh)])
    }

    pub fn bands(&self) -> &[(f64, f64)] {
        &self.bands
    }

    /// Seconds to drive a leg of `d` metres (`+inf` stays `+inf`: unreachable).
    #[inline]
    pub fn duration_s(&self, d: f64) -> f64 {
        let mut start = 0.0;
        let mut t0 = 0.0;
        for (k, &(up, v)) in self.bands.iter().enumerate() {
            if d <= up {
                return t0 + (d - start) / (v / 3.6);
            }
            start = up;
            t0 = self.cum_s[k];
        }
        f64::INFINITY
    }
}

/// Durations in seconds of legs of `distance_m` metres (any shape, flattened), in
/// parallel. Distances must be `>= 0` or `+inf`; NaN or negative values are refused.
pub fn duration_matrix(distance_m: &[f64], profile: &SpeedProfile) -> Result<Vec<f64>, RouteError> {
    if let Some(k) = distance_m.iter().position(|d| d.is_nan() || *d < 0.0) {
        return Err(RouteError::invalid(format!(
            "distance_m: flat entry {k} = {} (distances must be >= 0 or +inf)",
            distance_m[k]
        )));
    }
    let mut out = alloc_matrix(distance_m.len())?;
    out.par_chunks_mut(1 << 14)
        .zip(distance_m.par_chunks(1 << 14))
        .for_each(|(o, d)| {
            for (o, &d) in o.iter_mut().zip(d) {
                *o = profile.duration_s(d);
            }
        });
    Ok(out)
}
