"""Benchmark fixtures: workloads per codec and TTN v3 uplink messages.

Sizes: ``TIDSTREAM_BENCH_N`` frames per codec (default 20,000, so that ``make test``, which
runs every benchmark once with ``--benchmark-disable``, stays fast) and
``TIDSTREAM_BENCH_ENVELOPES`` messages (default N / 10). For real figures use
``make bench`` (benches/run.py) or e.g.
``TIDSTREAM_BENCH_N=2000000 pytest benches --benchmark-enable``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import baselines
import tidstream

N = baselines.BENCH_N
N_ENVELOPES = baselines.BENCH_ENVELOPES


@pytest.fixture(scope="session")
def workloads() -> dict[str, tuple[pa.BinaryArray, dict[str, Any]]]:
    """model -> (frames as a BinaryArray, ground truth columns)."""
    return {m: baselines.make_workload(m, N, seed=i) for i, m in enumerate(baselines.CODECS)}


@pytest.fixture(scope="session")
def frame_lists(workloads: dict[str, Any]) -> dict[str, list[bytes]]:
    """model -> the same frames as list[bytes]."""
    return {m: arr.to_pylist() for m, (arr, _) in workloads.items()}


@pytest.fixture(scope="session")
def reference(workloads: dict[str, Any]) -> dict[str, pa.RecordBatch]:
    """model -> tidstream.decode_batch of the workload (what the baselines must match)."""
    return {m: tidstream.decode_batch(m, arr) for m, (arr, _) in workloads.items()}


@pytest.fixture(scope="session")
def ttn_messages() -> list[bytes]:
    """TTN v3 uplink JSON messages carrying EM310-UDL frames (f_port 85)."""
    return baselines.make_ttn_messages(N_ENVELOPES, seed=7)


@pytest.fixture
def decode_uplinks_available() -> None:
    """The envelope parser answers (kept as a fixture so the benchmarks name their need)."""
    probe = baselines.make_ttn_messages(1)
    assert tidstream.decode_uplinks("ttn-v3", probe).column("ok").to_pylist() == [True]
