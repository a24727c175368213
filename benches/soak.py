"""Soak and back-pressure runs: the simulator publishing to an embedded nats-server while
the ingest, export and alerts dataflows run as real ``python -m bytewax.run`` processes,
sampled over time (docs/RELIABILITY.md, "Sustained load").

**Steady** (:func:`run_steady`): uplinks of a simulated PMA fleet published at a steady
``rate`` (msg/s, below capacity) for ``seconds``; every ``sample_s`` seconds one row:

* messages in the raw, readings, dead-letter and alerts streams (JetStream stream info);
* per flow, messages its source emitted so far and its lag behind the stream head
  (``tidstream_source_messages_total`` and ``tidstream_source_lag_messages`` scraped from
  the flow's ``/metrics``);
* resident memory (VmRSS) of each flow process and of nats-server.

After the last uplink, the run waits until every flow is at the head and the Parquet
export holds every reading, then checks the accounting (every published uplink ends as
readings or as exactly one dead letter, the Parquet rows are exactly the readings, the
alerts flow read every reading and its alerts counter equals the alerts stream) and
writes ``soak.csv``, ``soak.md`` (table + summary), ``soak.png`` and ``summary.json``.

**Memory growth** per process: mean RSS of the last quarter of the samples taken after
the warm-up (``warmup_s``, default 10 % of the run) over the mean of the first quarter.

**Back-pressure** (:func:`run_backlog`): ``uplinks`` published as fast as possible into a
one-partition raw stream while no flow runs (the source outran the flow entirely), then
the ingest flow started on that backlog; sampled every ``sample_s``: its RSS, its lag, and
its **in-flight** messages: delivered to it by the server (``delivered.stream_seq`` of its
consumer, from nats-server's ``/jsz`` monitoring endpoint) but not yet emitted into the
dataflow. The in-flight count stays bounded (the source's ``high_water`` local queue plus
the server's flow-control window) while the rest of the backlog waits in JetStream.

Command line (``make soak``, ``SOAK_SECONDS`` / ``SOAK_RATE`` to change)::

    .venv/bin/python benches/soak.py --seconds 3600 --rate 50 --out out/soak
    .venv/bin/python benches/soak.py --backlog 200000 --out out/soak-backlog
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import e2e  # noqa: E402

FLOWS = ("ingest", "export", "alerts")


def _quiet(_: str) -> None:
    pass


# --------------------------------------------------------------------------------------
# Processes and probes
# --------------------------------------------------------------------------------------


def rss_mib(pid: int | None) -> float | None:
    """VmRSS of a live process in MiB (None once it is gone)."""
    m = e2e.read_mem(pid) if pid else None
    return None if m is None else m[0] / 1024


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """A flow's ``/metrics``, parsed: (sample name, sorted labels) -> value."""
    from prometheus_client.parser import text_string_to_metric_families

    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def total(m: dict, name: str, **labels: str) -> float:
    """Sum of the samples ``name`` whose labels include ``labels``."""
    return sum(v for (n, ls), v in m.items() if n == name and all((k, x) in ls for k, x in labels.items()))


@dataclass
class Flow:
    """A dataflow process started for the run, with its metrics port and log."""

    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    def metrics(self) -> dict | None:
        try:
            return scrape(self.port)
        except OSError:
            return None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(30)


