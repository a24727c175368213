"""The ingest hot path's building blocks: `BatchPublisher` (whole-batch acked JetStream
publishing on one reply inbox) against a real nats-server, the shared per-process NATS
connection, and `_core.json_rows` (reading JSON written in Rust) against orjson."""

from __future__ import annotations

import asyncio
import math

import nats
import numpy as np
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from nats.js.api import StreamConfig
from tidstream import _core
from tidstream.config import NatsSettings
from tidstream.exceptions import ConnectorError
from tidstream.nats.batch import BatchPublisher
from tidstream.nats.connect import SharedConnection
from tidstream.nats.jetstream import JetStreamSink, Publish


async def _stream(url: str, name: str, subjects: list[str]) -> None:
    nc = await nats.connect(url)
    try:
        await nc.jetstream().add_stream(StreamConfig(name=name, subjects=subjects, duplicate_window=600))
    finally:
        await nc.close()


async def _messages(url: str, stream: str) -> list[tuple[str, bytes, str | None]]:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        n = (await js.stream_info(stream)).state.messages
        sub = await js.subscribe(">", stream=stream, ordered_consumer=True)
        out = []
        for _ in range(n):
            m = await sub.next_msg(timeout=5)
            out.append((m.subject, m.data, (m.headers or {}).get("Nats-Msg-Id")))
        return out
    finally:
        await nc.close()


@pytest.mark.nats
def test_batch_publisher_acks_dedupes_and_reports_failures(nats_server) -> None:
    url = nats_server.url
    asyncio.run(_stream(url, "OUT", ["out.>"]))
    items = [
        Publish(f"out.{i % 7}", orjson.dumps({"i": i}), f"id:{i}", {"Tid-N": str(i)} if i % 2 else None)
        for i in range(1500)
    ]

    async def go() -> tuple:
        nc = await nats.connect(url)
        try:
            pub = BatchPublisher(nc)
            await pub.start()
            first = await pub.publish(items, timeout=30)
            again = await pub.publish(items[:400], timeout=30)  # same ids: all duplicates
            # No stream captures "nowhere.*": JetStream never acks; the server answers
            # "no responders" (503) to the reply inbox at once.
            lost = [Publish("nowhere.a", b"x", "n:1"), items[0], Publish("nowhere.b", b"y", "n:2")]
            mixed = await pub.publish(lost, timeout=10)
            await pub.stop()
            return first, again, mixed
        finally:
            await nc.close()

    first, again, mixed = asyncio.run(go())
    assert first.failed == [] and first.duplicates == 0
    assert again.failed == [] and again.duplicates == 400
    assert mixed.failed == [0, 2] and mixed.duplicates == 1
    assert "503" in mixed.errors[0]
    stored = asyncio.run(_messages(url, "OUT"))
    assert len(stored) == 1500
    assert sorted(orjson.loads(d)["i"] for _, d, _ in stored) == list(range(1500))
    assert {s for s, _, _ in stored} == {f"out.{k}" for k in range(7)}
    assert all(mid == f"id:{orjson.loads(d)['i']}" for _, d, mid in stored)


@pytest.mark.nats
@pytest.mark.parametrize("data_path", ["python", "rust"])
def test_sink_raises_after_retries_and_rejects_bad_subjects(nats_server, data_path) -> None:
    cfg = NatsSettings(url=nats_server.url, data_path=data_path)
    asyncio.run(_stream(nats_server.url, "OUT", ["out.>"]))
    part = JetStreamSink(cfg, ["0"], ack_timeout=2.0, retries=1).build_part("s", "0", None)
    try:
        part.write_batch([Publish("out.a", b"1", "a:1"), Publish("out.b", b"2", "a:2")])
        assert part.published == 2 and part.duplicates == 0
        part.write_batch([Publish("out.a", b"1", "a:1")])
        assert part.duplicates == 1
        with pytest.raises(ConnectorError, match="1 of 1 messages not acknowledged"):
            part.write_batch([Publish("nowhere.x", b"1", "z:1")])
        with pytest.raises(ConnectorError, match="cannot publish to subject"):
            part.write_batch([Publish("out.has space", b"1", "z:2")])
        # The connection survives a refused batch.
        part.write_batch([Publish("out.c", b"3", "a:3")])
        assert part.published == 4
    finally:
        part.close()
    assert len(asyncio.run(_messages(nats_server.url, "OUT"))) == 3


