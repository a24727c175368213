"""Alerts and the twin: readings -> forecasts -> alerts on tid.alerts.<kind>.<commune>.<device>,
twin entries in KV <prefix>_twin and a Parquet twin snapshot.

Run:  python -m bytewax.run dataflows/alerts.py -r out/recovery/alerts -s 5 -b 0
      (or `tidstream run alerts`). Thresholds per container kind in [alerts]; the twin
      snapshot path and period: twin_snapshot_path, twin_snapshot_interval_s.
"""

import os

# No flow calls BLAS: one OpenBLAS thread, not one per core spinning after numpy's import
# (~0.1 s of CPU per process start). Set before numpy loads; a value in the environment wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import bytewax.operators as op
import orjson
from bytewax.dataflow import Dataflow
from tidstream import metrics, recovery
from tidstream.config import load_settings
from tidstream.flow.alerts import AlertLogic, ForecastLogic, TwinSnapshotLogic, twin_publish
from tidstream.nats.jetstream import JetStreamSink, JetStreamSource, Publish

settings = load_settings()
metrics.start_flow(settings, "alerts")  # logs as configured; /metrics + /healthz when metrics_port >= 0
recovery.guard("tidstream-alerts")  # a lost or damaged recovery store stops here, never a fresh start
defaults, by_kind = settings.alert_thresholds()

flow = Dataflow("tidstream-alerts")

readings = op.input(
    "readings",
    flow,
    JetStreamSource(
        settings.nats,
        settings.streams.readings,
        ["0"],
        settings.subjects.readings,
        batch_size=settings.batch_size,
        stop_at_end=os.environ.get("TIDSTREAM_STOP_AT_END") == "1",
        # This flow consumes slower than the server delivers (forecast + rules + KV put per
        # reading): a larger local queue keeps it busy through a backlog. Nothing is dropped
        # either way: the source sets no pending-count limit on the nats-py subscription,
        # so in-flight messages are bounded by the server's flow-control window.
        high_water=50_000,
    ),
)
# RawMsg(part="0", seq, subject, data=reading JSON, ...), readings-stream order

parsed = op.map("parse", readings, lambda m: orjson.loads(m.data))
# reading dict (READING_RECORD_SCHEMA keys)

by_kind_key = op.key_on("by-kind", parsed, lambda r: r.get("container_kind") or "")
# (container_kind, reading dict): one Forecaster per kind

forecast = op.stateful("forecast", by_kind_key, lambda state: ForecastLogic(state, defaults, by_kind))
# (container_kind, reading dict + _forecast (Forecaster.step dict | None) + _hours_to_full)

by_device = op.map("by-device", forecast, lambda kv: (kv[1]["device_id"], kv[1]))
# (device_id, reading dict + forecast): one key per device, routed to one worker

outs = op.stateful(
    "alert-rules", by_device, lambda state: AlertLogic(state, defaults, by_kind, settings.subjects)
)
# (device_id, Publish(tid.alerts.<kind>.<commune>.<device>, alert JSON, alert id) | TwinUpdate)

split = op.branch("alert-or-twin", outs, lambda kv: isinstance(kv[1], Publish))
alerts = split.trues
# (device_id, alert Publish)

twin_kv = op.map("twin-kv", split.falses, lambda kv: (kv[0], twin_publish(kv[1], settings.subjects)))
# (device_id, Publish($KV.<prefix>_twin.<device>, twin entry JSON, t:<device>:<reading id>))

op.output(
    "publish", op.merge("alerts+twin", alerts, twin_kv), JetStreamSink(settings.nats, ["0", "1", "2", "3"])
)
# JetStream TID_ALERTS (Nats-Msg-Id = a:<device>:<kind>:<opening reading>:<state>) and KV <prefix>_twin

entries = op.map("one-key", split.falses, lambda kv: ("twin", kv[1].entry))
# ("twin", twin entry dict)

op.stateful(
    "twin-snapshot",
    entries,
    lambda state: TwinSnapshotLogic(state, settings.twin_snapshot_path, settings.twin_snapshot_interval_s),
)
# nothing: writes twin_snapshot_path (Parquet, TWIN_SCHEMA) atomically
