"""The export step: readings (JSON messages from the readings stream) to a Parquet
dataset partitioned by day, hive style (``date=YYYY-MM-DD/``).

**Files are named by the block of readings-stream sequences they hold**
(``readings-<first>-<last>.parquet``, a fixed block of ``block_size`` sequences), and are
written atomically (temporary file + rename in the same folder). A replay after a crash
rebuilds the same block and rewrites the same file names with the same rows, so readers
never see a reading twice and never see a partial file (temporary file fsynced, renamed,
folder fsynced). A write that fails (disk full, folder not writable or not a folder)
stops the flow with one clear error line; started again once the folder is usable, it
resumes from its last snapshot. A block not yet complete is
rewritten at every Bytewax snapshot (its rows are kept in the snapshot's file, not in
memory only).
"""

from __future__ import annotations

import base64
import logging
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from bytewax.outputs import FixedPartitionedSink, StatefulSinkPartition

from .. import __version__, metrics
from ..exceptions import ConnectorError
from ..names import safe_path_component
from ..nats.jetstream import RawMsg
from ..schema import READING_RECORD_SCHEMA

_log = logging.getLogger("tidstream.export")

__all__ = ["ExportItem", "ParquetExportSink", "block_file_name", "from_raw", "records_to_table"]


class ExportItem(tuple):
    """``(block_seq, order, data)``: the sequence that picks the file block, a sort key
    unique per reading, and the reading JSON."""

    __slots__ = ()

    def __new__(cls, block_seq: int, order: tuple[int, int], data: bytes) -> ExportItem:
        return tuple.__new__(cls, (block_seq, order, data))


def from_raw(m: RawMsg) -> ExportItem:
    """A message of the readings stream: blocks and order by its stream sequence."""
    return ExportItem(m.seq, (m.seq, 0), m.data)


_TS = {f.name for f in READING_RECORD_SCHEMA if pa.types.is_timestamp(f.type)}


def block_file_name(block: int, block_size: int) -> str:
    """File name of a sequence block: ``readings-<first seq>-<last seq>.parquet``."""
    first = block * block_size + 1
    return f"readings-{first:012d}-{first + block_size - 1:012d}.parquet"


def records_to_table(records: Sequence[dict[str, Any]]) -> pa.Table:
    """Reading records (dicts as published) to a table with READING_RECORD_SCHEMA."""
    cols = []
    for f in READING_RECORD_SCHEMA:
        values = [r.get(f.name) for r in records]
        if f.name in _TS:
            cols.append(pa.array(values, pa.string()).cast(f.type))
        else:
            cols.append(pa.array(values, f.type))
    return pa.Table.from_arrays(cols, schema=READING_RECORD_SCHEMA)


_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z")
_REQUIRED = [f.name for f in READING_RECORD_SCHEMA if not f.nullable]
#: what pyarrow raises for a value that does not fit its column
_CONVERT_ERRORS = (
    pa.ArrowInvalid,
    pa.ArrowTypeError,
    pa.ArrowNotImplementedError,
    TypeError,
    ValueError,
    OverflowError,
)


