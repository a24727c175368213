"""Arrow schemas: one source of truth for columns, types and units.

Used by the decoders, the dataflows, the Parquet exports, the docs and the tests. Units
are in each field's metadata under ``b"unit"``; a short description under ``b"doc"``.
"""

from __future__ import annotations

import pyarrow as pa

__all__ = [
    "ALERT_SCHEMA",
    "CONTAINER_KINDS",
    "READING_RECORD_SCHEMA",
    "READING_SCHEMA",
    "REGISTRY_SCHEMA",
    "STORED_READING_TYPE",
    "UPLINK_SCHEMA",
    "field_units",
]


def _f(name: str, typ: pa.DataType, unit: str | None, doc: str, nullable: bool = True) -> pa.Field:
    meta = {b"doc": doc.encode()}
    if unit:
        meta[b"unit"] = unit.encode()
    return pa.field(name, typ, nullable=nullable, metadata=meta)


TIMESTAMP_MS = pa.timestamp("ms", tz="UTC")

STORED_READING_TYPE = pa.struct(
    [
        _f("measured_at", TIMESTAMP_MS, None, "device-side time of the stored reading (UTC)"),
        _f("distance_mm", pa.float64(), "mm", "sensor-to-surface distance"),
        _f("temperature_c", pa.float64(), "degC", "temperature"),
    ]
)

#: The normalized reading every codec produces (``tidstream.decode_batch``).
READING_SCHEMA = pa.schema(
    [
        _f("ok", pa.bool_(), None, "true if the frame decoded; false rows carry `error`", False),
        _f("distance_mm", pa.float64(), "mm", "distance from the sensor to the content surface"),
        _f("fill_pct_reported", pa.float64(), "%", "fill level computed by the sensor itself"),
        _f("temperature_c", pa.float64(), "degC", "temperature at the sensor"),
        _f("battery_pct", pa.float64(), "%", "battery level"),
        _f("battery_v", pa.float64(), "V", "battery voltage"),
        _f("tilt", pa.bool_(), None, "sensor tilted, fallen or moved"),
        _f("fire_alarm", pa.bool_(), None, "fire / temperature alarm"),
        _f(
            "alarm_flags",
            pa.uint16(),
            None,
            "bitmask: 1 full, 2 fire, 4 tilt, 8 low_battery, 16 temperature_threshold, "
            "32 distance_threshold, 64 interrupt, 128 no_sensor, 256 lid_open, 512 stored",
        ),
        _f("measured_at", TIMESTAMP_MS, None, "device-side measurement time, if the frame has one"),
        _f("latitude", pa.float64(), "deg", "WGS84 latitude (GPS-equipped sensors)"),
        _f("longitude", pa.float64(), "deg", "WGS84 longitude (GPS-equipped sensors)"),
        _f(
            "stored_readings",
            pa.list_(STORED_READING_TYPE),
            None,
            "readings stored during an outage and sent late, oldest first",
        ),
        _f("error", pa.string(), None, "human-readable error (null when ok)"),
        _f("error_kind", pa.string(), None, "stable error kind, see tidstream.error_kinds()"),
        _f("error_offset", pa.int32(), "byte", "byte offset of the error in the payload"),
    ],
    metadata={b"tidstream.schema": b"reading/1"},
)

#: Parsed LoRaWAN uplink envelopes (``tidstream.decode_uplinks``).
UPLINK_SCHEMA = pa.schema(
    [
        _f("ok", pa.bool_(), None, "true if the envelope parsed; false rows carry `error`", False),
        _f("dev_eui", pa.string(), None, "DevEUI, 16 lowercase hex digits"),
        _f("device_id", pa.string(), None, "network-server device name / id"),
        _f("received_at", pa.timestamp("ns", tz="UTC"), None, "time the network server received it"),
        _f("fport", pa.int32(), None, "LoRaWAN FPort (0 when TTN omits it)"),
        _f("fcnt", pa.int64(), None, "uplink frame counter"),
        _f("payload", pa.binary(), None, "FRMPayload bytes"),
        _f("rssi", pa.float64(), "dBm", "best RSSI over receiving gateways"),
        _f("snr", pa.float64(), "dB", "best SNR over receiving gateways"),
        _f("gateway_count", pa.uint16(), None, "number of receiving gateways"),
        _f("error", pa.string(), None, "human-readable error (null when ok)"),
        _f("error_kind", pa.string(), None, "stable error kind, see tidstream.error_kinds()"),
        _f("error_offset", pa.int32(), "byte", "byte offset of the error in the JSON message"),
    ],
    metadata={b"tidstream.schema": b"uplink/1"},
)


