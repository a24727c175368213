"""Shared fixtures: vendor vectors from ../shared, hypothesis profiles."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TIDSTREAM_SHARED", ROOT.parent / "shared"))
VECTORS = SHARED / "sensors" / "vectors"

# Profiles: "default" for developers, "ci" for CI (same depth, derandomized so a
# failure reproduces), "ci-long" for the long fuzz run (HYPOTHESIS_PROFILE=ci-long).
settings.register_profile("default", max_examples=300, deadline=None)
settings.register_profile(
    "ci",
    max_examples=300,
    deadline=None,
    derandomize=True,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "ci-long",
    max_examples=20_000,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

#: vector file stem -> tidstream model
VECTOR_MODELS = {
    "milesight-em310-udl": "milesight-em310-udl",
    "milesight-em400-udl": "milesight-em400-udl",
    "milesight-em400-tld": "milesight-em400-tld",
    "milesight-em400-mud": "milesight-em400-mud",
    "milesight-em500-udl": "milesight-em500-udl",
    "milesight-ws201": "milesight-ws201",
    "dragino-ldds75": "dragino-ldds75",
    "dragino-ldds45": "dragino-ldds45",
    "dragino-ldds20": "dragino-ldds20",
    "dragino-ldds04": "dragino-ldds04",
    "dragino-llds12": "dragino-llds12",
    "decentlab-dl-mbx": "decentlab-dl-mbx",
    "decentlab-dl-lid": "decentlab-dl-lid",
    "elsys-elt-ultrasonic": "elsys-elt-ultrasonic",
    # Not a distance sensor, but decoded by the same vendor decoder (elsys.js).
    "elsys-ers-sound": "elsys-elt-ultrasonic",
    "dingtek-df702": "dingtek-df702",
    "dingtek-df703": "dingtek-df703",
    "pepperl-fuchs-wilsen-sonic-level": "pepperl-fuchs-wilsen-sonic-level",
}


def load_vectors() -> list[tuple[str, str, dict[str, Any]]]:
    """(file stem, model, vector) for every usable vendor vector."""
    if not VECTORS.is_dir():
        raise RuntimeError(
            f"vendor vectors not found in {VECTORS}: shared/ must sit beside the project "
            "(or set TIDSTREAM_SHARED)"
        )
    out = []
    for path in sorted(VECTORS.glob("*.json")):
        model = VECTOR_MODELS.get(path.stem)
        for v in json.loads(path.read_text(encoding="utf-8")):
            if v.get("status") == "invalid_vendor_example":
                continue  # copy-pasted from another sensor (CODECS.md): not this model
            if model is None:
                raise RuntimeError(f"no model mapped for vector file {path.name}")
            out.append((path.stem, model, v))
    return out


@pytest.fixture(scope="session")
def vectors() -> list[tuple[str, str, dict[str, Any]]]:
    return load_vectors()


@pytest.fixture
def nats_server(tmp_path):
    """A real nats-server with JetStream on a free port, data in tmp_path, stopped after."""
    from tidstream.nats.server import EmbeddedServer

    srv = EmbeddedServer(store_dir=tmp_path / "nats" / "jetstream")
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()
