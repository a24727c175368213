"""JSON Schemas and the AsyncAPI 3 document of the public NATS subjects, generated
from :mod:`tidstream.schema` (one source of truth). ``tools/gen_schemas.py`` writes them
to ``schemas/``; ``tests/test_schemas.py`` checks the committed files are current."""

from __future__ import annotations

from typing import Any

from .schema import ALERT_SCHEMA, READING_RECORD_SCHEMA, json_schema

__all__ = ["alert_schema", "asyncapi", "dead_letter_schema", "reading_schema", "twin_schema"]


def reading_schema() -> dict[str, Any]:
    """JSON Schema of a message on ``tid.readings.<commune>.<device>``."""
    return json_schema(
        READING_RECORD_SCHEMA,
        "tidstream reading",
        "One decoded fill-level reading, published on tid.readings.<commune INSEE>.<DevEUI> "
        "with Nats-Msg-Id = reading_id. Stored readings (sent late after an outage) are "
        "separate messages with stored = true.",
    )


def alert_schema() -> dict[str, Any]:
    """JSON Schema of a message on ``tid.alerts.<kind>.<commune>.<device>``."""
    return json_schema(
        ALERT_SCHEMA,
        "tidstream alert",
        "One alert, published on tid.alerts.<kind>.<commune INSEE>.<DevEUI> with Nats-Msg-Id = "
        "alert_id and header Tid-Alert-State. One raised and one resolved message per episode "
        "(emptied: one event). See docs/ALERTS.md.",
    )


def twin_schema() -> dict[str, Any]:
    """JSON Schema of a twin entry (KV bucket ``<prefix>_twin``, key = DevEUI)."""
    from .twin import TWIN_SCHEMA

    return json_schema(
        TWIN_SCHEMA,
        "tidstream twin entry (FIWARE WasteContainer)",
        "The current state of one container, the value of key <DevEUI> in the KV bucket "
        "tid_twin (subject $KV.tid_twin.<DevEUI>) and one row of the Parquet twin snapshot. "
        "FIWARE WasteContainer attribute names and status values where one fits. See docs/TWIN.md.",
    )


def dead_letter_schema() -> dict[str, Any]:
    """JSON Schema of a message on ``tid.dlq.<reason>``."""
    s = {"type": "string"}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "tidstream dead letter",
        "description": "An uplink that could not become a reading, with its reason and the "
        "original bytes. Published on tid.dlq.<reason> with Nats-Msg-Id = d:<raw stream>:<seq> "
        "and headers Tid-Reason, Tid-Raw-Seq.",
        "type": "object",
        "properties": {
            "reason": {
                **s,
                "description": "an error kind (tidstream.error_kinds()) or unknown_device, oversized, "
                "unknown_format, fcnt_regression, implausible_time",
            },
            "stage": {"enum": ["size", "envelope", "registry", "frame"], "description": "where it failed"},
            "error": {**s, "description": "human-readable message"},
            "offset": {
                "type": ["integer", "null"],
                "description": "byte offset in the JSON (envelope) or the frame (frame)",
            },
            "device_id": {"type": ["string", "null"], "description": "DevEUI when known"},
            "subject": {**s, "description": "subject of the uplink in the raw stream"},
            "raw_stream": s,
            "raw_seq": {"type": "integer", "minimum": 1},
            "stored_at": {**s, "format": "date-time", "description": "when the raw stream stored it"},
            "headers": {"type": ["object", "null"], "additionalProperties": {"type": "string"}},
            "original_base64": {
                **s,
                "contentEncoding": "base64",
                "description": "the original message bytes",
            },
        },
        "required": ["reason", "stage", "error", "subject", "raw_stream", "raw_seq", "original_base64"],
        "additionalProperties": False,
    }


