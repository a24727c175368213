"""Plausibility guards of the ingest step (docs/SECURITY.md, "Hostile input"): frame
counters that go backwards and timestamps far in the past or future.

Both give a dead letter with a stable reason, never an exception:

* ``fcnt_regression``: a device's LoRaWAN frame counter is not above the last one
  accepted for it (a replayed or forged frame, or a duplicate delivery). A counter
  below :data:`FCNT_RESET_BELOW` after a higher one is accepted as a counter reset
  (device rejoin / reboot) and becomes the new baseline.
* ``implausible_time``: the network server's receive time is later than the broker's
  store time plus :data:`FUTURE_TOLERANCE_NS` (a clock far ahead, or a forged
  envelope), or a time (received, or measured by the device) is before
  :data:`EARLIEST_NS` (2015-01-01, before any LoRaWAN deployment), or a device-measured
  time is more than :data:`FUTURE_TOLERANCE_NS` after the receive time
  (``max_future_s`` setting; 0 turns the future checks off).

The frame-counter state survives restarts: :func:`load_fcnt_state` rebuilds it from
the last reading of every device in the readings stream (each reading carries its
``fcnt`` and ``raw_seq``). Raw messages at or before a device's remembered ``raw_seq``
are the flow's own replay after a crash and are not checked again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from .. import _core

__all__ = [
    "EARLIEST_NS",
    "FCNT_RESET_BELOW",
    "FUTURE_TOLERANCE_NS",
    "FcntGuard",
    "TimeWindow",
    "load_fcnt_state",
]

#: 2015-01-01T00:00:00Z in ns: earlier times are not plausible for a LoRaWAN uplink.
EARLIEST_NS = 1_420_070_400 * 1_000_000_000
#: How far ahead of the reference clock a time may be (clock drift): 1 day by default.
FUTURE_TOLERANCE_NS = 86_400 * 1_000_000_000
#: A counter below this after a higher one is a reset (rejoin), not a replay.
FCNT_RESET_BELOW = 16


@dataclass(frozen=True)
class TimeWindow:
    """The plausible times of an uplink. ``future_ns`` 0 turns the future checks off
    (e.g. to ingest a simulated fleet dated after today)."""

    earliest_ns: int = EARLIEST_NS
    future_ns: int = FUTURE_TOLERANCE_NS

    def problem(self, received_ns: int, stored_ns: int, measured_ns: Sequence[int | None] = ()) -> str | None:
        """Why the times of an uplink are implausible (``None`` when they are fine).

        Args:
            received_ns: the network server's receive time, ns since the epoch (UTC).
            stored_ns: when the broker stored the raw message (the reference clock).
            measured_ns: device-measured times of the frame's readings (None: not given).
        """
        if received_ns < self.earliest_ns:
            return f"received_at {received_ns} ns is before 2015-01-01"
        if self.future_ns and received_ns > stored_ns + self.future_ns:
            return f"received_at is more than {self.future_ns // 10**9} s after the broker stored the message"
        for t in measured_ns:
            if t is None:
                continue
            if t < self.earliest_ns:
                return f"measured_at {t} ns is before 2015-01-01"
            if self.future_ns and t > received_ns + self.future_ns:
                return f"measured_at is more than {self.future_ns // 10**9} s after received_at"
        return None


class FcntGuard:
    """Last accepted ``(fcnt, raw_seq)`` per device.

    The state lives in the Rust core (:class:`tidstream._core.FcntState`), where the
    ingest kernel checks and advances it for a whole batch in one call; :meth:`check`
    is the same rule for one frame (:data:`FCNT_RESET_BELOW` is repeated there as
    `ingest::FCNT_RESET_BELOW`; tests/test_hostile.py checks the rule through this class).
    Counters and sequences are int64."""

    def __init__(self, last: dict[str, tuple[int, int]] | None = None) -> None:
        self.state = _core.FcntState(last or {})

    @property
    def last(self) -> dict[str, tuple[int, int]]:
        """A copy of the state: device -> (last accepted fcnt, its raw_seq)."""
        return self.state.snapshot()

    def check(self, device: str, fcnt: int | None, raw_seq: int) -> str | None:
        """``None`` to accept the frame (and remember it), else why it is a regression:
        its counter is not above the last accepted one (a counter below
        :data:`FCNT_RESET_BELOW` after one at or above it is a reset). A ``raw_seq`` at or
        before the device's remembered one is the flow's own replay: accepted, unchanged."""
        return self.state.check(device, fcnt, raw_seq)


def _int64(v: Any) -> bool:
    return isinstance(v, int) and -(2**63) <= v < 2**63


def load_fcnt_state(settings: Any) -> FcntGuard:
    """A guard seeded from the last reading of every device in the readings stream."""
    from ..nats.state import last_per_subject

    last: dict[str, tuple[int, int]] = {}
    for data in last_per_subject(settings.nats, settings.streams.readings, settings.subjects.readings):
        try:
            r = orjson.loads(data)
        except orjson.JSONDecodeError:
            continue  # not a reading (quarantined by the export): no counter to learn
        if isinstance(r, dict) and _int64(r.get("fcnt")) and _int64(r.get("raw_seq")):
            dev = str(r.get("device_id"))
            if dev not in last or r["raw_seq"] > last[dev][1]:
                last[dev] = (r["fcnt"], r["raw_seq"])
    return FcntGuard(last)
