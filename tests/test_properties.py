"""Property tests: arbitrary bytes never crash any codec; encode-then-decode
round-trips; every truncation of a valid frame is a truncation error at the offset of
the element that was cut.

Depth is set by the hypothesis profile (tests/conftest.py): `default`/`ci` run
hundreds of examples per model, `HYPOTHESIS_PROFILE=ci-long` tens of thousands.
"""

from __future__ import annotations

import math

import pyarrow as pa
import pytest
import tidstream
from hypothesis import given, settings
from hypothesis import strategies as st

MODELS = tidstream.models()
ENCODABLE = [m for m in MODELS if tidstream.model_info(m)["can_encode"]]

frames = st.binary(min_size=0, max_size=160)


@pytest.mark.parametrize("model", MODELS)
@given(payloads=st.lists(frames, min_size=1, max_size=40), fport=st.one_of(st.none(), st.integers(0, 255)))
def test_arbitrary_bytes_never_crash(model: str, payloads: list[bytes], fport: int | None) -> None:
    batch = tidstream.decode_batch(model, payloads, fports=fport)
    assert batch.num_rows == len(payloads)
    ok = batch.column("ok").to_pylist()
    kinds = batch.column("error_kind").to_pylist()
    known = set(tidstream.error_kinds())
    for is_ok, kind in zip(ok, kinds):
        assert is_ok == (kind is None)
        assert kind is None or kind in known
    for p in payloads:
        try:
            out = tidstream.decode_vendor(model, p, fport)
        except tidstream.DecodeError as e:
            assert e.kind in known
            assert e.offset is not None and 0 <= e.offset <= max(len(p), 0) + 2
        else:
            assert isinstance(out, dict)


readings = st.fixed_dictionaries(
    {
        "distance_mm": st.integers(25, 4000).map(float),
        "battery_pct": st.integers(0, 100).map(float),
        "battery_v": st.integers(2100, 3600).map(lambda mv: mv / 1000),
        "temperature_c": st.integers(-300, 600).map(lambda d: d / 10),
        "tilt": st.booleans(),
        "measured_at_ms": st.integers(1_600_000_000, 2_000_000_000).map(lambda s: s * 1000),
    }
)

# Which normalized fields each encodable model carries (and their resolution).
CARRIES = {
    "milesight-em310-udl": {"distance_mm": 0, "battery_pct": 0, "tilt": 0},
    "milesight-em400-udl": {"distance_mm": 0, "battery_pct": 0, "tilt": 0, "temperature_c": 1e-9},
    "milesight-em400-tld": {"distance_mm": 0, "battery_pct": 0, "tilt": 0, "temperature_c": 1e-9},
    "milesight-em400-mud": {"distance_mm": 0, "battery_pct": 0, "tilt": 0, "temperature_c": 1e-9},
    "milesight-em500-udl": {"distance_mm": 0, "battery_pct": 0},
    "milesight-ws201": {"distance_mm": 0, "battery_pct": 0},
    "dragino-ldds75": {"distance_mm": 0, "battery_v": 1e-12, "temperature_c": 1e-9},
    "dragino-ldds20": {"distance_mm": 0, "battery_v": 1e-12, "temperature_c": 1e-9},
    "dragino-ldds45": {"distance_mm": 0, "battery_v": 1e-12, "temperature_c": 1e-9},
    "dragino-ldds04": {"distance_mm": 1e-9, "battery_v": 1e-12},
    "dragino-llds12": {"distance_mm": 1e-9, "battery_v": 1e-12, "temperature_c": 1e-9},
    "decentlab-dl-mbx": {"distance_mm": 0, "battery_v": 1e-12},
    "elsys-elt-ultrasonic": {"distance_mm": 0, "temperature_c": 1e-9, "battery_v": 1e-12},
    "dingtek-df703": {"distance_mm": 0, "tilt": 0, "temperature_c": 0.5},  # whole °C, >= 0
    "tid1": {"distance_mm": 0, "battery_pct": 0, "temperature_c": 1e-9, "tilt": 0, "measured_at": 0},
}


def test_every_encodable_model_has_a_round_trip_spec() -> None:
    assert set(ENCODABLE) == set(CARRIES)
    for required in (
        "tid1",
        "milesight-em310-udl",
        "milesight-em400-udl",
        "dragino-ldds75",
        "decentlab-dl-mbx",
        "dingtek-df703",
    ):
        assert required in ENCODABLE