#: Container kinds and the collection stream each belongs to.
CONTAINER_KINDS: dict[str, str] = {
    "glass_bank": "glass",  # bring-bank (apport volontaire), 3-4 m3
    "paper_bank": "paper",
    "packaging_bank": "packaging",
    "grouping_point": "residual",  # point de regroupement: 660-770 L wheelie bins
    "park_bin": "residual",  # corbeille de parc / de rue, 50-120 L
}

#: The device registry: which sensor sits on which container, and the geometry that
#: turns a distance into a fill ratio (see ``core/src/fill.rs``).
REGISTRY_SCHEMA = pa.schema(
    [
        _f("device_id", pa.string(), None, "DevEUI, 16 lowercase hex digits (primary key)", False),
        _f("model", pa.string(), None, "sensor model, a name from tidstream.models()", False),
        _f("container_id", pa.string(), None, "container identifier", False),
        _f("container_kind", pa.string(), None, "one of " + ", ".join(CONTAINER_KINDS), False),
        _f("stream", pa.string(), None, "collection stream: glass, paper, packaging, residual", False),
        _f("volume_l", pa.float64(), "L", "container volume", False),
        _f("depth_mm", pa.float64(), "mm", "usable depth from the full line to the bottom", False),
        _f("offset_mm", pa.float64(), "mm", "distance from the sensor to the full line", False),
        _f("lat", pa.float64(), "deg", "WGS84 latitude", False),
        _f("lon", pa.float64(), "deg", "WGS84 longitude", False),
        _f("commune_insee", pa.string(), None, "INSEE code of the commune", False),
        _f("commune", pa.string(), None, "commune name", False),
    ],
    metadata={b"tidstream.schema": b"registry/1"},
)


TIMESTAMP_US = pa.timestamp("us", tz="UTC")

#: A reading as published on ``tid.readings.<commune>.<device>`` (JSON, one object per
#: message, these keys) and as exported to Parquet (these columns, in this order).
#: Timestamps are RFC 3339 strings in JSON (UTC, ``Z``, microseconds).
READING_RECORD_SCHEMA = pa.schema(
    [
        _f("reading_id", pa.string(), None, "unique id: r:<raw stream sequence>:<index in frame>", False),
        _f("device_id", pa.string(), None, "DevEUI, 16 lowercase hex digits", False),
        _f("model", pa.string(), None, "sensor model", False),
        _f("container_id", pa.string(), None, "container identifier", False),
        _f(
            "container_kind",
            pa.string(),
            None,
            "glass_bank, paper_bank, packaging_bank, grouping_point, park_bin",
            False,
        ),
        _f("stream", pa.string(), None, "collection stream: glass, paper, packaging, residual", False),
        _f("commune_insee", pa.string(), None, "INSEE code of the container's commune", False),
        _f("commune", pa.string(), None, "commune name", False),
        _f("lat", pa.float64(), "deg", "container latitude (WGS84)", False),
        _f("lon", pa.float64(), "deg", "container longitude (WGS84)", False),
        _f("received_at", TIMESTAMP_US, None, "when the network server received the uplink", False),
        _f(
            "measured_at",
            TIMESTAMP_US,
            None,
            "when the sensor measured (device clock if the frame has one, else received_at)",
            False,
        ),
        _f("stored", pa.bool_(), None, "a reading the device stored during an outage and sent late", False),
        _f("distance_mm", pa.float64(), "mm", "sensor-to-surface distance"),
        _f(
            "fill_ratio",
            pa.float64(),
            "1",
            "fill computed from distance and geometry: 0 empty, 1 full, up to 1.5 heaped",
        ),
        _f("fill_pct_reported", pa.float64(), "%", "fill level computed by the sensor itself"),
        _f("temperature_c", pa.float64(), "degC", "temperature"),
        _f("battery_pct", pa.float64(), "%", "battery level"),
        _f("battery_v", pa.float64(), "V", "battery voltage"),
        _f("tilt", pa.bool_(), None, "sensor tilted, fallen or moved"),
        _f("fire_alarm", pa.bool_(), None, "fire / temperature alarm"),
        _f("alarm_flags", pa.uint16(), None, "bitmask, see tidstream.alarm_flag_names()", False),
        _f("fport", pa.int32(), None, "LoRaWAN FPort"),
        _f("fcnt", pa.int64(), None, "uplink frame counter"),
        _f("rssi", pa.float64(), "dBm", "best RSSI over gateways"),
        _f("snr", pa.float64(), "dB", "best SNR over gateways"),
        _f("gps_lat", pa.float64(), "deg", "latitude reported by the sensor's GPS"),
        _f("gps_lon", pa.float64(), "deg", "longitude reported by the sensor's GPS"),
        _f("raw_seq", pa.uint64(), None, "sequence of the uplink in the raw stream (lineage)", False),
    ],
    metadata={b"tidstream.schema": b"reading-record/1"},
)


