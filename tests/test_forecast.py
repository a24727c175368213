"""tidstream.Forecaster: the API as specified, scripted series, persistence, backtests."""

from __future__ import annotations

import pickle
import threading
import time

import numpy as np
import pyarrow as pa
import pytest
import tidstream
from tidstream import backtest
from tidstream.forecast import ACCOUNTABILITY_SCHEMA, FORECAST_SCHEMA

T0 = 1_735_689_600  # 2025-01-01 00:00 UTC
H = 3600
COLUMNS = [
    "container_id",
    "horizon_h",
    "fill_p50",
    "fill_p10",
    "fill_p90",
    "p_over_threshold",
    "hours_to_threshold",
    "hours_to_threshold_p90",
]


def fleet(n: int = 30, days: int = 30, seed: int = 0):
    """Hourly readings of n containers filling at different rates, emptied at ~0.85."""
    rng = np.random.default_rng(seed)
    rate = rng.uniform(0.03, 0.2, n) / 24
    level = rng.uniform(0, 0.5, n)
    ids, ts, xs = [], [], []
    for h in range(days * 24):
        level = level + rate * rng.gamma(2.0, 0.5, n)
        level = np.where(level > 0.85, rng.uniform(0, 0.03, n), level)
        ids.append(np.arange(n, dtype=np.int64))
        ts.append(np.full(n, T0 + h * H, np.int64))
        xs.append(level + rng.normal(0, 0.004, n))
    return np.concatenate(ids), np.concatenate(ts), np.concatenate(xs), rate * 24


# -- the API as written ---------------------------------------------------------------


def test_api_exactly_as_written():
    container_ids, timestamps, fill, _ = fleet()
    fc = tidstream.Forecaster(threshold=0.8)
    fc.update(container_ids, timestamps, fill)
    at = int(timestamps[-1])
    tab = fc.predict(at, horizons_h=[24, 48, 72])
    assert isinstance(tab, pa.Table)
    assert tab.column_names[: len(COLUMNS)] == COLUMNS
    assert tab.num_rows == 30 * 3
    assert tab.schema.field("container_id").type == pa.int64()
    d = tab.to_pydict()
    assert sorted(set(d["horizon_h"])) == [24.0, 48.0, 72.0]
    p10, p50, p90 = (np.array(d[c]) for c in ("fill_p10", "fill_p50", "fill_p90"))
    assert (p10 <= p50 + 1e-12).all() and (p50 <= p90 + 1e-12).all()
    po = np.array(d["p_over_threshold"])
    assert ((po >= 0) & (po <= 1)).all()
    h50 = tab.column("hours_to_threshold").to_numpy(zero_copy_only=False)
    h90 = tab.column("hours_to_threshold_p90").to_numpy(zero_copy_only=False)
    ok = ~np.isnan(h50) & ~np.isnan(h90)
    assert ok.sum() > 20
    assert (h90[ok] <= h50[ok] + 0.5).all()  # the pessimistic time comes first
    # the probability of passing the threshold grows with the horizon
    by_h = tab.to_pandas().pivot(index="container_id", columns="horizon_h", values="p_over_threshold")
    assert (by_h[72.0] >= by_h[24.0] - 1e-9).all()
    assert FORECAST_SCHEMA.field("fill_p50").metadata[b"unit"] == b"ratio"


def test_ids_and_time_types():
    ids, ts, xs, _ = fleet(n=5, days=5)
    dt64 = (ts * 1_000_000_000).astype("datetime64[ns]")
    a = tidstream.Forecaster()
    a.update(ids, ts, xs)
    b = tidstream.Forecaster()
    b.update(pa.array(ids), pa.array(dt64), pa.array(xs))  # Arrow arrays, datetime64
    c = tidstream.Forecaster()
    sid = np.array([f"c-{i}" for i in ids], dtype=object)
    c.update(sid, dt64.astype("datetime64[s]"), xs)  # string ids
    at = np.datetime64(int(ts[-1]), "s")
    ta, tb, tc = (f.predict(at, horizons_h=[24]) for f in (a, b, c))
    assert ta.column("fill_p50").to_pylist() == tb.column("fill_p50").to_pylist()
    assert tc.schema.field("container_id").type == pa.string()
    assert tc.column("container_id").to_pylist() == [f"c-{i}" for i in range(5)]
    assert tc.column("fill_p50").to_pylist() == ta.column("fill_p50").to_pylist()
    # a subset, by id, and predict at a datetime / ISO string
    sub = c.predict("2025-01-06T00:00:00Z", horizons_h=[6], container_ids=["c-3", "nope"])
    assert sub.column("container_id").to_pylist() == ["c-3"]


