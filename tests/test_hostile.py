"""Hostile input: every case has a defined outcome (docs/SECURITY.md "Hostile input";
figures in docs/RELIABILITY.md). Unit level on the ingest step (the Rust envelope
scanner and codecs underneath are real), then the real ingest flow on a real server:
hostile device ids and subjects, replayed frames across a restart."""

from __future__ import annotations

import asyncio
import base64
import json

import jsonschema
import nats
import orjson
import pytest
import tidstream
from flowkit import MODELS, ROOT, eui, flow_env, read_stream, start_flow, ttn, write_registry
from hypothesis import given, settings
from hypothesis import strategies as st
from tidstream.config import Settings, StreamSettings, Subjects
from tidstream.flow.guards import FCNT_RESET_BELOW, FcntGuard, TimeWindow
from tidstream.flow.ingest import Ingestor
from tidstream.names import encode_token
from tidstream.nats.jetstream import RawMsg
from tidstream.registry import load_registry

DLQ_SCHEMA = json.loads((ROOT / "schemas" / "dead-letter.schema.json").read_text(encoding="utf-8"))
DEV = eui(0)  # tid1 in flowkit's registry
NOW_NS = 1_764_028_800 * 10**9  # 2025-11-25T00:00:00Z: the broker's store time in these tests
GOOD = tidstream.encode("tid1", distance_mm=500, measured_at_ms=1_764_000_000_000)


def env(fcnt: int = 7, received_at: str = "2025-11-24T08:00:00Z", **over: object) -> bytes:
    d = json.loads(ttn(DEV, 1, fcnt, GOOD))
    d["received_at"] = received_at
    for k, v in over.items():
        d["uplink_message"][k] = v
    return json.dumps(d).encode()


def replace_rssi(text: str) -> bytes:
    d = json.loads(env())
    d["uplink_message"]["rx_metadata"][0]["rssi"] = 12345
    return json.dumps(d).encode().replace(b"12345", text.encode())