#: An alert as published on ``tid.alerts.<kind>.<commune>.<device>`` (JSON, these keys;
#: see docs/ALERTS.md and ``tidstream.alerts.Alert``).
ALERT_SCHEMA = pa.schema(
    [
        _f(
            "alert_id",
            pa.string(),
            None,
            "a:<device>:<kind>:<reading that opened the episode>:<state>",
            False,
        ),
        _f(
            "kind",
            pa.string(),
            None,
            "overflow_predicted, full, fire, tilt, emptied, battery_low, silent, stuck_sensor",
            False,
        ),
        _f("state", pa.string(), None, "raised, resolved or event", False),
        _f("device_id", pa.string(), None, "DevEUI", False),
        _f("container_id", pa.string(), None, "container identifier", False),
        _f("container_kind", pa.string(), None, "container kind (thresholds are per kind)", False),
        _f("commune_insee", pa.string(), None, "INSEE code of the container's commune", False),
        _f("at", TIMESTAMP_US, None, "event time: the triggering reading's measured_at", False),
        _f("reading_id", pa.string(), None, "the triggering reading (silent: the last one seen)", False),
        _f(
            "value",
            pa.float64(),
            None,
            "the measured value (fill ratio, degC, %, V, mm; overflow_predicted: hours until overflow_fill)",
        ),
        _f("threshold", pa.float64(), None, "the threshold crossed (overflow_predicted: the lead time, h)"),
        _f("message", pa.string(), None, "human-readable text", False),
    ],
    metadata={b"tidstream.schema": b"alert/1"},
)


def _json_type(t: pa.DataType) -> dict:
    if pa.types.is_timestamp(t):
        return {"type": "string", "format": "date-time"}
    if pa.types.is_boolean(t):
        return {"type": "boolean"}
    if pa.types.is_integer(t):
        return {"type": "integer", "minimum": 0} if pa.types.is_unsigned_integer(t) else {"type": "integer"}
    if pa.types.is_floating(t):
        return {"type": "number"}
    if pa.types.is_list(t):
        return {"type": "array", "items": _json_type(t.value_type)}
    if pa.types.is_struct(t):
        return _json_object(list(t))
    return {"type": "string"}


def _json_object(fields: list[pa.Field]) -> dict:
    props: dict[str, dict] = {}
    required = []
    for f in fields:
        p = _json_type(f.type)
        if f.nullable:
            p["type"] = [p["type"], "null"]
        else:
            required.append(f.name)
        meta = f.metadata or {}
        if b"doc" in meta:
            p["description"] = meta[b"doc"].decode()
        if b"unit" in meta:
            p["x-unit"] = meta[b"unit"].decode()
        props[f.name] = p
    return {"type": "object", "properties": props, "required": required, "additionalProperties": False}


def json_schema(schema: pa.Schema, title: str, description: str) -> dict:
    """A JSON Schema (draft 2020-12) for JSON objects with the columns of ``schema``
    (lists become arrays, structs nested objects)."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": title,
        "description": description,
        **_json_object(list(schema)),
    }


def field_units(schema: pa.Schema) -> dict[str, str]:
    """Map column name to unit, for the columns that have one."""
    return {f.name: f.metadata[b"unit"].decode() for f in schema if f.metadata and b"unit" in f.metadata}
