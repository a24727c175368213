"""Faults with real parts: the NATS server (JetStream on disk) restarted in the middle of
a real ingest flow run. The flow must reconnect by itself and the readings stream must
hold exactly the expected set (no loss, no duplicate)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest
from flowkit import flow_env, publish, read_stream, scripted, start_flow, write_registry
from test_flows import _count, init, readings, wait
from tidstream.nats.server import EmbeddedServer

pytestmark = pytest.mark.nats

N_GOOD = 4000


def test_nats_server_restarted_mid_run_flow_resumes_and_loses_nothing(tmp_path):
    srv = EmbeddedServer(store_dir=tmp_path / "nats" / "jetstream").start()
    try:
        url = srv.url
        init(url)
        reg = write_registry(tmp_path / "registry.csv", 40)
        script = scripted(40, N_GOOD)
        asyncio.run(publish(url, script.uplinks))
        # Small batches so the run lasts long enough to be cut in the middle.
        env = flow_env(url, reg, tmp_path, TIDSTREAM_BATCH_SIZE="10")
        proc = start_flow("ingest", env, tmp_path / "rec-ingest")
        out_before = 0
        while proc.poll() is None:
            out_before = asyncio.run(_count(url, "TID_READINGS"))
            if out_before >= 300:
                break
            time.sleep(0.02)
        # The server goes away while the flow is running and readings are only partly out.
        assert proc.poll() is None, "the flow finished before the server could be stopped"
        assert 0 < out_before < N_GOOD
        srv.stop()  # SIGTERM; the store dir is kept (it was given)
        time.sleep(4)
        assert proc.poll() is None, "the flow ended while the server was down"
        srv.start()  # same port, same store dir
        text = wait(proc, timeout=120)  # it finishes by itself

        got = readings(url)
        dlq = asyncio.run(read_stream(url, "TID_DLQ"))
        ids = [r["reading_id"] for r in got]
        assert len(ids) == len(set(ids)) == script.expected_readings() == N_GOOD
        expected_seqs = {i + 1 for i, u in enumerate(script.uplinks) if u.expect[0] == "reading"}
        assert {r["raw_seq"] for r in got} == expected_seqs
        for r in got:
            assert script.uplinks[r["raw_seq"] - 1].expect == ("reading", r["distance_mm"])
        assert Counter(m.subject.split(".")[-1] for m in dlq) == Counter(script.expected_dlq())
        assert len(got) + len(dlq) == len(script.uplinks)
        # It went through a real outage: its connections saw the server go and come back.
        assert "NATS disconnected from" in text and "NATS reconnected to" in text, text[-2000:]
    finally:
        srv.stop()
