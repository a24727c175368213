"""LoRaWAN uplink envelopes (TTN v3, ChirpStack v4, raw) into Arrow columns."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

__all__ = ["decode_uplinks"]


def decode_uplinks(format: str, messages: Any, **kwargs: Any) -> pa.RecordBatch:
    """Placeholder replaced below once the Rust envelope parser is bound."""
    raise NotImplementedError