@pytest.mark.parametrize("model", ENCODABLE)
@given(r=readings)
def test_encode_then_decode_round_trips(model: str, r: dict) -> None:
    if model == "dingtek-df703":
        r = {**r, "temperature_c": abs(r["temperature_c"])}  # the frame has no sign
    frame = tidstream.encode(model, **r)
    row = tidstream.decode_batch(model, [frame]).to_pylist()[0]
    assert row["ok"], row["error"]
    for key, tol in CARRIES[model].items():
        if key == "measured_at":
            assert int(row["measured_at"].timestamp() * 1000) == r["measured_at_ms"]
        elif key == "tilt":
            assert row["tilt"] is r["tilt"]
        else:
            want = r[key]
            assert math.isclose(row[key], want, rel_tol=tol, abs_tol=tol), (key, row[key], want)


@given(r=readings, n_stored=st.integers(0, 32))
def test_tid1_stored_readings_round_trip(r: dict, n_stored: int) -> None:
    t = r["measured_at_ms"]
    stored = [(t - 60_000 * (n_stored - i), float(1000 + i)) for i in range(n_stored)]
    frame = tidstream.encode("tid1", stored=stored, **r)
    assert len(frame) == 15 + 4 * n_stored
    row = tidstream.decode_batch("tid1", [frame]).to_pylist()[0]
    got = [(int(s["measured_at"].timestamp() * 1000), s["distance_mm"]) for s in row["stored_readings"]]
    assert got == stored
    assert bool(row["alarm_flags"] & 512) == (n_stored > 0)


