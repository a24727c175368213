#!/usr/bin/env python3
"""Benchmarks for real (what ``make bench`` runs): prints a table, rewrites RESULTS.md.

Builds nothing (the Makefile's ``install`` target already made the release build) and
changes no environment variable (see the OPENBLAS_CORETYPE note in RESULTS.md).

Every implementation runs on the same N frames in this process, on one thread, and the
best of several repeats (``time.perf_counter``, garbage collector off during the timed
call, as ``timeit`` does) is reported. Each baseline's output is checked against
tidstream's on the same input, and tidstream's against the workload's ground truth,
before a figure is accepted.

Benchmark families: each is a function in ``FAMILIES`` returning a :class:`Section`
(heading, tables, goals); RESULTS.md gets one ``##`` section per family, regenerated on
every run. To add a family, write ``family_<name>(args) -> Section`` and register it.

Usage: ``.venv/bin/python benches/run.py [--n 2000000] [--envelopes 200000]
[--repeats 7] [--py-repeats 3] [--e2e-uplinks 100000] [--e2e-long-factor 4]
[--forecast-containers 100000] [--forecast-days 7] [--forecast-backtest-days 90]
[--only e2e [--merge]] [--no-write]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
# numba's on-disk cache of a kernel compiled under pytest (module `benches.bench_forecast`)
# refers to the `benches` package: keep it importable so that the cache loads here too
sys.path.append(str(HERE.parent))

import baselines as B  # noqa: E402
import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import route_baselines as RB  # noqa: E402
import tidstream  # noqa: E402

RESULTS = HERE / "RESULTS.md"

# --------------------------------------------------------------------------------------
# Measurement
# --------------------------------------------------------------------------------------


@dataclass
class Row:
    """One implementation's figure on one workload."""

    impl: str
    input: str
    n: int
    best_s: float | None = None  # None: not measured (see note)
    median_s: float | None = None
    note: str = ""
    ours: bool = False  # a tidstream row (ratios are tidstream / baseline)

    @property
    def rate(self) -> float | None:
        return None if self.best_s is None else self.n / self.best_s


@dataclass
class Goal:
    text: str
    measured: str
    met: bool | None  # None: could not be measured