#: name -> (envelope bytes, expected outcome: "reading" or the dead-letter reason)
CASES: dict[str, tuple[bytes, str]] = {
    "valid": (env(fcnt=1), "reading"),
    "oversized (65 kB + 1)": (env(fcnt=2)[:-1] + b',"pad":"' + b"x" * 65536 + b'"}', "oversized"),
    "big but under the limit (60 kB)": (env(fcnt=3)[:-1] + b',"pad":"' + b"x" * 60_000 + b'"}', "reading"),
    "nested 100 000 deep (over the size limit)": (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "oversized"),
    "nested 10 000 deep (under the size limit)": (b'{"a":' * 10_000 + b"1" + b"}" * 10_000, "invalid_json"),
    "nested 300 deep in an ignored field": (
        b'{"x":' + b"[" * 300 + b"]" * 300 + b"," + env(fcnt=4)[1:],
        "invalid_json",
    ),
    "nested 200 deep in an ignored field": (
        b'{"x":' + b"[" * 200 + b"]" * 200 + b"," + env(fcnt=5)[1:],
        "reading",
    ),
    "invalid UTF-8 in a string": (env(fcnt=6).replace(b'"gw1"', b'"g\xff\xfe1"'), "invalid_json"),
    "invalid UTF-8 outside strings": (b"\xff" + env(fcnt=6), "invalid_json"),
    "NaN literal": (replace_rssi("NaN"), "invalid_json"),
    "Infinity literal": (replace_rssi("Infinity"), "invalid_json"),
    "-Infinity literal": (replace_rssi("-Infinity"), "invalid_json"),
    "number overflowing to inf (1e999)": (replace_rssi("1e999"), "wrong_type"),
    "frame counter over 32 bits": (env(f_cnt=2**40), "wrong_type"),
    "negative frame counter": (env(f_cnt=-1), "wrong_type"),
    "received 1600-01-01 (outside i64 ns)": (env(received_at="1600-01-01T00:00:00Z"), "invalid_timestamp"),
    "received 1700-01-01": (env(fcnt=8, received_at="1700-01-01T00:00:00Z"), "implausible_time"),
    "received 2014-12-31": (env(fcnt=8, received_at="2014-12-31T23:59:59Z"), "implausible_time"),
    "received 2 days after stored": (env(fcnt=8, received_at="2025-11-27T00:00:00Z"), "implausible_time"),
    "received 2200-01-01": (env(fcnt=8, received_at="2200-01-01T00:00:00Z"), "implausible_time"),
    "received 9999-12-31 (outside i64 ns)": (env(received_at="9999-12-31T23:59:59Z"), "invalid_timestamp"),
    "device clock far ahead": (
        env(fcnt=9).replace(
            base64.b64encode(GOOD),
            base64.b64encode(tidstream.encode("tid1", distance_mm=5, measured_at_ms=4_000_000_000_000)),
        ),
        "implausible_time",
    ),
    "device clock reset to 2000": (
        env(fcnt=10).replace(
            base64.b64encode(GOOD),
            base64.b64encode(tidstream.encode("tid1", distance_mm=5, measured_at_ms=946_684_800_000)),
        ),
        "implausible_time",
    ),
    "replayed frame (same fcnt as the valid one)": (env(fcnt=1), "fcnt_regression"),
    "frame counter jumps ahead to 20": (env(fcnt=20), "reading"),
    "older frame after fcnt 20": (env(fcnt=19), "fcnt_regression"),
    "counter reset (rejoin) to 0": (env(fcnt=0), "reading"),
    "NUL byte": (b"\x00", "invalid_json"),
    "empty message": (b"", "invalid_json"),
    "hostile DevEUI in the envelope": (
        env().replace(DEV.upper().encode(), b"A840.100000*>001"),
        "invalid_dev_eui",
    ),
    "second end_device_ids with a path": (
        env(fcnt=21)[:-1] + b',"end_device_ids":{"dev_eui":"../../etc/passwd"}}',
        "invalid_dev_eui",
    ),
}


@pytest.fixture
def ingestor(tmp_path):
    reg = load_registry(write_registry(tmp_path / "registry.csv", 5))
    return Ingestor(reg, Subjects(), "TID_RAW", 65536)


def _run(ing: Ingestor, datas: list[bytes], subject: str = f"tid.raw.0.ttn.{DEV}") -> dict[int, list]:
    msgs = [RawMsg("0", i + 1, subject, d, NOW_NS, None) for i, d in enumerate(datas)]
    by: dict[int, list] = {}
    for _part, p in ing(msgs):
        seq = int(p.msg_id.split(":")[1] if p.msg_id.startswith("r:") else p.msg_id.split(":")[-1])
        by.setdefault(seq, []).append(p)
    return by


def test_every_hostile_envelope_has_its_defined_outcome(ingestor):
    names = list(CASES)
    by = _run(ingestor, [CASES[n][0] for n in names])
    got = {}
    for i, n in enumerate(names):
        outs = by[i + 1]  # every message produced something: nothing is lost
        if outs[0].subject.startswith("tid.readings."):
            assert all(o.subject == f"tid.readings.25031.{DEV}" for o in outs)
            got[n] = "reading"
        else:
            assert len(outs) == 1
            body = orjson.loads(outs[0].data)
            assert body["original_base64"] == base64.b64encode(CASES[n][0]).decode()
            assert outs[0].subject == f"tid.dlq.{body['reason']}"
            jsonschema.validate(body, DLQ_SCHEMA)
            got[n] = body["reason"]
    assert got == {n: c[1] for n, c in CASES.items()}
    assert ingestor.stats.frames_in == len(CASES)


