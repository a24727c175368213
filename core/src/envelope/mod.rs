//! LoRaWAN uplink envelopes: the JSON a network server hands to an application
//! (The Things Stack v3 `ApplicationUp`, ChirpStack v4 `up` event), parsed in batches
//! into Arrow-ready columns (one row per message, in input order).
//!
//! Field meanings and quirks are documented in `shared/sensors/ENVELOPES.md`. In short:
//!
//! | column | TTN v3 | ChirpStack v4 |
//! | --- | --- | --- |
//! | `dev_eui` (required) | `end_device_ids.dev_eui` | `deviceInfo.devEui` |
//! | `device_id` | `end_device_ids.device_id` | `deviceInfo.deviceName` |
//! | `received_at_ns` | `received_at`, else `uplink_message.received_at` | `time` |
//! | `fport` | `uplink_message.f_port` (absent = 0) | `fPort` (absent = 0) |
//! | `fcnt` | `uplink_message.f_cnt` (absent = 0) | `fCnt` (absent = 0) |
//! | `payload` (required) | `uplink_message.frm_payload` (base64) | `data` (base64) |
//! | `rssi`, `snr`, `gateway_count` | `uplink_message.rx_metadata[]` | `rxInfo[]` |
//!
//! Parsing is a single validating pass with a small JSON scanner of our own
//! (`scan.rs`, RFC 8259, SSE2/SWAR string scanning; with AVX-512 over a per-message
//! structural index, `index.rs`, the same result): the whole message is validated,
//! unknown keys are skipped without decoding, keys may come in any order (a repeated
//! key: the last one wins), and a `null` value counts as absent (proto3 JSON). Both the snake_case and lowerCamelCase spellings of
//! the keys read are accepted, as protobuf JSON parsers do. A batch performs no
//! per-message heap allocation: payloads are base64-decoded straight into the output
//! column, and device ids copied straight into theirs.
//!
//! A message that cannot be used becomes an *error row* (`ok = false`, every value
//! column null, `error`/`error_kind`/`error_offset` filled) instead of failing the
//! batch. For one message the precedence is: malformed JSON (`invalid_json`), root
//! not an object (`wrong_type`, field `(root)`), another event than an uplink
//! (`not_uplink`), the first bad field in document order (`wrong_type`,
//! `invalid_dev_eui`, `invalid_base64`, `invalid_timestamp`), then a missing required
//! field (`missing_field`). Offsets are bytes into the JSON message: the start of
//! the offending value, or 0 for a missing field.
//!
//! ```
//! use _core::envelope::{parse_one, Format};
//! let msg = br#"{"deviceInfo":{"devEui":"0101010101010101"},"fPort":1,"data":"qg=="}"#;
//! let up = parse_one(Format::ChirpstackV4, msg).unwrap();
//! assert_eq!(up.dev_eui, "0101010101010101");
//! assert_eq!((up.fport, up.payload.as_slice()), (1, &[0xAA][..]));
//! ```

mod index;
mod parse;
mod scan;
pub mod timestamp;

use std::fmt;
use std::io::Write as _;

use crate::codec::PayloadSource;
use crate::error::{DecodeError, ErrorKind};
use crate::reading::{Bitmap, PrimCol, StrCol};

pub use timestamp::parse_rfc3339_ns;

/// The envelope format of a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// The Things Stack v3 (`ttn.lorawan.v3.ApplicationUp`, snake_case JSON).
    TtnV3,
    /// ChirpStack v4 integration `up` event (`integration.UplinkEvent`, lowerCamelCase JSON).
    ChirpstackV4,
}

impl Format {
    /// Look a format up by name: `"ttn-v3"` or `"ttn"`; `"chirpstack-v4"` or
    /// `"chirpstack"`. Case-sensitive; `None` for anything else.
    pub fn parse(name: &str) -> Option<Format> {
        match name {
            "ttn-v3" | "ttn" => Some(Format::TtnV3),
            "chirpstack-v4" | "chirpstack" => Some(Format::ChirpstackV4),
            _ => None,
        }
    }

