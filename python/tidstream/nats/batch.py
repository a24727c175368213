"""Acknowledged JetStream publishing of a whole batch in one write, one reply inbox.

nats-py's ``publish_async`` creates a future, an inbox subject and a header dict per
message, and parses each PubAck into a dataclass (about 36 µs per message with the
waiting, see benches/RESULTS.md). :class:`BatchPublisher` instead takes the batch as a
:class:`tidstream._core.PubBatch` (subjects, ids, headers and payloads in one Rust
buffer), has Rust write the ``HPUB`` commands of the whole batch as one buffer and
sends it in one write. Two ways to be acknowledged:

* **per message** (always available): each command carries the reply subject
  ``<inbox>.<batch>.<index>`` on one wildcard subscription and every PubAck is counted;
  ``Nats-Msg-Id`` deduplication, duplicates reported.
* **atomic batches** (``atomic=True``; nats-server 2.12+ with the stream setting
  ``allow_atomic``, applied by ``tidstream nats init``): the messages are cut into ADR-50
  atomic batches (at most 1,000 messages, one stream each: grouped by the first two
  subject tokens) and only each batch's commit gets a reply: one PubAck per 1,000
  messages instead of one per message. JetStream stores a batch whole or not at all
  and still checks every ``Nats-Msg-Id``, but a batch holding an id it already has is
  refused whole (error 10201, nats-server 2.15). Any refused batch, a PubAck whose
  ``count`` differs from the batch size, or a missing PubAck makes that batch's
  messages go out again at once **per message**, with the same ids: what was stored is
  reported as duplicates, the rest is stored. So a replay after a crash (ids already
  stored) costs the per-message path, and nothing can be lost or stored twice.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from nats.aio.client import Client

from .._core import PubBatch
from ..exceptions import ConnectorError

__all__ = ["ATOMIC_MAX_MSGS", "BatchOutcome", "BatchPublisher", "as_pub_batch"]

log = logging.getLogger("tidstream.sink")

#: nats-server's default limit of messages in one atomic batch (``jetstream.limits.batch.max_msgs``).
ATOMIC_MAX_MSGS = 1000
#: Atomic batches sent before waiting for their PubAcks (a stream accepts 50 in flight).
ATOMIC_WAVE = 8
_DUPLICATE = re.compile(rb'"duplicate"\s*:\s*true')
_COUNT = re.compile(rb'"count"\s*:\s*(\d+)')
_BATCH = re.compile(rb'"batch"\s*:\s*"([^"]*)"')


def as_pub_batch(items: PubBatch | Sequence[Any]) -> PubBatch:
    """``items`` as one :class:`PubBatch`: a PubBatch as is, else a sequence of
    PubBatch and ``(subject, data, msg_id, headers)`` items (e.g. ``Publish``), in order.
    Raises :class:`ConnectorError` for a subject NATS cannot publish to."""
    if isinstance(items, PubBatch):
        return items
    if len(items) == 1 and isinstance(items[0], PubBatch):
        return items[0]
    pb = PubBatch()
    try:
        for it in items:
            if isinstance(it, PubBatch):
                pb.extend(it)
            else:
                subject, data, msg_id, headers = it
                pb.push(subject, data, msg_id, headers or None)
    except ValueError as e:
        raise ConnectorError(str(e)) from None
    return pb


@dataclass
class BatchOutcome:
    """Result of one :meth:`BatchPublisher.publish` attempt."""

    #: Indexes (into the items given) that got no PubAck or an error PubAck.
    failed: list[int] = field(default_factory=list)
    #: First error text seen (server JSON or status), for the exception message.
    errors: list[str] = field(default_factory=list)
    #: PubAcks with ``"duplicate": true`` (message already stored under its id).
    duplicates: int = 0
    #: Messages stored through atomic batches (one PubAck per batch).
    atomic: int = 0
    #: Messages confirmed through ADR-50 fast-ingest batches (Rust sink, ``[nats] fast_publish``).
    fast: int = 0


class _InlineQueue(asyncio.Queue):  # type: ignore[type-arg]
    """A subscription's pending queue that hands each message to ``handler`` at once
    (nats-py calls ``put_nowait`` from its reader task); nothing is ever queued, so the
    subscription's own callback task just waits."""

    def __init__(self, handler: Any) -> None:
        super().__init__()
        self._handler = handler

    def put_nowait(self, item: Any) -> None:
        self._handler(item)


