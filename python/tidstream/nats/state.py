"""Reading state back from streams (used at flow start)."""

from __future__ import annotations

import asyncio

from nats.js.api import ConsumerConfig, DeliverPolicy

from ..config import NatsSettings
from .connect import connect

__all__ = ["last_per_subject"]


def last_per_subject(cfg: NatsSettings, stream: str, subjects: str) -> list[bytes]:
    """The last message of every subject matching ``subjects`` in ``stream`` (one per
    subject, a ``LAST_PER_SUBJECT`` ordered consumer), in stream order."""

    async def go() -> list[bytes]:
        nc = await connect(cfg)
        try:
            js = nc.jetstream()
            if not (await js.stream_info(stream)).state.messages:
                return []
            sub = await js.subscribe(
                subjects,
                stream=stream,
                ordered_consumer=True,
                config=ConsumerConfig(deliver_policy=DeliverPolicy.LAST_PER_SUBJECT),
            )
            out: list[bytes] = []
            try:
                while True:
                    m = await sub.next_msg(timeout=10)
                    out.append(m.data)
                    if m.metadata.num_pending == 0:
                        return out
            finally:
                await sub.unsubscribe()
        finally:
            await nc.close()

    return asyncio.run(go())
