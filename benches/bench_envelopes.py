"""decode_uplinks("ttn-v3" / "chirpstack-v4") against orjson + Python extraction + base64.

Both are measured and checked against each other on the same messages.
"""

from __future__ import annotations

import base64
from typing import Any

import baselines
import numpy as np
import orjson
import pyarrow as pa
import pytest
import tidstream

N_ENVELOPES = baselines.BENCH_ENVELOPES


@pytest.fixture(scope="session")
def chirpstack_messages() -> list[bytes]:
    """ChirpStack v4 ``up`` events carrying EM310-UDL frames (fPort 85)."""
    return baselines.make_chirpstack_messages(N_ENVELOPES, seed=7)


def _setup(benchmark: Any, group: str, impl: str, fmt: str = "ttn-v3") -> None:
    benchmark.group = group
    benchmark.name = impl
    benchmark.extra_info["messages"] = N_ENVELOPES
    benchmark.extra_info["format"] = fmt


def _check_against_source(messages: list[bytes], out: dict[str, Any]) -> None:
    """Independent of both parsers: the values make_ttn_messages put in."""
    assert out["fcnt"] == list(range(1, len(messages) + 1))
    assert set(out["fport"]) == {85}
    assert out["dev_eui"][:2] == ["0004a30b00000000", "0004a30b00000001"]
    assert len(set(out["dev_eui"])) == len(messages)
    first = orjson.loads(messages[0])["uplink_message"]
    assert out["payload"][0] == base64.b64decode(first["frm_payload"])
    assert out["rssi"][0] == max(g["rssi"] for g in first["rx_metadata"])
    assert out["gateway_count"][0] == len(first["rx_metadata"])
    assert not np.isnat(out["received_at"]).any()


def test_orjson_baseline(benchmark: Any, ttn_messages: list[bytes]) -> None:
    _setup(benchmark, "envelopes ttn-v3", "orjson + Python + base64")
    out = benchmark(baselines.py_parse_ttn, ttn_messages)
    _check_against_source(ttn_messages, out)
    # The payloads are real EM310 frames.
    dec = baselines.py_decode_em310(out["payload"][:100])
    assert all(dec["ok"]) and all(d is not None for d in dec["distance_mm"])


@pytest.mark.usefixtures("decode_uplinks_available")
def test_decode_uplinks_list(benchmark: Any, ttn_messages: list[bytes]) -> None:
    _setup(benchmark, "envelopes ttn-v3", "tidstream decode_uplinks(list[bytes])")
    batch = benchmark(tidstream.decode_uplinks, "ttn-v3", ttn_messages)
    assert batch.num_rows == N_ENVELOPES
    baselines.check_uplinks(baselines.py_parse_ttn(ttn_messages), batch)


@pytest.mark.usefixtures("decode_uplinks_available")
def test_decode_uplinks_binary_array(benchmark: Any, ttn_messages: list[bytes]) -> None:
    arr = pa.array(ttn_messages, type=pa.binary())
    _setup(benchmark, "envelopes ttn-v3", "tidstream decode_uplinks(BinaryArray)")
    batch = benchmark(tidstream.decode_uplinks, "ttn-v3", arr)
    baselines.check_uplinks(baselines.py_parse_ttn(ttn_messages), batch)


@pytest.mark.usefixtures("decode_uplinks_available")
def test_decode_uplinks_string_array(ttn_messages: list[bytes]) -> None:
    arr = pa.array([m.decode() for m in ttn_messages[:200]], type=pa.string())
    batch = tidstream.decode_uplinks("ttn-v3", arr)
    baselines.check_uplinks(baselines.py_parse_ttn(ttn_messages[:200]), batch)


def _check_chirpstack_source(messages: list[bytes], out: dict[str, Any]) -> None:
    """Independent of both parsers: the values make_chirpstack_messages put in."""
    assert out["fcnt"] == list(range(1, len(messages) + 1))
    assert set(out["fport"]) == {85}
    assert out["dev_eui"][:2] == ["0004a30b00000000", "0004a30b00000001"]
    first = orjson.loads(messages[0])
    assert out["payload"][0] == base64.b64decode(first["data"])
    assert out["rssi"][0] == max(g["rssi"] for g in first["rxInfo"])
    assert out["gateway_count"][0] == len(first["rxInfo"])
    assert not np.isnat(out["received_at"]).any()


def test_orjson_baseline_chirpstack(benchmark: Any, chirpstack_messages: list[bytes]) -> None:
    _setup(benchmark, "envelopes chirpstack-v4", "orjson + Python + base64", "chirpstack-v4")
    out = benchmark(baselines.py_parse_chirpstack, chirpstack_messages)
    _check_chirpstack_source(chirpstack_messages, out)


@pytest.mark.usefixtures("decode_uplinks_available")
def test_decode_uplinks_chirpstack_list(benchmark: Any, chirpstack_messages: list[bytes]) -> None:
    _setup(benchmark, "envelopes chirpstack-v4", "tidstream decode_uplinks(list[bytes])", "chirpstack-v4")
    batch = benchmark(tidstream.decode_uplinks, "chirpstack-v4", chirpstack_messages)
    assert batch.num_rows == N_ENVELOPES
    baselines.check_uplinks(baselines.py_parse_chirpstack(chirpstack_messages), batch)


@pytest.mark.usefixtures("decode_uplinks_available")
def test_decode_uplinks_chirpstack_binary_array(benchmark: Any, chirpstack_messages: list[bytes]) -> None:
    arr = pa.array(chirpstack_messages, type=pa.binary())
    _setup(benchmark, "envelopes chirpstack-v4", "tidstream decode_uplinks(BinaryArray)", "chirpstack-v4")
    batch = benchmark(tidstream.decode_uplinks, "chirpstack-v4", arr)
    baselines.check_uplinks(baselines.py_parse_chirpstack(chirpstack_messages), batch)


def _pipeline_tidstream(messages: list[bytes]) -> pa.RecordBatch:
    up = tidstream.decode_uplinks("ttn-v3", messages)
    return tidstream.decode_batch(baselines.EM310, up.column("payload"), up.column("fport"))


def _pipeline_python(messages: list[bytes]) -> dict[str, list[Any]]:
    env = baselines.py_parse_ttn(messages)
    return baselines.py_decode_em310(env["payload"])


@pytest.mark.usefixtures("decode_uplinks_available")
def test_pipeline_tidstream(benchmark: Any, ttn_messages: list[bytes]) -> None:
    """Envelope + EM310 decode, end to end (what an ingest step does per batch)."""
    _setup(benchmark, "envelope + EM310 decode", "tidstream decode_uplinks + decode_batch")
    batch = benchmark(_pipeline_tidstream, ttn_messages)
    baselines.check_decoded(baselines.EM310, _pipeline_python(ttn_messages), batch)
    assert batch.column("ok").to_numpy(zero_copy_only=False).all()


def test_pipeline_python(benchmark: Any, ttn_messages: list[bytes]) -> None:
    _setup(benchmark, "envelope + EM310 decode", "orjson + Python + struct")
    out = benchmark(_pipeline_python, ttn_messages)
    payloads = [base64.b64decode(orjson.loads(m)["uplink_message"]["frm_payload"]) for m in ttn_messages]
    ref = tidstream.decode_batch(baselines.EM310, payloads)
    assert baselines.check_decoded(baselines.EM310, out, ref) == len(ttn_messages)
