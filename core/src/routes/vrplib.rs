//! VRPLIB / TSPLIB instances and CVRPLIB solutions, from text.
//!
//! Instance: `KEY : value` header lines, then sections (`NODE_COORD_SECTION`,
//! `DEMAND_SECTION`, `DEPOT_SECTION` ended by `-1`, `EDGE_WEIGHT_SECTION`,
//! `SERVICE_TIME_SECTION`), `EOF`. Node `k` of the file (1-based) is matrix index
//! `k - 1`. Distances follow the TSPLIB conventions:
//!
//! * `EUC_2D`: Euclidean distance rounded to the nearest integer per edge
//!   (`nint(x) = floor(x + 0.5)`), the convention of the CVRPLIB best-known solutions
//!   (A, B, E, F, M, P and X sets);
//! * `CEIL_2D`: rounded up;
//! * `EXPLICIT`: the weights as given, in `FULL_MATRIX`, `LOWER_ROW`, `UPPER_ROW`,
//!   `LOWER_DIAG_ROW` or `UPPER_DIAG_ROW` order.
//!
//! [`Rounding`] overrides the convention for coordinate instances (`Exact`: no
//! rounding; `Dimacs`: `floor(10 d)`, the VRPTW convention of tenths).
//!
//! Solution: `Route #k: a b c` lines with customer numbers (the depot, node 1 of the
//! file, is 0 and left out, so customer `c` is matrix index `c`) and `Cost x`.

use super::matrix::alloc_matrix;
use super::RouteError;

/// How coordinate distances are rounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rounding {
    /// The TSPLIB convention of the instance's `EDGE_WEIGHT_TYPE` (nint for EUC_2D, ceil for CEIL_2D).
    Tsplib,
    /// Plain Euclidean distance.
    Exact,
    /// DIMACS: `floor(10 d)` (costs in tenths).
    Dimacs,
}

impl Rounding {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "tsplib" => Some(Rounding::Tsplib),
            "exact" | "none" => Some(Rounding::Exact),
            "dimacs" => Some(Rounding::Dimacs),
            _ => None,
        }
    }
}

/// A parsed instance. Indices are 0-based.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Instance {
    pub name: String,
    /// Every `KEY : value` header line, in file order (values trimmed, quotes kept).
    pub headers: Vec<(String, String)>,
    pub dimension: usize,
    pub edge_weight_type: String,
    pub capacity: Option<f64>,
    /// `(x, y)` per node when the file has `NODE_COORD_SECTION`.
    pub coords: Option<Vec<(f64, f64)>>,
    /// Demand per node (zeros when there is no `DEMAND_SECTION`).
    pub demands: Vec<f64>,
    /// Service time per node when the file has `SERVICE_TIME_SECTION`.
    pub service_times: Option<Vec<f64>>,
    /// Depot indices (0-based); `[0]` when there is no `DEPOT_SECTION`.
    pub depots: Vec<usize>,
    /// `dimension × dimension`, row-major.
    pub matrix: Vec<f64>,
}

impl Instance {
    pub fn header(&self, key: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

const SECTIONS: [&str; 6] = [
    "NODE_COORD_SECTION",
    "DEMAND_SECTION",
    "DEPOT_SECTION",
    "EDGE_WEIGHT_SECTION",
    "SERVICE_TIME_SECTION",
    "TIME_WINDOW_SECTION",
];

fn unquote(v: &str) -> &str {
    let v = v.trim();
    v.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(v)
}

fn num(tok: &str, line: usize, what: &str) -> Result<f64, RouteError> {
    tok.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| RouteError::parse(line, format!("{what}: {tok:?} is not a finite number")))
}

fn node_id(tok: &str, line: usize, dim: usize) -> Result<usize, RouteError> {
    let id: i64 = tok
        .parse()
        .map_err(|_| RouteError::parse(line, format!("node id {tok:?} is not an integer")))?;
    if id < 1 || id as u64 > dim as u64 {
        return Err(RouteError::parse(
            line,
            format!("node id {id} outside 1..={dim} (DIMENSION)"),
        ));
    }
    Ok(id as usize - 1)
}

/// A data line of a section: (1-based line number, tokens).
type Row<'a> = (usize, Vec<&'a str>);

