"""The ``tidstream`` command.

Subcommands: ``nats init|server``, ``run ingest|export|replay``, ``recovery check|reset``,
``chaos``, ``devices validate``,
``demo``, ``simulate``, ``plot``, ``decode``, ``models``, ``config show``, ``backtest``,
``plan``, ``ledger``. Every option is
explained by ``--help``; configuration comes from ``--config FILE`` (TOML) and
``TIDSTREAM_*`` environment variables (docs/CONFIG.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from . import __version__
from .exceptions import TidstreamError

__all__ = ["main"]


def _settings(args: argparse.Namespace) -> Any:
    from .config import load_settings

    s = load_settings(args.config)
    if getattr(args, "nats_url", None):
        s.nats.url = args.nats_url
    return s


def dataflows_dir() -> Path:
    """Folder with the dataflow files: ``$TIDSTREAM_DATAFLOWS`` or the repository's."""
    env = os.environ.get("TIDSTREAM_DATAFLOWS")
    if env:
        return Path(env)
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "dataflows" / "ingest.py").exists():
            return parent / "dataflows"
    raise TidstreamError("dataflows/ not found: set TIDSTREAM_DATAFLOWS to the folder with ingest.py")


# -- nats -------------------------------------------------------------------------------


def cmd_nats_init(args: argparse.Namespace) -> int:
    from .nats.connect import connect
    from .nats.setup import init_jetstream

    s = _settings(args)

    async def go() -> dict[str, str]:
        nc = await connect(s.nats)
        try:
            return await init_jetstream(nc.jetstream(), s)
        finally:
            await nc.close()

    result = asyncio.run(go())
    width = max(len(k) for k in result)
    for name, what in result.items():
        print(f"  {name:<{width}}  {what}")
    return 0


def cmd_nats_server(args: argparse.Namespace) -> int:
    import signal
    import time

    from .nats.server import EmbeddedServer

    srv = EmbeddedServer(
        port=args.port,
        store_dir=Path(args.store_dir) if args.store_dir else None,
        mqtt_port=args.mqtt_port,
    ).start()
    print(f"nats-server running: {srv.url} (JetStream in {srv.store_dir})", flush=True)
    if srv.mqtt_port is not None:
        print(f"MQTT listener: mqtt://127.0.0.1:{srv.mqtt_port}", flush=True)
    stop = False

    def _stop(*_: Any) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    while not stop:
        time.sleep(0.2)
    srv.stop()
    return 0


# -- run --------------------------------------------------------------------------------


