"""Publishing uplinks and reading stream state (demo, simulator ``--nats``, tools)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..config import NatsSettings, Subjects
from .connect import connect

__all__ = ["StreamCounts", "UplinkOut", "publish_uplinks", "stream_counts"]

#: (subject, payload, headers or None)
UplinkOut = tuple[str, bytes, "dict[str, str] | None"]


async def _publish(
    cfg: NatsSettings,
    messages: Iterable[UplinkOut],
    rate: float | None,
    progress: Callable[[int], None] | None,
) -> int:
    nc = await connect(cfg)
    js = nc.jetstream(publish_async_max_pending=4000)
    n = 0
    t0 = time.monotonic()
    try:
        for subject, data, headers in messages:
            await js.publish_async(subject, data, headers=headers)
            n += 1
            if rate:
                ahead = n / rate - (time.monotonic() - t0)
                if ahead > 0:
                    await asyncio.sleep(ahead)
            if progress and n % 1000 == 0:
                progress(n)
        await asyncio.wait_for(js.publish_async_completed(), timeout=120)
    finally:
        await nc.close()
    if progress:
        progress(n)
    return n


def publish_uplinks(
    cfg: NatsSettings,
    messages: Iterable[UplinkOut],
    *,
    rate: float | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Publish to JetStream (acknowledged), at ``rate`` msg/s or as fast as possible."""
    return asyncio.run(_publish(cfg, messages, rate, progress))


@dataclass
class StreamCounts:
    """Messages per stream, and dead letters per reason."""

    raw: int
    readings: int
    dlq: int
    dlq_by_reason: dict[str, int]


def stream_counts(cfg: NatsSettings, streams: tuple[str, str, str], subjects: Subjects) -> StreamCounts:
    """Counts of the raw, readings and dead-letter streams."""

    async def go() -> StreamCounts:
        nc = await connect(cfg)
        try:
            js = nc.jetstream()
            raw = (await js.stream_info(streams[0])).state.messages
            readings = (await js.stream_info(streams[1])).state.messages
            info = await js.stream_info(streams[2], subjects_filter=subjects.dlqs)
            by = {s.split(".")[-1]: n for s, n in (info.state.subjects or {}).items()}
            return StreamCounts(raw, readings, info.state.messages, dict(sorted(by.items())))
        finally:
            await nc.close()

    return asyncio.run(go())