def start_flow(
    name: str, env: dict[str, str], work: Path, snapshot_s: int = 5, wrap: list[str] | None = None
) -> Flow:
    """``python -m bytewax.run dataflows/<name>.py`` running for ever (no stop at end),
    its ``/metrics`` on a free port, output in ``work/<name>.log``."""
    from bytewax.recovery import init_db_dir
    from tidstream.nats.server import free_port

    rec = work / "recovery" / name
    rec.mkdir(parents=True, exist_ok=True)
    init_db_dir(rec, 1)
    port = free_port()
    e = dict(env, TIDSTREAM_METRICS_PORT=str(port))
    e.pop("TIDSTREAM_STOP_AT_END", None)
    cmd = [
        sys.executable, "-m", "bytewax.run", f"{ROOT / 'dataflows' / (name + '.py')}:flow",
        "-r", str(rec), "-s", str(snapshot_s), "-b", "0",
    ]  # fmt: skip
    cmd = [*(wrap or []), *cmd]
    log = work / f"{name}.log"
    with open(log, "wb") as f:
        proc = subprocess.Popen(cmd, env=e, stdout=f, stderr=subprocess.STDOUT)
    return Flow(name, proc, port, log)


def stream_state(settings: Any, names: list[str]) -> dict[str, tuple[int, int]]:
    """(messages, bytes) of each stream."""
    from tidstream.nats.connect import connect

    async def go() -> dict[str, tuple[int, int]]:
        nc = await connect(settings.nats)
        try:
            js = nc.jetstream()
            out = {}
            for s in names:
                st = (await js.stream_info(s)).state
                out[s] = (int(st.messages), int(st.bytes))
            return out
        finally:
            await nc.close()

    return asyncio.run(go())


def delivered_seq(monitor_port: int, stream: str) -> int:
    """Highest stream sequence the server delivered to any consumer of ``stream``
    (nats-server ``/jsz?consumers=true``)."""
    url = f"http://127.0.0.1:{monitor_port}/jsz?streams=true&consumers=true"
    j = json.loads(urllib.request.urlopen(url, timeout=5).read())
    best = 0
    for acc in j.get("account_details") or []:
        for sd in acc.get("stream_detail") or []:
            if sd.get("name") != stream:
                continue
            for cd in sd.get("consumer_detail") or []:
                best = max(best, int((cd.get("delivered") or {}).get("stream_seq") or 0))
    return best


# --------------------------------------------------------------------------------------
# Steady run
# --------------------------------------------------------------------------------------


@dataclass
class SoakConfig:
    """A steady soak run; see the module docstring."""

    seconds: float = 3600.0
    rate: float = 50.0
    sample_s: float = 5.0
    #: samples before this time (s since the flows started) are warm-up (default 10 %).
    warmup_s: float | None = None
    #: fleet size as a multiple of PMA's (~1,445 sensors at 1).
    scale: float = 1.0
    partitions: int = 4
    flows: tuple[str, ...] = FLOWS
    #: Parquet export block (rows per file, kept in memory until the block is complete).
    export_block: int = 10_000
    batch_size: int = 1000
    #: seconds between the alerts flow's Parquet twin snapshots (the configuration's 60 s).
    twin_snapshot_s: float = 60.0
    #: seconds between the flows' Bytewax recovery snapshots (the configuration's 5 s).
    snapshot_s: int = 5
    #: ``[nats] data_path`` of the flows: "auto" (the default: Rust), "python" (nats-py) or
    #: "rust" (docs/NATSIO.md).
    data_path: str = "auto"
    #: flow name -> command prefix (a profiler, e.g. ``["heaptrack", "-o", "out/alerts"]``).
    wrap: dict[str, list[str]] = field(default_factory=dict)
    #: seconds to wait for the flows to drain after the last uplink.
    drain_timeout_s: float = 300.0
    seed: int = 7
    say: Callable[[str], None] = field(default=_quiet, repr=False)

    @property
    def uplinks(self) -> int:
        return round(self.rate * self.seconds)

    @property
    def warmup(self) -> float:
        return self.seconds * 0.1 if self.warmup_s is None else self.warmup_s


@dataclass
class Growth:
    """RSS of one process over the samples after the warm-up."""

    process: str
    first_quarter_mib: float
    last_quarter_mib: float
    max_mib: float
    samples: int

    @property
    def change(self) -> float:
        return self.last_quarter_mib / self.first_quarter_mib - 1