def test_raw_format_hostile_device_tokens(ingestor):
    """Device ids taken from the subject (format ``raw``) are checked: each hostile one
    (escaped by the subject builder, so it stays one token) is a dead letter."""
    hostile = ["a.b", "*", ">", "../..", "a b", "a\x00b", "a840410000000000\n", "é"]
    subjects = [Subjects().uplink("raw", h).replace("tid.up.", "tid.raw.0.") for h in hostile]
    for s, h in zip(subjects, hostile):
        assert len(s.split(".")) == 5, (s, h)
        by = _run(ingestor, [GOOD], subject=s)
        [p] = by[1]
        assert p.subject == "tid.dlq.invalid_dev_eui"


def test_fcnt_guard_rules():
    g = FcntGuard()
    assert g.check("d", 5, 10) is None
    assert "not above" in (g.check("d", 5, 11) or "")  # duplicate
    assert "not above" in (g.check("d", 4, 12) or "")  # backwards
    assert g.check("d", 6, 13) is None
    assert g.check("e", 0, 14) is None  # other devices are independent
    assert g.check("d", 6, 13) is None  # raw seq already seen: the flow's own replay
    assert g.check("d", None, 15) is None  # no counter (raw uplink without header)
    g.check("d", 100, 16)
    assert g.check("d", FCNT_RESET_BELOW - 1, 17) is None  # rejoin / reboot
    assert g.last["d"] == (FCNT_RESET_BELOW - 1, 17)


def test_time_window_can_be_turned_off_for_simulated_futures():
    w = TimeWindow(future_ns=0)
    assert w.problem(NOW_NS + 10**18, NOW_NS) is None
    assert "before 2015" in (w.problem(0, NOW_NS) or "")


@pytest.mark.nats
def test_real_flow_hostile_subjects_and_replays_across_restart(nats_server, tmp_path):
    url = nats_server.url
    from tidstream.nats.connect import connect
    from tidstream.nats.setup import init_jetstream

    s = Settings(streams=StreamSettings(partitions=2))

    async def init() -> None:
        nc = await connect(s.nats.__class__(url=url))
        await init_jetstream(nc.jetstream(), s)
        await nc.close()

    asyncio.run(init())
    reg = write_registry(tmp_path / "registry.csv", 5)

    async def pub(items: list[tuple[str, bytes]]) -> list[str]:
        nc = await nats.connect(url)
        js = nc.jetstream()
        refused = []
        for subject, data in items:
            try:
                await js.publish(subject, data, timeout=5)
            except nats.js.errors.NoStreamResponseError:
                refused.append(subject)
        await nc.close()
        return refused

    subj = Subjects()
    first = [(subj.uplink("ttn", DEV), env(fcnt=k, received_at="2026-11-20T00:00:00Z")) for k in range(1, 6)]
    hostile = [(subj.uplink("raw", h), GOOD) for h in ("a.b", "*", ">", "../x", "a b")]
    # Unescaped, a '.' in a device id makes a subject no stream captures: refused.
    raw_hostile = [("tid.up.raw.a.b", GOOD), ("tid.up.raw.a840410000000000.x", GOOD)]
    assert asyncio.run(pub(first + hostile + raw_hostile)) == [s for s, _ in raw_hostile]

    env_ = flow_env(url, reg, tmp_path, partitions=2)
    p = start_flow("ingest", env_, tmp_path / "rec")
    out, _ = p.communicate(timeout=120)
    assert p.returncode == 0, out.decode(errors="replace")[-3000:]

    # Restart (new process, new recovery store: the counters come from the readings).
    replay = [
        (subj.uplink("ttn", DEV), env(fcnt=3, received_at="2026-11-20T00:00:00Z")),  # replayed
        (subj.uplink("ttn", DEV), env(fcnt=6, received_at="2026-11-20T00:00:00Z")),  # new
    ]
    assert asyncio.run(pub(replay)) == []
    p = start_flow("ingest", env_, tmp_path / "rec2")
    out, _ = p.communicate(timeout=120)
    assert p.returncode == 0, out.decode(errors="replace")[-3000:]

    readings = [orjson.loads(m.data) for m in asyncio.run(read_stream(url, "TID_READINGS"))]
    dlq = [orjson.loads(m.data) for m in asyncio.run(read_stream(url, "TID_DLQ"))]
    assert sorted(r["fcnt"] for r in readings) == [1, 2, 3, 4, 5, 6]
    assert all(r["device_id"] == DEV for r in readings)
    reasons = sorted(d["reason"] for d in dlq)
    assert reasons == ["fcnt_regression"] + ["invalid_dev_eui"] * 5
    [reg_dl] = [d for d in dlq if d["reason"] == "fcnt_regression"]
    assert reg_dl["raw_seq"] == len(first) + len(hostile) + 1
    # 12 uplinks stored, 12 outcomes: nothing lost.
    assert len(readings) + len(dlq) == len(first) + len(hostile) + len(replay)


