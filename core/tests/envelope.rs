//! Envelope parsing (`_core::envelope`): the documented TTN v3 and ChirpStack v4
//! examples, error rows, a property test and an ignored throughput benchmark.
//!
//! Run the benchmark with
//! `cargo test --release -p tidstream-core --test envelope -- --ignored --nocapture`.

use _core::envelope::{decode_uplinks, parse_one, Format, UplinkColumns};
use _core::error::ErrorKind;
use proptest::prelude::*;

/// TTN v3 "Uplink message example", copied from `shared/sensors/ENVELOPES.md`
/// (source: `TheThingsIndustries/lorawan-stack-docs:doc/content/integrations/data-formats/_index.md`,
/// with the one missing comma after `attributes` added as documented there).
const TTN_EXAMPLE: &str = r##"{
  "end_device_ids": {
    "device_id": "dev1",
    "application_ids": {
      "application_id": "app1"
    },
    "dev_eui": "0004A30B001C0530",
    "join_eui": "800000000000000C",
    "dev_addr": "00BCB929"
  },
  "correlation_ids": [
    "as:up:01E0WZGT6Y7657CPFPE5WEYDSQ",
    "gs:conn:01E0WDEC6T5T4XXBAX7S1VMFKE",
    "gs:uplink:01E0WZGSZWT07NE5TS2APTV1Z9",
    "ns:uplink:01E0WZGSZXZXZS8RFAWZX0F2FY",
    "rpc:/ttn.lorawan.v3.GsNs/HandleUplink:01E0WZGSZXGE1KS577PFBWRJEE"
  ],
  "received_at": "2020-02-12T15:15:46.014773143Z",
  "uplink_message": {
    "session_key_id": "AXA50tHUGUucuzS/bCGMNw==",
    "f_cnt": 1,
    "frm_payload": "gkHe",
    "decoded_payload": {
      "temperature": 1.0,
      "luminosity": 0.64
    },
    "rx_metadata": [
      {
        "gateway_ids": {
          "gateway_id": "gtw1",
          "eui": "9C5C8E00001A05C4"
        },
        "time": "2020-02-12T15:15:45.787Z",
        "timestamp": 2463457000,
        "rssi": -35,
        "channel_rssi": -35,
        "snr": 5,
        "uplink_token": "ChIKEAoEZ3R3MRIInFyOAAAaBcQQ6L3Vlgk=",
        "channel_index": 2
      }
    ],
    "settings": {
      "data_rate": {
        "lora": {
          "bandwidth": 125000,
          "spreading_factor": 7
        }
      },
      "coding_rate": "4/6",
      "frequency": "868300000",
      "timestamp": 2463457000,
      "time": "2020-02-12T15:15:45.787Z"
    },
    "consumed_airtime": "0.056576s",
    "locations": {
      "user": {
        "latitude": 37.97155556731436,
        "longitude": 23.72678801175413,
        "altitude": 10,
        "source": "SOURCE_REGISTRY"
      }
    },
    "version_ids": {
      "brand_id": "the-things-products",
      "model_id": "the-things-uno",
      "hardware_version": "1.0",
      "firmware_version": "quickstart",
      "band_id": "US_902_928"
    },
    "network_ids": {
      "net_id": "000013",
      "tenant_id": "tenant1",
      "cluster_id": "nam1"
    },
    "attributes": {
      "key1": "value1",
      "key2": "value2"
    },
    "received_at" : "2020-02-12T15:15:45.789585559Z"
  }
}
"##;

