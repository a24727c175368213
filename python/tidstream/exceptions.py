"""The tidstream exception hierarchy.

Every error tidstream raises on purpose is a :class:`TidstreamError`. Errors about bad
input data are also :class:`ValueError`, so ``except ValueError`` keeps working.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "ConnectorError",
    "DecodeError",
    "EncodeError",
    "LayoutError",
    "TidstreamError",
]


class TidstreamError(Exception):
    """Base class of every tidstream error."""


class DecodeError(TidstreamError, ValueError):
    """A frame or envelope that cannot be decoded.

    Attributes:
        kind: stable snake_case name of the failure (``truncated``, ``unknown_fport``,
            ``crc_mismatch``, ...; the full list is ``tidstream.error_kinds()``).
        offset: byte offset in the payload (or in the JSON message, for envelope
            errors) where the failure was detected.
        frame_index: index of the frame in its batch, or ``None`` for single frames.
    """

    def __init__(
        self,
        message: str,
        kind: str = "invalid_value",
        offset: int | None = None,
        frame_index: int | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.offset = offset
        self.frame_index = frame_index

    def __reduce__(self):  # keep attributes through pickling (multiprocessing, Bytewax)
        return (type(self), (str(self), self.kind, self.offset, self.frame_index))


class ConfigError(TidstreamError, ValueError):
    """Invalid configuration (a config file, a layout, a registry row)."""


class LayoutError(ConfigError):
    """A codec layout file that cannot be compiled.

    Attributes:
        path: where in the layout, e.g. ``records[2].fields[0].type`` (empty when the
            TOML itself does not parse; the message then gives line and column).
    """

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(message)
        self.path = path

    def __reduce__(self):
        return (type(self), (str(self), self.path))


class EncodeError(TidstreamError, ValueError):
    """A reading that cannot be encoded into a frame of the requested model.

    Attributes:
        frame_index: row of the batch that failed, or ``None`` for single readings.
    """

    def __init__(self, message: str, frame_index: int | None = None) -> None:
        super().__init__(message)
        self.frame_index = frame_index

    def __reduce__(self):
        return (type(self), (str(self), self.frame_index))


class ConnectorError(TidstreamError):
    """A NATS / JetStream failure (connection, stream set-up, publish acknowledgement)."""
