"""The ingest and export dataflows as real processes against a real nats-server:
exact accounting, dead letters, crash and restart, two-process clusters, Parquet read
back by pyarrow, DuckDB, Polars and pandas."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import time
from collections import Counter

import orjson
import pyarrow as pa
import pytest
from flowkit import flow_env, publish, read_stream, scripted, start_flow, write_registry
from tidstream.config import Settings
from tidstream.flow.export import read_dataset
from tidstream.nats.server import free_port
from tidstream.nats.setup import init_jetstream

pytestmark = pytest.mark.nats


def init(url: str, partitions: int = 4) -> None:
    import nats

    async def go() -> None:
        s = Settings()
        s.nats.url = url
        s.streams.partitions = partitions
        nc = await nats.connect(url)
        await init_jetstream(nc.jetstream(), s)
        await nc.close()

    asyncio.run(go())


def wait(proc, timeout: float = 120) -> str:
    out, _ = proc.communicate(timeout=timeout)
    text = out.decode(errors="replace")
    assert proc.returncode == 0, text[-3000:]
    return text


#: The flows' data path (``[nats] data_path``): the key flow tests run on both clients.
DATA_PATHS = ["python", "rust"]


@pytest.fixture(params=DATA_PATHS)
def data_path(request) -> str:
    return request.param


def path_env(data_path: str) -> dict[str, str]:
    """The environment choosing ``data_path`` for a flow process."""
    return {"TIDSTREAM_NATS_DATA_PATH": data_path}


def check_path(text: str, data_path: str) -> None:
    """The flow's log shows its source partitions ran on ``data_path``."""
    assert ("Rust data path" in text) == (data_path == "rust"), text[-2000:]


def readings(url: str) -> list[dict]:
    return [orjson.loads(m.data) for m in asyncio.run(read_stream(url, "TID_READINGS"))]


def test_ingest_accounts_for_every_frame_and_export_writes_parquet(nats_server, tmp_path, data_path):
    url = nats_server.url
    init(url)
    reg = write_registry(tmp_path / "registry.csv", 40)
    script = scripted(40, 600)
    asyncio.run(publish(url, script.uplinks))
    env = flow_env(url, reg, tmp_path, **path_env(data_path))
    check_path(wait(start_flow("ingest", env, tmp_path / "rec-ingest")), data_path)

    got = readings(url)
    dlq = asyncio.run(read_stream(url, "TID_DLQ"))
    # Frames in = readings out (one per frame here) + dead letters, exactly.
    assert len(got) == script.expected_readings()
    assert len(got) + len(dlq) == len(script.uplinks)
    # Every reading's values match its frame (raw seq n is the n-th published uplink).
    for r in got:
        up = script.uplinks[r["raw_seq"] - 1]
        assert up.expect == ("reading", r["distance_mm"]), r
        assert r["fill_ratio"] == pytest.approx((250 + 1500 - r["distance_mm"]) / 1500)
    assert len({r["reading_id"] for r in got}) == len(got)
    # Messages follow the published JSON Schemas.
    import json

    import jsonschema
    from flowkit import ROOT

    rs = json.loads((ROOT / "schemas" / "reading.schema.json").read_text())
    ds = json.loads((ROOT / "schemas" / "dead-letter.schema.json").read_text())
    for r in got[:50]:
        jsonschema.validate(r, rs)
    # Dead letters: the right reason, and the original bytes.
    reasons = Counter(m.subject.split(".")[-1] for m in dlq)
    assert reasons == Counter(script.expected_dlq())
    for m in dlq:
        body = orjson.loads(m.data)
        up = script.uplinks[body["raw_seq"] - 1]
        assert base64.b64decode(body["original_base64"]) == up.data
        assert body["reason"] == up.expect[1] == m.headers["Tid-Reason"]
        assert m.headers["Tid-Raw-Seq"] == str(body["raw_seq"])  # the sink's headers
        assert body["headers"] == (up.headers or None)  # the source's headers, carried
        jsonschema.validate(body, ds)

    wait(start_flow("export", env, tmp_path / "rec-export"))
    table = read_dataset(tmp_path / "export")
    assert table.num_rows == len(got)
    assert sorted(table.column("reading_id").to_pylist()) == sorted(r["reading_id"] for r in got)
    files = sorted((tmp_path / "export").glob("date=*/*.parquet"))
    assert files and all(f.name.startswith("readings-0000000") for f in files)
    assert not list((tmp_path / "export").rglob(".*tmp*"))
    meta = pa.parquet.read_metadata(files[0]).metadata
    assert meta[b"tidstream.source_stream"] == b"TID_READINGS" and b"tidstream.version" in meta
    field = pa.parquet.read_schema(files[0]).field("distance_mm")
    assert field.metadata[b"unit"] == b"mm"

    # The analysts' tools read the dataset as-is.
    import duckdb
    import pandas as pd
    import polars as pl

    glob = str(tmp_path / "export" / "**" / "*.parquet")
    con = duckdb.connect()
    n_duck = con.execute(f"select count(*) from read_parquet('{glob}', hive_partitioning=true)").fetchall()[
        0
    ][0]
    assert n_duck == len(got)
    assert pl.scan_parquet(glob, hive_partitioning=True).select(pl.len()).collect().item() == len(got)
    assert len(pd.read_parquet(tmp_path / "export")) == len(got)