/// ChirpStack v4 "`up` - Uplink event" example, copied from `shared/sensors/ENVELOPES.md`
/// (source: `chirpstack/chirpstack-docs:src/chirpstack/integrations/events.md`).
const CHIRPSTACK_EXAMPLE: &str = r##"{
  "deduplicationId": "3ac7e3c4-4401-4b8d-9386-a5c902f9202d",
  "time": "2022-07-18T09:34:15.775023242+00:00",
  "deviceInfo": {
    "tenantId": "52f14cd4-c6f1-4fbd-8f87-4025e1d49242",
    "tenantName": "ChirpStack",
    "applicationId": "17c82e96-be03-4f38-aef3-f83d48582d97",
    "applicationName": "Test application",
    "deviceProfileId": "14855bf7-d10d-4aee-b618-ebfcb64dc7ad",
    "deviceProfileName": "Test device-profile",
    "deviceName": "Test device",
    "devEui": "0101010101010101",
    "tags": {
      "key": "value"
    }
  },
  "devAddr": "00189440",
  "dr": 1,
  "fPort": 1,
  "data": "qg==",
  "rxInfo": [
    {
      "gatewayId": "0016c001f153a14c",
      "uplinkId": 4217106255,
      "rssi": -36,
      "snr": 10.5,
      "context": "E3OWOQ==",
      "metadata": {
        "region_name": "eu868",
        "region_common_name": "EU868"
      }
    }
  ],
  "txInfo": {
    "frequency": 867100000,
    "modulation": {
      "lora": {
        "bandwidth": 125000,
        "spreadingFactor": 11,
        "codeRate": "CR_4_5"
      }
    }
  }
}
"##;

