"""The alerting steps: the fill forecaster, the per-device alert rules and the twin.

Three stateful steps, each snapshotted by Bytewax recovery:

* :class:`ForecastLogic`, keyed by container kind: ONE :class:`tidstream.Forecaster`
  per kind (its threshold is the kind's ``overflow_fill``), fed one reading at a time
  (:meth:`~tidstream.Forecaster.step`), snapshot = ``Forecaster.to_bytes()``. Per kind
  and not per device because the forecaster learns fleet-level calibration tables
  (about 200 kB) shared by all its containers (about 0.9 kB each); one reading at a
  time because then its state, and so every forecast and alert id, depends on the
  reading sequence alone, not on how the stream was cut into micro-batches (a replay
  after a crash gives the same ids). Measured: docs/TWIN.md.
* :class:`AlertLogic`, keyed by device: :class:`tidstream.alerts.DeviceAlerts` (rules
  depend on event data only; the ``silent`` timer's alert id comes from the last
  reading) and the device's twin entry (:func:`tidstream.twin.twin_entry`).
* :class:`TwinSnapshotLogic`, one key: the latest twin entry of every device, written
  as one Parquet file every ``twin_snapshot_interval_s`` and at the end of the input,
  atomically replaced.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from typing import Any, NamedTuple

import orjson
from bytewax.operators import StatefulLogic

from .. import metrics
from ..alerts import Alert, AlertThresholds, DeviceAlerts, thresholds_for
from ..config import Subjects
from ..forecast import Forecaster
from ..nats.jetstream import Publish
from ..twin import twin_entry, twin_silenced, write_snapshot

__all__ = [
    "AlertLogic",
    "DeviceState",
    "ForecastLogic",
    "TwinSnapshotLogic",
    "TwinUpdate",
    "alert_publish",
    "twin_publish",
]

#: Longest delay asked of Bytewax for a key's next wake-up (s). Bytewax re-arms the
#: operator's timer at EVERY activation with the soonest ``notify_at`` of all its keys,
#: and Timely keeps each of those requests in a queue until its moment passes: with the
#: ``silent`` deadlines hours ahead, that queue grew by one entry per activation for
#: hours (+10 % RSS in a one-hour soak; heaptrack: ``Activations::activate_after``,
#: docs/RELIABILITY.md). Capping the delay bounds the queue to about one minute of
#: activations; a device whose real deadline is further away is woken once a minute,
#: finds it has not passed and sleeps again (:meth:`AlertLogic.on_notify`).
WAKE_HORIZON_S = 60.0


def _wake_at(due: datetime | None) -> datetime | None:
    """``notify_at`` for a deadline ``due``: the deadline, at most WAKE_HORIZON_S ahead."""
    if due is None:
        return None
    return min(due, datetime.now(timezone.utc) + timedelta(seconds=WAKE_HORIZON_S))


def alert_publish(a: Alert, subjects: Subjects) -> Publish:
    """The JetStream message of an alert (deterministic id)."""
    return Publish(
        subjects.alert(a.kind, a.commune_insee, a.device_id),
        orjson.dumps(a.to_dict()),
        a.alert_id,
        {"Tid-Alert-State": a.state},
    )


class TwinUpdate(NamedTuple):
    """A new twin entry of one device (``msg_id`` deterministic: the reading behind it)."""

    entry: dict[str, Any]
    msg_id: str


def twin_publish(u: TwinUpdate, subjects: Subjects) -> Publish:
    """The KV put of a twin entry: a JetStream publish on ``$KV.<prefix>_twin.<DevEUI>``."""
    return Publish(subjects.twin_key(u.entry["deviceId"]), orjson.dumps(u.entry), u.msg_id)


def _epoch(ts: str) -> int:
    return int(datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp())


class ForecastLogic(StatefulLogic[dict, dict, "bytes | None"]):
    """One Forecaster per container kind. Input: reading dicts of one kind; output:
    the same dicts with ``_forecast`` (:meth:`tidstream.Forecaster.step` output or None)
    and ``_hours_to_full`` (hours until the median forecast reaches ``overflow_fill``,
    None when unknown or the sensor is stuck)."""

    def __init__(
        self, state: bytes | None, defaults: AlertThresholds, by_kind: dict[str, dict[str, float]]
    ) -> None:
        self.fc = Forecaster.from_bytes(state) if state is not None else None
        self.defaults = defaults
        self.by_kind = by_kind
        self._th: AlertThresholds | None = None
        self._checked = False

    def on_item(self, value: dict[str, Any]) -> tuple[Iterable[dict], bool]:
        if self._th is None:
            self._th = thresholds_for(value.get("container_kind") or "", self.defaults, self.by_kind)
        th = self._th
        if self.fc is None:
            self.fc = Forecaster(threshold=th.overflow_fill)
        elif not self._checked:
            self._checked = True
            if abs(self.fc.threshold - th.overflow_fill) > 1e-12:
                import sys

                print(
                    f"tidstream alerts: the recovered forecaster of {value.get('container_kind')!r} "
                    f"forecasts fill {self.fc.threshold}, the configuration says overflow_fill = "
                    f"{th.overflow_fill}: start the alerts flow with a fresh recovery folder to apply it",
                    file=sys.stderr,
                    flush=True,
                )
        fc = None
        try:
            fc = self.fc.step(
                value["device_id"],
                _epoch(value["measured_at"]),
                value.get("fill_ratio"),
                value.get("tilt"),
                th.overflow_lead_h,
            )
        except (KeyError, TypeError, ValueError):
            fc = None  # a reading without a usable time or level: no forecast, rules still run
        value["_forecast"] = fc
        value["_hours_to_full"] = None if fc is None or fc["stuck"] else fc["hours_to_threshold"]
        return [value], StatefulLogic.RETAIN

    def snapshot(self) -> bytes | None:
        return self.fc.to_bytes() if self.fc is not None else None


class DeviceState(NamedTuple):
    """Snapshot of :class:`AlertLogic`: the rule state and the last twin entry."""

    alerts: DeviceAlerts
    twin: dict[str, Any] | None


class AlertLogic(StatefulLogic[dict, "Publish | TwinUpdate", DeviceState]):
    """Per-device alert rules and twin entry. Input: reading dicts (with ``_forecast``
    and ``_hours_to_full`` from :class:`ForecastLogic`); output: alert
    :class:`Publish` messages and :class:`TwinUpdate`."""

    def __init__(
        self,
        state: DeviceState | DeviceAlerts | None,
        defaults: AlertThresholds,
        by_kind: dict[str, dict[str, float]],
        subjects: Subjects,
    ) -> None:
        if isinstance(state, DeviceAlerts):  # snapshot of an older version
            state = DeviceState(state, None)
        self.state = state.alerts if state else DeviceAlerts()
        self.twin = state.twin if state else None
        self.defaults = defaults
        self.by_kind = by_kind
        self.subjects = subjects
        self._th: AlertThresholds | None = None
        self._wall_last = datetime.now(timezone.utc)

    def _thresholds(self, kind: str | None) -> AlertThresholds:
        if self._th is None:
            self._th = thresholds_for(kind or "", self.defaults, self.by_kind)
        return self._th

    def _alerts(self, alerts: list[Alert]) -> list[Publish | TwinUpdate]:
        for a in alerts:  # alerts are rare: counted one by one
            metrics.ALERTS.labels(a.kind, a.state).inc()
        return [alert_publish(a, self.subjects) for a in alerts]

    def on_item(self, value: dict[str, Any]) -> tuple[Iterable[Publish | TwinUpdate], bool]:
        th = self._thresholds(value.get("container_kind"))
        self._wall_last = datetime.now(timezone.utc)
        alerts = self.state.on_reading(value, th, value.get("_hours_to_full"))
        out: list[Publish | TwinUpdate] = self._alerts(alerts)
        if not value.get("stored"):  # stored readings are history, not the present
            self.twin = twin_entry(value, value.get("_forecast"), self.state, th, self.twin)
            out.append(TwinUpdate(self.twin, f"t:{value['device_id']}:{value['reading_id']}"))
        return out, StatefulLogic.RETAIN

    def _silent_at(self) -> datetime | None:
        """Wall-clock moment the device becomes ``silent`` (None: no timer)."""
        if self.state.last_reading is None or "silent" in self.state.active:
            return None
        th = self._thresholds(self.state.last_reading["container_kind"])
        return self._wall_last + timedelta(seconds=self.state.silent_after_s(th))

    def on_notify(self) -> tuple[Iterable[Publish | TwinUpdate], bool]:
        due = self._silent_at()
        if due is None or datetime.now(timezone.utc) < due:
            return [], StatefulLogic.RETAIN  # an early wake-up (WAKE_HORIZON_S): not silent yet
        alerts = self.state.on_silence(self._thresholds(None))  # thresholds cached by _silent_at
        out: list[Publish | TwinUpdate] = self._alerts(alerts)
        if alerts and self.twin is not None:
            self.twin = twin_silenced(self.twin, self.state)
            out.append(
                TwinUpdate(self.twin, f"t:{self.twin['deviceId']}:{self.twin['lastReadingId']}:silent")
            )
        return out, StatefulLogic.RETAIN

    def notify_at(self) -> datetime | None:
        return _wake_at(self._silent_at())

    def snapshot(self) -> DeviceState:
        import copy

        return DeviceState(copy.deepcopy(self.state), self.twin)


class TwinSnapshotLogic(StatefulLogic[dict, None, dict]):
    """The latest twin entry of every device (one key, one worker), written as one
    Parquet file at ``path`` at most every ``interval_s`` seconds while entries change,
    and at the end of the input. Outputs nothing."""

    def __init__(self, state: dict[str, dict] | None, path: str, interval_s: float) -> None:
        self.entries: dict[str, dict] = dict(state or {})
        self.path = path
        self.interval = timedelta(seconds=interval_s)
        self.dirty = bool(self.entries)  # after a restart, rewrite what was recovered
        self.last_write = datetime.now(timezone.utc)

    def _write(self) -> None:
        write_snapshot(list(self.entries.values()), self.path)
        self.dirty = False
        self.last_write = datetime.now(timezone.utc)

    def on_item(self, value: dict[str, Any]) -> tuple[Iterable[None], bool]:
        self.entries[value["deviceId"]] = value
        self.dirty = True
        return [], StatefulLogic.RETAIN

    def _due(self) -> datetime | None:
        """When the next snapshot is due (None: nothing changed since the last one)."""
        return self.last_write + self.interval if self.dirty else None

    def on_notify(self) -> tuple[Iterable[None], bool]:
        due = self._due()
        if due is not None and datetime.now(timezone.utc) >= due:
            self._write()
        return [], StatefulLogic.RETAIN  # else an early wake-up (WAKE_HORIZON_S)

    def on_eof(self) -> tuple[Iterable[None], bool]:
        if self.dirty:
            self._write()
        return [], StatefulLogic.RETAIN

    def notify_at(self) -> datetime | None:
        return _wake_at(self._due())

    def snapshot(self) -> dict[str, dict]:
        return dict(self.entries)