/// Parses an instance. Errors carry the 1-based line number.
pub fn parse_instance(text: &str, rounding: Rounding) -> Result<Instance, RouteError> {
    let mut inst = Instance::default();
    let mut section: Option<&str> = None;
    let mut rows: Vec<Row<'_>> = Vec::new();
    let mut by_section: Vec<(&str, Vec<Row<'_>>)> = Vec::new();
    // Sections we do not use (DISPLAY_DATA_SECTION, ...) are read and ignored.
    for (k, raw) in text.lines().enumerate() {
        let line_no = k + 1;
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        let first = line.split_whitespace().next().unwrap_or("");
        let word = first.trim_end_matches(':');
        if line == "EOF" {
            break;
        }
        if word.ends_with("_SECTION") {
            if let Some(s) = section.take() {
                by_section.push((s, std::mem::take(&mut rows)));
            }
            section = Some(
                SECTIONS
                    .iter()
                    .copied()
                    .find(|s| *s == word)
                    .unwrap_or("OTHER_SECTION"),
            );
            continue;
        }
        if let Some((key, value)) = line.split_once(':') {
            if key
                .trim()
                .chars()
                .all(|c| c.is_ascii_uppercase() || c == '_' || c == ' ')
                && !key.trim().is_empty()
            {
                if let Some(s) = section.take() {
                    by_section.push((s, std::mem::take(&mut rows)));
                }
                inst.headers
                    .push((key.trim().to_string(), value.trim().to_string()));
                continue;
            }
        }
        match section {
            Some(_) => rows.push((line_no, line.split_whitespace().collect())),
            None => {
                return Err(RouteError::parse(
                    line_no,
                    format!("expected `KEY : value` or a section, got {line:?}"),
                ))
            }
        }
    }
    if let Some(s) = section.take() {
        by_section.push((s, rows));
    }

    inst.name = inst
        .header("NAME")
        .map(|v| unquote(v).to_string())
        .unwrap_or_default();
    let dim_s = inst
        .header("DIMENSION")
        .ok_or_else(|| RouteError::parse(1, "no DIMENSION header"))?;
    inst.dimension = unquote(dim_s)
        .parse()
        .map_err(|_| RouteError::parse(1, format!("DIMENSION {dim_s:?} is not an integer")))?;
    let n = inst.dimension;
    if n == 0 || n > 200_000 {
        return Err(RouteError::parse(
            1,
            format!("DIMENSION {n} outside 1..=200000"),
        ));
    }
    inst.edge_weight_type = inst
        .header("EDGE_WEIGHT_TYPE")
        .map(|v| unquote(v).to_string())
        .unwrap_or_default();
    if let Some(c) = inst.header("CAPACITY") {
        inst.capacity = Some(num(unquote(c), 1, "CAPACITY")?);
    }
    inst.demands = vec![0.0; n];
    inst.depots = vec![0];
    let mut weights: Option<(usize, Vec<f64>)> = None;
    for (name, rows) in by_section {
        match name {
            "NODE_COORD_SECTION" => {
                let mut c = vec![(f64::NAN, f64::NAN); n];
                for (ln, toks) in &rows {
                    if toks.len() < 3 {
                        return Err(RouteError::parse(*ln, "coordinates: expected `id x y`"));
                    }
                    let i = node_id(toks[0], *ln, n)?;
                    c[i] = (num(toks[1], *ln, "x")?, num(toks[2], *ln, "y")?);
                }
                if let Some(i) = c.iter().position(|p| p.0.is_nan()) {
                    return Err(RouteError::parse(
                        1,
                        format!("NODE_COORD_SECTION: node {} has no coordinates", i + 1),
                    ));
                }
                inst.coords = Some(c);
            }
            "DEMAND_SECTION" | "SERVICE_TIME_SECTION" => {
                let mut v = vec![0.0; n];
                for (ln, toks) in &rows {
                    if toks.len() < 2 {
                        return Err(RouteError::parse(
                            *ln,
                            format!("{name}: expected `id value`"),
                        ));
                    }
                    v[node_id(toks[0], *ln, n)?] = num(toks[1], *ln, name)?;
                }
                if name == "DEMAND_SECTION" {
                    inst.demands = v;
                } else {
                    inst.service_times = Some(v);
                }
            }
            "DEPOT_SECTION" => {
                let mut d = Vec::new();
                'outer: for (ln, toks) in &rows {
                    for t in toks {
                        if *t == "-1" {
                            break 'outer;
                        }
                        d.push(node_id(t, *ln, n)?);
                    }
                }
                if d.is_empty() {
                    return Err(RouteError::parse(1, "DEPOT_SECTION lists no depot"));
                }
                inst.depots = d;
            }
            "EDGE_WEIGHT_SECTION" => {
                let first_line = rows.first().map_or(1, |r| r.0);
                let mut w = Vec::new();
                for (ln, toks) in &rows {
                    for t in toks {
                        w.push(num(t, *ln, "edge weight")?);
                    }
                }
                weights = Some((first_line, w));
            }
            _ => {} // time windows: kept out of the cost model for now
        }
    }

    inst.matrix = match inst.edge_weight_type.as_str() {
        "EUC_2D" | "CEIL_2D" => {
            let c = inst.coords.as_ref().ok_or_else(|| {
                RouteError::parse(1, "EDGE_WEIGHT_TYPE needs a NODE_COORD_SECTION")
            })?;
            let ceil = inst.edge_weight_type == "CEIL_2D";
            let mut m = alloc_matrix(n * n).map_err(|e| RouteError::parse(1, e.message))?;
            for i in 0..n {
                for j in 0..n {
                    let d = ((c[i].0 - c[j].0).powi(2) + (c[i].1 - c[j].1).powi(2)).sqrt();
                    m[i * n + j] = match rounding {
                        Rounding::Tsplib if ceil => d.ceil(),
                        Rounding::Tsplib => (d + 0.5).floor(),
                        Rounding::Exact => d,
                        Rounding::Dimacs => (10.0 * d).floor(),
                    };
                }
            }
            m
        }
        "EXPLICIT" => {
            let (line, w) = weights.ok_or_else(|| {
                RouteError::parse(1, "EXPLICIT weights need an EDGE_WEIGHT_SECTION")
            })?;
            let fmt = inst.header("EDGE_WEIGHT_FORMAT").map(unquote).unwrap_or("");
            explicit_matrix(fmt, &w, n).map_err(|m| RouteError::parse(line, m))?
        }
        other => {
            return Err(RouteError::parse(
                1,
                format!("EDGE_WEIGHT_TYPE {other:?} not supported (EUC_2D, CEIL_2D, EXPLICIT)"),
            ))
        }
    };
    Ok(inst)
}