@pytest.mark.nats
def test_export_quarantines_forged_readings_and_goes_on(nats_server, tmp_path):
    """Messages on the readings subjects that are not readings (only a client with
    publish rights there can make them) are quarantined in ``_rejected/`` with their
    bytes; the valid readings are exported; no file lands outside the export folder."""
    from tidstream.flow.export import read_dataset
    from tidstream.nats.connect import connect
    from tidstream.nats.setup import init_jetstream

    url = nats_server.url
    s = Settings(streams=StreamSettings(partitions=2))

    async def init() -> None:
        nc = await connect(s.nats.__class__(url=url))
        await init_jetstream(nc.jetstream(), s)
        await nc.close()

    asyncio.run(init())
    reg = load_registry(write_registry(tmp_path / "registry.csv", 5))
    ing = Ingestor(reg, Subjects(), "TID_RAW", 65536)
    valid = [
        p
        for _, p in ing(
            [RawMsg("0", k, f"tid.raw.0.ttn.{DEV}", env(fcnt=k), NOW_NS, None) for k in (1, 2, 3)]
        )
    ]
    assert len(valid) == 3 and all(p.subject.startswith("tid.readings.") for p in valid)
    good = orjson.loads(valid[0].data)
    forged = [
        b"{}",
        b"not json at all",
        b"[1, 2, 3]",
        b'{"a":' * 5000 + b"1" + b"}" * 5000,
        orjson.dumps({**good, "measured_at": "../../../etc/passwd"}),
        orjson.dumps({**good, "measured_at": "2026-13-45T00:00:00Z"}),
        orjson.dumps({**good, "lat": "north"}),
        orjson.dumps({**good, "raw_seq": -1}),
        orjson.dumps({**good, "device_id": None}),
    ]

    async def pub() -> None:
        nc = await nats.connect(url)
        js = nc.jetstream()
        for p in valid[:2]:
            await js.publish(p.subject, p.data)
        for k, data in enumerate(forged):
            await js.publish(f"tid.readings.25031.{DEV}", data, headers={"Nats-Msg-Id": f"forged-{k}"})
        await js.publish(valid[2].subject, valid[2].data)
        await nc.close()

    asyncio.run(pub())
    env_ = flow_env(url, tmp_path / "registry.csv", tmp_path, partitions=2)
    p = start_flow("export", env_, tmp_path / "rec-export")
    out, _ = p.communicate(timeout=120)
    assert p.returncode == 0, out.decode(errors="replace")[:3000]
    table = read_dataset(tmp_path / "export")
    assert sorted(table.column("reading_id").to_pylist()) == sorted(
        orjson.loads(v.data)["reading_id"] for v in valid
    )
    [rej] = list((tmp_path / "export" / "_rejected").glob("*.jsonl"))
    lines = [orjson.loads(x) for x in rej.read_bytes().splitlines()]
    assert sorted(base64.b64decode(x["original_base64"]) for x in lines) == sorted(forged)
    assert all(x["reason"] for x in lines)
    # Every file the export wrote is inside its folder, and readable by the analysts' tools.
    root = (tmp_path / "export").resolve()
    assert all(root in f.resolve().parents for f in root.rglob("*"))
    assert not (tmp_path / "etc").exists()
    import pandas as pd

    assert len(pd.read_parquet(tmp_path / "export")) == 3


