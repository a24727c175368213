"""End-to-end smoke run (``make test``): a tiny simulated fleet through the same code
as the e2e benchmark family (``benches/e2e.py``, ``make bench``): embedded nats-server,
the ingest and export flows as real Bytewax processes, the raw consume ceilings, the
flow's parts alone, a small long run, and the RESULTS.md section rendered from it.

Timing is not judged here (a few thousand uplinks say nothing about throughput); the
accounting is: every uplink ends as readings or as exactly one dead letter, and the
Parquet export holds exactly the readings.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import e2e
import pytest

pytestmark = pytest.mark.nats

UPLINKS = int(os.environ.get("TIDSTREAM_E2E_SMOKE_UPLINKS", "3000"))


def test_e2e_small_fleet_accounts_for_every_uplink(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # No waiting for the earlier runs' consumers to go before each timed run: this test
    # checks the accounting and that every measurement is taken, not the rates.
    monkeypatch.setenv("TIDSTREAM_E2E_SETTLE_S", "0")
    cfg = e2e.E2EConfig(
        uplinks=UPLINKS,
        long_factor=2,
        partitions=None,  # the configuration default, as make bench
        repeats=2,  # the main run repeated (best kept), each repeat's accounting checked
        startup_repeats=1,
        path_repeats=1,
        work=tmp_path,
    )
    r = e2e.run_e2e(cfg)

    acc = r.main.accounting
    assert acc.exact, acc.problems
    # Frames in = frames with readings + dead letters, exactly (by raw sequence).
    assert acc.frames_in == UPLINKS == acc.frames_with_readings + acc.dead_letters
    # 2 % of the sensors are left out of the registry: their uplinks, and only those,
    # are dead letters (the simulated envelopes are all well formed).
    assert acc.dead_letters > 0
    assert set(acc.dead_by_reason) == {"unknown_device"}
    assert acc.readings == acc.frames_with_readings + acc.stored_readings
    assert acc.parquet_rows == acc.readings
    assert r.long is not None and r.long.accounting.exact, r.long and r.long.accounting.problems
    assert r.long.accounting.frames_in == 2 * UPLINKS

    # Every measurement was taken.
    assert r.main.run.returncode == 0 and r.export.returncode == 0
    assert r.ingest_startup_s > 0 and r.ingest_total_s > 0 and r.export.exit_s > 0
    assert r.main.run.peak_rss_mib > 50 and r.export.peak_rss_mib > 50
    assert r.main.run.complete_s <= r.main.run.exit_s
    assert min(r.ceiling_push_s) > 0 and min(r.ceiling_pull_s) > 0 and min(r.ceiling_fetch_s) > 0
    assert len(r.ceiling_rust_s) == 2 and min(r.ceiling_rust_s) > 0
    # The I/O floor ran with and without Nats-Msg-Id (each repeat counted every reading).
    assert r.floor_ids is not None and r.floor_no_ids is not None
    assert len(r.floor_ids.seconds) == len(r.floor_no_ids.seconds) == 2
    assert r.floor_ids.server_s > 0 and r.floor_payload_bytes > 100
    # The main run's figure is the best of its repeats, like the ceilings'.
    assert len(r.main_runs) == 2 and r.main.run in r.main_runs
    # (a 3,000-uplink run is shorter than the start-up it subtracts: the figure may be < 0)
    assert r.ingest_goal_rate == max(r.main_goal_rates)
    assert r.ceiling_rate == max(r.ceiling_push_rate, r.ceiling_pull_rate)
    c = r.components
    assert c is not None and c.frames == UPLINKS and c.items_out == acc.readings + acc.dead_letters
    assert c.sink_s > 0 and c.sink_atomic_s > 0 and c.sink_cpu[0] > 0 and c.sink_atomic_cpu[0] > 0
    assert {name for name, _, _ in c.step_profile} == set(e2e.STEP_CATEGORIES)
    # The split accounts for the whole unprofiled step time (more only if the Rust calls
    # took longer in the profiled pass than the whole unprofiled step).
    assert all(est >= 0 for _, est, _ in c.step_profile)
    assert sum(est for _, est, _ in c.step_profile) >= c.step_s * 0.999

    # The RESULTS.md section renders from it.
    import run

    sec = run.e2e_section(r)
    text = run.render([sec], _Args(), dt.datetime.now(dt.timezone.utc))
    assert "e2e: ingest flow at least 100,000 frames/s per process" in text
    assert "Long run" in text and "Where the ingest time goes" in text
    assert "The I/O floor" in text and e2e.FLOOR_LABELS[False] in text
    assert len(sec.goals) == 4 and all(g.met is not None for g in sec.goals)
    # Both data paths ran (their accounting is checked in run_data_paths) and are reported.
    assert [len(r.path_runs[p]) for p in ("python", "rust")] == [1, 1]
    # (CPU measured; per frame less start-up it is noise at this size, possibly < 0)
    assert all(run.cpu_s > 0 for p in ("python", "rust") for run in r.path_runs[p])
    assert 'data_path = "rust"' in text and "% of ceiling" in text
    # `run.py --only e2e --merge` splices the section into an existing RESULTS.md.
    old = (Path(run.__file__).parent / "RESULTS.md").read_text(encoding="utf-8")
    new = run.merge_results(old, text, [sec], dt.datetime.now(dt.timezone.utc))
    assert new.count(f"## {sec.title}") == 1 and new.count("## Codecs") == old.count("## Codecs")
    assert all(new.count(f"| {g.text} | {g.measured} |") == 1 for g in sec.goals)
    assert "merged into this file" in new and f"{r.ceiling_rate:,.0f} msg/s" in new

    print(
        f"\ne2e smoke ({UPLINKS:,} uplinks): ingest {r.ingest_rate:,.0f} frames/s "
        f"({r.ingest_net_rate:,.0f} excluding {r.ingest_startup_s:.2f} s start-up), raw consume "
        f"ceiling {r.ceiling_rate:,.0f} msg/s ({r.ceiling_kind}), export {r.export_rows / r.export.exit_s:,.0f} "
        f"readings/s; peak RSS ingest {r.main.run.peak_rss_mib:.0f} MiB, export "
        f"{r.export.peak_rss_mib:.0f} MiB; {acc.frames_in:,} in = {acc.frames_with_readings:,} with "
        f"readings + {acc.dead_letters:,} dead letters; wall {r.wall_s:.1f} s"
    )


class _Args:
    repeats = 7
    py_repeats = 3
