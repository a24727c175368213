//! Many routes evaluated at once against one matrix, and cheapest insertion.
//!
//! A route is a sequence of stops (node indices), the depot left out: the vehicle
//! leaves the depot empty, visits the stops in order and returns to the depot. Routes
//! come flattened, CSR-style: `nodes[offsets[r]..offsets[r + 1]]` is route `r`.
//!
//! Load and unloading trips. Each stop adds its demand to the load. When
//! `facilities` is empty the route is one trip (the CVRP convention: the depot is
//! where the load goes) and `excess_load = max(0, load - capacity)`. When facilities
//! are given (transfer stations, incinerators, sorting centres), a stop whose demand
//! would overflow the vehicle is preceded by an unloading trip: from the current
//! position to the facility `f` that minimises `d(pos, f) + d(f, stop)`, `unload_s`
//! seconds there, then on to the stop with an empty body. After the last stop the
//! vehicle unloads at the facility minimising `d(last, f) + d(f, depot)` and returns
//! to the depot empty. Then `excess_load` is only what a single stop brings beyond
//! the capacity (a container larger than the vehicle). Facility choices minimise
//! distance (ties: the first facility given).
//!
//! Durations: travel time from a duration matrix or a speed profile applied to each
//! leg's distance, plus `service_s[stop]` per stop, plus `unload_s` per facility visit.
//! `shift_excess_s = max(0, duration - shift_s)`.

use rayon::prelude::*;

use super::matrix::SpeedProfile;
use super::{Matrix, RouteError};

/// Routes as flat node indices plus `len + 1` offsets.
#[derive(Debug, Clone, Copy)]
pub struct Routes<'a> {
    pub nodes: &'a [i64],
    pub offsets: &'a [i64],
}

impl<'a> Routes<'a> {
    /// Checks offsets (start at 0, non-decreasing, end at `nodes.len()`) and that every
    /// node is an index of an `n`-node matrix.
    pub fn new(nodes: &'a [i64], offsets: &'a [i64], n: usize) -> Result<Self, RouteError> {
        if offsets.first() != Some(&0) || *offsets.last().unwrap_or(&-1) != nodes.len() as i64 {
            return Err(RouteError::invalid(format!(
                "route offsets must start at 0 and end at {} (the number of stops)",
                nodes.len()
            )));
        }
        if let Some(w) = offsets.windows(2).position(|w| w[1] < w[0]) {
            return Err(RouteError::invalid(format!(
                "route offsets decrease at route {w}"
            )));
        }
        for r in 0..offsets.len() - 1 {
            for (k, &v) in nodes[offsets[r] as usize..offsets[r + 1] as usize]
                .iter()
                .enumerate()
            {
                if v < 0 || v as u64 >= n as u64 {
                    return Err(RouteError::invalid(format!(
                        "route {r}, stop {k}: node {v} is not an index of the {n}-node matrix"
                    )));
                }
            }
        }
        Ok(Routes { nodes, offsets })
    }

    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    #[inline]
    pub fn route(&self, r: usize) -> &'a [i64] {
        &self.nodes[self.offsets[r] as usize..self.offsets[r + 1] as usize]
    }
}

/// Where travel times come from.
#[derive(Debug, Clone, Copy)]
pub enum Durations<'a> {
    /// A duration matrix in seconds, same nodes as the distance matrix.
    Matrix(Matrix<'a>),
    /// A speed profile applied to each leg's distance.
    Profile(&'a SpeedProfile),
}

/// Everything besides the matrices and routes.
#[derive(Debug, Clone)]
pub struct EvalParams<'a> {
    pub depot: usize,
    /// Demand per node (the depot's and facilities' are ignored); `None`: no load.
    pub demand: Option<&'a [f64]>,
    /// Vehicle capacity (same unit as demand); `f64::INFINITY` for none.
    pub capacity: f64,
    /// Service seconds per node (spent at each stop); `None`: zero.
    pub service_s: Option<&'a [f64]>,
    /// Facilities where the vehicle unloads (node indices); empty: one trip per route.
    pub facilities: &'a [usize],
    /// Seconds per facility visit.
    pub unload_s: f64,
    /// Shift length in seconds; `f64::INFINITY` for none.
    pub shift_s: f64,
}

