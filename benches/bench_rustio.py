"""JetStream I/O in Rust vs nats-py, on the same messages in one run (docs/NATSIO.md).

Consume (the whole stream, best of ``repeats``):

* nats-py ordered push consumer + callback that drops each message (the e2e raw consume
  ceiling, ``e2e._consume_push``: what ``JetStreamSource`` subscribes with);
* ``RustConsumer`` (``tidstream._core``, ordered pull consumer on async-nats) -> one columnar
  batch per call, turned into Arrow arrays (subjects, payloads) in Python.

Publish with a PubAck per message (``Nats-Msg-Id`` on each, batches of ``batch``):

* nats-py ``publish_async`` (at most 4,000 pending acks, its default) + ``publish_async_completed``;
* ``BatchPublisher`` (batch.py: HPUB commands written by Rust, PubAcks read by nats-py),
  what ``JetStreamSink`` uses;
* ``RustPublisher.publish_batch`` (everything in Rust, GIL released);
* ``RustPublisher.publish`` of ``PubBatch`` writes as ADR-50 fast-ingest batches (the
  sinks' default, ``[nats] fast_publish``: an ack per 500 messages, stream ``allow_batched``).

For each: msgs/s, client CPU µs/msg (this process: every thread, ``time.process_time``)
and nats-server CPU µs/msg (``/proc/<pid>/stat``), then a projection of the ingest flow's
CPU per frame with the Rust source and sink. ``make test`` runs it small as a test;
``python benches/bench_rustio.py --n 200000`` for figures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import e2e
import numpy as np

#: Client CPU per frame of the ingest flow's steps between source and sink (decode,
#: envelope, messages, registry, Python glue, Bytewax), µs: benches/RESULTS.md "Ingest
#: cost per frame" (session 3: 9.49 steps + 0.22 Bytewax).
STEPS_US = 9.71
#: The same table's source and sink, µs/frame (nats-py), and the whole flow measured.
NATSPY_SOURCE_US, NATSPY_SINK_US, FLOW_MEASURED_US = 19.80, 23.03, 46.77

#: Inside the flow, nats-py's source and sink cost more than alone (GIL shared with the
#: steps and loop threads): RESULTS.md source 19.80 in the flow vs 8.5 alone, sink 23.03 vs
#: 9.4. The pessimistic projection applies the same factors to the Rust parts.
SOURCE_INFLATION, SINK_INFLATION = NATSPY_SOURCE_US / 8.5, NATSPY_SINK_US / 9.4

STREAM_IN, SUBJECT_IN = "BRIO_IN", "brio.in.>"


@dataclass
class Phase:
    what: str
    n: int
    wall_s: float
    client_s: float
    server_s: float

    @property
    def rate(self) -> float:
        return self.n / self.wall_s

    @property
    def client_us(self) -> float:
        return self.client_s / self.n * 1e6

    @property
    def server_us(self) -> float:
        return self.server_s / self.n * 1e6


@dataclass
class RustioResult:
    n: int
    payload_bytes: int
    phases: list[Phase]

    def get(self, prefix: str) -> Phase:
        return next(p for p in self.phases if p.what.startswith(prefix))

    def projection(self) -> dict[str, float]:
        """Ingest client CPU per frame with the Rust source and sink (one output message
        per frame, as the e2e fleet: readings + dead letters ~ frames)."""
        src = self.get("consume: Rust ordered pull -> Python batches").client_us
        src_raw = self.get("consume: Rust ordered pull -> RawMsg").client_us
        sink = self.get("publish: Rust").client_us
        ceiling = self.get("consume: nats-py")
        projected = src + sink + STEPS_US
        # The goal: ingest rate >= 70 % of the nats-py consume ceiling of the same run.
        # If the flow process is the bottleneck its rate is ~1e6 / (µs per frame).
        return {
            "rust_source_us": src,
            "rust_sink_us": sink,
            # Keeping today's per-message RawMsg items (steps unchanged) instead of batches.
            "projected_rawmsg_us": src_raw + sink + STEPS_US,
            "projected_rawmsg_ratio": (1e6 / (src_raw + sink + STEPS_US)) / ceiling.rate,
            "steps_us": STEPS_US,
            "projected_us": projected,
            "projected_rate": 1e6 / projected,
            "ceiling_rate": ceiling.rate,
            "goal_rate": 0.7 * ceiling.rate,
            "projected_ratio": (1e6 / projected) / ceiling.rate,
            "natspy_flow_us": FLOW_MEASURED_US,
            "pessimistic_us": src * SOURCE_INFLATION + sink * SINK_INFLATION + STEPS_US,
            "pessimistic_ratio": (1e6 / (src * SOURCE_INFLATION + sink * SINK_INFLATION + STEPS_US))
            / ceiling.rate,
            # nats-server CPU per frame on the Rust path (consume + publish): with the server
            # on the same 2 cores, (client + server) / 2 bounds the frame time from below.
            "server_us": self.get("consume: Rust ordered pull -> Python batches").server_us
            + self.get("publish: Rust").server_us,
        }


def _messages(n: int, size: int) -> tuple[list[str], list[bytes], list[str]]:
    rng = np.random.default_rng(11)
    blob = rng.integers(0, 256, size=n * size, dtype=np.uint8).tobytes()
    subjects = [f"brio.in.{i % 4}.dev{i % 1450}" for i in range(n)]
    payloads = [blob[i * size : (i + 1) * size] for i in range(n)]
    ids = [f"m-{i}" for i in range(n)]
    return subjects, payloads, ids


def _measure(srv: Any, what: str, n: int, fn: Any) -> Phase:
    t, c, s = time.perf_counter(), time.process_time(), e2e.proc_cpu_s(srv.pid)
    fn()
    return Phase(what, n, time.perf_counter() - t, time.process_time() - c, e2e.proc_cpu_s(srv.pid) - s)


def _best(phases: list[Phase]) -> Phase:
    return min(phases, key=lambda p: p.wall_s)


def _add_streams(settings: Any, names: list[tuple[str, str]]) -> None:
    from tidstream.nats.connect import connect

    async def go() -> None:
        nc = await connect(settings.nats)
        try:
            js = nc.jetstream()
            for name, subj in names:
                # allow_batched: fast-ingest batches (only the fast phase sends them)
                await js.add_stream(name=name, subjects=[subj], allow_batched=True)
        finally:
            await nc.close()

    asyncio.run(go())


def _stored(settings: Any, stream: str) -> int:
    return e2e.stream_messages(settings, stream)


def consume_rust(
    settings: Any, stream: str, subject: str, n: int, max_msgs: int = 4096, rawmsg: bool = False
) -> int:
    """Read ``n`` messages with :class:`RustConsumer` into Arrow arrays (``rawmsg``: and
    into the ``RawMsg`` tuples ``JetStreamSource`` emits today); returns the number read
    (and checks the sequences are exactly 1..n)."""
    from tidstream.nats.jetstream import RawMsg
    from tidstream.nats.rustio import RustConsumer

    c = RustConsumer(settings.nats, stream, subject)
    got, seq_sum, nbytes = 0, 0, 0
    deadline = time.monotonic() + max(60.0, n / 5_000)
    while got < n and time.monotonic() < deadline:
        b = c.next_batch(max_msgs, timeout_ms=1000)
        subjects, payloads = b.subjects(), b.payloads()  # what a source would emit
        got += len(b)
        seq_sum += int(b.seqs.sum())
        nbytes += payloads.nbytes + subjects.nbytes
        if rawmsg:
            items = list(
                map(RawMsg, ["0"] * len(b), b.seqs.tolist(), subjects.to_pylist(), payloads.to_pylist(),
                    b.timestamps_ns.tolist(), [None] * len(b))
            )  # fmt: skip
            nbytes += len(items)
    if got != n or seq_sum != n * (n + 1) // 2:
        raise RuntimeError(f"Rust consumer read {got} of {n} messages (seq sum {seq_sum})")
    return got


def publish_natspy(
    settings: Any, subjects: list[str], payloads: list[bytes], ids: list[str], batch: int
) -> int:
    from tidstream.nats.connect import connect

    async def go() -> int:
        nc = await connect(settings.nats)
        try:
            js = nc.jetstream()
            futs: list[Any] = []
            for i in range(len(subjects)):
                futs.append(await js.publish_async(subjects[i], payloads[i], headers={"Nats-Msg-Id": ids[i]}))
                if len(futs) >= batch:
                    await js.publish_async_completed()
            await js.publish_async_completed()
            return sum(1 for f in futs if f.done() and f.exception() is None)
        finally:
            await nc.close()

    return asyncio.run(go())


def publish_hpub(
    settings: Any, subjects: list[str], payloads: list[bytes], ids: list[str], batch: int
) -> int:
    from tidstream._core import PubBatch
    from tidstream.nats.batch import BatchPublisher
    from tidstream.nats.connect import connect

    async def go() -> int:
        nc = await connect(settings.nats)
        try:
            bp = BatchPublisher(nc)
            await bp.start()
            ok = 0
            for lo in range(0, len(subjects), batch):
                pb = PubBatch()
                for i in range(lo, min(lo + batch, len(subjects))):
                    pb.push(subjects[i], payloads[i], ids[i])
                out = await bp.publish(pb, timeout=30)
                ok += len(pb) - len(out.failed)
            await bp.stop()
            return ok
        finally:
            await nc.close()

    return asyncio.run(go())


def publish_rust(
    settings: Any, subjects: list[str], payloads: list[bytes], ids: list[str], batch: int
) -> int:
    from tidstream.nats.rustio import RustPublisher

    p = RustPublisher(settings.nats)
    ok = 0
    for lo in range(0, len(subjects), batch):
        r = p.publish_batch(subjects[lo : lo + batch], payloads[lo : lo + batch], ids[lo : lo + batch])
        ok += sum(1 for e in r.errors if e is None)
    return ok


def publish_rust_fast(
    settings: Any, subjects: list[str], payloads: list[bytes], ids: list[str], batch: int
) -> int:
    from tidstream._core import PubBatch
    from tidstream.nats.rustio import FAST_FLOW, RustPublisher

    p = RustPublisher(settings.nats, fast_flow=FAST_FLOW)
    writes = []
    for lo in range(0, len(subjects), batch):
        pb = PubBatch()
        for k in range(lo, min(lo + batch, len(subjects))):
            pb.push(subjects[k], payloads[k], ids[k])
        writes.append(pb)
    ok = 0
    for pb in writes:  # (building them costs client CPU here, as publish_batch converts its lists)
        r = p.publish(pb)
        ok += sum(1 for e in r.errors if e is None)
    return ok


def run_rustio(n: int, payload_bytes: int = 300, repeats: int = 3, batch: int = 1000, work: Path | None = None,
               say: Any = print) -> RustioResult:  # fmt: skip
    """The whole comparison on one embedded nats-server."""
    from tidstream.nats.server import EmbeddedServer

    own = None
    if work is None:
        own = tempfile.TemporaryDirectory(prefix="tidstream-rustio-")
        work = Path(own.name)
    subjects, payloads, ids = _messages(n, payload_bytes)
    phases: list[Phase] = []
    try:
        with EmbeddedServer(store_dir=work / "nats" / "jetstream") as srv:
            settings = e2e.settings_for(srv.url, None)
            pubs = [("nats-py", "BRIO_PY", publish_natspy), ("HPUB", "BRIO_HPUB", publish_hpub),
                    ("Rust", "BRIO_RS", publish_rust), ("Rust fast", "BRIO_FAST", publish_rust_fast)]  # fmt: skip
            _add_streams(settings, [(STREAM_IN, SUBJECT_IN)] + [(s, f"{s.lower()}.>") for _, s, _ in pubs])
            # The consume stream, filled by the Rust publisher (not measured).
            if publish_rust(settings, subjects, payloads, ids, batch) != n:
                raise RuntimeError("setup publish incomplete")
            say(f"rustio: {n:,} messages of {payload_bytes} B, batches of {batch}")
            ceiling = _best([
                _measure(srv, "consume: nats-py ordered push + callback", n,
                         lambda: asyncio.run(e2e._consume_push(settings, STREAM_IN, SUBJECT_IN, n, max(60.0, n / 5_000))))
                for _ in range(repeats)
            ])  # fmt: skip
            rust = _best([
                _measure(srv, "consume: Rust ordered pull -> Python batches (Arrow)", n,
                         lambda: consume_rust(settings, STREAM_IN, SUBJECT_IN, n))
                for _ in range(repeats)
            ])  # fmt: skip
            rust_raw = _best([
                _measure(srv, "consume: Rust ordered pull -> RawMsg tuples (as JetStreamSource emits)", n,
                         lambda: consume_rust(settings, STREAM_IN, SUBJECT_IN, n, rawmsg=True))
                for _ in range(repeats)
            ])  # fmt: skip
            phases += [ceiling, rust, rust_raw]
            for label, stream, fn in pubs:
                subj = [f"{stream.lower()}.{s}" for s in subjects]
                what = {
                    "nats-py": "publish: nats-py publish_async (+ Nats-Msg-Id), acks awaited",
                    "HPUB": "publish: HPUB via batch.py (Rust-written commands, nats-py acks)",
                    "Rust": "publish: Rust publish_batch, acks awaited in Rust",
                    "Rust fast": "publish: Rust fast-ingest batches (flow 500), every message confirmed",
                }[label]
                box: list[int] = []
                ph = _measure(
                    srv,
                    what,
                    n,
                    lambda fn=fn, subj=subj, box=box: box.append(fn(settings, subj, payloads, ids, batch)),
                )
                if box != [n] or _stored(settings, stream) != n:
                    raise RuntimeError(
                        f"{label}: {box} acknowledged, {_stored(settings, stream)} stored of {n}"
                    )
                phases.append(ph)
    finally:
        if own is not None:
            own.cleanup()
    r = RustioResult(n, payload_bytes, phases)
    for p in phases:
        say(
            f"  {p.what}: {p.rate:,.0f} msg/s, client {p.client_us:.2f} µs/msg, nats-server {p.server_us:.2f} µs/msg"
        )
    pr = r.projection()
    say(
        f"  projection: ingest client CPU {pr['projected_us']:.1f} µs/frame (Rust source {pr['rust_source_us']:.2f} "
        f"+ Rust sink {pr['rust_sink_us']:.2f} + steps {pr['steps_us']:.2f}) -> {pr['projected_rate']:,.0f} frames/s "
        f"if the flow process is the bottleneck = {pr['projected_ratio']:.0%} of the nats-py ceiling "
        f"{pr['ceiling_rate']:,.0f}/s (goal 70 %); with RawMsg items {pr['projected_rawmsg_us']:.1f} µs/frame "
        f"= {pr['projected_rawmsg_ratio']:.0%}; pessimistic (Rust parts inflated in the flow as nats-py's are) "
        f"{pr['pessimistic_us']:.1f} µs/frame = {pr['pessimistic_ratio']:.0%}; nats-server {pr['server_us']:.1f} "
        f"µs/frame: 2 cores cap the flow at {2e6 / (pr['projected_us'] + pr['server_us']):,.0f} frames/s"
    )
    return r


def markdown(r: RustioResult) -> str:
    """The RESULTS.md table of one run."""
    rows = [
        "| phase | msg/s | client µs/msg | nats-server µs/msg |",
        "| --- | ---: | ---: | ---: |",
    ]
    rows += [f"| {p.what} | {p.rate:,.0f} | {p.client_us:.2f} | {p.server_us:.2f} |" for p in r.phases]
    return "\n".join(rows)


# --- make test: small, correctness only -----------------------------------------------------

try:
    import pytest

    @pytest.mark.nats
    def test_rustio_bench_small_run(tmp_path: Path) -> None:
        r = run_rustio(3000, payload_bytes=120, repeats=1, batch=500, work=tmp_path, say=lambda *_: None)
        assert [p.n for p in r.phases] == [3000] * 7
        assert all(p.wall_s > 0 and p.client_s > 0 for p in r.phases)
        pr = r.projection()
        assert pr["projected_us"] == pytest.approx(pr["rust_source_us"] + pr["rust_sink_us"] + STEPS_US)
        assert "| publish: Rust publish_batch" in markdown(r)
except ImportError:  # pragma: no cover - pytest is a dev dependency
    pass


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=int(os.environ.get("TIDSTREAM_RUSTIO_N", "200000")))
    ap.add_argument("--payload", type=int, default=300, help="payload bytes per message")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch", type=int, default=1000)
    a = ap.parse_args()
    r = run_rustio(a.n, a.payload, a.repeats, a.batch)
    print(markdown(r))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
