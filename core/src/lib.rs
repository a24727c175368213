//! tidstream core: sensor frame codecs, LoRaWAN uplink envelopes and the columnar
//! batch kernels behind the `tidstream` Python package.
//!
//! The crate builds and tests without Python; the PyO3 bindings live in `py/` behind
//! the `python` feature.
//!
//! ```
//! use _core::codec::{Registry, Codec};
//! use _core::reading::Reading;
//! let codec = Registry::global().get("milesight-em310-udl").unwrap();
//! let mut r = Reading::default();
//! codec.decode(&[0x01, 0x75, 0x5c, 0x03, 0x82, 0x44, 0x08, 0x04, 0x00, 0x01], Some(85), &mut r).unwrap();
//! assert_eq!(r.distance_mm, Some(2116.0));
//! assert_eq!(r.tilt, Some(true));
//! ```

pub mod codec;
pub mod envelope;
pub mod error;
pub mod fill;
pub mod forecast;
pub mod ingest;
pub mod json_rows;
mod mem;
pub mod natsio;
pub mod reading;
pub mod routes;
pub mod sim;
pub mod value;

#[cfg(feature = "python")]
mod py;

/// Version of the core (and of the Python package).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
