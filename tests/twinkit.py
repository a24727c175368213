"""Scripted reading streams for the alerts / twin tests, and the in-process reference:
the same rules and forecaster applied reading by reading, without Bytewax or NATS."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from tidstream.alerts import AlertThresholds, DeviceAlerts, thresholds_for
from tidstream.forecast import Forecaster
from tidstream.twin import twin_entry

T0 = 1_763_596_800  # 2025-11-20T00:00:00Z
KINDS = {"park_bin": "residual", "glass_bank": "glass"}
#: per-kind overrides written to the test's TOML config
BY_KIND = {"park_bin": {"overflow_fill": 0.95, "overflow_lead_h": 12.0}}


def ts(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def dev(i: int) -> str:
    return f"a8404100000{i:05x}"


def reading(seq: int, i: int, t: float, fill: float, **kw: Any) -> dict[str, Any]:
    kind = "park_bin" if i % 2 == 0 else "glass_bank"
    r = {
        "reading_id": f"r:{seq}:0",
        "device_id": dev(i),
        "model": "tid1",
        "container_id": f"C-{i}",
        "container_kind": kind,
        "stream": KINDS[kind],
        "commune_insee": "25388" if i % 3 else "25031",
        "commune": "Montbéliard",
        "lat": 47.5 + i * 1e-3,
        "lon": 6.8 + i * 1e-3,
        "received_at": ts(t + 5),
        "measured_at": ts(t),
        "stored": False,
        "distance_mm": round(250 + 1500 * (1 - fill), 1),
        "fill_ratio": round(fill, 4),
        "fill_pct_reported": None,
        "temperature_c": 14.0,
        "battery_pct": 80.0,
        "battery_v": None,
        "tilt": False,
        "fire_alarm": False,
        "alarm_flags": 0,
        "fport": 1,
        "fcnt": seq,
        "rssi": -100.0,
        "snr": 5.0,
        "gps_lat": None,
        "gps_lon": None,
        "raw_seq": seq,
    }
    r.update(kw)
    return r


def fill_curve(i: int, h: int, hours: int) -> float:
    """Device i's fill after h hours: fills at its own rate, emptied at 70 % of the run
    (and, for fast fillers, once it passed 1.0 the level stays heaped)."""
    rate = 0.012 + 0.004 * (i % 5)  # 0.29 .. 0.67 of capacity per day
    empty_at = int(hours * 0.7)
    if h < empty_at:
        return min(0.05 + rate * h, 1.1)
    return 0.03 + 0.3 * rate * (h - empty_at)


def script(n_devices: int, hours: int) -> list[dict[str, Any]]:
    """Hourly readings of n_devices, time-major, reading_id = r:<seq>:0 (seq from 1)."""
    out = []
    seq = 0
    for h in range(hours):
        for i in range(n_devices):
            seq += 1
            out.append(reading(seq, i, T0 + h * 3600 + 7 * i, fill_curve(i, h, hours)))
    return out


def reference(
    readings: list[dict[str, Any]], defaults: AlertThresholds, by_kind: dict[str, dict[str, float]]
) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """(alerts in order, final twin entry per device) from the library, reading by reading."""
    fcs: dict[str, Forecaster] = {}
    devs: dict[str, DeviceAlerts] = {}
    twins: dict[str, dict[str, Any]] = {}
    alerts = []
    for r in readings:
        th = thresholds_for(r["container_kind"], defaults, by_kind)
        fc = fcs.setdefault(r["container_kind"], Forecaster(threshold=th.overflow_fill))
        t = int(datetime.fromisoformat(r["measured_at"].replace("Z", "+00:00")).timestamp())
        f = fc.step(r["device_id"], t, r["fill_ratio"], r["tilt"], th.overflow_lead_h)
        h = None if f is None or f["stuck"] else f["hours_to_threshold"]
        s = devs.setdefault(r["device_id"], DeviceAlerts())
        alerts += [a.to_dict() for a in s.on_reading(r, th, h)]
        if not r["stored"]:
            twins[r["device_id"]] = twin_entry(r, f, s, th, twins.get(r["device_id"]))
    return alerts, twins