@pytest.mark.nats
@pytest.mark.parametrize("data_path", ["python", "rust"])
def test_pipelined_sink_confirms_at_snapshot_and_raises_one_write_later(nats_server, data_path) -> None:
    """``pipeline=True`` (the ingest flow's sink): ``write_batch`` returns with the write in
    flight; ``snapshot()`` returns only when every write is stored, in write order; a
    failed write raises from the next ``write_batch`` (or ``snapshot``/``close``)."""
    cfg = NatsSettings(url=nats_server.url, data_path=data_path)
    asyncio.run(_stream(nats_server.url, "PIPE", ["pipe.>"]))
    part = JetStreamSink(cfg, ["0"], ack_timeout=2.0, retries=0, pipeline=True).build_part("s", "0", None)
    try:
        for k in range(20):
            part.write_batch(
                [Publish(f"pipe.x.{k % 3}", f"{k}-{j}".encode(), f"p:{k}:{j}") for j in range(50)]
            )
        part.snapshot()
        assert part.published == 1000
        got = asyncio.run(_messages(nats_server.url, "PIPE"))
        assert [d for _, d, _ in got] == [f"{k}-{j}".encode() for k in range(20) for j in range(50)]
        part.write_batch([Publish("nowhere.x", b"1", "z:1")])  # returns: the failure is in flight
        with pytest.raises(ConnectorError, match="1 of 1 messages not acknowledged"):
            part.write_batch([Publish("pipe.x.0", b"after", "p:after")])
        # The write that raised was never sent; the next one goes through.
        part.write_batch([Publish("pipe.x.0", b"next", "p:next")])
        part.snapshot()
        assert part.published == 1001
        part.write_batch([Publish("nowhere.y", b"1", "z:2")])
        with pytest.raises(ConnectorError, match="not acknowledged"):
            part.snapshot()
    finally:
        part.close()
    assert [d for _, d, _ in asyncio.run(_messages(nats_server.url, "PIPE"))][-1] == b"next"


@pytest.mark.nats
def test_shared_connections_are_reference_counted_on_one_loop(nats_server) -> None:
    cfg = NatsSettings(url=nats_server.url)
    a = SharedConnection.acquire(cfg, "sink")
    b = SharedConnection.acquire(cfg, "sink")
    assert a is b and a.users == 2
    # Another channel (a source partition): its own socket, the same loop thread.
    src = SharedConnection.acquire(cfg, "source-RAW-0")
    assert src is not a and src.nc is not a.nc and src.loop is a.loop
    other = SharedConnection.acquire(NatsSettings(url=nats_server.url, name="other"), "sink")
    assert other is not a and other.loop is a.loop
    a.release()
    assert not a.nc.is_closed and a.users == 1
    b.release()
    assert a.nc.is_closed and not src.nc.is_closed and a.loop.loop.is_running()
    src.release()
    other.release()
    assert src.nc.is_closed and other.nc.is_closed and not a.loop.loop.is_running()
    c = SharedConnection.acquire(cfg, "sink")  # a fresh connection and loop after the last release
    assert c is not a and c.nc.is_connected and c.loop is not a.loop
    c.release()


# -- json_rows --------------------------------------------------------------------------

_floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1e-5, 9.99e-6, 1e16, 9_999_999_999_999_998.0, 3.0, -87.5, 0.1]),
)
_texts = st.one_of(st.none(), st.text(max_size=12))


@given(
    rows=st.lists(
        st.tuples(
            _floats,
            st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)),
            st.one_of(st.none(), st.booleans()),
            st.integers(-(2**62), 2**62),
            _texts,
        ),
        max_size=30,
    )
)
def test_json_rows_match_orjson(rows) -> None:
    n = len(rows)
    f = np.array([r[0] for r in rows], dtype=np.float64)
    ints = np.array([r[1] or 0 for r in rows], dtype=np.int64)
    valid = np.array([r[1] is not None for r in rows], dtype=np.bool_)
    b = np.array([-1 if r[2] is None else int(r[2]) for r in rows], dtype=np.int8)
    ts = np.array([r[3] for r in rows], dtype=np.int64)
    table = _core.JsonStrings([r[4] for r in rows])
    got = _core.json_rows(
        n,
        [
            ("id", "intstr", ts, ("r:", ":0")),
            ("f", "f64", f, None),
            ("i", "i64", ints, valid),
            ("b", "bool", b, None),
            ("t", "ts_ns", ts, None),
            ("s", "dict", np.arange(n, dtype=np.int64), table),
            ("s2", "dict", np.full(n, -1, dtype=np.int64), ["unused"]),
            ("lit", "literal", "false", None),
        ],
    )
    assert len(got) == n
    for k, (fv, iv, bv, tv, sv) in enumerate(rows):
        want = {
            "id": f"r:{tv}:0",
            "f": fv if math.isfinite(fv) else None,
            "i": iv,
            "b": bv,
            "t": np.datetime_as_string(np.datetime64(tv, "ns").astype("datetime64[us]"), unit="us") + "Z",
            "s": sv,
            "s2": None,
            "lit": False,
        }
        assert got[k] == orjson.dumps(want)


