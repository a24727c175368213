"""The simulated sensor fleet: territory, determinism, frames that decode to what was
encoded, fill statistics in the published ranges, files, CLI and plots.

The fill-statistics ranges and their sources are in docs/SIMULATOR.md.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import tidstream
from tidstream import _core
from tidstream.schema import CONTAINER_KINDS, REGISTRY_SCHEMA
from tidstream.simulate import (
    COLLECTION_SCHEMA,
    OVERFLOW_SCHEMA,
    TRUTH_READING_SCHEMA,
    Territory,
    simulate,
)
from tidstream.simulate import cli as sim_cli
from tidstream.simulate.territory import default_shared_dir

SHARED = default_shared_dir()

MODEL_NAMES = [m[0] for m in _core.sim_models()]


@pytest.fixture(scope="module")
def pma() -> Territory:
    return Territory.pma(SHARED, seed=0)


@pytest.fixture(scope="module")
def small(pma: Territory) -> Territory:
    return Territory.pma(SHARED, scale=0.08, seed=4)


# -- territory ------------------------------------------------------------------------


def test_pma_registry_has_the_schema_and_about_1445_sensors(pma: Territory) -> None:
    reg = pma.registry
    assert reg.schema.equals(REGISTRY_SCHEMA, check_metadata=True)
    assert 1400 <= len(pma) <= 1500  # DOMAIN.md: 1,445 Heyliot sensors in PMA
    counts = pma.counts()
    assert 950 <= counts["glass_bank"] + counts["paper_bank"] + counts["packaging_bank"] <= 1150
    assert 230 <= counts["park_bin"] <= 270
    assert 90 <= counts["grouping_point"] <= 110
    ids = reg.column("device_id").to_pylist()
    assert len(set(ids)) == len(ids)
    assert all(len(d) == 16 and d == d.lower() and int(d, 16) >= 0 for d in ids)
    assert len(set(reg.column("container_id").to_pylist())) == len(ids)
    assert set(reg.column("model").to_pylist()) <= set(tidstream.models())
    assert set(reg.column("model").to_pylist()) == set(MODEL_NAMES)
    kinds = reg.column("container_kind").to_pylist()
    streams = reg.column("stream").to_pylist()
    assert all(CONTAINER_KINDS[k] == s for k, s in zip(kinds, streams))
    # Geometry consistent with the kind.
    vol = reg.column("volume_l").to_numpy()
    depth = reg.column("depth_mm").to_numpy()
    for k, lo, hi in [("glass_bank", 3000, 4000), ("grouping_point", 660, 770), ("park_bin", 50, 120)]:
        sel = np.array([x == k for x in kinds])
        assert vol[sel].min() >= lo and vol[sel].max() <= hi
    assert (depth > reg.column("offset_mm").to_numpy()).all()
    # Inside the agglomeration.
    assert 47.3 < reg.column("lat").to_numpy().min() and reg.column("lat").to_numpy().max() < 47.6
    # The ingest flow accepts it.
    from tidstream.registry import validate_registry

    validate_registry(reg)


def test_facilities_are_placed_at_commune_centres_and_say_so(pma: Territory) -> None:
    fac = pma.facilities.to_pylist()
    assert len(fac) == 11
    centres = {r["insee"]: (r["lat"], r["lon"]) for r in pma.places.to_pylist()}
    for f in fac:
        assert (f["lat"], f["lon"]) == centres[f["commune_insee"]]
        assert "centre" in f["placement"]
    incinerator = next(f for f in fac if f["kind"] == "incinerator")
    assert incinerator["commune"] == "Montbéliard"
    assert any("not given" in f["placement"] for f in fac)  # Montévillars: no commune in the source


def test_counts_scale_with_population_and_scale(pma: Territory) -> None:
    places = pma.places.to_pylist()
    pop = np.array([p["population"] for p in places])
    n = np.array([p["containers"] for p in places])
    assert np.corrcoef(pop, n)[0, 1] > 0.99
    big = Territory.pma(SHARED, scale=10.0, seed=0)
    assert abs(len(big) / len(pma) - 10.0) < 0.02
    c1, c10 = pma.counts(), big.counts()
    for k in CONTAINER_KINDS:
        assert abs(c10[k] - 10 * c1[k]) <= 10, k
    # Containers lie inside their commune's polygon.
    from tidstream.simulate.territory import _inside

    reg = pma.registry
    code = reg.column("commune_insee").to_pylist()
    lat, lon = reg.column("lat").to_numpy(), reg.column("lon").to_numpy()
    inside = [
        bool(_inside(np.array([lat[i]]), np.array([lon[i]]), pma.polygons[code[i]])[0])
        for i in range(0, len(code), 7)
    ]
    assert sum(inside) / len(inside) > 0.97  # bring-bank jitter of a few metres may cross a border


def test_territory_from_a_csv_of_places(tmp_path: Path) -> None:
    csv = tmp_path / "places.csv"
    csv.write_text("name,lat,lon,population\nA,45.0,5.0,20000\nB,45.1,5.1,5000\n", encoding="utf-8")
    t = Territory.from_csv(csv, seed=1)
    assert t.registry.schema.equals(REGISTRY_SCHEMA)
    per = {p["name"]: p["containers"] for p in t.places.to_pylist()}
    assert per["A"] > 3 * per["B"] > 0
    assert set(t.sim.column("placement").to_pylist()) == {"around_centre"}
    with pytest.raises(ValueError, match="population"):
        Territory.from_places([{"name": "x", "lat": 1, "lon": 2}])
    with pytest.raises(ValueError, match="scale"):
        Territory.from_csv(csv, scale=-1)


def test_territory_is_deterministic(pma: Territory) -> None:
    again = Territory.pma(SHARED, seed=0)
    assert again.registry.equals(pma.registry)
    other = Territory.pma(SHARED, seed=1)
    assert not other.registry.column("device_id").equals(pma.registry.column("device_id"))


# -- determinism ----------------------------------------------------------------------


def _digest(sim) -> str:
    h = hashlib.sha256()
    for c in sim.chunks():
        for b in (c.uplinks, c.readings, c.collections, c.overflows):
            for col in b.columns:
                for buf in col.buffers():
                    if buf is not None:
                        h.update(buf)
    return h.hexdigest()


def test_same_seed_same_output_byte_for_byte(small: Territory, tmp_path: Path) -> None:
    a = simulate(small, days=3, start="2025-06-02", seed=9)
    b = simulate(small, days=3, start="2025-06-02", seed=9)
    assert _digest(a) == _digest(b)
    c = simulate(small, days=3, start="2025-06-02", seed=10)
    assert _digest(a) != _digest(c)
    # Files too, in both formats (the run.json timing aside).
    for fmt in ("parquet", "jsonl"):
        sums = []
        for i in range(2):
            out = tmp_path / f"{fmt}{i}"
            simulate(small, days=2, seed=9).write(out, format=fmt)
            sums.append(
                {
                    p.name: hashlib.sha256(p.read_bytes()).hexdigest()
                    for p in sorted(out.iterdir())
                    if p.name != "run.json"
                }
            )
        assert sums[0] == sums[1]
        assert any(n.startswith("uplinks") for n in sums[0])


def test_uplinks_come_in_time_order_in_bounded_chunks(small: Territory) -> None:
    sim = simulate(small, days=2, seed=1, chunk_rows=500)
    last = None
    for b in sim.uplinks():
        assert b.num_rows <= 500
        t = b.column("received_at").cast(pa.int64()).to_numpy()
        assert (np.diff(t) >= 0).all()
        if last is not None:
            assert t[0] >= last
        last = t[-1]


# -- frames decode to what was encoded --------------------------------------------------


def test_every_frame_decodes_to_the_encoded_values(small: Territory) -> None:
    sim = simulate(small, days=4, start="2025-02-03", seed=2, faults=3.0)
    model_of = dict(
        zip(small.registry.column("device_id").to_pylist(), small.registry.column("model").to_pylist())
    )
    n_frames = n_stored = 0
    formats_seen: set[str] = set()
    for c in sim.chunks():
        up = c.uplinks
        tr = c.readings.filter(pc.equal(c.readings.column("delivered"), "live"))
        truth = {
            (d, f): i
            for i, (d, f) in enumerate(zip(tr.column("device_id").to_pylist(), tr.column("fcnt").to_pylist()))
        }
        dev = up.column("device_id").to_pylist()
        fcnt = up.column("fcnt").to_pylist()
        models = np.array([model_of[d] for d in dev])
        rows = np.array([truth[(d, f)] for d, f in zip(dev, fcnt)])
        for model in set(models):
            sel = np.flatnonzero(models == model)
            payloads = up.column("payload").take(pa.array(sel))
            fports = up.column("fport").take(pa.array(sel))
            got = tidstream.decode_batch(model, payloads, fports=fports.to_numpy())
            want = tr.take(pa.array(rows[sel]))
            assert all(got.column("ok").to_pylist()), got.filter(pc.invert(got.column("ok"))).column("error")[
                0
            ]
            for col, tol in (
                ("distance_mm", 0.0),
                ("temperature_c", 1e-9),
                ("battery_pct", 0.0),
                ("battery_v", 1e-9),
            ):
                w = want.column(col).to_numpy(zero_copy_only=False).astype(float)
                g = got.column(col).to_numpy(zero_copy_only=False).astype(float)
                carried = ~np.isnan(w)
                assert np.array_equal(np.isnan(g[carried]), np.zeros(carried.sum(), bool)), (model, col)
                assert np.allclose(g[carried], w[carried], rtol=0, atol=tol), (model, col)
                if col == "distance_mm":
                    assert np.isnan(g[~carried]).all(), model  # no echo stays no echo
            for col in ("tilt", "fire"):
                w = want.column(col).to_pylist()
                g = got.column(col if col == "tilt" else "fire_alarm").to_pylist()
                assert all(x is None or x == y for x, y in zip(w, g)), (model, col)
            if model == "tid1":
                meas = want.column("measured_at").cast(pa.int64()).to_numpy() // 10**9
                assert np.array_equal(got.column("measured_at").cast(pa.int64()).to_numpy() // 1000, meas)
                assert np.array_equal(
                    got.column("alarm_flags").to_numpy(), want.column("alarm_flags").to_numpy()
                )
                n_stored += sum(1 for s in got.column("stored_readings").to_pylist() if s)
        # The envelopes parse to the same uplinks.
        for fmt in ("ttn-v3", "chirpstack-v4"):
            sel = pc.equal(up.column("format"), fmt)
            part = up.filter(sel)
            if part.num_rows == 0:
                continue
            formats_seen.add(fmt)
            parsed = tidstream.decode_uplinks(fmt, part.column("envelope"))
            assert all(parsed.column("ok").to_pylist())
            assert parsed.column("payload").equals(part.column("payload"))
            assert parsed.column("dev_eui").equals(part.column("device_id"))
            assert parsed.column("fcnt").equals(part.column("fcnt"))
            assert parsed.column("fport").equals(part.column("fport"))
            assert (
                parsed.column("received_at")
                .cast(pa.int64())
                .equals(part.column("received_at").cast(pa.int64()))
            )
            assert pc.min(parsed.column("gateway_count")).as_py() >= 1
        n_frames += up.num_rows
    assert n_frames > 5000
    assert n_stored > 0, "tid1 devices resend stored readings after outages"
    assert formats_seen == {"ttn-v3", "chirpstack-v4"}


def test_stored_readings_match_the_lost_ones(small: Territory) -> None:
    sim = simulate(small, days=10, seed=5, faults=4.0)
    stored_truth: set[tuple[str, int, float | None]] = set()
    resent: set[tuple[str, int, float | None]] = set()
    tid1 = {
        d
        for d, m in zip(
            small.registry.column("device_id").to_pylist(), small.registry.column("model").to_pylist()
        )
        if m == "tid1"
    }
    for c in sim.chunks():
        r = c.readings.filter(pc.equal(c.readings.column("delivered"), "stored"))
        for d, t, x in zip(
            r.column("device_id").to_pylist(),
            r.column("measured_at").cast(pa.int64()).to_pylist(),
            r.column("distance_mm").to_pylist(),
        ):
            stored_truth.add((d, t // 60_000_000_000, x))
        up = c.uplinks.filter(pc.is_in(c.uplinks.column("device_id"), pa.array(sorted(tid1))))
        got = tidstream.decode_batch("tid1", up.column("payload"))
        for d, s in zip(up.column("device_id").to_pylist(), got.column("stored_readings").to_pylist()):
            for item in s or []:
                resent.add((d, int(item["measured_at"].timestamp()) // 60, item["distance_mm"]))
    assert resent, "some stored readings were resent"
    assert resent <= stored_truth
    # Not all: a device keeps only its 32 most recent readings, and an outage may
    # still run at the end of the simulation.
    assert len(resent) / len(stored_truth) > 0.5


# -- fill statistics -----------------------------------------------------------------


def test_fill_statistics_land_in_the_published_ranges() -> None:
    # 300 containers x 60 days (docs/SIMULATOR.md, "Fill statistics").
    t = Territory.pma(SHARED, scale=300 / 1444, seed=0)
    assert 280 <= len(t) <= 320
    st = simulate(t, days=60, start="2025-03-03", seed=2, truth=False, envelopes="raw").run()
    banks = st.mean_fill_at_collection(("glass_bank", "paper_bank", "packaging_bank", "grouping_point"))
    # Fixed schedules empty bins at about 50-63 % (Groningen 48.9 %, Grenoble 50 %,
    # Hoffmann et al. ~50 %, Twente 63 %).
    assert 0.489 <= banks <= 0.63, banks
    # Overflows: small but not zero (Copenhagen: 90 % of bins not full when emptied).
    assert 0.005 <= st.overflow_share <= 0.10, st.overflow_share
    d = st.to_dict()
    # Street/park bins: Copenhagen, 40 % of emptied bins < 25 % full.
    assert 0.2 <= d["park_share_below_25pct"] <= 0.6
    assert d["park_share_full"] <= 0.12
    assert st.overflows > 0
    assert st.missed_collections > 0


def test_perfect_fleet_has_no_faults(small: Territory) -> None:
    st = simulate(small, days=3, seed=1, faults=0.0).run()
    assert st.lost == 0 and st.stored == 0
    c = next(simulate(small, days=1, seed=1, faults=0.0).chunks())
    assert set(c.readings.column("condition").to_pylist()) == {"ok"}


# -- files, CLI, plots, errors -----------------------------------------------------------


def test_write_parquet_files_and_schemas(small: Territory, tmp_path: Path) -> None:
    res = simulate(small, days=2, seed=3, envelopes="raw").write(tmp_path, format="parquet")
    up = pq.read_table(tmp_path / "uplinks.parquet")
    assert up.column_names == ["received_at", "device_id", "format", "fport", "fcnt", "payload"]
    assert up.num_rows == res.stats.frames
    assert pq.read_schema(tmp_path / "truth_readings.parquet").equals(TRUTH_READING_SCHEMA)
    assert pq.read_schema(tmp_path / "collections.parquet").equals(COLLECTION_SCHEMA)
    assert pq.read_schema(tmp_path / "overflows.parquet").equals(OVERFLOW_SCHEMA)
    assert pq.read_table(tmp_path / "registry.parquet").schema.equals(REGISTRY_SCHEMA)
    assert (tmp_path / "registry.csv").read_text(encoding="utf-8").startswith('"device_id","model"')
    run = json.loads((tmp_path / "run.json").read_text(encoding="utf-8"))
    assert run["params"]["seed"] == 3 and run["stats"]["frames"] == res.stats.frames


def test_write_jsonl_gives_one_envelope_per_line(small: Territory, tmp_path: Path) -> None:
    res = simulate(small, days=1, seed=3).write(tmp_path, format="jsonl")
    lines = 0
    for fmt in ("ttn-v3", "chirpstack-v4"):
        data = (tmp_path / f"uplinks.{fmt}.jsonl").read_bytes().splitlines()
        parsed = tidstream.decode_uplinks(fmt, data)
        assert all(parsed.column("ok").to_pylist())
        lines += len(data)
        json.loads(data[0])
    assert lines == res.stats.frames
    raw = tmp_path / "raw"
    simulate(small, days=1, seed=3, envelopes="raw").write(raw, format="jsonl")
    first = json.loads((raw / "uplinks.raw.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert set(first) == {"received_at", "dev_eui", "fport", "fcnt", "payload"}


def test_cli_runs_and_prints_a_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    code = sim_cli.main(
        ["--containers", "120", "--days", "2", "--seed", "5", "--out", str(out), "--shared", str(SHARED)]
    )
    assert code == 0
    cap = capsys.readouterr()
    assert "simulate:" in cap.err and "100%" in cap.err  # progress on stderr
    for word in (
        "containers",
        "frames",
        "collections",
        "overflows",
        "mean fill at collection",
        "M frames/s",
        "uplinks.parquet",
    ):
        assert word in cap.out, word
    assert (out / "uplinks.parquet").exists()
    n = pq.read_metadata(out / "registry.parquet").num_rows
    assert 100 <= n <= 140
    assert sim_cli.main(["--days", "0", "--out", str(out), "--shared", str(SHARED)]) == 2
    assert "days" in capsys.readouterr().err


def test_plots_render(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "run"
    assert (
        sim_cli.main(
            [
                "--containers",
                "80",
                "--days",
                "5",
                "--seed",
                "2",
                "--out",
                str(out),
                "--quiet",
                "--shared",
                str(SHARED),
            ]
        )
        == 0
    )
    assert sim_cli.main(["plot", "map", "--run", str(out)]) == 0
    assert sim_cli.main(["plot", "fill", "--run", str(out)]) == 0
    for p in (out / "map.png", out / "fill-auto.png"):
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 20_000
    assert sim_cli.main(["plot", "fill", "--run", str(out), "--device", "0000000000000000"]) == 2


def test_bad_arguments_raise_value_errors_that_name_the_fix(small: Territory) -> None:
    with pytest.raises(ValueError, match="interval_h"):
        simulate(small, interval_h=0.001)
    with pytest.raises(ValueError, match="envelopes"):
        simulate(small, envelopes="mqtt")
    with pytest.raises(ValueError, match="start"):
        simulate(small, start="yesterday")
    with pytest.raises(ValueError, match="faults"):
        simulate(small, faults=-1.0)
    with pytest.raises(ValueError, match="one per device"):
        _core.Simulator(
            np.zeros(2, np.uint8),
            np.zeros(1, np.uint8),
            np.zeros(2, np.uint64),
            ["a", "b"],
            np.ones(2) * 1000,
            np.ones(2) * 100,
            np.ones(2),
            np.zeros(2, np.int8),
        )
    with pytest.raises(ValueError, match="duplicate DevEUI"):
        _core.Simulator(
            np.zeros(2, np.uint8),
            np.zeros(2, np.uint8),
            np.zeros(2, np.uint64),
            ["a", "b"],
            np.ones(2) * 1000,
            np.ones(2) * 100,
            np.ones(2),
            np.zeros(2, np.int8),
        )
    with pytest.raises(FileNotFoundError, match="TIDSTREAM_SHARED"):
        Territory.pma("/nonexistent")
    assert _core.sim_french_holidays(2025)[1] == (4, 21)
    assert math.isnan(float("nan"))


@pytest.mark.nats
def test_simulate_publishes_to_nats(nats_server, tmp_path):
    import asyncio
    import subprocess
    import sys

    import nats as nats_py
    from tidstream.config import Settings
    from tidstream.nats.setup import init_jetstream

    s = Settings()
    s.nats.url = nats_server.url

    async def init() -> None:
        nc = await nats_py.connect(nats_server.url)
        await init_jetstream(nc.jetstream(), s)
        await nc.close()

    asyncio.run(init())
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "tidstream.cli",
            "simulate",
            "--containers",
            "40",
            "--days",
            "0.5",
            "--out",
            str(tmp_path / "sim"),
            "--nats",
            nats_server.url,
            "--json",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    summary = json.loads(p.stdout.strip().splitlines()[-1])

    async def count() -> int:
        nc = await nats_py.connect(nats_server.url)
        n = (await nc.jetstream().stream_info("TID_RAW")).state.messages
        await nc.close()
        return n

    assert summary["published"] == asyncio.run(count()) > 0
