"""Simulator throughput: frames generated (and written to Parquet) per second.

Small by default (pytest-benchmark; `make test` runs it once as a correctness test).
The real-size figure (10k containers x 365 days hourly = 88 M frames) is measured with
``python benches/bench_simulate.py --containers 10000 --days 365`` (docs/SIMULATOR.md).
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from pathlib import Path

import pytest
from tidstream.simulate import Territory, simulate


@pytest.fixture(scope="module")
def territory() -> Territory:
    return Territory.pma(scale=2000 / 1444, seed=0)


@pytest.mark.parametrize("envelopes", ["raw", "mixed"])
def test_bench_generate(benchmark, territory: Territory, envelopes: str) -> None:
    sim = simulate(territory, days=2, start="2025-03-03", seed=1, envelopes=envelopes, truth=False)

    def run() -> int:
        return sum(c.uplinks.num_rows for c in sim.chunks())

    frames = benchmark(run)
    assert frames > 0.95 * len(territory) * 48


def test_bench_write_parquet_raw(benchmark, territory: Territory, tmp_path: Path) -> None:
    sim = simulate(territory, days=2, start="2025-03-03", seed=1, envelopes="raw", truth=False)

    def run() -> int:
        return sim.write(tmp_path / "out", format="parquet", prefetch=False).stats.frames

    frames = benchmark(run)
    assert frames > 0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--containers", type=int, default=10_000)
    p.add_argument("--days", type=float, default=365)
    p.add_argument("--envelopes", default="raw", choices=["raw", "mixed", "ttn", "chirpstack"])
    p.add_argument("--truth", action="store_true", help="also write the per-reading ground truth")
    p.add_argument("--prefetch", action="store_true", help="generate on a second thread while writing")
    p.add_argument("--out", default=None, help="output folder (default: a temporary one, deleted)")
    a = p.parse_args()
    t = Territory.pma(scale=a.containers / 1444, seed=0)
    sim = simulate(t, days=a.days, start="2025-01-01", seed=1, envelopes=a.envelopes, truth=a.truth)
    out = Path(a.out) if a.out else Path(tempfile.mkdtemp(prefix="tidstream-bench-"))
    t0, c0 = time.perf_counter(), time.process_time()
    res = sim.write(out, format="parquet", prefetch=a.prefetch)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    size = sum(f.stat().st_size for f in out.iterdir())
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{len(t):,} containers x {a.days:g} days, envelopes={a.envelopes}, truth={a.truth}, "
        f"prefetch={a.prefetch}\n"
        f"{res.stats.frames:,} frames in {wall:.1f} s wall ({cpu:.1f} s CPU): "
        f"{res.stats.frames / wall / 1e6:.2f} M frames/s to Parquet; "
        f"{size / 1e9:.2f} GB written; peak RSS {rss:,.0f} MB"
    )
    if not a.out:
        shutil.rmtree(out)


if __name__ == "__main__":
    main()
