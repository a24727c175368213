"""Every usable vendor example decodes to exactly the vendor's expected output.

Vendor-native: same keys, same value types, same values. Normalized: the physical
quantities derived from the vendor's own expected values (not from our decoder).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import tidstream
from conftest import load_vectors

VECTORS = load_vectors()
IDS = [f"{stem}-{i}-{v['hex'][:12]}-p{v['fport']}" for i, (stem, _, v) in enumerate(VECTORS)]


def same_json(got: Any, want: Any) -> bool:
    """Deep equality with JSON types: an int stays an int, a float a float, str a str."""
    if isinstance(want, bool) or isinstance(got, bool):
        return type(got) is type(want) and got == want
    if isinstance(want, int):
        return type(got) is int and got == want
    if isinstance(want, float):
        return isinstance(got, float) and got == want
    if isinstance(want, dict):
        return (
            isinstance(got, dict)
            and got.keys() == want.keys()
            and all(same_json(got[k], want[k]) for k in want)
        )
    if isinstance(want, list):
        return isinstance(got, list) and len(got) == len(want) and all(map(same_json, got, want))
    return type(got) is type(want) and got == want


def test_every_vector_file_is_used(vectors):
    # 37 non-error vectors + error vectors in the shared set; all usable ones are here.
    stems = {stem for stem, _, _ in vectors}
    assert len(stems) == 17
    assert len(vectors) >= 30


@pytest.mark.parametrize(("stem", "model", "vec"), VECTORS, ids=IDS)
def test_vendor_native(stem: str, model: str, vec: dict[str, Any]) -> None:
    payload = bytes.fromhex(vec["hex"])
    if "expected_errors" in vec:
        with pytest.raises(tidstream.DecodeError) as ei:
            tidstream.decode_vendor(model, payload, vec["fport"])
        assert vec["expected_errors"] == ["unknown FPort"]
        assert ei.value.kind == "unknown_fport"
        assert "unknown FPort" in str(ei.value)
        return
    got = tidstream.decode_vendor(model, payload, vec["fport"])
    want = vec["expected"]
    if stem == "milesight-em310-udl" and "tilt" in want:
        # Stale TTN example (CODECS.md): the current vendor decoder names the key
        # `position`; the value must still be the vendor's.
        want = {("position" if k == "tilt" else k): v for k, v in want.items()}
    assert same_json(got, want), f"got {got!r}\nwant {want!r}"


def _num(s: str) -> float:
    return float(s.split()[0])


def expected_normalized(model: str, e: dict[str, Any]) -> dict[str, Any]:
    """Normalized values computed from the vendor's expected output."""
    if model.startswith("milesight"):
        out: dict[str, Any] = {"battery_pct": e.get("battery"), "distance_mm": e.get("distance")}
        if "temperature" in e:
            out["temperature_c"] = e["temperature"]
        if "position" in e:
            out["tilt"] = e["position"] == "tilt"
        if "remaining" in e:
            out["fill_pct_reported"] = e["remaining"]
        return out
    if model in ("dragino-ldds20", "dragino-ldds45", "dragino-ldds75") and "Bat" in e:
        d = e["Distance"]
        return {
            "battery_v": e["Bat"],
            "distance_mm": None if d in ("No Sensor", "Invalid Reading") else _num(d),
            "temperature_c": float(e["TempC_DS18B20"]),
        }
    if model == "dragino-ldds04":
        return {"battery_v": e["BatV"], "distance_mm": e["distance1_cm"] * 10}
    if model.startswith("decentlab"):
        out = {"battery_v": e["battery_voltage"]["value"]} if "battery_voltage" in e else {}
        if "distance" in e:
            out["distance_mm"] = e["distance"]["value"]
        return out
    if model == "elsys-elt-ultrasonic":
        return {"temperature_c": e.get("temperature"), "distance_mm": e.get("distance")}
    if model.startswith("dingtek"):
        lvl = e["level"]
        out = {
            "distance_mm": _num(lvl) if isinstance(lvl, str) else lvl,
            "temperature_c": _num(str(e["temperature"])),
            "tilt": e.get("tilt", e.get("alarmFall")),
            "fire_alarm": e.get("fire", e.get("alarmFire")),
        }
        if "latitude" in e:
            # The vendor strings carry its float bug (~1e-5); ours are IEEE-754.
            out["latitude~"] = float(e["latitude"])
            out["longitude~"] = float(e["longitude"])
        return out
    if model == "pepperl-fuchs-wilsen-sonic-level":
        dist = e["proxx_mm"] if "proxx_mm" in e else e["proxx"] * 10
        out = {
            "distance_mm": dist,
            "fill_pct_reported": e["fillinglvl"],
            "battery_v": e["battery_vol"],
            "temperature_c": e["temp"],
        }
        if "latitude" in e:
            out["latitude"] = e["latitude"]
            out["longitude"] = e["longitude"]
        return out
    return {}