# Offsets where the element that contains byte k starts, per model family.
def tid1_cut_offset(frame: bytes, k: int) -> int:
    header = [0, 1, 2, 6, 8, 10, 11, 12]
    if k < 13:
        return max(s for s in header if s <= k)
    n = frame[12]
    body = 13 + 4 * n
    if k < body:
        return 13 + 4 * ((k - 13) // 4)
    return body


def fixed_cut_offset(starts: list[int], k: int) -> int:
    return max(s for s in starts if s <= k)


@given(r=readings, n_stored=st.integers(0, 5))
def test_every_truncation_of_tid1_is_a_truncation_error(r: dict, n_stored: int) -> None:
    t = r["measured_at_ms"]
    frame = tidstream.encode("tid1", stored=[(t - 60_000 * i, 500.0) for i in range(n_stored)], **r)
    cuts = [frame[:k] for k in range(1, len(frame))]
    batch = tidstream.decode_batch("tid1", cuts)
    assert batch.column("error_kind").to_pylist() == ["truncated"] * len(cuts)
    assert batch.column("error_offset").to_pylist() == [
        tid1_cut_offset(frame, k) for k in range(1, len(frame))
    ]


@pytest.mark.parametrize(
    ("model", "starts"),
    [
        ("dragino-ldds75", [0, 2, 4, 5, 7]),  # 8-byte v1.1.4 frames (cuts of 1..4 use the 5-byte layout)
        ("dragino-llds12", [0, 2, 4, 6, 8, 9, 10]),
        ("dragino-ldds04", [0, 2, 4, 6, 8, 10]),
    ],
)
@given(r=readings)
def test_every_truncation_of_fixed_frames(model: str, starts: list[int], r: dict) -> None:
    frame = tidstream.encode(model, **r)
    lo = 6 if model == "dragino-ldds75" else 1
    cuts = list(range(lo, len(frame)))
    batch = tidstream.decode_batch(model, [frame[:k] for k in cuts])
    assert batch.column("error_kind").to_pylist() == ["truncated"] * len(cuts)
    assert batch.column("error_offset").to_pylist() == [fixed_cut_offset(starts, k) for k in cuts]


@given(r=readings)
def test_every_truncation_inside_a_milesight_record(r: dict) -> None:
    frame = tidstream.encode("milesight-em400-udl", **r)
    # records: 0175 xx | 0367 xxxx | 0482 xxxx | 0500 xx  -> starts 0, 3, 7, 11; ends 3, 7, 11, 14
    starts, ends = [0, 3, 7, 11], [3, 7, 11, 14]
    assert len(frame) == 14
    for k in range(1, len(frame)):
        row = tidstream.decode_batch("milesight-em400-udl", [frame[:k]]).to_pylist()[0]
        if k in ends:  # a cut between records is a shorter valid frame (TLV)
            assert row["ok"]
        else:
            rec = max(s for s in starts if s <= k)
            assert (row["error_kind"], row["error_offset"]) == ("truncated", rec)


@given(st.lists(st.one_of(st.none(), frames), min_size=0, max_size=30), st.integers(0, 5))
def test_list_and_arrow_inputs_agree(payloads: list[bytes | None], cut: int) -> None:
    arr = pa.array(payloads, type=pa.binary())
    a = tidstream.decode_batch("tid1", payloads)
    b = tidstream.decode_batch("tid1", arr)
    c = tidstream.decode_batch("tid1", arr.cast(pa.large_binary()))
    assert a.equals(b) and b.equals(c)
    # A sliced array (non-zero offset) is read in place with the right rows.
    if cut < len(payloads):
        d = tidstream.decode_batch("tid1", arr.slice(cut))
        assert d.equals(a.slice(cut))


def test_all_null_columns_share_a_read_only_zero_buffer() -> None:
    """Every column a model cannot fill is all null over slices of one shared read-only
    zero buffer: batches of growing sizes (the buffer grows) stay valid Arrow data,
    including a batch made before the buffer grew."""
    frame = tidstream.encode("dragino-ldds75", distance_mm=1234.0, battery_v=3.3, temperature_c=21.5)
    null_cols = ["fill_pct_reported", "battery_pct", "tilt", "fire_alarm", "measured_at", "latitude"]
    null_cols += ["longitude", "stored_readings", "error", "error_kind", "error_offset"]
    batches = [tidstream.decode_batch("dragino-ldds75", [frame] * n) for n in (0, 3, 300_000, 5)]
    for b in batches:
        b.validate(full=True)
        n = b.num_rows
        assert b.column("distance_mm").to_pylist()[:1] == ([1234.0] if n else [])
        for name in null_cols:
            col = b.column(name)
            assert col.null_count == n, name
            bufs = [x for x in col.buffers() if x is not None and x.size]
            assert all(not x.is_mutable for x in bufs), name
            assert all(not any(x.to_pybytes()[:64]) for x in bufs), name
    assert batches[1].column("latitude").to_pylist() == [None] * 3
    # A later batch of the same size shares the (cached, immutable) all-null arrays.
    again = tidstream.decode_batch("dragino-ldds75", [frame] * 3)
    assert again.equals(batches[1])
    assert again.column("stored_readings").to_pylist() == [None] * 3


# A batch is decoded column by column for the rows that share its shape (the first
# decodable frame's record sequence, or the fixed layout) and frame by frame for the
# others; a one-frame batch decodes that frame on its own. Both must give the same
# rows, Arrow assembly included (all-null and error columns).
def _encoded(model: str, r: dict, tweak: int) -> bytes | None:
    try:
        frame = tidstream.encode(model, **r)
    except tidstream.EncodeError:
        return None
    if tweak == 1:
        return frame[: len(frame) // 2]
    if tweak == 2:
        return frame + b"\x00"
    return frame


@pytest.mark.parametrize("model", ENCODABLE)
@given(
    items=st.lists(
        st.tuples(
            st.fixed_dictionaries(
                {},
                optional={
                    "distance_mm": st.integers(0, 4000).map(float),
                    "battery_pct": st.integers(0, 100).map(float),
                    "battery_v": st.integers(2100, 3600).map(lambda v: v / 1000),
                    "temperature_c": st.integers(-400, 850).map(lambda v: v / 10),
                    "tilt": st.booleans(),
                },
            ),
            st.sampled_from([0, 0, 0, 1, 2]),
        ),
        min_size=1,
        max_size=70,
    ),
    fport=st.one_of(st.none(), st.sampled_from([2, 85, 3])),
)
@settings(max_examples=40)  # chunk boundaries are covered by the Rust property test
def test_columnar_batches_equal_one_frame_batches(model: str, items: list, fport: int | None) -> None:
    payloads = [_encoded(model, r, t) for r, t in items]
    whole = tidstream.decode_batch(model, payloads, fports=fport)
    alone = [tidstream.decode_batch(model, [p], fports=fport).to_pylist()[0] for p in payloads]
    assert whole.to_pylist() == alone
    assert whole.column("ok").null_count == 0