def test_json_rows_rejects_bad_columns() -> None:
    with pytest.raises(ValueError, match="fewer values than rows"):
        _core.json_rows(3, [("x", "f64", np.zeros(2), None)])
    with pytest.raises(ValueError, match="unknown kind"):
        _core.json_rows(1, [("x", "f32", np.zeros(1), None)])
    with pytest.raises(TypeError):
        _core.json_rows(1, [("x", "f64", np.zeros(1, dtype=np.int64), None)])
    assert _core.json_rows(0, []) == []


def test_retry_keeps_order_and_skips_superseded_kv_puts() -> None:
    """A failed KV put whose key got a later acknowledged value in the same attempt is not
    retried (it would roll the key back); stream messages and unsuperseded puts are."""
    from tidstream.nats.jetstream import Publish, _retry_list

    sent = [
        Publish("$KV.tid_twin.a", b"1", "t:a:1", None),  # 0 failed, superseded by 2
        Publish("tid.alerts.full.x.a", b"x", "a:1", None),  # 1 failed: stream, retried
        Publish("$KV.tid_twin.a", b"2", "t:a:2", None),  # 2 acked
        Publish("$KV.tid_twin.b", b"1", "t:b:1", None),  # 3 failed, 4 failed too: both retried
        Publish("$KV.tid_twin.b", b"2", "t:b:2", None),  # 4
        Publish("$KV.tid_twin.c", b"1", "t:c:1", None),  # 5 acked
        Publish("$KV.tid_twin.c", b"2", "t:c:2", None),  # 6 failed after the acked one: retried
    ]
    got = _retry_list(sent, [6, 0, 1, 3, 4])
    assert [p.msg_id for p in got] == ["a:1", "t:b:1", "t:b:2", "t:c:2"]


# -- PubBatch and atomic batches ---------------------------------------------------------


async def _stream_cfg(url: str, cfg: StreamConfig) -> None:
    nc = await nats.connect(url)
    try:
        await nc.jetstream().add_stream(cfg)
    finally:
        await nc.close()


def test_json_messages_payloads_are_json_rows_with_subjects_and_ids() -> None:
    seq = np.array([10, 11, 12], dtype=np.int64)
    reg = np.array([1, 0, 1], dtype=np.int64)
    dist = np.array([1.5, np.nan, 3.0])
    cols = [
        ("reading_id", "intstr", seq, ("r:", ":0")),
        ("device_id", "dict", reg, _core.JsonStrings(["a", "b"])),
        ("distance_mm", "f64", dist, None),
    ]
    subjects = _core.JsonStrings(["t.readings.1.a", "t.readings.2.b"])
    pb = _core.json_messages(3, cols, [("dict", reg, subjects)], ["r:", ("int", seq), ":0"])
    assert len(pb) == 3
    assert [pb.data(i) for i in range(3)] == _core.json_rows(3, cols)
    assert [pb.subject(i) for i in range(3)] == ["t.readings.2.b", "t.readings.1.a", "t.readings.2.b"]
    assert [pb.msg_id(i) for i in range(3)] == ["r:10:0", "r:11:0", "r:12:0"]
    out = _core.PubBatch()
    out.push("t.dlq.x", b"{}", "d:1", {"Tid-Reason": "x\r\ny"})
    out.extend(pb, np.array([2, 0], dtype=np.int64))
    assert out.messages() == [
        ("t.dlq.x", b"{}", "d:1", {"Tid-Reason": "x  y"}),
        ("t.readings.2.b", pb.data(2), "r:12:0", None),
        ("t.readings.2.b", pb.data(0), "r:10:0", None),
    ]
    assert [g.tolist() for g in out.atomic_groups(1)] == [[0], [1], [2]]
    assert [g.tolist() for g in out.atomic_groups(1000)] == [[0], [1, 2]]
    with pytest.raises(ValueError, match="cannot publish to subject"):
        out.push("t.has space", b"", "z")
    with pytest.raises(ValueError, match="null"):
        _core.json_messages(3, cols, [("dict", np.array([0, -1, 0]), subjects)], ["x"])
    with pytest.raises(IndexError):
        out.subject(3)


