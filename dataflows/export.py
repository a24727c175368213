"""Export: readings stream -> Parquet dataset, hive-partitioned by day, effectively once.

Run:  python -m bytewax.run dataflows/export.py -r out/recovery/export -s 5 -b 0
      (or `tidstream run export`). Files are named by readings-stream sequence block and
      written atomically; a replay rewrites the same files.
"""

import os

# No flow calls BLAS: one OpenBLAS thread, not one per core spinning after numpy's import
# (~0.1 s of CPU per process start). Set before numpy loads; a value in the environment wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from tidstream import metrics, recovery
from tidstream.config import load_settings
from tidstream.flow.export import ParquetExportSink, from_raw
from tidstream.nats.jetstream import JetStreamSource

settings = load_settings()
metrics.start_flow(settings, "export")  # logs as configured; /metrics + /healthz when metrics_port >= 0
recovery.guard("tidstream-export")  # a lost or damaged recovery store stops here, never a fresh start

flow = Dataflow("tidstream-export")

readings = op.input(
    "readings",
    flow,
    JetStreamSource(
        settings.nats,
        settings.streams.readings,
        ["0"],
        settings.subjects.readings,  # one partition: the whole stream, in order
        batch_size=settings.batch_size,
        stop_at_end=os.environ.get("TIDSTREAM_STOP_AT_END") == "1",
    ),
)
# RawMsg(part="0", seq=readings-stream seq, subject, data=reading JSON, ...)

items = op.map("to-export-item", readings, from_raw)
# ExportItem(block_seq=readings seq, order=(seq, 0), data=reading JSON)

keyed = op.key_on("one-writer", items, lambda _: "0")
# ("0", ExportItem)

op.output(
    "parquet",
    keyed,
    ParquetExportSink(settings.export_dir, settings.streams.readings, settings.export_block_size),
)
# <export_dir>/date=YYYY-MM-DD/readings-<first seq>-<last seq>.parquet
