//! PyO3 bindings of the simulator (`core/src/sim/`).

use pyo3::prelude::*;

/// Register the simulator functions on the `_core` module.
pub fn register(_m: &Bound<'_, PyModule>) -> PyResult<()> {
    Ok(())
}