def growth(rows: list[dict[str, Any]], col: str, after_s: float) -> Growth:
    xs = [r[col] for r in rows if r["t_s"] >= after_s and r.get(col) is not None]
    if len(xs) < 4:
        xs = [r[col] for r in rows if r.get(col) is not None]
    q = max(1, len(xs) // 4)
    return Growth(
        col.removesuffix("_rss_mib"), statistics.fmean(xs[:q]), statistics.fmean(xs[-q:]), max(xs), len(xs)
    )


@dataclass
class SoakResult:
    config: dict[str, Any]
    rows: list[dict[str, Any]]
    published: int
    publish_s: float
    drain_s: float
    accounting: dict[str, Any]
    problems: list[str]
    growth: list[Growth]
    max_lag: dict[str, float]
    max_lag_after_warmup: dict[str, float]
    alerts_by_kind: dict[str, float]
    files: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems


def flow_env(settings: Any, registry: Path, work: Path, cfg: SoakConfig) -> dict[str, str]:
    env = e2e.start_env(settings, registry, work / "readings")
    env.update(
        {
            "TIDSTREAM_EXPORT_BLOCK_SIZE": str(cfg.export_block),
            "TIDSTREAM_BATCH_SIZE": str(cfg.batch_size),
            "TIDSTREAM_TWIN_SNAPSHOT_PATH": str(work / "twin" / "twin.parquet"),
            "TIDSTREAM_TWIN_SNAPSHOT_INTERVAL_S": str(cfg.twin_snapshot_s),
            "TIDSTREAM_NATS_DATA_PATH": cfg.data_path,
        }
    )
    return env


def sample(
    t0: float,
    settings: Any,
    flows: dict[str, Flow],
    server_pid: int | None,
    streams: dict[str, str],
) -> dict[str, Any]:
    row: dict[str, Any] = {"t_s": round(time.monotonic() - t0, 2)}
    st = stream_state(settings, list(streams.values()))
    for key, name in streams.items():
        row[key] = st[name][0]
    for name, f in flows.items():
        m = f.metrics()
        row[f"{name}_in"] = None if m is None else int(total(m, "tidstream_source_messages_total"))
        row[f"{name}_lag"] = None if m is None else int(total(m, "tidstream_source_lag_messages"))
        row[f"{name}_rss_mib"] = rss_mib(f.proc.pid)
    row["nats_rss_mib"] = rss_mib(server_pid)
    return row


def add_rates(rows: list[dict[str, Any]], flows: tuple[str, ...]) -> None:
    """Per-sample rates (msg/s over the interval since the previous sample)."""
    prev = None
    for r in rows:
        for col, src in [("in_per_s", "raw")] + [(f"{f}_per_s", f"{f}_in") for f in flows]:
            if prev is None or r.get(src) is None or prev.get(src) is None:
                r[col] = None
            else:
                dt = r["t_s"] - prev["t_s"]
                r[col] = round((r[src] - prev[src]) / dt, 1) if dt > 0 else None
        prev = r


def run_steady(cfg: SoakConfig, out: Path) -> SoakResult:
    """The steady soak (see the module docstring); writes its files into ``out``."""
    from tidstream.flow.export import read_dataset
    from tidstream.nats.publish import publish_uplinks
    from tidstream.nats.server import EmbeddedServer

    out.mkdir(parents=True, exist_ok=True)
    work = out / "work"
    if work.exists():
        import shutil

        shutil.rmtree(work)
    work.mkdir()
    cfg.say(
        f"soak: {cfg.uplinks:,} uplinks at {cfg.rate:g}/s for {cfg.seconds:g} s, flows {cfg.flows}, data_path {cfg.data_path}"
    )
    fleet = e2e.make_fleet(work / "fleet", cfg.uplinks, scale=cfg.scale, seed=cfg.seed)
    srv = EmbeddedServer(store_dir=work / "nats" / "jetstream").start()
    flows: dict[str, Flow] = {}
    try:
        settings = e2e.settings_for(srv.url, cfg.partitions)
        settings.batch_size = cfg.batch_size
        e2e.init_streams(settings)
        st = settings.streams
        streams = {"raw": st.raw, "readings": st.readings, "dlq": st.dlq, "alerts": st.alerts}
        env = flow_env(settings, fleet.registry_path, work, cfg)
        for name in cfg.flows:
            flows[name] = start_flow(name, env, work, cfg.snapshot_s, cfg.wrap.get(name))
        # Wait for every flow's /metrics (process up, sources started) before publishing.
        end = time.monotonic() + 120
        while time.monotonic() < end and not all(f.metrics() for f in flows.values()):
            for f in flows.values():
                if f.proc.poll() is not None:
                    raise RuntimeError(f"{f.name} flow exited at start:\n{f.log.read_text()[-3000:]}")
            time.sleep(0.2)
        cfg.say(f"  nats-server {srv.url}, flows up: {', '.join(flows)}")

        rows: list[dict[str, Any]] = []
        published: list[int] = [0]
        pub_err: list[BaseException] = []

        def publisher() -> None:
            try:
                published[0] = publish_uplinks(settings.nats, fleet.messages(), rate=cfg.rate)
            except BaseException as e:  # reported below
                pub_err.append(e)

        t0 = time.monotonic()
        th = threading.Thread(target=publisher, name="soak-publisher", daemon=True)
        th.start()
        next_t = t0
        while th.is_alive():
            rows.append(sample(t0, settings, flows, srv.pid, streams))
            r = rows[-1]
            if len(rows) % max(1, int(60 / cfg.sample_s)) == 0:
                cfg.say(
                    f"  {r['t_s']:7.0f} s raw {r['raw']:,} readings {r['readings']:,} lag "
                    + " ".join(f"{f}={r.get(f + '_lag')}" for f in flows)
                    + " rss "
                    + " ".join(f"{f}={r.get(f + '_rss_mib') or 0:.0f}" for f in flows)
                    + f" nats={r['nats_rss_mib'] or 0:.0f} MiB"
                )
            for f in flows.values():
                if f.proc.poll() is not None:
                    raise RuntimeError(f"{f.name} flow died:\n{f.log.read_text()[-3000:]}")
            next_t += cfg.sample_s
            time.sleep(max(0.0, next_t - time.monotonic()))
        th.join()
        if pub_err:
            raise pub_err[0]
        publish_s = time.monotonic() - t0
        n = published[0]

        # Drain: every flow at the head and the Parquet export complete.
        t_drain = time.monotonic()
        export_dir = work / "readings"

        def drained(r: dict[str, Any]) -> bool:
            out_n = r["readings"] + r["dlq"]
            if out_n < n:
                return False
            if any(r.get(f"{f}_lag") != 0 for f in flows):
                return False
            if "ingest" in flows and r.get("ingest_in") != n:
                return False
            for f in ("export", "alerts"):
                if f in flows and r.get(f"{f}_in") != r["readings"]:
                    return False
            if "export" in flows:
                try:
                    return bool(read_dataset(export_dir).num_rows == r["readings"])
                except Exception:
                    return False
            return True

        while True:
            rows.append(sample(t0, settings, flows, srv.pid, streams))
            if drained(rows[-1]) or time.monotonic() - t_drain > cfg.drain_timeout_s:
                break
            time.sleep(min(cfg.sample_s, 1.0))
        drain_s = time.monotonic() - t_drain
        problems: list[str] = []
        if not drained(rows[-1]):
            problems.append(f"not drained {drain_s:.0f} s after the last uplink: {rows[-1]}")
        alert_metrics = flows["alerts"].metrics() if "alerts" in flows else None
        for f in flows.values():
            f.stop()
        parquet_seqs = read_dataset(export_dir).column("raw_seq").to_pylist() if "export" in flows else None
        acc = e2e.check_accounting(settings, n, parquet_seqs)
        problems += acc.problems
        alerts_by_kind: dict[str, float] = {}
        if alert_metrics is not None:
            for (name, ls), v in alert_metrics.items():
                if name == "tidstream_alerts_total":
                    k = dict(ls)["kind"]
                    alerts_by_kind[k] = alerts_by_kind.get(k, 0) + v
            if sum(alerts_by_kind.values()) != rows[-1]["alerts"]:
                problems.append(
                    f"alerts counter {sum(alerts_by_kind.values())} != alerts stream {rows[-1]['alerts']}"
                )
    finally:
        for f in flows.values():
            f.stop()
        srv.stop()

    add_rates(rows, tuple(flows))
    procs = [*(f"{f}_rss_mib" for f in cfg.flows), "nats_rss_mib"]
    g = [growth(rows, c, cfg.warmup) for c in procs]
    lag_cols = [f"{f}_lag" for f in cfg.flows]
    max_lag = {c[:-4]: max((r[c] or 0) for r in rows) for c in lag_cols}
    max_lag_w = {
        c[:-4]: max(((r[c] or 0) for r in rows if r["t_s"] >= cfg.warmup), default=0) for c in lag_cols
    }
    res = SoakResult(
        config={k: v for k, v in asdict(cfg).items() if k != "say"} | {"uplinks": cfg.uplinks},
        rows=rows,
        published=n,
        publish_s=round(publish_s, 1),
        drain_s=round(drain_s, 1),
        accounting={k: v for k, v in asdict(acc).items() if k != "problems"},
        problems=problems,
        growth=g,
        max_lag=max_lag,
        max_lag_after_warmup=max_lag_w,
        alerts_by_kind=alerts_by_kind,
    )
    write_outputs(res, out)
    return res


# --------------------------------------------------------------------------------------
# Back-pressure run
# --------------------------------------------------------------------------------------


@dataclass
class BacklogResult:
    uplinks: int
    backlog_bytes: int
    publish_s: float
    drain_s: float
    idle_rss_mib: float
    peak_rss_mib: float
    max_in_flight: int
    max_lag: int
    rows: list[dict[str, Any]]
    accounting: dict[str, Any]
    problems: list[str]
    files: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems


def run_backlog(
    uplinks: int,
    out: Path,
    *,
    sample_s: float = 0.5,
    scale: float = 1.0,
    batch_size: int = 1000,
    timeout_s: float = 600.0,
    say: Callable[[str], None] = _quiet,
) -> BacklogResult:
    """The back-pressure run (see the module docstring)."""
    from tidstream.nats.publish import publish_uplinks
    from tidstream.nats.server import EmbeddedServer

    out.mkdir(parents=True, exist_ok=True)
    work = out / "work"
    if work.exists():
        import shutil

        shutil.rmtree(work)
    work.mkdir()
    fleet = e2e.make_fleet(work / "fleet", uplinks, scale=scale)
    srv = EmbeddedServer(store_dir=work / "nats" / "jetstream").start()
    flow: Flow | None = None
    try:
        settings = e2e.settings_for(srv.url, 1)
        settings.batch_size = batch_size
        e2e.init_streams(settings)
        st = settings.streams
        # The ingest flow starts first on an empty stream (its idle RSS), is stopped, the
        # backlog is published, and it starts again on it: the same process image twice.
        cfg = SoakConfig(partitions=1, flows=("ingest",), batch_size=batch_size)
        env = flow_env(settings, fleet.registry_path, work, cfg)
        flow = start_flow("ingest", env, work)
        end = time.monotonic() + 120
        while time.monotonic() < end and not flow.metrics():
            time.sleep(0.2)
        time.sleep(2)
        idle = rss_mib(flow.proc.pid) or 0.0
        flow.stop()
        say(f"backlog: ingest idle RSS {idle:.0f} MiB; publishing {uplinks:,} uplinks as fast as possible")
        t = time.monotonic()
        n = publish_uplinks(settings.nats, fleet.messages())
        publish_s = time.monotonic() - t
        backlog_bytes = stream_state(settings, [st.raw])[st.raw][1]
        say(f"  published {n:,} ({backlog_bytes / 2**20:.0f} MiB in JetStream) in {publish_s:.1f} s")
        import shutil

        shutil.rmtree(work / "recovery" / "ingest")
        flow = start_flow("ingest", env, work)
        rows: list[dict[str, Any]] = []
        t0 = time.monotonic()
        while True:
            if flow.proc.poll() is not None:
                raise RuntimeError(f"ingest flow died:\n{flow.log.read_text()[-3000:]}")
            m = flow.metrics()
            s = stream_state(settings, [st.readings, st.dlq])
            emitted = int(total(m, "tidstream_source_messages_total")) if m else 0
            delivered = delivered_seq(srv.monitor_port, st.raw)
            row = {
                "t_s": round(time.monotonic() - t0, 2),
                "emitted": emitted,
                "delivered": delivered,
                "in_flight": max(0, delivered - emitted),
                "lag": int(total(m, "tidstream_source_lag_messages")) if m else None,
                "out": s[st.readings][0] + s[st.dlq][0],
                "rss_mib": rss_mib(flow.proc.pid),
                "nats_rss_mib": rss_mib(srv.pid),
            }
            rows.append(row)
            if row["lag"] == 0 and emitted == n and row["out"] >= n:
                break
            if row["t_s"] > timeout_s:
                break
            time.sleep(sample_s)
        drain_s = time.monotonic() - t0
        flow.stop()
        acc = e2e.check_accounting(settings, n)
        problems = list(acc.problems)
        if rows[-1]["lag"] != 0 or rows[-1]["emitted"] != n:
            problems.append(f"not drained within {timeout_s:.0f} s: {rows[-1]}")
    finally:
        if flow is not None:
            flow.stop()
        srv.stop()
    res = BacklogResult(
        uplinks=n,
        backlog_bytes=backlog_bytes,
        publish_s=round(publish_s, 1),
        drain_s=round(drain_s, 1),
        idle_rss_mib=round(idle, 1),
        peak_rss_mib=round(max(r["rss_mib"] or 0 for r in rows), 1),
        max_in_flight=max(r["in_flight"] for r in rows),
        max_lag=max(r["lag"] or 0 for r in rows),
        rows=rows,
        accounting={k: v for k, v in asdict(acc).items() if k != "problems"},
        problems=problems,
    )
    write_backlog_outputs(res, out)
    return res


# --------------------------------------------------------------------------------------
# Outputs
# --------------------------------------------------------------------------------------


def _csv(rows: list[dict[str, Any]], path: Path) -> None:
    cols = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if r.get(k) is None else r[k]) for k in cols})


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.1f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def summary_markdown(res: SoakResult) -> str:
    c = res.config
    lines = [
        f"Steady soak: {res.published:,} uplinks at {c['rate']:g}/s for {c['seconds']:g} s "
        f"({c['partitions']} raw partitions, flows {', '.join(c['flows'])}, fleet scale {c['scale']:g}, "
        f"sample every {c['sample_s']:g} s, warm-up {c['warmup_s'] if c['warmup_s'] is not None else c['seconds'] * 0.1:g} s).",
        "",
        "| process | RSS after warm-up, first quarter (MiB) | last quarter (MiB) | growth | max (MiB) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for g in res.growth:
        lines.append(
            f"| {g.process} | {g.first_quarter_mib:.1f} | {g.last_quarter_mib:.1f} | {g.change * 100:+.1f} % | {g.max_mib:.1f} |"
        )
    lines += [
        "",
        "| flow | max lag (messages) | max lag after warm-up |",
        "| --- | --- | --- |",
    ]
    for f, v in res.max_lag.items():
        lines.append(f"| {f} | {v:,.0f} | {res.max_lag_after_warmup[f]:,.0f} |")
    a = res.accounting
    lines += [
        "",
        f"Accounting: {a['frames_in']:,} uplinks in = {a['frames_with_readings']:,} with readings "
        f"({a['readings']:,} readings) + {a['dead_letters']:,} dead letters {a['dead_by_reason']}; "
        f"Parquet rows {_fmt(a['parquet_rows'])}; alerts by kind {res.alerts_by_kind}; "
        f"drained {res.drain_s:g} s after the last uplink; problems: {res.problems or 'none'}.",
    ]
    return "\n".join(lines) + "\n"


def sample_table(rows: list[dict[str, Any]], every: int = 1) -> str:
    cols = list(dict.fromkeys(k for r in rows for k in r))
    out = ["| " + " | ".join(cols) + " |", "|" + " --- |" * len(cols)]
    for i, r in enumerate(rows):
        if i % every == 0 or i == len(rows) - 1:
            out.append("| " + " | ".join(_fmt(r.get(k)) for k in cols) + " |")
    return "\n".join(out) + "\n"


def plot(res: SoakResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = res.rows
    t = [r["t_s"] / 60 for r in rows]
    fig, ax = plt.subplots(3, 1, figsize=(10, 10), sharex=True)
    ax[0].plot(t, [r.get("in_per_s") for r in rows], label="published (raw stream)", lw=1)
    for f in res.config["flows"]:
        ax[0].plot(t, [r.get(f"{f}_per_s") for r in rows], label=f"{f} source", lw=1)
    ax[0].set_ylabel("messages/s")
    ax[0].set_title(f"tidstream soak: {res.published:,} uplinks at {res.config['rate']:g}/s")
    ax[0].legend(loc="lower right", fontsize=8)
    for f in res.config["flows"]:
        ax[1].plot(t, [r.get(f"{f}_lag") for r in rows], label=f, lw=1)
    ax[1].set_ylabel("lag behind stream head (messages)")
    ax[1].legend(loc="upper right", fontsize=8)
    for g in res.growth:
        ax[2].plot(
            t, [r.get(f"{g.process}_rss_mib") for r in rows], label=f"{g.process} ({g.change * 100:+.1f} %)"
        )
    ax[2].axvline(
        res.config["warmup_s"] / 60
        if res.config["warmup_s"] is not None
        else res.config["seconds"] * 0.1 / 60,
        color="grey",
        ls=":",
        lw=1,
    )
    ax[2].set_ylabel("RSS (MiB)")
    ax[2].set_xlabel("minutes since the flows started")
    ax[2].set_ylim(bottom=0)
    ax[2].legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_outputs(res: SoakResult, out: Path) -> None:
    _csv(res.rows, out / "soak.csv")
    every = max(1, len(res.rows) // 60)
    md = "# Soak run\n\n" + summary_markdown(res) + "\n## Samples\n\n" + sample_table(res.rows, every)
    (out / "soak.md").write_text(md, encoding="utf-8")
    plot(res, out / "soak.png")
    summary = {k: v for k, v in asdict(res).items() if k != "rows"}
    summary["growth"] = [asdict(g) | {"change": g.change} for g in res.growth]
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str), encoding="utf-8")
    res.files = {k: str(out / f) for k, f in [("csv", "soak.csv"), ("md", "soak.md"), ("png", "soak.png")]}


def write_backlog_outputs(res: BacklogResult, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    _csv(res.rows, out / "backlog.csv")
    text = (
        f"# Back-pressure run\n\n{res.uplinks:,} uplinks ({res.backlog_bytes / 2**20:.0f} MiB) published in "
        f"{res.publish_s:g} s with no flow running, then the ingest flow (1 partition) started on them and "
        f"drained them in {res.drain_s:g} s. Ingest RSS idle {res.idle_rss_mib:.0f} MiB, peak "
        f"{res.peak_rss_mib:.0f} MiB; most messages in flight (delivered by the server, not yet in the "
        f"dataflow) {res.max_in_flight:,}; largest lag {res.max_lag:,}. Problems: {res.problems or 'none'}.\n\n"
        + sample_table(res.rows, max(1, len(res.rows) // 60))
    )
    (out / "backlog.md").write_text(text, encoding="utf-8")
    t = [r["t_s"] for r in res.rows]
    fig, ax = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    ax[0].plot(t, [r["lag"] for r in res.rows], label="lag (in JetStream + local queue)")
    ax[0].plot(t, [r["in_flight"] for r in res.rows], label="in flight in the flow process")
    ax[0].set_ylabel("messages")
    ax[0].legend(fontsize=8)
    ax[0].set_title(f"tidstream back-pressure: ingest draining a {res.uplinks:,}-uplink backlog")
    ax[1].plot(t, [r["rss_mib"] for r in res.rows], label="ingest RSS")
    ax[1].axhline(res.idle_rss_mib, color="grey", ls=":", lw=1, label="ingest idle RSS")
    ax[1].set_ylabel("MiB")
    ax[1].set_ylim(bottom=0)
    ax[1].set_xlabel("seconds since the flow started")
    ax[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "backlog.png", dpi=90)
    plt.close(fig)
    res.files = {
        "csv": str(out / "backlog.csv"),
        "md": str(out / "backlog.md"),
        "png": str(out / "backlog.png"),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=float(os.environ.get("SOAK_SECONDS") or 3600))
    p.add_argument("--rate", type=float, default=float(os.environ.get("SOAK_RATE") or 50))
    p.add_argument("--sample", type=float, default=5.0, help="seconds between samples")
    p.add_argument("--warmup", type=float, default=None, help="warm-up seconds (default 10 %% of the run)")
    p.add_argument("--scale", type=float, default=1.0, help="fleet size, multiple of PMA's")
    p.add_argument("--partitions", type=int, default=4)
    p.add_argument("--flows", default=",".join(FLOWS))
    p.add_argument("--export-block", type=int, default=10_000)
    p.add_argument("--snapshot", type=int, default=5, help="seconds between Bytewax recovery snapshots")
    p.add_argument("--twin-snapshot", type=float, default=60.0, help="seconds between Parquet twin snapshots")
    p.add_argument(
        "--data-path", choices=("auto", "python", "rust"), default="auto", help="the flows' [nats] data_path"
    )
    p.add_argument(
        "--wrap",
        action="append",
        default=[],
        metavar="FLOW=CMD",
        help="run FLOW under a command prefix, e.g. alerts='heaptrack -o out/alerts' (repeatable)",
    )
    p.add_argument("--backlog", type=int, default=0, help="back-pressure run with this many uplinks instead")
    p.add_argument("--out", type=Path, default=ROOT / "out" / "soak")
    a = p.parse_args()

    def say(s: str) -> None:
        print(s, file=sys.stderr, flush=True)

    if a.backlog:
        b = run_backlog(a.backlog, a.out, scale=a.scale, say=say)
        print(Path(b.files["md"]).read_text().split("\n\n| ")[0])
        return 0 if b.ok else 1
    cfg = SoakConfig(
        seconds=a.seconds,
        rate=a.rate,
        sample_s=a.sample,
        warmup_s=a.warmup,
        scale=a.scale,
        partitions=a.partitions,
        flows=tuple(x for x in a.flows.split(",") if x),
        export_block=a.export_block,
        snapshot_s=a.snapshot,
        twin_snapshot_s=a.twin_snapshot,
        data_path=a.data_path,
        wrap={k: v.split() for k, v in (w.split("=", 1) for w in a.wrap)},
        say=say,
    )
    res = run_steady(cfg, a.out)
    print(summary_markdown(res))
    print(f"files: {res.files}")
    return 0 if res.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