def run_flow(
    name: str,
    *,
    config: str | None,
    recovery_dir: Path,
    snapshot_s: int,
    once: bool,
    process_id: int | None = None,
    addresses: str | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start one dataflow process (``python -m bytewax.run``) with recovery on."""
    flow_file = dataflows_dir() / f"{name}.py"
    if not recovery_dir.exists():
        # A new flow: its store is made here, once, with its manifest. An existing folder
        # is never re-initialised: an empty or damaged one is refused at the flow's start
        # (tidstream.recovery.guard), never silently started afresh.
        from .recovery import init_recovery

        # Partitions fixed once: the most processes this flow will ever be scaled to.
        init_recovery(recovery_dir, f"tidstream-{name}", int(os.environ.get("TIDSTREAM_RECOVERY_PARTS", "4")))
    cmd = [
        sys.executable,
        "-m",
        "bytewax.run",
        f"{flow_file}:flow",
        "-r",
        str(recovery_dir),
        "-s",
        str(snapshot_s),
        "-b",
        "0",
    ]
    if process_id is not None and addresses:
        cmd += ["-i", str(process_id), "-a", addresses]
    e = dict(os.environ if env is None else env)
    if config:
        e["TIDSTREAM_CONFIG"] = str(config)
    if once:
        e["TIDSTREAM_STOP_AT_END"] = "1"
    return subprocess.Popen(cmd, env=e)


def cmd_run(args: argparse.Namespace) -> int:
    s = _settings(args)
    rec = Path(args.recovery_dir or s.recovery_dir) / args.flow
    env = dict(os.environ)
    if args.nats_url:
        env["TIDSTREAM_NATS_URL"] = args.nats_url
    if args.flow == "replay":
        from .flow.replay import time_ns

        if not args.out:
            raise TidstreamError("replay needs --out: a fresh folder for the re-decoded export")
        time_ns(args.start), time_ns(args.end)  # validate early
        env.update(
            {
                "TIDSTREAM_REPLAY_FROM": args.start or "",
                "TIDSTREAM_REPLAY_TO": args.end or "",
                "TIDSTREAM_REPLAY_OUT": args.out,
            }
        )
        args.once = True
    proc = run_flow(
        args.flow,
        config=args.config,
        recovery_dir=rec,
        snapshot_s=args.snapshot_interval or s.snapshot_interval_s,
        once=args.once,
        process_id=args.process_id,
        addresses=args.addresses,
        env=env,
    )
    return proc.wait()


# -- recovery -----------------------------------------------------------------------------


def _recovery_path(args: argparse.Namespace) -> Path:
    if args.store:
        return Path(args.store)
    return Path(args.recovery_dir or _settings(args).recovery_dir) / args.flow


def cmd_recovery_check(args: argparse.Namespace) -> int:
    from .recovery import check_recovery

    st = check_recovery(_recovery_path(args), f"tidstream-{args.flow}")
    print(
        json.dumps(
            {
                "path": str(st.path),
                "flow": st.flow,
                "ok": st.ok,
                "parts": st.parts,
                "files": st.files,
                "last_commit_epoch": st.commits,
                "manifest": "missing (a sound store is adopted at the next start)" if st.adoptable else None,
                "problems": st.problems,
            },
            indent=2,
        )
    )
    if not st.ok:
        print(f"tidstream: error: {st.error()}", file=sys.stderr)
    return 0 if st.ok else 1


def cmd_recovery_reset(args: argparse.Namespace) -> int:
    from .recovery import check_recovery, reset_recovery

    path = _recovery_path(args)
    st = check_recovery(path, f"tidstream-{args.flow}")
    if st.ok and not args.force:
        raise TidstreamError(
            f"the recovery store {path} is sound: a reset would restart {args.flow} from the beginning "
            "of its input for no reason (add --force if that is really wanted)"
        )
    positions = None
    if args.flow == "ingest" and not args.from_start:
        from .recovery import ingest_positions

        positions = ingest_positions(_settings(args))
    moved = reset_recovery(path, f"tidstream-{args.flow}", args.parts, positions)
    print(
        json.dumps(
            {
                "flow": args.flow,
                "new_store": str(path),
                "old_store_moved_to": str(moved) if moved else None,
                "start_after": positions,
            }
        )
    )
    return 0


def cmd_chaos(args: argparse.Namespace) -> int:
    from .chaos import run_from_args

    return run_from_args(args)


# -- devices ------------------------------------------------------------------------------


def cmd_devices_validate(args: argparse.Namespace) -> int:
    from .registry import RegistryError, load_registry

    try:
        reg = load_registry(args.file)
    except RegistryError as e:
        print(f"{args.file}: {len(e.problems)} problem(s)", file=sys.stderr)
        for row, why in e.problems[:200]:
            print(f"  row {row}: {why}", file=sys.stderr)
        return 1
    kinds: dict[str, int] = {}
    for k in reg.table.column("container_kind").to_pylist():
        kinds[k] = kinds.get(k, 0) + 1
    print(f"{args.file}: {len(reg)} devices OK ({', '.join(f'{v} {k}' for k, v in sorted(kinds.items()))})")
    return 0


# -- codecs ---------------------------------------------------------------------------------


def cmd_models(args: argparse.Namespace) -> int:
    from .codecs import model_info, models

    for m in models():
        i = model_info(m)
        ports = ",".join(map(str, i["fports"])) or "any"
        print(f"{m:<36} fport {ports:<5} {'encode' if i['can_encode'] else '      '}  {i['description']}")
    return 0


def cmd_decode(args: argparse.Namespace) -> int:
    from .codecs import decode_vendor

    payload = bytes.fromhex(args.hex.replace(" ", ""))
    print(json.dumps(decode_vendor(args.model, payload, args.fport), ensure_ascii=False, indent=2))
    return 0


def cmd_config_show(args: argparse.Namespace) -> int:
    import dataclasses

    s = _settings(args)
    d = dataclasses.asdict(s)
    d["nats"] = s.nats.redacted()
    print(json.dumps(d, indent=2))
    return 0


# -- demo ---------------------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    summary = run_demo(
        out_dir=Path(args.out),
        devices=args.devices,
        frames=args.frames,
        seed=args.seed,
        quiet=args.json,
    )
    if args.json:
        print(json.dumps(summary, indent=None, sort_keys=True))
    return 0 if summary["frames_in"] == summary["readings_frames"] + summary["dead_letters"] else 1


# -- parser -----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tidstream",
        description="Sensor-driven waste collection data backbone: decode LoRaWAN fill-level "
        "sensors, stream readings over NATS JetStream, export Parquet.",
    )
    p.add_argument("--version", action="version", version=f"tidstream {__version__}")
    p.add_argument("--config", help="TOML configuration file (default: $TIDSTREAM_CONFIG)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    nats_p = sub.add_parser("nats", help="NATS set-up")
    nsub = nats_p.add_subparsers(dest="nats_command", required=True, metavar="ACTION")
    init = nsub.add_parser("init", help="create or update the JetStream streams and KV buckets (idempotent)")
    init.add_argument("--nats-url", help="server URL(s), overrides the configuration")
    init.set_defaults(func=cmd_nats_init)
    srv = nsub.add_parser("server", help="run an embedded nats-server with JetStream in the foreground")
    srv.add_argument("--port", type=int, default=4222, help="client port (0 = a free one; default 4222)")
    srv.add_argument("--store-dir", help="JetStream data folder (default: a temporary folder)")
    srv.add_argument("--mqtt-port", type=int, default=None, help="also listen for MQTT on this port")
    srv.set_defaults(func=cmd_nats_server)

    run = sub.add_parser(
        "run", help="run a dataflow (one process; see --process-id/--addresses to scale out)"
    )
    run.add_argument("flow", choices=["ingest", "export", "alerts", "replay"], help="which dataflow")
    run.add_argument("--once", action="store_true", help="stop when the input stream is drained (batch run)")
    run.add_argument("--nats-url", help="server URL(s), overrides the configuration")
    run.add_argument("--recovery-dir", help="Bytewax recovery folder (default: [recovery_dir]/<flow>)")
    run.add_argument("--snapshot-interval", type=int, help="seconds between recovery snapshots")
    run.add_argument("-i", "--process-id", type=int, help="this process's index in the cluster")
    run.add_argument("-a", "--addresses", help='all processes, "host0:port;host1:port;..."')
    run.add_argument("--from", dest="start", help="replay: first raw-stream time (ISO 8601, UTC)")
    run.add_argument("--to", dest="end", help="replay: last raw-stream time (ISO 8601, UTC)")
    run.add_argument("--out", help="replay: output folder of the fresh export")
    run.set_defaults(func=cmd_run)

    rec = sub.add_parser("recovery", help="check or reset a dataflow's recovery store")
    rsub = rec.add_subparsers(dest="recovery_command", required=True, metavar="ACTION")
    for action, text in (
        ("check", "check the store (manifest, every partition); exit 1 with the problems"),
        ("reset", "move a damaged store aside and create a fresh one (docs/OPERATIONS.md)"),
    ):
        a = rsub.add_parser(action, help=text)
        a.add_argument("flow", choices=["ingest", "export", "alerts", "replay"], help="which dataflow")
        a.add_argument("--recovery-dir", help="parent folder of the stores (default: [recovery_dir])")
        a.add_argument("--store", help="the store folder itself (instead of <recovery-dir>/<flow>)")
        if action == "reset":
            a.add_argument("--parts", type=int, help="partitions of the new store (default: as the old)")
            a.add_argument("--force", action="store_true", help="reset even a sound store")
            a.add_argument(
                "--from-start",
                action="store_true",
                help="ingest: read the raw stream from its start (default: after the last uplink "
                "that has its reading, rebuilt from the readings stream; needs NATS)",
            )
            a.add_argument("--nats-url", help="server URL(s), overrides the configuration")
            a.set_defaults(func=cmd_recovery_reset)
        else:
            a.set_defaults(func=cmd_recovery_check)

    chaos = sub.add_parser("chaos", help="kill the dataflows at random over one run; check nothing is lost")
    from .chaos import add_arguments as chaos_arguments

    chaos_arguments(chaos)
    chaos.set_defaults(func=cmd_chaos)

    dev = sub.add_parser("devices", help="device registry tools")
    dsub = dev.add_subparsers(dest="devices_command", required=True, metavar="ACTION")
    val = dsub.add_parser("validate", help="check a registry file (CSV or Parquet); lists every problem")
    val.add_argument("file")
    val.set_defaults(func=cmd_devices_validate)

    sub.add_parser("models", help="list the supported sensor models").set_defaults(func=cmd_models)
    dec = sub.add_parser("decode", help="decode one frame like the vendor's decoder (JSON)")
    dec.add_argument("model")
    dec.add_argument("hex", help="payload as hex")
    dec.add_argument("--fport", type=int, default=None)
    dec.set_defaults(func=cmd_decode)

    cfg = sub.add_parser("config", help="configuration")
    csub = cfg.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    csub.add_parser("show", help="print the effective configuration (secrets masked)").set_defaults(
        func=cmd_config_show
    )

    demo = sub.add_parser("demo", help="end-to-end demo on an embedded NATS server")
    demo.add_argument("--out", default="out/demo", help="output folder (default out/demo)")
    demo.add_argument("--devices", type=int, default=300, help="simulated devices (default 300)")
    demo.add_argument("--frames", type=int, default=3000, help="uplinks to publish (default 3000)")
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    demo.set_defaults(func=cmd_demo)

    # sub-commands that live with their feature (imported here, not at start-up of the module)
    from . import backtest
    from .plan import cli as plan_cli
    from .simulate import cli as sim_cli

    sim_cli.add_parser(sub)
    sim_cli.add_plot_parser(sub)
    backtest.add_parser(sub)
    plan_cli.add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``tidstream`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except TidstreamError as e:
        print(f"tidstream: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
