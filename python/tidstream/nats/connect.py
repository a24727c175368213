"""Connecting to NATS with the configured auth and TLS, and a private event loop that
lets synchronous code (Bytewax operators, the CLI) drive nats-py."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import ssl
import threading
from collections.abc import Awaitable, Coroutine
from typing import Any, ClassVar, TypeVar

import nats
from nats.aio.client import Client

from ..config import NatsSettings
from ..exceptions import ConnectorError

__all__ = ["LoopThread", "SharedConnection", "connect", "connect_options", "mask_secrets"]

log = logging.getLogger("tidstream.nats")

T = TypeVar("T")


def connect_options(cfg: NatsSettings) -> dict[str, Any]:
    """``nats.connect`` keyword arguments for the settings (auth, TLS, reconnects)."""
    opts: dict[str, Any] = {
        "servers": cfg.servers(),
        "name": cfg.name,
        "connect_timeout": cfg.connect_timeout,
        # Keep trying for ever: a NATS outage must pause the flows, not end them.
        "max_reconnect_attempts": -1,
        "reconnect_time_wait": 1,
        # A server that stops answering with the TCP connection still open (a network
        # partition, a frozen host) is only noticed by missed pings: every 20 s, 3
        # missed = disconnected (~60-80 s; nats-py's default, 2 x 120 s, outlived the
        # sink's retries). Then the flows wait for the reconnect (docs/RELIABILITY.md).
        "ping_interval": 20,
        "max_outstanding_pings": 3,
        "allow_reconnect": True,
        "pending_size": 64 * 1024 * 1024,
    }
    if cfg.user is not None:
        opts["user"] = cfg.user
        opts["password"] = cfg.password
    if cfg.token is not None:
        opts["token"] = cfg.token
    if cfg.inbox_prefix:
        opts["inbox_prefix"] = cfg.inbox_prefix
    if cfg.nkey_seed_file:
        opts["nkeys_seed"] = cfg.nkey_seed_file
    if cfg.credentials_file:
        opts["user_credentials"] = cfg.credentials_file
    if cfg.tls_ca_file or cfg.tls_cert_file:
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cfg.tls_ca_file)
        if cfg.tls_cert_file:
            ctx.load_cert_chain(cfg.tls_cert_file, cfg.tls_key_file)
        opts["tls"] = ctx
        if cfg.tls_hostname:
            opts["tls_hostname"] = cfg.tls_hostname
    return opts


#: Secrets at least this long are masked wherever they occur; shorter ones only where they
#: stand alone (no letter or digit on either side), so that a short password does not mangle
#: the words of a message. Same rule as the Rust data path (``core/src/natsio``).
MASK_ANYWHERE_LEN = 8


def mask_secrets(text: str, cfg: NatsSettings) -> str:
    """``text`` with the password, the token and any ``user:password@`` of the URLs
    replaced by ``***`` (for error messages and logs; see :data:`MASK_ANYWHERE_LEN`)."""
    secrets = [cfg.password, cfg.token]
    for u in cfg.servers():
        if "@" in u and "://" in u:
            userinfo = u.split("://", 1)[1].rsplit("@", 1)[0]
            secrets += [userinfo, userinfo.partition(":")[2]]
    for s in sorted((s for s in secrets if s), key=len, reverse=True):
        if len(s) >= MASK_ANYWHERE_LEN:
            text = text.replace(s, "***")
        else:
            text = re.sub(rf"(?<![^\W_]){re.escape(s)}(?![^\W_])", "***", text)
    return text


async def connect(cfg: NatsSettings) -> Client:
    """Connect, or raise :class:`ConnectorError` naming the server but no secret."""
    errors: list[str] = []

    async def _err(e: Exception) -> None:
        errors.append(type(e).__name__)
        if connected:
            log.warning(
                "NATS error: %s", mask_secrets(f"{type(e).__name__}: {e}", cfg), extra={"nats": where}
            )

    async def _disconnected() -> None:
        if holder and holder[0].is_closed:  # our own close(): nats-py calls this callback too
            log.debug("NATS connection to %s closed", where, extra={"nats": where})
        else:
            log.warning("NATS disconnected from %s; reconnecting", where, extra={"nats": where})

    async def _reconnected() -> None:
        log.info("NATS reconnected to %s", where, extra={"nats": where})

    where = cfg.redacted()["url"]
    connected = False
    holder: list[Client] = []
    try:
        nc = await asyncio.wait_for(
            nats.connect(
                **connect_options(cfg),
                error_cb=_err,
                disconnected_cb=_disconnected,
                reconnected_cb=_reconnected,
            ),
            timeout=max(cfg.connect_retry_s, 0.1),
        )
        connected = True
        holder.append(nc)
        return nc
    except asyncio.TimeoutError:
        seen = f" (last: {errors[-1]})" if errors else ""
        raise ConnectorError(
            f"cannot connect to NATS at {where}: no server answered within {cfg.connect_retry_s:.0f} s{seen}"
        ) from None
    except Exception as e:  # nats-py raises several unrelated types here
        msg = mask_secrets(str(e), cfg)
        raise ConnectorError(f"cannot connect to NATS at {where}: {type(e).__name__}: {msg}") from None


class LoopThread:
    """One asyncio event loop on a daemon thread; run coroutines from sync code.

    nats-py connections are bound to the loop that created them, so each component that
    owns a connection owns one of these.
    """

    def __init__(self, name: str = "tidstream-nats") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def submit(self, coro: Awaitable[T]) -> Any:
        """Schedule ``coro`` without waiting (returns a concurrent Future)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)  # type: ignore[arg-type]

    def stop(self) -> None:
        """Cancel pending tasks, stop the loop and close it."""
        if self.loop.is_running():

            async def _cancel_all() -> None:
                me = asyncio.current_task()
                tasks = [t for t in asyncio.all_tasks() if t is not me]
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

            try:
                asyncio.run_coroutine_threadsafe(_cancel_all(), self.loop).result(5)
            except Exception:
                pass
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(5)
        if not self.loop.is_running() and not self.loop.is_closed():
            self.loop.close()


