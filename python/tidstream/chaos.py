"""Chaos runs: the dataflows killed with SIGKILL at random points over one long run.

:func:`run_chaos` starts an embedded nats-server (JetStream on disk), the ingest,
alerts and export dataflows as real Bytewax processes (recovery on, 1 s snapshots),
and publishes a simulated PMA fleet (:mod:`tidstream.simulate`, with malformed
uplinks mixed in) in chunks over the run. Meanwhile a seeded random schedule kills one
of the flows with SIGKILL ``min_up``-``max_up`` seconds after its input opened (the
process is up and working) and restarts it at once
on the same recovery folder. When every kill is done and every uplink is published,
each flow is run once more to the end of its input, then the outputs are compared with
an **in-process reference run on the same input** (no Bytewax, no NATS):

* ingest: the raw stream, read back, through :class:`~tidstream.flow.ingest.Ingestor`
  partition by partition; expected = its ``(subject, Nats-Msg-Id, data)`` triples,
  found = the readings and dead-letter streams;
* alerts: the readings stream, in order, through the same alert rules and forecaster
  (:func:`reference_alerts`); expected = those alerts, found = the alerts stream;
* export: expected = the readings stream's records, found = the rows of the Parquet
  dataset (readers' view: hidden temporary files are not part of it).

``lost`` counts expected messages or rows that are missing, ``duplicated`` the extra
copies and ``unexpected`` anything found that the reference does not have; all three
must be 0. Run it with ``tidstream chaos`` or ``make chaos`` (long form, figures in
docs/RELIABILITY.md); ``tests/test_chaos.py`` runs a short form.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

__all__ = ["ChaosReport", "FlowOutcome", "reference_alerts", "run_chaos"]

FLOWS = ("ingest", "alerts", "export")
_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class FlowOutcome:
    """What one flow was put through and what its output held."""

    flow: str
    kills: int = 0
    #: expected messages (ingest: readings + dead letters; alerts: alerts; export: rows)
    expected: int = 0
    found: int = 0
    lost: int = 0
    duplicated: int = 0
    unexpected: int = 0
    #: for each kill: how many of this flow's outputs were out at that moment
    out_at_kills: list[int] = field(default_factory=list)
    #: a few of the lost / duplicated / unexpected items, to look into a failure
    samples: list[str] = field(default_factory=list)


@dataclass
class ChaosReport:
    """The outcome of a chaos run (:func:`run_chaos`)."""

    seed: int
    uplinks: int
    seconds: float
    flows: dict[str, FlowOutcome]

    @property
    def ok(self) -> bool:
        """True when nothing was lost, duplicated or unexpected, in every flow."""
        return all(f.lost == f.duplicated == f.unexpected == 0 for f in self.flows.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "uplinks": self.uplinks,
            "seconds": round(self.seconds, 1),
            "ok": self.ok,
            "flows": {k: asdict(v) for k, v in self.flows.items()},
        }


def reference_alerts(
    readings: Sequence[dict[str, Any]], defaults: Any, by_kind: dict[str, Any]
) -> list[dict]:
    """The alerts the alerts dataflow must publish for ``readings`` (in stream order):
    the same forecaster (one per container kind) and rules (one state per device),
    applied reading by reading in process."""
    from .alerts import DeviceAlerts, thresholds_for
    from .forecast import Forecaster

    fcs: dict[str, Forecaster] = {}
    devs: dict[str, DeviceAlerts] = {}
    out: list[dict] = []
    for r in readings:
        kind = r.get("container_kind") or ""
        th = thresholds_for(kind, defaults, by_kind)
        fc = fcs.setdefault(kind, Forecaster(threshold=th.overflow_fill))
        t = int(datetime.fromisoformat(r["measured_at"].replace("Z", "+00:00")).timestamp())
        f = fc.step(r["device_id"], t, r["fill_ratio"], r["tilt"], th.overflow_lead_h)
        h = None if f is None or f["stuck"] else f["hours_to_threshold"]
        s = devs.setdefault(r["device_id"], DeviceAlerts())
        out += [a.to_dict() for a in s.on_reading(r, th, h)]
    return out


# -- reading streams back ---------------------------------------------------------------


async def _read_all(nc: Any, stream: str) -> list[Any]:
    js = nc.jetstream()
    n = (await js.stream_info(stream)).state.messages
    out: list[Any] = []
    if not n:
        return out
    done = asyncio.Event()

    async def cb(m: Any) -> None:
        out.append(m)
        if len(out) >= n:
            done.set()

    sub = await js.subscribe(">", stream=stream, ordered_consumer=True, cb=cb, pending_msgs_limit=0)
    await asyncio.wait_for(done.wait(), 120)
    await sub.unsubscribe()
    return out


def _streams(url: str, names: Sequence[str]) -> dict[str, list[Any]]:
    import nats

    async def go() -> dict[str, list[Any]]:
        nc = await nats.connect(url)
        try:
            return {s: await _read_all(nc, s) for s in names}
        finally:
            await nc.close()

    return asyncio.run(go())


def _count(url: str, stream: str) -> int:
    import nats

    async def go() -> int:
        nc = await nats.connect(url)
        try:
            return int((await nc.jetstream().stream_info(stream)).state.messages)
        finally:
            await nc.close()

    return asyncio.run(go())


def _compare(expected: Counter, found: Counter, out: FlowOutcome) -> None:
    out.expected = sum(expected.values())
    out.found = sum(found.values())
    out.lost = sum((expected - found).values())
    extra = found - expected
    out.duplicated = sum(v for k, v in extra.items() if k in expected)
    out.unexpected = sum(v for k, v in extra.items() if k not in expected)
    for what, items in (("lost", expected - found), ("extra", extra)):
        out.samples += [f"{what}: {str(k)[:600]}" for k in list(items)[:3]]


# -- the run -----------------------------------------------------------------------------


class _Flow:
    """One dataflow as a process that can be killed and started again."""

    def __init__(self, name: str, env: dict[str, str], work: Path, snapshot_s: int) -> None:
        self.name = name
        self.env = env
        self.rec = work / "recovery" / name
        self.logs = work / "logs"
        self.snapshot_s = snapshot_s
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = self.logs / f"{name}-start.log"
        self.starts = 0

    def start(self, once: bool) -> None:
        from .recovery import init_recovery

        if not self.rec.exists():
            init_recovery(self.rec, f"tidstream-{self.name}", 2)
        self.logs.mkdir(parents=True, exist_ok=True)
        self.log = self.logs / f"{self.name}-{self.starts:03d}.log"
        log = open(self.log, "wb")
        self.starts += 1
        e = dict(self.env)
        if once:
            e["TIDSTREAM_STOP_AT_END"] = "1"
        cmd = [
            sys.executable,
            "-m",
            "bytewax.run",
            f"{_ROOT / 'dataflows' / self.name}.py:flow",
            "-r",
            str(self.rec),
            "-s",
            str(self.snapshot_s),
            "-b",
            "0",
        ]
        self.proc = subprocess.Popen(cmd, env=e, stdout=log, stderr=subprocess.STDOUT)
        log.close()

    def wait_up(self, timeout: float = 120.0) -> None:
        """Wait until the process has opened its input (its sources log a line at start),
        so that a kill lands while it works, not while it imports."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc is not None and self.proc.poll() is not None:
                return
            if b"source partition" in self.log.read_bytes():
                return
            time.sleep(0.05)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def wait_ok(self, timeout: float) -> None:
        assert self.proc is not None
        rc = self.proc.wait(timeout)
        if rc != 0:
            last = sorted(self.logs.glob(f"{self.name}-*.log"))[-1]
            raise RuntimeError(f"{self.name} exited {rc}: {last.read_text(errors='replace')[-3000:]}")


