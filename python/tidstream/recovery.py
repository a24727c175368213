"""Bytewax recovery stores: created with a manifest, checked before every start.

A dataflow's recovery folder holds Bytewax's SQLite partitions (``part-<i>.sqlite3``:
source positions and operator state at the last committed epoch). Losing or damaging
it must never turn into a silent fresh start (the flow would read its inputs again
from the beginning). So:

* :func:`init_recovery` creates the partitions and a manifest beside them,
  ``tidstream-recovery.json``: the flow's identity (``Dataflow`` id), the partition
  count and the partition files this folder holds.
* :func:`check_recovery` lists every problem: the folder missing or empty, the
  manifest missing (an empty store) or naming another flow, a partition missing,
  truncated or not a Bytewax partition (SQLite integrity check, tables, partition
  index and count), state of another flow's steps in it.
* :func:`guard` runs the check at the top of every dataflow module (before Bytewax
  opens the store) and exits with a clear error naming the way out
  (``tidstream recovery check|reset``, docs/OPERATIONS.md "Recovery stores").
* :func:`reset_recovery` is that way out: the damaged folder is moved aside (kept for
  inspection) and a fresh store is created. What a reset means for each flow (what is
  read again, why that does not duplicate outputs, or where it does) is in
  docs/OPERATIONS.md.

A store made before manifests existed (partitions, no manifest) is adopted once: its
partitions are checked, and the manifest is written when they are sound and hold only
this flow's state.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .exceptions import TidstreamError

__all__ = [
    "MANIFEST",
    "RecoveryError",
    "RecoveryStatus",
    "check_recovery",
    "guard",
    "ingest_positions",
    "init_recovery",
    "recovery_dir_from_argv",
    "reset_recovery",
    "start_after",
]

log = logging.getLogger("tidstream.recovery")

#: The manifest's file name, beside the partitions.
MANIFEST = "tidstream-recovery.json"
_FORMAT = 1
_WAY_OUT = (
    "Way out (docs/OPERATIONS.md, 'Recovery stores'): restore the folder from a backup, "
    "or `tidstream recovery reset {flow} --store {path}` to move it aside and start "
    "this flow from the beginning of its input (read what a reset means for this flow first)."
)


class RecoveryError(TidstreamError):
    """A recovery store that cannot be resumed from."""


@dataclass
class RecoveryStatus:
    """What :func:`check_recovery` found."""

    path: Path
    flow: str
    #: Partition count recorded in the store (None when unknown).
    parts: int | None = None
    #: Partition files present.
    files: list[str] = field(default_factory=list)
    #: Epoch of the last commit per partition file (None: never committed).
    commits: dict[str, int | None] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    #: True when the store had no manifest and was sound: the manifest can be written.
    adoptable: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems

    def error(self) -> RecoveryError:
        """The error to raise (problems, then the way out)."""
        lines = "\n".join(f"  - {p}" for p in self.problems)
        return RecoveryError(
            f"recovery store {self.path} of flow {self.flow} cannot be resumed from:\n{lines}\n"
            + _WAY_OUT.format(flow=_short(self.flow), path=self.path)
        )


def _short(flow: str) -> str:
    return flow.removeprefix("tidstream-")


def _write_manifest(
    path: Path, flow: str, parts: int, files: Sequence[str], start_after: Mapping[str, int] | None = None
) -> None:
    body: dict[str, Any] = {
        "format": _FORMAT,
        "flow": flow,
        "parts": parts,
        "files": sorted(files),
        "created_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "note": "written by tidstream; see docs/OPERATIONS.md 'Recovery stores'",
    }
    if start_after:
        # Where each input partition starts while the store holds no position yet
        # (after a reset): the source's first snapshot supersedes it.
        body["start_after"] = {str(k): int(v) for k, v in sorted(start_after.items())}
    tmp = path / f".{MANIFEST}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(body, f, indent=2)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path / MANIFEST)
    _fsync_dir(path)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def init_recovery(
    path: str | os.PathLike[str], flow: str, parts: int, start_after: Mapping[str, int] | None = None
) -> Path:
    """Create a recovery store for ``flow`` (its ``Dataflow`` id, e.g. ``tidstream-ingest``)
    with ``parts`` partitions, and its manifest. ``path`` must not exist or be empty.
    ``start_after``: input partition -> stream sequence to start after (see
    :func:`start_after`)."""
    from bytewax.recovery import init_db_dir

    p = Path(path)
    if p.exists() and any(p.iterdir()):
        raise RecoveryError(f"{p} is not empty: a recovery store is created in a new or empty folder")
    p.mkdir(parents=True, exist_ok=True)
    init_db_dir(p, parts)
    _write_manifest(p, flow, parts, [f"part-{i}.sqlite3" for i in range(parts)], start_after)
    return p


def _read_part(db: Path) -> tuple[int, int, int | None, set[str]]:
    """(part index, part count, last commit epoch, step ids with state) of a partition;
    raises ``ValueError`` with the reason when it is not a sound Bytewax partition."""
    if db.stat().st_size == 0:
        raise ValueError("empty file (0 bytes)")
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    except sqlite3.Error as e:
        raise ValueError(f"cannot be opened as SQLite: {e}") from None
    try:
        check = con.execute("PRAGMA quick_check").fetchall()
        if check != [("ok",)]:
            raise ValueError(f"SQLite integrity check failed: {'; '.join(str(r[0]) for r in check[:3])}")
        tables = {r[0] for r in con.execute("select name from sqlite_master where type='table'")}
        missing = {"parts", "snaps", "commits"} - tables
        if missing:
            raise ValueError(f"not a Bytewax recovery partition (no table {', '.join(sorted(missing))})")
        rows = con.execute("select part_index, part_count from parts").fetchall()
        if len(rows) != 1:
            raise ValueError(f"not a Bytewax recovery partition ({len(rows)} rows in its parts table)")
        commit = con.execute("select max(commit_epoch) from commits").fetchone()[0]
        steps = {r[0] for r in con.execute("select distinct step_id from snaps")}
        return int(rows[0][0]), int(rows[0][1]), commit, steps
    except sqlite3.Error as e:
        raise ValueError(f"not a readable SQLite database ({e})") from None
    finally:
        con.close()


def check_recovery(path: str | os.PathLike[str], flow: str) -> RecoveryStatus:
    """Check the recovery store at ``path`` for ``flow``; never raises for a bad store
    (the problems are listed in the status)."""
    p = Path(path)
    st = RecoveryStatus(p, flow)
    if not p.is_dir():
        st.problems.append(
            "the folder does not exist" if not p.exists() else "the path is a file, not a folder"
        )
        return st
    man_path = p / MANIFEST
    manifest: dict | None = None
    if man_path.exists():
        try:
            manifest = json.loads(man_path.read_text(encoding="utf-8"))
            if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), list):
                raise ValueError("not a manifest object")
        except (ValueError, OSError) as e:
            st.problems.append(f"{MANIFEST} is unreadable ({e})")
            manifest = None
    st.files = sorted(f.name for f in p.glob("part-*.sqlite3"))
    if manifest is not None:
        if manifest.get("flow") != flow:
            st.problems.append(
                f"this folder belongs to flow {manifest.get('flow')!r}, not {flow!r} "
                "(a recovery folder of another flow was given)"
            )
        st.parts = manifest.get("parts")
        for name in manifest["files"]:
            if name not in st.files:
                st.problems.append(
                    f"partition {name} is missing (the manifest lists {len(manifest['files'])})"
                )
        for name in st.files:
            if name not in manifest["files"]:
                st.problems.append(f"partition {name} is not in the manifest")
    elif not st.files:
        st.problems.append(
            "no recovery store here (no partitions, no manifest): the store was lost or never made. "
            "A new flow's store is made by `tidstream run` in a folder that does not exist yet"
        )
        return st
    counts: set[int] = set()
    indexes: dict[int, str] = {}
    foreign: set[str] = set()
    for name in st.files:
        try:
            idx, count, commit, steps = _read_part(p / name)
        except (ValueError, OSError) as e:
            st.problems.append(f"partition {name}: {e}")
            continue
        if name != f"part-{idx}.sqlite3":
            st.problems.append(f"partition {name} holds partition index {idx}")
        counts.add(count)
        indexes[idx] = name
        st.commits[name] = commit
        foreign |= {s for s in steps if not s.startswith(flow + ".")}
    if len(counts) > 1:
        st.problems.append(f"partitions disagree on their count: {sorted(counts)}")
    elif counts:
        count = counts.pop()
        if st.parts is not None and count != st.parts:
            st.problems.append(f"partitions say {count} partitions, the manifest {st.parts}")
        st.parts = count
    if foreign:
        st.problems.append(f"state of another flow's steps: {', '.join(sorted(foreign)[:4])}")
    if manifest is None and not st.problems:
        st.adoptable = True
    return st


def recovery_dir_from_argv(argv: Sequence[str] | None = None) -> Path | None:
    """The ``-r/--recovery-directory`` given to ``python -m bytewax.run`` (or
    ``BYTEWAX_RECOVERY_DIRECTORY``), ``None`` when the flow runs without recovery."""
    args = list(sys.argv if argv is None else argv)
    for i, a in enumerate(args):
        if a in ("-r", "--recovery-directory") and i + 1 < len(args):
            return Path(args[i + 1])
        if a.startswith("--recovery-directory="):
            return Path(a.split("=", 1)[1])
        if a.startswith("-r") and len(a) > 2 and not a.startswith("--"):
            return Path(a[2:])
    env = os.environ.get("BYTEWAX_RECOVERY_DIRECTORY")
    return Path(env) if env else None


def guard(flow: str, argv: Sequence[str] | None = None) -> None:
    """At the top of a dataflow module: check the recovery store this process was
    started with, exit with the error (and the way out) when it cannot be resumed
    from. A sound store without a manifest (made before manifests) is adopted."""
    rec = recovery_dir_from_argv(argv)
    if rec is None:
        return
    st = check_recovery(rec, flow)
    if st.adoptable:
        _write_manifest(rec, flow, st.parts or len(st.files), st.files)
        log.info("recovery store %s adopted: manifest written", rec, extra={"recovery": str(rec)})
        return
    if not st.ok:
        log.error("%s", st.error(), extra={"recovery": str(rec)})
        raise SystemExit(f"tidstream: {st.error()}")


def start_after(argv: Sequence[str] | None = None) -> dict[str, int]:
    """In a dataflow module: the input positions a reset recorded in the manifest of
    this process's store (partition -> stream sequence to start after; empty when none).
    The source uses them only for partitions without a snapshot of their own."""
    rec = recovery_dir_from_argv(argv)
    if rec is None or not (rec / MANIFEST).exists():
        return {}
    body = json.loads((rec / MANIFEST).read_text(encoding="utf-8"))
    return {str(k): int(v) for k, v in (body.get("start_after") or {}).items()}


def ingest_positions(settings: Any, window: int | None = None) -> dict[str, int]:
    """Per raw partition, the raw-stream sequence up to which every uplink has its
    output (readings or a dead letter): the ingest flow's position, rebuilt from its
    output streams for a reset.

    The ingest flow writes one batch of a partition at a time and waits for all its
    PubAcks before the next, but the outputs *within* a batch are not in raw order.
    So the last ``window`` outputs of the readings and dead-letter streams are read
    (default: 3 batches of every partition), and for each partition its raw messages
    from the oldest of those on: the position is the last one before the first raw
    message without an output. Outputs older than the window belong to batches that
    were complete. After such a reset, what is read again is at most the outputs of one
    unfinished batch per partition (published again under the same ids: dropped within
    the duplicate window, duplicated after it); nothing is skipped. A partition with
    no output in the window starts from the beginning of the window."""
    import asyncio

    import orjson
    from nats.js.api import ConsumerConfig, DeliverPolicy

    from .nats.connect import connect

    parts = [str(p) for p in range(settings.streams.partitions)]
    window = window or 3 * settings.batch_size * len(parts) + 1000

    async def go() -> dict[str, int]:
        nc = await connect(settings.nats)
        try:
            js = nc.jetstream()
            done: set[int] = set()
            for stream in (settings.streams.readings, settings.streams.dlq):
                state = (await js.stream_info(stream)).state
                first = max(state.first_seq, state.last_seq - window + 1, 1)
                if not state.messages:
                    continue
                sub = await js.subscribe(
                    ">",
                    stream=stream,
                    ordered_consumer=True,
                    config=ConsumerConfig(
                        deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=first
                    ),
                )
                try:
                    for _ in range(state.last_seq - first + 1):
                        m = await sub.next_msg(timeout=10)
                        try:
                            body = orjson.loads(m.data)
                        except orjson.JSONDecodeError:
                            body = None
                        if isinstance(body, dict) and isinstance(body.get("raw_seq"), int):
                            done.add(body["raw_seq"])
                        if m.metadata.num_pending == 0:
                            break
                finally:
                    await sub.unsubscribe()
            if not done:
                return {}
            low = min(done)
            raw = (await js.stream_info(settings.streams.raw)).state
            out: dict[str, int] = {}
            for p in parts:
                sub = await js.subscribe(
                    settings.subjects.raw_partition(p),
                    stream=settings.streams.raw,
                    ordered_consumer=True,
                    config=ConsumerConfig(
                        deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=max(low, raw.first_seq)
                    ),
                )
                position = low - 1
                try:
                    while True:
                        try:
                            m = await sub.next_msg(timeout=3)
                        except (asyncio.TimeoutError, TimeoutError):  # nothing (more) in the partition
                            break
                        seq = m.metadata.sequence.stream
                        if seq not in done:
                            break
                        position = seq
                        if m.metadata.num_pending == 0:
                            break
                finally:
                    await sub.unsubscribe()
                out[p] = position
            return {p: v for p, v in out.items() if v > 0}
        finally:
            await nc.close()

    return asyncio.run(go())


def reset_recovery(
    path: str | os.PathLike[str],
    flow: str,
    parts: int | None = None,
    start_after: Mapping[str, int] | None = None,
) -> Path | None:
    """Move the store at ``path`` aside (``<path>.broken-<UTC time>``, kept for
    inspection) and create a fresh one for ``flow`` with ``parts`` partitions (default:
    as many as the old store had, else 4), starting its inputs after ``start_after``
    (see :func:`ingest_positions`; default: from the beginning). Returns where the old
    store went (None when there was nothing to move)."""
    p = Path(path)
    moved: Path | None = None
    if parts is None:
        st = check_recovery(p, flow)
        parts = st.parts or len(st.files) or int(os.environ.get("TIDSTREAM_RECOVERY_PARTS", "4"))
    if p.exists():
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        moved = p.with_name(f"{p.name}.broken-{stamp}")
        n = 1
        while moved.exists():
            n += 1
            moved = p.with_name(f"{p.name}.broken-{stamp}-{n}")
        os.replace(p, moved)
    init_recovery(p, flow, parts, start_after)
    return moved
