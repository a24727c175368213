//! The single-pass envelope parser shared by [`super::parse_one`] and
//! [`super::decode_uplinks`].
//!
//! One walk over the JSON's tokens (the [`Tokens`] of the byte-wise [`Scanner`], or
//! of the [`Indexed`] walker where the message could be indexed; see
//! [`parse_message`]): the fields we need are
//! read where they are, everything else is skipped without building values. The
//! payload is base64-decoded straight into the caller's buffer and the device id
//! copied straight into another; on error both are cut back to where they started.
//!
//! Error precedence (for one message): malformed JSON first (the whole message is
//! always validated), then `not_uplink`, then the first field-level problem in
//! document order (wrong type, bad DevEUI, bad base64, bad timestamp), then missing
//! required fields.

use super::index::{Index, Indexed, Level};
use super::scan::{
    number_to_f64, number_to_u64, unescape_into, RawStr, SResult, Scanner, SyntaxError, Tokens,
};
use super::timestamp::parse_rfc3339_ns;
use super::Format;
use crate::error::{DecodeError, ErrorKind};
use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;

/// The scalar part of a parsed uplink (the variable-length parts went to buffers).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Meta {
    pub dev_eui: [u8; 16],
    pub has_device_id: bool,
    pub received_at_ns: Option<i64>,
    pub fport: u8,
    pub fcnt: u32,
    pub rssi: Option<f64>,
    pub snr: Option<f64>,
    pub gateway_count: u16,
}

/// Lenient decoding as protobuf JSON parsers do it: padding optional, non-zero
/// trailing bits tolerated.
const B64_CONFIG: GeneralPurposeConfig = GeneralPurposeConfig::new()
    .with_decode_padding_mode(DecodePaddingMode::Indifferent)
    .with_decode_allow_trailing_bits(true);
const B64_STANDARD: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, B64_CONFIG);
const B64_URL_SAFE: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, B64_CONFIG);

/// Append the base64 decoding of `s` to `out`. Standard or URL-safe alphabet (not
/// mixed), padded or not. On error `out` may hold garbage past its old length.
#[inline]
fn decode_base64(s: &[u8], out: &mut Vec<u8>) -> bool {
    let start = out.len();
    if B64_STANDARD.decode_vec(s, out).is_ok() {
        return true;
    }
    // Rare: the URL-safe alphabet (`-`, `_`).
    out.truncate(start);
    B64_URL_SAFE.decode_vec(s, out).is_ok()
}

/// 16 hex digits (either case) to 16 lowercase ASCII bytes.
#[inline]
fn normalize_dev_eui(s: &[u8]) -> Option<[u8; 16]> {
    let src: &[u8; 16] = s.try_into().ok()?;
    let mut out = [0u8; 16];
    for (o, &b) in out.iter_mut().zip(src) {
        *o = match b {
            b'0'..=b'9' | b'a'..=b'f' => b,
            b'A'..=b'F' => b | 0x20,
            _ => return None,
        };
    }
    Some(out)
}

/// Everything remembered during the walk, validated at the end.
#[derive(Default)]
struct State {
    dev_eui: Option<[u8; 16]>,
    has_device_id: bool,
    /// TTN top-level `received_at`, ChirpStack `time`.
    time: Option<i64>,
    /// TTN `uplink_message.received_at` (fallback).
    time_inner: Option<i64>,
    fport: Option<u32>,
    fcnt: Option<u32>,
    has_payload: bool,
    rssi: Option<f64>,
    snr: Option<f64>,
    gateway_count: u16,
    /// TTN: an `uplink_message` member (of any non-null type) exists.
    has_uplink: bool,
    /// Offset of the value of a non-uplink event member (TTN) / event-specific key (ChirpStack).
    other_event: Option<usize>,
    /// ChirpStack: `devAddr` present (a join event has it, and no uplink keys).
    has_dev_addr: bool,
    /// ChirpStack: a key only an uplink event has (`fPort`, `fCnt`, `rxInfo`, ...).
    uplink_hint: bool,
    /// First field-level error, in document order.
    err: Option<DecodeError>,
}

struct Parser<'j, 'b, S: Tokens<'j>> {
    s: S,
    _data: std::marker::PhantomData<&'j [u8]>,
    payload: &'b mut Vec<u8>,
    payload_start: usize,
    device_id: &'b mut Vec<u8>,
    device_id_start: usize,
    /// Scratch for strings with escapes (reused across messages).
    scratch: &'b mut Vec<u8>,
    st: State,
}

/// What a batch reuses from one message to the next: scratch for strings with
/// escapes (rare) and the structural index, so a batch does not allocate per message.
#[derive(Debug)]
pub(crate) struct Workspace {
    scratch: Vec<u8>,
    index: Index,
    /// `None`: always the byte-wise walk (the reference, for tests).
    level: Option<Level>,
}

impl Workspace {
    /// The indexed walk if this CPU builds the index fast enough, else byte-wise.
    pub fn new() -> Self {
        Self::with_level(Level::detect())
    }

    /// A given index level, or `None` for the byte-wise walk only.
    pub fn with_level(level: Option<Level>) -> Self {
        Workspace {
            scratch: Vec::new(),
            index: Index::default(),
            level,
        }
    }
}

