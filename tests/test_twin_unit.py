"""Twin entries (FIWARE names and status values) and the atomic Parquet snapshot."""

from __future__ import annotations

import os

import pyarrow.parquet as pq
from test_alerts import reading
from tidstream.alerts import AlertThresholds, DeviceAlerts
from tidstream.twin import TWIN_SCHEMA, TWIN_STATUSES, twin_entry, twin_silenced, twin_status, write_snapshot


def test_status_values_are_fiware_ones():
    r = reading(0)
    assert twin_status(r, {}) == "ok"
    assert twin_status(r, {"fire": "r:0:0", "tilt": "r:0:0"}) == "burning"
    assert twin_status(r, {"tilt": "r:0:0"}) == "dropped"
    assert twin_status(reading(0, alarm_flags=256), {}) == "lidOpen"
    assert twin_status(r, {"silent": "r:0:0"}) == twin_status(r, {"stuck_sensor": "x"}) == "unknown"
    assert set(TWIN_STATUSES) <= {"ok", "lidOpen", "dropped", "moved", "vandalized", "burning", "unknown"}


def test_entry_without_forecast_keeps_last_known_battery_and_temperature():
    th = AlertThresholds(overflow_fill=0.95)
    s = DeviceAlerts()
    r0 = reading(0, fill_ratio=0.4, temperature_c=11.5, battery_pct=64.0, stream="glass")
    s.on_reading(r0, th)
    e0 = twin_entry(r0, None, s, th)
    r1 = reading(1, fill_ratio=None, temperature_c=None, battery_pct=None, stream="glass")
    s.on_reading(r1, th)
    e1 = twin_entry(r1, None, s, th, e0)
    assert e1["temperature"] == 11.5 and e1["batteryLevel"] == 0.64
    assert e1["fillingLevel"] is None and e1["measurementQuality"] == 1
    assert e1["storedWasteKind"] == "glass" and e1["binFullnessThreshold"] == 0.95
    assert e1["nextActuationDeadline"] is None and e1["forecastScored24h"] == 0
    assert set(e1) == set(TWIN_SCHEMA.names)
    s.on_silence(th)
    e2 = twin_silenced(e1, s)
    assert e2["status"] == "unknown" and e2["activeAlerts"] == ["silent"]


def test_snapshot_is_replaced_atomically(tmp_path):
    th = AlertThresholds()
    s = DeviceAlerts()
    entries = []
    for i in range(3):
        r = reading(i, device_id=f"a84041000000000{i}", container_id=f"C-{i}", fill_ratio=0.1 * i)
        s.on_reading(r, th)
        entries.append(twin_entry(r, None, s, th))
    path = tmp_path / "twin" / "twin.parquet"
    write_snapshot(entries[:1], path)
    inode = os.stat(path).st_ino
    write_snapshot(entries[::-1], path)  # a new file renamed over the old one
    assert os.stat(path).st_ino != inode
    assert [p.name for p in path.parent.iterdir()] == ["twin.parquet"]
    t = pq.read_table(path)
    assert t.schema.equals(TWIN_SCHEMA)
    assert t.column("deviceId").to_pylist() == [e["deviceId"] for e in entries]
    assert t.column("fillingLevel").to_pylist() == [0.0, 0.1, 0.2]
    assert pq.read_metadata(path).metadata[b"tidstream.twin_entries"] == b"3"
