"""Uplink envelopes at the Python level: the documented examples, every error kind,
and the raw format."""

from __future__ import annotations

import base64
import json

import pyarrow as pa
import pytest
import tidstream
from hypothesis import given, settings
from hypothesis import strategies as st

# The Things Stack "Uplink message example" and ChirpStack's documented `up` event
# (shared/sensors/ENVELOPES.md), trimmed to the fields that matter, values unchanged.
TTN = {
    "end_device_ids": {
        "device_id": "dev1",
        "application_ids": {"application_id": "app1"},
        "dev_eui": "0004A30B001C0530",
        "dev_addr": "00BCB929",
    },
    "received_at": "2020-02-12T15:15:46.014773143Z",
    "uplink_message": {
        "f_cnt": 1,
        "frm_payload": "gkHe",
        "rx_metadata": [{"gateway_ids": {"gateway_id": "gtw1"}, "rssi": -35, "channel_rssi": -35, "snr": 5}],
        "settings": {"frequency": "868300000"},
        "received_at": "2020-02-12T15:15:45.789585559Z",
    },
}
CHIRPSTACK = {
    "deduplicationId": "3ac7e3c4-4401-4b8d-9386-a5c902f9202d",
    "time": "2022-07-18T09:34:15.775023242+00:00",
    "deviceInfo": {"deviceName": "Test device", "devEui": "0101010101010101"},
    "fPort": 1,
    "data": "qg==",
    "rxInfo": [{"gatewayId": "0016c001f153a14c", "rssi": -36, "snr": 10.5}],
}


def rows(fmt: str, msgs: list) -> list[dict]:
    b = tidstream.decode_uplinks(fmt, msgs)
    b = b.set_column(3, "received_at", b.column("received_at").cast(pa.int64()))
    return b.to_pylist()


def test_documented_examples():
    (t,) = rows("ttn-v3", [json.dumps(TTN)])
    assert t["ok"] and t["dev_eui"] == "0004a30b001c0530" and t["device_id"] == "dev1"
    assert (t["fport"], t["fcnt"], t["payload"]) == (0, 1, bytes([0x82, 0x41, 0xDE]))
    assert (t["rssi"], t["snr"], t["gateway_count"]) == (-35.0, 5.0, 1)
    assert t["received_at"] == 1581520546014773143  # date -d 2020-02-12T15:15:46Z +%s = 1581520546
    (c,) = rows("chirpstack-v4", [json.dumps(CHIRPSTACK).encode()])
    assert c["dev_eui"] == "0101010101010101" and c["payload"] == b"\xaa" and c["fport"] == 1
    assert (c["rssi"], c["snr"]) == (-36.0, 10.5)
    assert c["received_at"] == 1658136855775023242  # 2022-07-18T09:34:15Z = 1658136855


def test_envelope_then_codec():
    msg = dict(TTN)
    msg["uplink_message"] = dict(
        TTN["uplink_message"],
        f_port=85,
        frm_payload=base64.b64encode(bytes.fromhex("01755c03824408040001")).decode(),
    )
    up = tidstream.decode_uplinks("ttn-v3", pa.array([json.dumps(msg)], pa.string()))
    r = tidstream.decode_batch("milesight-em310-udl", up.column("payload"), up.column("fport"))
    assert r.column("distance_mm").to_pylist() == [2116.0]


def bad(fmt: str, text: str | bytes) -> tuple[str, int]:
    (r,) = rows(fmt, [text])
    assert r["ok"] is False and r["dev_eui"] is None and r["payload"] is None
    return r["error_kind"], r["error_offset"]