def _uplinks(devices: int, frames: int, seed: int) -> tuple[Any, list[tuple[str, bytes, Any]]]:
    """(registry table, messages) of a simulated PMA fleet with malformed uplinks mixed in."""
    from .demo import _messages
    from .simulate import Territory, simulate

    territory = Territory.pma(scale=devices / 1445, seed=seed)
    reg = territory.registry
    n_unknown = max(1, len(reg) // 50)
    unknown = set(reg.column("device_id").to_pylist()[-n_unknown:])
    days = max(1 / 24, frames / len(reg) / 24 * 1.3)
    sim = simulate(territory, days=days, start="2026-11-16", interval_h=1.0, seed=seed)
    messages, _ = _messages(sim, frames, unknown)
    return reg.slice(0, len(reg) - n_unknown), messages


def run_chaos(
    work: Path,
    *,
    kills: int = 6,
    seed: int = 0,
    devices: int = 60,
    frames: int = 3000,
    flows: Sequence[str] = FLOWS,
    min_up: float = 0.5,
    max_up: float = 4.0,
    chunks: int = 10,
    log: Callable[[str], None] = lambda s: None,
) -> ChaosReport:
    """Run the pipeline over one simulated stream while killing flows; see the module
    docstring. ``kills`` SIGKILLs in all, shared evenly among ``flows`` in a random
    order, each ``min_up``-``max_up`` seconds (uniform, ``random.Random(seed)``) after the
    victim's input opened (so that kills land while it works, not while it starts); the
    ``frames`` uplinks are published in ``chunks`` parts spread over the kills."""
    import pyarrow.csv as pacsv

    from .config import load_settings
    from .flow.export import read_dataset, records_to_table
    from .flow.guards import FcntGuard, TimeWindow
    from .flow.ingest import Ingestor
    from .nats.jetstream import RawMsg, _ack_fields
    from .nats.publish import publish_uplinks
    from .nats.server import EmbeddedServer
    from .nats.setup import init_jetstream
    from .registry import load_registry

    t0 = time.monotonic()
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    reg, messages = _uplinks(devices, frames, seed)
    reg_path = work / "registry.csv"
    pacsv.write_csv(reg, reg_path)
    # The `silent` rule is a wall-clock timer (no frame for N x the learned cadence, in
    # real time): whether it fires depends on how long a killed flow stayed down, not on
    # the input, so no reference can predict it. It is set beyond the run's length here;
    # every other rule is a function of the readings and is compared.
    conf = work / "tidstream.toml"
    conf.write_text("[alerts]\nsilent_intervals = 1e5\n", encoding="utf-8")
    s = load_settings(conf, env={})
    st = s.streams
    outcomes = {f: FlowOutcome(f) for f in FLOWS}

    with EmbeddedServer(store_dir=work / "nats" / "jetstream") as srv:
        s.nats.url = srv.url
        s.streams.partitions = 4

        async def init() -> None:
            import nats

            nc = await nats.connect(srv.url)
            await init_jetstream(nc.jetstream(), s)
            await nc.close()

        asyncio.run(init())
        env = dict(os.environ)
        env.update(
            {
                "TIDSTREAM_CONFIG": str(conf),
                "TIDSTREAM_NATS_URL": srv.url,
                "TIDSTREAM_STREAMS_PARTITIONS": "4",
                "TIDSTREAM_REGISTRY": str(reg_path),
                "TIDSTREAM_EXPORT_DIR": str(work / "export"),
                "TIDSTREAM_TWIN_SNAPSHOT_PATH": str(work / "twin" / "twin.parquet"),
                "TIDSTREAM_BATCH_SIZE": "100",
                "TIDSTREAM_EXPORT_BLOCK_SIZE": "500",
                "TIDSTREAM_METRICS_PORT": "-1",
                "PYTHONPATH": str(_ROOT / "python") + os.pathsep + env.get("PYTHONPATH", ""),
            }
        )
        procs = {f: _Flow(f, env, work, 1) for f in FLOWS}
        for p in procs.values():
            p.start(once=False)

        # The stream arrives while the flows are being killed.
        per = max(1, -(-len(messages) // chunks))
        parts = [messages[i : i + per] for i in range(0, len(messages), per)]
        pause = kills * ((min_up + max_up) / 2 + 2.0) / max(1, len(parts))  # + ~2 s start-up
        pub_error: list[BaseException] = []

        def publisher() -> None:
            try:
                for part in parts:
                    publish_uplinks(s.nats, part)
                    time.sleep(pause)
            except BaseException as e:  # reported after the run
                pub_error.append(e)

        th = threading.Thread(target=publisher, name="chaos-publisher", daemon=True)
        th.start()
        out_stream = {"ingest": st.readings, "alerts": st.alerts, "export": st.readings}
        # Each flow gets its share of the kills, in a random order.
        victims = [flows[i % len(flows)] for i in range(kills)]
        rng.shuffle(victims)
        for k, victim in enumerate(victims):
            p = procs[victim]
            p.wait_up()
            time.sleep(rng.uniform(min_up, max_up))
            if p.proc is not None and p.proc.poll() not in (None, 0):
                p.wait_ok(0)  # it died by itself: that is a failure, with its log
            p.kill()
            outcomes[victim].kills += 1
            if victim == "export":
                n_out = len(list((work / "export").glob("date=*/readings-*.parquet")))
            else:
                n_out = _count(srv.url, out_stream[victim])
            outcomes[victim].out_at_kills.append(n_out)
            log(f"kill {k + 1}/{kills}: {victim} (outputs so far: {n_out})")
            p.start(once=False)
        th.join()
        if pub_error:
            raise pub_error[0]
        # The end of the run: stop the long-running processes, run each to the end once.
        for p in procs.values():
            p.kill()
        procs["ingest"].start(once=True)
        procs["ingest"].wait_ok(600)
        for f in ("alerts", "export"):
            procs[f].start(once=True)
        for f in ("alerts", "export"):
            procs[f].wait_ok(600)
        log("all flows ran to the end; comparing with the reference")

        got = _streams(srv.url, [st.raw, st.readings, st.dlq, st.alerts])

    # ingest: the raw stream through the Ingestor, partition by partition, in order
    by_part: dict[str, list[RawMsg]] = {}
    for m in got[st.raw]:
        seq, ts_ns, _ = _ack_fields(m)
        part = m.subject.split(".")[2]
        by_part.setdefault(part, []).append(RawMsg(part, seq, m.subject, m.data, ts_ns, m.headers))
    ing = Ingestor(
        load_registry(reg_path),
        s.subjects,
        st.raw,
        s.max_message_bytes,
        fcnt_guard=FcntGuard(),
        time_window=TimeWindow(future_ns=s.max_future_s * 1_000_000_000),
    )
    want: Counter = Counter()
    for part in sorted(by_part):
        for _, pub in ing(by_part[part]):
            want[(pub.subject, pub.msg_id, bytes(pub.data))] += 1
    found: Counter = Counter(
        (m.subject, (m.headers or {}).get("Nats-Msg-Id"), bytes(m.data))
        for m in got[st.readings] + got[st.dlq]
    )
    _compare(want, found, outcomes["ingest"])

    # alerts: the readings stream, in order, through the same rules
    readings = [orjson.loads(m.data) for m in got[st.readings]]
    defaults, by_kind = s.alert_thresholds()
    want = Counter(
        orjson.dumps(a, option=orjson.OPT_SORT_KEYS) for a in reference_alerts(readings, defaults, by_kind)
    )
    found = Counter(orjson.dumps(orjson.loads(m.data), option=orjson.OPT_SORT_KEYS) for m in got[st.alerts])
    _compare(want, found, outcomes["alerts"])

    # export: the Parquet dataset as readers see it, row by row
    table = read_dataset(work / "export")
    ref = records_to_table(readings)
    want = Counter(json.dumps(r, sort_keys=True, default=str) for r in ref.to_pylist())
    found = Counter(json.dumps(r, sort_keys=True, default=str) for r in table.to_pylist())
    _compare(want, found, outcomes["export"])
    leftovers = [p for p in (work / "export").rglob("*") if p.is_file() and p.name.startswith(".")]
    if leftovers:
        raise RuntimeError(f"temporary files left in the export folder: {leftovers[:5]}")
    return ChaosReport(seed, len(messages), time.monotonic() - t0, outcomes)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tidstream.chaos`` / ``tidstream chaos``: run, print the report as JSON."""
    import argparse

    ap = argparse.ArgumentParser(prog="tidstream chaos", description=__doc__.splitlines()[0])
    add_arguments(ap)
    return run_from_args(ap.parse_args(argv))


def add_arguments(ap: Any) -> None:
    ap.add_argument("--out", default="out/chaos", help="work folder (emptied first)")
    ap.add_argument("--kills", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--devices", type=int, default=150)
    ap.add_argument("--frames", type=int, default=20_000)
    ap.add_argument("--flows", default=",".join(FLOWS), help="flows to kill (comma-separated)")
    ap.add_argument("--min-up", type=float, default=0.5, help="least seconds between kills")
    ap.add_argument("--max-up", type=float, default=4.0, help="most seconds between kills")


def run_from_args(args: Any) -> int:
    import shutil

    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    report = run_chaos(
        out,
        kills=args.kills,
        seed=args.seed,
        devices=args.devices,
        frames=args.frames,
        flows=[f for f in args.flows.split(",") if f],
        min_up=args.min_up,
        max_up=args.max_up,
        log=lambda t: print(t, file=sys.stderr, flush=True),
    )
    print(json.dumps(report.to_dict(), indent=2))
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
