"""The alerting flow's Bytewax timers (unit tests of the two timed logics, no Bytewax).

Bytewax re-arms an operator's timer at every activation with the soonest ``notify_at``
of its keys and Timely keeps every such request until its moment passes, so a far
``notify_at`` makes that queue grow (the alerts flow's memory drift in the one-hour
soak, docs/RELIABILITY.md). The logics therefore never ask for more than
``WAKE_HORIZON_S`` ahead and ignore an early wake-up; these tests pin both halves."""

from __future__ import annotations

import pickle
from datetime import datetime, timedelta, timezone

import orjson
import pyarrow.parquet as pq
from bytewax.operators import StatefulLogic
from test_alerts import reading
from tidstream.alerts import AlertThresholds
from tidstream.config import Subjects
from tidstream.flow.alerts import WAKE_HORIZON_S, AlertLogic, TwinSnapshotLogic, TwinUpdate
from tidstream.nats.jetstream import Publish

# silent after 3 x 6 h = 18 h without a frame: far beyond the wake horizon
TH = AlertThresholds(expected_interval_s=6 * 3600.0, silent_intervals=3.0)


def now() -> datetime:
    return datetime.now(timezone.utc)


def logic() -> AlertLogic:
    lg = AlertLogic(None, TH, {}, Subjects())
    out, keep = lg.on_item(reading(0, fill_ratio=0.5))
    assert keep is StatefulLogic.RETAIN and any(isinstance(o, TwinUpdate) for o in out)
    return lg


def test_silent_timer_asks_for_at_most_the_wake_horizon():
    lg = logic()
    before = now()
    at = lg.notify_at()
    assert at is not None
    assert before < at <= now() + timedelta(seconds=WAKE_HORIZON_S)
    # the real deadline stays 18 h after the last frame
    assert lg._silent_at() - lg._wall_last == timedelta(hours=18)


def test_early_wake_up_raises_nothing_and_re_arms():
    lg = logic()
    before = pickle.dumps(lg.state)
    out, keep = lg.on_notify()
    assert list(out) == [] and keep is StatefulLogic.RETAIN
    assert "silent" not in lg.state.active and pickle.dumps(lg.state) == before
    assert lg.notify_at() is not None  # still armed


def test_wake_up_after_the_deadline_raises_silent_once():
    lg = logic()
    lg._wall_last = now() - timedelta(hours=18, seconds=1)  # the last frame, 18 h ago
    assert lg.notify_at() <= now()  # due: Bytewax wakes it at once
    out = list(lg.on_notify()[0])
    alerts = [orjson.loads(o.data) for o in out if isinstance(o, Publish)]
    assert [(a["kind"], a["state"]) for a in alerts] == [("silent", "raised")]
    assert alerts[0]["device_id"] == lg.state.last_reading["device_id"]
    assert [o.entry["status"] for o in out if isinstance(o, TwinUpdate)] == ["unknown"]
    assert lg.notify_at() is None  # silent already raised: no timer until the next frame
    assert list(lg.on_notify()[0]) == []


def test_twin_snapshot_timer_is_capped_and_writes_only_when_due(tmp_path):
    path = tmp_path / "twin.parquet"
    lg = TwinSnapshotLogic(None, str(path), interval_s=3600.0)
    assert lg.notify_at() is None  # nothing to write yet
    entry = logic().twin
    lg.on_item(entry)
    assert lg.notify_at() <= now() + timedelta(seconds=WAKE_HORIZON_S)
    lg.on_notify()  # an early wake-up: the hour has not passed
    assert not path.exists() and lg.dirty
    lg.last_write = now() - timedelta(hours=1, seconds=1)
    lg.on_notify()
    assert not lg.dirty and lg.notify_at() is None
    assert pq.read_table(path).column("deviceId").to_pylist() == [entry["deviceId"]]