def test_every_envelope_error_kind():
    assert bad("ttn-v3", b'{"end_device_ids": ')[0] == "invalid_json"
    assert bad("ttn-v3", "[1, 2]") == ("wrong_type", 0)
    no_eui = {**TTN, "end_device_ids": {"device_id": "x"}}
    assert bad("ttn-v3", json.dumps(no_eui))[0] == "missing_field"
    wrong = {**TTN, "uplink_message": {**TTN["uplink_message"], "f_port": "85"}}
    assert bad("ttn-v3", json.dumps(wrong))[0] == "wrong_type"
    b64 = {**TTN, "uplink_message": {**TTN["uplink_message"], "frm_payload": "!!notbase64"}}
    kind, off = bad("ttn-v3", json.dumps(b64))
    assert kind == "invalid_base64" and json.dumps(b64)[off] == '"'
    ts = {**TTN, "received_at": "yesterday"}
    assert bad("ttn-v3", json.dumps(ts))[0] == "invalid_timestamp"
    join = {"end_device_ids": TTN["end_device_ids"], "join_accept": {"session_key_id": "AA=="}}
    kind, off = bad("ttn-v3", json.dumps(join))
    assert kind == "not_uplink" and json.dumps(join)[off:].startswith('{"session_key_id"')
    eui = {**CHIRPSTACK, "deviceInfo": {"devEui": "01010101"}}
    assert bad("chirpstack-v4", json.dumps(eui))[0] == "invalid_dev_eui"
    (r,) = rows("ttn-v3", [None])
    assert r["error_kind"] == "missing_payload"


def test_raw_format_and_argument_errors():
    b = tidstream.decode_uplinks(
        "raw", [b"\x01\x02", None], device_ids=["A84041000181C8AA", "a84041000181c8ab"], fports=[2, 2]
    )
    assert b.column("dev_eui").to_pylist() == ["a84041000181c8aa", None]
    assert b.column("error_kind").to_pylist() == [None, "missing_payload"]
    with pytest.raises(ValueError, match="device_ids"):
        tidstream.decode_uplinks("raw", [b"\x01"])
    with pytest.raises(ValueError, match="unknown envelope format"):
        tidstream.decode_uplinks("lorawan", [b"{}"])
    with pytest.raises(TypeError, match="list of JSON messages"):
        tidstream.decode_uplinks("ttn-v3", b"{}")


def test_list_input_is_read_in_place_like_an_array():
    ttn = json.dumps(TTN).encode()
    cs = json.dumps(CHIRPSTACK)
    msgs = [ttn, None, b"{not json", ttn.decode(), b""]
    from_list = tidstream.decode_uplinks("ttn-v3", msgs)
    as_bytes = [m.encode() if isinstance(m, str) else m for m in msgs]
    assert from_list.equals(tidstream.decode_uplinks("ttn-v3", pa.array(as_bytes, pa.binary())))
    assert from_list.column("ok").to_pylist() == [True, False, False, True, False]
    assert rows("chirpstack-v4", [cs])[0]["dev_eui"] == "0101010101010101"
    # Other bytes-like items are accepted too (copied through an Arrow array).
    assert tidstream.decode_uplinks("ttn-v3", [bytearray(ttn)]).equals(from_list.slice(0, 1))
    with pytest.raises(TypeError, match="list of bytes or str"):
        tidstream.decode_uplinks("ttn-v3", [ttn, 7])


