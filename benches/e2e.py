"""End-to-end benchmark: simulated PMA fleet -> embedded nats-server -> ingest flow ->
readings stream -> export flow -> Parquet, every flow a real ``python -m bytewax.run``
process, as ``tidstream run`` starts it.

Measured in one run, on one machine, against one embedded nats-server:

* **raw consume ceiling**: the raw stream read by nats-py alone and dropped, with an
  ordered push consumer + callback on one connection (what ``JetStreamSource`` uses),
  and with a pull consumer + ``fetch`` for reference;
* **ingest flow, one process**: frames/s from the raw stream to the readings stream,
  timed from process start to the moment the readings + dead-letter counts of the
  streams stop growing at their final values (polled every ~20 ms), and excluding
  process start-up (measured separately, same flow on an empty stream);
* **export flow**: readings/s from the readings stream to Parquet (start to exit);
* **memory**: resident size (VmRSS, VmHWM from ``/proc/<pid>/status``) of each flow
  process, sampled every ~50 ms;
* **long run**: the ingest flow over a larger fleet, RSS over time (first vs last
  quartile of its steady state, see :class:`MemoryTrend`);
* **CPU**: user + system time of the client side and of the nats-server per message;
* **where the ingest time goes** (:func:`measure_components`): the flow's parts alone
  in this process on the same messages (source, step with a cProfile split, Bytewax,
  sink), to compare with the flow.

Exact accounting is checked on every run: the raw sequences of the readings (from the
Parquet export and from the readings stream) and of the dead letters are disjoint and
cover 1..N.

``run.py`` turns :func:`run_e2e` into the "e2e" section of RESULTS.md;
``bench_e2e.py`` runs a tiny fleet through :func:`run_e2e` as a smoke test. Sizes:
``TIDSTREAM_E2E_UPLINKS`` (default 100,000), ``TIDSTREAM_E2E_LONG_FACTOR`` (4: the
long run's fleet and uplinks relative to the main one; 0 = no long run),
``TIDSTREAM_E2E_PARTITIONS`` (default: the configuration default),
``TIDSTREAM_E2E_REPEATS`` (repeats of the ceilings and of the main ingest run, best
kept; default 3: the goals compare like with like, a best-of-N flow run with a best-of-N
ceiling).

CPUs (Linux): ``TIDSTREAM_E2E_SERVER_CPUS`` runs the nats-servers on those CPUs only and
``TIDSTREAM_E2E_CLIENT_CPUS`` the benchmark process with everything it starts (ceiling
consumers, flow processes) on those, e.g. ``0-3`` and ``4-7``: the goals are per flow
process, and on a machine with enough cores this keeps the server off the flow's cores
(default: everything shares every core).

Standalone: ``.venv/bin/python benches/e2e.py [--uplinks N] [--long-factor K]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.csv as pacsv

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

DEFAULT_UPLINKS = 100_000
DEFAULT_LONG_FACTOR = 4
#: Uplink interval of the simulated fleet (hours): 15 min, so a PMA-sized fleet (~1,450
#: sensors) makes ~140,000 uplinks a simulated day.
INTERVAL_H = 0.25
START_DAY = "2026-11-16"


def parse_cpus(text: str | None) -> frozenset[int] | None:
    """``"0-3,6"`` -> {0, 1, 2, 3, 6}; empty or None -> None (no pinning)."""
    if not text or not text.strip():
        return None
    out: set[int] = set()
    for part in text.split(","):
        lo, _, hi = part.strip().partition("-")
        out.update(range(int(lo), int(hi or lo) + 1))
    return frozenset(out)


def env_int(name: str, default: int) -> int:
    v = os.environ.get(name)
    return default if v in (None, "") else int(v)


# --------------------------------------------------------------------------------------
# Fleet
# --------------------------------------------------------------------------------------


@dataclass
class Fleet:
    """A simulated PMA fleet: the registry file and a way to (re)generate its uplinks."""

    registry_path: Path
    devices: int  # in the territory
    registered: int  # in the registry file (the rest is left out: unknown_device)
    uplinks: int  # how many messages ``messages()`` yields
    scale: float
    days: float
    seed: int
    _sim: Any = field(repr=False, default=None)
    formats: Counter = field(default_factory=Counter)
    bytes_total: int = 0

    def messages(self) -> Iterator[tuple[str, bytes, None]]:
        """``(subject, envelope JSON, None)`` in time order, exactly ``uplinks`` of them
        (TTN v3 on ``tid.up.ttn.<dev>``, ChirpStack v4 on ``tid.up.chirpstack.<dev>``)."""
        n = 0
        self.formats.clear()
        self.bytes_total = 0
        for b in self._sim.uplinks():
            devs = b.column("device_id").to_pylist()
            fmts = b.column("format").to_pylist()
            envs = b.column("envelope").to_pylist()
            for dev, fmt, env in zip(devs, fmts, envs):
                if n >= self.uplinks:
                    return
                token = "ttn" if fmt.startswith("ttn") else "chirpstack"
                self.formats[fmt] += 1
                self.bytes_total += len(env)
                n += 1
                yield (f"tid.up.{token}.{dev}", env, None)
        if n < self.uplinks:
            raise RuntimeError(f"the simulation made only {n} uplinks, {self.uplinks} wanted")


def make_fleet(folder: Path, uplinks: int, scale: float = 1.0, seed: int = 7) -> Fleet:
    """PMA territory at ``scale`` (~1,445 sensors at 1), 2 % of the sensors left out of
    the registry (their uplinks must end as ``unknown_device`` dead letters), simulated
    long enough for ``uplinks`` uplinks, envelopes mixed (70 % TTN v3, 30 % ChirpStack
    v4 by device, the simulator's default)."""
    from tidstream.simulate import Territory, simulate

    terr = Territory.pma(scale=scale, seed=seed)
    reg = terr.registry
    n_unknown = max(1, len(reg) // 50)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "registry.csv"
    pacsv.write_csv(reg.slice(0, len(reg) - n_unknown), path)
    per_day = len(reg) * 24 / INTERVAL_H
    days = max(INTERVAL_H / 24, uplinks / per_day * 1.25 + INTERVAL_H / 24)
    sim = simulate(
        terr, days=days, start=START_DAY, interval_h=INTERVAL_H, seed=seed, envelopes="mixed", truth=False
    )
    return Fleet(path, len(reg), len(reg) - n_unknown, uplinks, scale, days, seed, sim)


# --------------------------------------------------------------------------------------
# NATS
# --------------------------------------------------------------------------------------


def settings_for(url: str, partitions: int | None) -> Any:
    from tidstream.config import Settings

    s = Settings()
    s.nats.url = url
    if partitions:
        s.streams.partitions = partitions
    return s


def init_streams(settings: Any) -> None:
    from tidstream.nats.connect import connect
    from tidstream.nats.setup import init_jetstream

    async def go() -> None:
        nc = await connect(settings.nats)
        try:
            await init_jetstream(nc.jetstream(), settings)
        finally:
            await nc.close()

    asyncio.run(go())


def stream_messages(settings: Any, stream: str) -> int:
    from tidstream.nats.connect import connect

    async def go() -> int:
        nc = await connect(settings.nats)
        try:
            return int((await nc.jetstream().stream_info(stream)).state.messages)
        finally:
            await nc.close()

    return asyncio.run(go())


async def _consume_push(settings: Any, stream: str, subject: str, n: int, timeout: float) -> float:
    """Seconds for an ordered push consumer with a callback that drops every message
    (what ``JetStreamSource`` subscribes with, same pending limits) to deliver ``n``."""
    from tidstream.nats.connect import connect

    nc = await connect(settings.nats)
    try:
        js = nc.jetstream()
        done = asyncio.Event()
        count = 0

        async def cb(msg: Any) -> None:
            nonlocal count
            count += 1
            if count >= n:
                done.set()

        t0 = time.perf_counter()
        sub = await js.subscribe(
            subject,
            stream=stream,
            ordered_consumer=True,
            cb=cb,
            pending_msgs_limit=80_000,
            pending_bytes_limit=256 * 1024 * 1024,
        )
        await asyncio.wait_for(done.wait(), timeout)
        t1 = time.perf_counter()
        await sub.unsubscribe()
        return t1 - t0
    finally:
        await nc.close()


async def _consume_raw_pull(
    settings: Any, stream: str, subject: str, n: int, timeout: float, batch: int = 1000
) -> float:
    """Seconds for a pull consumer (no acks) driven by hand to deliver ``n``: pull
    requests (``$JS.API.CONSUMER.MSG.NEXT``, ``batch`` messages each, two in flight)
    answered on one inbox subscription with a callback that drops every message. No
    per-message task, future or ordered-consumer bookkeeping: the cheapest way nats-py
    lets Python receive a stream."""
    from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
    from tidstream.nats.connect import connect

    nc = await connect(settings.nats)
    try:
        js = nc.jetstream()
        t0 = time.perf_counter()
        ci = await js.add_consumer(
            stream,
            ConsumerConfig(
                ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.ALL, filter_subject=subject,
                inactive_threshold=30.0, max_waiting=8,
            ),
        )  # fmt: skip
        inbox = nc.new_inbox()
        api = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{ci.name}"
        req = json.dumps({"batch": batch, "expires": 5_000_000_000}).encode()
        done = asyncio.Event()
        count = 0
        asked = 0

        async def cb(msg: Any) -> None:
            nonlocal count, asked
            if not msg.reply:  # status (408 request expired, 404 no messages): ask again
                if count < n and not msg.data:
                    asked += batch
                    await nc.publish(api, req, reply=inbox)
                return
            count += 1
            if count >= n:
                done.set()
            elif count % batch == 0:
                asked += batch
                await nc.publish(api, req, reply=inbox)

        sub = await nc.subscribe(inbox, cb=cb, pending_msgs_limit=0, pending_bytes_limit=256 * 1024 * 1024)
        for _ in range(2):
            asked += batch
            await nc.publish(api, req, reply=inbox)
        await asyncio.wait_for(done.wait(), timeout)
        t1 = time.perf_counter()
        await sub.unsubscribe()
        await js.delete_consumer(stream, ci.name)
        return t1 - t0
    finally:
        await nc.close()


async def _consume_fetch(
    settings: Any, stream: str, subject: str, n: int, timeout: float, batch: int = 1000
) -> float:
    """Seconds for a pull consumer (no acks) read with ``fetch(batch)`` to deliver ``n``."""
    from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
    from tidstream.nats.connect import connect

    nc = await connect(settings.nats)
    try:
        js = nc.jetstream()
        cfg = ConsumerConfig(
            ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.ALL, inactive_threshold=30.0
        )
        t0 = time.perf_counter()
        psub = await js.pull_subscribe(
            subject, stream=stream, config=cfg, pending_msgs_limit=80_000,
            pending_bytes_limit=256 * 1024 * 1024,
        )  # fmt: skip
        count = 0
        deadline = t0 + timeout
        while count < n:
            if time.perf_counter() > deadline:
                raise TimeoutError(f"fetch: {count} of {n} messages after {timeout:.0f} s")
            msgs = await psub.fetch(batch, timeout=5)
            count += len(msgs)
        t1 = time.perf_counter()
        await psub.unsubscribe()
        return t1 - t0
    finally:
        await nc.close()


def _consume_rust(settings: Any, stream: str, subject: str, n: int, timeout: float) -> float:
    """Seconds for the Rust consumer (``tidstream._core``, its ordered pull consumer on
    async-nats, docs/NATSIO.md) to hand ``n`` messages to Python as columnar batches
    turned into Arrow arrays (subjects, payloads), the batches then dropped."""
    from tidstream.nats.rustio import RustConsumer

    t0 = time.perf_counter()
    c = RustConsumer(settings.nats, stream, subject)
    got, deadline = 0, time.monotonic() + timeout
    while got < n and time.monotonic() < deadline:
        b = c.next_batch(4096, timeout_ms=1000)
        b.subjects(), b.payloads()
        got += len(b)
    t1 = time.perf_counter()
    if got != n:
        raise RuntimeError(f"Rust consumer read {got} of {n} messages within {timeout:.0f} s")
    return t1 - t0


def settle(settings: Any = None, timeout: float | None = None) -> None:
    """Before each timed run: write back the dirty pages left by earlier runs (the raw
    stream just published, the last run's readings) so that the kernel's write-back does
    not land inside the next timed run, whichever it is (ceiling or flow); and, given
    ``settings``, wait (up to ``timeout`` s) until the earlier runs' ephemeral consumers
    on the raw stream are gone (the server removes them after their inactivity
    threshold), so that no run shares the server with the leftovers of the one before.
    ``timeout`` defaults to ``TIDSTREAM_E2E_SETTLE_S`` (20; the smoke test sets 0: it
    checks the accounting, not the rates)."""
    os.sync()
    if timeout is None:
        timeout = float(os.environ.get("TIDSTREAM_E2E_SETTLE_S", "20"))
    if settings is not None and timeout > 0:
        from tidstream.nats.connect import connect

        async def go() -> None:
            nc = await connect(settings.nats)
            try:
                js = nc.jetstream()
                deadline = time.monotonic() + timeout
                while time.monotonic() < deadline:
                    info = await js.stream_info(settings.streams.raw)
                    if info.state.consumer_count == 0:
                        return
                    await asyncio.sleep(0.25)
            finally:
                await nc.close()

        asyncio.run(go())
    time.sleep(0.2)


@dataclass
class CeilingRuns:
    """One consumer kind's repeats over the whole raw stream."""

    seconds: list[float]
    #: CPU of this process and of the nats-server while consuming (the waits before each
    #: repeat excluded), all repeats
    client_s: float
    server_s: float

    def us_per_msg(self, n: int) -> tuple[float, float]:
        """(client, nats-server) CPU µs per message, ``n`` messages a repeat."""
        k = n * len(self.seconds)
        return self.client_s / k * 1e6, self.server_s / k * 1e6


def consume_ceiling(
    settings: Any, n: int, repeats: int, kind: str, server_pid: int | None = None
) -> CeilingRuns:
    """Consume the whole raw stream (``n`` messages) ``repeats`` times with one consumer kind
    (``push``, ``pull``, ``fetch``, ``rust``)."""
    stream = settings.streams.raw
    # The whole stream, as the flow's shared reader reads it (docs/NATSIO.md): the filter
    # ">" costs nats-server ~4 µs per delivered message on this stream, "tid.raw.>" (every
    # raw subject too, but a wildcard the server matches message by message) ~12-13.
    subject = ">"
    timeout = max(60.0, n / 5_000)
    out = CeilingRuns([], 0.0, 0.0)
    for _ in range(repeats):
        settle(settings)
        c0, s0 = time.process_time(), proc_cpu_s(server_pid)
        if kind == "rust":
            out.seconds.append(_consume_rust(settings, stream, subject, n, timeout))
        else:
            fn = {"push": _consume_push, "pull": _consume_raw_pull, "fetch": _consume_fetch}[kind]
            out.seconds.append(asyncio.run(fn(settings, stream, subject, n, timeout)))
        out.client_s += time.process_time() - c0
        out.server_s += proc_cpu_s(server_pid) - s0
    return out


#: The consumers timed on the raw stream: kind, label (the ceilings' labels start with
#: "raw consume ceiling"), repeats relative to the configured ones.
CEILING_KINDS = (
    ("push", "raw consume ceiling: ordered push + callback", 0),
    ("pull", "raw consume ceiling: raw pull requests + inbox callback", 0),
    ("fetch", "raw consume: pull `fetch(1000)`", -1),
    ("rust", "raw consume: Rust consumer (tidstream._core) -> Python batches", 0),
)


def io_floor(
    settings: Any, n: int, repeats: int, payload: bytes, msg_ids: bool, server_pid: int | None = None
) -> CeilingRuns:
    """The I/O the ingest flow cannot avoid, with no work in between: the raw stream read as
    the flow reads it (the Rust shared reader: one unfiltered consumer, a lane per
    partition) and, per frame, one fixed reading (``payload``, a real reading of the main
    run) published on ``tid.readings.floor.<device>`` by the Rust publisher in ADR-50
    fast-ingest batches from a second thread (the pipelined sink), every batch confirmed.
    ``msg_ids``: with the flow's ``Nats-Msg-Id`` (``r:<raw seq>:0``, the JetStream dedupe the
    effectively-once design needs) or without. No envelope parse, no decode, no registry,
    no Bytewax, no Python per message: the readings are built before the clock starts
    (one untimed read of the raw stream for each frame's device) and each consumed batch
    picks its rows by raw sequence in one Rust call. The output streams are emptied before
    each repeat; each repeat's stored count is checked."""
    import queue

    import numpy as np
    from tidstream._core import PubBatch
    from tidstream.nats.jetstream import _part_token
    from tidstream.nats.rustio import FAST_FLOW, RustConsumer, RustPublisher

    st, subjects = settings.streams, settings.subjects
    token = _part_token(subjects.raw_partition("{}"))  # as JetStreamSource finds it
    timeout = max(60.0, n / 5_000)
    # Row k of `readings` is the reading of raw sequence k + 1.
    readings = PubBatch()
    con = RustConsumer(settings.nats, st.raw, ">", 0)
    while len(readings) < n:
        b = con.next_batch(1000, 1000.0)
        if not len(b.seqs):
            raise TimeoutError(f"I/O floor: the raw stream holds {len(readings):,} of {n:,} frames")
        so, sd = b.subject_offsets, b.subject_data.tobytes()
        for i, seq in enumerate(b.seqs.tolist()):
            if seq != len(readings) + 1:
                raise RuntimeError(f"I/O floor: raw sequence {seq} where {len(readings) + 1} was expected")
            device = sd[so[i] : so[i + 1]].rsplit(b".", 1)[1].decode()
            readings.push(subjects.reading("floor", device), payload, f"r:{seq}:0" if msg_ids else "")
    con = None
    out = CeilingRuns([], 0.0, 0.0)
    for _ in range(repeats):
        recreate_output_streams(settings)
        settle(settings)
        con = RustConsumer(settings.nats, st.raw, part_token=token, read_whole=True)
        lanes = [con.add_lane(str(p), subjects.raw_partition(p), 0) for p in range(st.partitions)]
        pub = RustPublisher(settings.nats, 5.0, FAST_FLOW if settings.nats.fast_publish else 0)
        todo: queue.Queue[Any] = queue.Queue(2)  # the pipelined sink's depth: one batch ahead
        failed: list[str] = []
        th = threading.Thread(target=_floor_publisher, args=(pub, todo, failed), name="floor-publisher")
        c0, s0 = time.process_time(), proc_cpu_s(server_pid)
        t0 = time.perf_counter()
        th.start()
        got = 0
        try:
            while got < n:
                if time.perf_counter() - t0 > timeout:
                    raise TimeoutError(f"I/O floor: {got:,} of {n:,} frames in {timeout:.0f} s")
                # One publish per round over the lanes (a lane's batch is its share of a
                # 500-message pull): what each lane has read ahead; after an empty round,
                # wait up to 1 ms on the last lane (returns early when another lane's queue
                # is full).
                pb = PubBatch()
                for lane in lanes:
                    b = con.next_batch(500, 1.0 if not len(pb) and lane == lanes[-1] else 0.0, lane)
                    if len(b.seqs):
                        got += len(b.seqs)
                        pb.extend(readings, np.subtract(b.seqs, 1))
                if len(pb):
                    todo.put(pb)
        finally:
            todo.put(None)
            th.join()
        out.seconds.append(time.perf_counter() - t0)
        out.client_s += time.process_time() - c0
        out.server_s += proc_cpu_s(server_pid) - s0
        con = pub = None  # their connections close now, before the next repeat
        if failed:
            raise RuntimeError(f"I/O floor: publishing failed: {failed[0]}")
        stored = stream_messages(settings, st.readings)
        if stored != n:
            raise RuntimeError(f"I/O floor: {stored:,} readings stored, {n:,} frames read")
    return out


def _floor_publisher(pub: Any, todo: Any, failed: list[str]) -> None:
    """:func:`io_floor`'s sink thread: publish each batch until None, keep the first error."""
    while (b := todo.get()) is not None:
        if failed:
            continue  # drain: the reader must never block on a dead sink
        try:
            r = pub.publish(b)
        except Exception as e:  # reported by io_floor
            failed.append(repr(e))
            continue
        if not r.ok:
            failed.append(str(next(e for e in r.errors if e is not None)))


def first_reading(settings: Any) -> bytes:
    """The payload of the readings stream's first message (a real reading)."""
    from tidstream.nats.connect import connect

    async def go() -> bytes:
        nc = await connect(settings.nats)
        try:
            m = await nc.jetstream().get_msg(settings.streams.readings, seq=1)
            return bytes(m.data or b"")
        finally:
            await nc.close()

    return asyncio.run(go())


#: Labels of the I/O floor runs, by "with Nats-Msg-Id".
FLOOR_LABELS = {
    True: "I/O floor: raw read + a fixed reading published per frame with Nats-Msg-Id (no decode)",
    False: "I/O floor without Nats-Msg-Id (no JetStream dedupe)",
}


def read_raw_seqs(settings: Any, stream: str) -> list[int]:
    """The raw sequence of every message of the readings or dead-letter stream (from
    the ``raw_seq`` field of its JSON), in stream order."""
    from tidstream.nats.connect import connect

    pat = re.compile(rb'"raw_seq":(\d+)')

    async def go() -> list[int]:
        nc = await connect(settings.nats)
        try:
            js = nc.jetstream()
            total = (await js.stream_info(stream)).state.messages
            out: list[int] = []
            if not total:
                return out
            done = asyncio.Event()

            async def cb(msg: Any) -> None:
                m = pat.search(msg.data)
                out.append(int(m.group(1)) if m else -1)
                if len(out) >= total:
                    done.set()

            sub = await js.subscribe(
                ">", stream=stream, ordered_consumer=True, cb=cb, pending_msgs_limit=80_000,
                pending_bytes_limit=256 * 1024 * 1024,
            )  # fmt: skip
            await asyncio.wait_for(done.wait(), max(60.0, total / 5_000))
            await sub.unsubscribe()
            return out
        finally:
            await nc.close()

    return asyncio.run(go())


def dlq_reasons(settings: Any) -> dict[str, int]:
    from tidstream.nats.publish import stream_counts

    st = settings.streams
    return stream_counts(settings.nats, (st.raw, st.readings, st.dlq), settings.subjects).dlq_by_reason


# --------------------------------------------------------------------------------------
# Flow processes
# --------------------------------------------------------------------------------------


def read_mem(pid: int) -> tuple[int, int] | None:
    """(VmRSS, VmHWM) in KiB, None once the process is gone (or a zombie)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    rss = hwm = None
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
        elif line.startswith("VmHWM:"):
            hwm = int(line.split()[1])
    if rss is None or hwm is None:
        return None
    return rss, hwm


def proc_cpu_s(pid: int | None) -> float:
    """CPU seconds (user + system) a live process has used so far; 0 when unknown."""
    if pid is None:
        return 0.0
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    f = stat.rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def thread_cpu_s(pid: int) -> dict[int, tuple[str, float]]:
    """CPU seconds (user + system) of each live thread of ``pid`` so far: tid -> (thread
    name, seconds); empty once the process is gone."""
    out: dict[int, tuple[str, float]] = {}
    tick = os.sysconf("SC_CLK_TCK")
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for t in tids:
        try:
            stat = Path(f"/proc/{pid}/task/{t}/stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        f = stat.rsplit(")", 1)[1].split()
        out[int(t)] = (name, (int(f[11]) + int(f[12])) / tick)
    return out


def children_cpu_s() -> float:
    """CPU seconds of this process's reaped children (the flow processes)."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


@dataclass
class CpuUse:
    """CPU time of one phase: the client side (this process, or the flow process) and
    the nats-server, for ``n`` messages."""

    what: str
    n: int
    wall_s: float
    client_s: float
    server_s: float


@dataclass
class FlowRun:
    """One flow process, start to exit."""

    name: str
    returncode: int
    exit_s: float  # process start -> exit
    #: (s since start, VmRSS KiB, VmHWM KiB)
    mem: list[tuple[float, int, int]]
    #: (s since start, messages per polled stream)
    counts: list[tuple[float, tuple[int, ...]]]
    final_counts: tuple[int, ...]
    log: str
    cpu_s: float = 0.0  # the flow process, user + system
    server_cpu_s: float = 0.0  # the nats-server, process start to exit
    #: CPU seconds per thread name (threads of one name summed), as last sampled (~50 ms
    #: before the exit: a lower bound per thread)
    thread_cpu: dict[str, float] = field(default_factory=dict)

    def threads_text(self, n: int) -> str:
        """Thread CPU in µs per message of ``n``, busiest first."""
        top = sorted(self.thread_cpu.items(), key=lambda kv: -kv[1])
        return ", ".join(f"{name} {s / n * 1e6:.1f}" for name, s in top if s / n * 1e6 >= 0.05)

    @property
    def peak_rss_mib(self) -> float:
        return max((h for _, _, h in self.mem), default=0) / 1024

    @property
    def first_output_s(self) -> float | None:
        """First poll at which an output stream had grown (None: never polled any)."""
        base = self.counts[0][1] if self.counts else ()
        for t, c in self.counts:
            if c != base:
                return t
        return None

    def steady_rate(self, n: int, lo: float = 0.1, hi: float = 0.9) -> float | None:
        """Frames/s while the outputs went from ``lo`` to ``hi`` of their final count (the
        polled streams' messages summed; ``n`` frames in all): the flow's rate at work,
        without its start-up and its end, and without subtracting a separately measured
        start-up. None when the polls cannot resolve it."""
        if not self.counts:
            return None
        base, final = sum(self.counts[0][1]), sum(self.final_counts)
        if final <= base:
            return None
        t_lo = t_hi = None
        for t, c in self.counts:
            frac = (sum(c) - base) / (final - base)
            if t_lo is None and frac >= lo:
                t_lo = t
            if frac >= hi:
                t_hi = t
                break
        if t_lo is None or t_hi is None or t_hi <= t_lo:
            return None
        return n * (hi - lo) / (t_hi - t_lo)

    @property
    def complete_s(self) -> float:
        """First poll at which the polled streams held their final counts (the process
        exit time when nothing was polled)."""
        for t, c in self.counts:
            if c == self.final_counts:
                return t
        return self.exit_s

    def goal_rate(self, n: int, startup_s: float) -> float:
        """The goals' figure for this run: the LOWER of its steady rate and its rate
        excluding ``startup_s`` (the same flow's start-to-exit on an empty stream). Neither
        is exact: the start-up run includes the flow's end, so subtracting it flatters;
        outputs that reach the streams in bursts (the nats-py sink) flatter the steady rate."""
        return min(self.steady_rate(n) or float("inf"), n / (self.complete_s - startup_s))


def start_env(settings: Any, registry: Path | None, export_dir: Path) -> dict[str, str]:
    """The flow's environment: the benchmark server, its registry and export folder,
    configuration defaults otherwise; ``TIDSTREAM_STOP_AT_END=1`` (finish when drained)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIDSTREAM_")}
    env.update(
        {
            "TIDSTREAM_NATS_URL": settings.nats.url,
            "TIDSTREAM_STREAMS_PARTITIONS": str(settings.streams.partitions),
            "TIDSTREAM_EXPORT_DIR": str(export_dir),
            "TIDSTREAM_BATCH_SIZE": str(settings.batch_size),
            "TIDSTREAM_EXPORT_BLOCK_SIZE": str(settings.export_block_size),
            "TIDSTREAM_STOP_AT_END": "1",
            "PYTHONPATH": str(ROOT / "python") + os.pathsep + os.environ.get("PYTHONPATH", ""),
        }
    )
    if registry is not None:
        env["TIDSTREAM_REGISTRY"] = str(registry)
    return env


def run_flow(
    name: str,
    settings: Any,
    env: dict[str, str],
    work: Path,
    *,
    poll_streams: tuple[str, ...] = (),
    timeout: float = 600.0,
    mem_interval: float = 0.05,
    poll_interval: float = 0.02,
    server_pid: int | None = None,
) -> FlowRun:
    """Run ``dataflows/<name>.py`` once (fresh recovery folder, snapshot interval and
    batch size of the configuration) and watch it: memory of the process, message
    counts of ``poll_streams``."""
    from bytewax.recovery import init_db_dir
    from tidstream.nats.connect import connect

    rec = Path(tempfile.mkdtemp(prefix=f"rec-{name}-", dir=work))
    init_db_dir(rec, 1)
    settle(settings)
    cmd = [
        sys.executable, "-m", "bytewax.run", f"{ROOT / 'dataflows' / (name + '.py')}:flow",
        "-r", str(rec), "-s", str(settings.snapshot_interval_s), "-b", "0",
    ]  # fmt: skip
    # TIDSTREAM_E2E_PERF=<folder>: each flow run under `perf record -g` (a profile, not a
    # measurement: perf's own cost lands in the flow CPU), to <folder>/<flow>-<data path>-<n>.data
    perf_dir = os.environ.get("TIDSTREAM_E2E_PERF")
    if perf_dir:
        Path(perf_dir).mkdir(parents=True, exist_ok=True)
        tag = f"{name}-{env.get('TIDSTREAM_NATS_DATA_PATH', 'auto')}"
        k = len(list(Path(perf_dir).glob(f"{tag}-*.data")))
        cmd = ["perf", "record", "-F", "499", "-g", "-q", "-o", f"{perf_dir}/{tag}-{k}.data", "--", *cmd]
    log_path = rec / "flow.log"
    mem: list[tuple[float, int, int]] = []
    threads: dict[int, tuple[str, float]] = {}
    counts: list[tuple[float, tuple[int, ...]]] = []
    stop = threading.Event()
    poll_ready = threading.Event()
    poll_error: list[BaseException] = []

    async def poll() -> None:
        nc = await connect(settings.nats)
        try:
            js = nc.jetstream()
            while True:
                c = tuple([(await js.stream_info(s)).state.messages for s in poll_streams])
                counts.append((time.perf_counter(), c))
                poll_ready.set()
                if stop.is_set():
                    return
                await asyncio.sleep(poll_interval)
        finally:
            await nc.close()

    def poller() -> None:
        try:
            asyncio.run(poll())
        except BaseException as e:  # reported after the run
            poll_error.append(e)
            poll_ready.set()

    th = None
    if poll_streams:
        th = threading.Thread(target=poller, name=f"poll-{name}", daemon=True)
        th.start()
        poll_ready.wait(10)
    with open(log_path, "wb") as log:
        cpu0, srv0 = children_cpu_s(), proc_cpu_s(server_pid)
        t_start = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = t_start + timeout
            while proc.poll() is None:
                m = read_mem(proc.pid)
                if m is not None:
                    mem.append((time.perf_counter() - t_start, *m))
                threads.update(thread_cpu_s(proc.pid))
                if time.perf_counter() > deadline:
                    raise TimeoutError(f"{name} flow did not finish within {timeout:.0f} s")
                time.sleep(mem_interval)
            exit_s = time.perf_counter() - t_start
            srv_cpu = proc_cpu_s(server_pid) - srv0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            stop.set()
            if th is not None:
                th.join(10)
    text = log_path.read_text(errors="replace")
    if poll_error:
        raise RuntimeError(f"polling {poll_streams} failed: {poll_error[0]!r}")
    final: tuple[int, ...] = ()
    if poll_streams:
        final = tuple(stream_messages(settings, s) for s in poll_streams)
        counts = [(t - t_start, c) for t, c in counts if t >= t_start]
    shutil.rmtree(rec, ignore_errors=True)
    cpu = children_cpu_s() - cpu0
    by_name: dict[str, float] = {}
    for tname, ts in threads.values():
        by_name[tname] = by_name.get(tname, 0.0) + ts
    return FlowRun(name, proc.returncode, exit_s, mem, counts, final, text, cpu, srv_cpu, by_name)


# --------------------------------------------------------------------------------------
# Where the ingest time goes: the flow's parts, each alone, in this process
# --------------------------------------------------------------------------------------


@dataclass
class Components:
    """The ingest flow taken apart, each part timed alone on the same messages."""

    frames: int
    batches: int
    items_out: int  # readings + dead letters the step produced
    source_s: float  # JetStreamSource partitions drained (nats-py, RawMsg), all partitions
    step_s: float  # Ingestor (the flat_map_batch step) over the same batches
    sink_s: float  # JetStreamSink partitions, one PubAck per message (the flow's default)
    bytewax_s: float  # Bytewax alone: same items in and out, no-op source/step/sink
    #: (category, seconds at unprofiled speed, profiled seconds); see :func:`profile_step`
    step_profile: list[tuple[str, float, float]] = field(default_factory=list)
    step_profiled_s: float = 0.0
    #: the sink again with ADR-50 atomic batches (streams.atomic_publish), seconds
    sink_atomic_s: float = 0.0
    #: (client CPU s, nats-server CPU s) of the sink per message, and with atomic batches
    sink_cpu: tuple[float, float] = (0.0, 0.0)
    sink_atomic_cpu: tuple[float, float] = (0.0, 0.0)
    #: the step again on the same batches as the Rust source's columnar items
    #: (:class:`~tidstream.nats.jetstream.RawBatch`, what the flow's step gets on the
    #: Rust data path), seconds
    step_columnar_s: float = 0.0


def columnar_item(msgs: list[Any]) -> Any:
    """One partition's messages as the Rust source's columnar item (a
    :class:`~tidstream.nats.jetstream.RawBatch`)."""
    from tidstream.nats.jetstream import RawBatch

    return RawBatch.of_msgs(msgs[0].part, msgs)


class _NullSinkPart:
    def __init__(self, counter: list[int]) -> None:
        self.counter = counter

    def write_batch(self, items: list[Any]) -> None:
        self.counter[0] += sum(len(pb) for pb in items)

    def snapshot(self) -> None:
        return None

    def close(self) -> None:
        pass


def bytewax_alone(
    msgs: list[Any], step_of: Callable[[], Any], batch_size: int, parts: list[str]
) -> tuple[float, int]:
    """Seconds for Bytewax (``run_main``, one worker) to move the same items as the
    ingest flow: ``msgs`` in through a testing source in batches, the step's outputs
    (``step_of()``'s, one ``(partition, PubBatch)`` per partition and batch, computed
    beforehand and looked up) out of ``flat_map_batch``, into a partitioned sink that
    drops them (``part_fn`` as ``JetStreamSink``'s). Returns seconds and messages moved."""
    import bytewax.operators as op
    from bytewax.dataflow import Dataflow
    from bytewax.outputs import FixedPartitionedSink, StatefulSinkPartition
    from bytewax.testing import TestingSource, run_main

    counter = [0]

    class Part(_NullSinkPart, StatefulSinkPartition):
        pass

    class NullSink(FixedPartitionedSink):
        def list_parts(self) -> list[str]:
            return list(parts)

        def part_fn(self, item_key: str) -> int:
            try:
                return int(item_key) % len(parts)
            except ValueError:
                return 0

        def build_part(self, step_id: str, for_part: str, resume_state: Any) -> Any:
            return Part(counter)

    # The testing source cuts consecutive batches of batch_size: their outputs are
    # gathered beforehand, so that the step costs Bytewax nothing but a dict lookup.
    chunk_out: dict[int, tuple[int, list[Any]]] = {}
    step_fn = step_of()
    for i in range(0, len(msgs), batch_size):
        chunk = msgs[i : i + batch_size]
        chunk_out[chunk[0].seq] = (len(chunk), step_fn(chunk))

    def step(batch: list[Any]) -> list[Any]:
        hit = chunk_out.get(batch[0].seq)
        if hit is not None and hit[0] == len(batch):
            return hit[1]
        raise RuntimeError("the testing source cut a batch differently")

    flow = Dataflow("bytewax-alone")
    raw = op.input("raw-uplinks", flow, TestingSource(msgs, batch_size))
    out = op.flat_map_batch("decode", raw, step)
    op.output("publish", out, NullSink())
    t0 = time.perf_counter()
    run_main(flow)
    return time.perf_counter() - t0, counter[0]


#: Step profile categories, in report order.
STEP_CATEGORIES = (
    "ingest kernel (Rust `ingest_batch`: subjects, envelopes, registry join, times, decode, "
    "fill ratio, frame counters, reading messages, stored readings, dead letters, one "
    "PubBatch per partition; one call per batch)",
    "raw-format headers (`_raw_fields`: `int()`, `fromisoformat`; raw-format frames only)",
    "step's own Python (counters, metrics)",
)
#: the categories that are Rust calls (taken at their profiled time)
RUST_CATEGORIES = STEP_CATEGORIES[:1]


def profile_step(
    ingestor: Any, batches: list[list[Any]], unprofiled_s: float
) -> tuple[list[tuple[str, float, float]], float]:
    """cProfile one pass of the step and split its time into :data:`STEP_CATEGORIES`.

    Each category is the time of the calls made from the step's own frames (``batches``,
    ``_step``, ``_run``): the Rust kernel (less the Python header parser it calls back
    for raw-format frames), the header parser, and the step's own time with its other
    callees (metrics). The Rust calls (few per batch)
    are taken at their profiled time; cProfile inflates the Python categories (many small
    calls), so those share the rest of the unprofiled step time in proportion to their
    profiled times. Returns [(category, estimated s, profiled s)], profiled total.
    """
    import cProfile
    import pstats

    pr = cProfile.Profile()
    t0 = time.perf_counter()
    pr.enable()
    for b in batches:
        ingestor(b)
    pr.disable()
    profiled = time.perf_counter() - t0
    st = pstats.Stats(pr).stats  # type: ignore[attr-defined]
    c_kernel, c_raw, c_own = STEP_CATEGORIES

    def in_ingest(key: tuple[str, int, str]) -> bool:
        return key[0].endswith(("flow/ingest.py", "flow\\ingest.py"))

    def is_step_frame(key: tuple[str, int, str]) -> bool:
        return in_ingest(key) and key[2] in ("batches", "_step", "_run")

    cat = dict.fromkeys(STEP_CATEGORIES, 0.0)
    for key, (_cc, _nc, tt, ct, callers) in st.items():
        name = key[2]
        if is_step_frame(key):
            cat[c_own] += tt
        elif in_ingest(key) and name == "_raw_fields":
            cat[c_raw] += ct  # called back from inside the kernel
            cat[c_kernel] -= ct
        for ck, edge in callers.items():
            if not is_step_frame(ck) or is_step_frame(key):
                continue
            ect = edge[3]
            if "ingest_batch" in name or "ingest_columns" in name:
                cat[c_kernel] += ect
            else:  # metrics, list and dict operations, ...
                cat[c_own] += ect
    rust = sum(cat[c] for c in RUST_CATEGORIES)
    py_prof = sum(cat.values()) - rust
    py_real = max(0.0, unprofiled_s - rust)
    out = []
    for c in STEP_CATEGORIES:
        est = cat[c] if c in RUST_CATEGORIES else (cat[c] / py_prof * py_real if py_prof else 0.0)
        out.append((c, est, cat[c]))
    return out, profiled


def recreate_output_streams(settings: Any) -> None:
    """Delete and re-create the readings and dead-letter streams (fresh duplicate window)."""
    from tidstream.nats.connect import connect

    async def go() -> None:
        nc = await connect(settings.nats)
        try:
            js = nc.jetstream()
            for s in (settings.streams.readings, settings.streams.dlq):
                await js.delete_stream(s)
        finally:
            await nc.close()

    asyncio.run(go())
    init_streams(settings)


def measure_components(
    settings: Any, registry: Path, frames: int, say: Callable[[str], None], server_pid: int | None = None
) -> Components:
    """Time the ingest flow's parts alone, in this process, on the raw stream of
    ``settings`` (the readings and dead-letter streams are re-created for the sink)."""
    import dataclasses
    import gc

    from tidstream.flow.ingest import Ingestor
    from tidstream.nats.jetstream import JetStreamSink, JetStreamSource
    from tidstream.registry import load_registry

    st = settings.streams
    parts = [str(p) for p in range(st.partitions)]
    # The parts of the nats-py data path (as labelled; the flows' default, "auto", runs the
    # Rust path: its parts alone are bench_rustio's, docs/NATSIO.md).
    py_nats = dataclasses.replace(settings.nats, data_path="python")

    # Source: every partition, polled round-robin as Bytewax does.
    src = JetStreamSource(
        py_nats,
        st.raw,
        parts,
        st.prefix + ".raw.{}.>",
        batch_size=settings.batch_size,
        stop_at_end=True,
    )
    gc.collect()
    t0 = time.perf_counter()
    sparts = [src.build_part("raw-uplinks", p, None) for p in parts]
    live = list(sparts)
    batches: list[list[Any]] = []
    while live:
        got = False
        for sp in list(live):
            try:
                b = sp.next_batch()
            except StopIteration:
                live.remove(sp)
                continue
            if b:
                batches.append(list(b))
                got = True
        if live and not got:
            time.sleep(0.001)
    source_s = time.perf_counter() - t0
    for sp in sparts:
        sp.close()
    n = sum(len(b) for b in batches)
    if n != frames:
        raise RuntimeError(f"source drained {n} messages, {frames} expected")

    # Step: timed with its outputs dropped batch by batch, as the flow drops them once
    # published (keeping 100,000s of them alive makes every GC pass slower); then run again,
    # untimed, to keep them for the Bytewax and sink parts.
    reg = load_registry(registry)

    def ingestor() -> Ingestor:
        return Ingestor(reg, settings.subjects, st.raw, settings.max_message_bytes)

    ing = ingestor()
    gc.collect()
    t0 = time.perf_counter()
    for b in batches:
        ing.batches(b)
    step_s = time.perf_counter() - t0
    # the same batches as columnar items (one partition each, as the source's batches)
    cols = [columnar_item(b) for b in batches]
    ing = ingestor()
    gc.collect()
    t0 = time.perf_counter()
    for rb in cols:
        ing.batches([rb])
    step_col_s = time.perf_counter() - t0
    del cols
    ing = ingestor()
    outs = [ing.batches(b) for b in batches]
    items = sum(len(pb) for o in outs for _, pb in o)
    n_batches = len(batches)
    prof, profiled_s = profile_step(ingestor().batches, batches, step_s)

    # Bytewax alone, same items. The items this benchmark holds for the Bytewax and sink
    # parts are frozen out of the garbage collector's reach while those are timed (the
    # flow holds one batch at a time, not all of them).
    msgs = [m for b in batches for m in b]
    del batches
    gc.collect()
    gc.freeze()
    try:
        bw_s, moved = bytewax_alone(msgs, lambda: ingestor().batches, settings.batch_size, parts)
    finally:
        gc.unfreeze()
    if moved != items:
        raise RuntimeError(f"Bytewax moved {moved} messages, {items} expected")
    del msgs

    # Sink: fresh output streams, items routed per partition as the flow does; once per
    # message-acknowledged (the default) and once with atomic batches.
    def run_sink(atomic: bool) -> tuple[float, float, float]:
        recreate_output_streams(settings)
        sink = JetStreamSink(py_nats, parts, atomic=atomic)
        kparts = [sink.build_part("publish", p, None) for p in parts]
        gc.collect()
        gc.freeze()
        try:
            t0, c0, s0 = time.perf_counter(), time.process_time(), proc_cpu_s(server_pid)
            for o in outs:
                routed: list[list[Any]] = [[] for _ in parts]
                for key, pub in o:
                    routed[sink.part_fn(key)].append(pub)
                for kp, its in zip(kparts, routed):
                    if its:
                        kp.write_batch(its)
            wall, cpu, srv = time.perf_counter() - t0, time.process_time() - c0, proc_cpu_s(server_pid) - s0
        finally:
            gc.unfreeze()
        atomic_n = sum(kp.atomic_published for kp in kparts)
        for kp in kparts:
            kp.close()
        stored = stream_messages(settings, st.readings) + stream_messages(settings, st.dlq)
        if stored != items:
            raise RuntimeError(f"sink stored {stored} messages, {items} published")
        if atomic and atomic_n != items:
            raise RuntimeError(f"{items - atomic_n} of {items} messages not stored by atomic batches")
        return wall, cpu, srv

    sink_s, sink_c, sink_srv = run_sink(False)
    sink_a_s, sink_a_c, sink_a_srv = run_sink(True)
    c = Components(
        n,
        n_batches,
        items,
        source_s,
        step_s,
        sink_s,
        bw_s,
        prof,
        profiled_s,
        sink_a_s,
        (sink_c / items, sink_srv / items),
        (sink_a_c / items, sink_a_srv / items),
        step_col_s,
    )
    say(
        f"  parts alone: source {n / source_s:,.0f} frames/s, step {n / step_s:,.0f} frames/s "
        f"(profiled {profiled_s:.2f} s; on columnar items {n / step_col_s:,.0f} frames/s), sink {items / sink_s:,.0f} msg/s (atomic batches "
        f"{items / sink_a_s:,.0f} msg/s), Bytewax {n / bw_s:,.0f} frames/s"
    )
    return c


# --------------------------------------------------------------------------------------
# The benchmark
# --------------------------------------------------------------------------------------


@dataclass
class E2EConfig:
    uplinks: int = DEFAULT_UPLINKS
    long_factor: int = DEFAULT_LONG_FACTOR
    partitions: int | None = None  # None: the configuration default
    #: repeats of each ceiling and of the main ingest run (best kept; the main run's output
    #: streams are emptied between repeats)
    repeats: int = 3
    startup_repeats: int = 2
    #: also time the ingest flow's parts alone (see :func:`measure_components`)
    components: bool = True
    #: rounds of the ingest flow on each data path (``[nats] data_path``: python, then
    #: rust), same raw stream, output streams emptied before each run; 0 = none
    path_repeats: int = 2
    #: also run the I/O floor (:func:`io_floor`) with and without ``Nats-Msg-Id``
    floor: bool = True
    seed: int = 7
    #: CPUs of the nats-servers / of this process and its children (None: all)
    server_cpus: frozenset[int] | None = None
    client_cpus: frozenset[int] | None = None
    work: Path | None = None  # None: a temporary folder, removed after
    say: Callable[[str], None] = print

    @classmethod
    def from_env(cls, **over: Any) -> E2EConfig:
        c = cls(
            uplinks=env_int("TIDSTREAM_E2E_UPLINKS", DEFAULT_UPLINKS),
            long_factor=env_int("TIDSTREAM_E2E_LONG_FACTOR", DEFAULT_LONG_FACTOR),
            partitions=env_int("TIDSTREAM_E2E_PARTITIONS", 0) or None,
            repeats=env_int("TIDSTREAM_E2E_REPEATS", 3),
            path_repeats=env_int("TIDSTREAM_E2E_PATH_REPEATS", 2),
            floor=env_int("TIDSTREAM_E2E_FLOOR", 1) != 0,
            server_cpus=parse_cpus(os.environ.get("TIDSTREAM_E2E_SERVER_CPUS")),
            client_cpus=parse_cpus(os.environ.get("TIDSTREAM_E2E_CLIENT_CPUS")),
        )
        for k, v in over.items():
            if v is not None:
                setattr(c, k, v)
        return c


@dataclass
class Accounting:
    frames_in: int
    readings: int  # messages in the readings stream
    frames_with_readings: int  # distinct raw sequences among them
    stored_readings: int  # readings beyond the first of their frame
    dead_letters: int
    dead_by_reason: dict[str, int]
    parquet_rows: int | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def exact(self) -> bool:
        return not self.problems


@dataclass
class IngestResult:
    fleet: Fleet
    run: FlowRun
    accounting: Accounting
    publish: CpuUse

    @property
    def publish_s(self) -> float:
        return self.publish.wall_s

    @property
    def frames(self) -> int:
        return self.fleet.uplinks


@dataclass
class E2EResult:
    config: E2EConfig
    settings: Any
    ceiling_push_s: list[float]
    ceiling_pull_s: list[float]
    ceiling_fetch_s: list[float]
    ingest_startup: list[FlowRun]
    export_startup: list[FlowRun]
    main: IngestResult
    export: FlowRun
    components: Components | None
    long: IngestResult | None
    cpu: list[CpuUse]
    wall_s: float
    #: The Rust consumer (tidstream._core) reading the same raw stream: for reference, not
    #: part of the (nats-py) ceiling the goal is measured against.
    ceiling_rust_s: list[float] = field(default_factory=list)
    #: Ingest runs per data path (``[nats] data_path``), alternated on the same raw stream.
    path_runs: dict[str, list[FlowRun]] = field(default_factory=dict)
    #: Start-up runs (empty stream) per data path.
    path_startup: dict[str, list[FlowRun]] = field(default_factory=dict)
    #: Every repeat of the main ingest run, in run order (``main.run`` is the best).
    main_runs: list[FlowRun] = field(default_factory=list)
    #: The I/O floor (:func:`io_floor`) with and without ``Nats-Msg-Id`` (None: not run).
    floor_ids: CeilingRuns | None = None
    floor_no_ids: CeilingRuns | None = None
    #: Size of the fixed reading the floor publishes.
    floor_payload_bytes: int = 0

    # -- per data path ----------------------------------------------------------------
    def path_startup_s(self, path: str) -> float:
        return min(r.exit_s for r in self.path_startup[path])

    def path_net_s(self, path: str) -> list[float]:
        """Each run's time to all accounted for, less the path's start-up."""
        return [r.complete_s - self.path_startup_s(path) for r in self.path_runs[path]]

    def path_rate(self, path: str) -> float:
        """Best frames/s excluding start-up."""
        return self.n / min(self.path_net_s(path))

    def path_steady_rate(self, path: str) -> float:
        """Best steady frames/s (:meth:`FlowRun.steady_rate`) of the path's runs."""
        return max((r.steady_rate(self.n) or 0.0) for r in self.path_runs[path])

    def path_goal_rate(self, path: str) -> float:
        """The goals' figure: best over the path's runs of :meth:`FlowRun.goal_rate`."""
        startup = self.path_startup_s(path)
        return max(r.goal_rate(self.n, startup) for r in self.path_runs[path])

    def path_cpu_us(self, path: str) -> list[float]:
        """Flow-process CPU (user + system, rusage) per frame of each run, less the
        CPU of the path's start-up on an empty stream (least of its runs), µs."""
        base = min(r.cpu_s for r in self.path_startup[path])
        return [(r.cpu_s - base) / self.n * 1e6 for r in self.path_runs[path]]

    def path_server_us(self, path: str) -> list[float]:
        """nats-server CPU per frame during each run, µs."""
        return [r.server_cpu_s / self.n * 1e6 for r in self.path_runs[path]]

    # -- figures ------------------------------------------------------------------------
    @property
    def n(self) -> int:
        return self.main.frames

    @property
    def ingest_startup_s(self) -> float:
        return min(r.exit_s for r in self.ingest_startup)

    @property
    def export_startup_s(self) -> float:
        return min(r.exit_s for r in self.export_startup)

    @property
    def ceiling_push_rate(self) -> float:
        return self.n / min(self.ceiling_push_s)

    @property
    def ceiling_pull_rate(self) -> float:
        return self.n / min(self.ceiling_pull_s)

    @property
    def ceiling_rate(self) -> float:
        """The raw consume ceiling: the faster of the two callback consumers."""
        return max(self.ceiling_push_rate, self.ceiling_pull_rate)

    @property
    def ceiling_kind(self) -> str:
        return (
            "ordered push + callback"
            if self.ceiling_push_rate >= self.ceiling_pull_rate
            else "raw pull + callback"
        )

    @property
    def ceiling_fetch_rate(self) -> float:
        return self.n / min(self.ceiling_fetch_s)

    @property
    def ingest_total_s(self) -> float:
        return self.main.run.complete_s

    @property
    def ingest_net_s(self) -> float:
        return self.ingest_total_s - self.ingest_startup_s

    @property
    def ingest_rate(self) -> float:
        return self.n / self.ingest_total_s

    @property
    def ingest_net_rate(self) -> float:
        return self.n / self.ingest_net_s

    @property
    def ingest_steady_rate(self) -> float:
        """The main run's steady frames/s (10-90 % of its outputs)."""
        return self.main.run.steady_rate(self.n) or self.ingest_net_rate

    @property
    def ingest_goal_rate(self) -> float:
        """The goals' figure: the lower of the steady rate and the rate excluding start-up
        of the best main run (:meth:`FlowRun.goal_rate`)."""
        return min(self.ingest_steady_rate, self.ingest_net_rate)

    @property
    def main_goal_rates(self) -> list[float]:
        """:meth:`FlowRun.goal_rate` of every main run, in run order."""
        return [r.goal_rate(self.n, self.ingest_startup_s) for r in self.main_runs]

    @property
    def ratio_to_ceiling(self) -> float:
        return self.ingest_goal_rate / self.ceiling_rate

    @property
    def export_rows(self) -> int:
        return self.main.accounting.readings

    @property
    def export_net_s(self) -> float:
        return self.export.exit_s - self.export_startup_s


@dataclass
class MemoryTrend:
    """RSS over the steady state of a run: from the poll at which ``lo`` of the output
    had arrived to the one at which ``hi`` had (the in-memory queues fill up before,
    and drain after)."""

    start_s: float
    end_s: float
    samples: int
    first_quartile_mib: float
    last_quartile_mib: float
    lo: float = 0.1
    hi: float = 0.9

    @property
    def change(self) -> float:
        return self.last_quartile_mib / self.first_quartile_mib - 1


def memory_trend(run: FlowRun, lo: float = 0.1, hi: float = 0.9) -> MemoryTrend:
    """First- vs last-quartile mean RSS of the samples in the run's steady state (see
    :class:`MemoryTrend`; the whole run when it had too few samples or no polls)."""
    total = sum(run.final_counts)
    t0, t1 = 0.0, run.complete_s
    if total and run.counts:
        t0 = next((t for t, c in run.counts if sum(c) >= lo * total), t0)
        t1 = next((t for t, c in run.counts if sum(c) >= hi * total), t1)
    xs = [r for t, r, _ in run.mem if t0 <= t <= t1]
    if len(xs) < 8:
        t0, t1 = 0.0, run.exit_s
        xs = [r for _, r, _ in run.mem]
    q = max(1, len(xs) // 4)
    return MemoryTrend(
        t0, t1, len(xs), statistics.fmean(xs[:q]) / 1024, statistics.fmean(xs[-q:]) / 1024, lo, hi
    )


def rss_series(run: FlowRun, points: int = 10) -> list[tuple[float, float]]:
    """(s since start, VmRSS MiB) at ``points`` evenly spaced times from the first to the
    last sample (the nearest sample to each)."""
    if not run.mem:
        return []
    t_end = run.mem[-1][0]
    out = []
    k = 0
    for i in range(points):
        t = t_end * i / (points - 1)
        while k + 1 < len(run.mem) and abs(run.mem[k + 1][0] - t) <= abs(run.mem[k][0] - t):
            k += 1
        out.append((run.mem[k][0], run.mem[k][1] / 1024))
    return out


def check_accounting(settings: Any, frames: int, parquet_seqs: list[int] | None = None) -> Accounting:
    """Frames in = frames with readings + dead letters, exactly, by raw sequence."""
    st = settings.streams
    r_seqs = read_raw_seqs(settings, st.readings)
    d_seqs = read_raw_seqs(settings, st.dlq)
    raw_n = stream_messages(settings, st.raw)
    with_r = set(r_seqs)
    dead = set(d_seqs)
    acc = Accounting(
        frames_in=raw_n,
        readings=len(r_seqs),
        frames_with_readings=len(with_r),
        stored_readings=len(r_seqs) - len(with_r),
        dead_letters=len(d_seqs),
        dead_by_reason=dlq_reasons(settings),
        parquet_rows=None if parquet_seqs is None else len(parquet_seqs),
    )
    p = acc.problems
    if raw_n != frames:
        p.append(f"raw stream holds {raw_n} messages, {frames} published")
    if len(dead) != len(d_seqs):
        p.append(f"{len(d_seqs) - len(dead)} frames dead-lettered twice")
    if with_r & dead:
        p.append(f"{len(with_r & dead)} frames both read and dead-lettered")
    if with_r | dead != set(range(1, frames + 1)):
        missing = frames - len((with_r | dead) & set(range(1, frames + 1)))
        p.append(f"{missing} frames neither read nor dead-lettered (or unknown raw_seq)")
    if len(with_r) + len(dead) != frames:
        p.append(f"frames with readings {len(with_r)} + dead letters {len(dead)} != frames in {frames}")
    if parquet_seqs is not None:
        if Counter(parquet_seqs) != Counter(r_seqs):
            p.append(f"Parquet rows ({len(parquet_seqs)}) differ from the readings stream ({len(r_seqs)})")
    return acc


#: The flows' data paths (``[nats] data_path``), in the order each round runs them;
#: ``TIDSTREAM_E2E_PATHS`` (comma-separated labels of :data:`PATH_ENV`) picks others, e.g.
#: ``python,rust-acks,rust-fast`` to compare the Rust sink's two publishing modes.
DATA_PATHS = tuple(os.environ.get("TIDSTREAM_E2E_PATHS", "python,rust").split(","))
#: Environment of each data-path label: ``rust`` is the Rust path with its defaults,
#: ``rust-acks`` / ``rust-fast`` its sink with one PubAck per message / fast-ingest
#: batches (``[nats] fast_publish``, docs/NATSIO.md); ``rust-wait`` its sink waiting for
#: every write's acks (``[nats] pipeline_sink = false``).
PATH_ENV = {
    "python": {"TIDSTREAM_NATS_DATA_PATH": "python"},
    "rust": {"TIDSTREAM_NATS_DATA_PATH": "rust"},
    "rust-acks": {"TIDSTREAM_NATS_DATA_PATH": "rust", "TIDSTREAM_NATS_FAST_PUBLISH": "0"},
    "rust-fast": {"TIDSTREAM_NATS_DATA_PATH": "rust", "TIDSTREAM_NATS_FAST_PUBLISH": "1"},
    "rust-wait": {"TIDSTREAM_NATS_DATA_PATH": "rust", "TIDSTREAM_NATS_PIPELINE_SINK": "0"},
}


def run_data_paths(
    cfg: E2EConfig,
    settings: Any,
    env: dict[str, str],
    work: Path,
    n: int,
    server_pid: int | None,
    startup: dict[str, list[FlowRun]],
) -> dict[str, list[FlowRun]]:
    """The ingest flow on each data path, ``cfg.path_repeats`` rounds (python then rust
    in each, so both see the same machine load), on the same raw stream with the output
    streams emptied before each run; every run's accounting checked (exact or raise)."""
    out: dict[str, list[FlowRun]] = {dp: [] for dp in DATA_PATHS}
    st = settings.streams
    for k in range(cfg.path_repeats):
        for dp in DATA_PATHS:
            recreate_output_streams(settings)
            fr = run_flow(
                "ingest", settings, {**env, **PATH_ENV[dp]}, work,
                poll_streams=(st.readings, st.dlq), server_pid=server_pid,
            )  # fmt: skip
            if fr.returncode != 0:
                raise RuntimeError(f"ingest flow (data_path={dp}) failed:\n{fr.log[-3000:]}")
            if ("Rust data path" in fr.log) != dp.startswith("rust"):
                raise RuntimeError(f"ingest flow did not run on data_path={dp}:\n{fr.log[-3000:]}")
            acc = check_accounting(settings, n)
            if not acc.exact:
                raise RuntimeError(f"ingest (data_path={dp}) accounting: {'; '.join(acc.problems)}")
            out[dp].append(fr)
            base = min(r.exit_s for r in startup[dp])
            cpu0 = min(r.cpu_s for r in startup[dp])
            cfg.say(
                f"  ingest, data_path={dp} (round {k + 1}): {fr.steady_rate(n) or 0:,.0f} frames/s steady "
                f"(10-90 % of the outputs), {n / (fr.complete_s - base):,.0f} "
                f"excluding {base:.2f} s start-up; flow CPU {(fr.cpu_s - cpu0) / n * 1e6:.1f} µs/frame, "
                f"nats-server {fr.server_cpu_s / n * 1e6:.1f} µs/frame; accounting exact"
            )
            cfg.say(f"    flow threads, CPU µs/frame (start-up included): {fr.threads_text(n)}")
    return out


def serve_fleet(cfg: E2EConfig, work: Path, fleet: Fleet, tag: str) -> tuple[Any, Any, CpuUse]:
    """A fresh embedded server with the streams set up and the fleet published to its raw
    stream. Returns (server, settings, publish CPU use); the caller stops the server."""
    from tidstream.nats.publish import publish_uplinks
    from tidstream.nats.server import EmbeddedServer

    srv = EmbeddedServer(store_dir=work / f"nats-{tag}" / "jetstream", cpus=cfg.server_cpus).start()
    try:
        settings = settings_for(srv.url, cfg.partitions)
        init_streams(settings)
        t, c, sc = time.perf_counter(), time.process_time(), proc_cpu_s(srv.pid)
        n = publish_uplinks(settings.nats, fleet.messages())
        pub_s = time.perf_counter() - t
        pub = CpuUse(
            "publish_uplinks (simulator included)",
            n,
            pub_s,
            time.process_time() - c,
            proc_cpu_s(srv.pid) - sc,
        )
        assert n == fleet.uplinks, (n, fleet.uplinks)
        cfg.say(
            f"  published {n:,} uplinks ({fleet.bytes_total / n:.0f} B mean, "
            f"{dict(fleet.formats)}) in {pub_s:.1f} s ({n / pub_s:,.0f}/s)"
        )
        return srv, settings, pub
    except BaseException:
        srv.stop()
        raise


def run_e2e(cfg: E2EConfig) -> E2EResult:
    """The whole family; see the module docstring."""
    from tidstream.flow.export import read_dataset

    say = cfg.say
    t_wall = time.perf_counter()
    own_tmp = None
    cpus0 = os.sched_getaffinity(0)
    if cfg.client_cpus is not None:  # this process, its threads and children from now on
        if cfg.server_cpus is None:  # the servers keep every CPU (they would inherit the pin)
            cfg.server_cpus = frozenset(cpus0)
        os.sched_setaffinity(0, cfg.client_cpus)
        say(f"  CPUs: benchmark and flows {sorted(cfg.client_cpus)}, nats-server {sorted(cfg.server_cpus)}")
    if cfg.work is None:
        own_tmp = tempfile.TemporaryDirectory(prefix="tidstream-e2e-")
        work = Path(own_tmp.name)
    else:
        work = Path(cfg.work)
        work.mkdir(parents=True, exist_ok=True)
    try:
        say(f"\ne2e: simulated PMA fleet, {cfg.uplinks:,} uplinks")
        fleet = make_fleet(work / "fleet", cfg.uplinks, 1.0, cfg.seed)
        say(
            f"  fleet: {fleet.devices} sensors ({fleet.devices - fleet.registered} left out of the "
            f"registry), {fleet.days:.2f} simulated days"
        )
        srv, settings, pub = serve_fleet(cfg, work, fleet, "main")
        cpu: list[CpuUse] = [pub]
        try:
            st = settings.streams
            polled = (st.readings, st.dlq)
            # Start-up: the same flows on empty streams (fresh server state for them: the
            # readings and dead-letter streams are still empty here; a raw stream that is
            # empty for the flow is one it has already read, so an empty server is used).
            from tidstream.nats.server import EmbeddedServer

            with EmbeddedServer(store_dir=work / "nats-empty" / "jetstream", cpus=cfg.server_cpus) as empty:
                es = settings_for(empty.url, cfg.partitions)
                init_streams(es)
                env_e = start_env(es, fleet.registry_path, work / "export-empty")
                ingest_startup = [run_flow("ingest", es, env_e, work) for _ in range(cfg.startup_repeats)]
                export_startup = [run_flow("export", es, env_e, work) for _ in range(cfg.startup_repeats)]
                path_startup: dict[str, list[FlowRun]] = {}
                if cfg.path_repeats > 0:
                    for dp in DATA_PATHS:
                        path_startup[dp] = [
                            run_flow("ingest", es, {**env_e, **PATH_ENV[dp]}, work)
                            for _ in range(cfg.startup_repeats)
                        ]
            for r in (*ingest_startup, *export_startup, *(x for v in path_startup.values() for x in v)):
                if r.returncode != 0:
                    raise RuntimeError(f"{r.name} flow on an empty stream failed:\n{r.log[-3000:]}")
            say(
                "  start-up (empty stream, start to exit): ingest "
                + ", ".join(f"{r.exit_s:.2f}" for r in ingest_startup)
                + " s; export "
                + ", ".join(f"{r.exit_s:.2f}" for r in export_startup)
                + " s"
            )

            n = fleet.uplinks
            ceil: dict[str, list[float]] = {}
            for kind, label, extra in CEILING_KINDS:
                c = consume_ceiling(settings, n, max(1, cfg.repeats + extra), kind, srv.pid)
                ceil[kind] = c.seconds
                cpu.append(
                    CpuUse(
                        f"{label} (all repeats)", n * len(c.seconds), sum(c.seconds), c.client_s, c.server_s
                    )
                )
                say(
                    f"  {label}: best {n / min(c.seconds):,.0f} msg/s ({', '.join(f'{x:.2f}' for x in c.seconds)} s)"
                )
            push, pull, fetch, rust = ceil["push"], ceil["pull"], ceil["fetch"], ceil["rust"]

            env = start_env(settings, fleet.registry_path, work / "export")
            # The main run, repeated like the ceilings (best kept): one run is one sample,
            # and single runs of the same flow on the same stream spread by +-10 % here.
            # Each repeat's accounting is checked; the export reads the last one's output.
            startup_s = min(r.exit_s for r in ingest_startup)
            main_runs: list[FlowRun] = []
            for k in range(max(1, cfg.repeats)):
                if k:
                    recreate_output_streams(settings)
                ing = run_flow("ingest", settings, env, work, poll_streams=polled, server_pid=srv.pid)
                if ing.returncode != 0:
                    raise RuntimeError(f"ingest flow failed:\n{ing.log[-3000:]}")
                if k < cfg.repeats - 1:
                    acc_k = check_accounting(settings, n)
                    if not acc_k.exact:
                        raise RuntimeError(f"ingest (run {k + 1}) accounting: {'; '.join(acc_k.problems)}")
                main_runs.append(ing)
                say(
                    f"  ingest (run {k + 1}): all accounted for at {ing.complete_s:.2f} s (first output "
                    f"{ing.first_output_s} s, exit {ing.exit_s:.2f} s), {ing.goal_rate(n, startup_s):,.0f} "
                    f"frames/s (the goals' figure), flow CPU {ing.cpu_s / n * 1e6:.1f} µs/frame, nats-server "
                    f"{ing.server_cpu_s / n * 1e6:.1f}, peak RSS {ing.peak_rss_mib:.0f} MiB"
                )
            ing = max(main_runs, key=lambda r: r.goal_rate(n, startup_s))
            exp = run_flow("export", settings, env, work, server_pid=srv.pid)
            if exp.returncode != 0:
                raise RuntimeError(f"export flow failed:\n{exp.log[-3000:]}")
            table = read_dataset(work / "export")
            acc = check_accounting(settings, fleet.uplinks, table.column("raw_seq").to_pylist())
            say(
                f"  export: {table.num_rows:,} rows in {exp.exit_s:.2f} s, peak RSS {exp.peak_rss_mib:.0f} MiB"
            )
            say(
                f"  accounting: {acc.frames_in:,} in = {acc.frames_with_readings:,} with readings "
                f"+ {acc.dead_letters:,} dead letters {acc.dead_by_reason}; {acc.readings:,} readings "
                f"({acc.stored_readings} stored); {'exact' if acc.exact else 'PROBLEMS: ' + '; '.join(acc.problems)}"
            )
            main = IngestResult(fleet, ing, acc, pub)
            floors: dict[bool, CeilingRuns] = {}
            floor_bytes = 0
            if cfg.floor:
                payload = first_reading(settings)
                floor_bytes = len(payload)
                for ids in (True, False):
                    f = io_floor(settings, n, max(1, cfg.repeats), payload, ids, srv.pid)
                    floors[ids] = f
                    label = FLOOR_LABELS[ids]
                    cpu.append(
                        CpuUse(
                            f"{label} (all repeats)",
                            n * len(f.seconds),
                            sum(f.seconds),
                            f.client_s,
                            f.server_s,
                        )
                    )
                    c_us, s_us = f.us_per_msg(n)
                    say(
                        f"  {label}: best {n / min(f.seconds):,.0f} frames/s ({', '.join(f'{x:.2f}' for x in f.seconds)} s), "
                        f"client {c_us:.1f} µs/frame, nats-server {s_us:.1f}"
                    )
            cpu += [
                CpuUse("ingest flow process (start to exit; the best main run)", n, ing.exit_s, ing.cpu_s, ing.server_cpu_s),
                CpuUse("export flow process (start to exit; per reading)", acc.readings, exp.exit_s, exp.cpu_s,
                       exp.server_cpu_s),
            ]  # fmt: skip
            comps = None
            if cfg.components:
                comps = measure_components(settings, fleet.registry_path, fleet.uplinks, say, srv.pid)
            path_runs = run_data_paths(cfg, settings, env, work, fleet.uplinks, srv.pid, path_startup)
        finally:
            srv.stop()
        shutil.rmtree(work / "nats-main", ignore_errors=True)
        shutil.rmtree(work / "export", ignore_errors=True)

        long = None
        if cfg.long_factor > 0:
            n_long = cfg.uplinks * cfg.long_factor
            say(f"\ne2e long run: fleet x{cfg.long_factor}, {n_long:,} uplinks")
            lf = make_fleet(work / "fleet-long", n_long, float(cfg.long_factor), cfg.seed + 1)
            say(f"  fleet: {lf.devices} sensors, {lf.days:.2f} simulated days")
            srv, ls, lpub = serve_fleet(cfg, work, lf, "long")
            try:
                lst = ls.streams
                lrun = run_flow(
                    "ingest", ls, start_env(ls, lf.registry_path, work / "export-long"), work,
                    poll_streams=(lst.readings, lst.dlq), server_pid=srv.pid,
                )  # fmt: skip
                if lrun.returncode != 0:
                    raise RuntimeError(f"long ingest run failed:\n{lrun.log[-3000:]}")
                lacc = check_accounting(ls, n_long)
                mt = memory_trend(lrun)
                say(
                    f"  ingest: all accounted for at {lrun.complete_s:.2f} s ({n_long / lrun.complete_s:,.0f} "
                    f"frames/s); steady state {mt.start_s:.1f}-{mt.end_s:.1f} s: RSS first quartile "
                    f"{mt.first_quartile_mib:.0f} MiB, last quartile {mt.last_quartile_mib:.0f} MiB "
                    f"({mt.change:+.1%}, {mt.samples} samples), peak {lrun.peak_rss_mib:.0f} MiB; accounting "
                    f"{'exact' if lacc.exact else 'PROBLEMS: ' + '; '.join(lacc.problems)}"
                )
                long = IngestResult(lf, lrun, lacc, lpub)
                cpu += [
                    CpuUse(f"long run: {lpub.what}", n_long, lpub.wall_s, lpub.client_s, lpub.server_s),
                    CpuUse("long run: ingest flow process (start to exit)", n_long, lrun.exit_s, lrun.cpu_s,
                           lrun.server_cpu_s),
                ]  # fmt: skip
            finally:
                srv.stop()
            shutil.rmtree(work / "nats-long", ignore_errors=True)
        return E2EResult(
            cfg, settings, push, pull, fetch, ingest_startup, export_startup, main, exp, comps, long,
            cpu, time.perf_counter() - t_wall, rust, path_runs, path_startup, main_runs,
            floors.get(True), floors.get(False), floor_bytes,
        )  # fmt: skip
    finally:
        os.sched_setaffinity(0, cpus0)
        if own_tmp is not None:
            own_tmp.cleanup()


def main() -> int:
    p = argparse.ArgumentParser(description="tidstream end-to-end benchmark (see benches/run.py)")
    p.add_argument("--uplinks", type=int, default=None)
    p.add_argument("--long-factor", type=int, default=None)
    p.add_argument("--partitions", type=int, default=None)
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument(
        "--path-repeats", type=int, default=None, help="ingest rounds per data path (python, rust)"
    )
    p.add_argument("--no-components", action="store_true", help="skip timing the flow's parts alone")
    p.add_argument("--no-floor", action="store_true", help="skip the I/O floor runs (no decode)")
    p.add_argument("--work", type=Path, default=None, help="keep files here (default: a temp folder)")
    a = p.parse_args()
    cfg = E2EConfig.from_env(
        uplinks=a.uplinks,
        long_factor=a.long_factor,
        partitions=a.partitions,
        repeats=a.repeats,
        work=a.work,
        path_repeats=a.path_repeats,
        components=False if a.no_components else None,
        floor=False if a.no_floor else None,
    )
    r = run_e2e(cfg)
    print(
        f"\ningest {r.ingest_steady_rate:,.0f} frames/s steady (10-90 % of the outputs; "
        f"{r.ingest_rate:,.0f} start to all accounted for, {r.ingest_net_rate:,.0f} excluding "
        f"{r.ingest_startup_s:.2f} s start-up); ceiling {r.ceiling_rate:,.0f} msg/s ({r.ceiling_kind}; push {r.ceiling_push_rate:,.0f}, "
        f"pull {r.ceiling_pull_rate:,.0f}, fetch {r.ceiling_fetch_rate:,.0f}); "
        f"ratio {r.ratio_to_ceiling:.1%} (best of {len(r.main_runs)} runs: "
        f"{', '.join(f'{x / r.ceiling_rate:.1%}' for x in r.main_goal_rates)}); export {r.export_rows / r.export.exit_s:,.0f} readings/s "
        f"({r.export_rows / r.export_net_s:,.0f} excluding start-up); wall {r.wall_s:.0f} s"
    )
    print("CPU per message (client = this process or the flow process):")
    for u in r.cpu:
        print(
            f"  {u.what}: wall {u.wall_s:.2f} s, client {u.client_s / u.n * 1e6:.1f} us/msg, "
            f"nats-server {u.server_s / u.n * 1e6:.1f} us/msg"
        )
    for dp, runs in r.path_runs.items():
        if runs:
            cpu = r.path_cpu_us(dp)
            print(
                f"ingest data_path={dp}: best {r.path_steady_rate(dp):,.0f} frames/s steady "
                f"({r.path_steady_rate(dp) / r.ceiling_rate:.1%} of the ceiling; best "
                f"{r.path_rate(dp):,.0f} excluding {r.path_startup_s(dp):.2f} s start-up); flow CPU {', '.join(f'{x:.1f}' for x in cpu)} µs/frame; nats-server "
                f"{', '.join(f'{x:.1f}' for x in r.path_server_us(dp))} µs/frame"
            )
    if r.components:
        c = r.components
        print(f"step profile (profiled {c.step_profiled_s:.2f} s, unprofiled {c.step_s:.2f} s):")
        for name, est, prof in c.step_profile:
            print(f"  {est / c.frames * 1e6:6.2f} us/frame  (profiled {prof:.3f} s)  {name}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    sys.exit(main())
