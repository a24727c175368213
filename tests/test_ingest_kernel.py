"""The ingest step's Rust kernel (core/src/ingest.rs) against the Python step it replaced
(tests/ingest_reference.py, main's code kept verbatim): the same messages in, the same
output out, byte for byte (readings JSON, subjects, message ids, dead-letter bodies and
headers, partition order), the same counters and the same frame-counter state after.

Input: a simulated PMA fleet (TTN v3 and ChirpStack v4 envelopes, 2 % of the devices
left out of the registry) with raw-format frames, stored readings, frame-counter
regressions, implausible times, malformed envelopes and frames and the hostile
envelopes of tests/test_hostile.py mixed in, cut into batches of random sizes over
three raw partitions."""

from __future__ import annotations

import json
import random
from typing import Any

import ingest_reference as ref
import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
import tidstream
from flowkit import FPORT, MODELS, chirpstack, eui, ttn, write_registry
from test_hostile import CASES
from tidstream.config import Subjects
from tidstream.flow.guards import FcntGuard, TimeWindow
from tidstream.flow.ingest import Ingestor
from tidstream.nats.jetstream import RawBatch, RawMsg
from tidstream.registry import load_registry, validate_registry
from tidstream.simulate import Territory, simulate

STORED_NS = 1_796_083_200 * 10**9  # 2026-12-01: the broker's store time of every message
T0_MS = 1_795_536_000_000  # 2026-11-24T16:00Z