def asyncapi() -> dict[str, Any]:
    """The AsyncAPI 3.0 document of tidstream's subjects."""

    def ref(name: str) -> dict[str, str]:
        return {"$ref": f"#/components/messages/{name}"}

    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "tidstream NATS subjects",
            "version": "1.0.0",
            "description": "Subjects are a public API. Delivery: JetStream streams (file storage, "
            "limits retention); every output message carries a deterministic Nats-Msg-Id, so "
            "replays are dropped by JetStream deduplication within the stream's duplicate window "
            "(30 min by default): effectively-once for JetStream consumers; core-NATS subscribers "
            "get at-most-once, at-least-once across a flow restart.",
        },
        "defaultContentType": "application/json",
        "servers": {"nats": {"host": "localhost:4222", "protocol": "nats"}},
        "channels": {
            "uplinks": {
                "address": "tid.up.{format}.{device}",
                "description": "Uplinks in: format ttn (TTN v3 ApplicationUp JSON), chirpstack "
                "(ChirpStack v4 up event JSON) or raw (FRMPayload bytes, headers Tid-FPort, "
                "optional Tid-Received-At RFC 3339, Tid-FCnt). device = DevEUI. Captured by the raw "
                "stream and re-keyed to tid.raw.<partition>.<format>.<device>.",
                "parameters": {
                    "format": {"enum": ["ttn", "chirpstack", "raw"]},
                    "device": {"description": "DevEUI, 16 hex digits"},
                },
                "messages": {"uplink": ref("Uplink")},
            },
            "readings": {
                "address": "tid.readings.{commune}.{device}",
                "description": "Decoded readings (stream TID_READINGS).",
                "parameters": {
                    "commune": {"description": "INSEE code"},
                    "device": {"description": "DevEUI, lowercase"},
                },
                "messages": {"reading": ref("Reading")},
            },
            "deadLetters": {
                "address": "tid.dlq.{reason}",
                "description": "Uplinks that could not be decoded (stream TID_DLQ).",
                "parameters": {"reason": {"description": "error kind"}},
                "messages": {"deadLetter": ref("DeadLetter")},
            },
            "alerts": {
                "address": "tid.alerts.{kind}.{commune}.{device}",
                "description": "Alerts, raised / resolved / event (stream TID_ALERTS).",
                "parameters": {
                    "kind": {
                        "enum": [
                            "overflow_predicted",
                            "full",
                            "fire",
                            "tilt",
                            "emptied",
                            "battery_low",
                            "silent",
                            "stuck_sensor",
                        ]
                    },
                    "commune": {"description": "INSEE code"},
                    "device": {"description": "DevEUI, lowercase"},
                },
                "messages": {"alert": ref("Alert")},
            },
            "twin": {
                "address": "$KV.tid_twin.{device}",
                "description": "The twin: the current state of each container (KV bucket tid_twin, "
                "history 1; watch it with a KV watcher). Written by the alerts flow.",
                "parameters": {"device": {"description": "DevEUI, lowercase"}},
                "messages": {"twinEntry": ref("TwinEntry")},
            },
        },
        "operations": {
            "publishUplink": {"action": "send", "channel": {"$ref": "#/channels/uplinks"}},
            "receiveReading": {"action": "receive", "channel": {"$ref": "#/channels/readings"}},
            "receiveDeadLetter": {"action": "receive", "channel": {"$ref": "#/channels/deadLetters"}},
            "receiveAlert": {"action": "receive", "channel": {"$ref": "#/channels/alerts"}},
            "receiveTwinEntry": {"action": "receive", "channel": {"$ref": "#/channels/twin"}},
        },
        "components": {
            "messages": {
                "Uplink": {
                    "contentType": "application/octet-stream",
                    "payload": {"type": "string", "format": "binary"},
                },
                "Reading": {"payload": {"$ref": "reading.schema.json"}},
                "DeadLetter": {"payload": {"$ref": "dead-letter.schema.json"}},
                "Alert": {"payload": {"$ref": "alert.schema.json"}},
                "TwinEntry": {"payload": {"$ref": "twin.schema.json"}},
            }
        },
    }
