"""One test per error kind: class, kind, offset and message, for single frames
(exceptions) and batches (error rows, never exceptions)."""

from __future__ import annotations

import pickle

import pytest
import tidstream
from tidstream import DecodeError, EncodeError, LayoutError, TidstreamError

TID1 = tidstream.encode("tid1", distance_mm=800, battery_pct=50, measured_at_ms=1_700_000_000_000)

CASES = [
    # (kind, model, payload, fport, offset, message fragment)
    ("truncated", "dragino-ldds75", bytes.fromhex("0d3b0aef0000"), 2, 5, "needed 2 byte(s)"),
    ("length_mismatch", "tid1", TID1 + b"\x00", None, 15, "expected 15 byte(s), got 16"),
    ("unknown_fport", "dragino-ldds20", bytes.fromhex("0d3b0aef00000001"), 42, 0, "unknown FPort 42"),
    ("empty_payload", "milesight-em310-udl", b"", 85, 0, "empty payload"),
    (
        "unknown_record",
        "milesight-em310-udl",
        bytes.fromhex("01755c0999"),
        85,
        3,
        "unknown record tag 0x0999",
    ),
    (
        "bad_header",
        "dingtek-df703",
        bytes.fromhex("810001011107d000190000000000010081"),
        3,
        0,
        "bad header byte 0x81",
    ),
    (
        "unsupported_version",
        "decentlab-dl-mbx",
        bytes.fromhex("03012f00020bb1"),
        1,
        0,
        "protocol version 3 doesn't match v2",
    ),
    ("crc_mismatch", "tid1", TID1[:-1] + bytes([TID1[-1] ^ 0xFF]), None, 13, "CRC mismatch"),
    ("invalid_value", "tid1", None, None, 1, "reserved flag bits"),
    (
        "vendor_error",
        "dragino-ldds04",
        bytes.fromhex("034a03160318031a031502"),
        2,
        0,
        "not a measurement frame",
    ),
]


def _reserved_flags_frame() -> bytes:
    # A valid frame with a reserved flag bit set and its CRC recomputed.
    body = bytearray(TID1[:-2])
    body[1] |= 0x80
    crc = 0xFFFF
    for b in body:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return bytes(body) + crc.to_bytes(2, "little")


@pytest.mark.parametrize(
    ("kind", "model", "payload", "fport", "offset", "fragment"), CASES, ids=[c[0] for c in CASES]
)
def test_error_kind_in_batches(kind, model, payload, fport, offset, fragment):
    if payload is None:
        payload = _reserved_flags_frame()
    row = tidstream.decode_batch(model, [payload], fports=[fport]).to_pylist()[0]
    assert row["ok"] is False
    assert row["error_kind"] == kind
    assert row["error_offset"] == offset
    assert fragment in row["error"]
    assert row["distance_mm"] is None


def test_missing_payload_is_an_error_row():
    rows = tidstream.decode_batch("tid1", [TID1, None]).to_pylist()
    assert rows[0]["ok"] and not rows[1]["ok"]
    assert rows[1]["error_kind"] == "missing_payload"


def test_every_kind_is_documented_and_tested():
    # The envelope kinds are covered in tests/test_envelopes.py.
    envelope = {
        "invalid_json",
        "missing_field",
        "wrong_type",
        "invalid_base64",
        "invalid_timestamp",
        "not_uplink",
        "invalid_dev_eui",
    }
    covered = {c[0] for c in CASES} | {"missing_payload"} | envelope
    assert covered == set(tidstream.error_kinds())


def test_decode_vendor_raises_decode_error_with_attributes():
    with pytest.raises(DecodeError) as ei:
        tidstream.decode_vendor("tid1", TID1[:5])
    e = ei.value
    assert isinstance(e, ValueError) and isinstance(e, TidstreamError)
    assert (e.kind, e.offset, e.frame_index) == ("truncated", 2, None)
    assert "truncated frame at byte 2" in str(e)
    again = pickle.loads(pickle.dumps(e))
    assert (again.kind, again.offset, str(again)) == (e.kind, e.offset, str(e))


def test_vendor_error_messages_are_the_vendors():
    with pytest.raises(DecodeError, match="wrong length"):
        tidstream.decode_vendor("dingtek-df702", b"\x80\x00", 3)
    with pytest.raises(DecodeError, match="unknown downlink response"):
        tidstream.decode_vendor("milesight-em310-udl", bytes.fromhex("ff9900"), 85)


def test_unknown_model_and_bad_arguments_name_the_fix():
    with pytest.raises(ValueError, match="unknown model .nope.; known models: .*tid1.*load_layout"):
        tidstream.decode_batch("nope", [b"\x00"])
    with pytest.raises(TypeError, match="bytes.fromhex"):
        tidstream.decode_vendor("tid1", "0102")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="list of frames"):
        tidstream.decode_batch("tid1", b"\x01\x02")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="list of bytes"):
        tidstream.decode_batch("tid1", [1, 2])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="fports has 1 entries for 2 payloads"):
        tidstream.decode_batch("tid1", [TID1, TID1], fports=[1])
    with pytest.raises(ValueError, match="0..255"):
        tidstream.decode_batch("tid1", [TID1], fports=300)
    with pytest.raises(ValueError, match="fport must be 0..255"):
        tidstream.decode_vendor("tid1", TID1, 999)


def test_encode_errors():
    with pytest.raises(EncodeError, match="outside 0..100"):
        tidstream.encode("tid1", battery_pct=150)
    with pytest.raises(EncodeError, match="has no encoder"):
        tidstream.encode("decentlab-dl-lid", distance_mm=1)
    with pytest.raises(EncodeError) as ei:
        tidstream.encode_batch("tid1", {"distance_mm": [1.0, 70000.0]})
    assert ei.value.frame_index == 1


def test_layout_error_is_a_config_error():
    with pytest.raises(LayoutError) as ei:
        tidstream.load_layout('model = "x"\nformat = "fixd"\n')
    assert isinstance(ei.value, tidstream.ConfigError)
    assert ei.value.path == "format"
    assert 'is not "fixed" or "tlv"' in str(ei.value)
