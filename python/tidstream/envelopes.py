"""LoRaWAN uplink envelopes (TTN v3, ChirpStack v4, raw) into Arrow columns.

JSON is parsed in Rust, one call per batch, with the GIL released. Malformed JSON,
missing fields, bad base64 or timestamps give error rows (``ok = False`` with
``error``, ``error_kind`` and ``error_offset``, the byte offset in the JSON), never
exceptions.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa

from . import _arrow, _core
from .codecs import _buffers
from .schema import UPLINK_SCHEMA

__all__ = ["decode_uplinks"]

Messages = Sequence[bytes | str | None] | pa.Array | pa.ChunkedArray


def _as_binary(messages: Messages) -> pa.Array:
    if isinstance(messages, pa.ChunkedArray):
        messages = messages.combine_chunks()
    if isinstance(messages, pa.Array):
        t = messages.type
        if pa.types.is_string(t) or pa.types.is_large_string(t):
            return messages.view(pa.binary() if pa.types.is_string(t) else pa.large_binary())
        if pa.types.is_binary(t) or pa.types.is_large_binary(t):
            return messages
        raise TypeError(f"messages must be a binary or string array, got {t}")
    if isinstance(messages, (bytes, str)):
        raise TypeError("messages must be a list of JSON messages; for one message use [message]")
    try:
        return pa.array([m.encode() if isinstance(m, str) else m for m in messages], type=pa.binary())
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, AttributeError) as e:
        raise TypeError(f"messages must be a list of bytes or str (None for a missing one): {e}") from None


def decode_uplinks(
    format: str,
    messages: Messages,
    *,
    device_ids: Sequence[str] | None = None,
    fports: Sequence[int | None] | None = None,
    received_at: Sequence[datetime | int | None] | None = None,
) -> pa.RecordBatch:
    """Parse uplink envelopes into :data:`tidstream.schema.UPLINK_SCHEMA` rows.

    Args:
        format: ``"ttn-v3"`` (The Things Stack), ``"chirpstack-v4"`` or ``"raw"``.
        messages: the JSON messages (``list[bytes | str]`` or a pyarrow binary/string
            array, read in place); for ``raw``, the binary FRMPayloads themselves.
        device_ids, fports, received_at: ``raw`` only: the DevEUI, FPort and receive
            time (datetime or ns since the epoch) of each payload.

    Returns:
        One row per message, in order: DevEUI (lowercase), received time (UTC, ns),
        fport, frame counter, payload bytes, best RSSI / SNR, gateway count, and
        ``ok`` / ``error`` / ``error_kind`` / ``error_offset``.

    Raises:
        RuntimeError: another thread resized the ``list`` of messages during the call
            (a list is parsed a few hundred messages per GIL release).
    """
    if format == "raw":
        return _raw(messages, device_ids, fports, received_at)
    c: dict[str, Any] | None = None
    if isinstance(messages, list):
        # bytes / str / None items are read in place by the core (no copy into an
        # Arrow array first); other bytes-like items take the Arrow path below.
        try:
            n = len(messages)
            c = _core.decode_uplinks_list(format, messages)
        except TypeError:
            c = None
    if c is None:
        arr = _as_binary(messages)
        n = len(arr)
        data, offsets, valid, voff = _buffers(arr)
        c = _core.decode_uplinks_buffers(format, data, offsets, valid, voff)
    s = UPLINK_SCHEMA
    arrays = [
        pa.Array.from_buffers(pa.bool_(), n, [None, pa.py_buffer(c["ok"])]),
        _arrow.string(n, c["dev_eui"]),
        _arrow.string(n, c["device_id"]),
        _arrow.primitive(s.field("received_at").type, n, c["received_at"]),
        _arrow.primitive(pa.int32(), n, c["fport"]),
        _arrow.primitive(pa.int64(), n, c["fcnt"]),
        _arrow.string(n, c["payload"], pa.binary()),
        _arrow.primitive(pa.float64(), n, c["rssi"]),
        _arrow.primitive(pa.float64(), n, c["snr"]),
        _arrow.primitive(pa.uint16(), n, c["gateway_count"]),
        _arrow.string(n, c["error"]),
        _arrow.string(n, c["error_kind"]),
        _arrow.primitive(pa.int32(), n, c["error_offset"]),
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=s)


def _raw(
    payloads: Any,
    device_ids: Sequence[str] | None,
    fports: Sequence[int | None] | None,
    received_at: Sequence[Any] | None,
) -> pa.RecordBatch:
    from .codecs import _as_binary_array

    arr = _as_binary_array(payloads)
    n = len(arr)
    if device_ids is None or len(device_ids) != n:
        raise ValueError("format 'raw' needs device_ids, one per payload")
    for name, col in (("fports", fports), ("received_at", received_at)):
        if col is not None and len(col) != n:
            raise ValueError(f"{name} has {len(col)} entries for {n} payloads")
    eui = [d.lower() if isinstance(d, str) else None for d in device_ids]
    errors: list[str | None] = []
    kinds: list[str | None] = []
    for d, p in zip(eui, arr.is_null().to_pylist()):
        if p:
            errors.append("missing payload (null)")
            kinds.append("missing_payload")
        elif d is None or len(d) != 16 or any(ch not in "0123456789abcdef" for ch in d):
            errors.append("DevEUI is not 16 hex digits (at byte 0)")
            kinds.append("invalid_dev_eui")
        else:
            errors.append(None)
            kinds.append(None)
    ok = [k is None for k in kinds]
    mask = np.array([not o for o in ok], dtype=bool)
    t = pa.array(received_at if received_at is not None else [None] * n, type=pa.timestamp("ns", tz="UTC"))
    cols = {
        "ok": pa.array(ok),
        "dev_eui": pa.array(eui, pa.string(), mask=mask),
        "device_id": pa.nulls(n, pa.string()),
        "received_at": t,
        "fport": pa.array(fports if fports is not None else [None] * n, pa.int32()),
        "fcnt": pa.nulls(n, pa.int64()),
        "payload": arr.cast(pa.binary()),
        "rssi": pa.nulls(n, pa.float64()),
        "snr": pa.nulls(n, pa.float64()),
        "gateway_count": pa.array([0] * n, pa.uint16()),
        "error": pa.array(errors, pa.string()),
        "error_kind": pa.array(kinds, pa.string()),
        "error_offset": pa.array([None if k is None else 0 for k in kinds], pa.int32()),
    }
    return pa.RecordBatch.from_arrays([cols[f.name] for f in UPLINK_SCHEMA], schema=UPLINK_SCHEMA)
