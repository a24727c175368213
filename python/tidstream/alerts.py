"""Alert rules: readings in, alerts out, with a raised / resolved lifecycle.

One :class:`DeviceAlerts` per device holds the state of every rule (small, picklable:
it goes into Bytewax snapshots). Rules depend only on the readings (event data), never on
the wall clock, except ``silent``, which needs a timer: its alert id is derived from the
last reading seen, so a replay raises the same alert. Each rule has hysteresis: one
alert per episode, not one per reading.

Kinds: ``full``, ``fire``, ``tilt``, ``battery_low``, ``stuck_sensor``, ``silent``
(raised / resolved), ``emptied`` (an event: for collection records and missed-pickup
checks) and ``overflow_predicted`` (fed by the forecaster).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

__all__ = ["ALERT_KINDS", "Alert", "AlertThresholds", "DeviceAlerts", "thresholds_for"]

ALERT_KINDS = (
    "overflow_predicted",
    "full",
    "fire",
    "tilt",
    "emptied",
    "battery_low",
    "silent",
    "stuck_sensor",
)


@dataclass(frozen=True)
class AlertThresholds:
    """Thresholds of every rule (per container kind in the configuration)."""

    #: fill ratio that raises / resolves ``full``
    full_on: float = 0.9
    full_off: float = 0.75
    #: temperature (°C) that raises ``fire``, and a rise (°C) within ``fire_rise_window_s``
    fire_temp_c: float = 60.0
    fire_rise_c: float = 20.0
    fire_rise_window_s: float = 3600.0
    fire_off_c: float = 45.0
    #: battery level (%) or voltage (V) that raises / resolves ``battery_low``
    battery_low_pct: float = 15.0
    battery_ok_pct: float = 25.0
    battery_low_v: float = 3.0
    battery_ok_v: float = 3.2
    #: readings in a row that resolve ``tilt``
    tilt_clear_readings: int = 2
    #: fill drop that counts as an emptying
    emptied_drop: float = 0.3
    #: identical distances (within ``stuck_tolerance_mm``) in a row that raise ``stuck_sensor``
    stuck_readings: int = 24
    stuck_tolerance_mm: float = 2.0
    #: ``silent`` after this many expected intervals without a frame
    silent_intervals: float = 3.0
    #: expected interval between frames (s), until learned from the device's own cadence
    expected_interval_s: float = 3600.0
    #: ``overflow_predicted`` when the forecaster's median fill is expected to reach
    #: ``overflow_fill`` (fill ratio) within ``overflow_lead_h`` hours
    overflow_fill: float = 1.0
    overflow_lead_h: float = 24.0


#: bounds of the ``silent`` timer (seconds): one minute and one year
SILENT_MIN_S = 60.0
SILENT_MAX_S = 366 * 86_400.0


def thresholds_for(
    kind: str, defaults: AlertThresholds, overrides: dict[str, dict[str, float]]
) -> AlertThresholds:
    """Thresholds for a container kind: defaults updated with ``overrides[kind]``."""
    o = overrides.get(kind)
    return replace(defaults, **o) if o else defaults


@dataclass(frozen=True)
class Alert:
    """One alert message (JSON keys of ``tid.alerts.<kind>.<commune>.<device>``)."""

    alert_id: str
    kind: str
    #: ``raised``, ``resolved`` or ``event``
    state: str
    device_id: str
    container_id: str
    container_kind: str
    commune_insee: str
    #: event time (the triggering reading's ``measured_at``), RFC 3339
    at: str
    #: the reading that triggered it (``silent``: the last reading seen)
    reading_id: str
    value: float | None
    threshold: float | None
    message: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return dict(self.__dict__)


@dataclass
class DeviceAlerts:
    """Alert state of one device (picklable)."""

    #: kind -> reading_id that opened the active episode
    active: dict[str, str] = field(default_factory=dict)
    last_fill: float | None = None
    peak_fill: float | None = None
    last_temp: float | None = None
    last_temp_t: float | None = None
    last_distance: float | None = None
    same_distance: int = 0
    untilted: int = 0
    last_reading: dict[str, Any] | None = None
    last_t: float | None = None
    interval_s: float | None = None
    #: ``measured_at`` of the last ``emptied`` event (RFC 3339)
    last_emptied_at: str | None = None

    # -- helpers -----------------------------------------------------------------------

    def _alert(
        self,
        r: dict[str, Any],
        kind: str,
        state: str,
        opened: str,
        value: float | None,
        threshold: float | None,
        message: str,
        at: str | None = None,
    ) -> Alert:
        return Alert(
            alert_id=f"a:{r['device_id']}:{kind}:{opened}:{state}",
            kind=kind,
            state=state,
            device_id=r["device_id"],
            container_id=r["container_id"],
            container_kind=r["container_kind"],
            commune_insee=r["commune_insee"],
            at=at or r["measured_at"],
            reading_id=r["reading_id"],
            value=value,
            threshold=threshold,
            message=message,
        )

    def _raise(
        self, out: list[Alert], r: dict[str, Any], kind: str, value: float | None, thr: float | None, msg: str
    ) -> None:
        if kind not in self.active:
            self.active[kind] = r["reading_id"]
            out.append(self._alert(r, kind, "raised", r["reading_id"], value, thr, msg))

    def _resolve(
        self, out: list[Alert], r: dict[str, Any], kind: str, value: float | None, thr: float | None, msg: str
    ) -> None:
        opened = self.active.pop(kind, None)
        if opened is not None:
            out.append(self._alert(r, kind, "resolved", opened, value, thr, msg))

    # -- the rules -----------------------------------------------------------------------

    def on_reading(
        self, r: dict[str, Any], th: AlertThresholds, hours_to_full: float | None = None
    ) -> list[Alert]:
        """Apply every rule to one reading (time-ordered per device); returns the alerts."""
        out: list[Alert] = []
        if r.get("stored"):
            return out  # late readings from device storage: history, not the present
        t = _epoch(r["measured_at"])
        if self.last_t is not None and t > self.last_t:
            gap = t - self.last_t
            self.interval_s = gap if self.interval_s is None else 0.8 * self.interval_s + 0.2 * gap
        self._resolve(out, r, "silent", None, None, "frames again")
        fill = r.get("fill_ratio")
        # emptied (event) before full, so a collection resolves `full` in the same reading
        if fill is not None and self.peak_fill is not None and self.peak_fill - fill >= th.emptied_drop:
            out.append(
                self._alert(
                    r,
                    "emptied",
                    "event",
                    r["reading_id"],
                    fill,
                    th.emptied_drop,
                    f"emptied: fill fell from {self.peak_fill:.2f} to {fill:.2f}",
                )
            )
            self.peak_fill = fill
            self.last_emptied_at = r["measured_at"]
            self._resolve(out, r, "overflow_predicted", fill, None, "emptied")
            # the forecaster confirms an emptying with the next reading: no new
            # overflow episode from this one
            hours_to_full = None
        if fill is not None:
            self.peak_fill = fill if self.peak_fill is None else max(self.peak_fill, fill)
            if fill >= th.full_on:
                self._raise(out, r, "full", fill, th.full_on, f"fill {fill:.0%} >= {th.full_on:.0%}")
            elif fill <= th.full_off:
                self._resolve(out, r, "full", fill, th.full_off, f"fill {fill:.0%} <= {th.full_off:.0%}")
            self.last_fill = fill
        temp = r.get("temperature_c")
        if temp is not None or r.get("fire_alarm"):
            rise = (
                temp - self.last_temp
                if temp is not None
                and self.last_temp is not None
                and self.last_temp_t is not None
                and t - self.last_temp_t <= th.fire_rise_window_s
                else 0.0
            )
            if r.get("fire_alarm") or (
                temp is not None and (temp >= th.fire_temp_c or rise >= th.fire_rise_c)
            ):
                self._raise(out, r, "fire", temp, th.fire_temp_c, f"fire: {temp} °C (rise {rise:+.0f} °C)")
            elif temp is not None and temp <= th.fire_off_c:
                self._resolve(out, r, "fire", temp, th.fire_off_c, f"temperature back to {temp} °C")
            if temp is not None:
                self.last_temp, self.last_temp_t = temp, t
        if r.get("tilt"):
            self.untilted = 0
            self._raise(out, r, "tilt", None, None, "sensor tilted or container moved")
        elif r.get("tilt") is False:
            self.untilted += 1
            if self.untilted >= th.tilt_clear_readings:
                self._resolve(out, r, "tilt", None, None, "upright again")
        pct, volts = r.get("battery_pct"), r.get("battery_v")
        low = (pct is not None and pct <= th.battery_low_pct) or (
            volts is not None and volts <= th.battery_low_v
        )
        ok = (pct is None or pct >= th.battery_ok_pct) and (volts is None or volts >= th.battery_ok_v)
        if low:
            self._raise(
                out,
                r,
                "battery_low",
                pct if pct is not None else volts,
                th.battery_low_pct if pct is not None else th.battery_low_v,
                "battery low",
            )
        elif ok and (pct is not None or volts is not None):
            self._resolve(
                out,
                r,
                "battery_low",
                pct if pct is not None else volts,
                None,
                "battery replaced or recovered",
            )
        d = r.get("distance_mm")
        if d is not None:
            if self.last_distance is not None and abs(d - self.last_distance) <= th.stuck_tolerance_mm:
                self.same_distance += 1
            else:
                if self.same_distance + 1 >= th.stuck_readings:
                    self._resolve(out, r, "stuck_sensor", d, None, "distance changes again")
                self.same_distance = 0
            self.last_distance = d
            if self.same_distance + 1 >= th.stuck_readings:
                self._raise(
                    out,
                    r,
                    "stuck_sensor",
                    d,
                    float(th.stuck_readings),
                    f"{self.same_distance + 1} identical distances in a row",
                )
        if hours_to_full is not None:
            if hours_to_full <= th.overflow_lead_h:
                self._raise(
                    out,
                    r,
                    "overflow_predicted",
                    hours_to_full,
                    th.overflow_lead_h,
                    f"expected to reach {th.overflow_fill:.0%} in {hours_to_full:.0f} h",
                )
            elif hours_to_full > 1.5 * th.overflow_lead_h:
                self._resolve(
                    out,
                    r,
                    "overflow_predicted",
                    hours_to_full,
                    th.overflow_lead_h,
                    "no longer expected full soon",
                )
        self.last_reading = {
            k: r[k]
            for k in (
                "device_id",
                "container_id",
                "container_kind",
                "commune_insee",
                "reading_id",
                "measured_at",
            )
        }
        self.last_t = t
        return out

    def silent_after_s(self, th: AlertThresholds) -> float:
        """Seconds without a frame after which the device is ``silent``: ``silent_intervals``
        x the learned interval, kept between :data:`SILENT_MIN_S` (a burst of frames a
        fraction of a second apart must not make the device silent at once) and
        :data:`SILENT_MAX_S` (a huge setting must not overflow the timer's date)."""
        after = th.silent_intervals * (self.interval_s or th.expected_interval_s)
        return min(max(after, SILENT_MIN_S), SILENT_MAX_S)

    def on_silence(self, th: AlertThresholds) -> list[Alert]:
        """The timer fired: no frame for :meth:`silent_after_s`. The id comes from the
        last reading seen, so a replay raises the same alert."""
        if self.last_reading is None or "silent" in self.active:
            return []
        r = self.last_reading
        self.active["silent"] = r["reading_id"]
        return [
            self._alert(
                r,
                "silent",
                "raised",
                r["reading_id"],
                None,
                self.silent_after_s(th),
                f"no frame for {self.silent_after_s(th) / 3600:.1f} h",
            )
        ]


def _epoch(ts: str) -> float:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