class SharedConnection:
    """NATS connections of one process on **one event-loop thread**, reference-counted.

    The sink partitions of a process share the ``"sink"`` channel: one connection (each
    partition has its own reply inbox on it) and one loop thread instead of one each,
    which saves thread switches under the GIL. Other channels get their own connection
    on the same loop thread. (Source partitions do not use this: each keeps its own
    connection and loop, so that messages pushed to one partition never queue ahead of
    another's JetStream API replies.) Use :meth:`acquire` / :meth:`release` in pairs; a
    connection closes when its last user releases it, the loop thread stops when the
    last connection is closed.
    """

    _lock: ClassVar[threading.Lock] = threading.Lock()
    _shared: ClassVar[dict[str, SharedConnection]] = {}
    _loop: ClassVar[LoopThread | None] = None
    _loop_users: ClassVar[int] = 0

    def __init__(self, key: str, loop: LoopThread, nc: Client) -> None:
        self.key = key
        self.users = 0
        self.loop = loop
        self.nc = nc

    @classmethod
    def acquire(cls, cfg: NatsSettings, channel: str = "default") -> SharedConnection:
        """The process's connection for ``cfg`` and ``channel`` (connects on first use)."""
        key = repr(sorted(dataclasses.asdict(cfg).items())) + "|" + channel
        with cls._lock:
            sc = cls._shared.get(key)
            if sc is not None and not sc.nc.is_closed and sc.loop.loop.is_running():
                sc.users += 1
                return sc
            if cls._loop is None or not cls._loop.loop.is_running():
                cls._loop = LoopThread("tidstream-nats")
                cls._loop_users = 0
            loop = cls._loop
            cls._loop_users += 1
        try:
            nc = loop.run(connect(cfg), timeout=max(60.0, cfg.connect_retry_s + 5))
        except BaseException:
            cls._release_loop(loop)
            raise
        with cls._lock:
            sc = cls._shared.get(key)
            if sc is not None and not sc.nc.is_closed:  # another thread connected meanwhile
                extra = nc
            else:
                sc, extra = cls(key, loop, nc), None
                cls._shared[key] = sc
            sc.users += 1
        if extra is not None:
            loop.run(extra.close(), timeout=10)
            cls._release_loop(loop)
        return sc

    @classmethod
    def _release_loop(cls, loop: LoopThread) -> None:
        with cls._lock:
            if cls._loop is loop:
                cls._loop_users -= 1
                if cls._loop_users > 0:
                    return
                cls._loop = None
        loop.stop()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the shared loop and wait for its result."""
        return self.loop.run(coro, timeout)

    def release(self) -> None:
        """Drop one user; the last one drains and closes the connection (and the last
        connection of the process stops the loop thread)."""
        with SharedConnection._lock:
            self.users -= 1
            if self.users > 0:
                return
            if SharedConnection._shared.get(self.key) is self:
                del SharedConnection._shared[self.key]
        try:
            self.loop.run(self.nc.drain(), timeout=10)
        except Exception:
            pass
        SharedConnection._release_loop(self.loop)