    /// The canonical name (`"ttn-v3"` or `"chirpstack-v4"`), accepted by [`Format::parse`].
    pub fn name(self) -> &'static str {
        match self {
            Format::TtnV3 => "ttn-v3",
            Format::ChirpstackV4 => "chirpstack-v4",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One parsed uplink (owned), as returned by [`parse_one`]. [`decode_uplinks`] runs the
/// same parser but writes the fields straight into columns.
#[derive(Debug, Clone, PartialEq)]
pub struct Uplink {
    /// DevEUI: always 16 lowercase hex digits.
    pub dev_eui: String,
    /// TTN `end_device_ids.device_id` / ChirpStack `deviceInfo.deviceName`; `None` if absent.
    pub device_id: Option<String>,
    /// When the network server received the uplink, UTC nanoseconds since the Unix
    /// epoch (TTN: top-level `received_at`, else `uplink_message.received_at`;
    /// ChirpStack: `time`). `None` if absent.
    pub received_at_ns: Option<i64>,
    /// LoRaWAN FPort (0..=255); 0 when the envelope omits it.
    pub fport: u8,
    /// Uplink frame counter; 0 when the envelope omits it.
    pub fcnt: u32,
    /// The FRMPayload, base64-decoded (may be empty).
    pub payload: Vec<u8>,
    /// Best (maximum) RSSI over the receiving gateways, dBm; `None` if no gateway
    /// reported one. TTN: `rssi`, else `channel_rssi`.
    pub rssi: Option<f64>,
    /// Best (maximum) SNR over the receiving gateways, dB; `None` if no gateway
    /// reported radio metadata. A gateway with an RSSI but no `snr` key counts as
    /// 0 dB (proto3 JSON omits zero values).
    pub snr: Option<f64>,
    /// Number of entries in `rx_metadata` / `rxInfo` (0 if absent; saturates at 65535).
    pub gateway_count: u16,
}

/// Parse a single envelope message.
///
/// Errors carry an [`ErrorKind`] (`invalid_json`, `wrong_type`, `missing_field`,
/// `invalid_base64`, `invalid_timestamp`, `not_uplink`, `invalid_dev_eui`) and the
/// byte offset in `msg` where the problem was found (0 for a missing field). Never
/// panics, whatever the input.
pub fn parse_one(format: Format, msg: &[u8]) -> Result<Uplink, DecodeError> {
    let mut payload = Vec::new();
    let mut device_id = Vec::new();
    let mut ws = parse::Workspace::new();
    let m = parse::parse_message(format, msg, &mut payload, &mut device_id, &mut ws)?;
    Ok(Uplink {
        dev_eui: m.dev_eui.iter().map(|&b| char::from(b)).collect(),
        device_id: if m.has_device_id {
            // Copied from a `&str`, so always UTF-8.
            Some(String::from_utf8_lossy(&device_id).into_owned())
        } else {
            None
        },
        received_at_ns: m.received_at_ns,
        fport: m.fport,
        fcnt: m.fcnt,
        payload,
        rssi: m.rssi,
        snr: m.snr,
        gateway_count: m.gateway_count,
    })
}

/// Columns of a parsed batch, one row per input message, in order.
///
/// Every column has exactly `len` rows (string/binary columns `len + 1` offsets).
/// On error rows (`ok` false) every value column is null and `error`,
/// `error_kind` and `error_offset` are set; on ok rows those three are null.
/// Variable-length columns use Arrow's 32-bit offsets, so a batch must stay under
/// 2 GiB of payload (offsets saturate at `i32::MAX` beyond that).
#[derive(Debug, Clone, Default)]
pub struct UplinkColumns {
    /// Number of rows (= number of input messages).
    pub len: usize,
    /// `false` = error row.
    pub ok: Bitmap,
    /// 16 lowercase hex chars; null on error rows.
    pub dev_eui: StrCol,
    /// TTN `end_device_ids.device_id`, ChirpStack `deviceInfo.deviceName`; null if absent.
    pub device_id: StrCol,
    /// UTC nanoseconds since the Unix epoch. TTN: top-level `received_at`, else
    /// `uplink_message.received_at`; ChirpStack: `time`. Null if absent.
    pub received_at_ns: PrimCol<i64>,
    /// LoRaWAN FPort, 0..=255 (0 when the envelope omits it).
    pub fport: PrimCol<i32>,
    /// Uplink frame counter, 0..=2^32-1 (0 when omitted).
    pub fcnt: PrimCol<i64>,
    /// Arrow binary column: `len + 1` offsets into `payload_data`.
    pub payload_offsets: Vec<i32>,
    /// Concatenated decoded payloads.
    pub payload_data: Vec<u8>,
    /// Payload validity; null exactly on error rows (null count = `error_count`).
    pub payload_validity: Bitmap,
    /// Best (max) RSSI over the receiving gateways, dBm; null if no gateway reported one.
    pub rssi: PrimCol<f64>,
    /// Best (max) SNR over the receiving gateways, dB; null if none (see [`Uplink::snr`]).
    pub snr: PrimCol<f64>,
    /// Number of receiving gateways (0 if the list is absent).
    pub gateway_count: PrimCol<u16>,
    /// Human-readable error (the [`DecodeError`] `Display` text).
    pub error: StrCol,
    /// Stable snake_case [`ErrorKind::name`].
    pub error_kind: StrCol,
    /// Byte offset of the error in the JSON message.
    pub error_offset: PrimCol<i32>,
    /// Number of error rows.
    pub error_count: usize,
}

#[inline]
fn offset32(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// Close a string-column row whose bytes (if any) were already appended to `data`.
#[inline]
fn close_str(col: &mut StrCol, valid: bool) {
    col.validity.push(valid);
    if !valid {
        col.null_count += 1;
    }
    col.offsets.push(offset32(col.data.len()));
}

impl UplinkColumns {
    /// Empty builders sized for `n` rows.
    pub fn with_capacity(n: usize) -> Self {
        let mut payload_offsets = Vec::with_capacity(n + 1);
        payload_offsets.push(0);
        let mut dev_eui = StrCol::with_capacity(n);
        dev_eui.data.reserve(n.saturating_mul(16));
        UplinkColumns {
            len: 0,
            ok: Bitmap::with_capacity(n),
            dev_eui,
            device_id: StrCol::with_capacity(n),
            received_at_ns: PrimCol::with_capacity(n),
            fport: PrimCol::with_capacity(n),
            fcnt: PrimCol::with_capacity(n),
            payload_offsets,
            payload_data: Vec::new(),
            payload_validity: Bitmap::with_capacity(n),
            rssi: PrimCol::with_capacity(n),
            snr: PrimCol::with_capacity(n),
            gateway_count: PrimCol::with_capacity(n),
            error: StrCol::with_capacity(n),
            error_kind: StrCol::with_capacity(n),
            error_offset: PrimCol::with_capacity(n),
            error_count: 0,
        }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if the batch has no rows.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The payload of row `i` (`None` on error rows or out of range).
    pub fn payload(&self, i: usize) -> Option<&[u8]> {
        if !self.payload_validity.get(i) {
            return None;
        }
        let a = usize::try_from(*self.payload_offsets.get(i)?).ok()?;
        let b = usize::try_from(*self.payload_offsets.get(i + 1)?).ok()?;
        self.payload_data.get(a..b)
    }

    /// Parse one message and append its row.
    fn push_message(&mut self, format: Format, msg: Option<&[u8]>, ws: &mut parse::Workspace) {
        let Some(msg) = msg else {
            self.push_err(&DecodeError::new(ErrorKind::MissingPayload, 0));
            return;
        };
        match parse::parse_message(
            format,
            msg,
            &mut self.payload_data,
            &mut self.device_id.data,
            ws,
        ) {
            Ok(m) => self.push_ok(&m),
            Err(e) => self.push_err(&e),
        }
    }

    /// Append an ok row; payload and device id bytes are already in their buffers.
    #[inline]
    fn push_ok(&mut self, m: &parse::Meta) {
        self.len += 1;
        self.ok.push(true);
        self.dev_eui.data.extend_from_slice(&m.dev_eui);
        close_str(&mut self.dev_eui, true);
        close_str(&mut self.device_id, m.has_device_id);
        self.received_at_ns.push(m.received_at_ns);
        self.fport.push(Some(i32::from(m.fport)));
        self.fcnt.push(Some(i64::from(m.fcnt)));
        self.payload_offsets.push(offset32(self.payload_data.len()));
        self.payload_validity.push(true);
        self.rssi.push(m.rssi);
        self.snr.push(m.snr);
        self.gateway_count.push(Some(m.gateway_count));
        self.error.push(None);
        self.error_kind.push(None);
        self.error_offset.push(None);
    }

    /// Append an error row: every value column null, `ok = false`, error filled.
    pub fn push_err(&mut self, e: &DecodeError) {
        self.len += 1;
        self.error_count += 1;
        self.ok.push(false);
        close_str(&mut self.dev_eui, false);
        close_str(&mut self.device_id, false);
        self.received_at_ns.push(None);
        self.fport.push(None);
        self.fcnt.push(None);
        self.payload_offsets.push(offset32(self.payload_data.len()));
        self.payload_validity.push(false);
        self.rssi.push(None);
        self.snr.push(None);
        self.gateway_count.push(None);
        // Writing into a Vec<u8> cannot fail.
        let _ = write!(self.error.data, "{e}");
        close_str(&mut self.error, true);
        self.error_kind.push(Some(e.kind.name()));
        self.error_offset.push(Some(offset32(e.offset)));
    }
}

/// Parse a batch of envelope messages into columns, one row per message, in order.
///
/// A `None` message (null in the input column) becomes a `missing_payload` error
/// row; any other unusable message an error row as described in the [module
/// docs](self). Never panics; the result always has exactly `messages.len()` rows.
pub fn decode_uplinks(format: Format, messages: &dyn PayloadSource) -> UplinkColumns {
    let mut cols = UplinkColumns::with_capacity(messages.len());
    decode_uplinks_into(format, messages, &mut cols);
    cols
}

/// [`decode_uplinks`] appending to existing columns: `messages.len()` rows are added
/// after the ones `cols` holds, exactly as if all had been parsed in one batch. A
/// caller that can only borrow its messages part by part (a Python list, whose items
/// must be referenced while the GIL is released) parses the parts one after the
/// other into one set of columns.
pub fn decode_uplinks_into(format: Format, messages: &dyn PayloadSource, cols: &mut UplinkColumns) {
    decode_with(format, messages, cols, parse::Workspace::new(), &[]);
}

/// [`decode_uplinks_into`] that also hints the CPU to load `upcoming[i]` (an address,
/// say the header of a Python object the caller references next) while parsing
/// message `i`: the caller's next part is then in cache when it collects it. The
/// addresses are hints only: never dereferenced, they may be stale or freed.
pub fn decode_uplinks_into_hinting(
    format: Format,
    messages: &dyn PayloadSource,
    cols: &mut UplinkColumns,
    upcoming: &[usize],
) {
    decode_with(format, messages, cols, parse::Workspace::new(), upcoming);
}

/// [`decode_uplinks`] on the byte-wise walk only (no structural index): the
/// reference the indexed walk is compared with (`examples/envelope_bench.rs`).
#[doc(hidden)]
pub fn decode_uplinks_bytewise(format: Format, messages: &dyn PayloadSource) -> UplinkColumns {
    let mut cols = UplinkColumns::with_capacity(messages.len());
    decode_with(
        format,
        messages,
        &mut cols,
        parse::Workspace::with_level(None),
        &[],
    );
    cols
}

fn decode_with(
    format: Format,
    messages: &dyn PayloadSource,
    cols: &mut UplinkColumns,
    mut ws: parse::Workspace,
    upcoming: &[usize],
) {
    let n = messages.len();
    // Typical uplinks carry a few dozen bytes; grow from there if needed.
    cols.payload_data.reserve(n.saturating_mul(32));
    let scattered = messages.flat().is_none();
    if !scattered && upcoming.is_empty() {
        // A flat Arrow buffer streams well by itself: the plain loop (kept apart so
        // that the prefetching below cannot change its code).
        for i in 0..n {
            cols.push_message(format, messages.get(i), &mut ws);
        }
        return;
    }
    // Messages that do not follow each other in memory (a list of Python `bytes`, each
    // allocated on its own among other objects) defeat the hardware prefetcher: each
    // one starts a new stream, often on a new page. Ask for the whole of a later one
    // while parsing this one, unless it starts right after the previous one (then the
    // hardware prefetcher streaming that one covers it).
    if scattered {
        // The first messages, which the loop below does not reach ahead for.
        for i in 0..PREFETCH_AHEAD.min(n) {
            if let Some(m) = messages.get(i) {
                prefetch(m);
            }
        }
    }
    for i in 0..n {
        if let Some(&addr) = upcoming.get(i) {
            prefetch_line(addr as *const u8);
        }
        if scattered {
            if let Some(next) = messages.get(i + PREFETCH_AHEAD) {
                let prev_end = messages
                    .get(i + PREFETCH_AHEAD - 1)
                    .map_or(0, |p| p.as_ptr_range().end as usize);
                if !follows(prev_end, next) {
                    prefetch(next);
                }
            }
        }
        cols.push_message(format, messages.get(i), &mut ws);
    }
}

/// How many messages ahead of the one being parsed [`prefetch`] reaches. Measured on
/// 200,000 TTN messages of 1.7 kB as `orjson.dumps` leaves them (8 kB apart): 1 to 6
/// ahead are alike; 16 a little slower.
const PREFETCH_AHEAD: usize = 3;
/// Bytes of a message [`prefetch`] asks for, at most: a typical envelope whole.
const PREFETCH_BYTES: usize = 4096;
/// A message starting at most this many bytes after the end of the previous one
/// "follows" it (a Python `bytes` object's header and the allocator's padding lie
/// between two consecutively allocated ones): it is not prefetched.
const FOLLOW_GAP: usize = 256;

/// True if `msg` starts within [`FOLLOW_GAP`] bytes after address `prev_end`.
#[inline]
fn follows(prev_end: usize, msg: &[u8]) -> bool {
    (msg.as_ptr() as usize).wrapping_sub(prev_end) <= FOLLOW_GAP
}

/// Hint the CPU to start loading the cache line holding `addr` (the header of a
/// Python object about to be referenced, say). A hint only: any address is fine,
/// nothing is dereferenced and it never faults.
#[inline]
pub fn prefetch_line(addr: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `_mm_prefetch` never faults and reads nothing architecturally, whatever
    // the address. SSE is part of x86_64.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(addr.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = addr;
}

/// Hint the CPU to translate the address of every page `msg` spans after its first
/// one (a load of its last byte, and one every 4 KiB before it), so that the page
/// walks of a batch of scattered messages overlap while they are collected instead
/// of stalling the parse one by one. Called on each message of a Python list while
/// its items are referenced (their first page is translated then anyway: the object
/// header lies on it). A hint only: no effect on results.
#[inline]
pub fn prefetch_pages(msg: &[u8]) {
    let Some(last) = msg.len().checked_sub(1) else {
        return;
    };
    let first_page = msg.as_ptr() as usize / PAGE;
    let mut at = last;
    loop {
        let addr = msg[at..].as_ptr();
        if addr as usize / PAGE == first_page {
            break;
        }
        prefetch_line(addr);
        match at.checked_sub(PAGE) {
            Some(a) => at = a,
            None => break,
        }
    }
}

/// The smallest page size of x86_64 and aarch64 Linux.
const PAGE: usize = 4096;

/// Hint the CPU to start loading the first [`PREFETCH_BYTES`] of `msg` into the L2
/// cache (not L1: a whole message is dozens of lines, more than the L1 can have in
/// flight, and prefetches into L1 measured slower). A hint only: no effect on
/// results, and nothing is dereferenced.
#[inline]
fn prefetch(msg: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    for line in msg.get(..PREFETCH_BYTES).unwrap_or(msg).chunks(64) {
        // SAFETY: `_mm_prefetch` never faults and reads nothing architecturally; the
        // pointer is in bounds of a live slice anyway. SSE is part of x86_64.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T1 }>(
                line.as_ptr().cast::<i8>(),
            );
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = msg;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ttn(body: &str) -> Result<Uplink, DecodeError> {
        parse_one(Format::TtnV3, body.as_bytes())
    }
    fn cs(body: &str) -> Result<Uplink, DecodeError> {
        parse_one(Format::ChirpstackV4, body.as_bytes())
    }
    fn kind(r: Result<Uplink, DecodeError>) -> (&'static str, usize) {
        let e = r.expect_err("expected an error");
        (e.kind.name(), e.offset)
    }

    const TTN_MIN: &str = r#"{"end_device_ids":{"dev_eui":"0004A30B001C0530"},"uplink_message":{"f_port":2,"frm_payload":"gkHe"}}"#;

    #[test]
    fn format_names() {
        assert_eq!(Format::parse("ttn"), Some(Format::TtnV3));
        assert_eq!(Format::parse("ttn-v3"), Some(Format::TtnV3));
        assert_eq!(Format::parse("chirpstack"), Some(Format::ChirpstackV4));
        assert_eq!(Format::parse("chirpstack-v4"), Some(Format::ChirpstackV4));
        assert_eq!(Format::parse("TTN"), None);
        assert_eq!(Format::parse(""), None);
        for f in [Format::TtnV3, Format::ChirpstackV4] {
            assert_eq!(Format::parse(f.name()), Some(f));
            assert_eq!(f.to_string(), f.name());
        }
    }

    #[test]
    fn minimal_ttn() {
        let up = ttn(TTN_MIN).unwrap();
        assert_eq!(up.dev_eui, "0004a30b001c0530");
        assert_eq!(up.device_id, None);
        assert_eq!(up.received_at_ns, None);
        assert_eq!((up.fport, up.fcnt), (2, 0));
        assert_eq!(up.payload, [0x82, 0x41, 0xDE]);
        assert_eq!((up.rssi, up.snr, up.gateway_count), (None, None, 0));
    }

    #[test]
    fn keys_in_any_order_and_last_wins() {
        let up = ttn(
            r#"{"uplink_message":{"frm_payload":"AA==","f_cnt":7,"frm_payload":"qg"},
                "received_at":"1970-01-01T00:00:01Z",
                "end_device_ids":{"device_id":"a","dev_eui":"ffffffffffffffff","device_id":"b"}}"#,
        )
        .unwrap();
        assert_eq!(up.dev_eui, "ffffffffffffffff");
        assert_eq!(up.device_id.as_deref(), Some("b"));
        assert_eq!(up.payload, [0xAA]);
        assert_eq!(up.fcnt, 7);
        assert_eq!(up.received_at_ns, Some(1_000_000_000));
    }

    #[test]
    fn ttn_received_at_fallback() {
        let up = ttn(r#"{"end_device_ids":{"dev_eui":"0004A30B001C0530"},"uplink_message":{"frm_payload":"","received_at":"1970-01-01T00:00:02Z"}}"#).unwrap();
        assert_eq!(up.received_at_ns, Some(2_000_000_000));
        assert!(up.payload.is_empty());
        let up = ttn(r#"{"received_at":"1970-01-01T00:00:01Z","end_device_ids":{"dev_eui":"0004A30B001C0530"},"uplink_message":{"frm_payload":"","received_at":"1970-01-01T00:00:02Z"}}"#).unwrap();
        assert_eq!(up.received_at_ns, Some(1_000_000_000));
    }

    #[test]
    fn nulls_are_absent() {
        let up = ttn(r#"{"end_device_ids":{"dev_eui":"0004A30B001C0530","device_id":null},"received_at":null,
                "uplink_message":{"f_port":null,"f_cnt":null,"frm_payload":"gkHe","rx_metadata":null},"join_accept":null}"#)
        .unwrap();
        assert_eq!(
            (up.fport, up.fcnt, up.device_id, up.received_at_ns),
            (0, 0, None, None)
        );
        assert_eq!(
            kind(ttn(
                r#"{"end_device_ids":{"dev_eui":null},"uplink_message":{"frm_payload":"gkHe"}}"#
            )),
            ("missing_field", 0)
        );
    }

    #[test]
    fn camel_case_and_snake_case_aliases() {
        let up = ttn(r#"{"endDeviceIds":{"devEui":"0004A30B001C0530","deviceId":"d"},"uplinkMessage":{"fPort":3,"frmPayload":"qg==","rxMetadata":[{"channelRssi":-50}]}}"#).unwrap();
        assert_eq!((up.fport, up.rssi, up.snr), (3, Some(-50.0), Some(0.0)));
        let up = cs(r#"{"device_info":{"dev_eui":"0101010101010101","device_name":"x"},"f_port":4,"f_cnt":9,"data":"qg==","rx_info":[{"rssi":-1}]}"#).unwrap();
        assert_eq!(
            (up.fport, up.fcnt, up.device_id.as_deref()),
            (4, 9, Some("x"))
        );
    }

    #[test]
    fn gateway_aggregation() {
        let up = ttn(r#"{"end_device_ids":{"dev_eui":"0004A30B001C0530"},"uplink_message":{"frm_payload":"","f_port":1,
            "rx_metadata":[{"rssi":-100,"snr":-7.5},{"rssi":-80.5},{"gateway_ids":{}},{"rssi":-90,"snr":2.25}]}}"#)
        .unwrap();
        assert_eq!(up.gateway_count, 4);
        assert_eq!(up.rssi, Some(-80.5));
        // -80.5 has no snr key: 0 dB by proto3 omission; the empty gateway counts for nothing.
        assert_eq!(up.snr, Some(2.25));
        let up = cs(r#"{"deviceInfo":{"devEui":"0101010101010101"},"data":"","rxInfo":[{"gatewayId":"x"}]}"#).unwrap();
        assert_eq!((up.gateway_count, up.rssi, up.snr), (1, None, None));
    }

    #[test]
    fn ttn_empty_payload_omitted_on_real_fport() {
        // TTN omits `frm_payload` when it is empty: fine on FPort 1..=255 ...
        let up = ttn(
            r#"{"end_device_ids":{"dev_eui":"0004A30B001C0530"},"uplink_message":{"f_port":5}}"#,
        )
        .unwrap();
        assert_eq!((up.fport, up.payload.len()), (5, 0));
        // ... but without an FPort there is no application payload.
        assert_eq!(
            ttn(
                r#"{"end_device_ids":{"dev_eui":"0004A30B001C0530"},"uplink_message":{"f_cnt":5}}"#
            )
            .unwrap_err()
            .kind,
            ErrorKind::MissingField {
                field: "uplink_message.frm_payload"
            }
        );
    }

    #[test]
    fn error_kinds_and_offsets() {
        // Malformed JSON: offset of the problem.
        assert_eq!(kind(ttn("{\"a\":")), ("invalid_json", 5));
        assert_eq!(kind(ttn("")), ("invalid_json", 0));
        assert_eq!(
            kind(ttn(&format!("{TTN_MIN} x"))),
            ("invalid_json", TTN_MIN.len() + 1)
        );
        // Root not an object.
        assert_eq!(kind(ttn(" [1]")), ("wrong_type", 1));
        assert_eq!(kind(ttn("[1")), ("invalid_json", 2));
        // Wrong types point at the value.
        let msg = r#"{"end_device_ids":{"dev_eui":12},"uplink_message":{"frm_payload":"gkHe"}}"#;
        let e = ttn(msg).unwrap_err();
        assert_eq!(
            e.kind,
            ErrorKind::WrongType {
                field: "end_device_ids.dev_eui"
            }
        );
        assert_eq!(e.offset, msg.find("12").unwrap());
        for (fport, ok) in [
            ("0", true),
            ("255", true),
            ("1.0", true),
            ("256", false),
            ("-1", false),
            ("1.5", false),
            ("\"1\"", false),
            ("true", false),
            ("1e99", false),
        ] {
            let msg = format!(
                r#"{{"end_device_ids":{{"dev_eui":"0004A30B001C0530"}},"uplink_message":{{"f_port":{fport},"frm_payload":"gkHe"}}}}"#
            );
            let r = ttn(&msg);
            assert_eq!(r.is_ok(), ok, "{fport}");
            if !ok {
                let e = r.unwrap_err();
                assert_eq!(
                    e.kind,
                    ErrorKind::WrongType {
                        field: "uplink_message.f_port"
                    },
                    "{fport}"
                );
                assert_eq!(e.offset, msg.find(&format!(":{fport}")).unwrap() + 1);
            }
        }
        // Bad base64: offset of the string.
        let msg = r#"{"end_device_ids":{"dev_eui":"0004A30B001C0530"},"uplink_message":{"frm_payload":"g!He"}}"#;
        assert_eq!(
            kind(ttn(msg)),
            ("invalid_base64", msg.find("\"g!He").unwrap())
        );
        // Bad DevEUI.
        let msg = r#"{"end_device_ids":{"dev_eui":"0004A30B001C053"},"uplink_message":{"frm_payload":"gkHe"}}"#;
        assert_eq!(
            kind(ttn(msg)),
            ("invalid_dev_eui", msg.find("\"0004").unwrap())
        );
        // Bad timestamp.
        let msg = r#"{"received_at":"2020-02-30T00:00:00Z","end_device_ids":{"dev_eui":"0004A30B001C0530"},"uplink_message":{"frm_payload":"gkHe"}}"#;
        let e = ttn(msg).unwrap_err();
        assert_eq!(
            e.kind,
            ErrorKind::InvalidTimestamp {
                field: "received_at"
            }
        );
        assert_eq!(e.offset, 15);
        // Missing fields.
        assert_eq!(
            ttn(r#"{"uplink_message":{"frm_payload":"gkHe"}}"#)
                .unwrap_err()
                .kind,
            ErrorKind::MissingField {
                field: "end_device_ids.dev_eui"
            }
        );
        assert_eq!(
            ttn(r#"{"end_device_ids":{"dev_eui":"0004A30B001C0530"}}"#)
                .unwrap_err()
                .kind,
            ErrorKind::MissingField {
                field: "uplink_message"
            }
        );
        assert_eq!(
            cs(r#"{"deviceInfo":{"devEui":"0101010101010101"},"fPort":1}"#)
                .unwrap_err()
                .kind,
            ErrorKind::MissingField { field: "data" }
        );
    }

    #[test]
    fn json_errors_win_over_field_errors() {
        let msg = r#"{"end_device_ids":{"dev_eui":12},"uplink_message":{"frm_payload":"gkHe"},}"#;
        assert_eq!(kind(ttn(msg)).0, "invalid_json");
        // First field error in document order wins.
        let msg = r#"{"end_device_ids":{"dev_eui":"xx"},"uplink_message":{"frm_payload":"!"}}"#;
        assert_eq!(kind(ttn(msg)).0, "invalid_dev_eui");
    }

    #[test]
    fn not_uplink_events() {
        let msg = r#"{"end_device_ids":{"dev_eui":"0004A30B001C0530"},"join_accept":{"session_key_id":"AXA="}}"#;
        assert_eq!(
            kind(ttn(msg)),
            ("not_uplink", msg.find("{\"session").unwrap())
        );
        // An uplink_message wins over any other member.
        assert!(ttn(r#"{"end_device_ids":{"dev_eui":"0004A30B001C0530"},"downlink_ack":{},"uplink_message":{"frm_payload":""}}"#).is_ok());
        // ChirpStack status, ack and join events.
        let status = r#"{"deduplicationId":"x","time":"2022-07-18T09:34:15+00:00","deviceInfo":{"devEui":"0101010101010101"},"margin":10,"batteryLevel":87.5}"#;
        assert_eq!(kind(cs(status)).0, "not_uplink");
        let ack = r#"{"deviceInfo":{"devEui":"0101010101010101"},"queueItemId":"q","acknowledged":true,"fCntDown":3}"#;
        assert_eq!(kind(cs(ack)).0, "not_uplink");
        let join = r#"{"deduplicationId":"x","deviceInfo":{"devEui":"0101010101010101"},"devAddr":"00189440"}"#;
        assert_eq!(kind(cs(join)), ("not_uplink", 0));
    }

    #[test]
    fn escaped_strings_are_decoded() {
        let up = ttn(r#"{"end_device_ids":{"dev_eui":"0004A30B001C053\u0030","device_id":"d\u00e9v\n"},"uplink_message":{"frm_payload":"+\/8="}}"#).unwrap();
        assert_eq!(up.dev_eui, "0004a30b001c0530");
        assert_eq!(up.device_id.as_deref(), Some("dév\n"));
        assert_eq!(up.payload, [0xFB, 0xFF]);
    }

    #[test]
    fn prefetch_hints_accept_any_slice() {
        // Hints only: any length, any alignment, nothing to observe but no panic.
        let big = vec![b'x'; 3 * PAGE + 100];
        for len in [
            0,
            1,
            63,
            64,
            PAGE - 1,
            PAGE,
            PAGE + 1,
            2 * PAGE + 7,
            big.len(),
        ] {
            for start in [0, 1, 4000] {
                let end = (start + len).min(big.len());
                prefetch_pages(&big[start..end]);
                prefetch(&big[start..end]);
            }
        }
        prefetch_line(std::ptr::null());
    }

    #[test]
    fn follows_means_shortly_after() {
        let buf = vec![0u8; 1024];
        let end = buf[..100].as_ptr_range().end as usize;
        assert!(follows(end, &buf[100..]));
        assert!(follows(end, &buf[100 + FOLLOW_GAP..]));
        assert!(!follows(end, &buf[101 + FOLLOW_GAP..]));
        // Before the previous end (an object allocated earlier at a lower address).
        assert!(!follows(end, &buf[50..]));
    }

    #[test]
    fn scattered_and_flat_batches_agree() {
        // The prefetching walk (scattered parts, with hints) gives the flat walk's rows.
        let msgs: Vec<Vec<u8>> = (0..40)
            .map(|i| match i % 4 {
                0 => TTN_MIN.as_bytes().to_vec(),
                1 => b"{not json".to_vec(),
                2 => format!("{{\"pad\":\"{}\",{}", "p".repeat(5000), &TTN_MIN[1..]).into_bytes(),
                _ => Vec::new(),
            })
            .collect();
        let mut data = Vec::new();
        let mut offsets = vec![0i32];
        for m in &msgs {
            data.extend_from_slice(m);
            offsets.push(i32::try_from(data.len()).unwrap());
        }
        let flat = crate::codec::FlatPayloads {
            data: &data,
            offsets: &offsets,
            validity: None,
            validity_bit_offset: 0,
        };
        let a = decode_uplinks(Format::TtnV3, &flat);
        let mut b = UplinkColumns::with_capacity(msgs.len());
        let hints: Vec<usize> = msgs.iter().map(|m| m.as_ptr() as usize).collect();
        decode_uplinks_into_hinting(Format::TtnV3, &msgs[..17].to_vec(), &mut b, &hints);
        decode_uplinks_into_hinting(Format::TtnV3, &msgs[17..].to_vec(), &mut b, &[1, 2, 3]);
        assert_eq!(b.len(), msgs.len());
        assert_eq!(a.error_count, 20);
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
    }

    #[test]
    fn batch_rolls_back_failed_rows() {
        let good = TTN_MIN.as_bytes().to_vec();
        // Device id and payload are written, then the message fails at the end.
        let bad =
            br#"{"end_device_ids":{"device_id":"zzz"},"uplink_message":{"frm_payload":"AAAA"}}"#
                .to_vec();
        let batch: Vec<Vec<u8>> = vec![good.clone(), bad, good];
        let cols = decode_uplinks(Format::TtnV3, &batch);
        assert_eq!(cols.len(), 3);
        assert_eq!(cols.error_count, 1);
        assert_eq!(cols.payload(0), Some(&[0x82, 0x41, 0xDE][..]));
        assert_eq!(cols.payload(1), None);
        assert_eq!(cols.payload(2), Some(&[0x82, 0x41, 0xDE][..]));
        assert_eq!(cols.payload_data.len(), 6);
        assert_eq!(cols.device_id.data.len(), 0);
        assert_eq!(cols.device_id.null_count, 3);
        assert_eq!(cols.dev_eui.get(1), None);
        assert_eq!(cols.dev_eui.get(2), Some("0004a30b001c0530"));
        assert_eq!(cols.error_kind.get(1), Some("missing_field"));
        assert_eq!(
            cols.error.get(1),
            Some("missing field `end_device_ids.dev_eui`")
        );
    }
}
