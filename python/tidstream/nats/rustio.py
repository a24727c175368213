"""JetStream I/O done in Rust (``tidstream._core``, async-nats): a PROTOTYPE measured by
``benches/bench_rustio.py`` and described in docs/NATSIO.md. Not wired into the flows yet.

:class:`RustConsumer` reads a stream with an ordered pull consumer and returns one columnar
:class:`MessageBatch` per call (one FFI crossing per batch, GIL released while waiting).
:class:`RustPublisher` publishes with ``Nats-Msg-Id`` and waits for every PubAck in Rust.
Both take tidstream's :class:`~tidstream.config.NatsSettings` (URLs, user/password, token,
NKEY seed file, ``.creds`` file, TLS CA/cert/key); no secret ever appears in their errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from .._core import NatsConsumer, NatsPublisher
from ..config import NatsSettings
from ..exceptions import ConnectorError

__all__ = ["MessageBatch", "PublishResult", "RustConsumer", "RustPublisher", "settings_dict"]


def settings_dict(cfg: NatsSettings) -> dict[str, Any]:
    """The connection settings the Rust side reads (``tls_hostname`` is not supported
    there: the host of the URL is the name verified)."""
    return {
        "urls": cfg.servers(),
        "user": cfg.user,
        "password": cfg.password,
        "token": cfg.token,
        "nkey_seed_file": cfg.nkey_seed_file,
        "credentials_file": cfg.credentials_file,
        "tls_ca_file": cfg.tls_ca_file,
        "tls_cert_file": cfg.tls_cert_file,
        "tls_key_file": cfg.tls_key_file,
        "connect_timeout": cfg.connect_timeout,
        "name": cfg.name,
        "inbox_prefix": cfg.inbox_prefix,
    }


@dataclass(frozen=True)
class MessageBatch:
    """Messages of one :meth:`RustConsumer.next_batch` call, in stream order.

    Row ``i``'s subject is ``subject_data[subject_offsets[i]:subject_offsets[i + 1]]``
    (UTF-8), its payload likewise in ``payload_data`` (Arrow large-binary layout).
    """

    #: Stream sequence of each message (int64).
    seqs: npt.NDArray[np.int64]
    #: Time the server stored each message, ns since the Unix epoch, UTC (int64).
    timestamps_ns: npt.NDArray[np.int64]
    #: Messages pending for the consumer after the last one (0: the batch reached the end
    #: of the stream); None for an empty batch.
    num_pending: int | None
    subject_offsets: npt.NDArray[np.int64]
    subject_data: npt.NDArray[np.uint8]
    payload_offsets: npt.NDArray[np.int64]
    payload_data: npt.NDArray[np.uint8]
    #: Transient consumer errors met while reading (the consumer recreates itself).
    errors: list[str]

    def __len__(self) -> int:
        return len(self.seqs)

    def subjects(self) -> pa.LargeStringArray:
        """The subjects as an Arrow array (zero copy)."""
        return pa.Array.from_buffers(
            pa.large_utf8(),
            len(self.seqs),
            [None, pa.py_buffer(self.subject_offsets), pa.py_buffer(self.subject_data)],
        )

    def payloads(self) -> pa.LargeBinaryArray:
        """The payloads as an Arrow array (zero copy)."""
        return pa.Array.from_buffers(
            pa.large_binary(),
            len(self.seqs),
            [None, pa.py_buffer(self.payload_offsets), pa.py_buffer(self.payload_data)],
        )


class RustConsumer:
    """Ordered pull consumer: every message of ``filter_subject`` in ``stream`` with a
    stream sequence above ``after_seq``, in order, exactly once per consumer (it recreates
    itself after a gap or a server restart). Buffers at most one pull request (500
    messages) ahead of the caller. Raises :class:`ConnectorError` when it cannot start."""

    def __init__(self, cfg: NatsSettings, stream: str, filter_subject: str, after_seq: int = 0) -> None:
        try:
            self._c = NatsConsumer(settings_dict(cfg), stream, filter_subject, after_seq)
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise ConnectorError(str(e)) from None

    @property
    def last_seq(self) -> int:
        """Stream sequence of the last message returned (the resume point)."""
        return self._c.last_seq

    def next_batch(self, max_msgs: int = 1000, timeout_ms: float = 100.0) -> MessageBatch:
        """Up to ``max_msgs`` messages: waits up to ``timeout_ms`` for them, returns early
        at the end of the stream (``num_pending == 0``). Empty on timeout."""
        d = self._c.next_batch(max_msgs, timeout_ms)
        return MessageBatch(**d)


@dataclass(frozen=True)
class PublishResult:
    """Outcome of :meth:`RustPublisher.publish_batch`, one row per message."""

    #: Stream sequence from the PubAck (0 when the message failed).
    seqs: npt.NDArray[np.int64]
    #: The id was already in the stream's duplicate window: acknowledged, not stored again.
    duplicate: npt.NDArray[np.bool_]
    #: None when acknowledged, else the reason.
    errors: list[str | None]

    @property
    def ok(self) -> bool:
        """Every message acknowledged."""
        return all(e is None for e in self.errors)


class RustPublisher:
    """JetStream publisher: ``Nats-Msg-Id`` on every message, every PubAck awaited (at
    most ``max_inflight`` outstanding), GIL released meanwhile."""

    def __init__(self, cfg: NatsSettings, ack_timeout_s: float = 5.0) -> None:
        try:
            self._p = NatsPublisher(settings_dict(cfg), ack_timeout_s * 1000.0)
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise ConnectorError(str(e)) from None

    def publish_batch(
        self, subjects: list[str], payloads: list[bytes], msg_ids: list[str], max_inflight: int = 4096
    ) -> PublishResult:
        """Publish and wait for all acks; an empty id means no ``Nats-Msg-Id`` header."""
        d = self._p.publish_batch(subjects, payloads, msg_ids, max_inflight)
        return PublishResult(**d)