/// Parse one message. On `Ok`, the decoded payload has been appended to `payload`
/// and, if `has_device_id`, the device id to `device_id`. On `Err` both are left at
/// their original lengths.
///
/// The message is indexed first and walked over the index; if it cannot be
/// indexed, or the indexed walk meets a syntax error, it is walked again byte-wise,
/// and that walk's result (with its error message and offset) is the answer. Both
/// walks run the same parser over the same tokens, so an indexed result is the
/// byte-wise one.
pub(crate) fn parse_message(
    format: Format,
    msg: &[u8],
    payload: &mut Vec<u8>,
    device_id: &mut Vec<u8>,
    ws: &mut Workspace,
) -> Result<Meta, DecodeError> {
    if let Some(level) = ws.level {
        if ws.index.build(msg, level) {
            let s = Indexed::new(msg, &ws.index);
            if let Ok(r) = run(s, format, payload, device_id, &mut ws.scratch) {
                return r;
            }
        }
    }
    run(
        Scanner::new(msg),
        format,
        payload,
        device_id,
        &mut ws.scratch,
    )
    .unwrap_or_else(|e| {
        Err(DecodeError::new(
            ErrorKind::InvalidJson {
                detail: e.what.to_string(),
            },
            e.pos,
        ))
    })
}

/// One walk with scanner `s`. Outer error: malformed JSON. On any error `payload`
/// and `device_id` are cut back to their original lengths.
#[inline(always)]
fn run<'j, S: Tokens<'j>>(
    s: S,
    format: Format,
    payload: &mut Vec<u8>,
    device_id: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
) -> SResult<Result<Meta, DecodeError>> {
    let payload_start = payload.len();
    let device_id_start = device_id.len();
    let mut p = Parser {
        s,
        _data: std::marker::PhantomData,
        payload,
        payload_start,
        device_id,
        device_id_start,
        scratch,
        st: State::default(),
    };
    let result = p.walk(format).map(|r| r.and_then(|()| p.finish(format)));
    if !matches!(result, Ok(Ok(_))) {
        p.payload.truncate(payload_start);
        p.device_id.truncate(device_id_start);
    }
    result
}

/// Keys of a TTN `ApplicationUp`.
#[derive(Clone, Copy)]
enum TtnRoot {
    EndDeviceIds,
    ReceivedAt,
    UplinkMessage,
    OtherEvent,
    Skip,
}

#[inline]
fn ttn_root_key(k: &[u8]) -> TtnRoot {
    match k {
        b"end_device_ids" | b"endDeviceIds" => TtnRoot::EndDeviceIds,
        b"received_at" | b"receivedAt" => TtnRoot::ReceivedAt,
        b"uplink_message" | b"uplinkMessage" => TtnRoot::UplinkMessage,
        b"join_accept"
        | b"joinAccept"
        | b"downlink_ack"
        | b"downlinkAck"
        | b"downlink_nack"
        | b"downlinkNack"
        | b"downlink_sent"
        | b"downlinkSent"
        | b"downlink_failed"
        | b"downlinkFailed"
        | b"downlink_queued"
        | b"downlinkQueued"
        | b"downlink_queue_invalidated"
        | b"downlinkQueueInvalidated"
        | b"location_solved"
        | b"locationSolved"
        | b"service_data"
        | b"serviceData"
        | b"uplink_normalized"
        | b"uplinkNormalized" => TtnRoot::OtherEvent,
        _ => TtnRoot::Skip,
    }
}

/// Keys of a TTN `EndDeviceIdentifiers` / ChirpStack `DeviceInfo` that we read.
#[derive(Clone, Copy)]
enum DevKey {
    DevEui,
    DeviceId,
    Skip,
}

#[inline]
fn ttn_ids_key(k: &[u8]) -> DevKey {
    match k {
        b"dev_eui" | b"devEui" => DevKey::DevEui,
        b"device_id" | b"deviceId" => DevKey::DeviceId,
        _ => DevKey::Skip,
    }
}

#[inline]
fn cs_device_info_key(k: &[u8]) -> DevKey {
    match k {
        b"devEui" | b"dev_eui" => DevKey::DevEui,
        b"deviceName" | b"device_name" => DevKey::DeviceId,
        _ => DevKey::Skip,
    }
}

/// Keys of a TTN `ApplicationUplink`.
#[derive(Clone, Copy)]
enum TtnUp {
    FPort,
    FCnt,
    FrmPayload,
    RxMetadata,
    ReceivedAt,
    Skip,
}

#[inline]
fn ttn_up_key(k: &[u8]) -> TtnUp {
    match k {
        b"frm_payload" | b"frmPayload" => TtnUp::FrmPayload,
        b"f_port" | b"fPort" => TtnUp::FPort,
        b"f_cnt" | b"fCnt" => TtnUp::FCnt,
        b"rx_metadata" | b"rxMetadata" => TtnUp::RxMetadata,
        b"received_at" | b"receivedAt" => TtnUp::ReceivedAt,
        _ => TtnUp::Skip,
    }
}

/// Keys of one gateway's metadata (TTN `RxMetadata`, ChirpStack `UplinkRxInfo`).
#[derive(Clone, Copy)]
enum GwKey {
    Rssi,
    ChannelRssi,
    Snr,
    Skip,
}