def test_errors_name_the_fix():
    fc = tidstream.Forecaster()
    with pytest.raises(ValueError, match="same length"):
        fc.update(np.array([1, 2]), np.array([T0]), np.array([0.1, 0.2]))
    with pytest.raises(ValueError, match="milliseconds"):
        fc.update(np.array([1]), np.array([T0 * 1000]), np.array([0.1]))
    with pytest.raises(TypeError, match="int64 or strings"):
        fc.update(np.array([1.5]), np.array([T0]), np.array([0.1]))
    fc.update(np.array([1]), np.array([T0]), np.array([0.1]))
    with pytest.raises(TypeError, match="int64 container ids"):
        fc.update(np.array(["a"]), np.array([T0]), np.array([0.1]))
    with pytest.raises(ValueError, match="threshold"):
        tidstream.Forecaster(threshold=0)
    with pytest.raises(ValueError, match="score_rule"):
        tidstream.Forecaster(score_rule="x")
    with pytest.raises(ValueError, match="horizons_h"):
        fc.predict(T0, horizons_h=[-1])
    with pytest.raises(ValueError, match="snapshot"):
        tidstream.Forecaster.from_bytes(b"not a snapshot")


def test_bad_rows_are_counted_not_fatal():
    fc = tidstream.Forecaster()
    fc.update(
        np.array([1, 1, 1, 1, 1]),
        np.array([T0, T0 + H, T0 + 2 * H, T0 + 3 * H, T0 + 3 * H]),
        np.array([0.1, np.nan, 9.0, 0.12, 0.13]),
    )
    s = fc.stats()
    assert (s["missing"], s["invalid"], s["out_of_order"], s["accepted"]) == (1, 1, 1, 2)


# -- scripted series ------------------------------------------------------------------


def scripted(per_day: float, hours: int, start: float = 0.05, t0: int = T0):
    t = t0 + np.arange(hours, dtype=np.int64) * H
    x = start + per_day * np.arange(hours) / 24
    return t, x


def state(fc: tidstream.Forecaster, cid: int) -> dict:
    return fc.states(container_ids=[cid]).to_pylist()[0]


def test_emptying_is_detected_and_restarts_the_curve():
    fc = tidstream.Forecaster()
    t, x = scripted(0.15, 24 * 5)
    fc.update(np.full(len(t), 7), t, x)
    assert state(fc, 7)["emptyings"] == 0
    # emptied: the level falls to ~0 and stays there
    t2 = t[-1] + H * np.arange(1, 25)
    x2 = 0.01 + 0.15 * np.arange(24) / 24
    fc.update(np.full(24, 7), t2, x2)
    s = state(fc, 7)
    assert s["emptyings"] == 1
    assert s["fill"] < 0.2
    assert s["last_emptied_at"].timestamp() == t2[0]
    tab = fc.predict(int(t2[-1]), horizons_h=[24])
    assert abs(tab.column("fill_p50")[0].as_py() - (x2[-1] + 0.15)) < 0.05


def test_tilt_confirms_an_emptying_at_once():
    fc = tidstream.Forecaster()
    t, x = scripted(0.1, 48, start=0.4)
    fc.update(np.full(48, 1), t, x, tilt=np.zeros(48, bool))
    fc.update(np.array([1]), np.array([t[-1] + H]), np.array([0.0]), tilt=pa.array([True]))
    assert state(fc, 1)["emptyings"] == 1


def test_spikes_are_ignored():
    fc = tidstream.Forecaster()
    t, x = scripted(0.1, 24 * 8)  # 0.05 -> 0.85, never emptied
    x = x.copy()
    x[[50, 120]] = 0.0  # lid open: a far reading, once
    x[[80, 150]] = 0.98  # obstruction: a near reading, once
    fc.update(np.full(len(t), 3), t, x)
    s = state(fc, 3)
    st = fc.stats()
    assert s["emptyings"] == 0
    assert (st["spikes_low"], st["spikes_high"]) == (2, 2)
    assert abs(s["rate_per_day"] - 0.1) < 0.015


def test_stuck_sensor_is_not_believed():
    rng = np.random.default_rng(1)
    fc = tidstream.Forecaster()
    t, x = scripted(0.02, 24 * 20)
    x = np.round(x + rng.normal(0, 0.005, len(x)), 4)
    fc.update(np.full(len(t), 9), t, x)
    rate0 = state(fc, 9)["rate_per_day"]
    t2 = t[-1] + H * np.arange(1, 73)
    fc.update(np.full(72, 9), t2, np.full(72, 0.4))  # frozen for three days (level ~0.45)
    s = state(fc, 9)
    assert s["stuck"]
    assert abs(s["rate_per_day"] - rate0) < 0.005
    tab = fc.predict(int(t2[-1]), horizons_h=[0])
    assert tab.column("stuck")[0].as_py()
    # the model keeps filling the container: not frozen at 0.4
    assert tab.column("fill_p50")[0].as_py() > 0.4 + 0.04


