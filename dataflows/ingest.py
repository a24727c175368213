"""Ingest: raw uplinks -> readings and dead letters, effectively once.

Run:  python -m bytewax.run dataflows/ingest.py -r out/recovery/ingest -s 5 -b 0
      (or `tidstream run ingest`). Configuration: TIDSTREAM_CONFIG / TIDSTREAM_* env.
Scale out: one worker per process, `-i <k> -a "h0:2101;h1:2101;..."`; the raw stream's
partitions are shared among the workers.
"""

import os

# No flow calls BLAS: one OpenBLAS thread, not one per core spinning after numpy's import
# (~0.1 s of CPU per process start). Set before numpy loads; a value in the environment wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from tidstream import metrics, recovery
from tidstream.config import load_settings
from tidstream.flow.guards import TimeWindow, load_fcnt_state
from tidstream.flow.ingest import Ingestor
from tidstream.nats.jetstream import JetStreamSink, JetStreamSource
from tidstream.registry import load_registry

settings = load_settings()
metrics.start_flow(settings, "ingest")  # logs as configured; /metrics + /healthz when metrics_port >= 0
recovery.guard("tidstream-ingest")  # a lost or damaged recovery store stops here, never a fresh start
if not settings.registry:
    raise SystemExit("ingest needs a device registry: set [registry] in the config or TIDSTREAM_REGISTRY")
parts = [str(p) for p in range(settings.streams.partitions)]
subjects = settings.subjects

flow = Dataflow("tidstream-ingest")

raw = op.input(
    "raw-uplinks",
    flow,
    JetStreamSource(
        settings.nats,
        settings.streams.raw,
        parts,
        subjects.prefix + ".raw.{}.>",
        batch_size=settings.batch_size,
        stop_at_end=os.environ.get("TIDSTREAM_STOP_AT_END") == "1",
        start_after=recovery.start_after(),  # set by `tidstream recovery reset ingest`
        columnar=True,  # Rust data path: one RawBatch per consumer batch, read by the step in Rust
    ),
)
# RawMsg(part, seq, subject, data, stored_ns, headers), in batches of up to batch_size;
# on the Rust data path RawBatch(part, columns, n): up to batch_size messages, columnar

ingestor = Ingestor(
    load_registry(settings.registry),
    subjects,
    settings.streams.raw,
    settings.max_message_bytes,
    # frame counters survive restarts: rebuilt from each device's last reading
    fcnt_guard=load_fcnt_state(settings),
    time_window=TimeWindow(future_ns=settings.max_future_s * 1_000_000_000),
)
out = op.flat_map_batch("decode", raw, ingestor.batches)
# (raw partition, PubBatch): one item per partition per batch, holding that partition's
# readings and dead letters (subject, json bytes, msg id, headers) in frame order
# (malformed, unknown device, fcnt_regression, implausible_time, ...: docs/SECURITY.md)

sink = JetStreamSink(
    settings.nats, parts, atomic=settings.streams.atomic_publish, pipeline=settings.nats.pipeline_sink
)
op.output("publish", out, sink)
# JetStream: tid.readings.<commune>.<device>, tid.dlq.<reason>; one PubAck per message, or
# with streams.atomic_publish one per atomic batch of up to 1,000 (per message on a refusal
# or a replay); acked before the epoch commits (pipeline_sink: one write per partition in
# flight while the next batch is decoded, confirmed at the latest at the epoch's snapshot)