#[inline]
fn gw_key(k: &[u8]) -> GwKey {
    match k {
        b"rssi" => GwKey::Rssi,
        b"channel_rssi" | b"channelRssi" => GwKey::ChannelRssi,
        b"snr" => GwKey::Snr,
        _ => GwKey::Skip,
    }
}

/// Keys of a ChirpStack `UplinkEvent` (and markers of its other events).
#[derive(Clone, Copy)]
enum CsRoot {
    DeviceInfo,
    Time,
    FPort,
    FCnt,
    Data,
    RxInfo,
    DevAddr,
    UplinkHint,
    OtherEvent,
    Skip,
}

#[inline]
fn cs_root_key(k: &[u8]) -> CsRoot {
    match k {
        b"deviceInfo" | b"device_info" => CsRoot::DeviceInfo,
        b"time" => CsRoot::Time,
        b"fPort" | b"f_port" => CsRoot::FPort,
        b"fCnt" | b"f_cnt" => CsRoot::FCnt,
        b"data" => CsRoot::Data,
        b"rxInfo" | b"rx_info" => CsRoot::RxInfo,
        b"devAddr" | b"dev_addr" => CsRoot::DevAddr,
        b"dr" | b"adr" | b"confirmed" | b"txInfo" | b"tx_info" => CsRoot::UplinkHint,
        // AckEvent, TxAckEvent, LogEvent, StatusEvent, LocationEvent, IntegrationEvent
        // (chirpstack/chirpstack:api/proto/integration/integration.proto).
        b"queueItemId"
        | b"queue_item_id"
        | b"acknowledged"
        | b"fCntDown"
        | b"f_cnt_down"
        | b"downlinkId"
        | b"downlink_id"
        | b"gatewayId"
        | b"gateway_id"
        | b"level"
        | b"code"
        | b"description"
        | b"margin"
        | b"externalPowerSource"
        | b"external_power_source"
        | b"batteryLevelUnavailable"
        | b"battery_level_unavailable"
        | b"batteryLevel"
        | b"battery_level"
        | b"location"
        | b"integrationName"
        | b"integration_name"
        | b"eventType"
        | b"event_type" => CsRoot::OtherEvent,
        _ => CsRoot::Skip,
    }
}

/// Field names (for `wrong_type`) of a gateway list.
struct GwFields {
    list: &'static str,
    item: &'static str,
    rssi: &'static str,
    channel_rssi: &'static str,
    snr: &'static str,
}

const TTN_GW_FIELDS: GwFields = GwFields {
    list: "uplink_message.rx_metadata",
    item: "uplink_message.rx_metadata[]",
    rssi: "uplink_message.rx_metadata[].rssi",
    channel_rssi: "uplink_message.rx_metadata[].channel_rssi",
    snr: "uplink_message.rx_metadata[].snr",
};

const CS_GW_FIELDS: GwFields = GwFields {
    list: "rxInfo",
    item: "rxInfo[]",
    rssi: "rxInfo[].rssi",
    channel_rssi: "rxInfo[].channelRssi",
    snr: "rxInfo[].snr",
};

/// What a value turned out to be when we expected a given JSON type.
enum Slot {
    /// The expected JSON type; the value is not consumed yet.
    Present,
    /// `null` (proto3 JSON: the default value), consumed.
    Null,
    /// Another type: recorded as `wrong_type` and skipped.
    Wrong,
}

/// The JSON type a field must have (by the first byte of its value).
#[derive(Clone, Copy)]
enum Want {
    Object,
    Array,
    String,
    Number,
}

impl Want {
    #[inline]
    fn matches(self, first: u8) -> bool {
        match self {
            Want::Object => first == b'{',
            Want::Array => first == b'[',
            Want::String => first == b'"',
            Want::Number => first == b'-' || first.is_ascii_digit(),
        }
    }
}

impl<'j, S: Tokens<'j>> Parser<'j, '_, S> {
    #[cold]
    fn fail(&mut self, kind: ErrorKind, offset: usize) {
        if self.st.err.is_none() {
            self.st.err = Some(DecodeError::new(kind, offset));
        }
    }

    /// Look at the next value: is it of type `want`? Returns its offset too.
    #[inline]
    fn slot(&mut self, want: Want, field: &'static str) -> SResult<(Slot, usize)> {
        let first = self.s.peek()?;
        let off = self.s.pos();
        if want.matches(first) {
            return Ok((Slot::Present, off));
        }
        if first == b'n' {
            self.s.literal(b"null")?;
            return Ok((Slot::Null, off));
        }
        // Validate (and skip) the value first: malformed JSON wins over a type error.
        self.s.skip()?;
        self.fail(ErrorKind::WrongType { field }, off);
        Ok((Slot::Wrong, off))
    }

    /// The next object key, unescaped if needed, classified by `classify`.
    #[inline]
    fn key<K>(&mut self, key: Option<RawStr<'j>>, classify: fn(&[u8]) -> K) -> SResult<Option<K>> {
        let Some(k) = key else {
            return Ok(None);
        };
        if !k.escaped {
            return Ok(Some(classify(k.raw)));
        }
        self.unescape(k)?;
        Ok(Some(classify(self.scratch)))
    }

