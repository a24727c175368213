"""Assemble Arrow arrays from the buffers the Rust core hands over (no copies).

The core returns numpy arrays that own Rust-allocated memory (moved, not copied);
``pyarrow.Array.from_buffers`` wraps them as Arrow buffers.
"""

from __future__ import annotations

import functools
import mmap
from typing import Any

import numpy as np
import pyarrow as pa


def _buf(a: np.ndarray | None) -> pa.Buffer | None:
    return None if a is None else pa.py_buffer(a)


_zeros: pa.Buffer | None = None


def _zero_mapping(size: int) -> pa.Buffer:
    """``size`` zero bytes that cost nothing until read: a read-only anonymous mapping
    (the kernel's zero page behind every page; nothing can write it)."""
    if hasattr(mmap, "MAP_ANONYMOUS") and hasattr(mmap, "PROT_READ"):
        flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS
        return pa.py_buffer(mmap.mmap(-1, size, flags=flags, prot=mmap.PROT_READ))
    return pa.py_buffer(np.zeros(size, dtype=np.uint8))  # pragma: no cover - not Linux


def zeros(n: int) -> pa.Buffer:
    """A zero-filled buffer big enough for every all-null column of ``n`` rows (8-byte
    values or ``n + 1`` offsets), shared by all of them (Arrow buffers are immutable).

    A slice of one process-wide read-only zero mapping (grown by doubling when a batch
    needs more): no allocation and no memset per batch. A fresh ``np.zeros`` of 16 MB
    per 2-million-row batch cost ~0.1-1.5 ms (a memset whenever glibc reused heap
    memory), 0.4 ns of the ldds75 decode's 4.4 ns per frame."""
    global _zeros
    size = 8 * (n + 1)
    z = _zeros
    if z is None or z.size < size:
        z = _zero_mapping(max(size, 2 * (0 if z is None else z.size), 1 << 16))
        _zeros = z
    return z.slice(0, size)


@functools.lru_cache(maxsize=64)
def _all_null(typ: pa.DataType, n: int) -> pa.Array:
    """An all-null array of ``typ`` (primitive, string / binary, or list) and ``n`` rows
    over the shared zero buffer. Cached: Arrow arrays are immutable, so the batches of
    one size share them, and a batch's assembly makes no Arrow call for its all-null
    columns (each call cost 3-100 us right after a large decode had evicted pyarrow
    from the caches; the list column's empty child alone ~80 us)."""
    z = zeros(n)
    if pa.types.is_list(typ):
        empty = pa.array([], type=typ.value_type)
        return pa.Array.from_buffers(typ, n, [z, z], null_count=n, children=[empty])
    if pa.types.is_string(typ) or pa.types.is_binary(typ):
        return pa.Array.from_buffers(typ, n, [z, z, z], null_count=n)
    return pa.Array.from_buffers(typ, n, [z, z], null_count=n)


def primitive(
    typ: pa.DataType, n: int, col: tuple[Any, ...] | None, zero: pa.Buffer | None = None
) -> pa.Array:
    """(values, validity | None, null_count) -> Array; None -> all-null array (over
    the shared buffer from :func:`zeros` when ``zero`` is given)."""
    if col is None:
        if zero is None:
            return pa.nulls(n, typ)
        return _all_null(typ, n)
    values, validity, nulls = col
    return pa.Array.from_buffers(typ, n, [_buf(validity), _buf(values)], null_count=nulls)


def boolean(n: int, col: tuple[Any, ...] | None, zero: pa.Buffer | None = None) -> pa.Array:
    """(values bitmap, validity | None, null_count) -> BooleanArray."""
    return primitive(pa.bool_(), n, col, zero)


def string(
    n: int, col: tuple[Any, ...] | None, typ: pa.DataType | None = None, zero: pa.Buffer | None = None
) -> pa.Array:
    """(offsets, data, validity | None, null_count) -> StringArray (or binary); None ->
    all null (over the shared zero buffer when ``zero`` is given)."""
    if col is None:
        if zero is None:
            return pa.nulls(n, typ or pa.string())
        return _all_null(typ or pa.string(), n)
    offsets, data, validity, nulls = col
    return pa.Array.from_buffers(
        typ or pa.string(), n, [_buf(validity), _buf(offsets), _buf(data)], null_count=nulls
    )


def list_of_struct(
    typ: pa.ListType, n: int, col: tuple[Any, ...] | None, zero: pa.Buffer | None = None
) -> pa.Array:
    """Stored readings: (offsets, validity, nulls, measured_at, distance, temperature);
    None -> all null (over the shared zero buffer when ``zero`` is given)."""
    if col is None:
        if zero is None:
            return pa.nulls(n, typ)
        return _all_null(typ, n)
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
