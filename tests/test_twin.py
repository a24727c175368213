"""The alerts flow with the forecaster and the twin, as a real process against a real
nats-server: the exact alerts (overflow_predicted from the real forecaster), the KV
twin entries, the Parquet snapshot read back by DuckDB, and a SIGKILL mid-stream."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time

import nats
import orjson
import pytest
from flowkit import ROOT, flow_env, read_stream, start_flow
from test_flows import _count, init, wait
from tidstream.alerts import AlertThresholds
from tidstream.forecast import Forecaster
from tidstream.twin import TWIN_SCHEMA, read_snapshot
from twinkit import BY_KIND, dev, reference, script

pytestmark = pytest.mark.nats


def config(tmp_path) -> str:
    p = tmp_path / "tidstream.toml"
    lines = []
    for kind, o in BY_KIND.items():
        lines.append(f"[alerts.by_kind.{kind}]")
        lines += [f"{k} = {v}" for k, v in o.items()]
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(p)


async def publish_readings(url: str, rs: list[dict]) -> None:
    nc = await nats.connect(url)
    js = nc.jetstream()
    futs = [
        await js.publish_async(
            f"tid.readings.{r['commune_insee']}.{r['device_id']}",
            orjson.dumps(r),
            headers={"Nats-Msg-Id": r["reading_id"]},
        )
        for r in rs
    ]
    await asyncio.gather(*futs)
    await nc.close()


async def kv_entries(url: str) -> dict[str, dict]:
    """The twin bucket's current entries, read from its backing stream (last message per
    key; deletes and purges drop the key). Not ``kv.keys()``: nats-py decides "no more
    keys" from a consumer-info race and returned a short list about once in 300 calls
    here (it failed CI once as an empty twin)."""
    prefix = "$KV.tid_twin."
    out: dict[str, dict] = {}
    for m in await read_stream(url, "KV_tid_twin"):
        k = m.subject[len(prefix) :]
        if (m.headers or {}).get("KV-Operation") in ("DEL", "PURGE"):
            out.pop(k, None)
        else:
            out[k] = orjson.loads(m.data)
    return out


def alerts_of(url: str) -> list[dict]:
    return [orjson.loads(m.data) for m in asyncio.run(read_stream(url, "TID_ALERTS"))]


def key(a: dict) -> tuple:
    return (a["alert_id"], a["kind"], a["state"], a["device_id"], a["reading_id"], a["at"], a["value"])


def recovery_snapshots(rec) -> dict[tuple[str, str], object]:
    """(step id, key) -> the latest snapshot in a Bytewax recovery store."""
    import pickle
    import sqlite3

    out: dict[tuple[str, str], tuple[int, object]] = {}
    for db in sorted(rec.glob("part-*.sqlite3")):
        con = sqlite3.connect(db)
        for step, k, epoch, blob in con.execute(
            "select step_id, state_key, snap_epoch, ser_change from snaps"
        ):
            if blob is not None and epoch >= out.get((step, k), (-1, None))[0]:
                out[(step, k)] = (epoch, pickle.loads(blob))
        con.close()
    return {k: v for k, (_, v) in out.items()}


def per_device(alerts: list[dict]) -> dict[str, list[tuple]]:
    out: dict[str, list[tuple]] = {}
    for a in alerts:
        out.setdefault(a["device_id"], []).append(key(a))
    return out


def check_twin(url: str, snapshot, twins: dict[str, dict]) -> None:
    # KV: one entry per device, exactly the reference's last entry
    assert asyncio.run(kv_entries(url)) == twins
    # Parquet snapshot: one file, FIWARE names, read back by DuckDB
    import duckdb

    assert snapshot.exists() and not list(snapshot.parent.glob(".*tmp*"))
    rows = (
        duckdb.connect()
        .execute(
            "select deviceId, id, type, status, fillingLevel, activeAlerts, "
            "strftime(dateLastEmptying, '%Y-%m-%dT%H:%M:%S.%fZ'), binFullnessThreshold, "
            "forecastScored24h, forecastMae24h, location.coordinates "
            f"from read_parquet('{snapshot}') order by deviceId"
        )
        .fetchall()
    )
    want = [
        (
            e["deviceId"],
            e["id"],
            "WasteContainer",
            e["status"],
            e["fillingLevel"],
            e["activeAlerts"],
            e["dateLastEmptying"],
            e["binFullnessThreshold"],
            e["forecastScored24h"],
            e["forecastMae24h"],
            e["location"]["coordinates"],
        )
        for _, e in sorted(twins.items())
    ]
    assert rows == want
    table = read_snapshot(snapshot)
    assert table.schema.equals(TWIN_SCHEMA)
    assert table.column("nextActuationDeadline").to_pylist() == [
        None
        if e["nextActuationDeadline"] is None
        else __import__("datetime").datetime.fromisoformat(e["nextActuationDeadline"].replace("Z", "+00:00"))
        for _, e in sorted(twins.items())
    ]


def test_forecast_alerts_and_twin_through_the_flow(nats_server, tmp_path):
    url = nats_server.url
    init(url)
    rs = script(4, 96)
    asyncio.run(publish_readings(url, rs))
    snap = tmp_path / "twin" / "twin.parquet"
    env = flow_env(
        url, None, tmp_path, TIDSTREAM_CONFIG=config(tmp_path), TIDSTREAM_TWIN_SNAPSHOT_PATH=str(snap)
    )
    wait(start_flow("alerts", env, tmp_path / "rec-alerts"))

    want, twins = reference(rs, AlertThresholds(), BY_KIND)
    got = alerts_of(url)
    # exactly the reference's alerts, in order per device (devices publish on parallel lanes)
    assert per_device(got) == per_device(want)
    assert len(got) == len(want)
    # The scripted shape, independent of the forecaster's numbers: every container gets
    # exactly one overflow_predicted episode, raised before its emptying and resolved by
    # it; the park bins' threshold and lead time are their kind's.
    for i in range(4):
        mine = [(a["kind"], a["state"], a["reading_id"]) for a in got if a["device_id"] == dev(i)]
        ov = [m for m in mine if m[0] == "overflow_predicted"]
        emptied = [m for m in mine if m[0] == "emptied"]
        assert len(emptied) == 1 and [m[1] for m in ov] == ["raised", "resolved"], mine
        assert ov[1][2] == emptied[0][2]
        assert mine.index(ov[0]) < mine.index(emptied[0])
    raised = [a for a in got if a["kind"] == "overflow_predicted" and a["state"] == "raised"]
    for a in raised:
        assert a["threshold"] == (12.0 if a["container_kind"] == "park_bin" else 24.0)
        assert a["value"] <= a["threshold"]
    # Alert messages follow the published schema; twin entries too.
    aschema = json.loads((ROOT / "schemas" / "alert.schema.json").read_text())
    tschema = json.loads((ROOT / "schemas" / "twin.schema.json").read_text())
    import jsonschema

    for a in got:
        jsonschema.validate(a, aschema)
    for e in twins.values():
        jsonschema.validate(e, tschema)
        assert e["dateLastEmptying"] is not None and e["status"] == "ok"
        assert e["forecastScored24h"] > 0 and e["forecastMae24h"] is not None
    check_twin(url, snap, twins)


def test_alerts_flow_killed_mid_stream_loses_and_duplicates_nothing(nats_server, tmp_path):
    """SIGKILL while the flow runs with snapshots taken, more readings while it is down,
    restart: the alerts stream, KV and Parquet twin hold exactly the expected content.
    The first half of the stream is published before the kill and the second half after,
    so the kill is mid-stream whatever the machine's speed."""
    url = nats_server.url
    init(url)
    rs = script(30, 160)
    half = len(rs) // 2
    asyncio.run(publish_readings(url, rs[:half]))
    want, twins = reference(rs, AlertThresholds(), BY_KIND)
    want_first, _ = reference(rs[:half], AlertThresholds(), BY_KIND)
    snap = tmp_path / "twin" / "twin.parquet"
    env = flow_env(
        url,
        None,
        tmp_path,
        TIDSTREAM_CONFIG=config(tmp_path),
        TIDSTREAM_TWIN_SNAPSHOT_PATH=str(snap),
        TIDSTREAM_TWIN_SNAPSHOT_INTERVAL_S="0.5",
    )
    rec = tmp_path / "rec-alerts"
    proc = start_flow("alerts", env, rec, once=False)  # runs until killed

    def _snapshotted() -> bool:
        # Bytewax has committed a snapshot of both forecasters and of a source position
        try:
            snaps = recovery_snapshots(rec)
        except Exception:  # the store is being written
            return False
        return {k for (step, k) in snaps if ".forecast." in step} == {"park_bin", "glass_bank"} and any(
            step.endswith(".readings") for (step, _) in snaps
        )

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (
        asyncio.run(_count(url, "TID_ALERTS")) < len(want_first) // 2 or not _snapshotted()
    ):
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()[0].decode(errors="replace")[-2000:]
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    n_killed = asyncio.run(_count(url, "TID_ALERTS"))
    assert 0 < n_killed < len(want)
    # The recovery store holds the forecasters (Forecaster.to_bytes per kind) and a source
    # position inside the stream: the restart resumes mid-stream from the snapshots.
    snaps = recovery_snapshots(rec)
    forecasters = {k: v for (step, k), v in snaps.items() if ".forecast." in step}
    assert set(forecasters) == {"park_bin", "glass_bank"}
    assert all(1 <= len(Forecaster.from_bytes(b)) <= 15 for b in forecasters.values())
    position = [v for (step, k), v in snaps.items() if step.endswith(".readings")]
    assert len(position) == 1 and 0 < position[0] <= half
    asyncio.run(publish_readings(url, rs[half:]))
    wait(start_flow("alerts", env, rec))

    got = alerts_of(url)
    assert len(got) == len(want)
    assert sorted(key(a) for a in got) == sorted(key(a) for a in want)
    check_twin(url, snap, twins)


def test_alerts_flow_drains_a_backlog_bigger_than_the_default_source_buffer(nats_server, tmp_path):
    """30,000 readings waiting: more than the JetStream source's default buffering
    (5 x 4,000 messages), beyond which this slow consumer lost the stream's tail to
    nats-py's slow-consumer drop and waited for ever (this stream stalled at about
    21,600 readings before dataflows/alerts.py set a higher high water)."""
    url = nats_server.url
    init(url)
    rs = script(100, 300)
    asyncio.run(publish_readings(url, rs))
    env = flow_env(url, None, tmp_path, TIDSTREAM_TWIN_SNAPSHOT_PATH=str(tmp_path / "twin.parquet"))
    log = wait(start_flow("alerts", env, tmp_path / "rec-alerts"), timeout=240)
    last = {r["device_id"]: r["reading_id"] for r in rs}
    got = {d: e["lastReadingId"] for d, e in asyncio.run(kv_entries(url)).items()}
    assert got == last, log[-3000:]
    assert read_snapshot(tmp_path / "twin.parquet").column("lastReadingId").to_pylist() == [
        last[d] for d in sorted(last)
    ]
