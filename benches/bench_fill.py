"""Fill-ratio kernel (distance + container geometry -> fill) vs numpy and pure Python."""

from __future__ import annotations

import numpy as np
import pytest
from baselines import BENCH_N
from tidstream import _core


def _inputs(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    depth = rng.uniform(400, 2000, n)
    offset = rng.uniform(100, 400, n)
    dist = rng.uniform(0, 2600, n)
    dist[::97] = np.nan  # missing readings
    return dist, depth, offset


def numpy_fill(d: np.ndarray, h: np.ndarray, o: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return np.clip((o + h - d) / h, 0.0, 1.5)


def python_fill(d: list[float], h: list[float], o: list[float]) -> list[float]:
    return [
        min(max((oo + hh - dd) / hh, 0.0), 1.5) if dd == dd else float("nan") for dd, hh, oo in zip(d, h, o)
    ]


@pytest.mark.parametrize("impl", ["tidstream", "numpy", "python"])
def test_fill_ratio(benchmark, impl):
    d, h, o = _inputs(BENCH_N)
    benchmark.group = "fill-ratio"
    benchmark.extra_info["rows"] = BENCH_N
    if impl == "tidstream":
        out = benchmark(_core.fill_ratio, d, h, o)
    elif impl == "numpy":
        out = benchmark(numpy_fill, d, h, o)
    else:
        out = np.array(benchmark(python_fill, d.tolist(), h.tolist(), o.tolist()))
    np.testing.assert_array_equal(np.isnan(out), np.isnan(d))
    np.testing.assert_allclose(out, numpy_fill(d, h, o), rtol=1e-12)