/// Seconds since the Unix epoch of a UTC date and time, by counting whole days
/// (independent of the parser's closed-form calendar arithmetic).
fn unix_seconds(year: i64, month: i64, day: i64, h: i64, m: i64, s: i64) -> i64 {
    let leap = |y: i64| y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let mut days = 0;
    for y in 1970..year {
        days += if leap(y) { 366 } else { 365 };
    }
    let month_days = [
        31,
        if leap(year) { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    days += month_days[..(month - 1) as usize].iter().sum::<i64>();
    days += day - 1;
    days * 86_400 + h * 3600 + m * 60 + s
}

fn batch(msgs: &[&str]) -> Vec<Vec<u8>> {
    msgs.iter().map(|m| m.as_bytes().to_vec()).collect()
}

/// Structural invariants every batch must satisfy.
fn check_shape(cols: &UplinkColumns, n: usize) {
    assert_eq!(cols.len, n);
    assert_eq!(cols.ok.len, n);
    for c in [
        &cols.dev_eui,
        &cols.device_id,
        &cols.error,
        &cols.error_kind,
    ] {
        assert_eq!(c.len(), n);
        assert_eq!(c.validity.len, n);
        assert_eq!(
            c.offsets.last().copied().unwrap_or(-1) as usize,
            c.data.len()
        );
        assert!(c.offsets.windows(2).all(|w| w[0] <= w[1]));
    }
    assert_eq!(cols.received_at_ns.values.len(), n);
    assert_eq!(cols.fport.values.len(), n);
    assert_eq!(cols.fcnt.values.len(), n);
    assert_eq!(cols.rssi.values.len(), n);
    assert_eq!(cols.snr.values.len(), n);
    assert_eq!(cols.gateway_count.values.len(), n);
    assert_eq!(cols.error_offset.values.len(), n);
    assert_eq!(cols.payload_offsets.len(), n + 1);
    assert_eq!(cols.payload_validity.len, n);
    assert_eq!(
        *cols.payload_offsets.last().unwrap() as usize,
        cols.payload_data.len()
    );
    assert!(cols.payload_offsets.windows(2).all(|w| w[0] <= w[1]));
    let ok_rows = (0..n).filter(|&i| cols.ok.get(i)).count();
    assert_eq!(ok_rows + cols.error_count, n);
    assert_eq!(cols.dev_eui.null_count, cols.error_count);
    assert_eq!(cols.error.null_count, ok_rows);
    for i in 0..n {
        let ok = cols.ok.get(i);
        assert_eq!(cols.dev_eui.get(i).is_some(), ok);
        assert_eq!(cols.payload(i).is_some(), ok);
        assert_eq!(cols.fport.get(i).is_some(), ok);
        assert_eq!(cols.gateway_count.get(i).is_some(), ok);
        assert_eq!(cols.error_kind.get(i).is_none(), ok);
        assert_eq!(cols.error_offset.get(i).is_none(), ok);
        if let Some(eui) = cols.dev_eui.get(i) {
            assert_eq!(eui.len(), 16);
            assert!(eui.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
        }
        if let Some(k) = cols.error_kind.get(i) {
            assert!(_core::error::ErrorKind::ALL_NAMES.contains(&k), "{k}");
        }
    }
}

#[test]
fn ttn_documented_example() {
    let up = parse_one(Format::TtnV3, TTN_EXAMPLE.as_bytes()).unwrap();
    assert_eq!(up.dev_eui, "0004a30b001c0530");
    assert_eq!(up.device_id.as_deref(), Some("dev1"));
    assert_eq!(up.fport, 0, "f_port is absent in the example");
    assert_eq!(up.fcnt, 1);
    assert_eq!(up.payload, [0x82, 0x41, 0xDE]);
    assert_eq!(up.rssi, Some(-35.0));
    assert_eq!(up.snr, Some(5.0));
    assert_eq!(up.gateway_count, 1);
    // Top-level received_at 2020-02-12T15:15:46.014773143Z
    // (`date -u -d 2020-02-12T15:15:46Z +%s` = 1581520546).
    let secs = unix_seconds(2020, 2, 12, 15, 15, 46);
    assert_eq!(secs, 1_581_520_546);
    assert_eq!(up.received_at_ns, Some(secs * 1_000_000_000 + 14_773_143));
}

#[test]
fn chirpstack_documented_example() {
    let up = parse_one(Format::ChirpstackV4, CHIRPSTACK_EXAMPLE.as_bytes()).unwrap();
    assert_eq!(up.dev_eui, "0101010101010101");
    assert_eq!(up.device_id.as_deref(), Some("Test device"));
    assert_eq!(up.fport, 1);
    assert_eq!(up.fcnt, 0, "the pre-4.1 docs example has no fCnt");
    assert_eq!(up.payload, [0xAA]);
    assert_eq!(up.rssi, Some(-36.0));
    assert_eq!(up.snr, Some(10.5));
    assert_eq!(up.gateway_count, 1);
    // time 2022-07-18T09:34:15.775023242+00:00
    // (`date -u -d 2022-07-18T09:34:15Z +%s` = 1658136855).
    let secs = unix_seconds(2022, 7, 18, 9, 34, 15);
    assert_eq!(secs, 1_658_136_855);
    assert_eq!(up.received_at_ns, Some(secs * 1_000_000_000 + 775_023_242));
}

#[test]
fn examples_in_a_batch() {
    let msgs = batch(&[TTN_EXAMPLE, TTN_EXAMPLE]);
    let cols = decode_uplinks(Format::TtnV3, &msgs);
    check_shape(&cols, 2);
    assert_eq!(cols.error_count, 0);
    for i in 0..2 {
        assert_eq!(cols.dev_eui.get(i), Some("0004a30b001c0530"));
        assert_eq!(cols.device_id.get(i), Some("dev1"));
        assert_eq!(cols.fport.get(i), Some(0));
        assert_eq!(cols.fcnt.get(i), Some(1));
        assert_eq!(cols.payload(i), Some(&[0x82, 0x41, 0xDE][..]));
        assert_eq!(cols.rssi.get(i), Some(-35.0));
        assert_eq!(cols.snr.get(i), Some(5.0));
        assert_eq!(cols.gateway_count.get(i), Some(1));
        assert_eq!(cols.received_at_ns.get(i), Some(1_581_520_546_014_773_143));
    }
    let msgs = batch(&[CHIRPSTACK_EXAMPLE]);
    let cols = decode_uplinks(Format::ChirpstackV4, &msgs);
    check_shape(&cols, 1);
    assert_eq!(cols.payload(0), Some(&[0xAA][..]));
    assert_eq!(cols.received_at_ns.get(0), Some(1_658_136_855_775_023_242));
    assert_eq!(cols.device_id.get(0), Some("Test device"));
}

#[test]
fn formats_are_not_interchangeable() {
    // A ChirpStack message read as TTN has none of TTN's keys, and vice versa.
    let e = parse_one(Format::TtnV3, CHIRPSTACK_EXAMPLE.as_bytes()).unwrap_err();
    assert_eq!(
        e.kind,
        ErrorKind::MissingField {
            field: "end_device_ids.dev_eui"
        }
    );
    let e = parse_one(Format::ChirpstackV4, TTN_EXAMPLE.as_bytes()).unwrap_err();
    assert_eq!(
        e.kind,
        ErrorKind::MissingField {
            field: "deviceInfo.devEui"
        }
    );
}

/// The TTN example with `from` replaced by `to` (exactly once).
fn ttn_with(from: &str, to: &str) -> String {
    assert_eq!(TTN_EXAMPLE.matches(from).count(), 1, "{from}");
    TTN_EXAMPLE.replacen(from, to, 1)
}

fn cs_with(from: &str, to: &str) -> String {
    assert_eq!(CHIRPSTACK_EXAMPLE.matches(from).count(), 1, "{from}");
    CHIRPSTACK_EXAMPLE.replacen(from, to, 1)
}

#[test]
fn error_rows() {
    let malformed = &TTN_EXAMPLE[..TTN_EXAMPLE.len() / 2];
    let no_dev_eui = ttn_with(r#""dev_eui": "0004A30B001C0530","#, "");
    let bad_b64 = ttn_with(r#""frm_payload": "gkHe""#, r#""frm_payload": "gk*e""#);
    let bad_eui = ttn_with(
        r#""dev_eui": "0004A30B001C0530""#,
        r#""dev_eui": "0004A30B001C05ZZ""#,
    );
    let short_eui = ttn_with(
        r#""dev_eui": "0004A30B001C0530""#,
        r#""dev_eui": "0004A30B""#,
    );
    let fport_str = ttn_with(r#""f_cnt": 1,"#, r#""f_cnt": 1, "f_port": "2","#);
    let fport_big = ttn_with(r#""f_cnt": 1,"#, r#""f_cnt": 1, "f_port": 300,"#);
    let eui_num = ttn_with(r#""dev_eui": "0004A30B001C0530""#, r#""dev_eui": 4"#);
    let rssi_str = ttn_with(r#""rssi": -35,"#, r#""rssi": "-35","#);
    let bad_time = ttn_with(
        r#""received_at": "2020-02-12T15:15:46.014773143Z""#,
        r#""received_at": "2020-02-12 15:15""#,
    );
    let no_payload = ttn_with(r#""frm_payload": "gkHe","#, "");
    let join_accept = r#"{
  "end_device_ids": {"device_id": "dev1", "dev_eui": "0004A30B001C0530"},
  "received_at": "2020-02-12T15:15:46.014773143Z",
  "join_accept": {"session_key_id": "AXBSH1Pk6Z0G166BWByPtA==", "received_at": "2020-02-12T15:15:45.989Z"}
}"#;
    let trailing = format!("{TTN_EXAMPLE}}}");
    let cases: Vec<(Option<String>, &str, usize)> = vec![
        (Some(malformed.to_string()), "invalid_json", malformed.len()),
        (Some(no_dev_eui.clone()), "missing_field", 0),
        (
            Some(bad_b64.clone()),
            "invalid_base64",
            bad_b64.find("\"gk*e\"").unwrap(),
        ),
        (
            Some(bad_eui.clone()),
            "invalid_dev_eui",
            bad_eui.find("\"0004A30B001C05ZZ\"").unwrap(),
        ),
        (
            Some(short_eui.clone()),
            "invalid_dev_eui",
            short_eui.find("\"0004A30B\"").unwrap(),
        ),
        (
            Some(fport_str.clone()),
            "wrong_type",
            fport_str.find("\"2\"").unwrap(),
        ),
        (
            Some(fport_big.clone()),
            "wrong_type",
            fport_big.find("300").unwrap(),
        ),
        (
            Some(eui_num.clone()),
            "wrong_type",
            eui_num.find(": 4").unwrap() + 2,
        ),
        (
            Some(rssi_str.clone()),
            "wrong_type",
            rssi_str.find("\"-35\"").unwrap(),
        ),
        (
            Some(bad_time.clone()),
            "invalid_timestamp",
            bad_time.find("\"2020-02-12 15:15\"").unwrap(),
        ),
        (Some(no_payload.clone()), "missing_field", 0),
        (
            Some(join_accept.to_string()),
            "not_uplink",
            join_accept.find("{\"session_key_id").unwrap(),
        ),
        (None, "missing_payload", 0),
        (Some(trailing.clone()), "invalid_json", TTN_EXAMPLE.len()),
        (Some("[]".into()), "wrong_type", 0),
        (Some("".into()), "invalid_json", 0),
        (Some("null".into()), "wrong_type", 0),
        (Some("\u{feff}{}".into()), "invalid_json", 0),
    ];
    // One batch: a valid row first and last, so error rows must not disturb neighbours.
    struct Msgs(Vec<Option<Vec<u8>>>);
    impl _core::codec::PayloadSource for Msgs {
        fn len(&self) -> usize {
            self.0.len()
        }
        fn get(&self, i: usize) -> Option<&[u8]> {
            self.0.get(i)?.as_deref()
        }
    }
    let mut msgs = vec![Some(TTN_EXAMPLE.as_bytes().to_vec())];
    msgs.extend(
        cases
            .iter()
            .map(|(m, _, _)| m.as_ref().map(|s| s.as_bytes().to_vec())),
    );
    msgs.push(Some(TTN_EXAMPLE.as_bytes().to_vec()));
    let cols = decode_uplinks(Format::TtnV3, &Msgs(msgs));
    check_shape(&cols, cases.len() + 2);
    assert_eq!(cols.error_count, cases.len());
    assert_eq!(cols.payload(0), Some(&[0x82, 0x41, 0xDE][..]));
    assert_eq!(cols.payload(cases.len() + 1), Some(&[0x82, 0x41, 0xDE][..]));
    assert_eq!(cols.payload_data.len(), 6);
    assert_eq!(cols.device_id.data, b"dev1dev1");
    for (i, (_, kind, offset)) in cases.iter().enumerate() {
        let row = i + 1;
        assert!(!cols.ok.get(row));
        assert_eq!(cols.error_kind.get(row), Some(*kind), "case {i}");
        assert_eq!(
            cols.error_offset.get(row),
            Some(*offset as i32),
            "case {i} ({kind})"
        );
        assert!(!cols.error.get(row).unwrap_or("").is_empty());
    }
    // Field names in the typed errors.
    let field = |m: &str| parse_one(Format::TtnV3, m.as_bytes()).unwrap_err().kind;
    assert_eq!(
        field(&no_dev_eui),
        ErrorKind::MissingField {
            field: "end_device_ids.dev_eui"
        }
    );
    assert_eq!(
        field(&no_payload),
        ErrorKind::MissingField {
            field: "uplink_message.frm_payload"
        }
    );
    assert_eq!(
        field(&fport_str),
        ErrorKind::WrongType {
            field: "uplink_message.f_port"
        }
    );
    assert_eq!(
        field(&eui_num),
        ErrorKind::WrongType {
            field: "end_device_ids.dev_eui"
        }
    );
    assert_eq!(
        field(&rssi_str),
        ErrorKind::WrongType {
            field: "uplink_message.rx_metadata[].rssi"
        }
    );
    assert_eq!(
        field(&bad_time),
        ErrorKind::InvalidTimestamp {
            field: "received_at"
        }
    );
    assert_eq!(field("[]"), ErrorKind::WrongType { field: "(root)" });
    match field(malformed) {
        ErrorKind::InvalidJson { detail } => assert!(!detail.is_empty()),
        k => panic!("{k:?}"),
    }
}

#[test]
fn chirpstack_error_rows() {
    let no_data = cs_with(r#""data": "qg==","#, "");
    let bad_data = cs_with(r#""data": "qg==""#, r#""data": "q""#);
    let fport_neg = cs_with(r#""fPort": 1,"#, r#""fPort": -1,"#);
    let snr_str = cs_with(r#""snr": 10.5,"#, r#""snr": "10.5","#);
    let no_eui = cs_with(r#""devEui": "0101010101010101","#, "");
    let bad_time = cs_with("+00:00", "+25:00");
    let cases: [(&str, &str, usize); 6] = [
        (&no_data, "missing_field", 0),
        (&bad_data, "invalid_base64", bad_data.find("\"q\"").unwrap()),
        (
            &fport_neg,
            "wrong_type",
            fport_neg.find("\"fPort\": -1").unwrap() + 9,
        ),
        (&snr_str, "wrong_type", snr_str.find("\"10.5\"").unwrap()),
        (&no_eui, "missing_field", 0),
        (
            &bad_time,
            "invalid_timestamp",
            bad_time.find("\"2022-07-18").unwrap(),
        ),
    ];
    let msgs: Vec<Vec<u8>> = cases
        .iter()
        .map(|(m, _, _)| m.as_bytes().to_vec())
        .collect();
    let cols = decode_uplinks(Format::ChirpstackV4, &msgs);
    check_shape(&cols, cases.len());
    for (i, (_, kind, offset)) in cases.iter().enumerate() {
        assert_eq!(cols.error_kind.get(i), Some(*kind), "case {i}");
        assert_eq!(cols.error_offset.get(i), Some(*offset as i32), "case {i}");
    }
    let kind = |m: &str| {
        parse_one(Format::ChirpstackV4, m.as_bytes())
            .unwrap_err()
            .kind
    };
    assert_eq!(kind(&no_data), ErrorKind::MissingField { field: "data" });
    assert_eq!(
        kind(&no_eui),
        ErrorKind::MissingField {
            field: "deviceInfo.devEui"
        }
    );
    assert_eq!(
        kind(&snr_str),
        ErrorKind::WrongType {
            field: "rxInfo[].snr"
        }
    );
    assert_eq!(kind(&fport_neg), ErrorKind::WrongType { field: "fPort" });
}

#[test]
fn payload_encodings() {
    for (b64, want) in [
        ("", &[][..]),
        ("qg==", &[0xAA][..]),
        ("qg", &[0xAA][..]),
        ("+/8=", &[0xFB, 0xFF][..]),
        ("-_8", &[0xFB, 0xFF][..]),
        ("+\\/8=", &[0xFB, 0xFF][..]),
    ] {
        let m = cs_with(r#""data": "qg==""#, &format!(r#""data": "{b64}""#));
        let up = parse_one(Format::ChirpstackV4, m.as_bytes()).unwrap();
        assert_eq!(up.payload, want, "{b64}");
    }
}

#[test]
fn empty_batch() {
    let msgs: Vec<Vec<u8>> = Vec::new();
    for f in [Format::TtnV3, Format::ChirpstackV4] {
        let cols = decode_uplinks(f, &msgs);
        check_shape(&cols, 0);
        assert!(cols.is_empty());
        assert_eq!(cols.payload_offsets, [0]);
    }
}

/// Byte-level mutations of a message.
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

/// Bytes that matter to JSON and to our fields.
fn interesting_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        any::<u8>(),
        prop::sample::select(b"{}[]\":,\\ 0123456789-+.eEtfnul=/_AZaz".to_vec()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(msgs in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..8)) {
        for f in [Format::TtnV3, Format::ChirpstackV4] {
            let cols = decode_uplinks(f, &msgs);
            check_shape(&cols, msgs.len());
            for m in &msgs {
                let _ = parse_one(f, m);
            }
        }
    }

    #[test]
    fn mutated_examples_never_panic(
        edits in prop::collection::vec((any::<usize>(), 0u8..3, interesting_byte()), 1..6),
        truncate in prop::option::weighted(0.1, any::<usize>()),
    ) {
        let mut msgs = Vec::new();
        for base in [TTN_EXAMPLE, CHIRPSTACK_EXAMPLE] {
            let mut m = mutate(base.as_bytes(), &edits);
            if let Some(t) = truncate {
                m.truncate(t % (m.len() + 1));
            }
            msgs.push(m);
        }
        msgs.push(TTN_EXAMPLE.as_bytes().to_vec());
        for f in [Format::TtnV3, Format::ChirpstackV4] {
            let cols = decode_uplinks(f, &msgs);
            check_shape(&cols, msgs.len());
            // Batch rows agree with the single-message parser.
            for (i, m) in msgs.iter().enumerate() {
                match parse_one(f, m) {
                    Ok(up) => {
                        prop_assert!(cols.ok.get(i));
                        prop_assert_eq!(cols.payload(i), Some(up.payload.as_slice()));
                        prop_assert_eq!(cols.dev_eui.get(i), Some(up.dev_eui.as_str()));
                        prop_assert_eq!(cols.device_id.get(i), up.device_id.as_deref());
                        prop_assert_eq!(cols.received_at_ns.get(i), up.received_at_ns);
                        prop_assert_eq!(cols.fcnt.get(i), Some(i64::from(up.fcnt)));
                    }
                    Err(e) => {
                        prop_assert!(!cols.ok.get(i));
                        prop_assert_eq!(cols.error_kind.get(i), Some(e.kind.name()));
                        prop_assert_eq!(cols.error_offset.get(i), Some(e.offset as i32));
                        prop_assert!(e.offset <= m.len());
                    }
                }
            }
        }
    }

    #[test]
    fn field_values_round_trip(
        eui in "[0-9a-fA-F]{16}",
        fport in 1u32..=255,
        fcnt in any::<u32>(),
        payload in prop::collection::vec(any::<u8>(), 0..64),
        rssi in -140i32..0,
        snr_q in -80i32..60,
    ) {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(&payload);
        let snr = f64::from(snr_q) / 4.0;
        let msg = format!(
            r#"{{"time":"2024-01-01T00:00:00Z","fCnt":{fcnt},"data":"{b64}","fPort":{fport},
               "rxInfo":[{{"rssi":{rssi},"snr":{snr}}},{{"rssi":-200,"snr":-30}}],
               "deviceInfo":{{"devEui":"{eui}","deviceName":"n"}}}}"#
        );
        let up = parse_one(Format::ChirpstackV4, msg.as_bytes()).unwrap();
        prop_assert_eq!(up.dev_eui, eui.to_ascii_lowercase());
        prop_assert_eq!(u32::from(up.fport), fport);
        prop_assert_eq!(up.fcnt, fcnt);
        prop_assert_eq!(up.payload, payload);
        prop_assert_eq!(up.rssi, Some(f64::from(rssi)));
        prop_assert_eq!(up.snr, Some(snr));
        prop_assert_eq!(up.gateway_count, 2);
        prop_assert_eq!(up.received_at_ns, Some(1_704_067_200_000_000_000));
    }
}

/// Arbitrary JSON values (as serde_json text).
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "[ -~é\\n\"\u{1F600}]{0,12}".prop_map(Value::String),
        prop::sample::select(vec![
            "dev_eui",
            "frm_payload",
            "uplink_message",
            "data",
            "rxInfo"
        ])
        .prop_map(|s| Value::String(s.to_string())),
    ];
    leaf.prop_recursive(6, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        "[a-z_]{0,8}",
                        prop::sample::select(vec![
                            "end_device_ids",
                            "dev_eui",
                            "uplink_message",
                            "frm_payload",
                            "f_port",
                            "rx_metadata",
                            "rssi",
                            "snr",
                            "received_at",
                            "join_accept",
                            "deviceInfo",
                            "devEui",
                            "data",
                            "fPort",
                            "rxInfo",
                            "time",
                            "devAddr",
                        ])
                        .prop_map(str::to_string),
                    ],
                    inner
                ),
                0..6
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// JSON validity as serde_json sees it, for inputs where it and RFC 8259 agree
/// (valid UTF-8; serde_json accepts lone UTF-16 surrogate escapes, we do not).
fn serde_verdict(m: &[u8]) -> Option<bool> {
    let text = std::str::from_utf8(m).ok()?;
    let lower = text.to_ascii_lowercase();
    if [
        "\\ud8", "\\ud9", "\\uda", "\\udb", "\\udc", "\\udd", "\\ude", "\\udf",
    ]
    .iter()
    .any(|p| lower.contains(p))
    {
        return None;
    }
    Some(serde_json::from_slice::<serde::de::IgnoredAny>(m).is_ok())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    /// Our `invalid_json` verdict agrees with serde_json on valid and mutated JSON.
    #[test]
    fn json_validity_matches_serde_json(
        value in json_value(),
        pretty in any::<bool>(),
        edits in prop::collection::vec((any::<usize>(), 0u8..4, interesting_byte()), 0..4),
        base in 0u8..3,
    ) {
        let text = match base {
            0 if pretty => serde_json::to_string_pretty(&value).unwrap(),
            0 => serde_json::to_string(&value).unwrap(),
            1 => TTN_EXAMPLE.to_string(),
            _ => CHIRPSTACK_EXAMPLE.to_string(),
        };
        let m = mutate(text.as_bytes(), &edits);
        if let Some(valid) = serde_verdict(&m) {
            for f in [Format::TtnV3, Format::ChirpstackV4] {
                let r = parse_one(f, &m);
                let invalid = matches!(&r, Err(e) if e.kind.name() == "invalid_json");
                prop_assert_eq!(!invalid, valid, "{:?} -> {:?}", String::from_utf8_lossy(&m), r);
                if let Err(e) = r {
                    prop_assert!(e.offset <= m.len());
                }
            }
        }
    }
}

/// Throughput on 200k copies of the TTN example (pretty-printed as documented, 2 KB,
/// and minified, 1.5 KB), of a synthetic compact ~1.1 KB TTN uplink and of the
/// ChirpStack example. Release mode only; prints messages/s (best of 5).
#[test]
#[ignore = "benchmark, not a test: cargo test --release --test envelope bench_ttn_throughput -- --ignored --nocapture"]
fn bench_ttn_throughput() {
    use std::time::Instant;
    let compact: String = {
        // Minify: drop whitespace outside strings.
        let mut out = String::new();
        let mut in_str = false;
        let mut esc = false;
        for c in TTN_EXAMPLE.chars() {
            if in_str {
                out.push(c);
                if esc {
                    esc = false;
                } else if c == '\\' {
                    esc = true;
                } else if c == '"' {
                    in_str = false;
                }
            } else if c == '"' {
                in_str = true;
                out.push(c);
            } else if !c.is_whitespace() {
                out.push(c);
            }
        }
        out
    };
    // A synthetic compact TTN uplink of ~1.1 KB (one gateway), shaped like the
    // documented example as The Things Stack sends it (values made up).
    const TTN_TYPICAL: &str = r#"{"end_device_ids":{"device_id":"bin-0042","application_ids":{"application_id":"waste-bins"},"dev_eui":"24E124136D230042","join_eui":"24E124C0002A0001","dev_addr":"260B7F3A"},"correlation_ids":["gs:uplink:01HZ8Q6B3X2Y5W7V9T1R3P5N7M"],"received_at":"2024-06-03T08:15:42.123456789Z","uplink_message":{"session_key_id":"AY/2zX1eR8S0cYV3q8kX1A==","f_port":85,"f_cnt":1234,"frm_payload":"AXVcA4JECAQAAQ==","rx_metadata":[{"gateway_ids":{"gateway_id":"gw-depot-1","eui":"B827EBFFFE6A1C2D"},"time":"2024-06-03T08:15:41.876Z","timestamp":3512345678,"rssi":-97,"channel_rssi":-97,"snr":7.25,"uplink_token":"ChgKFgoKZ3ctZGVwb3QtMRIIuCfr//5qHC0Qzp2+iA0=","channel_index":4,"received_at":"2024-06-03T08:15:41.901Z"}],"settings":{"data_rate":{"lora":{"bandwidth":125000,"spreading_factor":9,"coding_rate":"4/5"}},"frequency":"867300000","timestamp":3512345678,"time":"2024-06-03T08:15:41.876Z"},"received_at":"2024-06-03T08:15:41.912345678Z","consumed_airtime":"0.205824s","network_ids":{"net_id":"000013","ns_id":"EC656E0000000181","tenant_id":"ttn","cluster_id":"eu1","cluster_address":"eu1.cloud.thethings.network"}}}"#;
    assert!(parse_one(Format::TtnV3, TTN_TYPICAL.as_bytes()).is_ok());
    for (name, fmt, msg) in [
        ("ttn example pretty", Format::TtnV3, TTN_EXAMPLE),
        ("ttn example compact", Format::TtnV3, compact.as_str()),
        ("ttn typical compact", Format::TtnV3, TTN_TYPICAL),
        (
            "chirpstack example",
            Format::ChirpstackV4,
            CHIRPSTACK_EXAMPLE,
        ),
    ] {
        const N: usize = 200_000;
        let mut data = Vec::with_capacity(N * msg.len());
        let mut offsets = Vec::with_capacity(N + 1);
        offsets.push(0i64);
        for _ in 0..N {
            data.extend_from_slice(msg.as_bytes());
            offsets.push(data.len() as i64);
        }
        let src = _core::codec::FlatPayloads {
            data: &data,
            offsets: &offsets,
            validity: None,
            validity_bit_offset: 0,
        };
        let mut best = f64::MAX;
        for _ in 0..5 {
            let t = Instant::now();
            let cols = decode_uplinks(fmt, &src);
            let dt = t.elapsed().as_secs_f64();
            assert_eq!(cols.error_count, 0);
            assert_eq!(cols.len, N);
            best = best.min(dt);
        }
        println!(
            "{name:>20}: {} B/msg, {:.2} M msg/s, {:.0} MB/s, {:.0} ns/msg",
            msg.len(),
            N as f64 / best / 1e6,
            (N * msg.len()) as f64 / best / 1e6,
            best / N as f64 * 1e9
        );
    }
}