def test_raw_uplink_hostile_headers(ingestor):
    """Headers of ``raw`` uplinks: times far out, non-integer or out-of-range numbers."""
    cases = [
        ({"Tid-FPort": "1", "Tid-Received-At": "9999-12-31T23:59:59Z"}, "implausible_time"),
        ({"Tid-FPort": "1", "Tid-Received-At": "0001-01-01T00:00:00Z"}, "implausible_time"),
        ({"Tid-FPort": "1", "Tid-Received-At": "not a time"}, "reading"),  # falls back to the store time
        ({"Tid-FPort": "1", "Tid-FCnt": "abc"}, "wrong_type"),
        ({"Tid-FPort": "1e3"}, "wrong_type"),
        ({"Tid-FPort": "999"}, "wrong_type"),  # used to raise out of the dataflow
        ({"Tid-FPort": "-1"}, "wrong_type"),
        ({"Tid-FPort": "1", "Tid-FCnt": str(2**40)}, "wrong_type"),
        ({"Tid-FPort": "1", "Tid-FCnt": "5"}, "reading"),
        ({"Tid-FPort": "1", "Tid-FCnt": "5"}, "fcnt_regression"),
    ]
    msgs = [RawMsg("0", i + 1, f"tid.raw.0.raw.{DEV}", GOOD, NOW_NS, h) for i, (h, _) in enumerate(cases)]
    by: dict[int, str] = {}
    for _part, p in ingestor(msgs):
        seq = int(p.msg_id.split(":")[1] if p.msg_id.startswith("r:") else p.msg_id.split(":")[-1])
        by[seq] = "reading" if p.subject.startswith("tid.readings.") else orjson.loads(p.data)["reason"]
    assert [by[i + 1] for i in range(len(cases))] == [c[1] for c in cases]


_BASES = [GOOD, env(fcnt=0), env(fcnt=7), env(fcnt=42), ttn(DEV, 1, 3, GOOD), ttn(eui(1), 85, 9, GOOD)]
_FORMATS = st.sampled_from(["ttn", "chirpstack", "raw", "mqtt", ""])
_HEADER_VALUES = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.text(max_size=12),
    st.sampled_from(["2026-11-20T00:00:00Z", "9999-12-31T23:59:59Z", "0001-01-01T00:00:00+00:00", "NaN"]),
)


EARLY_STORE_NS = 1_420_070_400 * 10**9  # broker clock: 2015 ...
LATE_STORE_NS = 4_102_444_800 * 10**9  # ... 2100
_HEADERS = st.one_of(
    st.none(), st.dictionaries(st.sampled_from(["Tid-FPort", "Tid-FCnt", "Tid-Received-At"]), _HEADER_VALUES)
)
_DEVS = st.one_of(st.just(DEV), st.just(eui(1)), st.text(max_size=20))
_FLIPS = st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)), max_size=4)
_ONE = st.tuples(
    _FORMATS,
    _DEVS,
    st.one_of(st.binary(max_size=300), st.sampled_from(_BASES)),
    _FLIPS,
    st.integers(0, 1 << 16),  # truncation point (modulo the length + 1)
    _HEADERS,
    st.integers(EARLY_STORE_NS, LATE_STORE_NS),
    st.booleans(),
)


@st.composite
def _hostile_msgs(draw: st.DrawFn) -> list[RawMsg]:
    msgs = []
    for seq, (fmt, dev, base, flips, cut, headers, stored, plain) in enumerate(
        draw(st.lists(_ONE, min_size=1, max_size=12)), start=1
    ):
        data = bytearray(base)
        for pos, byte in flips:  # flip bytes, then maybe truncate
            if data:
                data[pos % len(data)] = byte
        data = data[: cut % (len(data) + 1)] if cut % 3 == 0 else data
        subject = f"tid.raw.{seq % 2}.{fmt}.{dev}" if plain else f"tid.raw.0.raw.{encode_token(dev)}"
        msgs.append(RawMsg(str(seq % 2), seq, subject, bytes(data), stored, headers))
    return msgs


