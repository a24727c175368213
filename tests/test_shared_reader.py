"""One Rust consumer per source worker over its raw partitions (docs/NATSIO.md, "One
consumer per worker"): the Rust data path's partitions of one source step share one
server-side ordered consumer (on the whole stream, no filter, when the worker has two
partitions or more), the messages split by partition in Rust, each partition resuming
after its own position. Real nats-server, the real source classes, a real two-process
ingest."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from typing import Any

import pytest
from flowkit import flow_env, publish, read_stream, scripted, start_flow, write_registry
from test_flows import init
from tidstream.config import NatsSettings
from tidstream.nats.connect import connect
from tidstream.nats.jetstream import JetStreamSource
from tidstream.nats.rustio import RustConsumer
from tidstream.nats.server import free_port

pytestmark = pytest.mark.nats

STREAM = "SHR"
PARTS = ["0", "1", "2", "3"]
TEMPLATE = "shr.raw.{}.>"
BATCH = 40


def _publish(url: str, n: int, salt: int = 0) -> dict[str, list[int]]:
    """``n`` messages on ``shr.raw.<p>.fmt.dev<k>``, the partitions unevenly mixed
    (partition 0 gets about half); partition -> its stream sequences, in order."""

    async def go() -> dict[str, list[int]]:
        nc = await connect(NatsSettings(url=url))
        try:
            js = nc.jetstream()
            await js.add_stream(name=STREAM, subjects=["shr.raw.>"])
            out: dict[str, list[int]] = {p: [] for p in PARTS}
            for i in range(n):
                p = "0" if i % 2 else PARTS[(i // 2 + salt) % 4]
                ack = await js.publish(f"shr.raw.{p}.fmt.dev{i % 7}", b"m%d" % i)
                out[p].append(ack.seq)
            return out
        finally:
            await nc.close()

    return asyncio.run(go())


def _consumers(url: str, stream: str = STREAM) -> dict[str, list[str]]:
    """Consumer name -> its filter subjects (sorted), from the server. An ordered consumer
    no longer read stays until its inactivity threshold (30 s): compare names."""

    async def go() -> dict[str, list[str]]:
        nc = await connect(NatsSettings(url=url))
        try:
            infos = await nc.jetstream().consumers_info(stream)
            return {
                i.name: sorted(i.config.filter_subjects or [i.config.filter_subject or ""]) for i in infos
            }
        finally:
            await nc.close()

    return asyncio.run(go())


def _new(before: dict[str, list[str]], now: dict[str, list[str]]) -> list[list[str]]:
    """The filters of the consumers in ``now`` not in ``before``, sorted."""
    return sorted(f for name, f in now.items() if name not in before)


def _source(url: str, stop_at_end: bool = True) -> JetStreamSource:
    return JetStreamSource(
        NatsSettings(url=url, data_path="rust"),
        STREAM,
        PARTS,
        TEMPLATE,
        batch_size=BATCH,
        stop_at_end=stop_at_end,
    )


def _drain(parts: dict[str, Any], got: dict[str, list[int]], rounds: int | None = None) -> None:
    """Poll like Bytewax (round robin) but unevenly: partition 3 once every 4 rounds.
    Until every partition has ended (stop at end), or ``rounds`` rounds. Checks that no
    partition's read-ahead grows past two batches."""
    live = dict(parts)
    r = 0
    while live and (rounds is None or r < rounds):
        for p, part in list(live.items()):
            if p == "3" and r % 4:
                continue
            try:
                got[p] += [m.seq for m in part.next_batch()]
            except StopIteration:
                del live[p]
            for q in parts.values():
                assert q._queued <= 2 * BATCH
        r += 1
        if rounds is None:
            assert r < 10_000, {p: len(v) for p, v in got.items()}
        time.sleep(0.001)


def _close(parts: dict[str, Any]) -> dict[str, int]:
    snaps = {p: part.snapshot() for p, part in parts.items()}
    for part in parts.values():
        part.close()
    return snaps


def test_partitions_resuming_at_different_positions_get_exactly_what_follows_each(nats_server):
    url = nats_server.url
    seqs = _publish(url, 2000)
    # Partition 0 far ahead, 1 without a snapshot, 2 at its very end, 3 a little in.
    resume = {"0": seqs["0"][800], "1": None, "2": seqs["2"][-1], "3": seqs["3"][10]}
    src = _source(url)
    parts = {p: src.build_part("in", p, resume[p]) for p in PARTS}
    got: dict[str, list[int]] = {p: [] for p in PARTS}
    _drain(parts, got, rounds=1)
    # One consumer for the four partitions, on the whole stream (no filter).
    assert list(_consumers(url).values()) == [[""]]
    _drain(parts, got)
    for p in PARTS:
        assert got[p] == [s for s in seqs[p] if s > (resume[p] or 0)], p
    snaps = _close(parts)
    # Every message of a partition up to its position was emitted: at least its last one.
    for p in PARTS:
        assert snaps[p] >= seqs[p][-1], (p, snaps)

    # Restart from the snapshots after more messages: exactly the new ones, none twice.
    more = _publish(url, 300, salt=1)
    parts = {p: src.build_part("in", p, snaps[p]) for p in PARTS}
    got = {p: [] for p in PARTS}
    _drain(parts, got)
    _close(parts)
    assert got == more


