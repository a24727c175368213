"""tidstream: the open data backbone for sensor-driven waste collection.

Decode LoRaWAN fill-level sensor frames (vendor payloads inside TTN v3 / ChirpStack v4
uplinks) in batches, in Rust, into Arrow::

    >>> import tidstream
    >>> batch = tidstream.decode_batch("milesight-em310-udl", [bytes.fromhex("01755c03824408040001")])
    >>> batch.column("distance_mm")[0].as_py()
    2116.0
    >>> tidstream.decode_vendor("milesight-em310-udl", bytes.fromhex("01755c03824408040001"))
    {'battery': 92, 'distance': 2116, 'position': 'tilt'}
"""

from __future__ import annotations

from . import _core, routes
from .codecs import (
    alarm_flag_names,
    decode_batch,
    decode_vendor,
    encode,
    encode_batch,
    error_kinds,
    load_layout,
    model_info,
    models,
)
from .envelopes import decode_uplinks
from .exceptions import (
    ConfigError,
    ConnectorError,
    DecodeError,
    EncodeError,
    LayoutError,
    TidstreamError,
)
from .forecast import Forecaster
from .schema import READING_SCHEMA, UPLINK_SCHEMA

__version__: str = _core.__version__

__all__ = [
    "READING_SCHEMA",
    "UPLINK_SCHEMA",
    "ConfigError",
    "ConnectorError",
    "DecodeError",
    "EncodeError",
    "Forecaster",
    "LayoutError",
    "TidstreamError",
    "__version__",
    "alarm_flag_names",
    "decode_batch",
    "decode_uplinks",
    "decode_vendor",
    "encode",
    "encode_batch",
    "error_kinds",
    "load_layout",
    "model_info",
    "models",
    "routes",
]
