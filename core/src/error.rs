//! Typed decode errors: every failure carries its kind and the byte offset where it
//! was found. Prose is derived lazily in `Display`; the Python layer maps these
//! in one place (`py/errors.rs`).

use std::fmt;

/// What went wrong. The snake_case [`ErrorKind::name`] of each variant is a stable,
/// documented API (it ends up in dead-letter subjects and Parquet columns).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// The frame ended inside an element that needs `needed` bytes; `available` were left.
    Truncated { needed: usize, available: usize },
    /// Bytes left over after a complete frame, or a length that disagrees with the layout.
    LengthMismatch { expected: usize, actual: usize },
    /// The payload arrived on an fPort the model does not use.
    UnknownFport { fport: i64 },
    /// The payload is empty (0 bytes).
    EmptyPayload,
    /// The payload is absent (a null in the input column).
    MissingPayload,
    /// A TLV record tag (channel/type) the model does not know.
    UnknownRecord { tag: u32 },
    /// A frame header or marker byte with the wrong value.
    BadHeader { found: u32 },
    /// A frame format version this decoder does not know (`expected` is the one it does).
    UnsupportedVersion { version: u32, expected: u32 },
    /// The frame checksum does not match its content.
    CrcMismatch { expected: u32, actual: u32 },
    /// A value outside what the format allows.
    InvalidValue { what: &'static str },
    /// A frame the vendor decoder recognises but refuses (vendor's own message).
    VendorError { message: &'static str },
    /// Envelope: the message is not valid JSON.
    InvalidJson { detail: String },
    /// Envelope: a required field is absent.
    MissingField { field: &'static str },
    /// Envelope: a field has the wrong JSON type or an impossible value.
    WrongType { field: &'static str },
    /// Envelope: a payload string is not valid base64.
    InvalidBase64,
    /// Envelope: a timestamp that is not RFC 3339.
    InvalidTimestamp { field: &'static str },
    /// Envelope: the message is an event other than an uplink (join, downlink ack, ...).
    NotUplink,
    /// Envelope: a DevEUI that is not 16 hex digits.
    InvalidDevEui,
}

impl ErrorKind {
    /// Stable snake_case name of the kind.
    pub fn name(&self) -> &'static str {
        match self {
            ErrorKind::Truncated { .. } => "truncated",
            ErrorKind::LengthMismatch { .. } => "length_mismatch",
            ErrorKind::UnknownFport { .. } => "unknown_fport",
            ErrorKind::EmptyPayload => "empty_payload",
            ErrorKind::MissingPayload => "missing_payload",
            ErrorKind::UnknownRecord { .. } => "unknown_record",
            ErrorKind::BadHeader { .. } => "bad_header",
            ErrorKind::UnsupportedVersion { .. } => "unsupported_version",
            ErrorKind::CrcMismatch { .. } => "crc_mismatch",
            ErrorKind::InvalidValue { .. } => "invalid_value",
            ErrorKind::VendorError { .. } => "vendor_error",
            ErrorKind::InvalidJson { .. } => "invalid_json",
            ErrorKind::MissingField { .. } => "missing_field",
            ErrorKind::WrongType { .. } => "wrong_type",
            ErrorKind::InvalidBase64 => "invalid_base64",
            ErrorKind::InvalidTimestamp { .. } => "invalid_timestamp",
            ErrorKind::NotUplink => "not_uplink",
            ErrorKind::InvalidDevEui => "invalid_dev_eui",
        }
    }

    /// Every kind name, for documentation and tests.
    pub const ALL_NAMES: &'static [&'static str] = &[
        "truncated",
        "length_mismatch",
        "unknown_fport",
        "empty_payload",
        "missing_payload",
        "unknown_record",
        "bad_header",
        "unsupported_version",
        "crc_mismatch",
        "invalid_value",
        "vendor_error",
        "invalid_json",
        "missing_field",
        "wrong_type",
        "invalid_base64",
        "invalid_timestamp",
        "not_uplink",
        "invalid_dev_eui",
    ];
}

/// A decode failure: a kind and the byte offset (into the frame payload, or into the
/// JSON message for envelope errors) where it was detected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    pub kind: ErrorKind,
    pub offset: usize,
}

/// Result alias used across the core.
pub type DecodeResult<T> = Result<T, DecodeError>;

impl DecodeError {
    #[cold]
    pub fn new(kind: ErrorKind, offset: usize) -> Self {
        DecodeError { kind, offset }
    }
    #[cold]
    pub fn truncated(offset: usize, needed: usize, available: usize) -> Self {
        Self::new(ErrorKind::Truncated { needed, available }, offset)
    }
    #[cold]
    pub fn unknown_fport(fport: Option<u8>) -> Self {
        Self::new(
            ErrorKind::UnknownFport {
                fport: fport.map_or(-1, i64::from),
            },
            0,
        )
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = self.offset;
        match &self.kind {
            ErrorKind::Truncated { needed, available } => write!(
                f,
                "truncated frame at byte {o}: needed {needed} byte(s), {available} left"
            ),
            ErrorKind::LengthMismatch { expected, actual } => write!(
                f,
                "length mismatch at byte {o}: expected {expected} byte(s), got {actual}"
            ),
            ErrorKind::UnknownFport { fport } => {
                if *fport < 0 {
                    write!(f, "unknown FPort: this model needs an fPort and none was given")
                } else {
                    write!(f, "unknown FPort {fport}")
                }
            }
            ErrorKind::EmptyPayload => write!(f, "empty payload (0 bytes)"),
            ErrorKind::MissingPayload => write!(f, "missing payload (null)"),
            ErrorKind::UnknownRecord { tag } => {
                let width = if *tag > 0xFF { 4 } else { 2 };
                write!(f, "unknown record tag 0x{tag:0width$x} at byte {o}")
            }
            ErrorKind::BadHeader { found } => {
                write!(f, "bad header byte 0x{found:02x} at byte {o}")
            }
            ErrorKind::UnsupportedVersion { version, expected } => write!(
                f,
                "protocol version {version} doesn't match v{expected} (unsupported frame version at byte {o})"
            ),
            ErrorKind::CrcMismatch { expected, actual } => write!(
                f,
                "CRC mismatch at byte {o}: frame says 0x{expected:04x}, content gives 0x{actual:04x}"
            ),
            ErrorKind::InvalidValue { what } => write!(f, "invalid value at byte {o}: {what}"),
            ErrorKind::VendorError { message } => write!(f, "{message} (at byte {o})"),
            ErrorKind::InvalidJson { detail } => write!(f, "invalid JSON at byte {o}: {detail}"),
            ErrorKind::MissingField { field } => write!(f, "missing field `{field}`"),
            ErrorKind::WrongType { field } => {
                write!(f, "field `{field}` has the wrong type or value (at byte {o})")
            }
            ErrorKind::InvalidBase64 => write!(f, "payload is not valid base64 (at byte {o})"),
            ErrorKind::InvalidTimestamp { field } => {
                write!(f, "field `{field}` is not an RFC 3339 timestamp (at byte {o})")
            }
            ErrorKind::NotUplink => write!(f, "message is not an uplink event"),
            ErrorKind::InvalidDevEui => write!(f, "DevEUI is not 16 hex digits (at byte {o})"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// A layout file that cannot be compiled into a codec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayoutError {
    /// Where in the layout: e.g. `record[2].field[0].type`.
    pub path: String,
    pub message: String,
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "invalid layout: {}", self.message)
        } else {
            write!(f, "invalid layout at {}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for LayoutError {}
