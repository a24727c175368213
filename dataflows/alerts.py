"""Alerts: readings -> raised / resolved / event alerts on tid.alerts.<kind>.<commune>.<device>.

Run:  python -m bytewax.run dataflows/alerts.py -r out/recovery/alerts -s 5 -b 0
      (or `tidstream run alerts`). Thresholds per container kind in [alerts].
"""

import os

import bytewax.operators as op
import orjson
from bytewax.dataflow import Dataflow
from tidstream.config import load_settings
from tidstream.flow.alerts import AlertLogic
from tidstream.nats.jetstream import JetStreamSink, JetStreamSource

settings = load_settings()
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
    ),
)
# RawMsg(part="0", seq, subject, data=reading JSON, ...), readings-stream order

parsed = op.map("parse", readings, lambda m: orjson.loads(m.data))
# reading dict (READING_RECORD_SCHEMA keys)

by_device = op.key_on("by-device", parsed, lambda r: r["device_id"])
# (device_id, reading dict): one key per device, routed to one worker

alerts = op.stateful(
    "alert-rules", by_device, lambda state: AlertLogic(state, defaults, by_kind, settings.subjects)
)
# (device_id, Publish(tid.alerts.<kind>.<commune>.<device>, alert JSON, alert id))

op.output("publish", alerts, JetStreamSink(settings.nats, ["0", "1", "2", "3"]))
# JetStream TID_ALERTS, Nats-Msg-Id = a:<device>:<kind>:<opening reading>:<state>
