"""Declarative codecs: a platform engineer adds a model from a small layout file."""

from __future__ import annotations

from pathlib import Path

import pytest
import tidstream
from tidstream import LayoutError

EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples"


def test_fixed_layout_from_file_decodes_both_outputs():
    name = tidstream.load_layout(EXAMPLES / "acme-bin-v2.toml")
    assert name == "acme-bin-v2" and name in tidstream.models()
    assert tidstream.model_info(name)["engine"] == "runtime-layout"
    frame = bytes([2, 0x04, 0xD2, 0xFF, 0x38, 77, 0b0001_0011, 0x00, 0x2A])
    assert tidstream.decode_vendor(name, frame, 10) == {
        "version": 2,
        "distance": 1234,
        "temperature": -2.0,
        "battery": 77,
        "status": {"tilt": True, "fire": True},
        "mode": "event",
        "counter": 42,
    }
    row = tidstream.decode_batch(name, [frame], 10).to_pylist()[0]
    assert (row["distance_mm"], row["temperature_c"], row["battery_pct"]) == (1234.0, -2.0, 77.0)
    assert row["tilt"] is True and row["fire_alarm"] is True
    assert row["alarm_flags"] == 0b110  # fire | tilt
    no_echo = bytes([2, 0xFF, 0xFF, 0, 0, 50, 0, 0, 1])
    assert tidstream.decode_vendor(name, no_echo, 10)["distance"] == "no echo"
    row = tidstream.decode_batch(name, [no_echo], 10).to_pylist()[0]
    assert row["distance_mm"] is None and row["alarm_flags"] & 128
    rows = tidstream.decode_batch(name, [frame[:4], frame + b"\x00", frame], fports=[10, 10, 11]).to_pylist()
    assert [(r["error_kind"], r["error_offset"]) for r in rows] == [
        ("truncated", 3),
        ("length_mismatch", 9),
        ("unknown_fport", 0),
    ]
    # Fixed layouts can encode too.
    assert (
        tidstream.decode_batch(name, [tidstream.encode(name, distance_mm=900, battery_pct=10)], 10)[
            "distance_mm"
        ][0].as_py()
        == 900.0
    )


def test_tlv_layout_from_text():
    name = tidstream.load_layout((EXAMPLES / "acme-tlv.toml").read_text())
    frame = bytes([0x01, 0x10, 0x02, 0x02, 0x7C, 0x0E, 0x03, 55, 1])
    assert tidstream.decode_vendor(name, frame) == {
        "distance": 528,
        "battery_mv": 3708,
        "fill": 55,
        "full": True,
    }
    row = tidstream.decode_batch(name, [frame]).to_pylist()[0]
    assert row["distance_mm"] == 528.0 and row["battery_v"] == pytest.approx(3.708)
    assert row["fill_pct_reported"] == 55.0 and row["alarm_flags"] & 1
    # Unknown tag: vendor-native stops (like vendor decoders); normalized is an error row.
    assert tidstream.decode_vendor(name, frame[:3] + b"\x09\x00") == {"distance": 528}
    row = tidstream.decode_batch(name, [frame[:3] + b"\x09\x00"]).to_pylist()[0]
    assert (row["error_kind"], row["error_offset"]) == ("unknown_record", 3)
    assert tidstream.encode(name, distance_mm=528, battery_v=3.708) == frame[:6]


def test_reloading_a_runtime_layout_replaces_it_but_builtins_are_protected():
    text = (EXAMPLES / "acme-tlv.toml").read_text()
    tidstream.load_layout(text.replace("acme-tlv", "acme-tlv-b"))
    tidstream.load_layout(text.replace("acme-tlv", "acme-tlv-b").replace("0x01\n", "0x05\n", 1))
    assert tidstream.decode_vendor("acme-tlv-b", bytes([5, 1, 0])) == {"distance": 1}
    with pytest.raises(LayoutError, match="built-in model"):
        tidstream.load_layout(text.replace("acme-tlv", "tid1"))


@pytest.mark.parametrize(
    ("patch", "path", "fragment"),
    [
        (('format = "tlv"', 'format = "tlvx"'), "format", 'is not "fixed" or "tlv"'),
        (("tag_size = 1", "tag_size = 3"), "tlv.tag_size", "tag_size 3 is not 1 or 2"),
        (
            ('type = "u16", unit = "mm"', 'type = "u12", unit = "mm"'),
            "records[0].fields[0].type",
            "unknown type `u12`",
        ),
        (
            ('normalized = "distance_mm"', 'normalized = "distance"'),
            "records[0].fields[0].normalized",
            "unknown normalized column",
        ),
        (("tag = 0x02", "tag = 0x01"), "records[1].tag", "defined twice"),
        (("tag = 0x02", "tag = 0x102"), "records[1].tag", "does not fit in 1 byte"),
        (('on_unknown = "stop"', 'on_unknown = "skip"'), "tlv.on_unknown", 'needs length = "prefix"'),
        (('model = "acme-tlv"', 'model = "acme tlv"'), "model", "letters, digits"),
        (("[tlv]", "[tlv]\nbogus = 1"), "", "unknown field `bogus`"),
        (('unit = "mm"', "unit = mm"), "", "line"),
    ],
)
def test_layout_errors_name_the_key_and_the_fix(patch, path, fragment):
    text = (EXAMPLES / "acme-tlv.toml").read_text().replace(*patch)
    with pytest.raises(LayoutError) as ei:
        tidstream.load_layout(text)
    assert ei.value.path == path
    assert fragment in str(ei.value)


def test_builtin_layout_files_are_valid_runtime_layouts():
    # The built-in models compiled into the core come from these files; each also loads
    # as a run-time layout under another name (one engine, one format).
    root = Path(__file__).resolve().parents[1] / "core" / "layouts"
    files = sorted(root.glob("*.toml"))
    assert len(files) >= 10
    for f in files:
        text = f.read_text()
        model = text.split('model = "', 1)[1].split('"', 1)[0]
        assert (
            tidstream.load_layout(text.replace(f'model = "{model}"', f'model = "copy-{model}"'))
            == f"copy-{model}"
        )
