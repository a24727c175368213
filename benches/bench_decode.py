"""decode_batch against pure-Python and numba baselines, per codec.

With ``--benchmark-disable`` (the default in pyproject) each benchmark runs once, as a
correctness test: tidstream's output is checked against the workload's ground truth, and
every baseline against tidstream's output on the same frames.
"""

from __future__ import annotations

from typing import Any

import baselines
import numpy as np
import pyarrow as pa
import pytest
import tidstream

N = baselines.BENCH_N
CODECS = pytest.mark.parametrize("model", baselines.CODECS)


def _setup(benchmark: Any, model: str, impl: str) -> None:
    benchmark.group = f"decode {model}"
    benchmark.name = impl
    benchmark.extra_info["frames"] = N
    benchmark.extra_info["model"] = model


@CODECS
def test_tidstream_binary_array(benchmark: Any, model: str, workloads: dict[str, Any]) -> None:
    arr, truth = workloads[model]
    _setup(benchmark, model, "tidstream decode_batch(BinaryArray)")
    batch = benchmark(tidstream.decode_batch, model, arr)
    assert batch.num_rows == N
    assert batch.schema.equals(tidstream.READING_SCHEMA)
    assert baselines.check_expected(model, batch, truth) == N


@CODECS
def test_tidstream_list(benchmark: Any, model: str, workloads: dict[str, Any], frame_lists) -> None:
    _, truth = workloads[model]
    _setup(benchmark, model, "tidstream decode_batch(list[bytes])")
    batch = benchmark(tidstream.decode_batch, model, frame_lists[model])
    assert baselines.check_expected(model, batch, truth) == N


@CODECS
def test_numba_baseline(benchmark: Any, model: str, workloads: dict[str, Any], reference) -> None:
    arr, truth = workloads[model]
    baselines.warm_up_numba(arr)  # compile (or load from cache) outside the timed region
    _setup(benchmark, model, "numba @njit over Arrow buffers")
    out = benchmark(baselines.NB_DECODERS[model], arr)
    assert baselines.check_decoded(model, out, reference[model]) == N
    assert baselines.check_expected(model, out, truth) == N


@CODECS
def test_python_baseline(benchmark: Any, model: str, workloads, frame_lists, reference) -> None:
    _, truth = workloads[model]
    _setup(benchmark, model, "pure Python struct")
    out = benchmark(baselines.PY_DECODERS[model], frame_lists[model])
    assert baselines.check_decoded(model, out, reference[model]) == N
    assert baselines.check_expected(model, out, truth) == N


@CODECS
def test_baselines_agree_on_bad_frames(model: str) -> None:
    """Corrupt / cut / odd frames: both baselines reject exactly what tidstream rejects."""
    frames = baselines.corrupt_frames(model)
    ref = tidstream.decode_batch(model, frames)
    ok = ref.column("ok").to_pylist()
    assert not all(ok) and any(ok), ok  # the set exercises both outcomes
    baselines.check_decoded(model, baselines.PY_DECODERS[model](frames), ref)
    arr = pa.array(frames, type=pa.binary())
    baselines.warm_up_numba(arr)
    baselines.check_decoded(model, baselines.NB_DECODERS[model](arr), ref)


@CODECS
def test_numba_baseline_on_sliced_large_binary(model: str, workloads: dict[str, Any]) -> None:
    """The numba baseline honours the array offset and int64 offsets."""
    arr, truth = workloads[model]
    big = arr.cast(pa.large_binary()).slice(3, 100)
    baselines.warm_up_numba(big)
    out = baselines.NB_DECODERS[model](big)
    sub = {k: (v[3:103] if isinstance(v, np.ndarray) else v) for k, v in truth.items()}
    assert baselines.check_expected(model, out, sub) == 100