impl EvalParams<'_> {
    pub fn new(depot: usize) -> Self {
        EvalParams {
            depot,
            demand: None,
            capacity: f64::INFINITY,
            service_s: None,
            facilities: &[],
            unload_s: 0.0,
            shift_s: f64::INFINITY,
        }
    }

    fn validate(&self, n: usize) -> Result<(), RouteError> {
        if self.depot >= n {
            return Err(RouteError::invalid(format!(
                "depot {} is not an index of the {n}-node matrix",
                self.depot
            )));
        }
        for (name, col) in [("demand", self.demand), ("service_s", self.service_s)] {
            if let Some(c) = col {
                if c.len() != n {
                    return Err(RouteError::invalid(format!(
                        "{name} has {} values for {n} nodes",
                        c.len()
                    )));
                }
                if let Some(k) = c.iter().position(|v| !(v.is_finite() && *v >= 0.0)) {
                    return Err(RouteError::invalid(format!(
                        "{name}[{k}] = {} must be finite and >= 0",
                        c[k]
                    )));
                }
            }
        }
        if self.capacity.is_nan() || self.capacity <= 0.0 {
            return Err(RouteError::invalid(format!(
                "capacity = {} must be > 0 (inf for none)",
                self.capacity
            )));
        }
        if !(self.unload_s.is_finite() && self.unload_s >= 0.0) {
            return Err(RouteError::invalid(format!(
                "unload_s = {} must be finite and >= 0",
                self.unload_s
            )));
        }
        if self.shift_s.is_nan() || self.shift_s <= 0.0 {
            return Err(RouteError::invalid(format!(
                "shift_s = {} must be > 0 (inf for none)",
                self.shift_s
            )));
        }
        if let Some(&f) = self.facilities.iter().find(|&&f| f >= n) {
            return Err(RouteError::invalid(format!(
                "facility {f} is not an index of the {n}-node matrix"
            )));
        }
        Ok(())
    }
}

/// Per-route results, one entry per route (columns).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RouteMetrics {
    pub n_stops: Vec<u32>,
    /// Total distance, metres (or the matrix's unit).
    pub distance: Vec<f64>,
    /// Travel + service + unloading, seconds.
    pub duration_s: Vec<f64>,
    pub travel_s: Vec<f64>,
    pub service_s: Vec<f64>,
    pub unload_s: Vec<f64>,
    /// Total demand collected.
    pub load: Vec<f64>,
    /// Largest load carried at once.
    pub peak_load: Vec<f64>,
    /// Facility visits (unloading trips, the final one included).
    pub unloads: Vec<u32>,
    /// Load beyond the capacity (see the module docs).
    pub excess_load: Vec<f64>,
    pub shift_excess_s: Vec<f64>,
}

#[derive(Debug, Clone, Copy, Default)]
struct One {
    n_stops: u32,
    distance: f64,
    travel_s: f64,
    service_s: f64,
    unload_s: f64,
    load: f64,
    peak_load: f64,
    unloads: u32,
    excess_load: f64,
}

struct Ctx<'a> {
    dist: Matrix<'a>,
    p: &'a EvalParams<'a>,
}

impl Ctx<'_> {
    /// The facility minimising `d(a, f) + d(f, b)`.
    fn best_facility(&self, a: usize, b: usize) -> usize {
        let mut best = self.p.facilities[0];
        let mut best_d = f64::INFINITY;
        for &f in self.p.facilities {
            let d = self.dist.at(a, f) + self.dist.at(f, b);
            if d < best_d {
                best_d = d;
                best = f;
            }
        }
        best
    }

    /// One route. `travel(k, d)` is the travel time of the leg at flat matrix index `k`
    /// with distance `d` (generic, so the duration source is resolved once per call).
    #[inline(always)]
    fn route<T: Fn(usize, f64) -> f64>(&self, stops: &[i64], travel: &T) -> One {
        let p = self.p;
        let mut o = One {
            n_stops: stops.len() as u32,
            ..One::default()
        };
        if stops.is_empty() {
            return o;
        }
        let multi_trip = !p.facilities.is_empty();
        let mut pos = p.depot;
        let mut trip = 0.0f64;
        let n = self.dist.n;
        let go = |o: &mut One, from: usize, to: usize| {
            let k = from * n + to;
            let d = self.dist.data[k];
            o.distance += d;
            o.travel_s += travel(k, d);
        };
        for &s in stops {
            let s = s as usize;
            let q = p.demand.map_or(0.0, |d| d[s]);
            if multi_trip && trip > 0.0 && trip + q > p.capacity {
                let f = self.best_facility(pos, s);
                go(&mut o, pos, f);
                o.unload_s += p.unload_s;
                o.unloads += 1;
                o.excess_load += (trip - p.capacity).max(0.0);
                trip = 0.0;
                pos = f;
            }
            go(&mut o, pos, s);
            o.service_s += p.service_s.map_or(0.0, |c| c[s]);
            trip += q;
            o.load += q;
            o.peak_load = o.peak_load.max(trip);
            pos = s;
        }
        if multi_trip {
            let f = self.best_facility(pos, p.depot);
            go(&mut o, pos, f);
            o.unload_s += p.unload_s;
            o.unloads += 1;
            pos = f;
        }
        o.excess_load += (trip - p.capacity).max(0.0);
        go(&mut o, pos, p.depot);
        o
    }
}

fn check_durations(dist: &Matrix<'_>, dur: &Durations<'_>) -> Result<(), RouteError> {
    if let Durations::Matrix(m) = dur {
        if m.n != dist.n {
            return Err(RouteError::invalid(format!(
                "duration matrix has {} nodes, distance matrix {}",
                m.n, dist.n
            )));
        }
    }
    Ok(())
}

