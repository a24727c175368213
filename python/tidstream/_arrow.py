"""Assemble Arrow arrays from the buffers the Rust core hands over (no copies).

The core returns numpy arrays that own Rust-allocated memory (moved, not copied);
``pyarrow.Array.from_buffers`` wraps them as Arrow buffers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa


def _buf(a: np.ndarray | None) -> pa.Buffer | None:
    return None if a is None else pa.py_buffer(a)


def zeros(n: int) -> pa.Buffer:
    """One zero-filled buffer big enough for every all-null column of ``n`` rows (8-byte
    values or ``n + 1`` offsets); shared by all of them (Arrow buffers are immutable).
    ``np.zeros`` gets zeroed pages from the OS, so an unread buffer costs no memset."""
    return pa.py_buffer(np.zeros(8 * (n + 1), dtype=np.uint8))


def primitive(
    typ: pa.DataType, n: int, col: tuple[Any, ...] | None, zero: pa.Buffer | None = None
) -> pa.Array:
    """(values, validity | None, null_count) -> Array; None -> all-null array (over
    ``zero``, the shared buffer from :func:`zeros`, when given)."""
    if col is None:
        if zero is None:
            return pa.nulls(n, typ)
        return pa.Array.from_buffers(typ, n, [zero, zero], null_count=n)
    values, validity, nulls = col
    return pa.Array.from_buffers(typ, n, [_buf(validity), _buf(values)], null_count=nulls)


def boolean(n: int, col: tuple[Any, ...] | None, zero: pa.Buffer | None = None) -> pa.Array:
    """(values bitmap, validity | None, null_count) -> BooleanArray."""
    return primitive(pa.bool_(), n, col, zero)


def string(
    n: int, col: tuple[Any, ...] | None, typ: pa.DataType | None = None, zero: pa.Buffer | None = None
) -> pa.Array:
    """(offsets, data, validity | None, null_count) -> StringArray (or binary); None ->
    all null (over ``zero`` when given)."""
    if col is None:
        if zero is None:
            return pa.nulls(n, typ or pa.string())
        return pa.Array.from_buffers(typ or pa.string(), n, [zero, zero, zero], null_count=n)
    offsets, data, validity, nulls = col
    return pa.Array.from_buffers(
        typ or pa.string(), n, [_buf(validity), _buf(offsets), _buf(data)], null_count=nulls
    )


def list_of_struct(
    typ: pa.ListType, n: int, col: tuple[Any, ...] | None, zero: pa.Buffer | None = None
) -> pa.Array:
    """Stored readings: (offsets, validity, nulls, measured_at, distance, temperature);
    None -> all null (over ``zero`` when given)."""
    if col is None:
        if zero is None:
            return pa.nulls(n, typ)
        empty = pa.array([], type=typ.value_type)
        return pa.Array.from_buffers(typ, n, [zero, zero], null_count=n, children=[empty])
    offsets, validity, nulls, measured_at, dist, temp = col
    m = len(measured_at)
    struct_t = typ.value_type
    children = [
        pa.Array.from_buffers(struct_t.field(0).type, m, [None, _buf(measured_at)]),
        primitive(pa.float64(), m, dist),
        primitive(pa.float64(), m, temp),
    ]
    values = pa.StructArray.from_arrays(children, fields=list(struct_t))
    return pa.Array.from_buffers(typ, n, [_buf(validity), _buf(offsets)], null_count=nulls, children=[values])
