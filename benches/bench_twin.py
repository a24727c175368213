"""The alerting flow's forecaster feeding: one reading per call (``Forecaster.step``, what
the flow does, for deterministic replays) vs one batch ``update`` of the same readings
(the baseline, measured in the same run), plus the snapshot sizes that decide where the
state lives (docs/TWIN.md).

Sizes: ``TIDSTREAM_BENCH_TWIN`` = "containers,hours" (default "200,24" so ``make test``
stays fast). Real figures::

    TIDSTREAM_BENCH_TWIN=1450,48 .venv/bin/python benches/bench_twin.py
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
from tidstream.forecast import Forecaster

T0 = 1_763_596_800
_SIZE = os.environ.get("TIDSTREAM_BENCH_TWIN", "200,24").split(",")
N, HOURS = int(_SIZE[0]), int(_SIZE[1])


def workload(n: int, hours: int) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Hourly readings of n containers, time-major, string ids (DevEUIs)."""
    rng = np.random.default_rng(0)
    rates = rng.uniform(0.01, 0.05, n)
    ids = [f"a84041{i:010x}" for i in range(n)]
    h = np.repeat(np.arange(hours), n)
    i = np.tile(np.arange(n), hours)
    t = T0 + h * 3600 + i
    x = (rates[i] * h) % 1.0
    return [ids[k] for k in i], t.astype(np.int64), x


def run_step(ids: list[str], t: np.ndarray, x: np.ndarray) -> Forecaster:
    fc = Forecaster(threshold=1.0)
    for c, tt, xx in zip(ids, t.tolist(), x.tolist()):
        fc.step(c, tt, xx, None, 24.0)
    return fc


def run_update(ids: list[str], t: np.ndarray, x: np.ndarray) -> Forecaster:
    fc = Forecaster(threshold=1.0)
    fc.update(np.array(ids), t, x)
    return fc


@pytest.mark.parametrize("impl", ["step", "update"])
def test_forecaster_feeding(benchmark, impl):
    ids, t, x = workload(N, HOURS)
    benchmark.group = "twin-forecaster-feeding"
    benchmark.extra_info["readings"] = len(ids)
    fc = benchmark(run_step if impl == "step" else run_update, ids, t, x)
    assert len(fc) == N and fc.stats()["accepted"] == len(ids)


def main() -> None:
    ids, t, x = workload(N, HOURS)
    s = time.perf_counter()
    fc = run_step(ids, t, x)
    d_step = time.perf_counter() - s
    s = time.perf_counter()
    run_update(ids, t, x)
    d_upd = time.perf_counter() - s
    s = time.perf_counter()
    blob = fc.to_bytes()
    d_snap = time.perf_counter() - s
    one = run_step(ids[: HOURS * N : N], t[: HOURS * N : N], x[: HOURS * N : N])
    n = len(ids)
    print(f"{N} containers x {HOURS} h = {n:,} readings")
    print(f"step (one reading per call): {d_step / n * 1e6:.1f} us/reading, {n / d_step:,.0f} readings/s")
    print(f"update (one batch):          {d_upd / n * 1e6:.2f} us/reading, {n / d_upd:,.0f} readings/s")
    print(f"step / update time ratio:    {d_step / d_upd:.1f}")
    print(
        f"snapshot: {len(blob):,} bytes ({len(blob) / N:,.0f} per container), to_bytes {d_snap * 1e3:.1f} ms"
    )
    print(f"one-container forecaster snapshot: {len(one.to_bytes()):,} bytes")


if __name__ == "__main__":
    main()
