"""JSON Schemas and the AsyncAPI 3 document of the public NATS subjects, generated
from :mod:`tidstream.schema` (one source of truth). ``tools/gen_schemas.py`` writes them
to ``schemas/``; ``tests/test_schemas.py`` checks the committed files are current."""

from __future__ import annotations

from typing import Any

from .schema import READING_RECORD_SCHEMA, json_schema

__all__ = ["asyncapi", "dead_letter_schema", "reading_schema"]


def reading_schema() -> dict[str, Any]:
    """JSON Schema of a message on ``tid.readings.<commune>.<device>``."""
    return json_schema(
        READING_RECORD_SCHEMA,
        "tidstream reading",
        "One decoded fill-level reading, published on tid.readings.<commune INSEE>.<DevEUI> "
        "with Nats-Msg-Id = reading_id. Stored readings (sent late after an outage) are "
        "separate messages with stored = true.",
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
        },
        "operations": {
            "publishUplink": {"action": "send", "channel": {"$ref": "#/channels/uplinks"}},
            "receiveReading": {"action": "receive", "channel": {"$ref": "#/channels/readings"}},
            "receiveDeadLetter": {"action": "receive", "channel": {"$ref": "#/channels/deadLetters"}},
        },
        "components": {
            "messages": {
                "Uplink": {
                    "contentType": "application/octet-stream",
                    "payload": {"type": "string", "format": "binary"},
                },
                "Reading": {"payload": {"$ref": "reading.schema.json"}},
                "DeadLetter": {"payload": {"$ref": "dead-letter.schema.json"}},
            }
        },
    }
