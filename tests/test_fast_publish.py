"""ADR-50 fast-ingest batches of the Rust publisher (``[nats] fast_publish``,
docs/NATSIO.md) against a real nats-server 2.15: every message confirmed, stored once
(``Nats-Msg-Id`` dedupe inside a batch and across batches), headers kept, a stream
without ``allow_batched`` published to per message with one warning, retries per
message, the sink partition and ``tidstream nats init``."""

from __future__ import annotations

import asyncio
import logging

import numpy as np
import pytest
from nats.js.api import StreamConfig
from tidstream._core import PubBatch
from tidstream.config import NatsSettings, Settings
from tidstream.nats.connect import connect
from tidstream.nats.jetstream import JetStreamSink, Publish
from tidstream.nats.rustio import RustPublisher
from tidstream.nats.setup import init_jetstream, stream_plan

pytestmark = pytest.mark.nats


def _streams(cfg: NatsSettings, *configs: StreamConfig) -> None:
    async def go() -> None:
        nc = await connect(cfg)
        try:
            for c in configs:
                await nc.jetstream().add_stream(c)
        finally:
            await nc.close()

    asyncio.run(go())


def _stored(cfg: NatsSettings, stream: str) -> list[tuple[str, bytes, str | None, str | None]]:
    """(subject, data, Nats-Msg-Id, Tid-K header) of every message of ``stream``, in order."""

    async def go() -> list[tuple[str, bytes, str | None, str | None]]:
        nc = await connect(cfg)
        try:
            js = nc.jetstream()
            st = (await js.stream_info(stream)).state
            out = []
            for seq in range(st.first_seq, st.last_seq + 1) if st.messages else []:
                m = await js.get_msg(stream, seq)
                h = m.headers or {}
                out.append((m.subject, m.data or b"", h.get("Nats-Msg-Id"), h.get("Tid-K")))
            return out
        finally:
            await nc.close()

    return asyncio.run(go())


def test_fast_batches_confirm_every_message_once_and_fall_back_per_stream(nats_server, caplog) -> None:
    cfg = NatsSettings(url=nats_server.url)
    _streams(
        cfg,
        StreamConfig(name="R", subjects=["r.>"], duplicate_window=600, allow_batched=True),
        StreamConfig(name="D", subjects=["d.>"], duplicate_window=600, allow_batched=True),
        StreamConfig(name="P", subjects=["p.>"], duplicate_window=600),  # no allow_batched
    )
    # flow 50: the server acks every 50 messages, so a 1,000-message batch waits on its
    # flow acks (two intervals may be outstanding) instead of going out in one go.
    pub = RustPublisher(cfg, 5.0, fast_flow=50)
    ids = [f"r-{i}" for i in range(2300)]
    ids[1500] = "r-1400"  # the same id twice inside one fast batch (the 2nd of 3)
    ids[2200] = "r-5"  # an id the first batch stored
    pb = PubBatch()
    want_r, want_d, seen = [], [], set()
    for i in range(2300):
        subject, data, hdr = f"r.x.{i % 5}", b"v%d" % i + bytes([i % 256]), {"Tid-K": str(i)}
        pb.push(subject, data, ids[i], hdr)
        if ids[i] not in seen:
            seen.add(ids[i])
            want_r.append((subject, data, ids[i], str(i)))
        if i % 77 == 0:
            pb.push(f"d.x.{i}", b"dead", f"d-{i}")
            want_d.append((f"d.x.{i}", b"dead", f"d-{i}", None))

    r = pub.publish(pb)
    assert r.ok and r.fast == len(pb) == 2300 + len(want_d)
    assert not r.duplicate.any()  # a fast batch's acks do not say which were duplicates
    assert _stored(cfg, "R") == want_r  # 2,298: both repeated ids dropped, order kept
    assert _stored(cfg, "D") == want_d

    # The whole write again (a replay after a crash): confirmed, nothing stored twice.
    r = pub.publish(pb)
    assert r.ok and r.fast == len(pb)
    assert len(_stored(cfg, "R")) == 2298 and len(_stored(cfg, "D")) == len(want_d)

    # A retry (rows given) goes per message: duplicates reported with their sequence
    # (row 0 is R's first message, row 1 D's first).
    r = pub.publish(pb, np.array([0, 1], dtype=np.int64))
    assert r.ok and r.fast == 0 and r.duplicate.tolist() == [True, True] and r.seqs.tolist() == [1, 1]

    # A stream without allow_batched: per message to it, one warning; the others fast.
    caplog.set_level(logging.WARNING, logger="tidstream.nats")
    mixed = PubBatch()
    for k in range(3):
        mixed.push("p.x", b"p%d" % k, f"p-{k}", None)
        mixed.push("r.new", b"n%d" % k, f"n-{k}", None)
    r = pub.publish(mixed)
    assert r.ok and r.fast == 3
    refusals = [m for m in caplog.messages if "refused fast-ingest" in m]
    assert len(refusals) == 1 and "p.x" in refusals[0] and "allow_batched" in refusals[0]
    assert [x[:3] for x in _stored(cfg, "P")] == [("p.x", b"p%d" % k, f"p-{k}") for k in range(3)]
    assert _stored(cfg, "R")[-3:] == [("r.new", b"n%d" % k, f"n-{k}", None) for k in range(3)]
    again = PubBatch()
    again.push("p.x", b"p0", "p-0", None)  # stored already: a known duplicate
    again.push("p.x", b"p9", "p-9", None)
    r = pub.publish(again)
    assert r.ok and r.fast == 0 and r.duplicate.tolist() == [True, False]
    assert len([m for m in caplog.messages if "refused fast-ingest" in m]) == 1  # remembered

    # No stream at all for a subject: those messages fail (the sink retries, then raises).
    lost = PubBatch()
    lost.push("nostream.x", b"?", "q-1", None)
    lost.push("r.ok", b"!", "q-2", None)
    r = pub.publish(lost)
    assert r.errors[0] is not None and r.errors[1] is None


def test_sink_and_nats_init_use_fast_batches(nats_server) -> None:
    s = Settings()
    s.nats.url = nats_server.url
    assert s.nats.fast_publish  # the default
    plan = {c.name: c for c in stream_plan(s).configs}
    st = s.streams
    assert all(plan[n].allow_batched for n in (st.readings, st.dlq, st.alerts))

    async def init() -> dict[str, str]:
        nc = await connect(s.nats)
        try:
            js = nc.jetstream()
            # an installation from before: the readings stream without allow_batched
            old = plan[st.readings]
            await js.add_stream(
                StreamConfig(name=old.name, subjects=old.subjects, duplicate_window=old.duplicate_window)
            )
            out = await init_jetstream(js, s)
            out["allow_batched"] = str((await js.stream_info(st.readings)).config.allow_batched)
            return out
        finally:
            await nc.close()

    done = asyncio.run(init())
    assert done[st.readings] == "updated" and done["allow_batched"] == "True"

    part = JetStreamSink(s.nats, ["0"], ack_timeout=5.0).build_part("sink", "0", None)
    try:
        batch = [Publish(f"tid.readings.1.dev{i}", b'{"i": %d}' % i, f"sink-fast:{i}") for i in range(120)]
        batch += [Publish("tid.dlq.unknown_device", b"x", "sink-fast:dlq")]
        part.write_batch(batch)
        part.write_batch(batch)  # again: confirmed, deduplicated by the server
        assert part.published == 242 and part.fast_published == 242
    finally:
        part.close()
    assert len(_stored(s.nats, st.readings)) == 120 and len(_stored(s.nats, st.dlq)) == 1
