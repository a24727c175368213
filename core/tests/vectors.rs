//! Every usable vendor example in `../shared/sensors/vectors/` decodes to exactly the
//! vendor's expected output (vendor-native), without Python.

use std::path::PathBuf;

use _core::codec::Registry;
use _core::value::Value;
use serde_json::Value as J;

fn vectors_dir() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.join("../../shared/sensors/vectors")
}

/// Vector file -> tidstream model.
pub fn model_for_file(stem: &str) -> Option<&'static str> {
    Some(match stem {
        "milesight-em310-udl" => "milesight-em310-udl",
        "milesight-em400-udl" => "milesight-em400-udl",
        "milesight-em400-tld" => "milesight-em400-tld",
        "milesight-em400-mud" => "milesight-em400-mud",
        "milesight-em500-udl" => "milesight-em500-udl",
        "milesight-ws201" => "milesight-ws201",
        "dragino-ldds75" => "dragino-ldds75",
        "dragino-ldds45" => "dragino-ldds45",
        "dragino-ldds20" => "dragino-ldds20",
        "dragino-ldds04" => "dragino-ldds04",
        "dragino-llds12" => "dragino-llds12",
        "decentlab-dl-mbx" => "decentlab-dl-mbx",
        "decentlab-dl-lid" => "decentlab-dl-lid",
        "elsys-elt-ultrasonic" => "elsys-elt-ultrasonic",
        // Same vendor decoder (elsys.js), so the same codec must reproduce it.
        "elsys-ers-sound" => "elsys-elt-ultrasonic",
        "dingtek-df702" => "dingtek-df702",
        "dingtek-df703" => "dingtek-df703",
        "pepperl-fuchs-wilsen-sonic-level" => "pepperl-fuchs-wilsen-sonic-level",
        _ => return None,
    })
}

fn to_json(v: &Value) -> J {
    serde_json::from_str(&v.to_json()).unwrap()
}

/// JSON equality where 79 == 79.0 (JS has one number type).
fn same(a: &J, b: &J) -> bool {
    match (a, b) {
        (J::Number(x), J::Number(y)) => x.as_f64() == y.as_f64(),
        (J::Object(x), J::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        (J::Array(x), J::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(v, w)| same(v, w))
        }
        _ => a == b,
    }
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn vendor_vectors() {
    let dir = vectors_dir();
    if !dir.exists() {
        panic!(
            "vendor vectors not found at {}: the shared/ folder must sit beside the project",
            dir.display()
        );
    }
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let stem = path.file_stem().unwrap().to_string_lossy().to_string();
        let Some(model) = model_for_file(&stem) else {
            continue;
        };
        let codec = Registry::global().get(model).unwrap();
        let list: Vec<J> = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for v in list {
            if v.get("status").and_then(J::as_str) == Some("invalid_vendor_example") {
                continue;
            }
            // The stale TTN example keyed `tilt` (CODECS.md): the current decoder says `position`.
            if stem == "milesight-em310-udl" && v["expected"].get("tilt").is_some() {
                continue;
            }
            let payload = hex(v["hex"].as_str().unwrap());
            let fport = v["fport"].as_u64().map(|f| f as u8);
            let got = codec.decode_vendor(&payload, fport);
            if let Some(errs) = v.get("expected_errors") {
                let e = got.expect_err(&format!("{stem} {}: expected an error", v["hex"]));
                let want = errs[0].as_str().unwrap();
                assert!(
                    e.to_string().contains(want),
                    "{stem}: `{e}` should say `{want}`"
                );
            } else {
                let got = got.unwrap_or_else(|e| panic!("{stem} {}: {e}", v["hex"]));
                assert!(
                    same(&to_json(&got), &v["expected"]),
                    "{stem} {}:\n got {}\nwant {}",
                    v["hex"],
                    got.to_json(),
                    v["expected"]
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 30, "only {checked} vectors checked");
}