NORMALIZABLE = [
    (s, m, v)
    for s, m, v in VECTORS
    if "expected_errors" not in v
    and s != "elsys-ers-sound"
    and not (s == "dragino-ldds75" and len(v["hex"]) != 16)  # 4-byte TTN example: see below
]


@pytest.mark.parametrize(("stem", "model", "vec"), NORMALIZABLE)
def test_normalized_matches_vendor_values(stem: str, model: str, vec: dict[str, Any]) -> None:
    fport = vec["fport"]
    batch = tidstream.decode_batch(model, [bytes.fromhex(vec["hex"])], fports=[fport])
    row = batch.to_pylist()[0]
    assert row["ok"], row["error"]
    want = expected_normalized(model, vec["expected"])
    assert want, "no normalized expectation for this model"
    for key, value in want.items():
        if key.endswith("~"):
            assert row[key[:-1]] == pytest.approx(value, abs=2e-5)
        elif value is None:
            assert row[key] is None
        elif isinstance(value, bool):
            assert row[key] is value
        else:
            assert row[key] == pytest.approx(value, rel=1e-12), key


def test_ldds75_ttn_short_example_is_a_truncated_frame() -> None:
    # The only TTN ldds75 example is 4 bytes; ldds75.js answers "No Sensor" because the
    # original frame is 5 bytes. Normalized: a truncated frame, cut at the interrupt byte.
    row = tidstream.decode_batch("dragino-ldds75", [bytes.fromhex("0e1c0b05")], 2).to_pylist()[0]
    assert row["ok"] is False
    assert (row["error_kind"], row["error_offset"]) == ("truncated", 4)


def test_dingtek_angle_and_float_quirks_are_vendor_exact() -> None:
    # Angle 5 with sign byte 0: the vendor's precedence bug negates it always.
    frame = bytearray.fromhex("800001011107d000190000000000010081")
    frame[10] = 5
    assert tidstream.decode_vendor("dingtek-df703", bytes(frame), 3)["angle"] == -5
    assert tidstream.decode_vendor("dingtek-df702", bytes(frame), 3)["angle"] == "-5 °"
    gps = bytes.fromhex("800001011907d001cd03e942ef272042190000000000010081")
    row = tidstream.decode_batch("dingtek-df703", [gps], 3).to_pylist()[0]
    assert math.isclose(row["longitude"], 116.507423, abs_tol=5e-7)  # IEEE-754, not the bug


EXTRA = json.loads((Path(__file__).parent / "fixtures" / "vendor_examples_extra.json").read_text())["vectors"]


@pytest.mark.parametrize("vec", EXTRA, ids=[f"{v['model']}-{v['hex'][:10]}" for v in EXTRA])
def test_more_vendor_examples(vec: dict[str, Any]) -> None:
    payload = bytes.fromhex(vec["hex"])
    if "expected_errors" in vec:
        with pytest.raises(tidstream.DecodeError, match="unknown FPort"):
            tidstream.decode_vendor(vec["model"], payload, vec["fport"])
        return
    got = tidstream.decode_vendor(vec["model"], payload, vec["fport"])
    assert same_json(got, vec["expected"]), f"got {got!r}\nwant {vec['expected']!r}"
