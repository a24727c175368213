"""Chaos, short form: ingest, alerts and export killed with SIGKILL at random points
(seeded) while a simulated fleet's uplinks arrive, restarted each time; the readings,
dead-letter and alerts streams and the Parquet export hold exactly what an in-process
reference run on the same input gives. The long form (dozens of kills) is `make chaos`;
its figures are in docs/RELIABILITY.md."""

from __future__ import annotations

import pytest
from tidstream.chaos import run_chaos

pytestmark = pytest.mark.nats


def test_flows_killed_at_random_lose_and_duplicate_nothing(tmp_path):
    report = run_chaos(tmp_path, kills=6, seed=11, devices=40, frames=2000, min_up=0.5, max_up=3.0)
    flows = report.flows
    assert {f: o.kills for f, o in flows.items()} == {"ingest": 2, "alerts": 2, "export": 2}
    # Every uplink is a reading or a dead letter, every alert and row is there, once.
    assert flows["ingest"].expected == report.uplinks > 2000  # + the malformed ones mixed in
    assert flows["alerts"].expected > 0 and flows["export"].expected > 1500
    for o in flows.values():
        assert (o.lost, o.duplicated, o.unexpected) == (0, 0, 0), o
        assert o.found == o.expected, o
    assert report.ok
