"""Command line of the simulator: ``tidstream simulate`` and ``tidstream plot``.

Also ``python -m tidstream.simulate ...`` (same options) and
``python -m tidstream.simulate plot ...``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from ..schema import CONTAINER_KINDS

__all__ = ["add_parser", "add_plot_parser", "build_parser", "main", "run", "run_plot"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``simulate`` to an argparse sub-command set; ``func`` is :func:`run`."""
    p = subparsers.add_parser(
        "simulate",
        help="generate a simulated sensor fleet's uplinks and ground truth",
        description=(
            "Simulate the sensors of a territory (default: Pays de Montbéliard Agglomération) and "
            "write their uplinks (Parquet or JSON lines), the device registry and the ground truth "
            "(true fill, collections, overflows). Deterministic from the seeds."
        ),
    )
    _add_sim_args(p)
    p.set_defaults(func=run)
    return p


def _add_sim_args(p: argparse.ArgumentParser) -> None:
    size = p.add_mutually_exclusive_group()
    size.add_argument(
        "--containers",
        type=int,
        default=None,
        metavar="N",
        help="about N containers (scales the territory; default: its real size, 1,444 for PMA)",
    )
    size.add_argument("--scale", type=float, default=None, help="territory scale factor (default 1)")
    p.add_argument("--days", type=float, default=7.0, help="simulated days (default 7)")
    p.add_argument("--seed", type=int, default=0, help="dynamics seed (default 0)")
    p.add_argument(
        "--territory-seed",
        type=int,
        default=None,
        help="placement/sensor seed of the territory (default: --seed)",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument(
        "--nats",
        metavar="URL",
        default=None,
        help="also publish the uplinks to NATS (tid.up.<format>.<device>, JetStream acknowledged); "
        "run `tidstream nats init` first",
    )
    p.add_argument(
        "--rate",
        type=float,
        default=None,
        help="with --nats: uplinks per second (default: as fast as possible)",
    )
    p.add_argument(
        "--format",
        choices=("parquet", "jsonl"),
        default="parquet",
        help="uplink file format (default parquet; jsonl is for small runs)",
    )
    p.add_argument(
        "--start",
        default="2025-01-06",
        metavar="DATE",
        help="first day, YYYY-MM-DD, UTC midnight (default 2025-01-06)",
    )
    p.add_argument(
        "--interval-h",
        type=float,
        default=1.0,
        metavar="H",
        help="hours between periodic measurements (default 1)",
    )
    p.add_argument(
        "--envelopes",
        choices=("mixed", "ttn", "chirpstack", "raw"),
        default="mixed",
        help="mixed: 70%% TTN v3 / 30%% ChirpStack v4 per device (default); raw: payloads only",
    )
    p.add_argument(
        "--places",
        metavar="CSV",
        default=None,
        help="another territory: CSV with name, lat, lon, population (insee optional)",
    )
    p.add_argument("--geojson", metavar="FILE", default=None, help="place polygons for --places")
    p.add_argument("--facilities", metavar="CSV", default=None, help="facilities for --places")
    p.add_argument(
        "--shared",
        metavar="DIR",
        default=None,
        help="the shared/ folder (default $TIDSTREAM_SHARED or ../shared)",
    )
    p.add_argument(
        "--no-truth",
        action="store_true",
        help="skip the per-reading ground truth (collections and overflows are always written)",
    )
    p.add_argument(
        "--faults",
        type=float,
        default=1.0,
        help="multiplier on sensor fault rates (0 = perfect sensors; default 1)",
    )
    p.add_argument("--compression", default="zstd", help="Parquet compression (default zstd)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")


def add_plot_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``plot`` (``fill`` and ``map``) to a sub-command set; ``func`` is :func:`run_plot`."""
    p = subparsers.add_parser(
        "plot",
        help="PNG plots of a simulation run (fill curve, territory map)",
        description="Plots of a `tidstream simulate` output folder, as PNG files (matplotlib).",
    )
    sub = p.add_subparsers(dest="plot_command", required=True, metavar="WHAT")
    fill = sub.add_parser("fill", help="a container's fill curve with collections and the ground truth")
    fill.add_argument("--run", required=True, metavar="DIR", help="the simulate --out folder")
    who = fill.add_mutually_exclusive_group()
    who.add_argument("--device", default=None, help="DevEUI (default: the device with most overflows)")
    who.add_argument("--container", default=None, help="container id")
    fill.add_argument("--days", type=float, default=None, help="only the first N days")
    fill.add_argument(
        "--out", default=None, metavar="PNG", help="output file (default DIR/fill-<device>.png)"
    )
    mp = sub.add_parser("map", help="map of the simulated territory")
    mp.add_argument("--run", required=True, metavar="DIR", help="the simulate --out folder")
    mp.add_argument("--out", default=None, metavar="PNG", help="output file (default DIR/map.png)")
    p.set_defaults(func=run_plot)
    return p


def _territory(args: argparse.Namespace) -> Any:
    from .territory import DENSITY, Territory

    tseed = args.seed if args.territory_seed is None else args.territory_seed
    if args.places:
        if args.containers is not None:
            import csv

            with open(args.places, encoding="utf-8", newline="") as f:
                pop = sum(float(r.get("population") or 0) for r in csv.DictReader(f))
            base = sum(pop / d for d in DENSITY.values())
            scale = args.containers / base if base > 0 else 1.0
        else:
            scale = args.scale or 1.0
        return Territory.from_csv(
            args.places, scale=scale, seed=tseed, geojson=args.geojson, facilities=args.facilities
        )
    if args.containers is not None:
        if args.containers < 1:
            raise ValueError("--containers must be at least 1")
        base = len(Territory.pma(args.shared, scale=1.0, seed=tseed))
        scale = args.containers / base
    else:
        scale = args.scale or 1.0
    return Territory.pma(args.shared, scale=scale, seed=tseed)


class _Progress:
    """A plain-text progress bar on stderr (a line per 10 % when not a terminal)."""

    def __init__(self, stream: TextIO, steps: int, quiet: bool) -> None:
        self.stream = stream
        self.steps = max(steps, 1)
        self.quiet = quiet
        self.tty = stream.isatty()
        self.t0 = time.perf_counter()
        self.last = 0.0
        self.last_decile = -1

    def __call__(self, chunk: Any, stats: Any) -> None:
        if self.quiet:
            return
        now = time.perf_counter()
        frac = min(chunk.step / self.steps, 1.0)
        el = now - self.t0
        rate = stats.frames / el if el > 0 else 0.0
        eta = el / frac - el if frac > 0 else 0.0
        if self.tty:
            if now - self.last < 0.1 and frac < 1.0:
                return
            self.last = now
            width = 30
            fill = int(frac * width)
            bar = "#" * fill + "." * (width - fill)
            self.stream.write(
                f"\r[{bar}] {frac * 100:5.1f}%  {stats.frames:,} frames  {rate / 1e6:.2f} M/s  "
                f"ETA {eta:5.0f} s "
            )
            self.stream.flush()
        else:
            decile = int(frac * 10)
            if decile > self.last_decile:
                self.last_decile = decile
                self.stream.write(
                    f"simulate: {frac * 100:3.0f}%  {stats.frames:,} frames  {rate / 1e6:.2f} M/s\n"
                )
                self.stream.flush()

    def done(self) -> None:
        if not self.quiet and self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _size(p: Path) -> str:
    try:
        n = float(p.stat().st_size)
    except OSError:
        return "?"
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def summary_text(result: Any, territory: Any, sim: Any) -> str:
    """The one-screen summary printed at the end of a run."""
    st = result.stats
    d = st.to_dict()
    counts = territory.counts()
    short = {
        "glass_bank": "glass",
        "paper_bank": "paper",
        "packaging_bank": "packaging",
        "grouping_point": "grouping",
        "park_bin": "park",
    }
    kinds = ", ".join(f"{short[k]} {counts[k]:,}" for k in CONTAINER_KINDS)
    end = sim.start.timestamp() + sim.steps * sim.interval_ms / 1000
    import datetime as dt

    end_s = dt.datetime.fromtimestamp(end, dt.timezone.utc).strftime("%Y-%m-%d %H:%M")
    fmts = " · ".join(f"{k} {v:,}" for k, v in st.frames_by_format.items() if v)
    by_kind = d["mean_fill_at_collection_by_kind"]

    def pct(x: float | None) -> str:
        return "n/a" if x is None or x != x else f"{100 * x:.1f} %"

    files = []
    for name, path in result.files.items():
        if name in ("places", "facilities", "registry_csv", "places_geojson"):
            continue
        files.append(f"{Path(path).name} ({_size(Path(path))})")
    out_dir = Path(next(iter(result.files.values()))).parent if result.files else Path(".")
    lines = [
        f"tidstream simulate: done in {st.elapsed_s:.1f} s",
        f"  territory     {territory.name}, {len(territory):,} containers ({kinds}), scale {territory.scale:g}",
        f"  period        {sim.start:%Y-%m-%d %H:%M} -> {end_s} UTC ({sim.days:g} days, every "
        f"{sim.interval_ms / 3_600_000:g} h), seed {sim.seed}",
        f"  frames        {st.frames:,} uplinks ({fmts}), {d['frames_per_s'] / 1e6 if d['frames_per_s'] else 0:.2f} M frames/s",
    ]
    if st.readings:
        lines.append(
            f"  readings      {st.readings:,} measurements; {st.lost:,} lost in outages, "
            f"{st.stored:,} kept and resent (tid1)"
        )
    lines += [
        f"  collections   {st.collections:,} (+{st.missed_collections:,} missed); mean fill at collection "
        f"{pct(d['mean_fill_at_collection'])} (banks+grouping {pct(d['mean_fill_at_collection_banks_and_grouping'])}, "
        f"park bins {pct(by_kind['park_bin'])})",
        f"  overflows     {st.overflows:,} events; {pct(d['overflow_share'])} of collections came after an overflow",
        f"  output        {out_dir}/",
        "                " + ", ".join(files),
    ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Run ``tidstream simulate`` from parsed arguments; returns the exit code."""
    from .run import Simulation

    try:
        territory = _territory(args)
        sim = Simulation(
            territory,
            days=args.days,
            start=args.start,
            interval_h=args.interval_h,
            seed=args.seed,
            envelopes=args.envelopes,
            truth=not args.no_truth,
            faults=args.faults,
        )
    except (ValueError, FileNotFoundError, TypeError) as e:
        print(f"tidstream simulate: error: {e}", file=sys.stderr)
        return 2
    prog = _Progress(sys.stderr, sim.steps, args.quiet)
    result = sim.write(args.out, format=args.format, compression=args.compression, progress=prog)
    prog.done()
    published = None
    if args.nats:
        published = _publish(sim, args.nats, args.rate, args.quiet)
    if args.json:
        d = result.to_dict()
        if published is not None:
            d["published"] = published
        print(json.dumps(d, default=str))
    else:
        print(summary_text(result, territory, sim))
        if published is not None:
            print(f"  published to NATS  {published} uplinks ({args.nats})")
    return 0


def _publish(sim: Any, url: str, rate: float | None, quiet: bool) -> int:
    """Publish the run's uplinks (regenerated from the seed, in time order) to NATS."""
    from ..config import NatsSettings
    from ..nats.publish import publish_uplinks

    def messages() -> Any:
        for batch in sim.uplinks():
            cols = [batch.column(c).to_pylist() for c in ("device_id", "format", "fport", "payload")]
            env = batch.column("envelope").to_pylist() if "envelope" in batch.schema.names else None
            for i, (dev, fmt, fport, payload) in enumerate(zip(*cols)):
                if fmt == "raw" or env is None:
                    yield f"tid.up.raw.{dev}", payload, {"Tid-FPort": str(fport)}
                else:
                    token = "ttn" if fmt.startswith("ttn") else "chirpstack"
                    yield f"tid.up.{token}.{dev}", env[i], None

    def progress(n: int) -> None:
        if not quiet:
            print(f"\r  published {n} uplinks", end="", file=sys.stderr, flush=True)

    n = publish_uplinks(NatsSettings(url=url), messages(), rate=rate, progress=progress)
    if not quiet:
        print(file=sys.stderr)
    return n


def run_plot(args: argparse.Namespace) -> int:
    """Run ``tidstream plot fill|map`` from parsed arguments; returns the exit code."""
    from . import plot

    run_dir = Path(args.run)
    try:
        if args.plot_command == "map":
            out = Path(args.out) if args.out else run_dir / "map.png"
            path = plot.plot_map(run_dir, out)
        else:
            out_arg = Path(args.out) if args.out else None
            if out_arg is None:
                tag = args.container or args.device or "auto"
                out_arg = run_dir / f"fill-{tag}.png"
            path = plot.plot_fill(
                run_dir, out_arg, device=args.device, container=args.container, days=args.days
            )
    except (ValueError, FileNotFoundError, ImportError) as e:
        print(f"tidstream plot: error: {e}", file=sys.stderr)
        return 2
    print(path)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Parser of ``python -m tidstream.simulate``: simulate options, or ``plot ...``."""
    p = argparse.ArgumentParser(prog="python -m tidstream.simulate")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    add_parser(sub)
    add_plot_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """``python -m tidstream.simulate [simulate] OPTIONS`` or ``... plot fill|map ...``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in ("simulate", "plot", "-h", "--help"):
        argv = ["simulate", *argv]
    args = build_parser().parse_args(argv)
    if not hasattr(args, "func"):
        build_parser().print_help()
        return 2
    return int(args.func(args))
