//! Uplink envelopes (TTN v3, ChirpStack v4) on arbitrary bytes: the JSON scanner,
//! field parsers, base64, timestamps. Byte 0 picks the format, the rest is the message.
//! Properties: nothing panics; one row per message, in the batch and alone.
#![no_main]

use _core::envelope::{decode_uplinks, parse_one, Format};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [f, msg @ ..] = data else { return };
    let format = if f & 1 == 0 {
        Format::TtnV3
    } else {
        Format::ChirpstackV4
    };
    let single = parse_one(format, msg);
    // The message twice in one batch: the second row must not be affected by the first.
    let batch = vec![msg.to_vec(), msg.to_vec()];
    let cols = decode_uplinks(format, &batch);
    assert_eq!(cols.len(), 2, "one row per message");
    assert_eq!(cols.ok.get(0), single.is_ok());
    assert_eq!(cols.ok.get(1), single.is_ok());
});