    /// Unescape `s` into `scratch`. A lone surrogate escape is malformed JSON.
    #[cold]
    fn unescape(&mut self, s: RawStr<'j>) -> SResult<()> {
        self.scratch.clear();
        unescape_into(s.raw, self.scratch).map_err(|i| SyntaxError {
            what: "lone or mismatched surrogate in \\u escape",
            // `raw` starts one byte after the quote the scanner just passed.
            pos: self.s.pos().saturating_sub(s.raw.len() + 1) + i,
        })
    }

    /// The string value at the scanner (known to start with `"`), unescaped.
    #[inline]
    fn string_bytes(&mut self) -> SResult<&[u8]> {
        let s = self.s.string()?;
        if !s.escaped {
            return Ok(s.raw);
        }
        self.unescape(s)?;
        Ok(self.scratch)
    }

    /// A number that must be an integer in `0..=max` (integral floats like `1.0` are
    /// accepted, as protobuf JSON parsers do).
    fn read_uint(&mut self, field: &'static str, max: u32) -> SResult<Option<u32>> {
        let (slot, off) = self.slot(Want::Number, field)?;
        if !matches!(slot, Slot::Present) {
            return Ok(None);
        }
        let text = self.s.number()?;
        let value = match number_to_u64(text) {
            Some(v) => u32::try_from(v).ok().filter(|&v| v <= max),
            // `1.0`, `1e2`, negative or huge: integral and in range, or wrong.
            None => number_to_f64(text)
                .filter(|f| f.fract() == 0.0 && (0.0..=f64::from(max)).contains(f))
                // In range and integral, so the cast is exact.
                .map(|f| f as u32),
        };
        if value.is_none() {
            self.fail(ErrorKind::WrongType { field }, off);
        }
        Ok(value)
    }

    /// A finite number (integer or float).
    fn read_f64(&mut self, field: &'static str) -> SResult<Option<f64>> {
        let (slot, off) = self.slot(Want::Number, field)?;
        if !matches!(slot, Slot::Present) {
            return Ok(None);
        }
        match number_to_f64(self.s.number()?) {
            Some(f) if f.is_finite() => Ok(Some(f)),
            _ => {
                self.fail(ErrorKind::WrongType { field }, off);
                Ok(None)
            }
        }
    }

    fn read_timestamp(&mut self, field: &'static str) -> SResult<Option<i64>> {
        let (slot, off) = self.slot(Want::String, field)?;
        if !matches!(slot, Slot::Present) {
            return Ok(None);
        }
        let t = parse_rfc3339_ns(self.string_bytes()?);
        if t.is_none() {
            self.fail(ErrorKind::InvalidTimestamp { field }, off);
        }
        Ok(t)
    }

    fn read_dev_eui(&mut self, field: &'static str) -> SResult<()> {
        let (slot, off) = self.slot(Want::String, field)?;
        if !matches!(slot, Slot::Present) {
            // `null` means absent; a wrong type was recorded.
            self.st.dev_eui = None;
            return Ok(());
        }
        let eui = normalize_dev_eui(self.string_bytes()?);
        if eui.is_none() {
            self.fail(ErrorKind::InvalidDevEui, off);
        }
        self.st.dev_eui = eui;
        Ok(())
    }

    fn read_device_id(&mut self, field: &'static str) -> SResult<()> {
        let (slot, _) = self.slot(Want::String, field)?;
        self.device_id.truncate(self.device_id_start);
        self.st.has_device_id = false;
        if matches!(slot, Slot::Present) {
            let s = self.s.string()?;
            if s.escaped {
                let pos = self.s.pos();
                unescape_into(s.raw, self.device_id).map_err(|i| SyntaxError {
                    what: "lone or mismatched surrogate in \\u escape",
                    pos: pos.saturating_sub(s.raw.len() + 1) + i,
                })?;
            } else {
                self.device_id.extend_from_slice(s.raw);
            }
            self.st.has_device_id = true;
        }
        Ok(())
    }

    fn read_payload(&mut self, field: &'static str) -> SResult<()> {
        let (slot, off) = self.slot(Want::String, field)?;
        self.payload.truncate(self.payload_start);
        self.st.has_payload = false;
        if !matches!(slot, Slot::Present) {
            return Ok(());
        }
        // After an earlier error the row is lost anyway: only validate the JSON.
        let skip_decode = self.st.err.is_some();
        let s = self.s.string()?;
        let text = if s.escaped {
            self.unescape(s)?;
            &self.scratch[..]
        } else {
            s.raw
        };
        let ok = skip_decode || decode_base64(text, self.payload);
        if ok {
            self.st.has_payload = true;
        } else {
            self.payload.truncate(self.payload_start);
            self.fail(ErrorKind::InvalidBase64, off);
        }
        Ok(())
    }

    /// An object of device identifiers (`end_device_ids` / `deviceInfo`).
    fn device_ids(
        &mut self,
        field: &'static str,
        classify: fn(&[u8]) -> DevKey,
        eui_field: &'static str,
        id_field: &'static str,
    ) -> SResult<()> {
        if !matches!(self.slot(Want::Object, field)?.0, Slot::Present) {
            return Ok(());
        }
        let first = self.s.object_first()?;
        let mut key = self.key(first, classify)?;
        while let Some(k) = key {
            match k {
                DevKey::DevEui => self.read_dev_eui(eui_field)?,
                DevKey::DeviceId => self.read_device_id(id_field)?,
                DevKey::Skip => self.s.skip()?,
            }
            let next = self.s.object_next()?;
            key = self.key(next, classify)?;
        }
        Ok(())
    }