def test_day_of_week_profile_is_learned():
    fc = tidstream.Forecaster()
    t = T0 + np.arange(24 * 7 * 16, dtype=np.int64) * H
    dow = ((t // 86400) + 3) % 7  # Monday = 0
    inc = np.where(dow == 5, 0.3, 0.02) / 24  # busy Saturdays
    x = np.cumsum(inc) % 0.9
    fc.update(np.full(len(t), 4), t, x)
    # last reading is a Tuesday 23:00: Thursday is hours 25-49, Saturday 73-97
    tab = fc.predict(int(t[-1]), horizons_h=[25, 49, 73, 97]).column("fill_p50").to_pylist()
    assert tab[3] - tab[2] > 3 * max(tab[1] - tab[0], 0.002)


# -- accountability, persistence, GIL ---------------------------------------------------


def test_accountability_is_kept_per_container():
    ids, ts, xs, _ = fleet(n=10, days=20)
    fc = tidstream.Forecaster()
    fc.update(ids, ts, xs)
    acc = fc.accountability()
    assert acc.schema.equals(ACCOUNTABILITY_SCHEMA, check_metadata=False)
    assert acc.num_rows == 10 * 3
    d = acc.to_pandas()
    # one calibration horizon per container-day in rotation (hourly readings)
    assert (d["n_scored"] >= 1).all() and d["n_scored"].mean() > 3
    assert (d["mae"] < 0.2).all()
    assert d["coverage"].between(0, 1).all()
    assert d["last_scored_at"].notna().all()


def test_state_round_trip_gives_identical_predictions():
    ids, ts, xs, _ = fleet(n=20, days=15)
    half = len(ids) // 2
    fc = tidstream.Forecaster(threshold=0.75)
    fc.update(ids[:half], ts[:half], xs[:half])
    blob = fc.to_bytes()
    assert blob[:7] == b"TIDFCST"
    back = tidstream.Forecaster.from_bytes(blob)
    at = int(ts[half - 1])
    assert fc.predict(at, [6, 24, 72]).equals(back.predict(at, [6, 24, 72]))
    # ... and it goes on identically after a restart (as from a Bytewax snapshot)
    fc.update(ids[half:], ts[half:], xs[half:])
    back.update(ids[half:], ts[half:], xs[half:])
    at = int(ts[-1])
    assert fc.predict(at, [24, 48]).equals(back.predict(at, [24, 48]))
    assert fc.accountability().equals(back.accountability())
    assert fc.to_bytes() == back.to_bytes()
    # pickling goes through the same snapshot
    again = pickle.loads(pickle.dumps(fc))
    assert again.predict(at, [24]).equals(fc.predict(at, [24]))
    assert len(blob) < 1200 * 20 + 200_000  # compact: a few hundred bytes per container


def test_update_releases_the_gil():
    n = 200_000
    ids = np.arange(n, dtype=np.int64) % 20_000
    ts = T0 + (np.arange(n, dtype=np.int64) // 20_000) * H
    xs = np.linspace(0, 0.5, n)
    fc = tidstream.Forecaster()
    ticks = 0
    done = threading.Event()

    def work():
        for k in range(15):
            fc.update(ids, ts + k * 10 * H, xs)
        done.set()

    th = threading.Thread(target=work)
    th.start()
    while not done.is_set():
        ticks += 1
        time.sleep(0.0005)
    th.join()
    assert ticks > 5  # the main thread kept running during the batches


# -- backtests --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wyndham():
    path = backtest.default_wyndham_csv()
    if not path.exists():
        pytest.fail(
            f"Wyndham data not found at {path}: shared/ must sit beside the project (or set TIDSTREAM_SHARED)"
        )
    return backtest.wyndham_backtest(path)


def test_wyndham_persistence_reproduces_source(wyndham):
    by = {s.h_days: s for s in wyndham.horizons}
    for h, v in backtest.SOURCE_PERSISTENCE_MAE.items():
        assert round(by[h].mae_persistence, 3) == v
    assert (by[1].n, by[2].n, by[3].n) == (8265, 7290, 6750)


def test_wyndham_goals(wyndham):
    by = {s.h_days: s for s in wyndham.horizons}
    assert by[1].mae < by[1].mae_persistence
    assert by[2].gain >= 0.15 and by[3].gain >= 0.15
    assert by[1].auc >= 0.90
    for s in wyndham.horizons:
        assert 0.75 <= s.coverage <= 0.85, s
        assert s.brier < s.brier_persistence
    assert all(g["met"] for g in wyndham.goals.values()), wyndham.goals


def test_sim_backtest_beats_the_naive_baseline():
    try:
        res = backtest.sim_backtest(scale=0.2, days=35, warmup_days=14)
    except FileNotFoundError as e:
        pytest.fail(f"{e}: shared/ must sit beside the project (or set TIDSTREAM_SHARED)")
    assert res.forecaster.n > 500 and res.forecaster.crossed > 50
    assert res.forecaster.mae_h < res.baseline.mae_h
    assert res.forecaster.mae_crossed_h < 0.6 * res.baseline.mae_crossed_h
    assert res.forecaster.within_24h > res.baseline.within_24h


def test_cli_backtest_wyndham(capsys, wyndham):
    import argparse

    p = argparse.ArgumentParser()
    backtest.add_parser(p.add_subparsers(dest="command"))
    args = p.parse_args(["backtest", "wyndham"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "| 1 | 8,265 |" in out and "auc_h1" in out
