"""Connecting to NATS with the configured auth and TLS, and a private event loop that
lets synchronous code (Bytewax operators, the CLI) drive nats-py."""

from __future__ import annotations

import asyncio
import dataclasses
import ssl
import threading
from collections.abc import Awaitable, Coroutine
from typing import Any, ClassVar, TypeVar

import nats
from nats.aio.client import Client

from ..config import NatsSettings
from ..exceptions import ConnectorError

__all__ = ["LoopThread", "SharedConnection", "connect", "connect_options"]

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
        "allow_reconnect": True,
        "pending_size": 64 * 1024 * 1024,
    }
    if cfg.user is not None:
        opts["user"] = cfg.user
        opts["password"] = cfg.password
    if cfg.token is not None:
        opts["token"] = cfg.token
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


async def connect(cfg: NatsSettings) -> Client:
    """Connect, or raise :class:`ConnectorError` naming the server but no secret."""
    errors: list[str] = []

    async def _err(e: Exception) -> None:
        errors.append(type(e).__name__)

    where = cfg.redacted()["url"]
    try:
        return await asyncio.wait_for(
            nats.connect(**connect_options(cfg), error_cb=_err), timeout=max(cfg.connect_retry_s, 0.1)
        )
    except asyncio.TimeoutError:
        seen = f" (last: {errors[-1]})" if errors else ""
        raise ConnectorError(
            f"cannot connect to NATS at {where}: no server answered within {cfg.connect_retry_s:.0f} s{seen}"
        ) from None
    except Exception as e:  # nats-py raises several unrelated types here
        msg = str(e).replace(cfg.password or "\0", "***") if cfg.password else str(e)
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
    """One NATS connection and one event-loop thread per process and settings, shared by
    every source partition and sink partition of the process (reference-counted).

    A Bytewax worker runs all its partitions on one thread that holds the GIL; one loop
    thread (instead of one per partition) and one socket cut the thread switches and the
    per-connection protocol work. Use :meth:`acquire` / :meth:`release` in pairs; the
    connection closes when the last user releases it.
    """

    _lock: ClassVar[threading.Lock] = threading.Lock()
    _shared: ClassVar[dict[str, SharedConnection]] = {}

    def __init__(self, key: str, cfg: NatsSettings) -> None:
        self.key = key
        self.users = 0
        self.loop = LoopThread("tidstream-nats-shared")
        try:
            self.nc: Client = self.loop.run(connect(cfg), timeout=max(60.0, cfg.connect_retry_s + 5))
        except BaseException:
            self.loop.stop()
            raise

    @classmethod
    def acquire(cls, cfg: NatsSettings) -> SharedConnection:
        """The process's connection for ``cfg`` (connects on first use)."""
        key = repr(sorted(dataclasses.asdict(cfg).items()))
        with cls._lock:
            sc = cls._shared.get(key)
            if sc is None or sc.nc.is_closed or not sc.loop.loop.is_running():
                sc = cls(key, cfg)
                cls._shared[key] = sc
            sc.users += 1
            return sc

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the shared loop and wait for its result."""
        return self.loop.run(coro, timeout)

    def release(self) -> None:
        """Drop one user; the last one drains and closes the connection and stops the loop."""
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
        self.loop.stop()