    /// The gateway list (`rx_metadata` / `rxInfo`): count, best RSSI and SNR.
    fn gateways(&mut self, f: &GwFields) -> SResult<()> {
        // A repeated key replaces the earlier list.
        self.st.rssi = None;
        self.st.snr = None;
        self.st.gateway_count = 0;
        if !matches!(self.slot(Want::Array, f.list)?.0, Slot::Present) {
            return Ok(());
        }
        let mut item = self.s.array_first()?;
        while let Some(first) = item {
            self.st.gateway_count = self.st.gateway_count.saturating_add(1);
            if first == b'{' {
                self.gateway(f)?;
            } else {
                let off = self.s.pos();
                self.s.skip()?;
                self.fail(ErrorKind::WrongType { field: f.item }, off);
            }
            item = self.s.array_next()?;
        }
        Ok(())
    }

    /// One gateway object (the scanner is on its `{`).
    fn gateway(&mut self, f: &GwFields) -> SResult<()> {
        let (mut rssi, mut channel_rssi, mut snr) = (None, None, None);
        let first = self.s.object_first()?;
        let mut key = self.key(first, gw_key)?;
        while let Some(k) = key {
            match k {
                GwKey::Rssi => rssi = self.read_f64(f.rssi)?,
                GwKey::ChannelRssi => channel_rssi = self.read_f64(f.channel_rssi)?,
                GwKey::Snr => snr = self.read_f64(f.snr)?,
                GwKey::Skip => self.s.skip()?,
            }
            let next = self.s.object_next()?;
            key = self.key(next, gw_key)?;
        }
        let rssi = rssi.or(channel_rssi);
        // Proto3 JSON omits zero values: a gateway that reports radio metadata but no
        // `snr` measured an SNR of exactly 0 dB.
        let snr = snr.or(rssi.map(|_| 0.0));
        self.st.rssi = max_opt(self.st.rssi, rssi);
        self.st.snr = max_opt(self.st.snr, snr);
        Ok(())
    }

    /// A member that marks a non-uplink event (remember where, skip it). `null` does not count.
    fn other_event(&mut self) -> SResult<()> {
        let first = self.s.peek()?;
        let off = self.s.pos();
        if first != b'n' && self.st.other_event.is_none() {
            self.st.other_event = Some(off);
        }
        self.s.skip()
    }

    fn ttn_uplink(&mut self) -> SResult<()> {
        let (slot, _) = self.slot(Want::Object, "uplink_message")?;
        match slot {
            Slot::Null => return Ok(()),
            Slot::Wrong => {
                self.st.has_uplink = true;
                return Ok(());
            }
            Slot::Present => self.st.has_uplink = true,
        }
        let first = self.s.object_first()?;
        let mut key = self.key(first, ttn_up_key)?;
        while let Some(k) = key {
            match k {
                TtnUp::FrmPayload => self.read_payload("uplink_message.frm_payload")?,
                TtnUp::FPort => self.st.fport = self.read_uint("uplink_message.f_port", 255)?,
                TtnUp::FCnt => {
                    self.st.fcnt = self.read_uint("uplink_message.f_cnt", u32::MAX)?;
                }
                TtnUp::RxMetadata => self.gateways(&TTN_GW_FIELDS)?,
                TtnUp::ReceivedAt => {
                    self.st.time_inner = self.read_timestamp("uplink_message.received_at")?;
                }
                TtnUp::Skip => self.s.skip()?,
            }
            let next = self.s.object_next()?;
            key = self.key(next, ttn_up_key)?;
        }
        Ok(())
    }

    fn ttn_root(&mut self) -> SResult<()> {
        let first = self.s.object_first()?;
        let mut key = self.key(first, ttn_root_key)?;
        while let Some(k) = key {
            match k {
                TtnRoot::EndDeviceIds => self.device_ids(
                    "end_device_ids",
                    ttn_ids_key,
                    "end_device_ids.dev_eui",
                    "end_device_ids.device_id",
                )?,
                TtnRoot::ReceivedAt => self.st.time = self.read_timestamp("received_at")?,
                TtnRoot::UplinkMessage => self.ttn_uplink()?,
                TtnRoot::OtherEvent => self.other_event()?,
                TtnRoot::Skip => self.s.skip()?,
            }
            let next = self.s.object_next()?;
            key = self.key(next, ttn_root_key)?;
        }
        Ok(())
    }

    fn cs_root(&mut self) -> SResult<()> {
        let first = self.s.object_first()?;
        let mut key = self.key(first, cs_root_key)?;
        while let Some(k) = key {
            match k {
                CsRoot::DeviceInfo => self.device_ids(
                    "deviceInfo",
                    cs_device_info_key,
                    "deviceInfo.devEui",
                    "deviceInfo.deviceName",
                )?,
                CsRoot::Time => self.st.time = self.read_timestamp("time")?,
                CsRoot::FPort => {
                    self.st.uplink_hint = true;
                    self.st.fport = self.read_uint("fPort", 255)?;
                }
                CsRoot::FCnt => {
                    self.st.uplink_hint = true;
                    self.st.fcnt = self.read_uint("fCnt", u32::MAX)?;
                }
                CsRoot::Data => self.read_payload("data")?,
                CsRoot::RxInfo => {
                    self.st.uplink_hint = true;
                    self.gateways(&CS_GW_FIELDS)?;
                }
                CsRoot::DevAddr => {
                    self.st.has_dev_addr = true;
                    self.s.skip()?;
                }
                CsRoot::UplinkHint => {
                    self.st.uplink_hint = true;
                    self.s.skip()?;
                }
                CsRoot::OtherEvent => self.other_event()?,
                CsRoot::Skip => self.s.skip()?,
            }
            let next = self.s.object_next()?;
            key = self.key(next, cs_root_key)?;
        }
        Ok(())
    }

