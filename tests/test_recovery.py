"""Corrupt or missing recovery stores: a real ingest flow refuses to start with a clear
error naming the way out, never a silent fresh start; `tidstream recovery reset` is the
way out and, within the duplicate window, re-reading the raw stream duplicates nothing."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys

import pytest
from flowkit import flow_env, publish, read_stream, scripted, start_flow, write_registry
from test_flows import init, readings, wait
from tidstream.recovery import MANIFEST, check_recovery, init_recovery

pytestmark = pytest.mark.nats

FLOW = "tidstream-ingest"


def refused(proc: subprocess.Popen) -> str:
    out, _ = proc.communicate(timeout=120)
    text = out.decode(errors="replace")
    assert proc.returncode != 0, text[-2000:]
    # the error names the store, the flow and the documented way out
    assert "cannot be resumed from" in text and "tidstream recovery reset ingest --store" in text, text[
        -2000:
    ]
    assert "Recovery stores" in text
    return text


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tidstream.cli", *args], env=env, capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def ran(nats_server, tmp_path):
    """A store after a real ingest run: (url, env, store, expected readings)."""
    url = nats_server.url
    init(url)
    reg = write_registry(tmp_path / "registry.csv", 20)
    script = scripted(20, 300)
    asyncio.run(publish(url, script.uplinks))
    env = flow_env(url, reg, tmp_path)
    store = init_recovery(tmp_path / "rec-ingest", FLOW, 2)
    wait(start_flow("ingest", env, store))
    st = check_recovery(store, FLOW)
    assert st.ok and st.parts == 2 and st.files == ["part-0.sqlite3", "part-1.sqlite3"], st.problems
    assert all(e is not None and e > 0 for e in st.commits.values())  # real committed epochs
    return url, env, store, script.expected_readings()


@pytest.mark.parametrize(
    "damage, says",
    [
        ("truncate", "part-1.sqlite3: "),
        ("garbage", "part-1.sqlite3: "),
        ("empty_file", "part-1.sqlite3: empty file"),
        ("missing", "partition part-1.sqlite3 is missing"),
        ("all_missing", "partition part-0.sqlite3 is missing"),
        ("emptied_folder", "no recovery store here"),
        ("other_flow", "belongs to flow 'tidstream-export'"),
    ],
)
def test_damaged_store_is_refused_with_the_way_out(ran, tmp_path, damage, says):
    url, env, store, n = ran
    part = store / "part-1.sqlite3"
    if damage == "truncate":
        data = part.read_bytes()
        part.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        part.write_bytes(os.urandom(part.stat().st_size))
    elif damage == "empty_file":
        part.write_bytes(b"")
    elif damage == "missing":
        part.unlink()
    elif damage == "all_missing":
        for p in store.glob("part-*"):
            p.unlink()
    elif damage == "emptied_folder":
        shutil.rmtree(store)
        store.mkdir()
    elif damage == "other_flow":
        other = init_recovery(tmp_path / "rec-export", "tidstream-export", 2)
        shutil.rmtree(store)
        shutil.copytree(other, store)
    text = refused(start_flow("ingest", env, store))
    assert says in text, text[-2000:]
    # The check sub-command says the same, exit 1; nothing was published by the refused run.
    r = cli("recovery", "check", "ingest", "--store", str(store), env=env)
    assert r.returncode == 1 and says in r.stdout, r.stdout + r.stderr
    assert not json.loads(r.stdout)["ok"]
    assert len(readings(url)) == n


def test_reset_is_the_way_out_and_duplicates_nothing_within_the_window(ran):
    url, env, store, n = ran
    before = readings(url)
    (store / "part-0.sqlite3").write_bytes(b"not a database at all" * 100)
    refused(start_flow("ingest", env, store))
    # A sound store is not reset by mistake.
    other = cli("recovery", "check", "ingest", "--store", str(store), env=env)
    assert other.returncode == 1
    r = cli("recovery", "reset", "ingest", "--store", str(store), env=env)
    assert r.returncode == 0, r.stderr
    moved = json.loads(r.stdout)["old_store_moved_to"]
    assert moved and (store.parent / os.path.basename(moved) / "part-0.sqlite3").exists()  # kept aside
    assert check_recovery(store, FLOW).ok and json.loads((store / MANIFEST).read_text())["parts"] == 2
    r = cli("recovery", "reset", "ingest", "--store", str(store), env=env)
    assert r.returncode == 2 and "is sound" in r.stderr
    # The fresh store reads the raw stream from its start: every reading is published
    # again under its Nats-Msg-Id and JetStream drops it (duplicate window 30 min).
    text = wait(start_flow("ingest", env, store))
    after = readings(url)
    assert [r["reading_id"] for r in after] == [r["reading_id"] for r in before] and len(after) == n
    dlq = asyncio.run(read_stream(url, "TID_DLQ"))
    assert len(dlq) == 6, text[-2000:]  # the scripted dead letters, not again


def test_store_without_manifest_is_adopted_and_run_creates_stores_with_one(ran, tmp_path):
    url, env, store, n = ran
    (store / MANIFEST).unlink()
    wait(start_flow("ingest", env, store))  # a sound store of this flow: adopted
    assert json.loads((store / MANIFEST).read_text())["flow"] == FLOW
    # `tidstream run` makes a store with a manifest for a flow's first start ...
    rec_root = tmp_path / "recovery"
    r = subprocess.run(
        [sys.executable, "-m", "tidstream.cli", "run", "ingest", "--once", "--recovery-dir", str(rec_root)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert check_recovery(rec_root / "ingest", FLOW).ok
    # ... and never re-initialises an existing empty folder (a lost volume): refused.
    shutil.rmtree(rec_root / "ingest")
    (rec_root / "ingest").mkdir()
    r = subprocess.run(
        [sys.executable, "-m", "tidstream.cli", "run", "ingest", "--once", "--recovery-dir", str(rec_root)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode != 0 and "no recovery store here" in r.stdout + r.stderr
    assert len(readings(url)) == n


def test_export_reset_rereads_the_stream_and_keeps_rows_that_expired_from_it(ran, tmp_path):
    """A reset export reads the readings stream from its first message again and rewrites
    the same block files; the rows of a block that left the stream meanwhile (max age)
    are kept from the file already written, none is written twice."""
    import nats
    from tidstream.flow.export import read_dataset

    url, env, _, _ = ran
    env = dict(env, TIDSTREAM_EXPORT_BLOCK_SIZE="100")
    store = tmp_path / "rec-export"
    wait(start_flow("export", env, store))
    ids = sorted(r["reading_id"] for r in readings(url))
    assert sorted(read_dataset(tmp_path / "export").column("reading_id").to_pylist()) == ids

    async def expire_first(k: int) -> None:  # as max_age would: the oldest readings go
        nc = await nats.connect(url)
        await nc.jetstream().purge_stream("TID_READINGS", seq=k + 1)
        await nc.close()

    asyncio.run(expire_first(150))  # block 1 whole, block 2 half
    (store / "part-0.sqlite3").unlink()
    refused_text = start_flow("export", env, store).communicate(timeout=120)[0].decode()
    assert "partition part-0.sqlite3 is missing" in refused_text
    r = cli("recovery", "reset", "export", "--store", str(store), env=env)
    assert r.returncode == 0, r.stderr
    wait(start_flow("export", env, store))
    assert sorted(read_dataset(tmp_path / "export").column("reading_id").to_pylist()) == ids


def test_ingest_reset_starts_after_the_last_reading_even_beyond_the_duplicate_window(ran):
    """Past the duplicate window JetStream no longer drops a re-published reading. The
    default reset rebuilds each raw partition's position from the readings stream: no
    reading is made twice. `--from-start` (documented: only inside the window) would
    duplicate every reading, which this test shows too."""
    import nats

    url, env, store, n = ran

    async def shrink_window() -> None:
        nc = await nats.connect(url)
        js = nc.jetstream()
        cfg = (await js.stream_info("TID_READINGS")).config
        cfg.duplicate_window = 0.2  # s: the ids of the first run are forgotten
        await js.update_stream(cfg)
        await nc.close()

    asyncio.run(shrink_window())
    import time

    time.sleep(1.0)
    (store / "part-1.sqlite3").unlink()
    r = cli("recovery", "reset", "ingest", "--store", str(store), env=env)
    assert r.returncode == 0, r.stderr
    positions = json.loads(r.stdout)["start_after"]
    assert set(positions) <= {"0", "1", "2", "3"} and len(positions) >= 2
    assert json.loads((store / MANIFEST).read_text())["start_after"] == positions
    wait(start_flow("ingest", env, store))
    got = readings(url)
    assert len(got) == len({r["reading_id"] for r in got}) == n, positions  # nothing made twice

    r = cli("recovery", "reset", "ingest", "--store", str(store), "--force", "--from-start", env=env)
    assert r.returncode == 0 and json.loads(r.stdout)["start_after"] is None, r.stderr
    wait(start_flow("ingest", env, store))
    got = readings(url)
    assert len(got) == 2 * n and len({r["reading_id"] for r in got}) == n  # the hazard, shown