def _registry(tmp_path: Any) -> Any:
    terr = Territory.pma(scale=0.04, seed=5)
    reg = terr.registry
    n_unknown = max(1, len(reg) // 50)
    pma = tmp_path / "pma.csv"
    pacsv.write_csv(reg.slice(0, len(reg) - n_unknown), pma)
    own = write_registry(tmp_path / "own.csv", 5)  # eui(0..4): one device per model of flowkit
    t = pa.concat_tables([load_registry(pma).table, load_registry(own).table])
    return validate_registry(t), terr


def _fleet(terr: Any, n: int) -> list[tuple[str, str, bytes, dict[str, str] | None]]:
    """``n`` simulated uplinks ``(format token, device, data, headers)`` in time order."""
    sim = simulate(terr, days=3, start="2026-11-20", interval_h=0.5, seed=5, envelopes="mixed", truth=False)
    out: list[tuple[str, str, bytes, dict[str, str] | None]] = []
    for b in sim.uplinks():
        for dev, fmt, env in zip(
            b.column("device_id").to_pylist(),
            b.column("format").to_pylist(),
            b.column("envelope").to_pylist(),
        ):
            out.append(("ttn" if fmt.startswith("ttn") else "chirpstack", dev, env, None))
            if len(out) == n:
                return out
    return out


def _extras() -> list[tuple[str, str, bytes, dict[str, str] | None]]:
    """Every other path of the step, on flowkit's five devices."""
    x: list[tuple[str, str, bytes, dict[str, str] | None]] = []
    for k in range(60):
        i = k % 5
        model = MODELS[i]
        frame = tidstream.encode(
            model,
            distance_mm=300 + 17 * k,
            battery_pct=70,
            temperature_c=9,
            measured_at_ms=T0_MS + k * 60_000,
        )
        dev = eui(i)
        x.append(("ttn", dev, ttn(dev, FPORT[model], 100 + k, frame), None))
        x.append(("chirpstack", dev, chirpstack(dev, FPORT[model], 200 + k, frame), None))
        hdr = {"Tid-FPort": str(FPORT[model]), "Tid-FCnt": str(300 + k)}
        if k % 3 == 0:
            hdr["Tid-Received-At"] = f"2026-11-24T16:{k % 60:02d}:01.123457Z"
        x.append(("raw", dev if k % 2 else dev.upper(), frame, hdr))
    good = tidstream.encode("tid1", distance_mm=500, measured_at_ms=T0_MS)
    d0 = eui(0)
    stored = [
        tidstream.encode(
            "tid1", distance_mm=640, measured_at_ms=T0_MS + 5000, stored=[(T0_MS - 3_600_000, 610.0)]
        ),
        tidstream.encode(
            "tid1",
            distance_mm=650,
            measured_at_ms=T0_MS + 9000,
            stored=[(T0_MS - 7_200_000, None), (T0_MS - 60_000, 700.5)],
        ),
        tidstream.encode(
            "tid1", distance_mm=660, measured_at_ms=T0_MS + 9500, stored=[(T0_MS - 120 * 60_000, 610.0)]
        ),
        # a stored reading from before 2015 (the frame's own time is fine)
        tidstream.encode(
            "tid1", distance_mm=670, measured_at_ms=1_420_071_000_000, stored=[(1_420_069_200_000, 620.0)]
        ),
    ]
    for s_i, f in enumerate(stored):
        x.append(("ttn", d0, ttn(d0, 1, 500 + s_i, f), None))
        x.append(("raw", d0, f, {"Tid-FPort": "1", "Tid-FCnt": str(600 + s_i)}))
    x += [
        # raw-format headers: bad, out of range, odd but valid, time zones, no headers
        ("raw", d0, good, {"Tid-FPort": "x"}),
        ("raw", d0, good, {"Tid-FPort": "300"}),
        ("raw", d0, good, {"Tid-FCnt": "-1"}),
        ("raw", d0, good, {"Tid-FCnt": str(2**32)}),
        ("raw", d0, good, {"Tid-FPort": " 1 ", "Tid-FCnt": "7_0_0"}),
        ("raw", d0, good, {"Tid-FPort": "1", "Tid-Received-At": "2014-06-01T00:00:00Z"}),
        ("raw", d0, good, {"Tid-FPort": "1", "Tid-Received-At": "2026-11-24T16:00:00"}),
        ("raw", d0, good, {"Tid-FPort": "1", "Tid-Received-At": "2026-11-24T18:00:00+02:00"}),
        ("raw", d0, good, {"Tid-FPort": "1", "Tid-Received-At": "not a time"}),
        ("raw", d0, good, {"Tid-FPort": "1", "Tid-Received-At": "2030-01-01T00:00:00Z"}),
        ("raw", d0, good, {"Tid-FPort": "1", "Tid-Received-At": "1500-01-01T00:00:00Z"}),  # < int64 ns
        ("raw", d0, good, None),
        ("raw", "0123456789abcdeZ", good, {"Tid-FPort": "1"}),
        ("raw", "a84041", good, {"Tid-FPort": "1"}),
        ("raw", "bin-é'\"\t", good, {"Tid-FPort": "1"}),
        ("raw", eui(77_777), good, {"Tid-FPort": "1"}),  # unknown device
        # subjects that route nowhere
        ("lora", d0, good, None),
        ("ttn", f"{d0}.extra", ttn(d0, 1, 1, good), None),
        # frames the codec refuses, envelopes that do not parse
        ("ttn", d0, ttn(d0, 1, 900, good[:5]), None),
        ("ttn", eui(1), ttn(eui(1), 99, 901, b"\x01\x02"), None),
        ("chirpstack", d0, b'{"deviceInfo":', None),
        ("ttn", d0, b"\x00", None),
        # device clocks: far ahead, before 2015, beyond int64 ns
        (
            "ttn",
            d0,
            ttn(d0, 1, 902, tidstream.encode("tid1", distance_mm=5, measured_at_ms=4_000_000_000_000)),
            None,
        ),
        (
            "ttn",
            d0,
            ttn(d0, 1, 903, tidstream.encode("tid1", distance_mm=5, measured_at_ms=946_684_800_000)),
            None,
        ),
        # replays: the same frame counter again, older ones, a reset
        (
            "ttn",
            eui(2),
            ttn(eui(2), FPORT[MODELS[2]], 100, tidstream.encode(MODELS[2], distance_mm=900)),
            None,
        ),
        ("ttn", eui(2), ttn(eui(2), FPORT[MODELS[2]], 3, tidstream.encode(MODELS[2], distance_mm=900)), None),
        (
            "ttn",
            eui(2),
            ttn(eui(2), FPORT[MODELS[2]], 90, tidstream.encode(MODELS[2], distance_mm=900)),
            None,
        ),
        ("ttn", d0, ttn(d0, 1, 2, good), None),
    ]
    x += [("ttn", d0, data, None) for data, _ in CASES.values()]
    # one frame per remaining dead-letter reason (every error kind of the envelopes and
    # codecs): frames each model's codec refuses, envelopes that parse but are no uplink
    bad_frames = [
        (0, 1, "010080b4056bbc025e0046ff00b5f8"),  # crc_mismatch
        (0, 1, "f3cb4d764dc7072051159a0f89f2c6dacae3"),  # unsupported_version
        (0, 1, "010080b4056bbc025a0046ff00b3d076"),  # length_mismatch
        (0, 1, "010080b4056bbc025a0046ffbccb"),  # invalid_value
        (0, 1, ""),  # empty_payload
        (1, 85, "fe1ef200b19028e2f887fb918e9302c79f3bccaca263f4c4d908e248cf"),  # unknown_record
        (2, 212, "5aed5566519d44872564642abba76fe262fe4552cb19001202cb8c"),  # unknown_fport
        (4, 3, "7f" + "00" * 16),  # bad_header
    ]
    for k, (i, fport, hex_) in enumerate(bad_frames):
        x.append(("ttn", eui(i), ttn(eui(i), fport, 950 + k, bytes.fromhex(hex_)), None))
        x.append(("chirpstack", eui(i), chirpstack(eui(i), fport, 970 + k, bytes.fromhex(hex_)), None))
    ids = {"device_id": "bin-0", "dev_eui": d0.upper()}
    at = "2026-11-20T08:00:00Z"
    x += [
        (
            "ttn",
            d0,
            orjson.dumps({"end_device_ids": {"device_id": "x"}, "uplink_message": {"f_port": 1}}),
            None,
        ),
        (
            "ttn",
            d0,
            orjson.dumps(
                {
                    "end_device_ids": ids,
                    "received_at": at,
                    "uplink_message": {"f_port": 1, "f_cnt": 990, "frm_payload": "!!!"},
                }
            ),
            None,
        ),
        ("ttn", d0, orjson.dumps({"end_device_ids": ids, "received_at": at, "join_accept": {}}), None),
        (
            "ttn",
            d0,
            orjson.dumps(
                {"end_device_ids": ids, "received_at": at, "uplink_message": {"f_port": 1, "f_cnt": 991}}
            ),
            None,
        ),
    ]
    return x


def _messages(terr: Any, n_fleet: int, seed: int) -> list[RawMsg]:
    rnd = random.Random(seed)
    fleet = _fleet(terr, n_fleet)
    extras = _extras()
    # extras at random places, and some fleet uplinks delivered again later (replays)
    items = list(fleet)
    for e in extras:
        items.insert(rnd.randrange(len(items) + 1), e)
    for _ in range(40):
        items.insert(rnd.randrange(len(items) // 2, len(items) + 1), fleet[rnd.randrange(len(fleet) // 2)])
    msgs = []
    for seq, (token, dev, data, headers) in enumerate(items, start=1):
        part = str(sum(dev.encode()) % 3)
        msgs.append(RawMsg(part, seq, f"tid.raw.{part}.{token}.{dev}", data, STORED_NS + seq * 1000, headers))
    return msgs


def _batches(msgs: list[RawMsg], seed: int) -> list[list[RawMsg]]:
    rnd = random.Random(seed)
    out, i = [], 0
    while i < len(msgs):
        k = rnd.choice((1, 2, 7, 50, 200, 500))
        out.append(msgs[i : i + k])
        i += k
    return out


def _outputs(items: list[tuple[str, Any]]) -> list[tuple[str, list[Any]]]:
    return [(part, pb.messages()) for part, pb in items]


@pytest.mark.parametrize(
    ("window", "seeded"),
    [(TimeWindow(), False), (TimeWindow(future_ns=0), True)],
    ids=["default-window", "no-future-check-restarted-guard"],
)
def test_kernel_output_is_the_python_steps_byte_for_byte(tmp_path, window, seeded):
    reg, terr = _registry(tmp_path)
    msgs = _messages(terr, 2500, seed=11)
    # a guard seeded as after a restart: a remembered counter per device, some raw_seq
    # after these messages (their frames are the flow's own replay: not checked again)
    last = {eui(1): (250, 10**9), eui(3): (5, 3)} if seeded else {}
    new = Ingestor(reg, Subjects(), "TID_RAW", 65536, fcnt_guard=FcntGuard(dict(last)), time_window=window)
    old = ref.Ingestor(
        reg, Subjects(), "TID_RAW", 65536, fcnt_guard=ref.FcntGuard(dict(last)), time_window=window
    )
    n_out = stored = 0
    for batch in _batches(msgs, seed=12):
        want = _outputs(old._step(batch))
        got = _outputs(new._step(batch))
        assert got == want
        n_out += sum(len(m) for _, m in got)
        stored += sum(
            1 for _, m in got for _s, _d, mid, _h in m if mid.startswith("r:") and not mid.endswith(":0")
        )
    assert new.stats.frames_in == old.stats.frames_in == len(msgs)
    assert new.stats.readings_out == old.stats.readings_out
    assert dict(new.stats.dead_letters) == dict(old.stats.dead_letters)
    assert new.fcnt.last == old.fcnt.last
    # the input did reach every path: every dead-letter reason the step can give (the
    # step's own and every error kind of the envelopes and codecs, but two the step never
    # gives, in the reference as here: `vendor_error` is the per-frame vendor decoder's,
    # `decode_vendor`, the batch decoders report a Milesight error record as
    # `unknown_record`; an uplink without `frm_payload` reaches the codec as an empty
    # payload, `empty_payload`, not `missing_payload`)
    dl = old.stats.dead_letters
    reasons = {"unknown_device", "fcnt_regression", "implausible_time", "unknown_format", "oversized"}
    never = {"vendor_error", "missing_payload"}
    for reason in reasons | set(tidstream._core.error_kinds()) - never:
        assert dl[reason] > 0, reason
    assert old.stats.readings_out > 2000 and stored >= 3
    assert n_out == old.stats.readings_out + sum(dl.values())
    assert new.batches([]) == [] and old.batches([]) == []


def test_stored_readings_follow_their_frame_in_both(tmp_path):
    """A frame with stored readings: its reading then the stored ones (ids ``r:<seq>:<n>``),
    the partition's readings decoded before it first; the same from the reference."""
    reg = load_registry(write_registry(tmp_path / "r.csv", 5))
    d0 = eui(0)
    f = tidstream.encode(
        "tid1",
        distance_mm=650,
        measured_at_ms=T0_MS,
        stored=[(T0_MS - 7_200_000, None), (T0_MS - 60_000, 700.0)],
    )
    plain = tidstream.encode("tid1", distance_mm=500, measured_at_ms=T0_MS - 10)
    msgs = [
        RawMsg("0", 1, f"tid.raw.0.ttn.{d0}", ttn(d0, 1, 1, plain), STORED_NS, None),
        RawMsg("0", 2, f"tid.raw.0.raw.{d0}", f, STORED_NS, {"Tid-FPort": "1", "Tid-FCnt": "2"}),
        RawMsg("0", 3, f"tid.raw.0.ttn.{d0}", ttn(d0, 1, 3, plain), STORED_NS, None),
    ]
    w = TimeWindow(future_ns=0)  # flowkit's envelopes are received before the frames' times
    new = Ingestor(reg, Subjects(), "TID_RAW", time_window=w)
    old = ref.Ingestor(reg, Subjects(), "TID_RAW", time_window=w)
    got = new(msgs)
    # frames in format order (TTN's, then raw's), the stored readings right after their frame
    assert [p.msg_id for _, p in got] == ["r:1:0", "r:3:0", "r:2:0", "r:2:1", "r:2:2"]
    assert [(part, tuple(p)) for part, p in got] == [(part, tuple(p)) for part, p in old(msgs)]
    stored = json.loads(got[3][1].data)
    assert stored["stored"] is True and stored["distance_mm"] is None and stored["fill_ratio"] is None
    assert stored["measured_at"] == "2026-11-24T14:00:00.000000Z"
    assert stored["reading_id"] == "r:2:1" and stored["raw_seq"] == 2
    last = json.loads(got[4][1].data)
    assert last["distance_mm"] == 700.0 and last["measured_at"] == "2026-11-24T15:59:00.000000Z"
    assert last["fill_ratio"] == pytest.approx((250 + 1500 - 700.0) / 1500)


def _raw_batch(part: str, msgs: list[RawMsg]) -> RawBatch:
    """``msgs`` as the Rust consumer hands them over, with one row more than handed over,
    as when a replay window cuts a consumer batch."""
    return RawBatch.of_msgs(part, msgs, len(msgs) - 1)


def test_columnar_items_give_the_same_output(tmp_path):
    """The Rust source's columnar items (:class:`RawBatch`, read in Rust) give what the
    same messages as :class:`RawMsg` tuples give, and what the reference gives."""
    reg, terr = _registry(tmp_path)
    msgs = _messages(terr, 1500, seed=21)
    w = TimeWindow()
    col = Ingestor(reg, Subjects(), "TID_RAW", 65536, time_window=w)
    tup = Ingestor(reg, Subjects(), "TID_RAW", 65536, time_window=w)
    old = ref.Ingestor(reg, Subjects(), "TID_RAW", 65536, time_window=w)
    for batch in _batches(msgs, seed=22):
        items = []  # a few consumer batches per step call, one partition each
        for part in sorted({m.part for m in batch}):
            mine = [m for m in batch if m.part == part]
            items.append(_raw_batch(part, [*mine, mine[-1]]))
        in_order = [m for rb in items for m in rb.msgs()]
        assert [tuple(m) for m in in_order] == [
            tuple(m) for p in sorted({m.part for m in batch}) for m in batch if m.part == p
        ]
        want = _outputs(old._step(in_order))
        assert _outputs(tup._step(in_order)) == want
        assert _outputs(col._step(items)) == want
    assert col.stats.frames_in == old.stats.frames_in == len(msgs)
    assert dict(col.stats.dead_letters) == dict(old.stats.dead_letters)
    assert col.stats.readings_out == old.stats.readings_out
    assert col.fcnt.last == old.fcnt.last
    assert old.stats.dead_letters["wrong_type"] > 0 and old.stats.dead_letters["implausible_time"] > 0
    # both kinds in one step call (two sources): as messages, in order
    a, b = _raw_batch("0", msgs[:40]), _raw_batch("1", msgs[40:90])
    flat = [*a.msgs(), *b.msgs()]
    for mixed in ([a, *b.msgs()], [*a.msgs(), b]):
        fresh = Ingestor(reg, Subjects(), "TID_RAW", 65536, time_window=w)
        want = _outputs(ref.Ingestor(reg, Subjects(), "TID_RAW", 65536, time_window=w)._step(flat))
        assert _outputs(fresh._step(mixed)) == want