fn explicit_matrix(fmt: &str, w: &[f64], n: usize) -> Result<Vec<f64>, String> {
    let mut m = alloc_matrix(n * n).map_err(|e| e.message)?;
    // (i, j) pairs in the order the format lists them.
    let pairs: Box<dyn Iterator<Item = (usize, usize)>> = match fmt {
        "FULL_MATRIX" => Box::new((0..n).flat_map(move |i| (0..n).map(move |j| (i, j)))),
        "LOWER_ROW" => Box::new((1..n).flat_map(|i| (0..i).map(move |j| (i, j)))),
        "LOWER_DIAG_ROW" => Box::new((0..n).flat_map(|i| (0..=i).map(move |j| (i, j)))),
        "UPPER_ROW" => Box::new((0..n).flat_map(move |i| (i + 1..n).map(move |j| (i, j)))),
        "UPPER_DIAG_ROW" => Box::new((0..n).flat_map(move |i| (i..n).map(move |j| (i, j)))),
        other => return Err(format!("EDGE_WEIGHT_FORMAT {other:?} not supported")),
    };
    let mut k = 0;
    for (i, j) in pairs {
        let v = *w.get(k).ok_or_else(|| {
            format!(
                "EDGE_WEIGHT_SECTION has {} values, {fmt} needs more",
                w.len()
            )
        })?;
        m[i * n + j] = v;
        if fmt != "FULL_MATRIX" {
            m[j * n + i] = v;
        }
        k += 1;
    }
    if k != w.len() {
        return Err(format!(
            "EDGE_WEIGHT_SECTION has {} values, {fmt} with DIMENSION {n} takes {k}",
            w.len()
        ));
    }
    Ok(m)
}

/// A CVRPLIB solution: routes of customer numbers (= matrix indices, depot 0 left out)
/// and the stated cost, if any.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Solution {
    pub routes: Vec<Vec<usize>>,
    pub cost: Option<f64>,
}

pub fn parse_solution(text: &str) -> Result<Solution, RouteError> {
    let mut sol = Solution::default();
    for (k, raw) in text.lines().enumerate() {
        let ln = k + 1;
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("Route") {
            let (_, stops) = rest
                .split_once(':')
                .ok_or_else(|| RouteError::parse(ln, "expected `Route #k: stops`"))?;
            let mut r = Vec::new();
            for t in stops.split_whitespace() {
                let v: usize = t.parse().map_err(|_| {
                    RouteError::parse(ln, format!("stop {t:?} is not a non-negative integer"))
                })?;
                r.push(v);
            }
            sol.routes.push(r);
        } else if let Some(rest) = line.strip_prefix("Cost") {
            sol.cost = Some(num(rest.trim(), ln, "Cost")?);
        } else {
            return Err(RouteError::parse(
                ln,
                format!("expected `Route #k: ...` or `Cost x`, got {line:?}"),
            ));
        }
    }
    Ok(sol)
}
