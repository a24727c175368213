//! Sparse k-nearest-neighbour distance matrices for territories too large for a full one.
//!
//! Points become unit vectors (see [`super::matrix::UnitVectors`]); the chord between
//! unit vectors is a monotone function of the great-circle distance, so the k nearest
//! by chord in 3-D are exactly the k nearest on the sphere. A k-d tree over the vectors
//! answers each query in about `O(log n + k)`; queries run in parallel. Output is CSR:
//! row `i` holds the `k` nearest other points of `i` sorted by distance (ties by
//! index), distances in metres times the circuity, with the same kernel as the full
//! matrix (so entries equal the full matrix's bit for bit).

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use rayon::prelude::*;

use super::matrix::{asin_unit, validate_circuity, validate_coords, UnitVectors, EARTH_RADIUS_M};
use super::RouteError;

const LEAF: usize = 16;

struct Node {
    /// Range of `order` covered by this node.
    start: usize,
    end: usize,
    /// Split axis (0, 1, 2) and value; leaves have `left == usize::MAX`.
    axis: usize,
    split: f64,
    left: usize,
    right: usize,
}

struct Tree<'a> {
    pts: &'a UnitVectors,
    order: Vec<usize>,
    nodes: Vec<Node>,
}

#[inline(always)]
fn coord(p: &UnitVectors, i: usize, axis: usize) -> f64 {
    match axis {
        0 => p.x[i],
        1 => p.y[i],
        _ => p.z[i],
    }
}

#[inline(always)]
fn chord2(p: &UnitVectors, i: usize, j: usize) -> f64 {
    let (dx, dy, dz) = (p.x[i] - p.x[j], p.y[i] - p.y[j], p.z[i] - p.z[j]);
    dx * dx + dy * dy + dz * dz
}

impl<'a> Tree<'a> {
    fn new(pts: &'a UnitVectors) -> Self {
        let mut t = Tree {
            pts,
            order: (0..pts.len()).collect(),
            nodes: Vec::new(),
        };
        if !pts.is_empty() {
            t.build(0, pts.len());
        }
        t
    }

    fn build(&mut self, start: usize, end: usize) -> usize {
        let id = self.nodes.len();
        self.nodes.push(Node {
            start,
            end,
            axis: 0,
            split: 0.0,
            left: usize::MAX,
            right: usize::MAX,
        });
        if end - start <= LEAF {
            return id;
        }
        // Split on the axis of largest spread, at the median.
        let mut best = (0usize, -1.0f64);
        for axis in 0..3 {
            let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
            for &i in &self.order[start..end] {
                let v = coord(self.pts, i, axis);
                lo = lo.min(v);
                hi = hi.max(v);
            }
            if hi - lo > best.1 {
                best = (axis, hi - lo);
            }
        }
        let axis = best.0;
        let mid = (start + end) / 2;
        let pts = self.pts;
        self.order[start..end].select_nth_unstable_by(mid - start, |&a, &b| {
            coord(pts, a, axis).total_cmp(&coord(pts, b, axis))
        });
        let split = coord(pts, self.order[mid], axis);
        let left = self.build(start, mid);
        let right = self.build(mid, end);
        let n = &mut self.nodes[id];
        n.axis = axis;
        n.split = split;
        n.left = left;
        n.right = right;
        id
    }

    /// The `k` nearest points of `q` other than `q` itself, into `heap` (max-heap).
    fn query(&self, q: usize, k: usize, heap: &mut BinaryHeap<Cand>) {
        heap.clear();
        if !self.nodes.is_empty() {
            self.visit(0, q, k, heap);
        }
    }

    fn visit(&self, id: usize, q: usize, k: usize, heap: &mut BinaryHeap<Cand>) {
        let node = &self.nodes[id];
        if node.left == usize::MAX {
            for &i in &self.order[node.start..node.end] {
                if i == q {
                    continue;
                }
                let c = Cand {
                    d2: chord2(self.pts, q, i),
                    idx: i,
                };
                if heap.len() < k {
                    heap.push(c);
                } else if c < *heap.peek().expect("heap holds k > 0 items") {
                    heap.pop();
                    heap.push(c);
                }
            }
            return;
        }
        let diff = coord(self.pts, q, node.axis) - node.split;
        let (near, far) = if diff < 0.0 {
            (node.left, node.right)
        } else {
            (node.right, node.left)
        };
        self.visit(near, q, k, heap);
        // Points on the far side are at least |diff| away along this axis (`<=` keeps
        // ties by index exact).
        if heap.len() < k || diff * diff <= heap.peek().map_or(f64::INFINITY, |c| c.d2) {
            self.visit(far, q, k, heap);
        }
    }
}

/// A candidate neighbour, ordered by (squared chord, index).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Cand {
    d2: f64,
    idx: usize,
}

impl Eq for Cand {}

impl PartialOrd for Cand {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Cand {
    fn cmp(&self, other: &Self) -> Ordering {
        self.d2.total_cmp(&other.d2).then(self.idx.cmp(&other.idx))
    }
}

/// CSR rows of the k nearest neighbours.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Knn {
    /// `n + 1` row offsets.
    pub indptr: Vec<i64>,
    pub indices: Vec<i64>,
    /// Metres times the circuity.
    pub distances: Vec<f64>,
}

/// The `min(k, n - 1)` nearest other points of every point, sorted by distance (ties by
/// index), in parallel. Validates coordinates, circuity and `k >= 1`.
pub fn knn(lat_deg: &[f64], lon_deg: &[f64], k: usize, circuity: f64) -> Result<Knn, RouteError> {
    validate_coords(lat_deg, lon_deg, "knn_matrix")?;
    validate_circuity(circuity)?;
    if k == 0 {
        return Err(RouteError::invalid("k must be >= 1"));
    }
    let pts = UnitVectors::new(lat_deg, lon_deg);
    let n = pts.len();
    let kk = k.min(n.saturating_sub(1));
    let tree = Tree::new(&pts);
    let scale = 2.0 * EARTH_RADIUS_M * circuity;
    let mut indices = vec![0i64; n * kk];
    let mut distances = vec![0.0f64; n * kk];
    if kk > 0 {
        indices
            .par_chunks_mut(kk)
            .zip(distances.par_chunks_mut(kk))
            .enumerate()
            .for_each_init(
                || BinaryHeap::with_capacity(kk + 1),
                |heap, (q, (idx_row, d_row))| {
                    tree.query(q, kk, heap);
                    let mut found = std::mem::take(heap).into_sorted_vec();
                    for (slot, c) in found.iter().enumerate() {
                        idx_row[slot] = c.idx as i64;
                        d_row[slot] = scale * asin_unit((c.d2.sqrt() * 0.5).min(1.0));
                    }
                    found.clear();
                    *heap = BinaryHeap::from(found);
                },
            );
    }
    let indptr = (0..=n).map(|i| (i * kk) as i64).collect();
    Ok(Knn {
        indptr,
        indices,
        distances,
    })
}