def test_ingest_killed_and_restarted_loses_and_duplicates_nothing(nats_server, tmp_path, data_path):
    url = nats_server.url
    init(url)
    reg = write_registry(tmp_path / "registry.csv", 50)
    script = scripted(50, 8000, with_bad=False)
    asyncio.run(publish(url, script.uplinks))
    env = flow_env(url, reg, tmp_path, **path_env(data_path))
    rec = tmp_path / "rec-ingest"
    for _ in range(2):  # kill it twice mid-run
        proc = start_flow("ingest", env, rec)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            n = asyncio.run(_count(url, "TID_READINGS"))
            if n > 500 + _ * 2500:
                break
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate()
    text = wait(start_flow("ingest", env, rec))
    check_path(text, data_path)
    # the Rust sink publishes in fast-ingest batches (the default, [nats] fast_publish)
    assert ("fast-ingest batches" in text) == (data_path == "rust"), text[-2000:]
    got = readings(url)
    ids = [r["reading_id"] for r in got]
    assert len(ids) == len(set(ids)) == 8000
    assert {r["raw_seq"] for r in got} == set(range(1, 8001))

    # Export, killed once too: the Parquet dataset holds exactly the same set.
    rec_e = tmp_path / "rec-export"
    proc = start_flow("export", env, rec_e)
    time.sleep(2.5)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    wait(start_flow("export", env, rec_e))
    table = read_dataset(tmp_path / "export")
    assert sorted(table.column("reading_id").to_pylist()) == sorted(ids)


async def _count(url: str, stream: str) -> int:
    import nats

    nc = await nats.connect(url)
    try:
        return (await nc.jetstream().stream_info(stream)).state.messages
    finally:
        await nc.close()


def test_two_processes_share_the_partitions(nats_server, tmp_path, data_path):
    url = nats_server.url
    init(url, partitions=4)
    reg = write_registry(tmp_path / "registry.csv", 30)
    script = scripted(30, 1500, with_bad=False)
    asyncio.run(publish(url, script.uplinks))
    env = flow_env(url, reg, tmp_path, **path_env(data_path))
    addresses = f"127.0.0.1:{free_port()};127.0.0.1:{free_port()}"
    procs = [
        start_flow("ingest", env, tmp_path / f"rec-{i}", process_id=i, addresses=addresses, parts=1)
        for i in range(2)
    ]
    outs = [wait(p) for p in procs]
    for text in outs:
        check_path(text, data_path)
    got = readings(url)
    assert len(got) == len({r["reading_id"] for r in got}) == 1500, outs


def test_replay_rewrites_a_window_into_a_fresh_export(nats_server, tmp_path, data_path):
    url = nats_server.url
    init(url)
    reg = write_registry(tmp_path / "registry.csv", 20)
    first = scripted(20, 300, with_bad=False)
    asyncio.run(publish(url, first.uplinks))
    time.sleep(1.2)
    from datetime import datetime, timezone

    cut = datetime.now(timezone.utc).isoformat()
    time.sleep(1.2)
    asyncio.run(publish(url, scripted(20, 200, with_bad=True).uplinks))
    env = flow_env(
        url,
        reg,
        tmp_path,
        TIDSTREAM_REPLAY_TO=cut,
        TIDSTREAM_REPLAY_OUT=str(tmp_path / "replay"),
        **path_env(data_path),
    )
    env.pop("TIDSTREAM_REPLAY_FROM", None)
    for _ in range(2):  # a second replay of the same window rewrites the same files
        check_path(wait(start_flow("replay", env, tmp_path / f"rec-replay-{_}")), data_path)
    table = read_dataset(tmp_path / "replay")
    assert table.num_rows == 300
    assert sorted(set(table.column("raw_seq").to_pylist())) == list(range(1, 301))
    # The live streams were not touched.
    assert asyncio.run(_count(url, "TID_READINGS")) == 0


def test_alerts_flow_exact_alerts_and_restart(nats_server, tmp_path):
    """Scripted fills through ingest then alerts: one alert per episode; a second run
    from scratch (recovery lost) republishes the same ids, which JetStream drops."""
    url = nats_server.url
    init(url)
    reg = write_registry(tmp_path / "registry.csv", 1)  # one tid1 device
    import tidstream
    from flowkit import Uplink, eui

    fills = [0.3, 0.6, 0.95, 0.97, 0.7, 0.1, 0.5, 0.92]
    ups = []
    for k, f in enumerate(fills):
        frame = tidstream.encode(
            "tid1",
            distance_mm=250 + 1500 * (1 - f),
            battery_pct=80,
            measured_at_ms=1_763_600_000_000 + k * 3_600_000,
        )
        ups.append(Uplink(f"tid.up.raw.{eui(0)}", frame, {"Tid-FPort": "1"}))
    asyncio.run(publish(url, ups))
    env = flow_env(url, reg, tmp_path)
    wait(start_flow("ingest", env, tmp_path / "rec-ingest"))
    wait(start_flow("alerts", env, tmp_path / "rec-alerts"))
    got = [orjson.loads(m.data) for m in asyncio.run(read_stream(url, "TID_ALERTS"))]
    assert [(a["kind"], a["state"], a["reading_id"]) for a in got] == [
        ("full", "raised", "r:3:0"),  # 0.95 >= 0.9
        ("full", "resolved", "r:5:0"),  # 0.7 <= 0.75 (hysteresis: 0.97 did not re-raise)
        ("emptied", "event", "r:6:0"),  # 0.97 -> 0.1
        ("full", "raised", "r:8:0"),
    ]
    assert all(
        m.startswith("tid.alerts.") for m in [s.subject for s in asyncio.run(read_stream(url, "TID_ALERTS"))]
    )
    wait(start_flow("alerts", env, tmp_path / "rec-alerts-lost"))  # replay from scratch
    assert asyncio.run(_count(url, "TID_ALERTS")) == 4
