"""Arrow schemas of the simulator's outputs (uplink files and ground truth).

The device registry is :data:`tidstream.schema.REGISTRY_SCHEMA`.
"""

from __future__ import annotations

import pyarrow as pa

__all__ = [
    "COLLECTION_SCHEMA",
    "OVERFLOW_SCHEMA",
    "SIM_UPLINK_SCHEMA",
    "TRUTH_READING_SCHEMA",
]

TS_NS = pa.timestamp("ns", tz="UTC")


def _f(name: str, typ: pa.DataType, unit: str | None, doc: str, nullable: bool = True) -> pa.Field:
    meta = {b"doc": doc.encode()}
    if unit:
        meta[b"unit"] = unit.encode()
    return pa.field(name, typ, nullable=nullable, metadata=meta)


def uplink_schema(envelopes: bool) -> pa.Schema:
    """Uplinks as files for offline replays; ``envelope`` only when envelopes are on."""
    fields = [
        _f("received_at", TS_NS, None, "time the application server received the uplink", False),
        _f("device_id", pa.string(), None, "DevEUI, 16 lowercase hex digits", False),
        _f("format", pa.string(), None, "envelope format: ttn-v3, chirpstack-v4 or raw", False),
        _f("fport", pa.int32(), None, "LoRaWAN FPort", False),
        _f("fcnt", pa.int64(), None, "uplink frame counter (keeps counting through outages)", False),
        _f("payload", pa.binary(), None, "FRMPayload: the vendor frame", False),
    ]
    if envelopes:
        fields.append(
            _f("envelope", pa.binary(), None, "network-server uplink JSON (TTN v3 / ChirpStack v4)", False)
        )
    return pa.schema(fields, metadata={b"tidstream.schema": b"sim-uplink/1"})


#: Uplinks with envelopes (``format`` ttn-v3 / chirpstack-v4).
SIM_UPLINK_SCHEMA = uplink_schema(True)

#: One row per measurement a sensor took, delivered or not.
TRUTH_READING_SCHEMA = pa.schema(
    [
        _f("measured_at", TS_NS, None, "when the sensor measured", False),
        _f("device_id", pa.string(), None, "DevEUI", False),
        _f("fcnt", pa.int64(), None, "frame counter of the uplink that carried (or lost) it", False),
        _f(
            "delivered",
            pa.string(),
            None,
            "live; lost (outage); stored: buffered by the device during an outage, which resends its 32 most recent with the first frame after it",
            False,
        ),
        _f("interrupt", pa.bool_(), None, "an alarm uplink at an event onset, not the periodic one", False),
        _f("condition", pa.string(), None, "ok, no_echo, lid_open, obstructed, stuck, tilted, fire", False),
        _f("true_fill", pa.float64(), "ratio", "true fill of the container (0..heap max)", False),
        _f("true_distance_mm", pa.float64(), "mm", "distance a perfect sensor would read", False),
        _f("distance_mm", pa.float64(), "mm", "distance the frame carries (null: no echo)"),
        _f("temperature_c", pa.float64(), "degC", "temperature the frame carries"),
        _f("battery_pct", pa.float64(), "%", "battery level the frame carries"),
        _f("battery_v", pa.float64(), "V", "battery voltage the frame carries"),
        _f("tilt", pa.bool_(), None, "tilt flag the frame carries"),
        _f("fire", pa.bool_(), None, "fire flag the frame carries"),
        _f("alarm_flags", pa.uint16(), None, "alarm flags (READING_SCHEMA bits) the frame implies"),
    ],
    metadata={b"tidstream.schema": b"sim-truth-reading/1"},
)

#: One row per collection round that reached a container (missed ones included).
COLLECTION_SCHEMA = pa.schema(
    [
        _f("collected_at", TS_NS, None, "when the truck passed", False),
        _f("device_id", pa.string(), None, "DevEUI", False),
        _f("container_id", pa.string(), None, "container", False),
        _f("container_kind", pa.string(), None, "container kind", False),
        _f(
            "fill_before",
            pa.float64(),
            "ratio",
            "true fill when the truck came (capped at the heap maximum)",
            False,
        ),
        _f(
            "demand_fill",
            pa.float64(),
            "ratio",
            "deposits since the last emptying over volume (uncapped)",
            False,
        ),
        _f("fill_after", pa.float64(), "ratio", "fill left after the collection", False),
        _f("overflowed", pa.bool_(), None, "the container passed 100 % before this collection", False),
        _f("missed", pa.bool_(), None, "the round did not empty it (blocked access, breakdown)", False),
    ],
    metadata={b"tidstream.schema": b"sim-collection/1"},
)

#: One row per overflow (fill above 100 % until the next collection).
OVERFLOW_SCHEMA = pa.schema(
    [
        _f("started_at", TS_NS, None, "when the fill passed 100 %", False),
        _f("ended_at", TS_NS, None, "collection that ended it (null: still overflowing at the end)"),
        _f("device_id", pa.string(), None, "DevEUI", False),
        _f("container_id", pa.string(), None, "container", False),
        _f("container_kind", pa.string(), None, "container kind", False),
        _f("peak_demand_fill", pa.float64(), "ratio", "largest demand fill reached", False),
        _f("excess_l", pa.float64(), "L", "waste beyond the container's volume at the peak", False),
    ],
    metadata={b"tidstream.schema": b"sim-overflow/1"},
)