@pytest.mark.nats
def test_atomic_batches_store_once_and_fall_back_per_message_on_known_ids(nats_server) -> None:
    url = nats_server.url
    asyncio.run(
        _stream_cfg(url, StreamConfig(name="R", subjects=["r.>"], duplicate_window=600, allow_atomic=True))
    )
    asyncio.run(
        _stream_cfg(url, StreamConfig(name="D", subjects=["d.>"], duplicate_window=600, allow_atomic=True))
    )
    asyncio.run(_stream(url, "PLAIN", ["p.>"]))  # allow_atomic off

    def batch(lo: int, hi: int, root: str = "") -> _core.PubBatch:
        pb = _core.PubBatch()
        for i in range(lo, hi):
            r = root or ("r" if i % 5 else "d")
            pb.push(f"{r}.x.{i % 3}", orjson.dumps({"i": i}), f"id:{i}", {"Tid-N": str(i)} if i % 2 else None)
        return pb

    async def go() -> tuple:
        nc = await nats.connect(url)
        try:
            pub = BatchPublisher(nc, atomic=True, atomic_max=300)
            await pub.start()
            first = await pub.publish(batch(0, 2500), timeout=30)
            # A replay across the boundary: ids 2000..2499 are stored, 2500..2999 are not.
            replay = await pub.publish(batch(2000, 3000), timeout=30)
            still_atomic = pub.atomic
            plain = await pub.publish(batch(0, 50, root="p"), timeout=30)
            await pub.stop()
            return first, replay, still_atomic, plain, pub.atomic
        finally:
            await nc.close()

    first, replay, still_atomic, plain, atomic_after = asyncio.run(go())
    assert first.failed == [] and first.duplicates == 0 and first.atomic == 2500
    # Groups (first two subject tokens, <= 300): r.x 800 messages -> 300 known ids, 300
    # mixed, 200 new; d.x 200 mixed. Batches holding a known id are refused whole and go
    # out per message (the known ids reported as duplicates); the new-only batch is atomic.
    assert replay.failed == [] and replay.duplicates == 500
    assert replay.atomic == 200 and still_atomic
    # a stream without allow_atomic: per message, and atomic batches turned off
    assert plain.failed == [] and plain.atomic == 0 and atomic_after is False
    r, d, p = (asyncio.run(_messages(url, s)) for s in ("R", "D", "PLAIN"))
    assert len(r) + len(d) == 3000 and len(p) == 50
    got = sorted(orjson.loads(x)["i"] for _, x, _ in r + d)
    assert got == list(range(3000))
    assert all(mid == f"id:{orjson.loads(x)['i']}" for _, x, mid in r + d + p)
    assert all(s.startswith("d.") == (orjson.loads(x)["i"] % 5 == 0) for s, x, _ in r + d)


async def _publish_plain(url: str, stream: str, subject: str, n: int, size: int = 0) -> None:
    pad = b" " * size
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        await js.add_stream(StreamConfig(name=stream, subjects=[subject.rsplit(".", 1)[0] + ".>"]))
        futs = [await js.publish_async(subject, b"%d" % i + pad) for i in range(n)]
        await asyncio.gather(*futs)
    finally:
        await nc.close()


@pytest.mark.nats
@pytest.mark.parametrize(("high_water", "size"), [(7, 0), (4_000, 1_000)])
def test_source_stop_at_end_delivers_the_whole_backlog(nats_server, high_water, size) -> None:
    """A stop-at-end partition over a backlog the server has already pushed to the client
    ends only after its last message: the consumer's ``num_pending == 0`` at start-up says
    nothing about messages still queued in the client (a run of the alerts flow used to
    stop before the tail of its backlog when the queue was briefly empty)."""
    from tidstream.nats.jetstream import JetStreamSource

    url = nats_server.url
    n = 3_000
    asyncio.run(_publish_plain(url, "SRC", "src.0.x", n, size))
    src = JetStreamSource(
        NatsSettings(url=url, data_path="python"),  # the nats-py partition's client-side queue
        "SRC",
        ["0"],
        "src.{}.>",
        batch_size=100,
        stop_at_end=True,
        high_water=high_water,
    )
    part = src.build_part("in", "0", None)
    got: list[int] = []
    try:
        while True:
            try:
                got += [m.seq for m in part.next_batch()]
            except StopIteration:
                break
    finally:
        part.close()
    assert got == list(range(1, n + 1))
    assert part.snapshot() == n