    /// Walk the whole message. Outer error: malformed JSON. Inner error: the root is
    /// not an object.
    fn walk(&mut self, format: Format) -> SResult<Result<(), DecodeError>> {
        let first = self.s.peek()?;
        if first != b'{' {
            let off = self.s.pos();
            self.s.skip()?;
            self.s.finish()?;
            return Ok(Err(DecodeError::new(
                ErrorKind::WrongType { field: "(root)" },
                off,
            )));
        }
        match format {
            Format::TtnV3 => self.ttn_root()?,
            Format::ChirpstackV4 => self.cs_root()?,
        }
        self.s.finish()?;
        Ok(Ok(()))
    }

    /// The JSON was valid: decide between an uplink and an error row.
    fn finish(&mut self, format: Format) -> Result<Meta, DecodeError> {
        let st = &mut self.st;
        let (eui_field, payload_field) = match format {
            Format::TtnV3 => {
                if !st.has_uplink {
                    if let Some(off) = st.other_event {
                        return Err(DecodeError::new(ErrorKind::NotUplink, off));
                    }
                }
                ("end_device_ids.dev_eui", "uplink_message.frm_payload")
            }
            Format::ChirpstackV4 => {
                if !st.has_payload {
                    if let Some(off) = st.other_event {
                        return Err(DecodeError::new(ErrorKind::NotUplink, off));
                    }
                    if st.has_dev_addr && !st.uplink_hint {
                        // A join event: deduplicationId, time, deviceInfo, devAddr.
                        return Err(DecodeError::new(ErrorKind::NotUplink, 0));
                    }
                }
                ("deviceInfo.devEui", "data")
            }
        };
        if let Some(e) = st.err.take() {
            return Err(e);
        }
        let Some(dev_eui) = st.dev_eui else {
            return Err(DecodeError::new(
                ErrorKind::MissingField { field: eui_field },
                0,
            ));
        };
        if format == Format::TtnV3 && !st.has_uplink {
            return Err(DecodeError::new(
                ErrorKind::MissingField {
                    field: "uplink_message",
                },
                0,
            ));
        }
        let fport = st.fport.unwrap_or(0);
        // TTN omits empty fields, so an uplink on a real FPort with an empty
        // FRMPayload has no `frm_payload`; without `f_port` either it is a MAC-only
        // (FPort 0) frame and carries no application payload at all.
        let empty_ttn_payload = format == Format::TtnV3 && fport > 0;
        if !st.has_payload && !empty_ttn_payload {
            return Err(DecodeError::new(
                ErrorKind::MissingField {
                    field: payload_field,
                },
                0,
            ));
        }
        Ok(Meta {
            dev_eui,
            has_device_id: st.has_device_id,
            received_at_ns: st.time.or(st.time_inner),
            // Validated `<= 255` by `read_uint`.
            fport: u8::try_from(fport).unwrap_or(u8::MAX),
            fcnt: st.fcnt.unwrap_or(0),
            rssi: st.rssi,
            snr: st.snr,
            gateway_count: st.gateway_count,
        })
    }
}

