"""Alert rules on scripted reading streams: the exact alerts, one per episode."""

from __future__ import annotations

import pickle

from tidstream.alerts import AlertThresholds, DeviceAlerts

TH = AlertThresholds(stuck_readings=4)


def reading(i: int, **kw) -> dict:
    base = {
        "reading_id": f"r:{i}:0",
        "device_id": "a840410000000001",
        "container_id": "C-1",
        "container_kind": "glass_bank",
        "commune_insee": "25388",
        "measured_at": f"2026-11-20T{i // 60:02d}:{i % 60:02d}:00.000000Z",
        "fill_ratio": None,
        "distance_mm": None,
        "temperature_c": None,
        "battery_pct": 80.0,
        "battery_v": None,
        "tilt": False,
        "fire_alarm": False,
        "stored": False,
    }
    base.update(kw)
    return base


def run(readings, state=None):
    s = state or DeviceAlerts()
    out = []
    for r in readings:
        out += [(a.kind, a.state, a.reading_id) for a in s.on_reading(r, TH)]
    return s, out


def test_full_with_hysteresis_and_emptied_event():
    fills = [0.5, 0.85, 0.92, 0.95, 0.88, 0.8, 0.91, 0.2, 0.3]
    _, out = run([reading(i, fill_ratio=f, distance_mm=1000 + 50 * i) for i, f in enumerate(fills)])
    assert out == [
        ("full", "raised", "r:2:0"),
        ("emptied", "event", "r:7:0"),
        ("full", "resolved", "r:7:0"),
    ]


def test_fire_by_level_and_by_rise_then_resolved():
    temps = [20, 22, 45, 70, 75, 40]
    _, out = run([reading(i, temperature_c=t, distance_mm=900 + 50 * i) for i, t in enumerate(temps)])
    assert out == [("fire", "raised", "r:2:0"), ("fire", "resolved", "r:5:0")]  # +23 °C in 1 min


def test_tilt_battery_stuck_and_ids_are_deterministic():
    rs = [
        reading(0, tilt=True, distance_mm=700),
        reading(1, tilt=False, distance_mm=700),
        reading(2, tilt=False, distance_mm=701, battery_pct=10),
        reading(3, distance_mm=700, battery_pct=11),
        reading(4, distance_mm=900, battery_pct=30),
    ]
    _, out = run(rs)
    assert out == [
        ("tilt", "raised", "r:0:0"),
        ("tilt", "resolved", "r:2:0"),
        ("battery_low", "raised", "r:2:0"),
        ("stuck_sensor", "raised", "r:3:0"),
        ("battery_low", "resolved", "r:4:0"),
        ("stuck_sensor", "resolved", "r:4:0"),
    ]
    # Same readings, state restored from a snapshot half way: the same alerts and ids.
    s1, a = run(rs[:2])
    _, b = run(rs[2:], pickle.loads(pickle.dumps(s1)))
    assert a + b == out


def test_silence_timer_and_stored_readings_ignored():
    s, out = run([reading(0, fill_ratio=0.1), reading(60, fill_ratio=0.2)])
    assert s.silent_after_s(TH) == 3 * 3600  # learned cadence: one frame an hour
    alerts = s.on_silence(TH)
    assert [(a.kind, a.state, a.alert_id) for a in alerts] == [
        ("silent", "raised", "a:a840410000000001:silent:r:60:0:raised")
    ]
    assert s.on_silence(TH) == []  # one alert per episode
    _, out = run([reading(120, fill_ratio=0.95, stored=True), reading(121, fill_ratio=0.2)], s)
    assert out == [("silent", "resolved", "r:121:0")]


def test_overflow_predicted_one_episode_resolved_by_emptying_or_a_later_forecast():
    th = AlertThresholds(overflow_lead_h=24.0)
    s = DeviceAlerts()
    script = [  # (fill, hours until overflow_fill as the forecaster says)
        (0.3, 60.0),
        (0.4, 30.0),
        (0.5, 20.0),  # raised
        (0.6, 10.0),  # same episode
        (0.65, 30.0),  # within 1.5 x lead: still the same episode
        (0.7, 5.0),
        (0.1, 2.0),  # emptied: resolved, and no new episode from this reading
        (0.12, 80.0),
        (0.5, 23.0),  # raised again
        (0.52, 40.0),  # beyond 1.5 x lead: resolved without emptying
    ]
    out = []
    for i, (f, h) in enumerate(script):
        r = reading(i, fill_ratio=f, distance_mm=1000 + 37 * i)
        out += [(a.kind, a.state, a.reading_id, a.value) for a in s.on_reading(r, th, h)]
    assert out == [
        ("overflow_predicted", "raised", "r:2:0", 20.0),
        ("emptied", "event", "r:6:0", 0.1),
        ("overflow_predicted", "resolved", "r:6:0", 0.1),
        ("overflow_predicted", "raised", "r:8:0", 23.0),
        ("overflow_predicted", "resolved", "r:9:0", 40.0),
    ]
    assert s.last_emptied_at == reading(6)["measured_at"]


def test_forecaster_step_is_a_function_of_the_reading_sequence():
    """The alerting flow feeds the forecaster one reading at a time: a restart from a
    snapshot at any point gives the same forecasts as an uninterrupted run."""
    from tidstream.forecast import Forecaster

    rows = [
        (f"d{i}", 1_763_596_800 + h * 3600 + i, min(0.05 + (0.01 + 0.005 * i) * (h % 60), 1.2))
        for h in range(120)
        for i in range(3)
    ]
    a = Forecaster(threshold=0.9)
    ref = [a.step(c, t, x, None, 24.0) for c, t, x in rows]
    b = Forecaster(threshold=0.9)
    got = [b.step(c, t, x, None, 24.0) for c, t, x in rows[:200]]
    b = Forecaster.from_bytes(b.to_bytes())
    got += [b.step(c, t, x, None, 24.0) for c, t, x in rows[200:]]
    assert got == ref
    last = ref[-1]
    assert last is not None and 0.0 <= last["fill_p10"] <= last["fill_p50"] <= last["fill_p90"]
    assert [x["horizon_h"] for x in last["accountability"]] == [24.0, 48.0, 72.0]
    assert last["accountability"][0]["n_scored"] > 0 and last["accountability"][0]["mae"] is not None
    assert a.step("new", 1_763_596_800, None, None, 24.0) is None  # no level yet: no forecast


def test_silent_timer_is_kept_between_a_minute_and_a_year():
    # frames half a second apart (a burst): 3 x 0.5 s would make the device silent at once
    burst = DeviceAlerts()
    for i in range(5):
        burst.on_reading(reading(i, measured_at=f"2026-11-20T00:00:{i // 2:02d}.{5 * (i % 2)}00000Z"), TH)
    assert burst.interval_s == 0.5
    assert burst.silent_after_s(TH) == 60.0
    # a huge setting stays a date the timer can hold (it overflowed datetime before)
    assert burst.silent_after_s(AlertThresholds(silent_intervals=1e9)) == 366 * 86_400.0
    # inside the bounds: 3 x the learned one-minute cadence
    s, _ = run([reading(i) for i in range(4)])
    assert s.silent_after_s(TH) == 180.0