def test_long_list_is_parsed_chunk_by_chunk_like_an_array():
    """The core parses a list a few hundred messages per GIL release: rows stay in
    order across chunk boundaries, with errors, nulls and str items anywhere."""
    msgs: list[bytes | str | None] = []
    for i in range(700):
        m = json.loads(json.dumps(TTN))
        m["end_device_ids"]["dev_eui"] = f"{0x0004A30B00000000 + i:016X}"
        m["uplink_message"]["f_cnt"] = i
        m["uplink_message"]["frm_payload"] = base64.b64encode(i.to_bytes(2, "big")).decode()
        msgs.append(json.dumps(m).encode())
    # Around the chunk boundaries (256, 512) and elsewhere.
    bad = {255: b"{not json", 256: None, 511: b'{"end_device_ids":{}}', 512: b"[]", 699: None}
    for i, m in bad.items():
        msgs[i] = m
    for i in (3, 257, 600):
        msgs[i] = msgs[i].decode()  # type: ignore[union-attr]
    from_list = tidstream.decode_uplinks("ttn-v3", msgs)
    as_bytes = [m.encode() if isinstance(m, str) else m for m in msgs]
    assert from_list.equals(tidstream.decode_uplinks("ttn-v3", pa.array(as_bytes, pa.binary())))
    ok = from_list.column("ok").to_pylist()
    assert [i for i, o in enumerate(ok) if not o] == sorted(bad)
    good = [i for i in range(700) if i not in bad]
    assert [from_list.column("fcnt")[i].as_py() for i in good] == good
    assert [from_list.column("payload")[i].as_py() for i in good] == [i.to_bytes(2, "big") for i in good]
    assert from_list.column("dev_eui")[600].as_py() == f"{0x0004A30B00000000 + 600:016x}"
    kinds = from_list.column("error_kind").to_pylist()
    assert [kinds[i] for i in sorted(bad)] == [
        "invalid_json",
        "missing_payload",
        "missing_field",
        "wrong_type",
        "missing_payload",
    ]
    # A wrong item type in a later chunk: the core names it, the wrapper raises TypeError.
    msgs[600] = 7  # type: ignore[call-overload]
    with pytest.raises(TypeError, match=r"messages\[600\] must be bytes, str or None, got int"):
        tidstream._core.decode_uplinks_list("ttn-v3", msgs)
    with pytest.raises(TypeError, match=r"list of bytes or str"):
        tidstream.decode_uplinks("ttn-v3", msgs)


def _big(doc: dict, pad: int) -> dict:
    """``doc`` with an unknown key of ``pad`` characters: a message spanning pages."""
    return {**doc, "x_padding": "p" * pad}


_ENVELOPE_BASES = [
    json.dumps(TTN).encode(),
    json.dumps(CHIRPSTACK).encode(),
    json.dumps(_big(TTN, 9000)).encode(),
    json.dumps(_big(CHIRPSTACK, 5000)).encode(),
    b"",
]
_ITEM = st.tuples(
    st.one_of(st.sampled_from(_ENVELOPE_BASES), st.binary(max_size=200)),
    st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)), max_size=3),
    st.integers(0, 1 << 16),  # truncation point (modulo the length + 1), one item in three
    st.sampled_from(["bytes", "str", "none"]),
    st.integers(0, 9000),  # bytes allocated before the item: scattered or back to back
)


@settings(deadline=None)
@given(st.lists(_ITEM, max_size=40), st.sampled_from(["ttn-v3", "chirpstack-v4"]))
def test_list_and_array_inputs_give_identical_batches(items, fmt):
    """Random and mutated envelopes, some spanning several pages, laid out scattered or
    back to back in memory, as bytes, str or None: the list input (read in place,
    prefetched) gives exactly the batch of the same messages as a BinaryArray."""
    msgs: list[bytes | str | None] = []
    spacers = []
    for base, flips, cut, kind, gap in items:
        data = bytearray(base)
        for pos, byte in flips:
            if data:
                data[pos % len(data)] = byte
        if cut % 3 == 0:
            data = data[: cut % (len(data) + 1)]
        spacers.append(bytes(gap))  # kept alive: the next item lands elsewhere
        if kind == "none":
            msgs.append(None)
        elif kind == "str":
            msgs.append(data.decode("utf-8", "replace"))
        else:
            msgs.append(bytes(data))
    from_list = tidstream.decode_uplinks(fmt, msgs)
    as_bytes = [m.encode() if isinstance(m, str) else m for m in msgs]
    from_array = tidstream.decode_uplinks(fmt, pa.array(as_bytes, pa.binary()))
    assert from_list.num_rows == len(msgs)
    assert from_list.equals(from_array)
    # The unmutated big envelopes parse (the padding key is skipped).
    big = [i for i, (base, flips, cut, kind, _) in enumerate(items)
           if base in _ENVELOPE_BASES[2:4] and not flips and cut % 3 and kind != "none"]  # fmt: skip
    ok = from_list.column("ok").to_pylist()
    for i in big:
        is_ttn = _ENVELOPE_BASES.index(items[i][0]) == 2
        assert ok[i] == ((fmt == "ttn-v3") == is_ttn)