def test_shared_source_off_gives_one_filtered_consumer_per_partition(nats_server):
    """``[nats] shared_source = false`` (many processes): one consumer per partition, on
    its own filter, same messages."""
    url = nats_server.url
    seqs = _publish(url, 400)
    src = JetStreamSource(
        NatsSettings(url=url, data_path="rust", shared_source=False),
        STREAM,
        PARTS,
        TEMPLATE,
        batch_size=BATCH,
        stop_at_end=True,
    )
    parts = {p: src.build_part("in", p, None) for p in PARTS}
    got: dict[str, list[int]] = {p: [] for p in PARTS}
    _drain(parts, got, rounds=1)
    assert sorted(_consumers(url).values()) == [[TEMPLATE.format(p)] for p in PARTS]
    _drain(parts, got)
    _close(parts)
    assert got == seqs


def test_a_partition_built_after_the_first_batch_remakes_the_consumer_without_loss(nats_server):
    """Bytewax builds a worker's partitions before its first ``next_batch``; should one
    come later, the consumer is made again from the lowest position still needed and the
    partitions already reading drop what they had."""
    url = nats_server.url
    seqs = _publish(url, 600)
    c = RustConsumer(NatsSettings(url=url), STREAM, part_token=2)
    lanes = {p: c.add_lane(p, TEMPLATE.format(p), seqs[p][5] if p == "1" else 0) for p in ["0", "1"]}
    got: dict[str, list[int]] = {p: [] for p in PARTS}
    for p in ["0", "1"]:
        got[p] += c.next_batch(30, 1000, lanes[p]).seqs.tolist()
    # Without read_whole: one consumer over the lanes' filters.
    first = _consumers(url)
    assert list(first.values()) == [["shr.raw.0.>", "shr.raw.1.>"]]
    lanes["2"] = c.add_lane("2", TEMPLATE.format("2"), 0)
    while True:
        ends = []
        for p, lane in lanes.items():
            b = c.next_batch(30, 200, lane)
            got[p] += b.seqs.tolist()
            ends.append(b.at_end)
        if all(ends):
            break
    assert got == {"0": seqs["0"], "1": seqs["1"][6:], "2": seqs["2"], "3": []}
    assert _new(first, _consumers(url)) == [["shr.raw.0.>", "shr.raw.1.>", "shr.raw.2.>"]]


def test_one_process_then_two_each_with_one_consumer_resume_without_loss_or_repeat(nats_server):
    """A run on one process stopped part-way, then the same positions (the recovery
    store's snapshots) on two processes (two sources, two partitions each): every message
    exactly once overall, each process one consumer over its two partitions."""
    url = nats_server.url
    seqs = _publish(url, 1500)
    one = _source(url, stop_at_end=False)
    parts = {p: one.build_part("in", p, None) for p in PARTS}
    got: dict[str, list[int]] = {p: [] for p in PARTS}
    _drain(parts, got, rounds=6)
    assert 0 < sum(map(len, got.values())) < 1500
    snaps = _close(parts)
    before = _consumers(url)

    a, b = _source(url), _source(url)  # two processes: a source each
    halves = {"0": a, "2": a, "1": b, "3": b}
    parts = {p: halves[p].build_part("in", p, snaps[p]) for p in PARTS}
    _drain(parts, got, rounds=1)
    # One new consumer per process (on the whole stream), each reading its two partitions.
    assert _new(before, _consumers(url)) == [[""], [""]]
    assert [sorted(r.open.values()) for r in a._readers.values()] == [["0", "2"]]
    assert [sorted(r.open.values()) for r in b._readers.values()] == [["1", "3"]]
    _drain(parts, got)
    _close(parts)
    assert got == seqs


async def _reading_ids(url: str) -> list[str]:
    import orjson

    return [orjson.loads(m.data)["reading_id"] for m in await read_stream(url, "TID_READINGS")]


def test_two_ingest_processes_each_read_their_partitions_with_one_consumer(nats_server, tmp_path):
    url = nats_server.url
    init(url, partitions=4)
    reg = write_registry(tmp_path / "registry.csv", 30)
    asyncio.run(publish(url, scripted(30, 1200, with_bad=False).uplinks))
    env = flow_env(url, reg, tmp_path, TIDSTREAM_NATS_DATA_PATH="rust")
    addresses = f"127.0.0.1:{free_port()};127.0.0.1:{free_port()}"
    # Run for ever (not stop-at-end): the consumers stay while the processes live.
    procs = [
        start_flow(
            "ingest", env, tmp_path / f"rec-{i}", once=False, process_id=i, addresses=addresses, parts=1
        )
        for i in range(2)
    ]
    try:
        deadline = time.monotonic() + 90
        while len(asyncio.run(_reading_ids(url))) < 1200 and time.monotonic() < deadline:
            assert all(p.poll() is None for p in procs), [p.communicate()[0][-2000:] for p in procs]
            time.sleep(0.3)
        filters = list(_consumers(url, "TID_RAW").values())
    finally:
        for p in procs:
            os.kill(p.pid, signal.SIGTERM)
        outs = [p.communicate(timeout=60)[0].decode(errors="replace") for p in procs]
    ids = asyncio.run(_reading_ids(url))
    assert len(ids) == len(set(ids)) == 1200, outs[0][-2000:]
    # Two consumers (on the whole stream), one per process, each over two partitions;
    # together all four.
    assert filters == [[""], [""]], filters
    owned = [re.findall(r"one consumer for partitions ([0-9]+(?:,[0-9]+)*)", text) for text in outs]
    assert all(len(o) == 1 for o in owned), outs[0][-2000:]
    parts = [o[0].split(",") for o in owned]
    assert all(len(p) == 2 for p in parts) and sorted(parts[0] + parts[1]) == ["0", "1", "2", "3"], parts
