//! Frame codecs: every model, both outputs (vendor-native `decode_vendor` and
//! normalized `decode`), and the batch path, on arbitrary bytes.
//!
//! Input layout: byte 0 picks the model (modulo the number of models), byte 1 the
//! fPort (255 = not given), the rest is the payload. Properties: nothing panics; the
//! batch gives exactly one row, ok exactly when the single decode is ok.
#![no_main]

use std::sync::OnceLock;

use _core::codec::{FportSource, Registry};
use _core::reading::Reading;
use libfuzzer_sys::fuzz_target;

fn models() -> &'static Vec<String> {
    static M: OnceLock<Vec<String>> = OnceLock::new();
    M.get_or_init(|| Registry::global().names())
}

fuzz_target!(|data: &[u8]| {
    let [m, fp, payload @ ..] = data else { return };
    let names = models();
    let name = &names[usize::from(*m) % names.len()];
    let Some(codec) = Registry::global().get(name) else {
        return;
    };
    let fport = (*fp != 255).then_some(*fp);

    let _ = codec.decode_vendor(payload, fport);
    let mut r = Reading::default();
    let single = codec.decode(payload, fport, &mut r);

    let batch = vec![payload.to_vec()];
    let cols = codec.decode_batch(&batch, &FportSource::All(fport));
    assert_eq!(cols.len, 1, "one row per payload");
    assert_eq!(
        cols.ok.get(0),
        single.is_ok(),
        "batch and single decode agree ({name})"
    );
});
