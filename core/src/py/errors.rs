//! The one place core errors become Python exceptions. The exception classes are
//! defined in Python (`tidstream/exceptions.py`) so they can inherit from both
//! `TidstreamError` and `ValueError` and carry documented attributes.

use pyo3::prelude::*;

use crate::codec::EncodeError;
use crate::error::{DecodeError, LayoutError};

mod exc {
    pyo3::import_exception!(tidstream.exceptions, DecodeError);
    pyo3::import_exception!(tidstream.exceptions, LayoutError);
    pyo3::import_exception!(tidstream.exceptions, EncodeError);
}
use exc::{
    DecodeError as PyDecodeError, EncodeError as PyEncodeError, LayoutError as PyLayoutError,
};

/// `DecodeError(message, kind, offset, frame_index)`.
pub fn decode_error(e: &DecodeError, frame_index: Option<usize>) -> PyErr {
    PyDecodeError::new_err((e.to_string(), e.kind.name(), e.offset, frame_index))
}

pub fn layout_error(e: &LayoutError) -> PyErr {
    PyLayoutError::new_err((e.to_string(), e.path.clone()))
}

pub fn encode_error(e: &EncodeError, frame_index: Option<usize>) -> PyErr {
    PyEncodeError::new_err((e.to_string(), frame_index))
}
