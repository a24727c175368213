"""Replay: re-decode the raw stream between two times into a fresh Parquet export,
e.g. after a decoder fix, without touching the live flows (nothing is published: the
readings go straight to files; the live consumers and streams are not disturbed).

Run:  tidstream run replay --from 2026-11-01T00:00:00Z --to 2026-11-08T00:00:00Z --out out/replay
      (sets TIDSTREAM_REPLAY_FROM / _TO / _OUT and runs this file until the window ends).
Files are named by raw-stream sequence block: a second replay of the same window
rewrites the same files.
"""

import os

# No flow calls BLAS: one OpenBLAS thread, not one per core spinning after numpy's import
# (~0.1 s of CPU per process start). Set before numpy loads; a value in the environment wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from tidstream import metrics, recovery
from tidstream.config import load_settings
from tidstream.flow.export import ParquetExportSink
from tidstream.flow.ingest import Ingestor
from tidstream.flow.replay import readings_only, time_ns
from tidstream.nats.jetstream import JetStreamSource
from tidstream.registry import load_registry

settings = load_settings()
metrics.start_flow(settings, "replay")  # logs as configured; /metrics + /healthz when metrics_port >= 0
recovery.guard("tidstream-replay")  # a lost or damaged recovery store stops here, never a fresh start
parts = [str(p) for p in range(settings.streams.partitions)]

flow = Dataflow("tidstream-replay")

raw = op.input(
    "raw-window",
    flow,
    JetStreamSource(
        settings.nats,
        settings.streams.raw,
        parts,
        settings.subjects.prefix + ".raw.{}.>",
        batch_size=settings.batch_size,
        stop_at_end=True,
        start_ns=time_ns(os.environ.get("TIDSTREAM_REPLAY_FROM")),
        end_ns=time_ns(os.environ.get("TIDSTREAM_REPLAY_TO")),
    ),
)
# RawMsg(part, seq, subject, data, stored_ns, headers) stored in [from, to]

decoded = op.flat_map_batch(
    "decode",
    raw,
    Ingestor(
        load_registry(settings.registry), settings.subjects, settings.streams.raw, settings.max_message_bytes
    ),
)
# (partition, Publish): readings and dead letters, as the live ingest makes them

items = op.flat_map("readings-only", decoded, readings_only)
# ExportItem(block_seq=raw seq, order=(raw seq, index in frame), data=reading JSON)

keyed = op.key_on("one-writer", items, lambda _: "0")
# ("0", ExportItem)

op.output(
    "parquet",
    keyed,
    ParquetExportSink(
        os.environ.get("TIDSTREAM_REPLAY_OUT", "out/replay"),
        settings.streams.raw,
        settings.export_block_size,
        seq_kind="raw",
    ),
)
# <out>/date=YYYY-MM-DD/readings-<first raw seq>-<last raw seq>.parquet