/// Evaluates every route, in parallel. Raises on invalid parameters, and when a route's
/// distance or duration is NaN (a NaN entry in a matrix it uses).
pub fn evaluate(
    dist: Matrix<'_>,
    dur: Durations<'_>,
    routes: Routes<'_>,
    params: &EvalParams<'_>,
) -> Result<RouteMetrics, RouteError> {
    params.validate(dist.n)?;
    check_durations(&dist, &dur)?;
    let ctx = Ctx { dist, p: params };
    let all = (0..routes.len()).into_par_iter().with_min_len(64);
    let ones: Vec<One> = match dur {
        Durations::Matrix(m) => all
            .map(|r| ctx.route(routes.route(r), &|k, _| m.data[k]))
            .collect(),
        Durations::Profile(p) => all
            .map(|r| ctx.route(routes.route(r), &|_, d| p.duration_s(d)))
            .collect(),
    };
    let mut m = RouteMetrics::default();
    for (r, o) in ones.iter().enumerate() {
        let duration = o.travel_s + o.service_s + o.unload_s;
        if o.distance.is_nan() || duration.is_nan() {
            return Err(RouteError::invalid(format!(
                "route {r}: a matrix entry on its path is NaN (distance {}, duration {duration})",
                o.distance
            )));
        }
        m.n_stops.push(o.n_stops);
        m.distance.push(o.distance);
        m.duration_s.push(duration);
        m.travel_s.push(o.travel_s);
        m.service_s.push(o.service_s);
        m.unload_s.push(o.unload_s);
        m.load.push(o.load);
        m.peak_load.push(o.peak_load);
        m.unloads.push(o.unloads);
        m.excess_load.push(o.excess_load);
        m.shift_excess_s.push((duration - params.shift_s).max(0.0));
    }
    Ok(m)
}

/// Total distance of routes that start and end at `depot` (the CVRP objective).
pub fn total_distance(
    dist: Matrix<'_>,
    routes: Routes<'_>,
    depot: usize,
) -> Result<f64, RouteError> {
    if depot >= dist.n {
        return Err(RouteError::invalid(format!(
            "depot {depot} is not an index of the {}-node matrix",
            dist.n
        )));
    }
    let per: Vec<f64> = (0..routes.len())
        .into_par_iter()
        .with_min_len(64)
        .map(|r| {
            let mut pos = depot;
            let mut d = 0.0;
            let stops = routes.route(r);
            if stops.is_empty() {
                return 0.0;
            }
            for &s in stops {
                d += dist.at(pos, s as usize);
                pos = s as usize;
            }
            d + dist.at(pos, depot)
        })
        .collect();
    // Summed in route order so the total does not depend on the thread count.
    let total: f64 = per.iter().sum();
    if total.is_nan() {
        return Err(RouteError::invalid("a matrix entry on a route is NaN"));
    }
    Ok(total)
}

/// Best place to insert one node into existing routes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Insertion {
    /// Route index, or -1 when no route can take the node.
    pub route: i64,
    /// Position in the route (0 = before the first stop, len = after the last).
    pub position: i64,
    /// Added distance: `d(a, c) + d(c, b) - d(a, b)`.
    pub added: f64,
}

/// For each candidate node, the cheapest insertion into any route (by added distance;
/// ties: the first route, then the first position). With `demand` and a finite
/// `capacity` and no facilities, routes whose load plus the candidate's demand exceeds
/// the capacity are skipped. Candidates in parallel.
pub fn cheapest_insertion(
    dist: Matrix<'_>,
    routes: Routes<'_>,
    candidates: &[i64],
    params: &EvalParams<'_>,
) -> Result<Vec<Insertion>, RouteError> {
    params.validate(dist.n)?;
    if let Some(&c) = candidates
        .iter()
        .find(|&&c| c < 0 || c as u64 >= dist.n as u64)
    {
        return Err(RouteError::invalid(format!(
            "candidate {c} is not an index of the {}-node matrix",
            dist.n
        )));
    }
    let check_load =
        params.demand.is_some() && params.capacity.is_finite() && params.facilities.is_empty();
    let loads: Vec<f64> = (0..routes.len())
        .map(|r| match params.demand {
            Some(d) if check_load => routes.route(r).iter().map(|&s| d[s as usize]).sum(),
            _ => 0.0,
        })
        .collect();
    let depot = params.depot;
    Ok(candidates
        .par_iter()
        .map(|&c| {
            let c = c as usize;
            let q = if check_load {
                params.demand.map_or(0.0, |d| d[c])
            } else {
                0.0
            };
            let mut best = Insertion {
                route: -1,
                position: -1,
                added: f64::INFINITY,
            };
            for (r, &load) in loads.iter().enumerate() {
                if check_load && load + q > params.capacity {
                    continue;
                }
                let stops = routes.route(r);
                let mut prev = depot;
                for k in 0..=stops.len() {
                    let next = if k < stops.len() {
                        stops[k] as usize
                    } else {
                        depot
                    };
                    let added = dist.at(prev, c) + dist.at(c, next) - dist.at(prev, next);
                    if added < best.added {
                        best = Insertion {
                            route: r as i64,
                            position: k as i64,
                            added,
                        };
                    }
                    prev = next;
                }
            }
            best
        })
        .collect())
}