def record_problem(r: Any) -> str | None:
    """Why a reading record cannot be exported (``None`` when it can): not an object,
    a required field missing, or a time that is not RFC 3339 UTC."""
    if not isinstance(r, dict):
        return "not a JSON object"
    for k in _REQUIRED:
        if r.get(k) is None:
            return f"missing {k}"
    for k in _TS:
        v = r.get(k)
        if v is not None and not (isinstance(v, str) and _RFC3339.fullmatch(v)):
            return f"{k} is not an RFC 3339 UTC time"
    return None


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _atomic_write(path: Path, write: Any) -> None:
    """Write ``path`` so that readers see the old file or the whole new one, never a
    part, also across a power loss: ``write(file)`` fills a hidden temporary file in the
    same folder (``.<name>.tmp-<pid>``: the dataset's readers skip hidden files), which
    is fsynced, renamed over ``path``, and the folder fsynced. On any error the
    temporary file is removed and the error raised."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise


#: what writing a file can raise (pyarrow wraps some OS errors in its own types)
_WRITE_ERRORS = (OSError, pa.ArrowException)


class _ExportPartition(StatefulSinkPartition[ExportItem, dict]):
    def __init__(
        self, root: Path, block_size: int, source_stream: str, resume: dict | None, seq_kind: str
    ) -> None:
        self.root = root
        self.seq_kind = seq_kind
        self.block_size = block_size
        self.source_stream = source_stream
        self.block: int | None = None
        # order key -> reading JSON (bytes: a third of a parsed dict's memory)
        self.rows: dict[tuple[int, int], bytes] = {}
        self.files_written = 0
        self.rows_written = 0
        #: readings of the current block quarantined in ``_rejected/``
        self.rejected = 0
        try:
            root.mkdir(parents=True, exist_ok=True)
            if not root.is_dir():
                raise NotADirectoryError(f"{root} is not a folder")
        except OSError as e:
            raise self._stop(f"export folder {root} cannot be created: {e}") from e
        # Temporary files of a process killed in the middle of a write (never read: hidden).
        for stale in [*root.glob("date=*/.*.tmp-*"), *root.glob("_rejected/.*.tmp-*")]:
            try:
                stale.unlink()
            except OSError:
                pass
        if resume and resume.get("block") is not None:
            self.block = int(resume["block"])
            self._reload(self.block)

    def _reload(self, block: int) -> None:
        """Read back the files of a block already written: the partial block of the last
        snapshot, or, when the export reads its stream again from an older position (a
        recovery reset, docs/OPERATIONS.md), a block written before. The block is then
        rewritten with the union (rows keyed by their order key): readings that expired
        from the stream since are kept, none is written twice."""
        name = block_file_name(block, self.block_size)
        for f in sorted(self.root.glob(f"date=*/{name}")):
            t = pq.read_table(f, schema=READING_RECORD_SCHEMA)
            meta = pq.read_metadata(f).metadata or {}
            keys = orjson.loads(meta.get(b"tidstream.order_keys", b"[]"))
            recs = t.to_pylist()
            for key, r in zip(keys, recs):
                for k in _TS:
                    if r[k] is not None:
                        r[k] = r[k].strftime("%Y-%m-%dT%H:%M:%S.%fZ")
                self.rows[(int(key[0]), int(key[1]))] = orjson.dumps(r)
        # and the quarantined ones, so that the rewritten block keeps them too
        rejected = self.root / "_rejected" / name.replace(".parquet", ".jsonl")
        if rejected.exists():
            for line in rejected.read_bytes().splitlines():
                q = orjson.loads(line)
                self.rows[(int(q["order"][0]), int(q["order"][1]))] = base64.b64decode(q["original_base64"])

    def write_batch(self, items: list[ExportItem]) -> None:
        metrics.EXPORT_ROWS.inc(len(items))
        for block_seq, order, data in items:
            b = (block_seq - 1) // self.block_size
            if self.block is None:
                self.block = b
                self._reload(b)
            if b != self.block:
                self._flush()
                self.rows.clear()
                self.block = b
                self.rejected = 0
                self._reload(b)
            self.rows[order] = bytes(data)

    def _flush(self) -> None:
        if self.block is None or not self.rows:
            return
        name = block_file_name(self.block, self.block_size)
        seqs, table = self._valid_records(name)
        if not seqs:
            return
        day = pa.compute.strftime(table.column("measured_at"), format="%Y-%m-%d").to_pylist()
        by_day: dict[str, list[int]] = {}
        for i, d in enumerate(day):
            by_day.setdefault(d, []).append(i)
        for d, idx in sorted(by_day.items()):
            part = table.take(pa.array(idx))
            part_seqs = [seqs[i][0] for i in idx]
            meta = {
                b"tidstream.version": __version__.encode(),
                b"tidstream.codec_version": __version__.encode(),
                b"tidstream.schema": b"reading-record/1",
                b"tidstream.source_stream": self.source_stream.encode(),
                b"tidstream.seq_block": f"{self.block * self.block_size + 1}-{(self.block + 1) * self.block_size}".encode(),
                b"tidstream.seq_kind": self.seq_kind.encode(),
                b"tidstream.seq_first": str(part_seqs[0]).encode(),
                b"tidstream.seq_last": str(part_seqs[-1]).encode(),
                b"tidstream.raw_seq_first": str(min(part.column("raw_seq").to_pylist())).encode(),
                b"tidstream.raw_seq_last": str(max(part.column("raw_seq").to_pylist())).encode(),
                b"tidstream.order_keys": orjson.dumps([seqs[i] for i in idx]),
            }
            part = part.replace_schema_metadata({**(READING_RECORD_SCHEMA.metadata or {}), **meta})
            folder = self.root / safe_path_component(f"date={d}")  # never outside root
            final = folder / name
            try:
                _atomic_write(final, lambda f, part=part: pq.write_table(part, f, compression="zstd"))
            except _WRITE_ERRORS as e:
                raise self._stop(f"cannot write {final}: {e}") from e
            self.files_written += 1
            metrics.EXPORT_FILES.inc()
            metrics.EXPORT_LAST_WRITE.set_to_current_time()
            _log.debug(
                "wrote %s (%d rows)", final, part.num_rows, extra={"file": str(final), "rows": part.num_rows}
            )
        self.rows_written = len(seqs)

    def _valid_records(self, name: str) -> tuple[list[tuple[int, int]], pa.Table]:
        """The block's readings that fit the Parquet schema, in order. The others (only a
        client with publish rights on the readings subjects can make them: docs/SECURITY.md)
        are quarantined, not dropped: ``_rejected/readings-<first>-<last>.jsonl`` under the root, one
        line per message with the reason and the original bytes (base64), rewritten with
        the block. The export goes on (a poison message must not stop it for ever)."""
        good: list[tuple[tuple[int, int], dict[str, Any]]] = []
        bad: list[tuple[tuple[int, int], str]] = []
        for key in sorted(self.rows):
            try:
                r = orjson.loads(self.rows[key])
            except orjson.JSONDecodeError:
                bad.append((key, "not JSON"))
                continue
            why = record_problem(r)
            if why:
                bad.append((key, why))
            else:
                good.append((key, r))
        table = None
        try:
            table = records_to_table([r for _, r in good])
        except _CONVERT_ERRORS:
            # slow path, hostile input only: find the rows that do not convert
            ok = []
            for key, r in good:
                try:
                    records_to_table([r])
                    ok.append((key, r))
                except _CONVERT_ERRORS as e:
                    bad.append((key, f"does not fit the reading schema: {str(e)[:200]}"))
            good = ok
            table = records_to_table([r for _, r in good])
        rejected = self.root / "_rejected" / name.replace(".parquet", ".jsonl")
        if bad:
            lines = b"".join(
                orjson.dumps(
                    {
                        "order": list(key),
                        "reason": why,
                        "source_stream": self.source_stream,
                        "original_base64": base64.b64encode(self.rows[key]).decode(),
                    }
                )
                + b"\n"
                for key, why in sorted(bad)
            )
            try:
                _atomic_write(rejected, lambda f: f.write(lines))
            except _WRITE_ERRORS as e:
                raise self._stop(f"cannot write {rejected}: {e}") from e
            if len(bad) > self.rejected:
                metrics.EXPORT_REJECTED.inc(len(bad) - self.rejected)
            _log.warning(
                "%d readings of block %s quarantined in %s",
                len(bad),
                name,
                rejected,
                extra={"rejected": len(bad)},
            )
            self.rejected = len(bad)
        return [k for k, _ in good], table

    @staticmethod
    def _stop(what: str) -> ConnectorError:
        """The error that stops the export (disk full, folder not writable, ...): logged
        as one clear line, then raised so the process exits non-zero."""
        msg = (
            f"{what}. The export stops here (no partial file is left where readers look); "
            "once the folder is writable and has space again, start it again: it resumes "
            "from its last snapshot and rewrites the same files (docs/OPERATIONS.md, 'Export folder')"
        )
        _log.error("%s", msg)
        return ConnectorError(msg)

    def snapshot(self) -> dict:
        self._flush()
        return {"block": self.block}

    def close(self) -> None:
        self._flush()


@dataclass
class ParquetExportSink(FixedPartitionedSink[ExportItem, dict]):
    """Write readings to ``root`` (one partition: items keyed ``"0"``)."""

    root: str
    source_stream: str
    block_size: int = 100_000
    #: What the file sequence ranges count: "readings" (readings-stream sequence, the
    #: export flow) or "raw" (raw-stream sequence, the replay flow).
    seq_kind: str = "readings"

    def list_parts(self) -> list[str]:
        return ["0"]

    def part_fn(self, item_key: str) -> int:
        return 0

    def build_part(self, step_id: str, for_part: str, resume_state: dict | None) -> _ExportPartition:
        return _ExportPartition(
            Path(self.root), self.block_size, self.source_stream, resume_state, self.seq_kind
        )


def read_dataset(root: str | os.PathLike[str]) -> pa.Table:
    """Read the whole export (for tests and tools): hive partitions, hidden files skipped."""
    import pyarrow.dataset as ds

    files = sorted(str(p) for p in Path(root).glob("date=*/readings-*.parquet"))
    if not files:
        return READING_RECORD_SCHEMA.empty_table()
    return ds.dataset(files, schema=READING_RECORD_SCHEMA, format="parquet").to_table()


def iter_ids(table: pa.Table) -> Iterable[str]:
    """Reading ids in a table."""
    return table.column("reading_id").to_pylist()
