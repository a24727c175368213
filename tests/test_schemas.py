"""The committed JSON Schemas / AsyncAPI match the code, and real messages validate."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jsonschema

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

from gen_schemas import render  # noqa: E402


def test_committed_schema_files_are_current():
    for name, text in render().items():
        assert (ROOT / "schemas" / name).read_text(encoding="utf-8") == text, (
            f"schemas/{name} is stale: run `python tools/gen_schemas.py`"
        )


def test_a_reading_validates():
    schema = json.loads((ROOT / "schemas" / "reading.schema.json").read_text())
    jsonschema.validate(
        {
            "reading_id": "r:3:0",
            "device_id": "0000000000000003",
            "model": "tid1",
            "container_id": "C-3",
            "container_kind": "glass_bank",
            "stream": "glass",
            "commune_insee": "25388",
            "commune": "Montbéliard",
            "lat": 47.5,
            "lon": 6.8,
            "received_at": "2026-11-25T17:58:22.593064Z",
            "measured_at": "2025-11-24T16:00:02.000000Z",
            "stored": False,
            "distance_mm": 502.0,
            "fill_ratio": 0.832,
            "fill_pct_reported": None,
            "temperature_c": None,
            "battery_pct": None,
            "battery_v": None,
            "tilt": False,
            "fire_alarm": False,
            "alarm_flags": 0,
            "fport": 1,
            "fcnt": None,
            "rssi": None,
            "snr": None,
            "gps_lat": None,
            "gps_lon": None,
            "raw_seq": 3,
        },
        schema,
    )