@dataclass
class Section:
    key: str
    title: str
    intro: list[str] = field(default_factory=list)
    tables: list[tuple[str, list[Row], Row | None]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    goals: list[Goal] = field(default_factory=list)
    unit: str = "frames"  # what one item of the workload is, for the table headers
    table_units: dict[str, str] = field(default_factory=dict)  # caption -> unit, where it differs


@dataclass
class Impl:
    """An implementation to time: ``fn()`` runs it once on the family's workload."""

    impl: str
    input: str
    fn: Callable[[], Any]
    repeats: int
    ours: bool = False


def measure(impls: list[Impl], n: int) -> tuple[list[Row], list[Any]]:
    """Time every implementation, interleaved round-robin so that the process's state
    (allocator, caches, page cache of freed buffers) affects all of them alike.

    Each call is timed alone with ``time.perf_counter``, the garbage collector disabled
    (as ``timeit`` does) and that implementation's previous output freed first. Returns
    one Row per implementation (best and median time) and each one's last output.
    """
    times: list[list[float]] = [[] for _ in impls]
    results: list[Any] = [None] * len(impls)
    for rnd in range(max(i.repeats for i in impls)):
        for k, im in enumerate(impls):
            if rnd >= im.repeats:
                continue
            results[k] = None
            gc.collect()
            gc.disable()
            try:
                t0 = time.perf_counter()
                out = im.fn()
                t1 = time.perf_counter()
            finally:
                gc.enable()
            results[k] = out
            out = None
            times[k].append(t1 - t0)
    rows = []
    for im, ts in zip(impls, times, strict=True):
        row = Row(im.impl, im.input, n, min(ts), statistics.median(ts), ours=im.ours)
        print(
            f"  {im.impl + ' (' + im.input + ')':62s} {fmt_rate(row.rate):>10s}/s  "
            f"(best {row.best_s:.4f} s, median {row.median_s:.4f} s, {len(ts)} runs)"
        )
        rows.append(row)
    return rows, results


def fmt_rate(r: float | None) -> str:
    if r is None:
        return "n/a"
    if r >= 1e6:
        return f"{r / 1e6:.2f} M"
    if r >= 1e3:
        return f"{r / 1e3:.1f} k"
    return f"{r:.0f}"


def fmt_ratio(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}x"


def ratio(a: Row | None, b: Row | None) -> float | None:
    if a is None or b is None or a.rate is None or b.rate is None:
        return None
    return a.rate / b.rate


# --------------------------------------------------------------------------------------
# Family: codecs (decode_batch)
# --------------------------------------------------------------------------------------


def family_codecs(args: argparse.Namespace) -> Section:
    n = args.n
    sec = Section(
        "codecs",
        "Codecs: `decode_batch` vs numba and pure Python",
        intro=[
            f"{n:,} frames per codec, made by `tidstream.encode_batch` (seeded random, "
            "realistic ranges; LDDS75 has ~1% No-Sensor/Invalid distances, tid1 ~2% "
            "absent distance/temperature/battery, no stored readings). All frames decode.",
            "- **tidstream decode_batch(BinaryArray)**: the Arrow array read in place; the "
            "time includes building the full 16-column `RecordBatch` (READING_SCHEMA).",
            "- **tidstream decode_batch(list[bytes])**: includes `pa.array(list)`.",
            "- **Rust decode only**: `tidstream._core.decode_batch_buffers` (private, "
            "diagnostic): decode into column buffers, no Arrow assembly.",
            "- **numba**: `@njit` loop over the same Arrow buffers (uint8 data + offsets) "
            "writing 4-5 numpy columns; compiled before timing.",
            "- **pure Python**: `struct` (tid1: `binascii.crc_hqx` for the CRC) over "
            "`list[bytes]`, producing column lists.",
            "- Baselines produce only the columns they are checked on (ok, distance, "
            "battery, tilt/temperature); tidstream also fills alarm_flags, error columns, "
            "timestamps, ... so the comparison favours the baselines.",
        ],
    )
    split: list[tuple[str, float | None, float | None, float | None, float | None]] = []
    for seed, model in enumerate(B.CODECS):
        print(f"\n{model}: {n:,} frames")
        arr, truth = B.make_workload(model, n, seed)
        frames = arr.to_pylist()
        B.warm_up_numba(arr)
        impls = [
            Impl("tidstream decode_batch", "BinaryArray",
                 partial(tidstream.decode_batch, model, arr), args.repeats, ours=True),
            Impl("tidstream decode_batch", "list[bytes]",
                 partial(tidstream.decode_batch, model, frames), args.repeats, ours=True),
        ]  # fmt: skip
        core = _core_only(model, arr)
        if core is not None:
            impls.append(
                Impl("of which Rust decode only (no Arrow assembly)", "Arrow buffers", core,
                     args.repeats, ours=True)
            )  # fmt: skip
        impls += [
            Impl("numba @njit", "Arrow buffers", partial(B.NB_DECODERS[model], arr),
                 args.repeats),
            Impl("pure Python struct", "list[bytes]", partial(B.PY_DECODERS[model], frames),
                 args.py_repeats),
        ]  # fmt: skip
        rows, outs = measure(impls, n)
        ts_row, nb_row = rows[0], rows[-2]
        ts = outs[0]
        B.check_expected(model, ts, truth)
        B.check_expected(model, outs[1], truth)
        for out in outs[-2:]:
            B.check_decoded(model, out, ts)
            B.check_expected(model, out, truth)
        print("  outputs checked: tidstream == ground truth, baselines == tidstream")
        sec.tables.append((f"`{model}`", rows, ts_row))
        by = {(r.impl, r.input): r for r in rows}
        core_row = by.get(("of which Rust decode only (no Arrow assembly)", "Arrow buffers"))
        list_row = by[("tidstream decode_batch", "list[bytes]")]
        per = lambda r: None if r is None or r.best_s is None else r.best_s / r.n * 1e9  # noqa: E731
        split.append((model, per(ts_row), per(core_row), per(list_row), per(nb_row)))
        r = ratio(ts_row, nb_row)
        sec.goals.append(
            Goal(
                f"`decode_batch` from a BinaryArray (output columns included) no slower "
                f"than the numba baseline: `{model}`",
                f"{fmt_rate(ts_row.rate)} vs {fmt_rate(nb_row.rate)} frames/s "
                f"(tidstream/numba = {fmt_ratio(r)})",
                None if r is None else r >= 1.0,
            )
        )
        ts = outs = frames = None
        gc.collect()

    def ns(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.1f}"

    sec.notes += [
        "### Where tidstream's time goes (ns per frame, best runs)",
        "",
        "| codec | decode_batch(BinaryArray) | Rust decode only | Arrow assembly + wrapper "
        "| extra for list[bytes] input | numba |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for model, full, core, lst, nb in split:
        asm = None if full is None or core is None else full - core
        extra = None if full is None or lst is None else lst - full
        sec.notes.append(f"| `{model}` | {ns(full)} | {ns(core)} | {ns(asm)} | {ns(extra)} | {ns(nb)} |")
    sec.notes += [
        "",
        "Rust decode only = `_core.decode_batch_buffers` (columnar decode into column "
        "buffers, GIL released; rows off the batch's shape through the per-frame "
        "decoder); the assembly column is the difference to the full call "
        "(`pa.Array.from_buffers` per column, one shared zero buffer for every all-null "
        "column, `RecordBatch.from_arrays`). Figures of separately timed calls: small "
        "differences (even negative ones) are noise.",
    ]
    return sec


def _core_only(model: str, arr: pa.Array) -> Callable[[], Any] | None:
    """The Rust decode without Arrow assembly (private API: skipped if it changed)."""
    try:
        from tidstream import _core
        from tidstream.codecs import _buffers

        data, offsets, valid, voff = _buffers(arr)

        def call() -> Any:
            return _core.decode_batch_buffers(model, data, offsets, valid, voff)

        call()
        return call
    except Exception as e:  # a diagnostic only
        print(f"  (Rust-only diagnostic unavailable: {e!r})")
        return None


# --------------------------------------------------------------------------------------
# Family: envelopes (decode_uplinks)
# --------------------------------------------------------------------------------------


def family_envelopes(args: argparse.Namespace) -> Section:
    n = args.envelopes
    sec = Section(
        "envelopes",
        # Title kept as it was so that `--only envelopes --merge` replaces the old section.
        'Envelopes: `decode_uplinks("ttn-v3")` vs orjson',
        unit="messages",
        intro=[
            f"{n:,} TTN v3 uplink messages: the documented example "
            "(`shared/sensors/ENVELOPES.md`) with a real EM310-UDL frame in base64 "
            "`frm_payload`, `f_port` 85, distinct `dev_eui` / `f_cnt`, 1-3 gateways, "
            "nanosecond `received_at`; compact JSON. The same number of ChirpStack v4 `up` "
            "events built the same way (documented example plus the fields a v4 server "
            "sends: `deviceClassEnabled`, `adr`, `fCnt`, per-gateway `gwTime`, `nsTime`, "
            "`location`, `crcStatus`).",
            "- **orjson baseline**: per message `orjson.loads`, field extraction in Python "
            "(dev_eui lowercased, fport, fcnt, best RSSI/SNR, gateway count), "
            "`base64.b64decode(frm_payload)`; `received_at` parsed to datetime64[ns] by one "
            "vectorised numpy call. Output: Python lists (no Arrow assembly).",
            "- **tidstream decode_uplinks(list[bytes])**: the core reads the list's bytes "
            "objects in place (no Arrow array built first).",
            "- **pipeline** rows: envelope parse + EM310 decode of the payloads, end to end.",
        ],
    )
    print(f"\nenvelopes: {n:,} TTN v3 and {n:,} ChirpStack v4 messages")
    messages = B.make_ttn_messages(n, seed=7)
    arr = pa.array(messages, type=pa.binary())
    cs_messages = B.make_chirpstack_messages(n, seed=7)
    cs_arr = pa.array(cs_messages, type=pa.binary())
    size = sum(len(m) for m in messages)
    cs_size = sum(len(m) for m in cs_messages)
    sec.intro.insert(
        1,
        f"Mean message size {size / n:.0f} bytes TTN ({size / 1e6:.0f} MB in all), "
        f"{cs_size / n:.0f} bytes ChirpStack ({cs_size / 1e6:.0f} MB).",
    )

    available = True
    reason = ""
    try:
        tidstream.decode_uplinks("ttn-v3", messages[:2])
    except NotImplementedError as e:
        available = False
        reason = "tidstream.decode_uplinks raises NotImplementedError"
        if str(e):
            reason += f" ({e})"
        print(f"  {reason}: tidstream rows not measured")

    def pipeline() -> pa.RecordBatch:
        up = tidstream.decode_uplinks("ttn-v3", arr)
        return tidstream.decode_batch(B.EM310, up.column("payload"), up.column("fport"))

    def py_pipeline() -> dict[str, list[Any]]:
        return B.py_decode_em310(B.py_parse_ttn(messages)["payload"])

    formats = (
        ("TTN v3", "ttn-v3", messages, arr, B.py_parse_ttn),
        ("ChirpStack v4", "chirpstack-v4", cs_messages, cs_arr, B.py_parse_chirpstack),
    )
    impls = []
    for label, fmt, msgs, batch, py_parse in formats:
        if available:
            impls += [
                Impl(f"tidstream decode_uplinks ({label})", "list[bytes]",
                     partial(tidstream.decode_uplinks, fmt, msgs), args.repeats, ours=True),
                Impl(f"tidstream decode_uplinks ({label})", "BinaryArray",
                     partial(tidstream.decode_uplinks, fmt, batch), args.repeats, ours=True),
            ]  # fmt: skip
        impls.append(
            Impl(f"orjson + Python + base64 ({label})", "list[bytes]", partial(py_parse, msgs),
                 args.py_repeats)
        )  # fmt: skip
    if available:
        impls.append(
            Impl("tidstream decode_uplinks + decode_batch", "BinaryArray", pipeline,
                 args.repeats, ours=True)
        )  # fmt: skip
    impls.append(Impl("orjson + Python + struct", "list[bytes]", py_pipeline, args.py_repeats))
    rows, outs = measure(impls, n)
    res = dict(zip(((r.impl, r.input) for r in rows), zip(rows, outs, strict=True), strict=True))

    pyp_row, pyout = res["orjson + Python + struct", "list[bytes]"]
    py_ttn = res["orjson + Python + base64 (TTN v3)", "list[bytes]"][1]
    assert py_ttn["fcnt"] == list(range(1, n + 1)) and set(py_ttn["fport"]) == {85}
    B.check_decoded(B.EM310, pyout, tidstream.decode_batch(B.EM310, py_ttn["payload"]))
    ts_pipe = None
    if available:
        ts_pipe, pipe_out = res["tidstream decode_uplinks + decode_batch", "BinaryArray"]
        B.check_decoded(B.EM310, pyout, pipe_out)
    for label, _, _, _, _ in formats:
        py_row, py = res[f"orjson + Python + base64 ({label})", "list[bytes]"]
        assert py["fcnt"] == list(range(1, n + 1)) and set(py["fport"]) == {85}
        if not available:
            rows_f = [
                Row(f"tidstream decode_uplinks ({label})", "list[bytes]", n, note=reason, ours=True),
                py_row,
            ]
            sec.tables.append((f"{label} envelopes", rows_f, None))
            for goal in ("at least 1 million messages/s", "at least 5x the orjson path"):
                sec.goals.append(Goal(f"envelopes ({label}): {goal}", f"not measured: {reason}", None))
            continue
        ts_list, ts = res[f"tidstream decode_uplinks ({label})", "list[bytes]"]
        ts_arr, ts2 = res[f"tidstream decode_uplinks ({label})", "BinaryArray"]
        B.check_uplinks(py, ts)
        B.check_uplinks(py, ts2)
        sec.tables.append((f"{label} envelopes", [ts_list, ts_arr, py_row], ts_list))
        r_list, r_arr = ratio(ts_list, py_row), ratio(ts_arr, py_row)
        worst = min(ts_list.rate or 0, ts_arr.rate or 0)
        sec.goals.append(
            Goal(
                f"envelopes ({label}): at least 1 million messages/s",
                f"{fmt_rate(ts_list.rate)}/s from list[bytes], {fmt_rate(ts_arr.rate)}/s from a BinaryArray",
                worst >= 1e6,
            )
        )
        sec.goals.append(
            Goal(
                f"envelopes ({label}): at least 5x the orjson path",
                f"{fmt_ratio(r_list)} (list[bytes]), {fmt_ratio(r_arr)} (BinaryArray); "
                f"orjson path {fmt_rate(py_row.rate)}/s",
                min(r_list or 0, r_arr or 0) >= 5.0,
            )
        )
    if available:
        print(
            "  outputs checked: decode_uplinks (both formats, both inputs) == orjson baselines; pipelines agree"
        )
    res = outs = py = pyout = py_ttn = None
    sec.tables.append(("Envelope + EM310 decode (pipeline)", [r for r in (ts_pipe, pyp_row) if r], ts_pipe))
    sec.notes.append(
        "Envelope goals are judged on both inputs (list[bytes] and BinaryArray); both must meet them."
    )
    return sec


# --------------------------------------------------------------------------------------
# Family: end to end (fleet -> NATS -> ingest -> readings -> export -> Parquet)
# --------------------------------------------------------------------------------------

#: "Memory flat over a long run": the steady-state last-quartile mean RSS within this
#: fraction of the first-quartile mean (either way).
E2E_FLAT_TOLERANCE = 0.05


def family_e2e(args: argparse.Namespace) -> Section:
    import e2e

    cfg = e2e.E2EConfig.from_env(
        uplinks=args.e2e_uplinks, long_factor=args.e2e_long_factor, repeats=args.e2e_repeats
    )
    return e2e_section(e2e.run_e2e(cfg))


def e2e_section(r: Any) -> Section:
    """The RESULTS.md section of an :class:`e2e.E2EResult` (raises if its accounting failed)."""
    import e2e

    cfg = r.config
    for label, acc in (("main run", r.main.accounting), ("long run", r.long and r.long.accounting)):
        if acc is not None and not acc.exact:
            raise RuntimeError(f"e2e {label}: accounting failed: {'; '.join(acc.problems)}")
    s = r.settings
    f = r.main.fleet
    acc = r.main.accounting
    parts = s.streams.partitions
    sec = Section(
        "e2e",
        "End to end: simulated fleet → NATS JetStream → ingest → readings → export → Parquet",
        unit="messages",
        intro=[
            f"A simulated PMA fleet (`tidstream.simulate`, {f.devices:,} sensors, "
            f"{f.devices - f.registered} of them left out of the registry so that their uplinks "
            f"end as `unknown_device` dead letters; 15-min uplinks over {f.days:.2f} simulated "
            f"days): {f.uplinks:,} uplinks, envelopes mixed "
            + ", ".join(f"{k} {v:,}" for k, v in sorted(f.formats.items()))
            + f", mean {f.bytes_total / f.uplinks:.0f} bytes, published with `publish_uplinks` "
            f"to an embedded nats-server ({r.main.publish_s:.1f} s, "
            f"{f.uplinks / r.main.publish_s:,.0f} msg/s). Every flow is a real process "
            "(`python -m bytewax.run dataflows/<flow>.py:flow`, one worker, fresh recovery "
            f"folder, snapshot every {s.snapshot_interval_s} s, `TIDSTREAM_STOP_AT_END=1`) with "
            f"the configuration defaults: {parts} raw partitions, batch size {s.batch_size}, "
            f"export block {s.export_block_size:,}. "
            + (
                f"Benchmark process, flow process and nats-server share the machine's {os.cpu_count()} cores."
                if cfg.client_cpus is None and cfg.server_cpus is None
                else f"CPUs (of {os.cpu_count()}): benchmark and flow processes "
                f"{sorted(cfg.client_cpus) if cfg.client_cpus else 'all'}, nats-server "
                f"{sorted(cfg.server_cpus) if cfg.server_cpus else 'all'}."
            ),
            "- **raw consume ceiling**: nats-py alone reads the whole raw stream and drops "
            "each message (consumer filter `>`: nats-server charges a wildcard filter such as "
            "`tid.raw.>` ~3x the CPU per message, docs/NATSIO.md; the flow's shared reader reads "
            "unfiltered too), the two fastest ways nats-py allows, each on one connection: an "
            "ordered push consumer with a callback (what `JetStreamSource` uses; its pending "
            f"limits), best of {len(r.ceiling_push_s)}; and a pull consumer (no acks) driven by "
            "hand: `$JS.API.CONSUMER.MSG.NEXT` requests for 1,000 messages, two in flight, "
            "answered on one inbox subscription with a callback (no per-message task or "
            f"future), best of {len(r.ceiling_pull_s)}. **The ceiling is the faster of the "
            f"two** (this run: {r.ceiling_kind}, {r.ceiling_rate:,.0f} msg/s). A pull consumer "
            f"read with nats-py's `fetch(1000)`, best of {len(r.ceiling_fetch_s)}, is shown "
            "for reference only (a per-message task and timeout make it the slowest).",
            "- **ingest flow**: from process start to the first poll (every ~20 ms) at which "
            "the readings and dead-letter streams hold their final counts; *excluding "
            "start-up* subtracts the same flow's start-to-exit time on an empty stream "
            f"(best of {len(r.ingest_startup)}: {r.ingest_startup_s:.2f} s). That start-up "
            "includes the flow's end on an empty stream, which the timed run's completion does "
            "not, so it is not the goals' figure: **steady** is the rate while the outputs go "
            "from 10 % to 90 % of their final count (the polls' message counts), the flow at "
            "work without its start and its end (flattered when outputs reach the streams in "
            "bursts, as with the nats-py sink); the goals take the **lower** of the two for each "
            "run; the ceiling's time includes its consumer's own short start. The main run is "
            f"repeated like the ceilings (best of {len(r.main_runs)}, output streams emptied between "
            "repeats, every repeat's accounting checked): one flow run is one sample, and runs of "
            "the same flow on the same stream spread by about ±10 % on this machine (this run: "
            + ", ".join(f"{x:,.0f}" for x in r.main_goal_rates)
            + " frames/s).",
            "- **export flow**: process start to exit (the last Parquet file is written at "
            f"close); excluding start-up as above ({r.export_startup_s:.2f} s on an empty stream).",
            f"- Checked before any figure is kept: {acc.frames_in:,} uplinks in = "
            f"{acc.frames_with_readings:,} with readings + {acc.dead_letters:,} dead letters "
            f"({', '.join(f'{k} {v:,}' for k, v in acc.dead_by_reason.items())}), by raw "
            f"sequence, disjoint; {acc.readings:,} readings ({acc.stored_readings} stored "
            f"readings sent late); Parquet rows = readings stream, {acc.parquet_rows:,}.",
        ],
    )
    n = r.n
    push = Row(
        "nats-py ordered push consumer + callback, messages dropped",
        "raw stream, 1 connection",
        n,
        min(r.ceiling_push_s),
        statistics.median(r.ceiling_push_s),
    )
    pull = Row(
        "nats-py raw pull requests + inbox callback, messages dropped",
        "raw stream, 1 connection",
        n,
        min(r.ceiling_pull_s),
        statistics.median(r.ceiling_pull_s),
    )
    fetch = Row(
        "nats-py pull consumer, `fetch(1000)`, messages dropped",
        "raw stream, 1 connection",
        n,
        min(r.ceiling_fetch_s),
        statistics.median(r.ceiling_fetch_s),
    )
    rust_c = Row(
        "Rust consumer (tidstream._core, ordered pull consumer on async-nats) -> Python batches, dropped",
        "raw stream, 1 connection",
        n,
        min(r.ceiling_rust_s),
        statistics.median(r.ceiling_rust_s),
    )
    ing_total = Row(
        "ingest flow, 1 process: start to all accounted for",
        "raw → readings + DLQ",
        n,
        r.ingest_total_s,
        r.ingest_total_s,
        ours=True,
    )
    ing_net = Row(
        f"ingest flow, 1 process, excluding start-up ({r.ingest_startup_s:.2f} s)",
        "raw → readings + DLQ",
        n,
        r.ingest_net_s,
        r.ingest_net_s,
        ours=True,
    )
    exp_total = Row(
        "export flow, 1 process: start to exit (readings)",
        "readings → Parquet",
        r.export_rows,
        r.export.exit_s,
        r.export.exit_s,
        ours=True,
    )
    exp_net = Row(
        f"export flow, excluding start-up ({r.export_startup_s:.2f} s) (readings)",
        "readings → Parquet",
        r.export_rows,
        r.export_net_s,
        r.export_net_s,
        ours=True,
    )
    floor_rows = [
        Row(e2e.FLOOR_LABELS[ids], "raw → readings", n, min(f.seconds), statistics.median(f.seconds))
        for ids, f in ((True, r.floor_ids), (False, r.floor_no_ids))
        if f is not None
    ]
    rows = [push, pull, fetch, rust_c, *floor_rows, ing_total, ing_net, exp_total, exp_net]
    if r.long is not None:
        ln = r.long.frames
        rows.insert(rows.index(ing_net) + 1, Row(f"ingest flow, long run (fleet x{cfg.long_factor}): start to all accounted for",
                           "raw → readings + DLQ", ln, r.long.run.complete_s, r.long.run.complete_s,
                           ours=True))  # fmt: skip
    sec.tables.append(
        (
            "Throughput (ceilings: best and median of their repeats; ingest: the best main run; "
            "export, long run: one run each)",
            rows,
            ing_net,
        )
    )

    if r.floor_ids is not None and r.floor_no_ids is not None:
        fi, fn = r.floor_ids, r.floor_no_ids
        fi_rate, fn_rate = n / min(fi.seconds), n / min(fn.seconds)
        (fi_c, fi_s), (fn_c, fn_s) = fi.us_per_msg(n), fn.us_per_msg(n)

        sec.notes += [
            "",
            "### The I/O floor: the ingest's reads and writes with no work between them",
            "",
            "The flow's own I/O with nothing between (`e2e.io_floor`, best of "
            f"{len(fi.seconds)}, output streams emptied before each repeat, every reading counted "
            "in the stream): the raw stream read as the flow reads it (the Rust shared reader) "
            "and, per frame, one fixed reading (a real one of the main run, "
            f"{r.floor_payload_bytes} bytes) published on `tid.readings.floor.<device>` by the "
            "Rust publisher in fast-ingest batches from a second thread, each batch confirmed; "
            "no envelope parse, no decode, no registry, no Bytewax, no Python per message (the "
            "readings are built before the clock starts; each consumed batch picks its rows in "
            "one Rust call). What cutting the flow's own work can win on this machine is the "
            "gap between the two.",
            "",
            "| | frames/s (best) | % of the ceiling | client µs/frame | nats-server µs/frame |",
            "| --- | ---: | ---: | ---: | ---: |",
            f"| I/O floor, `Nats-Msg-Id` on every reading (the flow's effectively-once design) | "
            f"{fi_rate:,.0f} | {fi_rate / r.ceiling_rate:.1%} | {fi_c:.1f} | {fi_s:.1f} |",
            f"| I/O floor without `Nats-Msg-Id` (no dedupe: a replay would store twice) | "
            f"{fn_rate:,.0f} | {fn_rate / r.ceiling_rate:.1%} | {fn_c:.1f} | {fn_s:.1f} |",
            f"| ingest flow (the goals' figure, best main run) | {r.ingest_goal_rate:,.0f} | "
            f"{r.ratio_to_ceiling:.1%} | | |",
            "",
            f"The ingest flow ran at {r.ingest_goal_rate / fi_rate:.0%} of the floor's rate with "
            "the same guarantees (runs of either spread by about ±15 % here). The ceiling costs "
            "nats-server only the delivery of each message; the ingest also has it store a "
            "reading per frame and check its `Nats-Msg-Id` against the duplicate window, which "
            "the effectively-once design requires. With the server and the flow on the same "
            "cores, the floor's share of the ceiling bounds the ratio any decoder could reach "
            '(docs/NATSIO.md, "The I/O floor").',
        ]

    if any(r.path_runs.values()):
        path_rows = []
        for dp, runs in r.path_runs.items():
            net = r.path_net_s(dp)
            path_rows.append(
                Row(
                    f'ingest flow, `data_path = "{dp}"`, excluding start-up ({r.path_startup_s(dp):.2f} s), '
                    f"best and median of {len(runs)}",
                    "raw → readings + DLQ",
                    n,
                    min(net),
                    statistics.median(net),
                    ours=True,
                )
            )
        sec.tables.append(
            (
                "Data paths (`[nats] data_path`): the ingest flow on nats-py and on the Rust client, "
                "alternated on the same raw stream (output streams emptied before each run)",
                [push, *path_rows],
                None,
            )
        )
        sec.notes += [
            "",
            "### Data paths: nats-py vs Rust JetStream I/O in the ingest flow",
            "",
            'The same ingest flow with `[nats] data_path = "python"` (nats-py source and sink) '
            'and `"rust"` (async-nats in `tidstream._core`: ordered pull consumer, publisher '
            "awaiting every PubAck; docs/NATSIO.md), in rounds (python then rust), each run's "
            "accounting exact. Start-up of each path measured on the empty stream. Flow CPU = "
            "user + system time of the flow process (`getrusage` of the reaped child) less its "
            "start-up run's CPU, per frame; nats-server CPU from `/proc/<pid>/stat`.",
            "",
            "| data path | frames/s steady (best) | % of ceiling | frames/s excluding start-up (best) | "
            "flow CPU µs/frame (each run) | nats-server µs/frame (each run) |",
            "| --- | ---: | ---: | ---: | --- | --- |",
        ]
        for dp in r.path_runs:
            sec.notes.append(
                f"| {dp} | {r.path_steady_rate(dp):,.0f} | {r.path_steady_rate(dp) / r.ceiling_rate:.1%} | "
                f"{r.path_rate(dp):,.0f} | "
                + ", ".join(f"{x:.1f}" for x in r.path_cpu_us(dp))
                + " | "
                + ", ".join(f"{x:.1f}" for x in r.path_server_us(dp))
                + " |"
            )

    c = r.components
    if c is not None:
        per = lambda sec_: sec_ / c.frames * 1e6  # noqa: E731
        total_parts = c.source_s + c.step_s + c.sink_s + c.bytewax_s
        sec.tables.append(
            (
                "Where the ingest time goes: the flow's parts, each alone in the benchmark process, same messages",
                [
                    Row(f"source: `JetStreamSource`, {parts} partitions drained (nats-py → RawMsg)",
                        "raw stream", c.frames, c.source_s, c.source_s, ours=True),
                    Row(f"step: `Ingestor` over the same {c.batches} batches", "list[RawMsg]",
                        c.frames, c.step_s, c.step_s, ours=True),
                    Row(f"sink: `JetStreamSink`, {c.items_out:,} readings + dead letters, "
                        "HPUB written by Rust, one write per batch, every PubAck (per frame)",
                        "list[PubBatch]", c.frames, c.sink_s, c.sink_s, ours=True),
                    Row("sink with `streams.atomic_publish`: ADR-50 atomic batches of ≤1,000, one PubAck "
                        "each (per frame; not in the sum)", "list[PubBatch]", c.frames, c.sink_atomic_s,
                        c.sink_atomic_s, ours=True),
                    Row("Bytewax alone: same items in and out (testing source, no-op sink)",
                        "RawMsg → (partition, PubBatch)", c.frames, c.bytewax_s, c.bytewax_s, ours=True),
                    Row("sum of the parts", "", c.frames, total_parts, total_parts, ours=True),
                    Row("the ingest flow, measured (excluding start-up)", "", n, r.ingest_net_s,
                        r.ingest_net_s, ours=True),
                ],
                None,
            )
        )  # fmt: skip
        sec.notes += [
            "### Ingest cost per frame (µs), from the parts above",
            "",
            "The flow is one process whose threads share one GIL, so the parts' costs add up: "
            "the sum of the parts alone predicts the measured flow. 100,000 frames/s leaves "
            "**10 µs per frame** for all of it.",
            "",
            "| part | µs/frame | share |",
            "| --- | ---: | ---: |",
        ]
        tot = per(total_parts)
        lines = [
            (
                "source (nats-py push consumer callbacks, RawMsg; a connection and loop thread per partition)",
                per(c.source_s),
            )
        ]
        lines += [("step: " + name, per(est)) for name, est, _ in c.step_profile]
        lines += [
            ("sink (HPUB commands written by Rust, one write, PubAcks on one inbox, waiting)", per(c.sink_s)),
            ("Bytewax (items through `flat_map_batch`, routing to sink partitions)", per(c.bytewax_s)),
        ]
        for name, us in lines:
            sec.notes.append(f"| {name} | {us:.2f} | {us / tot:.0%} |")
        floor = min(u.client_s / u.n for u in r.cpu if u.what.startswith("raw consume ceiling")) * 1e6
        sec.notes += [
            f"| **sum** | **{tot:.2f}** | |",
            f"| the flow, measured (excluding start-up) | {per(r.ingest_net_s):.2f} | |",
            "",
            f"nats-py alone needs {floor:.1f} µs of client CPU per message just to receive the raw "
            f"stream at its ceiling (see CPU per message). The sink hands nats-py one buffer per "
            "batch written by Rust; alone it used "
            f"{c.sink_cpu[0] * 1e6:.1f} µs of client CPU and {c.sink_cpu[1] * 1e6:.1f} µs of "
            "nats-server CPU per message with one PubAck per message, and "
            f"{c.sink_atomic_cpu[0] * 1e6:.1f} µs client / {c.sink_atomic_cpu[1] * 1e6:.1f} µs "
            "nats-server with ADR-50 atomic batches (one PubAck per batch; nats-server stages and "
            "commits each batch, which costs it more): atomic batches save client CPU but, with "
            "the server on the same cores, not time, so they are off by default "
            "(`streams.atomic_publish`).",
            "",
            f"Step split from one cProfile pass ({c.step_profiled_s:.2f} s profiled vs "
            f"{c.step_s:.2f} s unprofiled): the Rust calls (with their Python wrappers) "
            "at their profiled time; the Python categories share the rest of the unprofiled "
            "step time in proportion to their profiled times (cProfile inflates many small "
            "calls). pyarrow's `to_pylist` is invisible to cProfile: the comprehensions that "
            "call it count as the Arrow category.",
        ]

    sec.notes += [
        "",
        "### CPU per message",
        "",
        "User + system CPU of the client side (the benchmark process for publishing and the "
        "ceilings, the flow process for the flows) and of the nats-server, per message of "
        "the phase (per uplink; per reading for the export), from `/proc/<pid>/stat` and "
        "`getrusage`.",
        "",
        "| phase | messages | wall s | client µs/msg | nats-server µs/msg |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for u in r.cpu:
        sec.notes.append(
            f"| {u.what} | {u.n:,} | {u.wall_s:.2f} | {u.client_s / u.n * 1e6:.1f} | "
            f"{u.server_s / u.n * 1e6:.1f} |"
        )
    ing_cpu = next(u for u in r.cpu if u.what.startswith("ingest flow"))
    ceil_cpu = min(u.client_s / u.n for u in r.cpu if u.what.startswith("raw consume ceiling"))
    srv_us = ing_cpu.server_s / ing_cpu.n * 1e6
    sec.notes += [
        "",
        f"During the ingest run the nats-server spent {srv_us:.1f} µs of CPU per frame (delivering "
        "the raw message, storing and acknowledging its reading or dead letter): at 100,000 "
        f"frames/s it alone would need {srv_us * 0.1:.1f} of this machine's {os.cpu_count()} "
        "cores, beside the flow process.",
        "",
        f"CPU is the figure least disturbed by other load on the machine: the ingest flow "
        f"process used {ing_cpu.client_s / ing_cpu.n * 1e6:.1f} µs per frame, "
        f"{ing_cpu.client_s / ing_cpu.n / ceil_cpu:.1f}x what the cheapest raw consumer of the "
        f"same run needed per message ({ceil_cpu * 1e6:.1f} µs); 70 % of the ceiling would need "
        f"at most {ceil_cpu * 1e6 / 0.7:.1f} µs per frame for receiving, decoding and publishing "
        "with acknowledgements.",
    ]

    def mem_row(label: str, run: Any) -> str:
        end = run.mem[-1][1] / 1024 if run.mem else 0.0
        return f"| {label} | {run.peak_rss_mib:.0f} | {end:.0f} | {run.exit_s:.1f} | {len(run.mem)} |"

    sec.notes += [
        "",
        "### Memory of the flow processes (resident, MiB)",
        "",
        "Sampled every 50 ms from `/proc/<pid>/status` (VmHWM is the kernel's high-water mark).",
        "",
        "| process | peak (VmHWM) | last sample (VmRSS) | run s | samples |",
        "| --- | ---: | ---: | ---: | ---: |",
        mem_row("ingest, empty stream (start-up only)", min(r.ingest_startup, key=lambda x: x.exit_s)),
        mem_row(f"ingest, {n:,} uplinks", r.main.run),
        mem_row("export, empty stream (start-up only)", min(r.export_startup, key=lambda x: x.exit_s)),
        mem_row(f"export, {r.export_rows:,} readings", r.export),
    ]
    if r.long is not None:
        lr = r.long.run
        sec.notes.append(mem_row(f"ingest, long run, {r.long.frames:,} uplinks", lr))
        mt = e2e.memory_trend(lr)
        la = r.long.accounting
        lf = r.long.fleet
        series = e2e.rss_series(lr)
        sec.notes += [
            "",
            f"### Long run: ingest over a fleet x{cfg.long_factor}",
            "",
            f"{lf.devices:,} sensors, {lf.uplinks:,} uplinks ({lf.days:.2f} simulated days), "
            f"published in {r.long.publish_s:.1f} s; all accounted for at {lr.complete_s:.1f} s "
            f"({lf.uplinks / lr.complete_s:,.0f} frames/s including start-up); accounting exact "
            f"({la.frames_with_readings:,} with readings + {la.dead_letters:,} dead letters). "
            f"Steady state = from {mt.lo:.0%} to {mt.hi:.0%} of the output published "
            f"({mt.start_s:.1f}-{mt.end_s:.1f} s, {mt.samples} samples; before it the source "
            "queues fill up, after it they drain): first-quartile mean RSS "
            f"**{mt.first_quartile_mib:.0f} MiB**, last-quartile mean **{mt.last_quartile_mib:.0f} "
            f"MiB** ({mt.change:+.1%}); peak {lr.peak_rss_mib:.0f} MiB. Throughput over the "
            f"steady state: {(mt.hi - mt.lo) * lf.uplinks / (mt.end_s - mt.start_s):,.0f} frames/s.",
            "",
            "| s since start | " + " | ".join(f"{t:.1f}" for t, _ in series) + " |",
            "| --- | " + " | ".join("---:" for _ in series) + " |",
            "| RSS MiB | " + " | ".join(f"{m:.0f}" for _, m in series) + " |",
        ]
        sec.goals.append(
            Goal(
                f"e2e: ingest memory flat over a long run (steady-state last-quartile mean RSS "
                f"within ±{E2E_FLAT_TOLERANCE:.0%} of the first-quartile mean)",
                f"{mt.first_quartile_mib:.0f} → {mt.last_quartile_mib:.0f} MiB ({mt.change:+.1%}) "
                f"over {lf.uplinks:,} uplinks; peak {lr.peak_rss_mib:.0f} MiB",
                abs(mt.change) <= E2E_FLAT_TOLERANCE,
            )
        )
    sec.goals[0:0] = [
        Goal(
            "e2e: ingest flow at least 100,000 frames/s per process",
            f"{r.ingest_goal_rate:,.0f} frames/s, the lower of steady {r.ingest_steady_rate:,.0f} (10-90 % "
            f"of the outputs) and {r.ingest_net_rate:,.0f} excluding start-up ({r.ingest_rate:,.0f} "
            f"including); best of {len(r.main_runs)} runs: "
            + ", ".join(f"{x:,.0f}" for x in r.main_goal_rates),
            r.ingest_goal_rate >= 100_000,
        ),
        Goal(
            "e2e: ingest flow at least 70 % of the raw consume ceiling measured in the same run",
            f"{r.ratio_to_ceiling:.1%} ({r.ingest_goal_rate:,.0f} frames/s vs {r.ceiling_rate:,.0f} msg/s "
            f"{r.ceiling_kind}; both best of their runs; each main run: "
            + ", ".join(f"{x / r.ceiling_rate:.1%}" for x in r.main_goal_rates)
            + ")",
            r.ratio_to_ceiling >= 0.70,
        ),
    ]
    if r.path_runs.get("rust"):
        rate = r.path_goal_rate("rust")
        sec.goals.insert(
            2,
            Goal(
                'e2e: ingest flow at least 70 % of the raw consume ceiling, `data_path = "rust"`',
                f"{rate / r.ceiling_rate:.1%} ({rate:,.0f} vs {r.ceiling_rate:,.0f} msg/s, best of "
                f"{len(r.path_runs['rust'])}; python in the same rounds "
                f"{r.path_goal_rate('python') / r.ceiling_rate:.1%}; each run the lower of steady and "
                "excluding start-up)",
                rate >= 0.70 * r.ceiling_rate,
            ),
        )
    sec.notes.append("")
    sec.notes.append(
        f"Family wall time {r.wall_s:.0f} s. Sizes: `TIDSTREAM_E2E_UPLINKS` (default "
        f"{e2e.DEFAULT_UPLINKS:,}), `TIDSTREAM_E2E_LONG_FACTOR` ({e2e.DEFAULT_LONG_FACTOR}), "
        "`TIDSTREAM_E2E_PARTITIONS`, `TIDSTREAM_E2E_REPEATS`, or run.py's `--e2e-*` options; "
        "`benches/e2e.py` runs the family alone. `make test` runs a small fleet through the same "
        "code (`benches/bench_e2e.py`)."
    )
    return sec


# --------------------------------------------------------------------------------------
# Family: routes (distance matrices, route evaluation)
# --------------------------------------------------------------------------------------


def family_routes(args: argparse.Namespace) -> Section:
    import numba
    import tidstream.routes as R

    threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    numba.set_num_threads(threads)
    n = args.route_points
    n_routes, stops = args.route_count, 100
    cap_matrix = f"Full distance matrix, {n:,} points ({n * n:,} pairs, {n * n * 8 / 1e6:,.0f} MB)"
    cap_eval = f"Route evaluation, {n_routes:,} routes of {stops} stops"
    cap_cost = f"Route cost only (distance, CVRP objective), {n_routes:,} routes of {stops} stops"
    sec = Section(
        "routes",
        "Routes: distance matrices and route evaluation vs numba and numpy",
        unit="pairs",
        table_units={cap_eval: "routes", cap_cost: "routes"},
        intro=[
            f"Points uniform over the Pays de Montbéliard (about 30 x 25 km). Parallel code on "
            f"{threads} threads (rayon for tidstream, `numba.set_num_threads({threads})` + `prange` "
            "for numba); numpy single-threaded. The figures are best-of runs on a machine shared "
            "with other jobs: ratios measured in the same run are the meaningful part.",
            "",
            "- **tidstream distance_matrix**: Rust, rows in parallel; haversine through the half "
            "chord of unit vectors with a vectorised `asin` (Cephes coefficients), AVX2 when the "
            "CPU has it; output float64 (n, n) (huge-page advice, as numpy gives its large "
            "arrays) moved into numpy.",
            "- **numba haversine**: textbook haversine per pair (radians and cos φ precomputed per "
            "point), `@njit(parallel=True)`, `prange` over rows, writing into an `np.empty` array "
            "(numpy advises huge pages for it, as tidstream does for its own output; numba's "
            "allocator does not, and its page faults would otherwise dominate).",
            "- **numba chord**: tidstream's algorithm (unit vectors, `math.asin` of the half "
            "chord) in numba: isolates the kernel from the formula.",
            "- **numpy**: the haversine broadcast in blocks of 256 rows.",
            "",
            f"- **Route evaluation**: {n_routes:,} routes of {stops} random stops over "
            f"{args.route_nodes:,} nodes (depot, 2 facilities), duration matrix, per-stop "
            "service time and demand, capacity with unloading trips to the best facility, shift "
            "length. tidstream `evaluate_routes` returns a 12-column Arrow table; the numba "
            "baseline (`prange` over routes, same semantics) a (routes, 6) array.",
            "",
            "All outputs are compared with tidstream's before a figure is kept.",
        ],
    )
    lat, lon = RB.make_points(n)
    RB.nb_haversine_matrix(lat[:50], lon[:50])  # compile (or load from cache), untimed
    RB.nb_chord_matrix(lat[:50], lon[:50])
    print(f"\nroutes: full matrix, {n:,} points")
    rows, outs = measure(
        [
            Impl("tidstream distance_matrix", f"float64 ({threads} threads)",
                 partial(R.distance_matrix, lat, lon), args.repeats, ours=True),
            Impl("numba haversine prange", f"float64 ({threads} threads)",
                 partial(RB.nb_haversine_matrix, lat, lon), args.repeats),
            Impl("numba chord prange (tidstream's formula)", f"float64 ({threads} threads)",
                 partial(RB.nb_chord_matrix, lat, lon), args.repeats),
            Impl("numpy haversine (blocks)", "float64 (1 thread)",
                 partial(RB.np_haversine_matrix, lat, lon), args.py_repeats),
        ],
        n * n,
    )  # fmt: skip
    ref = outs[0]
    for o in outs[1:]:
        diff = float(np.abs(o - ref).max())
        if diff > 1e-6:
            raise AssertionError(f"baseline differs from tidstream by {diff} m")
    print("  outputs checked: every baseline within 1e-6 m of tidstream")
    outs = ref = None
    gc.collect()
    ts, nb_h, nb_c = rows[0], rows[1], rows[2]
    sec.tables.append((cap_matrix, rows, ts))
    sec.goals.append(
        Goal(
            f"routes: full distance matrix for {n:,} points in at most 1 s",
            f"{ts.best_s:.3f} s best, {ts.median_s:.3f} s median ({fmt_rate(ts.rate)} pairs/s)",
            ts.best_s is not None and ts.best_s <= 1.0,
        )
    )
    r_h, r_c = ratio(ts, nb_h), ratio(ts, nb_c)
    sec.goals.append(
        Goal(
            "routes: distance matrix ahead of parallel numba in the same run",
            f"tidstream/numba = {fmt_ratio(r_h)} (haversine), {fmt_ratio(r_c)} (same formula); "
            f"numba {fmt_rate(nb_h.rate)} pairs/s",
            r_h is not None and r_c is not None and min(r_h, r_c) > 1.0,
        )
    )

    print(f"\nroutes: evaluation, {n_routes:,} routes of {stops} stops")
    w = RB.make_route_workload(args.route_nodes, n_routes, stops)
    flat = w["flat"]
    lists = flat.to_lists()
    kw = dict(
        duration_s=w["dur"], demand=w["demand"], capacity=w["capacity"], service_s=w["service"],
        facilities=w["facilities"], unload_s=w["unload_s"], shift_s=w["shift_s"],
    )  # fmt: skip
    nb_args = (w["dist"], w["dur"], flat, 0, w["demand"], w["capacity"], w["service"], w["facilities"],
               w["unload_s"], w["shift_s"])  # fmt: skip
    RB.nb_evaluate(*nb_args)  # compile, untimed
    rows, outs = measure(
        [
            Impl("tidstream evaluate_routes", "FlatRoutes", partial(R.evaluate_routes, w["dist"], flat, **kw),
                 args.repeats, ours=True),
            Impl("tidstream evaluate_routes", "list of lists", partial(R.evaluate_routes, w["dist"], lists, **kw),
                 args.repeats, ours=True),
            Impl("numba prange", "flat int64 arrays", partial(RB.nb_evaluate, *nb_args), args.repeats),
        ],
        n_routes,
    )  # fmt: skip
    cols = ("distance_m", "duration_s", "load", "unloads", "excess_load")
    ours = np.column_stack([outs[0].column(c).to_numpy() for c in cols])
    np.testing.assert_allclose(outs[2][:, :5], ours, rtol=1e-12)
    np.testing.assert_array_equal(np.column_stack([outs[1].column(c).to_numpy() for c in cols]), ours)
    print("  outputs checked: numba == tidstream (5 metrics per route)")
    sec.tables.append((cap_eval, rows, rows[0]))
    r_e = ratio(rows[0], rows[2])
    sec.goals.append(
        Goal(
            "routes: route evaluation (100-stop routes) ahead of parallel numba",
            f"{fmt_rate(rows[0].rate)} routes/s vs {fmt_rate(rows[2].rate)} (tidstream/numba = {fmt_ratio(r_e)})",
            r_e is not None and r_e > 1.0,
        )
    )
    rows, outs = measure(
        [
            Impl("tidstream route_cost", "FlatRoutes", partial(R.route_cost, w["dist"], flat), args.repeats,
                 ours=True),
            Impl("numpy gather + reduceat", "flat int64 arrays", partial(RB.np_route_cost, w["dist"], flat),
                 args.repeats),
        ],
        n_routes,
    )  # fmt: skip
    if abs(outs[0] - float(outs[1].sum())) > 1e-6 * outs[0]:
        raise AssertionError("numpy route cost differs from tidstream")
    sec.tables.append((cap_cost, rows, rows[0]))
    sec.notes.append(
        "Sizes: `--route-points` (matrix), `--route-count` and `--route-nodes` (evaluation). "
        "`make test` runs the same comparisons at small sizes (`benches/bench_routes.py`)."
    )
    return sec


# --------------------------------------------------------------------------------------
# Family: plan (PyVRP quality on CVRPLIB, whole-territory planning, the savings ledger)
# --------------------------------------------------------------------------------------


def family_plan(args: argparse.Namespace) -> Section:
    import bench_plan as BP

    t_fam = time.perf_counter()
    sec = Section("plan", "Collection planning (PyVRP) and the savings ledger", unit="plans")
    # the ledgers (the long part) run in other processes while this one does the rest
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    seeds = [int(x) for x in args.plan_ledger_seeds.split(",")]
    pool = ProcessPoolExecutor(len(seeds), mp_context=multiprocessing.get_context("spawn"))
    jobs = [
        pool.submit(
            BP.ledger_job,
            args.plan_ledger_days,
            seed,
            args.plan_convergence_every if k == 0 else 0,
            args.plan_scale,
        )
        for k, seed in enumerate(seeds)
    ]
    limits = tuple(float(x) for x in args.plan_cvrplib_limits.split(","))
    gaps = BP.cvrplib_rows(limits)
    sec.intro += [
        "PyVRP (`tidstream.plan.cvrplib_gap`) on the CVRPLIB instances of `shared/data/cvrplib`, "
        "nearest-integer rounding per edge, seed 1, one thread; BKS = the `.sol` routes evaluated on "
        "the same data (equal to each file's `Cost`). Published: PyVRP 0.14 averages 0.31 % on the "
        "X set with 2.4·n s per instance (240 s for 100 clients).",
        "",
        "| instance | clients | BKS | " + " | ".join(f"gap {t:g} s" for t in limits) + " |",
        "| --- | ---: | ---: | " + " | ".join("---:" for _ in limits) + " |",
    ]
    by: dict[str, list[dict[str, Any]]] = {}
    for g in gaps:
        by.setdefault(g["instance"], []).append(g)
    for name, gs in by.items():
        gs.sort(key=lambda g: g["time_limit_s"])
        sec.intro.append(
            f"| {name} | {gs[0]['clients']} | {gs[0]['bks']:,} | "
            + " | ".join(f"{g['gap']:+.2%}" for g in gs)
            + " |"
        )
    small = [g for g in gaps if g["clients"] <= 200 and g["time_limit_s"] == max(limits)]
    mean_small = float(np.mean([g["gap"] for g in small])) if small else float("nan")
    sec.goals.append(
        Goal(
            f"plan: PyVRP within 1 % of the best-known cost on CVRPLIB instances up to 200 clients ({max(limits):g} s)",
            f"mean gap {mean_small:+.2%} over {len(small)} instances (worst {max(g['gap'] for g in small):+.2%})",
            bool(small) and max(g["gap"] for g in small) <= 0.01,
        )
    )

    terr = BP.territory_day(
        tuple(float(x) for x in args.plan_territory_efforts.split(",")), scale=args.plan_scale
    )
    sec.intro += [
        "",
        f"### One planning day of the whole simulated territory ({terr['containers']:,} containers, {terr['day']})",
        "",
        "Forecast-driven plan (required + optional containers) and the fixed schedule's containers of "
        "the same day, default `[plan]` settings and fleet, one PyVRP problem per stream, stopped on "
        "iterations (`effort` x the `[plan]` rule: no improvement for 10 iterations per candidate, at "
        "most 100 per candidate). Build = distance and duration matrices (`tidstream.routes`, "
        "circuity 1.3) plus the PyVRP models; the simulation of the history and the forecasts are not "
        "counted. Wall time depends on the machine's load, iterations and km do not.",
        "",
        "| policy | candidates | required | effort | iterations | wall s | CPU s | build s | stops | km | truck-hours | feasible |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in terr["solves"]:
        sec.intro.append(
            f"| {r['policy']} | {r['candidates']} | {r['required']} | {r['effort']:g} | {r['iterations']:,} | "
            f"{r['wall_s']:.1f} | {r['cpu_s']:.1f} | {r['build_s']:.2f} | {r['stops']} | {r['km']:.1f} | "
            f"{r['truck_hours']:.1f} | {r['feasible']} |"
        )

    done = [j.result() for j in jobs]
    pool.shutdown()
    results = [r for r, _ in done]
    conv = done[0][1]
    first = results[0]
    sec.intro += [
        "",
        f"### Savings ledger: {first.params['containers']:,} containers x {first.params['days']} days "
        f"(from {first.params['first_day']}, after {first.params['warmup_days']} days of shared history)",
        "",
        "Same simulated demand for both policies in each run; forecasts from the readings known each "
        "morning; both routed by the same PyVRP settings, stopped on iterations (docs/PLANNING.md). "
        f"Simulation seeds {', '.join(map(str, seeds))}: held out, the policy's parameters were chosen "
        "on seed 2 (docs/PLANNING.md). Replay check: the fixed schedule replayed gives the simulator's "
        "overflows and emptyings in every run (columns `sim`).",
        "",
        "| seed | policy | km | truck-hours | trucks (sum of days) | stops | emptyings | mean fill at emptying | overflows | overflow-hours | CO2 kg | every day feasible | sim overflows / emptyings | wall s |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | ---: |",
    ]
    for res in results:
        c = res.checks
        for pol in ("fixed", "planned"):
            t = res.totals[pol]
            sim_col = (
                f"{c['sim_overflows_in_period']} / {c['sim_emptyings_in_period']:,} "
                f"(replayed {c['replayed_fixed_overflows']} / {c['replayed_fixed_emptyings']:,})"
                if pol == "fixed"
                else ""
            )
            sec.intro.append(
                f"| {res.params['seed']} | {pol} | {t['km']:,.0f} | {t['truck_hours']:,.0f} | {int(t['trucks'])} | "
                f"{int(t['stops']):,} | {int(t['emptyings']):,} | {t['mean_fill_at_emptying']:.3f} | "
                f"{int(t['overflows'])} | {t['overflow_hours']:,.0f} | {t['co2_kg']:,.0f} | {t['feasible']} | "
                f"{sim_col} | {res.elapsed_s:.0f} |"
            )
    sec.intro += [
        "",
        f"Convergence (seed {seeds[0]}): every {args.plan_convergence_every}. day's problem of each policy "
        "solved again with twice the iterations (`effort` 2); km over those days:",
        "",
        "| policy | days | iterations at 1x | km at 1x | km at 2x | change |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for pol in ("fixed", "planned"):
        o = conv.get(pol)
        if o:
            sec.intro.append(
                f"| {pol} | {o['days']} | {o['iterations_1x']:,} | {o['km_1x']:,.1f} | {o['km_2x']:,.1f} | "
                f"{o['change']:+.2%} |"
            )
    for res in results:
        g = res.goals()
        tot_f, tot_p = res.totals["fixed"], res.totals["planned"]
        sec.goals.append(
            Goal(
                f"ledger (seed {res.params['seed']}): at least 30 % fewer km than the fixed schedule",
                f"{g['km_reduction']['measured']:+.1%} ({tot_p['km']:,.0f} vs {tot_f['km']:,.0f} km)",
                g["km_reduction"]["met"],
            )
        )
        sec.goals.append(
            Goal(
                f"ledger (seed {res.params['seed']}): no more overflows than the fixed schedule",
                g["overflows"]["measured"],
                g["overflows"]["met"],
            )
        )
    worst = max((abs(o["change"]) for o in conv.values()), default=float("nan"))
    sec.goals.append(
        Goal(
            "plan: converged solves (twice the iterations changes each policy's km by < 1 %)",
            ", ".join(f"{pol} {o['change']:+.2%}" for pol, o in conv.items()),
            worst < 0.01,
        )
    )
    sec.notes.append(
        f"Family wall time {time.perf_counter() - t_fam:.0f} s. Sizes: run.py's `--plan-*` options; "
        "`benches/bench_plan.py --cvrplib | --territory | --ledger DAYS | --tune VARIANTS` runs the parts alone; "
        "`make test` runs its small cases."
    )
    return sec


# --------------------------------------------------------------------------------------
# Family: forecast (Forecaster.update throughput, 100k-container backtest)
# --------------------------------------------------------------------------------------

#: Issue 5's goals for the forecaster.
FORECAST_GOAL_RATE = 20e6  # readings/s, one core
FORECAST_GOAL_BACKTEST_S = 60.0  # 100k containers x 90 days hourly


def _time_with_setup(
    impls: list[tuple[str, str, Callable[[], Any], Callable[[Any], Any], int, bool]], n: int
) -> tuple[list[Row], list[Any]]:
    """Like :func:`measure`, for runs that need a fresh warmed state each time: every
    entry is (impl, input, setup, run, repeats, ours); ``setup()`` (untimed) makes the
    state and only ``run(state)`` is timed. Round-robin over the implementations, the
    garbage collector off during each timed call, the previous state freed first."""
    times: list[list[float]] = [[] for _ in impls]
    results: list[Any] = [None] * len(impls)
    for rnd in range(max(im[4] for im in impls)):
        for k, (_, _, setup, run, repeats, _) in enumerate(impls):
            if rnd >= repeats:
                continue
            results[k] = None
            state = setup()
            gc.collect()
            gc.disable()
            try:
                t0 = time.perf_counter()
                run(state)
                t1 = time.perf_counter()
            finally:
                gc.enable()
            results[k] = state
            state = None
            times[k].append(t1 - t0)
    rows = []
    for (impl, inp, _, _, _, ours), ts in zip(impls, times, strict=True):
        row = Row(impl, inp, n, min(ts), statistics.median(ts), ours=ours)
        print(
            f"  {impl + ' (' + inp + ')':62s} {fmt_rate(row.rate):>10s}/s  "
            f"(best {row.best_s:.4f} s, median {row.median_s:.4f} s, {len(ts)} runs)"
        )
        rows.append(row)
    return rows, results


def family_forecast(args: argparse.Namespace) -> Section:
    import bench_forecast as F

    n, days = args.forecast_containers, args.forecast_days
    sec = Section(
        "forecast",
        "Forecaster: `Forecaster.update` vs numba and numpy; 100k-container backtest",
        unit="readings",
        intro=[
            f"{n:,} containers read hourly, time-major (every container each hour), from "
            "`benches/bench_forecast.py`'s `make_workload`: log-normal fill rates with an "
            "hour-of-day profile, emptying at 0.75-0.95, noise (sd 0.005), 0.3 % lid-open (0.0) "
            "and 0.2 % obstruction (0.97) readings. Every implementation first takes "
            f"{days} days untimed (steady state); each timed run starts from a copy of that "
            f"warmed state (made untimed) and takes the next {days} days "
            f"({n * days * 24:,} readings) in one `update` call.",
            "Two model sizes, each with its own baseline:",
            "- **tidstream Forecaster.update**: the full default forecaster (int64 ids mapped to "
            "states, robust level, emptying detection, rate, day/hour profile, fleet sums and "
            "activity factor, pending forecasts issued and scored into the calibration tables "
            "and interval levels, per-container accountability); GIL released, one thread.",
            "- **numba @njit, full model** (`benches/forecast_full_numba.py`): a line-by-line port "
            "of that same model (`core/src/forecast/`: step, pending forecasts, calibration "
            "tables with f32 storage, interval levels, accountability, fleet, one local day at a "
            "time, the row grouping of large fleets), container ids given as 0..n-1 (no id map). "
            "Checked against tidstream on the same readings before its figure is kept: counters "
            "and scored counts equal, calibration tables, interval levels, states, pending "
            "forecasts, `predict` (p10/p50/p90, P(over)) and accountability within median "
            "|difference| < 1e-6 and max < 1e-3, hours to threshold within median 1e-3 h and "
            "max 0.5 h (a root finder's bracket); the largest difference measured is printed.",
            "- **tidstream, calibrate=False**: the same update without pending forecasts, "
            "calibration and accountability; **numba port, calibrate=False**: the port with the "
            "same switch (counters checked equal).",
            "- **numba @njit** and **numpy** (vectorised across containers, one hour at a "
            "time), per-reading model (`bench_forecast.py`): a simplified calibrate=False model "
            "(fleet rate, profile and activity factor held fixed, day-of-week multiplier updated "
            "per reading, no tilt), with container ids given as 0..n-1. "
            "Each one's learned fill rates are checked against tidstream's (median relative "
            "difference < 15 %) before its figure is kept.",
        ],
    )
    print(f"\nforecast: {n:,} containers x {days} days hourly (after a {days}-day warm-up)")
    F._numba_kernels()
    warm = F.Warm(n, days)
    ref = warm.run(warm.copy("tidstream"))
    F._check_rates(warm.run(warm.copy("numba")).rate_per_day(), ref)
    F._check_rates(warm.run(warm.copy("numpy")).rate_per_day(), ref)
    accepted = ref.stats()["accepted"]
    if accepted < 0.95 * 2 * warm.readings:
        raise RuntimeError(f"forecast: tidstream accepted only {accepted:,} readings")
    diffs = F.check_full(warm, warm.run(warm.copy("numba-full")), ref)
    ref = None
    core_ref = F.tidstream.Forecaster.from_bytes(warm.blob_core)
    warm.run(core_ref)
    core_port = warm.run(warm.copy("numba-full-core"))
    if core_port.stats() != {k: v for k, v in core_ref.stats().items() if k != "containers"}:
        raise RuntimeError("forecast: the numba port with calibrate=False counts differently from tidstream")
    core_ref = core_port = None
    worst = max(v[1] for k, v in diffs.items() if "hours" not in k)
    worst_h = max(v[1] for k, v in diffs.items() if "hours" in k)
    print(
        "  outputs checked: per-reading baselines' rates == tidstream's (median rel. diff < 15 %); "
        f"numba full-model port == tidstream (max |diff| {worst:.2g}, hours to threshold {worst_h:.2g} h)"
    )
    rows, _ = _time_with_setup(
        [
            ("tidstream Forecaster.update", "int64 ids", partial(warm.copy, "tidstream"),
             warm.run, args.repeats, True),
            ("numba @njit, full model (port)", "indices 0..n-1", partial(warm.copy, "numba-full"),
             warm.run, args.repeats, False),
            ("tidstream Forecaster.update, calibrate=False", "int64 ids",
             partial(warm.copy, "tidstream-core"), warm.run, args.repeats, True),
            ("numba @njit, full model port, calibrate=False", "indices 0..n-1",
             partial(warm.copy, "numba-full-core"), warm.run, args.repeats, False),
            ("numba @njit, per-reading model", "indices 0..n-1", partial(warm.copy, "numba"), warm.run,
             args.repeats, False),
            ("numpy, per-reading model, vectorised across containers", "indices 0..n-1",
             partial(warm.copy, "numpy"), warm.run, args.py_repeats, False),
        ],
        warm.readings,
    )  # fmt: skip
    warm = None
    gc.collect()
    full, nbf, core, nbf_core, nb = rows[0], rows[1], rows[2], rows[3], rows[4]
    sec.tables += [
        (f"Update, full default model: {n:,} containers x {days} days hourly", [full, nbf], full),
        (f"Update, calibrate=False model: {n:,} containers x {days} days hourly", rows[2:], core),
    ]
    r_full, r_core = ratio(full, nbf), ratio(core, nb)
    sec.goals += [
        Goal(
            "Forecaster update throughput at least 20 M readings/s on one core",
            f"{fmt_rate(full.rate)} readings/s ({n:,} containers, hourly, full forecaster)",
            None if full.rate is None else full.rate >= FORECAST_GOAL_RATE,
        ),
        Goal(
            "Forecaster update ahead of the numba implementation of the same model (same run)",
            f"full model: tidstream {fmt_rate(full.rate)} vs numba port {fmt_rate(nbf.rate)} readings/s "
            f"(tidstream/numba = {fmt_ratio(r_full)}); calibrate=False: tidstream {fmt_rate(core.rate)} vs "
            f"numba per-reading model {fmt_rate(nb.rate)} ({fmt_ratio(r_core)}; vs the port with "
            f"calibrate=False: {fmt_ratio(ratio(core, nbf_core))})",
            None if r_full is None or r_core is None else (r_full >= 1.0 and r_core >= 1.0),
        ),
    ]
    sec.notes.append(
        "Sizes: run.py's `--forecast-containers` / `--forecast-days`; "
        "`TIDSTREAM_BENCH_FORECAST=containers,days .venv/bin/python benches/bench_forecast.py` "
        "prints the same comparison alone, and `make test` runs it small as a test."
    )

    bt_days = args.forecast_backtest_days
    if bt_days <= 0:
        sec.goals.append(
            Goal("Backtest of 100k containers x 90 days hourly in under a minute", "skipped "
                 "(`--forecast-backtest-days 0`)", None)
        )  # fmt: skip
        return sec
    print(f"\nforecast backtest: 100,000 containers x {bt_days} days hourly")
    bt = F.backtest_100k(100_000, bt_days)
    print(
        f"  update {bt['update_s']:.1f} s + daily predict {bt['predict_s']:.1f} s = "
        f"{bt['total_s']:.1f} s (data generation {bt['generation_s']:.1f} s, not counted)"
    )
    sec.notes += [
        "",
        f"### Backtest: 100,000 containers x {bt_days} days hourly",
        "",
        "`bench_forecast.backtest_100k()`: one `update` per simulated day (2.4 M readings), "
        "then `predict` of every container at 24/48/72 h (p10/p50/p90, P(over threshold), "
        "hours to threshold); data generation not counted.",
        "",
        "| readings | update s | predict s | total s | readings/s (update) |",
        "| ---: | ---: | ---: | ---: | ---: |",
        f"| {bt['readings']:,} | {bt['update_s']:.1f} | {bt['predict_s']:.1f} | "
        f"{bt['total_s']:.1f} | {fmt_rate(bt['readings'] / bt['update_s'])} |",
    ]
    sec.goals.append(
        Goal(
            f"Backtest of 100k containers x {bt_days} days hourly in under a minute",
            f"{bt['total_s']:.1f} s (update {bt['update_s']:.1f} s + daily predict {bt['predict_s']:.1f} s)",
            bt["total_s"] < FORECAST_GOAL_BACKTEST_S if bt_days >= 90 else None,
        )
    )
    return sec


FAMILIES: list[Callable[[argparse.Namespace], Section]] = [
    family_codecs,
    family_envelopes,
    family_e2e,
    family_routes,
    family_plan,
    family_forecast,
]

# --------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cpu_flags() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                have = set(line.split(":", 1)[1].split())
                wanted = ("sse4_2", "avx2", "bmi2", "avx512f", "avx512bw")
                return ", ".join(f for f in wanted if f in have) or "none of sse4_2/avx2/avx512"
    except OSError:
        pass
    return "unknown"


def versions() -> list[tuple[str, str]]:
    import numba
    import orjson

    out = [
        ("tidstream", f"{tidstream.__version__} ({tidstream._core.build_profile} build)"),
        ("Python", platform.python_version() + f" ({platform.python_implementation()})"),
        ("numpy", np.__version__),
        ("pyarrow", pa.__version__),
        ("numba", numba.__version__),
        ("orjson", orjson.__version__),
    ]
    try:
        rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True, timeout=10)
        if rustc.returncode == 0:
            out.append(("rustc", rustc.stdout.strip().removeprefix("rustc ")))
    except (OSError, subprocess.SubprocessError):
        pass
    return out


def render_table(rows: list[Row], ref: Row | None, unit: str) -> list[str]:
    one = unit.rstrip("s")
    lines = [
        f"| implementation | input | {unit}/s | ns/{one} | best s | median s | tidstream ÷ this |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        if r.best_s is None:
            lines.append(f"| {r.impl} | {r.input} | not measured | | | | ({r.note}) |")
            continue
        rel = "" if r.ours or ref is None else fmt_ratio(ratio(ref, r))
        lines.append(
            f"| {r.impl} | {r.input} | {r.rate:,.0f} | {r.best_s / r.n * 1e9:.1f} | "
            f"{r.best_s:.4f} | {r.median_s:.4f} | {rel} |"
        )
    if ref is not None:
        lines.append("")
        lines.append(
            f"tidstream ÷ this: {unit}/s of `{ref.impl}` ({ref.input}) divided by the "
            f"baseline's {unit}/s; above 1 means tidstream is faster."
        )
    return lines


def yes_no(m: bool | None) -> str:
    return "not measured" if m is None else ("**met**" if m else "**NOT met**")


def load_note() -> str:
    """The machine's load averages when the figures were taken (other jobs share the cores)."""
    if not hasattr(os, "getloadavg"):
        return ""
    a, b, c = os.getloadavg()
    return (
        f" Load average at the end of the run: {a:.1f} / {b:.1f} / {c:.1f} (1 / 5 / 15 min) on "
        f"{os.cpu_count()} cores: other jobs ran beside the benchmark, so compare figures of the "
        "same run (ratios, CPU per message), not absolute rates across runs."
    )


def render(sections: list[Section], args: argparse.Namespace, started: dt.datetime) -> str:
    env = {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    cores = os.cpu_count()
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    argv = " ".join(shlex.quote(a) for a in sys.argv[1:])
    out = [
        "# Benchmark results",
        "",
        "<!-- Generated by benches/run.py (`make bench`): edit run.py, not this file. -->",
        "",
        "## Run",
        "",
        f"- Date (UTC): {started:%Y-%m-%d %H:%M:%S}",
        "- Command: `make bench` (release build via `make install`, then "
        f"`.venv/bin/python benches/run.py{(' ' + argv) if argv else ''}`)",
        f"- Machine: {platform.platform()}; CPU: {cpu_model()} ({cpu_flags()}); "
        f"{cores} cores ({affinity} usable by this process).{load_note()}",
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in versions()),
        f"- Method: one thread; best of {args.repeats} runs ({args.py_repeats} for the pure "
        "Python baselines) with `time.perf_counter`, garbage collector disabled during each "
        "timed call (as `timeit` does); all implementations on the same input in one "
        "process; every output checked before its figure is kept.",
        "- Environment: "
        + ", ".join(f"`{k}`={'unset' if v is None else '`' + v + '`'}" for k, v in env.items())
        + ". run.py changes no environment variable. On machines where these OpenBLAS "
        "variables are set they slow a current numpy's BLAS kernels; no benchmark here "
        "calls BLAS, so they do not affect these figures.",
        "",
        "## Goals (from the issue)",
        "",
        "| goal | measured | status |",
        "| --- | --- | --- |",
    ]
    for s in sections:
        for g in s.goals:
            out.append(f"| {g.text} | {g.measured} | {yes_no(g.met)} |")
    for s in sections:
        out += ["", f"## {s.title}", "", *s.intro]
        for caption, rows, ref in s.tables:
            out += ["", f"### {caption}", "", *render_table(rows, ref, s.table_units.get(caption, s.unit))]
        if s.notes:
            out += ["", *s.notes]
    out += [
        "",
        "## Other benchmark families",
        "",
        "Each `##` section above is one benchmark family, regenerated on every run. To add "
        "one, write `family_<name>(args) -> Section` in `benches/run.py` (workload, one "
        "`Impl` per implementation timed by `measure`, output checks, goals) and append it "
        "to `FAMILIES`; its section and goals then appear on the next `make bench`. The "
        "matching "
        "pytest-benchmark file is `benches/bench_<name>.py`.",
        "",
    ]
    return "\n".join(out)


def _blocks(text: str) -> list[list[str]]:
    """Markdown split at ``## `` headings: a preamble block, then one block per heading."""
    blocks: list[list[str]] = [[]]
    for line in text.splitlines():
        if line.startswith("## "):
            blocks.append([])
        blocks[-1].append(line)
    return blocks


def merge_results(old: str, new: str, sections: list[Section], started: dt.datetime) -> str:
    """``old`` RESULTS.md with the sections and goal rows of ``sections`` taken from ``new``
    (``--only ... --merge``): a family re-measured alone replaces its own part only."""
    old_blocks, new_blocks = _blocks(old), _blocks(new)
    by_title = {b[0]: b for b in new_blocks[1:]}
    note = (
        f"_This section was measured on {started:%Y-%m-%d %H:%M:%S} UTC by `benches/run.py "
        f"{' '.join(shlex.quote(a) for a in sys.argv[1:])}` and merged into this file; the Run "
        "section above describes the machine._"
    )
    for s in sections:
        head = f"## {s.title}"
        block = [*by_title[head]]
        while block and not block[-1].strip():
            block.pop()
        block += ["", note, ""]
        idx = next((i for i, b in enumerate(old_blocks) if b[0] == head), None)
        if idx is not None:
            old_blocks[idx] = block
        else:
            at = next((i for i, b in enumerate(old_blocks) if b[0] == "## Other benchmark families"), None)
            old_blocks.insert(len(old_blocks) if at is None else at, block)
    goals_idx = next((i for i, b in enumerate(old_blocks) if b[0].startswith("## Goals")), None)
    if goals_idx is not None:
        mine = [g for s in sections for g in s.goals]
        prefixes = tuple(f"| {s.key}:" for s in sections) + tuple(f"| {g.text} |" for g in mine)
        kept = [line for line in old_blocks[goals_idx] if not line.startswith(prefixes)]
        last_row = max(i for i, line in enumerate(kept) if line.startswith("|"))
        rows = [f"| {g.text} | {g.measured} | {yes_no(g.met)} |" for g in mine]
        old_blocks[goals_idx] = kept[: last_row + 1] + rows + kept[last_row + 1 :]
    return "\n".join(line for b in old_blocks for line in b) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=2_000_000, help="frames per codec")
    p.add_argument("--envelopes", type=int, default=200_000, help="TTN messages")
    p.add_argument("--repeats", type=int, default=7, help="repeats (best is kept)")
    p.add_argument("--py-repeats", type=int, default=3, help="repeats of pure-Python baselines")
    p.add_argument(
        "--e2e-uplinks",
        type=int,
        default=None,
        help="e2e: uplinks of the main run (default $TIDSTREAM_E2E_UPLINKS or 100,000)",
    )
    p.add_argument(
        "--e2e-long-factor",
        type=int,
        default=None,
        help="e2e: long-run fleet and uplinks x this (default $TIDSTREAM_E2E_LONG_FACTOR or 4; 0 = none)",
    )
    p.add_argument("--e2e-repeats", type=int, default=None, help="e2e: ceiling repeats (default 3)")
    p.add_argument("--route-points", type=int, default=10_000, help="routes: points of the full matrix")
    p.add_argument("--route-count", type=int, default=20_000, help="routes: 100-stop routes evaluated")
    p.add_argument("--route-nodes", type=int, default=1_000, help="routes: nodes of the evaluation matrix")
    p.add_argument("--plan-cvrplib-limits", default="2,10,30", help="plan: PyVRP time limits on CVRPLIB (s)")
    p.add_argument("--forecast-containers", type=int, default=100_000, help="forecast: containers")
    p.add_argument("--forecast-days", type=int, default=7, help="forecast: days warm-up, days timed")
    p.add_argument(
        "--forecast-backtest-days",
        type=int,
        default=90,
        help="forecast: days of the 100k-container backtest (0 = skip)",
    )
    p.add_argument(
        "--plan-territory-efforts", default="0.5,1,2", help="plan: PyVRP efforts of the territory day"
    )
    p.add_argument("--plan-ledger-days", type=int, default=28, help="plan: days of the savings ledger")
    p.add_argument(
        "--plan-scale", type=float, default=1.0, help="plan: territory scale (1 = 1,444 containers)"
    )
    p.add_argument(
        "--plan-ledger-seeds", default="1,3", help="plan: simulation seeds of the ledger (held out of tuning)"
    )
    p.add_argument(
        "--plan-convergence-every",
        type=int,
        default=5,
        help="plan: re-solve every N-th ledger day at twice the iterations (first seed)",
    )
    p.add_argument(
        "--only",
        default=None,
        help="comma-separated families to run (e.g. e2e); implies --no-write unless --merge",
    )
    p.add_argument("--no-write", action="store_true", help="print only; keep RESULTS.md")
    p.add_argument(
        "--merge",
        "--write-sections",
        "--update",
        dest="merge",
        action="store_true",
        help="with --only: replace those families' sections and goals in the existing RESULTS.md",
    )
    args = p.parse_args()
    families = FAMILIES
    if args.only:
        wanted = {w.strip() for w in args.only.split(",")}
        families = [f for f in FAMILIES if f.__name__.removeprefix("family_") in wanted]
        args.no_write = args.no_write or not args.merge

    started = dt.datetime.now(dt.timezone.utc)
    print(f"tidstream {tidstream.__version__} ({tidstream._core.build_profile} build)")
    if tidstream._core.build_profile != "release":
        print("warning: not a release build; figures are meaningless (run `make bench`)")
    sections = [f(args) for f in families]

    print("\nGoals:")
    for s in sections:
        for g in s.goals:
            print(f"  [{yes_no(g.met).strip('*')}] {g.text.replace('`', '')}: {g.measured}")
    if not args.no_write:
        text = render(sections, args, started)
        if args.only and RESULTS.exists():
            text = merge_results(RESULTS.read_text(encoding="utf-8"), text, sections, started)
        RESULTS.write_text(text, encoding="utf-8")
        print(f"\nwrote {RESULTS.relative_to(HERE.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
