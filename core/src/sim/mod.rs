//! Simulated sensor fleet (fill dynamics, sensor realism, frame generation).
//!
//! The territory (which containers, where, with which sensor and geometry) is built
//! by the Python side (`tidstream.simulate.Territory`); this module takes it as a
//! list of [`DeviceSpec`] and produces, deterministically from a seed:
//!
//! - the uplinks in time order: vendor frames encoded by the real codecs
//!   (`Registry::global()`), wrapped in TTN v3 / ChirpStack v4 JSON envelopes or
//!   left raw ([`Chunk`] `up_*` columns);
//! - the ground truth: the true fill behind every measurement (`tr_*`), the
//!   collections (`col_*`) and the overflows (`ov_*`).
//!
//! ```
//! use _core::sim::{DeviceSpec, Kind, SimConfig, Simulator};
//! let dev = DeviceSpec {
//!     kind: Kind::GlassBank, model: 0, dev_eui: 0x70b3d5_0000000001, name: "c1".into(),
//!     depth_mm: 1600.0, offset_mm: 200.0, volume_l: 3000.0, market_dow: -1,
//! };
//! let cfg = SimConfig { seed: 1, steps: 48, ..SimConfig::default() };
//! let mut sim = Simulator::new(vec![dev], cfg).unwrap();
//! let mut frames = 0;
//! while let Some(chunk) = sim.next_chunk(1000).unwrap() {
//!     frames += chunk.uplinks();
//! }
//! assert!(frames > 0 && frames <= 50);
//! ```

pub mod calendar;
pub mod engine;
pub mod json;
pub mod models;
pub mod profile;
pub mod rng;

pub use engine::{
    condition, delivered, Chunk, DeviceSpec, Envelope, EnvelopeMode, SimConfig, Simulator,
};
pub use models::{model_index, model_names, MODELS};
pub use profile::{Kind, Schedule};

/// A simulator argument that cannot be used; the message names the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimError(pub String);

impl std::fmt::Display for SimError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SimError {}
