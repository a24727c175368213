"""Structured logs of the flow processes: stdlib ``logging`` on stderr, as text or as JSON
lines (``log_format = "json"``), with every NATS secret of the settings masked.

A JSON line holds ``ts`` (RFC 3339, UTC), ``level``, ``logger``, ``msg``, the ``extra=``
fields of the call (e.g. ``flow``, ``stream``, ``partition``) and ``exc`` for exceptions.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone
from typing import Any

from .config import NatsSettings

__all__ = ["JsonFormatter", "setup_logging"]

# Attributes every LogRecord has: anything else came from ``extra=``.
_STD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


class _Masking(logging.Formatter):
    def __init__(self, fmt: str | None, nats: NatsSettings | None) -> None:
        super().__init__(fmt)
        self._nats = nats

    def _mask(self, text: str) -> str:
        if self._nats is None:
            return text
        from .nats.connect import mask_secrets

        return mask_secrets(text, self._nats)

    def format(self, record: logging.LogRecord) -> str:
        return self._mask(super().format(record))


class JsonFormatter(_Masking):
    """One JSON object per line (secrets masked)."""

    def __init__(self, nats: NatsSettings | None = None) -> None:
        super().__init__(None, nats)

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for k, v in vars(record).items():
            if k not in _STD and not k.startswith("_"):
                out[k] = v
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return self._mask(json.dumps(out, default=str, ensure_ascii=False))


def setup_logging(log_format: str = "text", level: str = "INFO", nats: NatsSettings | None = None) -> None:
    """Configure the ``tidstream`` loggers: one stderr handler, text or JSON lines.
    ``nats``: settings whose secrets are masked in every line."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter(nats))
    else:
        handler.setFormatter(_Masking("%(asctime)s %(levelname)s %(name)s: %(message)s", nats))
    root = logging.getLogger("tidstream")
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(level.upper())
    root.propagate = False