class BatchPublisher:
    """Publish batches of messages and wait for every acknowledgement.

    Must be created and used on the event loop of ``nc``. One instance per sink
    partition; several instances may share a connection (each has its own inbox).
    ``atomic``: use ADR-50 atomic batches where the streams allow them (see the module
    docstring); a stream that refuses them (not enabled) turns them off for this
    publisher, with one warning.
    """

    def __init__(self, nc: Client, atomic: bool = False, atomic_max: int = ATOMIC_MAX_MSGS) -> None:
        self._nc = nc
        self._inbox = nc.new_inbox()
        self._inbox_b = self._inbox.encode()
        self._batches = itertools.count(1)
        self._sub: Any = None
        # The batch being waited for: (token, acks by index, expected count, event).
        self._waiting: tuple[bytes, dict[int, Any], int, asyncio.Event] | None = None
        self._raw = hasattr(nc, "_send_command") and hasattr(nc, "_flush_pending")
        self.atomic = atomic and self._raw
        self._atomic_max = max(1, min(atomic_max, ATOMIC_MAX_MSGS))
        # ADR-50 batch ids are at most 64 characters: the inbox's unique token + a counter.
        self._batch_prefix = self._inbox.rsplit(".", 1)[-1][:40]

    async def start(self) -> None:
        """Subscribe to the reply inbox (``<inbox>.*.*``). The PubAcks are counted as
        nats-py hands them to the subscription (:class:`_InlineQueue`), without the
        queue hop and callback task nats-py would run per message."""
        self._sub = await self._nc.subscribe(self._inbox + ".*.*", cb=self._on_ack, pending_msgs_limit=0)
        if isinstance(getattr(self._sub, "_pending_queue", None), asyncio.Queue):
            self._sub._pending_queue = _InlineQueue(self._ack)

    async def stop(self) -> None:
        """Unsubscribe the reply inbox (the connection stays open)."""
        if self._sub is not None:
            try:
                await self._sub.unsubscribe()
            except Exception:
                pass
            self._sub = None

    async def _on_ack(self, msg: Any) -> None:
        self._ack(msg)

    def _ack(self, msg: Any) -> None:
        w = self._waiting
        if w is None:
            return  # a late ack of an attempt given up: its message is retried by id
        token, acks, want, done = w
        _, tok, idx = msg.subject.rsplit(".", 2)
        if tok.encode() != token:
            return
        acks[int(idx)] = msg
        if len(acks) >= want:
            done.set()

    async def _wait_acks(self, done: asyncio.Event, timeout: float, reconnects: int) -> None:
        """Wait until every PubAck is in, ``timeout`` seconds pass, or the connection has
        reconnected since the batch was sent: the acks of what was in flight when the
        server went away never come, so the caller retries those items at once (same
        ``Nats-Msg-Id``: no duplicate) instead of waiting out the full timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not done.is_set():
            left = deadline - loop.time()
            if left <= 0:
                return
            try:
                await asyncio.wait_for(done.wait(), min(left, 0.25))
            except asyncio.TimeoutError:
                pass
            if self._nc.stats["reconnects"] != reconnects and self._nc.is_connected:
                return

    async def _send(
        self, buf: bytes | None, replies: int, timeout: float, slow: Any = None
    ) -> dict[int, Any]:
        """Write ``buf`` (or run ``slow(prefix)``) and collect up to ``replies`` replies on
        ``<inbox>.<token>.<k>``; returns them by ``k``."""
        nc = self._nc
        token = b"%d" % next(self._batches)
        acks: dict[int, Any] = {}
        done = asyncio.Event()
        self._waiting = (token, acks, replies, done)
        reconnects = nc.stats["reconnects"]
        prefix = self._inbox_b + b"." + token + b"."
        try:
            if slow is not None:
                await slow(prefix)
            else:
                await nc._send_command(buf(prefix) if callable(buf) else buf)
                await nc._flush_pending()
            await self._wait_acks(done, timeout, reconnects)
        finally:
            self._waiting = None
        return acks

    async def publish(
        self, items: PubBatch | Sequence[Any], timeout: float, rows: Sequence[int] | None = None
    ) -> BatchOutcome:
        """Publish every item once (a :class:`PubBatch`, or ``subject, data, msg_id,
        headers`` items) and wait up to ``timeout`` seconds for the acknowledgements.
        ``rows``: only those messages. Never raises for a missing or negative ack: those
        items are listed in :attr:`BatchOutcome.failed` (indexes into ``items``)."""
        out = BatchOutcome()
        pb = as_pub_batch(items)
        if len(pb) == 0 or (rows is not None and len(rows) == 0):
            return out
        nc = self._nc
        if nc.is_closed:
            raise ConnectorError("NATS connection closed")
        biggest = pb.max_payload_len()
        if biggest > nc.max_payload:
            raise ConnectorError(f"message of {biggest} bytes > max_payload {nc.max_payload}")
        if rows is None and self.atomic:
            per_message = await self._publish_atomic(pb, timeout, out)
            if per_message:
                await self._publish_each(pb, np.asarray(per_message, dtype=np.int64), timeout, out)
            return out
        sel = None if rows is None else np.ascontiguousarray(rows, dtype=np.int64)
        await self._publish_each(pb, sel, timeout, out)
        return out

    async def _publish_atomic(self, pb: PubBatch, timeout: float, out: BatchOutcome) -> list[int]:
        """Atomic batches, :data:`ATOMIC_WAVE` at a time; returns the message indexes
        of the batches not confirmed whole (to publish per message)."""
        rest: list[int] = []
        groups = pb.atomic_groups(self._atomic_max)
        for w in range(0, len(groups), ATOMIC_WAVE):
            wave = groups[w : w + ATOMIC_WAVE]
            if not self.atomic:  # turned off by an earlier wave
                rest.extend(i for g in wave for i in g.tolist())
                continue
            ids: list[str] = []

            def build(prefix: bytes, wave: list[Any] = wave, ids: list[str] = ids) -> bytes:
                cmds = []
                for k, g in enumerate(wave):
                    bid = f"{self._batch_prefix}-{prefix.rsplit(b'.', 2)[-2].decode()}-{k}"
                    ids.append(bid)
                    cmds.append(pb.encode_atomic(g, bid, prefix + b"%d" % k))
                return b"".join(cmds)

            acks = await self._send(build, len(wave), timeout)
            for k, g in enumerate(wave):
                msg = acks.get(k)
                d = b"" if msg is None else msg.data
                cnt = _COUNT.search(d)
                bid = _BATCH.search(d)
                if (
                    d.startswith(b"{")
                    and b'"error"' not in d
                    and cnt is not None
                    and int(cnt.group(1)) == len(g)
                    and bid is not None
                    and bid.group(1).decode() == ids[k]
                ):
                    out.atomic += len(g)
                    continue
                rest.extend(g.tolist())
                if b"10174" in d or b"not enabled" in d:  # allow_atomic off on that stream
                    if self.atomic:
                        log.warning(
                            "atomic batch publish refused (%s): publishing per message; "
                            "run `tidstream nats init` to enable allow_atomic on the output streams",
                            d.decode(errors="replace")[:200],
                        )
                    self.atomic = False
        return rest

    async def _publish_each(
        self, pb: PubBatch, sel: np.ndarray | None, timeout: float, out: BatchOutcome
    ) -> None:
        """One PubAck per message (of ``sel``, or all); failures into ``out``."""
        n = len(pb) if sel is None else len(sel)
        if self._raw:
            try:
                acks = await self._send(lambda prefix: pb.encode(prefix, sel), n, timeout)
            except ValueError as e:
                raise ConnectorError(str(e)) from None
        else:  # a nats-py without the internals used above: the public call per message
            msgs = pb.messages()
            pick = range(n) if sel is None else sel.tolist()

            async def slow(prefix: bytes) -> None:
                reply = prefix.decode()
                for k, i in enumerate(pick):
                    subject, data, msg_id, headers = msgs[i]
                    hdr = {"Nats-Msg-Id": msg_id, **(headers or {})}
                    await self._nc.publish(subject, data, reply=f"{reply}{k}", headers=hdr)

            acks = await self._send(None, n, timeout, slow=slow)
        index = range(n) if sel is None else sel.tolist()
        for k, i in enumerate(index):
            msg = acks.get(k)
            if msg is None:
                out.failed.append(i)
                continue
            d = msg.data
            if not d.startswith(b"{") or b'"error"' in d or b'"seq"' not in d:
                out.failed.append(i)
                if len(out.errors) < 3:
                    status = (msg.headers or {}).get("Status") if not d else None
                    out.errors.append(
                        f"no responders / status {status}" if status else d.decode(errors="replace")
                    )
            elif b'"duplicate"' in d and _DUPLICATE.search(d):
                out.duplicates += 1
        out.failed.sort()