@settings(deadline=None)  # examples: the profile (100; HYPOTHESIS_PROFILE=ci-long: 20,000)
@given(_hostile_msgs())
def test_ingest_never_raises_and_accounts_for_every_message(tmp_path_factory, msgs):
    """Random and mutated messages, subjects and headers: the ingest step never raises
    and every message ends as readings or as exactly one dead letter (never both).
    ``HYPOTHESIS_PROFILE=ci-long`` runs 20,000 examples (docs/RELIABILITY.md)."""
    global _REG
    if _REG is None:
        _REG = load_registry(write_registry(tmp_path_factory.mktemp("reg") / "registry.csv", 5))
    ing = Ingestor(_REG, Subjects(), "TID_RAW", 65536)
    readings: dict[int, int] = {}
    dead: dict[int, int] = {}
    for _part, p in ing(msgs):
        if p.msg_id.startswith("r:"):
            seq = int(p.msg_id.split(":")[1])
            readings[seq] = readings.get(seq, 0) + 1
            assert p.subject.count(".") == 3 and p.subject.startswith("tid.readings.")
        else:
            seq = int(p.msg_id.split(":")[-1])
            dead[seq] = dead.get(seq, 0) + 1
            assert p.subject.count(".") == 2 and p.subject.startswith("tid.dlq.")
    seqs = {m.seq for m in msgs}
    assert set(readings) | set(dead) == seqs
    assert not set(readings) & set(dead)
    assert all(n == 1 for n in dead.values())


_REG = None


def test_batches_give_one_pub_batch_per_partition_in_frame_order(tmp_path):
    """The live step's shape: one (partition, PubBatch) per raw partition of the batch,
    each holding that partition's readings (frame order, i.e. per device) and dead
    letters; the same messages as calling the ingestor."""
    ingestor = Ingestor(
        load_registry(write_registry(tmp_path / "registry.csv", 15)), Subjects(), "TID_RAW", 65536
    )
    devs = [eui(k * len(MODELS)) for k in range(3)]  # all tid1, as DEV
    msgs = []
    for i in range(12):
        k = i % 3
        d = json.loads(ttn(devs[k], 1, 10 + i, GOOD))
        d["received_at"] = "2025-11-24T08:00:00Z"  # before NOW_NS, as env() does
        data = json.dumps(d).encode() if i != 7 else b"{not json"
        msgs.append(RawMsg(str(k % 2), i + 1, f"tid.raw.{k % 2}.ttn.{devs[k]}", data, NOW_NS, None))
    out = ingestor.batches(msgs)
    assert sorted(p for p, _ in out) == ["0", "1"]
    for part, pb in out:
        mine = [m for m in msgs if m.part == part]
        got = pb.messages()
        assert len(got) == len(mine)  # one reading or one dead letter per frame here
        readings = [(s, mid) for s, _, mid, _ in got if s.startswith("tid.readings.")]
        seqs = [int(mid.split(":")[1]) for _, mid in readings]
        assert seqs == sorted(seqs)  # frame order
        for s, mid in readings:
            m = msgs[int(mid.split(":")[1]) - 1]
            assert s.endswith("." + m.subject.rsplit(".", 1)[1])  # the frame's device
    dead = [(s, h) for _, pb in out for s, _, _, h in pb.messages() if s.startswith("tid.dlq.")]
    assert len(dead) == 1 and dead[0][1]["Tid-Raw-Seq"] == "8" and dead[0][1]["Tid-Reason"] == dead[0][0][8:]
    flat = [(p, (s, d, mid, h)) for p, pb in ingestor.batches(msgs) for s, d, mid, h in pb.messages()]
    assert [(p, tuple(x)) for p, x in ingestor(msgs)] == flat
