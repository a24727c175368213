//! Route costs: distance and duration matrices, batch route evaluation, VRPLIB.
//!
//! * [`matrix`]: great-circle (haversine) distance matrices from WGS84 coordinates,
//!   times a road circuity factor, computed in parallel (full `n × n`, row-major) or
//!   as sparse k-nearest-neighbour rows for territories too large for a full one;
//!   durations from distances with a piecewise speed profile.
//! * [`eval`]: many routes at once against one matrix: distance, duration (travel,
//!   service per stop, unloading), load against capacity with unloading trips to
//!   facilities, shift excess; cheapest insertion of stops into existing routes.
//! * [`vrplib`]: VRPLIB / TSPLIB instance and solution text, with the TSPLIB rounding
//!   conventions (so CVRPLIB best-known solutions cost exactly their published values).
//!
//! Units: metres for distances, seconds for durations, whatever unit the caller uses
//! for demands and capacities. Matrices are dense `f64`, row-major: entry `(i, j)` is
//! the cost of going from node `i` to node `j` (it may be asymmetric, e.g. a road
//! matrix from OSRM); `+inf` means "unreachable". All inputs are validated: a bad
//! index, NaN or length mismatch is a [`RouteError`], never a panic.

pub mod matrix;

use std::fmt;

/// What kind of failure a [`RouteError`] is (the Python layer maps both to `ValueError`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteErrorKind {
    /// An argument is out of its domain (length, NaN, range, index).
    InvalidInput,
    /// VRPLIB / TSPLIB text that cannot be read; `line` is 1-based.
    Parse { line: usize },
}

/// A typed error of the route-cost kernels, with a message naming the offending value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteError {
    pub kind: RouteErrorKind,
    pub message: String,
}

impl RouteError {
    pub fn invalid(message: impl Into<String>) -> Self {
        RouteError {
            kind: RouteErrorKind::InvalidInput,
            message: message.into(),
        }
    }

    pub fn parse(line: usize, message: impl Into<String>) -> Self {
        RouteError {
            kind: RouteErrorKind::Parse { line },
            message: message.into(),
        }
    }
}

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            RouteErrorKind::InvalidInput => f.write_str(&self.message),
            RouteErrorKind::Parse { line } => write!(f, "line {line}: {}", self.message),
        }
    }
}

impl std::error::Error for RouteError {}

/// A square matrix borrowed as a row-major slice (`n * n` values).
#[derive(Debug, Clone, Copy)]
pub struct Matrix<'a> {
    pub n: usize,
    pub data: &'a [f64],
}

impl<'a> Matrix<'a> {
    /// Checks that `data` holds `n * n` values (the values themselves are checked by
    /// [`Matrix::check_values`], a full scan that callers run once per matrix).
    pub fn new(n: usize, data: &'a [f64], name: &str) -> Result<Self, RouteError> {
        if n.checked_mul(n) != Some(data.len()) {
            return Err(RouteError::invalid(format!(
                "{name} must be square: {} values for n = {n}",
                data.len()
            )));
        }
        Ok(Matrix { n, data })
    }

    /// Every entry is `>= 0` or `+inf` (unreachable); NaN and negative values are refused.
    pub fn check_values(&self, name: &str) -> Result<(), RouteError> {
        if let Some(k) = self.data.iter().position(|v| v.is_nan() || *v < 0.0) {
            return Err(RouteError::invalid(format!(
                "{name}[{}, {}] = {} (entries must be >= 0 or +inf)",
                k / self.n.max(1),
                k % self.n.max(1),
                self.data[k]
            )));
        }
        Ok(())
    }

    #[inline(always)]
    pub fn at(&self, i: usize, j: usize) -> f64 {
        self.data[i * self.n + j]
    }
}
