"""`tidstream demo --json` runs the whole pipeline and accounts for every uplink."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.nats


def test_demo_json_summary(tmp_path):
    out = tmp_path / "demo"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tidstream.cli",
            "demo",
            "--out",
            str(out),
            "--devices",
            "120",
            "--frames",
            "1200",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    s = json.loads(proc.stdout.strip().splitlines()[-1])
    for key in ("frames_in", "readings_out", "dead_letters", "parquet_rows", "export_path"):
        assert key in s
    assert s["frames_in"] == s["readings_frames"] + s["dead_letters"]
    assert s["parquet_rows"] == s["readings_out"] > 1000
    assert {"invalid_json", "invalid_base64", "truncated", "oversized", "unknown_device"} <= set(
        s["dead_letters_by_reason"]
    )
    assert list((out / "readings").glob("date=*/readings-*.parquet"))
    # the alerts flow ran and wrote the twin: one entry per device that sent a reading
    import pyarrow.parquet as pq

    twin = pq.read_table(out / "twin" / "twin.parquet")
    assert (
        s["twin_containers"]
        == twin.num_rows
        == len(set(pq.read_table(out / "readings").column("device_id").to_pylist()))
    )
    assert sum(s["twin_status"].values()) == twin.num_rows
