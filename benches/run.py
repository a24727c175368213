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
[--repeats 7] [--py-repeats 3] [--no-write]``
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

import baselines as B  # noqa: E402
import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
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
        sec.notes.append(
            f"| `{model}` | {ns(full)} | {ns(core)} | {ns(asm)} | {ns(extra)} | {ns(nb)} |"
        )
    sec.notes += [
        "",
        "Rust decode only = `_core.decode_batch_buffers` (per-row decode into column "
        "builders, GIL released); the assembly column is the difference to the full call "
        "(`pa.Array.from_buffers` per column, `pa.nulls` for the columns a model does not "
        "carry, `RecordBatch.from_arrays`). Figures of separately timed calls: small "
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
        'Envelopes: `decode_uplinks("ttn-v3")` vs orjson',
        unit="messages",
        intro=[
            f"{n:,} TTN v3 uplink messages: the documented example "
            "(`shared/sensors/ENVELOPES.md`) with a real EM310-UDL frame in base64 "
            "`frm_payload`, `f_port` 85, distinct `dev_eui` / `f_cnt`, 1-3 gateways, "
            "nanosecond `received_at`; compact JSON.",
            "- **orjson baseline**: per message `orjson.loads`, field extraction in Python "
            "(dev_eui lowercased, fport, fcnt, best RSSI/SNR, gateway count), "
            "`base64.b64decode(frm_payload)`; `received_at` parsed to datetime64[ns] by one "
            "vectorised numpy call. Output: Python lists (no Arrow assembly).",
            "- **pipeline** rows: envelope parse + EM310 decode of the payloads, end to end.",
        ],
    )
    print(f"\nenvelopes: {n:,} TTN v3 messages")
    messages = B.make_ttn_messages(n, seed=7)
    arr = pa.array(messages, type=pa.binary())
    size = sum(len(m) for m in messages)
    sec.intro.insert(1, f"Mean message size {size / n:.0f} bytes ({size / 1e6:.0f} MB in all).")

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

    impls = []
    if available:
        impls += [
            Impl("tidstream decode_uplinks", "list[bytes]",
                 partial(tidstream.decode_uplinks, "ttn-v3", messages), args.repeats, ours=True),
            Impl("tidstream decode_uplinks", "BinaryArray",
                 partial(tidstream.decode_uplinks, "ttn-v3", arr), args.repeats, ours=True),
        ]  # fmt: skip
    impls.append(
        Impl("orjson + Python + base64", "list[bytes]", partial(B.py_parse_ttn, messages),
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

    py_row, py = res["orjson + Python + base64", "list[bytes]"]
    pyp_row, pyout = res["orjson + Python + struct", "list[bytes]"]
    assert py["fcnt"] == list(range(1, n + 1)) and set(py["fport"]) == {85}
    B.check_decoded(B.EM310, pyout, tidstream.decode_batch(B.EM310, py["payload"]))
    ts_list = ts_arr = ts_pipe = None
    if available:
        ts_list, ts = res["tidstream decode_uplinks", "list[bytes]"]
        ts_arr, ts2 = res["tidstream decode_uplinks", "BinaryArray"]
        ts_pipe, pipe_out = res["tidstream decode_uplinks + decode_batch", "BinaryArray"]
        B.check_uplinks(py, ts)
        B.check_uplinks(py, ts2)
        B.check_decoded(B.EM310, pyout, pipe_out)
        print("  outputs checked: decode_uplinks (both inputs) == orjson baseline; pipelines agree")
        env_rows = [ts_list, ts_arr, py_row]
    else:
        env_rows = [
            Row("tidstream decode_uplinks", "list[bytes]", n, note=reason, ours=True),
            py_row,
        ]
    res = outs = py = pyout = None
    sec.tables.append(("TTN v3 envelopes", env_rows, ts_list))
    sec.tables.append(
        ("Envelope + EM310 decode (pipeline)", [r for r in (ts_pipe, pyp_row) if r], ts_pipe)
    )

    if available and ts_list and ts_arr:
        best = max(ts_list.rate or 0, ts_arr.rate or 0)
        r_list, r_arr = ratio(ts_list, py_row), ratio(ts_arr, py_row)
        sec.goals.append(
            Goal(
                "envelopes: at least 1 million messages/s",
                f"{fmt_rate(ts_list.rate)}/s from list[bytes], "
                f"{fmt_rate(ts_arr.rate)}/s from a BinaryArray",
                best >= 1e6,
            )
        )
        sec.goals.append(
            Goal(
                "envelopes: at least 5x the orjson path",
                f"{fmt_ratio(r_list)} (list[bytes]), {fmt_ratio(r_arr)} (BinaryArray); "
                f"orjson path {fmt_rate(py_row.rate)}/s",
                max(r_list or 0, r_arr or 0) >= 5.0,
            )
        )
        sec.notes.append(
            "Envelope goals are judged on the better of the two inputs; both are shown."
        )
    else:
        sec.goals.append(
            Goal("envelopes: at least 1 million messages/s", f"not measured: {reason}", None)
        )
        sec.goals.append(
            Goal(
                "envelopes: at least 5x the orjson path",
                f"not measured: {reason}; orjson path {fmt_rate(py_row.rate)}/s",
                None,
            )
        )
    return sec


FAMILIES: list[Callable[[argparse.Namespace], Section]] = [family_codecs, family_envelopes]

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
        f"{cores} cores ({affinity} usable by this process)",
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
            out += ["", f"### {caption}", "", *render_table(rows, ref, s.unit)]
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


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=2_000_000, help="frames per codec")
    p.add_argument("--envelopes", type=int, default=200_000, help="TTN messages")
    p.add_argument("--repeats", type=int, default=7, help="repeats (best is kept)")
    p.add_argument("--py-repeats", type=int, default=3, help="repeats of pure-Python baselines")
    p.add_argument("--no-write", action="store_true", help="print only; keep RESULTS.md")
    args = p.parse_args()

    started = dt.datetime.now(dt.timezone.utc)
    print(f"tidstream {tidstream.__version__} ({tidstream._core.build_profile} build)")
    if tidstream._core.build_profile != "release":
        print("warning: not a release build; figures are meaningless (run `make bench`)")
    sections = [f(args) for f in FAMILIES]

    print("\nGoals:")
    for s in sections:
        for g in s.goals:
            print(f"  [{yes_no(g.met).strip('*')}] {g.text.replace('`', '')}: {g.measured}")
    if not args.no_write:
        RESULTS.write_text(render(sections, args, started), encoding="utf-8")
        print(f"\nwrote {RESULTS.relative_to(HERE.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
