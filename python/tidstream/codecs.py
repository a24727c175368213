"""Sensor frame codecs: vendor-native decoding, normalized batch decoding, encoding.

All work happens in the Rust core (``tidstream._core``); this module converts
arguments and assembles Arrow results. Batch calls cross into Rust once per batch and
release the GIL while decoding.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from . import _arrow, _core
from .schema import READING_SCHEMA

__all__ = [
    "alarm_flag_names",
    "decode_batch",
    "decode_vendor",
    "encode",
    "encode_batch",
    "error_kinds",
    "load_layout",
    "model_info",
    "models",
]

Payloads = Sequence[bytes | bytearray | memoryview | None] | pa.Array | pa.ChunkedArray
Fports = int | None | Sequence[int | None] | np.ndarray | pa.Array


def models() -> list[str]:
    """Names of the supported sensor models (built-ins and loaded layouts), sorted."""
    return _core.models()


def model_info(model: str) -> dict[str, Any]:
    """Facts about a model: ``vendor``, ``description``, ``fports``, ``engine``, ``can_encode``."""
    return _core.model_info(model)


def error_kinds() -> list[str]:
    """The stable names of every decode error kind (``DecodeError.kind``, ``error_kind``)."""
    return _core.error_kinds()


def alarm_flag_names() -> dict[int, str]:
    """Bit -> name of the ``alarm_flags`` column."""
    return dict(_core.alarm_flags())


def decode_vendor(model: str, payload: bytes, fport: int | None = None) -> dict[str, Any]:
    """Decode one frame exactly as the vendor's reference decoder does.

    Returns the same keys, value types and values as the vendor's JavaScript decoder
    (strings stay strings, nested objects stay nested; JS numbers that are integral
    come back as ``int``). ``fport=None`` means "the model's usual port".

    Raises:
        DecodeError: where the vendor decoder reports an error (e.g. ``unknown FPort``,
            kind ``unknown_fport``), and where it would read past the end of the
            frame (kind ``truncated``; the vendor decoder returns NaN or 0 there).
        ValueError: unknown model.
        TypeError: ``payload`` is not bytes-like.
    """
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise TypeError(
            f"payload must be bytes, got {type(payload).__name__}; for hex text use bytes.fromhex(text)"
        )
    return _core.decode_vendor(model, bytes(payload), fport)


def _as_binary_array(payloads: Payloads) -> pa.Array:
    if isinstance(payloads, pa.ChunkedArray):
        payloads = payloads.combine_chunks()
    if isinstance(payloads, pa.Array):
        if pa.types.is_binary(payloads.type) or pa.types.is_large_binary(payloads.type):
            return payloads
        raise TypeError(
            f"payloads must be a pyarrow binary or large_binary array, got {payloads.type}; "
            "cast with arr.cast(pa.binary())"
        )
    if isinstance(payloads, (bytes, bytearray, str)):
        raise TypeError(
            "payloads must be a list of frames (list[bytes]) or a pyarrow BinaryArray; "
            "for one frame use [payload] or decode_vendor()"
        )
    try:
        return pa.array(payloads, type=pa.binary())
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError) as e:
        raise TypeError(f"payloads must be a list of bytes (or None for a missing frame): {e}") from None


def _fports(fports: Fports, n: int) -> tuple[np.ndarray | None, int | None]:
    if fports is None:
        return None, None
    if isinstance(fports, (int, np.integer)) and not isinstance(fports, bool):
        if not 0 <= int(fports) <= 255:
            raise ValueError(f"fport must be 0..255, got {fports}")
        return None, int(fports)
    if isinstance(fports, (pa.Array, pa.ChunkedArray)):
        fports = fports.to_numpy(zero_copy_only=False)
    if isinstance(fports, np.ndarray) and fports.dtype.kind in "iu":
        arr = fports.astype(np.int32, copy=False)
    else:
        try:
            arr = np.array([-1 if f is None else f for f in fports], dtype=np.int64)
        except (TypeError, ValueError):
            raise TypeError("fports must be None, an int, or a sequence of int | None") from None
        if arr.size and (arr.min() < -1 or arr.max() > 255):
            raise ValueError("fports must be in 0..255 (or None)")
        arr = arr.astype(np.int32)
    if len(arr) != n:
        raise ValueError(f"fports has {len(arr)} entries for {n} payloads")
    return np.ascontiguousarray(arr), None


def _buffers(arr: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, int]:
    validity, offsets_buf, data_buf = arr.buffers()
    off_type = np.int64 if pa.types.is_large_binary(arr.type) else np.int32
    n = len(arr)
    offsets = np.frombuffer(offsets_buf, dtype=off_type)[arr.offset : arr.offset + n + 1]
    if len(offsets) < n + 1:  # empty array with no offsets buffer content
        offsets = np.zeros(n + 1, dtype=off_type)
    data = (
        np.frombuffer(data_buf, dtype=np.uint8)
        if data_buf is not None and data_buf.size
        else np.empty(0, dtype=np.uint8)
    )
    valid = np.frombuffer(validity, dtype=np.uint8) if validity is not None else None
    return data, offsets, valid, arr.offset


def decode_batch(model: str, payloads: Payloads, fports: Fports = None) -> pa.RecordBatch:
    """Decode many frames of one model into normalized readings.

    Args:
        model: a name from :func:`models`.
        payloads: ``list[bytes]`` (``None`` entries allowed) or a pyarrow
            ``BinaryArray`` / ``LargeBinaryArray`` (read in place, zero-copy).
        fports: ``None`` (each model's usual port), one int for all frames, or one
            ``int | None`` per frame.

    Returns:
        A ``pyarrow.RecordBatch`` with :data:`tidstream.schema.READING_SCHEMA`: one row
        per payload, in order. A frame that cannot be decoded gives ``ok = False``
        and ``error``, ``error_kind`` and ``error_offset``; this function never raises
        for bad frames.

    Raises:
        ValueError: unknown model, or ``fports`` of the wrong length.
        TypeError: ``payloads`` or ``fports`` of an unsupported type.
    """
    arr = _as_binary_array(payloads)
    n = len(arr)
    fport_arr, fport_one = _fports(fports, n)
    data, offsets, valid, voff = _buffers(arr)
    cols = _core.decode_batch_buffers(model, data, offsets, valid, voff, fports=fport_arr, fport=fport_one)
    return _reading_batch(n, cols)


def _reading_batch(n: int, c: dict[str, Any]) -> pa.RecordBatch:
    s = READING_SCHEMA
    f64 = pa.float64()
    z = _arrow.zeros(n)  # shared by every all-null column
    arrays = [
        pa.Array.from_buffers(pa.bool_(), n, [None, pa.py_buffer(c["ok"])]),
        _arrow.primitive(f64, n, c["distance_mm"], z),
        _arrow.primitive(f64, n, c["fill_pct_reported"], z),
        _arrow.primitive(f64, n, c["temperature_c"], z),
        _arrow.primitive(f64, n, c["battery_pct"], z),
        _arrow.primitive(f64, n, c["battery_v"], z),
        _arrow.boolean(n, c["tilt"], z),
        _arrow.boolean(n, c["fire_alarm"], z),
        _arrow.primitive(pa.uint16(), n, c["alarm_flags"], z),
        _arrow.primitive(s.field("measured_at").type, n, c["measured_at"], z),
        _arrow.primitive(f64, n, c["latitude"], z),
        _arrow.primitive(f64, n, c["longitude"], z),
        _arrow.list_of_struct(s.field("stored_readings").type, n, c["stored_readings"], z),
        _arrow.string(n, c["error"], zero=z),
        _arrow.string(n, c["error_kind"], zero=z),
        _arrow.primitive(pa.int32(), n, c["error_offset"], z),
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=s)


def encode(model: str, **reading: Any) -> bytes:
    """Encode one reading (normalized units) into a frame of ``model``.

    Keyword arguments: ``distance_mm``, ``fill_pct_reported``, ``temperature_c``,
    ``battery_pct``, ``battery_v``, ``tilt``, ``fire_alarm``, ``alarm_flags`` (int
    bitmask), ``measured_at_ms`` (Unix ms), ``latitude``, ``longitude`` and ``stored``
    (``[(measured_at_ms, distance_mm | None), ...]``, tid1 only). Values a model cannot
    carry are ignored; values out of the frame's range raise :class:`EncodeError`.
    """
    return _core.encode(model, **reading)


_FLOAT_COLS = (
    "distance_mm",
    "fill_pct_reported",
    "temperature_c",
    "battery_pct",
    "battery_v",
    "latitude",
    "longitude",
)


def encode_batch(model: str, readings: Mapping[str, Any] | pa.Table | pa.RecordBatch) -> pa.Array:
    """Encode many readings into frames: a ``pyarrow.BinaryArray``, one frame per row.

    ``readings`` maps column names (as in :func:`encode`; ``measured_at`` as
    ``datetime64`` / Arrow timestamp or ``measured_at_ms`` as int) to equal-length
    arrays; nulls / NaN mean "absent". The GIL is released while encoding.
    """
    if isinstance(readings, (pa.Table, pa.RecordBatch)):
        readings = {name: readings.column(name) for name in readings.column_names}
    cols: dict[str, Any] = {}
    n: int | None = None

    def arr(v: Any, dtype: Any, fill: Any) -> np.ndarray:
        if isinstance(v, (pa.Array, pa.ChunkedArray)):
            v = v.to_numpy(zero_copy_only=False)
        a = np.asarray(v)
        if a.dtype == object:
            a = np.array([fill if x is None else x for x in a])
        if np.issubdtype(a.dtype, np.datetime64):
            a = a.astype("datetime64[ms]").astype(np.int64)
        return np.ascontiguousarray(a.astype(dtype))

    for name, v in readings.items():
        if name in _FLOAT_COLS:
            cols[name] = arr(v, np.float64, np.nan)
        elif name in ("tilt", "fire_alarm"):
            a = np.asarray(
                v.to_numpy(zero_copy_only=False) if isinstance(v, (pa.Array, pa.ChunkedArray)) else v,
                dtype=object,
            )
            cols[name] = np.array([-1 if x is None else int(bool(x)) for x in a], dtype=np.int8)
        elif name == "alarm_flags":
            cols[name] = arr(v, np.uint16, 0)
        elif name in ("measured_at", "measured_at_ms"):
            cols["measured_at"] = arr(v, np.int64, np.iinfo(np.int64).min)
        else:
            continue  # other columns (ids, ground truth, ...) are not frame content
        m = len(cols[name if name != "measured_at_ms" else "measured_at"])
        if n is not None and m != n:
            raise ValueError(f"column {name} has {m} rows, expected {n}")
        n = m
    if n is None:
        raise ValueError("readings has no encodable column (distance_mm, battery_v, ...)")
    full = {k: cols.get(k) for k in (*_FLOAT_COLS, "tilt", "fire_alarm", "alarm_flags", "measured_at")}
    offsets, data = _core.encode_batch_buffers(model, n, full)
    return pa.Array.from_buffers(pa.binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def load_layout(layout: str | PathLike[str]) -> str:
    """Compile a declarative codec layout and register it; returns the model name.

    ``layout`` is a path to a ``.toml`` layout file or the TOML text itself (the format
    is in ``docs/LAYOUTS.md``). The model is then usable by every function here and by
    the dataflows. Reloading the same name replaces a run-time layout; built-in
    models cannot be replaced.

    Raises:
        LayoutError: the layout is invalid (the message names the key and the fix).
    """
    text: str
    if isinstance(layout, PathLike) or (
        isinstance(layout, str) and "\n" not in layout and layout.endswith(".toml")
    ):
        text = Path(layout).read_text(encoding="utf-8")
    else:
        text = str(layout)
    return _core.load_layout(text)
