//! The single-pass envelope parser shared by [`super::parse_one`] and
//! [`super::decode_uplinks`].
//!
//! One walk over the JSON with `jiter`: the fields we need are read where they
//! are, everything else is skipped without building values. The payload is base64
//! decoded straight into the caller's buffer and the device id copied straight into
//! another; on error both are cut back to where they started.
//!
//! Error precedence (for one message): malformed JSON first (the whole message is
//! always validated), then `not_uplink`, then the first field-level problem in
//! document order (wrong type, bad DevEUI, bad base64, bad timestamp), then missing
//! required fields.

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use jiter::{Jiter, JiterError, Peek};

use super::timestamp::parse_rfc3339_ns;
use super::Format;
use crate::error::{DecodeError, ErrorKind};

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

type JResult<T> = Result<T, JiterError>;

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
    let engine = if s.iter().any(|&b| b == b'-' || b == b'_') {
        &B64_URL_SAFE
    } else {
        &B64_STANDARD
    };
    engine.decode_vec(s, out).is_ok()
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

struct Parser<'j, 'b> {
    j: Jiter<'j>,
    payload: &'b mut Vec<u8>,
    payload_start: usize,
    device_id: &'b mut Vec<u8>,
    device_id_start: usize,
    st: State,
}

/// Parse one message. On `Ok`, the decoded payload has been appended to `payload`
/// and, if `has_device_id`, the device id to `device_id`. On `Err` both are left at
/// their original lengths. `tape` is jiter's scratch buffer for escaped strings,
/// kept across calls so a batch does not allocate per message.
pub(crate) fn parse_message(
    format: Format,
    msg: &[u8],
    payload: &mut Vec<u8>,
    device_id: &mut Vec<u8>,
    tape: &mut Vec<u8>,
) -> Result<Meta, DecodeError> {
    let payload_start = payload.len();
    let device_id_start = device_id.len();
    let mut p = Parser {
        j: Jiter::with_tape(msg, std::mem::take(tape)),
        payload,
        payload_start,
        device_id,
        device_id_start,
        st: State::default(),
    };
    let walked = p.walk(format);
    let result = match walked {
        Err(e) => Err(DecodeError::new(
            ErrorKind::InvalidJson {
                detail: e.error_type.to_string(),
            },
            e.index,
        )),
        Ok(Err(e)) => Err(e),
        Ok(Ok(())) => p.finish(format),
    };
    if result.is_err() {
        p.payload.truncate(payload_start);
        p.device_id.truncate(device_id_start);
    }
    *tape = p.j.into_tape();
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
fn ttn_root_key(k: &str) -> TtnRoot {
    match k {
        "end_device_ids" | "endDeviceIds" => TtnRoot::EndDeviceIds,
        "received_at" | "receivedAt" => TtnRoot::ReceivedAt,
        "uplink_message" | "uplinkMessage" => TtnRoot::UplinkMessage,
        "join_accept" | "joinAccept" | "downlink_ack" | "downlinkAck" | "downlink_nack"
        | "downlinkNack" | "downlink_sent" | "downlinkSent" | "downlink_failed"
        | "downlinkFailed" | "downlink_queued" | "downlinkQueued"
        | "downlink_queue_invalidated" | "downlinkQueueInvalidated" | "location_solved"
        | "locationSolved" | "service_data" | "serviceData" | "uplink_normalized"
        | "uplinkNormalized" => TtnRoot::OtherEvent,
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
fn ttn_ids_key(k: &str) -> DevKey {
    match k {
        "dev_eui" | "devEui" => DevKey::DevEui,
        "device_id" | "deviceId" => DevKey::DeviceId,
        _ => DevKey::Skip,
    }
}

#[inline]
fn cs_device_info_key(k: &str) -> DevKey {
    match k {
        "devEui" | "dev_eui" => DevKey::DevEui,
        "deviceName" | "device_name" => DevKey::DeviceId,
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
fn ttn_up_key(k: &str) -> TtnUp {
    match k {
        "frm_payload" | "frmPayload" => TtnUp::FrmPayload,
        "f_port" | "fPort" => TtnUp::FPort,
        "f_cnt" | "fCnt" => TtnUp::FCnt,
        "rx_metadata" | "rxMetadata" => TtnUp::RxMetadata,
        "received_at" | "receivedAt" => TtnUp::ReceivedAt,
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
fn gw_key(k: &str) -> GwKey {
    match k {
        "rssi" => GwKey::Rssi,
        "channel_rssi" | "channelRssi" => GwKey::ChannelRssi,
        "snr" => GwKey::Snr,
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
fn cs_root_key(k: &str) -> CsRoot {
    match k {
        "deviceInfo" | "device_info" => CsRoot::DeviceInfo,
        "time" => CsRoot::Time,
        "fPort" | "f_port" => CsRoot::FPort,
        "fCnt" | "f_cnt" => CsRoot::FCnt,
        "data" => CsRoot::Data,
        "rxInfo" | "rx_info" => CsRoot::RxInfo,
        "devAddr" | "dev_addr" => CsRoot::DevAddr,
        "dr" | "adr" | "confirmed" | "txInfo" | "tx_info" => CsRoot::UplinkHint,
        // AckEvent, TxAckEvent, LogEvent, StatusEvent, LocationEvent, IntegrationEvent
        // (chirpstack/chirpstack:api/proto/integration/integration.proto).
        "queueItemId" | "queue_item_id" | "acknowledged" | "fCntDown" | "f_cnt_down"
        | "downlinkId" | "downlink_id" | "gatewayId" | "gateway_id" | "level" | "code"
        | "description" | "margin" | "externalPowerSource" | "external_power_source"
        | "batteryLevelUnavailable" | "battery_level_unavailable" | "batteryLevel"
        | "battery_level" | "location" | "integrationName" | "integration_name"
        | "eventType" | "event_type" => CsRoot::OtherEvent,
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

/// What a value turned out to be when we expected a container or scalar.
enum Slot {
    /// The expected JSON type; the value is not consumed yet.
    Present(Peek),
    /// `null` (proto3 JSON: the default value), consumed.
    Null,
    /// Another type: recorded as `wrong_type` and skipped.
    Wrong,
}

impl Parser<'_, '_> {
    #[cold]
    fn fail(&mut self, kind: ErrorKind, offset: usize) {
        if self.st.err.is_none() {
            self.st.err = Some(DecodeError::new(kind, offset));
        }
    }

    /// Look at the next value: is it `want` (or, for numbers, any number)?
    #[inline]
    fn slot(&mut self, want: Peek, field: &'static str) -> JResult<(Slot, usize)> {
        let peek = self.j.peek()?;
        let off = self.j.current_index();
        let ok = if want == Peek::Minus {
            peek.is_num()
        } else {
            peek == want
        };
        if ok {
            return Ok((Slot::Present(peek), off));
        }
        if peek == Peek::Null {
            self.j.known_null()?;
            return Ok((Slot::Null, off));
        }
        // Validate (and skip) the value first: malformed JSON wins over a type error.
        self.j.known_skip(peek)?;
        self.fail(ErrorKind::WrongType { field }, off);
        Ok((Slot::Wrong, off))
    }

    /// A number that must be an integer in `0..=max` (integral floats like `1.0` are
    /// accepted, as protobuf JSON parsers do).
    fn read_uint(&mut self, field: &'static str, max: u32) -> JResult<Option<u32>> {
        let (slot, off) = self.slot(Peek::Minus, field)?;
        let Slot::Present(peek) = slot else {
            return Ok(None);
        };
        let f = self.j.known_float(peek)?;
        if f.fract() == 0.0 && (0.0..=f64::from(max)).contains(&f) {
            // In range and integral, so the cast is exact.
            Ok(Some(f as u32))
        } else {
            self.fail(ErrorKind::WrongType { field }, off);
            Ok(None)
        }
    }

    /// A finite number (integer or float).
    fn read_f64(&mut self, field: &'static str) -> JResult<Option<f64>> {
        let (slot, off) = self.slot(Peek::Minus, field)?;
        let Slot::Present(peek) = slot else {
            return Ok(None);
        };
        let f = self.j.known_float(peek)?;
        if f.is_finite() {
            Ok(Some(f))
        } else {
            self.fail(ErrorKind::WrongType { field }, off);
            Ok(None)
        }
    }

    fn read_timestamp(&mut self, field: &'static str) -> JResult<Option<i64>> {
        let (slot, off) = self.slot(Peek::String, field)?;
        if !matches!(slot, Slot::Present(_)) {
            return Ok(None);
        }
        let t = parse_rfc3339_ns(self.j.known_str()?.as_bytes());
        if t.is_none() {
            self.fail(ErrorKind::InvalidTimestamp { field }, off);
        }
        Ok(t)
    }

    fn read_dev_eui(&mut self, field: &'static str) -> JResult<()> {
        let (slot, off) = self.slot(Peek::String, field)?;
        if !matches!(slot, Slot::Present(_)) {
            // `null` means absent; a wrong type was recorded.
            self.st.dev_eui = None;
            return Ok(());
        }
        let eui = normalize_dev_eui(self.j.known_str()?.as_bytes());
        if eui.is_none() {
            self.fail(ErrorKind::InvalidDevEui, off);
        }
        self.st.dev_eui = eui;
        Ok(())
    }

    fn read_device_id(&mut self, field: &'static str) -> JResult<()> {
        let (slot, _) = self.slot(Peek::String, field)?;
        self.device_id.truncate(self.device_id_start);
        self.st.has_device_id = false;
        if matches!(slot, Slot::Present(_)) {
            let s = self.j.known_str()?;
            self.device_id.extend_from_slice(s.as_bytes());
            self.st.has_device_id = true;
        }
        Ok(())
    }

    fn read_payload(&mut self, field: &'static str) -> JResult<()> {
        let (slot, off) = self.slot(Peek::String, field)?;
        self.payload.truncate(self.payload_start);
        self.st.has_payload = false;
        if !matches!(slot, Slot::Present(_)) {
            return Ok(());
        }
        let skip_decode = self.st.err.is_some();
        let s = self.j.known_str()?;
        // After an earlier error the row is lost anyway: only validate the JSON.
        let ok = skip_decode || decode_base64(s.as_bytes(), self.payload);
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
        classify: fn(&str) -> DevKey,
        eui_field: &'static str,
        id_field: &'static str,
    ) -> JResult<()> {
        if !matches!(self.slot(Peek::Object, field)?.0, Slot::Present(_)) {
            return Ok(());
        }
        let mut key = self.j.known_object()?.map(classify);
        while let Some(k) = key {
            match k {
                DevKey::DevEui => self.read_dev_eui(eui_field)?,
                DevKey::DeviceId => self.read_device_id(id_field)?,
                DevKey::Skip => self.j.next_skip()?,
            }
            key = self.j.next_key()?.map(classify);
        }
        Ok(())
    }

    /// The gateway list (`rx_metadata` / `rxInfo`): count, best RSSI and SNR.
    fn gateways(&mut self, f: &GwFields) -> JResult<()> {
        // A repeated key replaces the earlier list.
        self.st.rssi = None;
        self.st.snr = None;
        self.st.gateway_count = 0;
        if !matches!(self.slot(Peek::Array, f.list)?.0, Slot::Present(_)) {
            return Ok(());
        }
        let mut item = self.j.known_array()?;
        while let Some(peek) = item {
            self.st.gateway_count = self.st.gateway_count.saturating_add(1);
            if peek == Peek::Object {
                self.gateway(f)?;
            } else {
                let off = self.j.current_index();
                self.j.known_skip(peek)?;
                self.fail(ErrorKind::WrongType { field: f.item }, off);
            }
            item = self.j.array_step()?;
        }
        Ok(())
    }

    /// One gateway object (the parser is on its `{`).
    fn gateway(&mut self, f: &GwFields) -> JResult<()> {
        let (mut rssi, mut channel_rssi, mut snr) = (None, None, None);
        let mut key = self.j.known_object()?.map(gw_key);
        while let Some(k) = key {
            match k {
                GwKey::Rssi => rssi = self.read_f64(f.rssi)?,
                GwKey::ChannelRssi => channel_rssi = self.read_f64(f.channel_rssi)?,
                GwKey::Snr => snr = self.read_f64(f.snr)?,
                GwKey::Skip => self.j.next_skip()?,
            }
            key = self.j.next_key()?.map(gw_key);
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
    fn other_event(&mut self) -> JResult<()> {
        let peek = self.j.peek()?;
        let off = self.j.current_index();
        if peek != Peek::Null && self.st.other_event.is_none() {
            self.st.other_event = Some(off);
        }
        self.j.known_skip(peek)
    }

    fn ttn_uplink(&mut self) -> JResult<()> {
        let (slot, _) = self.slot(Peek::Object, "uplink_message")?;
        match slot {
            Slot::Null => return Ok(()),
            Slot::Wrong => {
                self.st.has_uplink = true;
                return Ok(());
            }
            Slot::Present(_) => self.st.has_uplink = true,
        }
        let mut key = self.j.known_object()?.map(ttn_up_key);
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
                TtnUp::Skip => self.j.next_skip()?,
            }
            key = self.j.next_key()?.map(ttn_up_key);
        }
        Ok(())
    }

    fn ttn_root(&mut self) -> JResult<()> {
        let mut key = self.j.known_object()?.map(ttn_root_key);
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
                TtnRoot::Skip => self.j.next_skip()?,
            }
            key = self.j.next_key()?.map(ttn_root_key);
        }
        Ok(())
    }

    fn cs_root(&mut self) -> JResult<()> {
        let mut key = self.j.known_object()?.map(cs_root_key);
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
                    self.j.next_skip()?;
                }
                CsRoot::UplinkHint => {
                    self.st.uplink_hint = true;
                    self.j.next_skip()?;
                }
                CsRoot::OtherEvent => self.other_event()?,
                CsRoot::Skip => self.j.next_skip()?,
            }
            key = self.j.next_key()?.map(cs_root_key);
        }
        Ok(())
    }

    /// Walk the whole message. Outer error: malformed JSON. Inner error: the root is
    /// not an object.
    fn walk(&mut self, format: Format) -> JResult<Result<(), DecodeError>> {
        let peek = self.j.peek()?;
        if peek != Peek::Object {
            let off = self.j.current_index();
            self.j.known_skip(peek)?;
            self.j.finish()?;
            return Ok(Err(DecodeError::new(
                ErrorKind::WrongType { field: "(root)" },
                off,
            )));
        }
        match format {
            Format::TtnV3 => self.ttn_root()?,
            Format::ChirpstackV4 => self.cs_root()?,
        }
        self.j.finish()?;
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
}
