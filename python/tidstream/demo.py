"""``tidstream demo``: the whole pipeline on one machine, from nothing.

Starts an embedded nats-server, creates the streams, simulates a fleet of the PMA
territory, publishes its uplinks (TTN v3 and ChirpStack v4 envelopes and raw frames,
with malformed ones and unknown devices mixed in), runs the ingest and export
dataflows to completion as real Bytewax processes, then the alerts dataflow (forecasts,
alerts, the twin), and prints what came in, what went out, what was dead-lettered, where
the Parquet files are and what the twin says.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow.csv as pacsv

from .config import Settings
from .exceptions import TidstreamError

__all__ = ["run_demo"]


def _say(quiet: bool, text: str) -> None:
    if not quiet:
        print(text, file=sys.stderr, flush=True)


def _messages(sim: Any, n_frames: int, unknown: set[str]) -> tuple[list, dict[str, int]]:
    """(subject, data, headers) for the first n_frames uplinks, plus a few broken ones."""
    out: list = []
    injected: dict[str, int] = {}
    for batch in sim.uplinks():
        cols = {
            c: batch.column(c).to_pylist() for c in ("device_id", "format", "fport", "payload", "envelope")
        }
        for dev, fmt, fport, payload, env in zip(*cols.values()):
            if len(out) >= n_frames:
                break
            k = len(out)
            if k % 10 == 9:  # every tenth uplink as a raw frame with headers
                out.append((f"tid.up.raw.{dev}", payload, {"Tid-FPort": str(fport)}))
                continue
            token = "ttn" if fmt.startswith("ttn") else "chirpstack"
            out.append((f"tid.up.{token}.{dev}", env, None))
        if len(out) >= n_frames:
            break
    # Broken uplinks a real network delivers now and then.
    dev = out[0][0].split(".")[-1]
    raw = next(m for m in out if m[2] is not None)  # a raw frame: cut it short
    broken = [
        ("invalid_json", (f"tid.up.ttn.{dev}", b'{"end_device_ids": {"dev_eui": "', None)),
        (
            "invalid_base64",
            (
                f"tid.up.chirpstack.{dev}",
                json.dumps({"deviceInfo": {"devEui": dev}, "fPort": 1, "data": "**"}).encode(),
                None,
            ),
        ),
        ("truncated", (raw[0], raw[1][:1], raw[2])),
        ("oversized", (f"tid.up.raw.{dev}", b"\x00" * 100_000, {"Tid-FPort": "1"})),
    ]
    for i in range(0, len(out), max(1, len(out) // 12)):
        reason, msg = broken[(i // max(1, len(out) // 12)) % len(broken)]
        out.insert(i, msg)
        injected[reason] = injected.get(reason, 0) + 1
    injected["unknown_device"] = sum(1 for s, _, _ in out if s.split(".")[-1] in unknown)
    return out, injected


def _twin_summary(path: Path) -> dict[str, Any]:
    """What the twin snapshot says: statuses, active alerts, the next deadlines."""
    from collections import Counter

    from .twin import read_snapshot

    if not path.exists():
        raise TidstreamError(f"the alerts dataflow wrote no twin snapshot at {path}")
    t = read_snapshot(path).to_pylist()
    due = sorted((e["nextActuationDeadline"], e["containerId"]) for e in t if e["nextActuationDeadline"])
    return {
        "twin_containers": len(t),
        "twin_path": str(path.resolve()),
        "twin_status": dict(Counter(e["status"] for e in t).most_common()),
        "twin_active_alerts": dict(Counter(k for e in t for k in e["activeAlerts"]).most_common()),
        "twin_next_deadlines": [(c, d.strftime("%Y-%m-%d %H:%M")) for d, c in due[:3]],
    }


def run_demo(
    out_dir: Path, devices: int = 300, frames: int = 3000, seed: int = 7, quiet: bool = False
) -> dict[str, Any]:
    """Run the demo; returns the summary (also printed unless ``quiet``)."""
    from .cli import run_flow
    from .flow.export import read_dataset
    from .nats.connect import connect  # noqa: F401  (imported for its error mapping)
    from .nats.publish import publish_uplinks, stream_counts
    from .nats.server import EmbeddedServer
    from .nats.setup import init_jetstream
    from .simulate import Territory, simulate

    t0 = time.monotonic()
    out_dir = Path(out_dir)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    _say(quiet, f"tidstream demo: {devices} devices, {frames} uplinks, output in {out_dir}/")

    territory = Territory.pma(scale=devices / 1445, seed=seed)
    registry = territory.registry
    # Leave 2 % of the devices out of the registry: their uplinks must be dead-lettered.
    n_unknown = max(1, len(registry) // 50)
    unknown = set(registry.column("device_id").to_pylist()[-n_unknown:])
    reg_path = out_dir / "registry.csv"
    pacsv.write_csv(registry.slice(0, len(registry) - n_unknown), reg_path)
    _say(
        quiet,
        f"  registry: {len(registry) - n_unknown} devices ({reg_path}); {n_unknown} left out on purpose",
    )

    twin_path = out_dir / "twin" / "twin.parquet"
    per_step = len(registry)
    days = max(1 / 24, frames / per_step / 24 * 1.3)
    sim = simulate(territory, days=days, start="2026-11-16", interval_h=1.0, seed=seed)
    messages, injected = _messages(sim, frames, unknown)

    with EmbeddedServer(store_dir=out_dir / "nats" / "jetstream") as srv:
        settings = Settings()
        settings.nats.url = srv.url
        settings.streams.partitions = 4
        settings.registry = str(reg_path)
        settings.export_dir = str(out_dir / "readings")

        import asyncio

        async def init() -> dict[str, str]:
            from .nats.connect import connect as _connect

            nc = await _connect(settings.nats)
            try:
                return await init_jetstream(nc.jetstream(), settings)
            finally:
                await nc.close()

        asyncio.run(init())
        _say(quiet, f"  nats-server {srv.url} (JetStream in {srv.store_dir}), streams ready")
        n = publish_uplinks(settings.nats, messages)
        _say(
            quiet,
            f"  published {n} uplinks ({', '.join(f'{v} {k}' for k, v in injected.items())} among them)",
        )

        env = {
            **__import__("os").environ,
            "TIDSTREAM_NATS_URL": srv.url,
            "TIDSTREAM_STREAMS_PARTITIONS": "4",
            "TIDSTREAM_REGISTRY": str(reg_path),
            "TIDSTREAM_EXPORT_DIR": str(out_dir / "readings"),
            "TIDSTREAM_EXPORT_BLOCK_SIZE": "1000",
            "TIDSTREAM_TWIN_SNAPSHOT_PATH": str(twin_path),
        }
        t1 = time.monotonic()
        for flow in ("ingest", "export", "alerts"):
            _say(quiet, f"  running the {flow} dataflow ...")
            rc = run_flow(
                flow, config=None, recovery_dir=out_dir / "recovery" / flow, snapshot_s=2, once=True, env=env
            ).wait()
            if rc != 0:
                raise TidstreamError(f"the {flow} dataflow failed (exit {rc})")
        flows_s = time.monotonic() - t1
        counts = stream_counts(
            settings.nats,
            (settings.streams.raw, settings.streams.readings, settings.streams.dlq),
            settings.subjects,
        )

    table = read_dataset(out_dir / "readings")
    twin = _twin_summary(twin_path)
    summary = {
        "frames_in": counts.raw,
        "readings_out": counts.readings,
        "readings_frames": len(set(table.column("raw_seq").to_pylist())),
        "stored_readings": sum(table.column("stored").to_pylist()),
        "dead_letters": counts.dlq,
        "dead_letters_by_reason": counts.dlq_by_reason,
        "parquet_rows": table.num_rows,
        "parquet_files": len(list((out_dir / "readings").glob("date=*/*.parquet"))),
        "export_path": str((out_dir / "readings").resolve()),
        "registry_path": str(reg_path.resolve()),
        "devices": len(registry),
        "flows_seconds": round(flows_s, 2),
        "elapsed_seconds": round(time.monotonic() - t0, 2),
        **twin,
    }
    if not quiet:
        print(
            "\n"
            f"  uplinks in          {summary['frames_in']:>8}\n"
            f"  readings out        {summary['readings_out']:>8}   from {summary['readings_frames']} uplinks"
            f" ({summary['stored_readings']} stored readings sent late)\n"
            f"  dead letters        {summary['dead_letters']:>8}   "
            + ", ".join(f"{k} {v}" for k, v in summary["dead_letters_by_reason"].items())
            + "\n"
            f"  accounted for       {'yes' if summary['frames_in'] == summary['readings_frames'] + summary['dead_letters'] else 'NO'}"
            f"   (uplinks in = uplinks with readings + dead letters)\n"
            f"  Parquet rows        {summary['parquet_rows']:>8}   in {summary['parquet_files']} files under {summary['export_path']}\n"
            f"  twin                {summary['twin_containers']:>8}   containers in KV tid_twin and {summary['twin_path']}\n"
            f"    status            "
            + ", ".join(f"{k} {v}" for k, v in summary["twin_status"].items())
            + "\n"
            "    active alerts     "
            + (", ".join(f"{k} {v}" for k, v in summary["twin_active_alerts"].items()) or "none")
            + "\n"
            "    empty first       "
            + (
                ", ".join(f"{c} by {d}" for c, d in summary["twin_next_deadlines"])
                or "no container expected to overflow within the forecast horizon"
            )
            + "\n"
            f"  time                {summary['elapsed_seconds']:>8} s  (dataflows {summary['flows_seconds']} s)\n\n"
            "  query it, e.g. with DuckDB:\n"
            f"    select commune, count(*) as readings, avg(fill_ratio) as mean_fill\n"
            f"    from read_parquet('{summary['export_path']}/**/*.parquet', hive_partitioning=true)\n"
            f"    group by 1 order by 2 desc limit 5;\n",
            flush=True,
        )
    return summary