#[inline]
fn max_opt(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn base64_variants() {
        let mut out = Vec::new();
        for (s, want) in [
            ("", &[][..]),
            ("qg==", &[0xAA][..]),
            ("qg", &[0xAA][..]),
            ("gkHe", &[0x82, 0x41, 0xDE][..]),
            ("+/8=", &[0xFB, 0xFF][..]),
            ("-_8=", &[0xFB, 0xFF][..]),
            ("-_8", &[0xFB, 0xFF][..]),
        ] {
            out.clear();
            assert!(decode_base64(s.as_bytes(), &mut out), "{s}");
            assert_eq!(out, want, "{s}");
        }
        for s in ["q", "qg=x", "q!==", "+_8=", "qg===", "====", "qg= "] {
            out.clear();
            assert!(!decode_base64(s.as_bytes(), &mut out), "{s}");
        }
    }

    #[test]
    fn base64_appends() {
        let mut out = vec![1, 2];
        assert!(decode_base64(b"qg==", &mut out));
        assert_eq!(out, [1, 2, 0xAA]);
    }

    #[test]
    fn dev_eui_normalization() {
        assert_eq!(
            normalize_dev_eui(b"0004A30B001C0530"),
            Some(*b"0004a30b001c0530")
        );
        assert_eq!(
            normalize_dev_eui(b"abcdefABCDEF0123"),
            Some(*b"abcdefabcdef0123")
        );
        assert_eq!(normalize_dev_eui(b"0004A30B001C053"), None);
        assert_eq!(normalize_dev_eui(b"0004A30B001C05300"), None);
        assert_eq!(normalize_dev_eui(b"0004A30B001C053G"), None);
        assert_eq!(normalize_dev_eui(b"0004-30B001C0530"), None);
        assert_eq!(normalize_dev_eui(b""), None);
    }

    #[test]
    fn max_opt_combines() {
        assert_eq!(max_opt(None, None), None);
        assert_eq!(max_opt(Some(1.0), None), Some(1.0));
        assert_eq!(max_opt(None, Some(-2.0)), Some(-2.0));
        assert_eq!(max_opt(Some(-3.0), Some(-2.0)), Some(-2.0));
    }

    /// Everything `parse_message` reports for one message.
    fn outcome(format: Format, msg: &[u8], ws: &mut Workspace) -> String {
        let (mut payload, mut device_id) = (vec![7u8], vec![9u8]);
        let r = parse_message(format, msg, &mut payload, &mut device_id, ws);
        format!("{r:?} {payload:?} {device_id:?}")
    }

    /// A TTN or ChirpStack uplink with the given pieces (compact JSON).
    fn envelope(chirpstack: bool, id: &str, gateways: &[(i32, &str)], extra: &str) -> String {
        let gws: Vec<String> = gateways
            .iter()
            .map(|(rssi, snr)| {
                format!(r#"{{"gateway_ids":{{"gateway_id":"{id}"}},"rssi":{rssi},"snr":{snr},"uplink_token":"ChIKEAoEZ3R3MRIInFyOAAAaBcQQ6L3Vlgk=","channel_index":2}}"#)
            })
            .collect();
        let gws = gws.join(",");
        if chirpstack {
            format!(
                r#"{{"deduplicationId":"3ac7e3c4-4401-4b8d-9386-000000000001","time":"2025-11-24T16:00:00.123456789+00:00","deviceInfo":{{"tenantName":"ChirpStack","deviceName":"{id}","devEui":"0004a30b001c0530","tags":{{"k":"v"}}}},"devAddr":"00bc0000","adr":true,"dr":5,"fCnt":12,"fPort":85,"confirmed":false,"data":"AXVkAA==","rxInfo":[{gws}],"txInfo":{{"frequency":868300000,"modulation":{{"lora":{{"bandwidth":125000,"spreadingFactor":7,"codeRate":"CR_4_5"}}}}}}{extra}}}"#
            )
        } else {
            format!(
                r#"{{"end_device_ids":{{"device_id":"{id}","application_ids":{{"application_id":"app1"}},"dev_eui":"0004A30B001C0530","dev_addr":"00BCB929"}},"correlation_ids":["as:up:01E0WZGT6Y7657CPFPE5WEYDSQ","rpc:/ttn.lorawan.v3.GsNs/HandleUplink:01E0WZGSZXGE1KS577PFBWRJEE"],"received_at":"2020-02-12T15:15:46.014773143Z","uplink_message":{{"session_key_id":"AXA50tHUGUucuzS/bCGMNw==","f_port":85,"f_cnt":1,"frm_payload":"gkHe","rx_metadata":[{gws}],"settings":{{"data_rate":{{"lora":{{"bandwidth":125000,"spreading_factor":7}}}},"frequency":"868300000","timestamp":2463457000}},"locations":{{"user":{{"latitude":37.97155556731436,"longitude":23.72678801175413,"altitude":10,"source":"SOURCE_REGISTRY"}}}},"received_at":"2020-02-12T15:15:46.014773143Z"}}{extra}}}"#
            )
        }
    }

    /// Byte edits: overwrite, insert, remove, truncate.
    fn mutate(base: &[u8], edits: &[(usize, u8, u8)]) -> Vec<u8> {
        let mut m = base.to_vec();
        for &(pos, op, byte) in edits {
            if m.is_empty() {
                m.push(byte);
                continue;
            }
            let p = pos % m.len();
            match op % 4 {
                0 => m[p] = byte,
                1 => m.insert(p, byte),
                2 => {
                    m.remove(p);
                }
                _ => m.truncate(p),
            }
        }
        m
    }

    fn interesting_byte() -> impl Strategy<Value = u8> {
        prop_oneof![
            any::<u8>(),
            prop::sample::select(
                b"{}[]\":,\\ \n\t0123456789-+.eEtfnul=/_AZaz\x00\x1f\x7f\x80\xc3\xa9\xff".to_vec()
            ),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

        /// The indexed walk (every block classifier this CPU has) gives exactly the
        /// byte-wise walk's result, error kind and offset included, on envelopes
        /// with random pieces, pretty-printed or not, then mutated byte-wise.
        #[test]
        fn indexed_walk_equals_bytewise_walk(
            chirpstack in any::<bool>(),
            id in "[a-z0-9\\-é\"\\\\]{0,70}",
            gateways in prop::collection::vec((-140i32..0, prop::sample::select(vec!["-7.5", "0", "12", "1e1", "null", "\"x\"", "-0.25E-2"])), 0..4),
            extra in prop::sample::select(vec!["", r#","n":[1,2.5,{"a":[]}]"#, r#","join_accept":{}"#, r#","k\u0041":"\n""#, r#","deep":[[[[[[[[]]]]]]]]"#]),
            pretty in any::<bool>(),
            edits in prop::collection::vec((any::<usize>(), 0u8..4, interesting_byte()), 0..4),
            format_ttn in any::<bool>(),
        ) {
            let mut text = envelope(chirpstack, &id, &gateways, extra);
            if pretty {
                text = text.replace(",\"", ",\n  \"").replace(":{", ": {\t");
            }
            let msg = mutate(text.as_bytes(), &edits);
            let format = if format_ttn { Format::TtnV3 } else { Format::ChirpstackV4 };
            let want = outcome(format, &msg, &mut Workspace::with_level(None));
            for level in Level::all_supported() {
                let got = outcome(format, &msg, &mut Workspace::with_level(Some(level)));
                prop_assert_eq!(&got, &want, "{:?} {:?}", level, String::from_utf8_lossy(&msg));
            }
        }

        /// Arbitrary short byte strings, including around the 64-byte block edges.
        #[test]
        fn indexed_walk_equals_bytewise_on_any_bytes(
            msg in prop::collection::vec(interesting_byte(), 0..200),
        ) {
            for format in [Format::TtnV3, Format::ChirpstackV4] {
                let want = outcome(format, &msg, &mut Workspace::with_level(None));
                for level in Level::all_supported() {
                    let got = outcome(format, &msg, &mut Workspace::with_level(Some(level)));
                    prop_assert_eq!(&got, &want, "{:?}", level);
                }
            }
        }
    }

    /// Past the indexed size the byte-wise walk answers, with the same result.
    #[test]
    fn big_messages_are_walked_bytewise() {
        let pad = "x".repeat(super::super::index::MAX_INDEXED_BYTES);
        let msg = envelope(false, "big", &[(-80, "1")], &format!(r#","pad":"{pad}""#));
        let mut idx = Index::default();
        for level in Level::all_supported() {
            assert!(!idx.build(msg.as_bytes(), level));
            let got = outcome(
                Format::TtnV3,
                msg.as_bytes(),
                &mut Workspace::with_level(Some(level)),
            );
            assert!(got.starts_with("Ok("), "{got}");
            assert_eq!(
                got,
                outcome(
                    Format::TtnV3,
                    msg.as_bytes(),
                    &mut Workspace::with_level(None)
                )
            );
        }
    }

    /// The benchmark shape itself is indexed (not silently on the byte-wise walk).
    #[test]
    fn typical_envelopes_are_indexed() {
        let mut idx = Index::default();
        for cs in [false, true] {
            let msg = envelope(cs, "em310-1", &[(-80, "7.5"), (-90, "-2")], "");
            for level in Level::all_supported() {
                assert!(idx.build(msg.as_bytes(), level), "{level:?}");
            }
        }
    }
}

#[cfg(test)]
mod timing {
    use super::*;
    use std::time::Instant;

    fn cpu() -> f64 {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec.
        unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
    }

    /// Where the time goes (diagnostic): `ENVELOPE_FILE=... cargo test --release --lib
    /// envelope::parse::timing -- --ignored --nocapture`.
    #[test]
    #[ignore = "diagnostic timing, not a test"]
    fn components() {
        let Ok(path) = std::env::var("ENVELOPE_FILE") else {
            return;
        };
        let text = std::fs::read(path).unwrap();
        let mut msgs: Vec<&[u8]> = text
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        // ENVELOPE_HOT=N: the first N messages, over and over (cache-resident).
        if let Some(hot) = std::env::var("ENVELOPE_HOT")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
        {
            let reps = msgs.len() / hot;
            msgs = msgs[..hot].repeat(reps);
        }
        let n = msgs.len() as f64;
        let Some(level) = Level::detect() else {
            return;
        };
        let mut idx = Index::default();
        let time = |name: &str, f: &mut dyn FnMut()| {
            let (mut best, mut best_cpu) = (f64::MAX, f64::MAX);
            for _ in 0..7 {
                let (t, c) = (Instant::now(), cpu());
                f();
                best = best.min(t.elapsed().as_secs_f64());
                best_cpu = best_cpu.min(cpu() - c);
            }
            println!(
                "{name:24} {:7.1} ns/msg wall {:7.1} CPU",
                best / n * 1e9,
                best_cpu / n * 1e9
            );
        };
        time("index build", &mut || {
            for m in &msgs {
                std::hint::black_box(idx.build(m, level));
            }
        });
        time("skip bytewise", &mut || {
            for m in &msgs {
                let mut s = Scanner::new(m);
                std::hint::black_box(s.skip().is_ok());
            }
        });
        time("build + skip indexed", &mut || {
            for m in &msgs {
                idx.build(m, level);
                let mut s = Indexed::new(m, &idx);
                std::hint::black_box(s.skip().is_ok());
            }
        });
        let fmt = if msgs[0].starts_with(b"{\"end_device_ids\"") {
            Format::TtnV3
        } else {
            Format::ChirpstackV4
        };
        for lv in [None, Some(level)] {
            let mut ws = Workspace::with_level(lv);
            let (mut pl, mut di) = (Vec::with_capacity(1 << 20), Vec::with_capacity(1 << 20));
            time(&format!("parse {lv:?}"), &mut || {
                for m in &msgs {
                    pl.clear();
                    di.clear();
                    std::hint::black_box(parse_message(fmt, m, &mut pl, &mut di, &mut ws).is_ok());
                }
            });
        }
    }
}
