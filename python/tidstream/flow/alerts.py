"""The alerting step: Bytewax stateful logic around :class:`tidstream.alerts.DeviceAlerts`,
keyed by device. The state (one small object per device) is snapshotted by Bytewax
recovery; rules depend on event data only, and the ``silent`` timer's alert id comes
from the last reading, so a replay after a crash produces the same alert ids (dropped by
JetStream deduplication)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson
from bytewax.operators import StatefulLogic

from ..alerts import Alert, AlertThresholds, DeviceAlerts, thresholds_for
from ..config import Subjects
from ..nats.jetstream import Publish

__all__ = ["AlertLogic", "alert_publish"]


def alert_publish(a: Alert, subjects: Subjects) -> Publish:
    """The JetStream message of an alert (deterministic id)."""
    return Publish(
        subjects.alert(a.kind, a.commune_insee, a.device_id),
        orjson.dumps(a.to_dict()),
        a.alert_id,
        {"Tid-Alert-State": a.state},
    )


class AlertLogic(StatefulLogic[dict, Publish, DeviceAlerts]):
    """Per-device alert rules. Input: reading dicts; output: alert :class:`Publish`."""

    def __init__(
        self,
        state: DeviceAlerts | None,
        defaults: AlertThresholds,
        by_kind: dict[str, dict[str, float]],
        subjects: Subjects,
    ) -> None:
        self.state = state or DeviceAlerts()
        self.defaults = defaults
        self.by_kind = by_kind
        self.subjects = subjects
        self._th: AlertThresholds | None = None
        self._wall_last = datetime.now(timezone.utc)

    def _thresholds(self, kind: str | None) -> AlertThresholds:
        if self._th is None:
            self._th = thresholds_for(kind or "", self.defaults, self.by_kind)
        return self._th

    def on_item(self, value: dict[str, Any]) -> tuple[Iterable[Publish], bool]:
        th = self._thresholds(value.get("container_kind"))
        self._wall_last = datetime.now(timezone.utc)
        alerts = self.state.on_reading(value, th, value.get("_hours_to_full"))
        return [alert_publish(a, self.subjects) for a in alerts], StatefulLogic.RETAIN

    def on_notify(self) -> tuple[Iterable[Publish], bool]:
        th = self._thresholds(self.state.last_reading["container_kind"] if self.state.last_reading else None)
        return [alert_publish(a, self.subjects) for a in self.state.on_silence(th)], StatefulLogic.RETAIN

    def notify_at(self) -> datetime | None:
        if self.state.last_reading is None or "silent" in self.state.active:
            return None
        th = self._thresholds(self.state.last_reading["container_kind"])
        return self._wall_last + timedelta(seconds=self.state.silent_after_s(th))

    def snapshot(self) -> DeviceAlerts:
        import copy

        return copy.deepcopy(self.state)
