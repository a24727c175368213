"""Helpers of the replay flow: time window parsing and picking readings out of the
ingest step's output."""

from __future__ import annotations

from datetime import datetime, timezone

from ..exceptions import ConfigError
from ..nats.jetstream import Publish
from .export import ExportItem

__all__ = ["readings_only", "time_ns"]


def time_ns(text: str | None) -> int | None:
    """RFC 3339 / ISO 8601 time (UTC if no offset) to ns since the epoch; None stays None."""
    if not text:
        return None
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"{text!r} is not an ISO 8601 time (e.g. 2026-11-01T00:00:00Z)") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp() * 1_000_000) * 1000


def readings_only(item: tuple[str, Publish]) -> list[ExportItem]:
    """Keep readings (drop dead letters); block by raw sequence, order by (seq, index)."""
    _, pub = item
    if not pub.msg_id.startswith("r:"):
        return []
    _, seq, k = pub.msg_id.split(":")
    return [ExportItem(int(seq), (int(seq), int(k)), pub.data)]
