//! Hand-rolled writers for the uplink envelopes the simulator emits (TTN v3
//! `ApplicationUp` and ChirpStack v4 `up` events, `shared/sensors/ENVELOPES.md`).
//! Every value written is a number, a fixed-alphabet string (hex, base64, ids) or
//! a name we control, so no JSON escaping is ever needed (names are checked once).

use super::calendar::TimeFormatter;

const HEX_LOWER: &[u8; 16] = b"0123456789abcdef";
const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";
const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// True if `s` can be written inside a JSON string without escaping.
pub fn json_safe(s: &str) -> bool {
    s.bytes()
        .all(|b| b >= 0x20 && b != b'"' && b != b'\\' && b < 0x7f)
}

#[inline]
pub fn push_u64(out: &mut Vec<u8>, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

#[inline]
pub fn push_i64(out: &mut Vec<u8>, v: i64) {
    if v < 0 {
        out.push(b'-');
    }
    push_u64(out, v.unsigned_abs());
}

/// A number with exactly one decimal ("-7.5", "12.0").
#[inline]
pub fn push_dec1(out: &mut Vec<u8>, v: f64) {
    let t = (v * 10.0).round() as i64;
    if t < 0 {
        out.push(b'-');
    }
    let a = t.unsigned_abs();
    push_u64(out, a / 10);
    out.push(b'.');
    out.push(b'0' + (a % 10) as u8);
}

#[inline]
pub fn push_hex(out: &mut Vec<u8>, v: u64, digits: usize, upper: bool) {
    let table = if upper { HEX_UPPER } else { HEX_LOWER };
    for i in (0..digits).rev() {
        out.push(table[((v >> (4 * i)) & 0xf) as usize]);
    }
}

/// An RFC 4122-shaped (version 4, variant 1) UUID from 128 bits.
pub fn push_uuid(out: &mut Vec<u8>, hi: u64, lo: u64) {
    let hi = (hi & 0xffff_ffff_ffff_0fff) | 0x0000_0000_0000_4000;
    let lo = (lo & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
    push_hex(out, hi >> 32, 8, false);
    out.push(b'-');
    push_hex(out, (hi >> 16) & 0xffff, 4, false);
    out.push(b'-');
    push_hex(out, hi & 0xffff, 4, false);
    out.push(b'-');
    push_hex(out, lo >> 48, 4, false);
    out.push(b'-');
    push_hex(out, lo & 0xffff_ffff_ffff, 12, false);
}

/// A ULID (48-bit ms timestamp + 80 random bits) in Crockford base32, 26 chars.
pub fn push_ulid(out: &mut Vec<u8>, ms: u64, r1: u64, r2: u64) {
    let v: u128 = (u128::from(ms & 0xffff_ffff_ffff) << 80)
        | (u128::from(r1 & 0xffff) << 64)
        | u128::from(r2);
    for i in (0..26).rev() {
        out.push(CROCKFORD[((v >> (5 * i)) & 0x1f) as usize]);
    }
}

/// Standard base64 with padding.
#[inline]
pub fn push_base64(out: &mut Vec<u8>, data: &[u8]) {
    let mut chunks = data.chunks_exact(3);
    for c in &mut chunks {
        let n = (u32::from(c[0]) << 16) | (u32::from(c[1]) << 8) | u32::from(c[2]);
        out.extend_from_slice(&[
            B64[(n >> 18) as usize & 63],
            B64[(n >> 12) as usize & 63],
            B64[(n >> 6) as usize & 63],
            B64[n as usize & 63],
        ]);
    }
    let rest = chunks.remainder();
    match rest.len() {
        1 => {
            let n = u32::from(rest[0]) << 16;
            out.extend_from_slice(&[
                B64[(n >> 18) as usize & 63],
                B64[(n >> 12) as usize & 63],
                b'=',
                b'=',
            ]);
        }
        2 => {
            let n = (u32::from(rest[0]) << 16) | (u32::from(rest[1]) << 8);
            out.extend_from_slice(&[
                B64[(n >> 18) as usize & 63],
                B64[(n >> 12) as usize & 63],
                B64[(n >> 6) as usize & 63],
                b'=',
            ]);
        }
        _ => {}
    }
}

/// Per-frame radio facts shared by both envelope formats.
#[derive(Debug, Clone, Copy)]
pub struct Radio {
    pub rssi: f64,
    pub snr: f64,
    pub sf: u8,
    pub channel: u8,
    pub n_gw: u8,
    pub gw0: u16,
    pub n_gateways_total: u16,
}

pub const CHANNELS_HZ: [u64; 8] = [
    868_100_000,
    868_300_000,
    868_500_000,
    867_100_000,
    867_300_000,
    867_500_000,
    867_700_000,
    867_900_000,
];

/// Gateway EUI of gateway `g` (deterministic from the run seed).
#[inline]
pub fn gateway_eui(seed_hash: u64, g: u16) -> u64 {
    0x7076_ff00_0000_0000
        | (super::rng::hash2(seed_hash ^ 0x6761_7465_7761_7973, u64::from(g)) & 0xff_ffff_ffff)
}

/// LoRa time on air in µs for an EU868 125 kHz uplink, CR 4/5, 8-symbol preamble,
/// explicit header, CRC on (Semtech AN1200.13).
pub fn airtime_us(payload_len: usize, sf: u8) -> u64 {
    let sf_f = f64::from(sf);
    let t_sym = (1u64 << sf) as f64 / 125.0; // ms
    let de = if sf >= 11 { 1.0 } else { 0.0 };
    // 13 bytes of LoRaWAN overhead (MHDR, FHDR, FPort, MIC).
    let pl = (payload_len + 13) as f64;
    let num = 8.0 * pl - 4.0 * sf_f + 28.0 + 16.0;
    let n_payload = 8.0 + ((num / (4.0 * (sf_f - 2.0 * de))).ceil() * 5.0).max(0.0);
    let t_pre = (8.0 + 4.25) * t_sym;
    ((t_pre + n_payload * t_sym) * 1000.0).round() as u64
}

/// What an envelope needs to know about its device.
pub struct DeviceIds<'a> {
    pub dev_eui: u64,
    pub dev_addr: u32,
    pub name: &'a str,
    /// Index into the model list the context was built with.
    pub model: usize,
    pub kind: &'a str,
}

/// Per-run constants of the envelopes, formatted once.
pub struct EnvContext {
    pub application: String,
    pub seed_hash: u64,
    /// ChirpStack `deviceInfo` from `tenantId` to the opening quote of `deviceProfileId`.
    cs_head: Vec<u8>,
    /// Per model: `<profile uuid>","deviceProfileName":"<model>`.
    cs_profiles: Vec<Vec<u8>>,
    /// Gateway EUIs as upper- and lowercase hex.
    gw_upper: Vec<[u8; 16]>,
    gw_lower: Vec<[u8; 16]>,
}

impl EnvContext {
    pub fn new(application: &str, seed_hash: u64, models: &[&str], n_gateways: u16) -> Self {
        let mut cs_head = Vec::new();
        cs_head.extend_from_slice(b"\"tenantId\":\"");
        push_uuid(
            &mut cs_head,
            super::rng::hash2(seed_hash, 1),
            super::rng::hash2(seed_hash, 2),
        );
        cs_head.extend_from_slice(b"\",\"tenantName\":\"PMA\",\"applicationId\":\"");
        push_uuid(
            &mut cs_head,
            super::rng::hash2(seed_hash, 3),
            super::rng::hash2(seed_hash, 4),
        );
        cs_head.extend_from_slice(b"\",\"applicationName\":\"");
        cs_head.extend_from_slice(application.as_bytes());
        cs_head.extend_from_slice(b"\",\"deviceProfileId\":\"");
        let cs_profiles = models
            .iter()
            .map(|m| {
                let mut v = Vec::new();
                let mh = model_hash(m);
                push_uuid(&mut v, super::rng::hash2(seed_hash, mh), mh);
                v.extend_from_slice(b"\",\"deviceProfileName\":\"");
                v.extend_from_slice(m.as_bytes());
                v
            })
            .collect();
        let hex = |g: u16, upper: bool| {
            let mut v = Vec::with_capacity(16);
            push_hex(&mut v, gateway_eui(seed_hash, g), 16, upper);
            let mut a = [0u8; 16];
            a.copy_from_slice(&v);
            a
        };
        EnvContext {
            application: application.to_string(),
            seed_hash,
            cs_head,
            cs_profiles,
            gw_upper: (0..n_gateways).map(|g| hex(g, true)).collect(),
            gw_lower: (0..n_gateways).map(|g| hex(g, false)).collect(),
        }
    }
}

/// Times of one uplink, ns since the epoch: gateway reception, NS, AS.
#[derive(Debug, Clone, Copy)]
pub struct Times {
    pub gw_ns: i64,
    pub ns_ns: i64,
    pub as_ns: i64,
}

fn push_ts(out: &mut Vec<u8>, tf: &mut TimeFormatter, ns: i64, zulu: bool) {
    out.push(b'"');
    tf.write(out, ns);
    if zulu {
        out.push(b'Z');
    } else {
        out.extend_from_slice(b"+00:00");
    }
    out.push(b'"');
}

/// Write a TTN v3 `ApplicationUp` uplink.
#[allow(clippy::too_many_arguments)]
pub fn write_ttn(
    out: &mut Vec<u8>,
    tf: &mut TimeFormatter,
    ctx: &EnvContext,
    dev: &DeviceIds<'_>,
    fport: u8,
    fcnt: u32,
    payload: &[u8],
    times: Times,
    radio: &Radio,
    frame_hash: u64,
) {
    out.extend_from_slice(b"{\"end_device_ids\":{\"device_id\":\"");
    out.extend_from_slice(dev.name.as_bytes());
    out.extend_from_slice(b"\",\"application_ids\":{\"application_id\":\"");
    out.extend_from_slice(ctx.application.as_bytes());
    out.extend_from_slice(b"\"},\"dev_eui\":\"");
    push_hex(out, dev.dev_eui, 16, true);
    out.extend_from_slice(b"\",\"join_eui\":\"70B3D57ED0000000\",\"dev_addr\":\"");
    push_hex(out, u64::from(dev.dev_addr), 8, true);
    out.extend_from_slice(b"\"},\"correlation_ids\":[\"as:up:");
    push_ulid(
        out,
        (times.as_ns / 1_000_000) as u64,
        frame_hash,
        super::rng::mix64(frame_hash),
    );
    out.extend_from_slice(b"\",\"ns:uplink:");
    push_ulid(
        out,
        (times.ns_ns / 1_000_000) as u64,
        frame_hash >> 7,
        super::rng::mix64(frame_hash ^ 1),
    );
    out.extend_from_slice(b"\"],\"received_at\":");
    push_ts(out, tf, times.as_ns, true);
    out.extend_from_slice(b",\"uplink_message\":{");
    // proto3 JSON: zero values are omitted (f_port, f_cnt).
    if fport != 0 {
        out.extend_from_slice(b"\"f_port\":");
        push_u64(out, u64::from(fport));
        out.push(b',');
    }
    if fcnt != 0 {
        out.extend_from_slice(b"\"f_cnt\":");
        push_u64(out, u64::from(fcnt));
        out.push(b',');
    }
    out.extend_from_slice(b"\"frm_payload\":\"");
    push_base64(out, payload);
    out.extend_from_slice(b"\",\"rx_metadata\":[");
    let tmst = (times.gw_ns / 1000) as u64 & 0xffff_ffff;
    for g in 0..radio.n_gw {
        if g > 0 {
            out.push(b',');
        }
        let gw = (radio.gw0 + u16::from(g)) % radio.n_gateways_total.max(1);
        let (rssi, snr) = gw_signal(radio, g, frame_hash);
        out.extend_from_slice(b"{\"gateway_ids\":{\"gateway_id\":\"pma-gw-");
        push_u64(out, u64::from(gw));
        out.extend_from_slice(b"\",\"eui\":\"");
        out.extend_from_slice(ctx.gw_upper.get(usize::from(gw)).map_or(&[b'0'; 16], |h| h));
        out.extend_from_slice(b"\"},\"time\":");
        push_ts(out, tf, times.gw_ns, true);
        out.extend_from_slice(b",\"timestamp\":");
        push_u64(out, tmst.wrapping_add(u64::from(g) * 7919) & 0xffff_ffff);
        out.extend_from_slice(b",\"rssi\":");
        push_i64(out, rssi);
        out.extend_from_slice(b",\"channel_rssi\":");
        push_i64(out, rssi);
        out.extend_from_slice(b",\"snr\":");
        push_dec1(out, snr);
        if radio.channel != 0 {
            out.extend_from_slice(b",\"channel_index\":");
            push_u64(out, u64::from(radio.channel));
        }
        out.extend_from_slice(b",\"received_at\":");
        push_ts(out, tf, times.ns_ns, true);
        out.push(b'}');
    }
    out.extend_from_slice(
        b"],\"settings\":{\"data_rate\":{\"lora\":{\"bandwidth\":125000,\"spreading_factor\":",
    );
    push_u64(out, u64::from(radio.sf));
    out.extend_from_slice(b",\"coding_rate\":\"4/5\"}},\"frequency\":\"");
    push_u64(out, CHANNELS_HZ[usize::from(radio.channel) % 8]);
    out.extend_from_slice(b"\",\"timestamp\":");
    push_u64(out, tmst);
    out.extend_from_slice(b",\"time\":");
    push_ts(out, tf, times.gw_ns, true);
    out.extend_from_slice(b"},\"received_at\":");
    push_ts(out, tf, times.ns_ns, true);
    let air = airtime_us(payload.len(), radio.sf);
    out.extend_from_slice(b",\"consumed_airtime\":\"");
    push_u64(out, air / 1_000_000);
    out.push(b'.');
    push_hex_dec6(out, air % 1_000_000);
    out.extend_from_slice(b"s\",\"network_ids\":{\"net_id\":\"000013\",\"tenant_id\":\"ttn\",\"cluster_id\":\"eu1\"}}}");
}

fn push_hex_dec6(out: &mut Vec<u8>, v: u64) {
    let mut buf = [b'0'; 6];
    let mut x = v;
    for b in buf.iter_mut().rev() {
        *b = b'0' + (x % 10) as u8;
        x /= 10;
    }
    out.extend_from_slice(&buf);
}

/// RSSI (integer dBm) and SNR of the g-th gateway hearing a frame.
#[inline]
pub fn gw_signal(radio: &Radio, g: u8, frame_hash: u64) -> (i64, f64) {
    if g == 0 {
        return (radio.rssi.round() as i64, radio.snr);
    }
    let h = super::rng::hash2(frame_hash, u64::from(g));
    let drop = 3.0 + (h % 1200) as f64 / 100.0; // 3..15 dB weaker
    let rssi = (radio.rssi - drop).max(-130.0);
    let snr = (radio.snr - drop * 0.8).max(-20.0);
    (rssi.round() as i64, (snr * 10.0).round() / 10.0)
}

/// Write a ChirpStack v4 `up` event.
#[allow(clippy::too_many_arguments)]
pub fn write_chirpstack(
    out: &mut Vec<u8>,
    tf: &mut TimeFormatter,
    ctx: &EnvContext,
    dev: &DeviceIds<'_>,
    fport: u8,
    fcnt: u32,
    payload: &[u8],
    times: Times,
    radio: &Radio,
    frame_hash: u64,
) {
    out.extend_from_slice(b"{\"deduplicationId\":\"");
    push_uuid(out, frame_hash, super::rng::mix64(frame_hash ^ 0x5bd1));
    out.extend_from_slice(b"\",\"time\":");
    push_ts(out, tf, times.as_ns, false);
    out.extend_from_slice(b",\"deviceInfo\":{");
    out.extend_from_slice(&ctx.cs_head);
    if let Some(p) = ctx.cs_profiles.get(dev.model) {
        out.extend_from_slice(p);
    }
    out.extend_from_slice(b"\",\"deviceName\":\"");
    out.extend_from_slice(dev.name.as_bytes());
    out.extend_from_slice(b"\",\"devEui\":\"");
    push_hex(out, dev.dev_eui, 16, false);
    out.extend_from_slice(b"\",\"deviceClassEnabled\":\"CLASS_A\",\"tags\":{\"kind\":\"");
    out.extend_from_slice(dev.kind.as_bytes());
    out.extend_from_slice(b"\"}},\"devAddr\":\"");
    push_hex(out, u64::from(dev.dev_addr), 8, false);
    out.extend_from_slice(b"\",\"adr\":true,\"dr\":");
    push_u64(out, u64::from(12u8.saturating_sub(radio.sf)));
    out.extend_from_slice(b",\"fCnt\":");
    push_u64(out, u64::from(fcnt));
    out.extend_from_slice(b",\"fPort\":");
    push_u64(out, u64::from(fport));
    out.extend_from_slice(b",\"confirmed\":false,\"data\":\"");
    push_base64(out, payload);
    out.extend_from_slice(b"\",\"rxInfo\":[");
    for g in 0..radio.n_gw {
        if g > 0 {
            out.push(b',');
        }
        let gw = (radio.gw0 + u16::from(g)) % radio.n_gateways_total.max(1);
        let (rssi, snr) = gw_signal(radio, g, frame_hash);
        out.extend_from_slice(b"{\"gatewayId\":\"");
        out.extend_from_slice(ctx.gw_lower.get(usize::from(gw)).map_or(&[b'0'; 16], |h| h));
        out.extend_from_slice(b"\",\"uplinkId\":");
        push_u64(
            out,
            (super::rng::hash2(frame_hash, 77 + u64::from(g)) & 0xffff_ffff) | 1,
        );
        out.extend_from_slice(b",\"gwTime\":");
        push_ts(out, tf, times.gw_ns, false);
        out.extend_from_slice(b",\"nsTime\":");
        push_ts(out, tf, times.ns_ns, false);
        out.extend_from_slice(b",\"rssi\":");
        push_i64(out, rssi);
        out.extend_from_slice(b",\"snr\":");
        push_dec1(out, snr);
        if radio.channel != 0 {
            out.extend_from_slice(b",\"channel\":");
            push_u64(out, u64::from(radio.channel));
        }
        out.extend_from_slice(b",\"context\":\"");
        let ctx_bytes = ((times.gw_ns / 1000) as u32).to_be_bytes();
        push_base64(out, &ctx_bytes);
        out.extend_from_slice(
            b"\",\"metadata\":{\"region_config_id\":\"eu868\",\"region_common_name\":\"EU868\"},\"crcStatus\":\"CRC_OK\"}",
        );
    }
    out.extend_from_slice(b"],\"txInfo\":{\"frequency\":");
    push_u64(out, CHANNELS_HZ[usize::from(radio.channel) % 8]);
    out.extend_from_slice(b",\"modulation\":{\"lora\":{\"bandwidth\":125000,\"spreadingFactor\":");
    push_u64(out, u64::from(radio.sf));
    out.extend_from_slice(b",\"codeRate\":\"CR_4_5\"}}},\"regionConfigId\":\"eu868\"}");
}

fn model_hash(model: &str) -> u64 {
    model.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_reference() {
        let mut out = Vec::new();
        for (input, want) in [
            (&b""[..], ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg=="),
            (b"\xaa", "qg=="),
        ] {
            out.clear();
            push_base64(&mut out, input);
            assert_eq!(std::str::from_utf8(&out).unwrap(), want);
        }
    }

    #[test]
    fn numbers_and_ids() {
        let mut out = Vec::new();
        push_i64(&mut out, -1234);
        out.push(b' ');
        push_dec1(&mut out, -7.46);
        out.push(b' ');
        push_dec1(&mut out, 12.0);
        out.push(b' ');
        push_hex(&mut out, 0x24e1_2400_00ab_cdef, 16, true);
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            "-1234 -7.5 12.0 24E1240000ABCDEF"
        );
        out.clear();
        push_uuid(&mut out, 0, 0);
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            "00000000-0000-4000-8000-000000000000"
        );
        out.clear();
        push_ulid(&mut out, 1_469_918_176_385, 0, 0);
        assert_eq!(&out[..10], b"01ARYZ6S41");
        assert_eq!(out.len(), 26);
        // SF7, 10-byte application payload (23-byte PHY payload): 60 symbols of 1.024 ms.
        assert_eq!(airtime_us(10, 7), 61_696);
        assert!(airtime_us(10, 12) > 1_000_000);
        assert!(json_safe("tidstream-sim") && !json_safe("a\"b"));
    }
}
