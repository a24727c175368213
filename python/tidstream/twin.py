"""The live twin: the current state of every container, in FIWARE ``WasteContainer`` terms.

One twin entry per device (JSON, the keys of :data:`TWIN_SCHEMA`) is written by the
alerting dataflow to the NATS KV bucket ``<prefix>_twin`` under the DevEUI, after every
live reading (and when the ``silent`` timer fires), and periodically as ONE Parquet
snapshot (same columns), atomically replaced (temp file + rename). Attribute names and
``status`` values are those of the FIWARE Smart Data Model ``WasteContainer``
(``fillingLevel``, ``status``, ``dateLastEmptying``, ``nextActuationDeadline``,
``binFullnessThreshold``, ``refDevice``, ``location``, ...) where one fits; tidstream's
own attributes (forecast, accountability, quality) use the same camelCase style. See
docs/TWIN.md.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from .alerts import AlertThresholds, DeviceAlerts
from .schema import _f

__all__ = [
    "ACCOUNTABILITY_HORIZONS_H",
    "TWIN_SCHEMA",
    "TWIN_STATUSES",
    "read_snapshot",
    "twin_entry",
    "twin_silenced",
    "twin_status",
    "write_snapshot",
]

#: FIWARE WasteContainer ``status`` values the twin uses.
TWIN_STATUSES = ("ok", "lidOpen", "dropped", "burning", "unknown")
#: The forecaster's calibration horizons: one accountability column group each.
ACCOUNTABILITY_HORIZONS_H = (24, 48, 72)
#: FIWARE ``storedWasteKind`` of each collection stream (``other`` where none fits).
WASTE_KIND = {"glass": "glass", "paper": "paper", "packaging": "plastic", "residual": "other"}

_TS = pa.timestamp("us", tz="UTC")
_LOCATION = pa.struct(
    [
        _f("type", pa.string(), None, "GeoJSON geometry type: Point", False),
        _f("coordinates", pa.list_(pa.float64()), "deg", "[longitude, latitude] (WGS84)", False),
    ]
)

_ACC_FIELDS = [
    f
    for h in ACCOUNTABILITY_HORIZONS_H
    for f in (
        _f(f"forecastScored{h}h", pa.int64(), None, f"forecasts {h} h ahead scored so far", False),
        _f(f"forecastMae{h}h", pa.float64(), "1", f"rolling mean absolute error of the {h} h forecast"),
        _f(f"forecastBias{h}h", pa.float64(), "1", f"rolling mean of observed - forecast ({h} h)"),
        _f(f"forecastCoverage{h}h", pa.float64(), "1", f"rolling share inside the {h} h p10-p90 interval"),
    )
]

#: A twin entry: the JSON value of KV key ``<DevEUI>`` and a row of the Parquet snapshot.
TWIN_SCHEMA = pa.schema(
    [
        _f("id", pa.string(), None, "NGSI-LD id: urn:ngsi-ld:WasteContainer:<container id>", False),
        _f("type", pa.string(), None, "NGSI-LD type: WasteContainer", False),
        _f("refDevice", pa.string(), None, "the sensor: urn:ngsi-ld:Device:<DevEUI>", False),
        _f("deviceId", pa.string(), None, "DevEUI, 16 lowercase hex digits (the KV key)", False),
        _f("containerId", pa.string(), None, "container identifier (registry)", False),
        _f("containerKind", pa.string(), None, "tidstream container kind (glass_bank, park_bin, ...)", False),
        _f(
            "storedWasteKind",
            pa.string(),
            None,
            "FIWARE storedWasteKind: glass, paper, plastic, other",
            False,
        ),
        _f("communeInsee", pa.string(), None, "INSEE code of the container's commune", False),
        _f("location", _LOCATION, None, "GeoJSON Point of the container", False),
        _f("dateObserved", _TS, None, "measurement time of the last live reading", False),
        _f("lastReadingId", pa.string(), None, "reading_id of the last live reading (lineage)", False),
        _f("fillingLevel", pa.float64(), "1", "fill ratio of the last reading: 0 empty, 1 full"),
        _f("temperature", pa.float64(), "degC", "temperature of the last reading that had one"),
        _f("batteryLevel", pa.float64(), "1", "battery level 0..1 (FIWARE Device batteryLevel)"),
        _f("batteryVoltage", pa.float64(), "V", "battery voltage of the last reading that had one"),
        _f("status", pa.string(), None, "FIWARE status: " + ", ".join(TWIN_STATUSES), False),
        _f("activeAlerts", pa.list_(pa.string()), None, "alert kinds raised and not resolved", False),
        _f("dateLastEmptying", _TS, None, "last emptying detected (the `emptied` alert)"),
        _f(
            "binFullnessThreshold",
            pa.float64(),
            "1",
            "fill ratio of `overflow_predicted` (overflow_fill)",
            False,
        ),
        _f(
            "nextActuationDeadline",
            _TS,
            None,
            "when the median forecast reaches binFullnessThreshold: empty it before (null: not within "
            "the forecaster's max horizon)",
        ),
        _f(
            "nextActuationDeadlineEarliest",
            _TS,
            None,
            "pessimistic deadline: the upper (p90) forecast reaches binFullnessThreshold",
        ),
        _f("forecastHorizonH", pa.float64(), "h", "horizon of the fillingLevelForecast* columns (lead time)"),
        _f(
            "fillingLevelForecast", pa.float64(), "1", "median fill at dateObserved + horizon, if not emptied"
        ),
        _f("fillingLevelForecastP10", pa.float64(), "1", "lower end of the 80 % forecast interval"),
        _f("fillingLevelForecastP90", pa.float64(), "1", "upper end of the 80 % forecast interval"),
        _f("overflowProbability", pa.float64(), "1", "P(fill >= binFullnessThreshold at the horizon)"),
        _f("fillingRatePerDay", pa.float64(), "1/d", "current fill rate (uCIFI 'average filling speed')"),
        _f(
            "measurementQuality",
            pa.int64(),
            None,
            "uCIFI quality indicator of the last reading: 4 accepted, 3 suspicious (stuck sensor, "
            "tilt, lid open), 1 rejected (no level)",
            False,
        ),
        *_ACC_FIELDS,
    ],
    metadata={b"tidstream.schema": b"twin/1"},
)


def _rfc3339(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _epoch(ts: str) -> float:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def twin_status(r: dict[str, Any], active: dict[str, str] | set[str]) -> str:
    """FIWARE ``status`` from the active alerts and the reading: ``burning`` (fire),
    ``dropped`` (tilt), ``lidOpen`` (the sensor's lid-open flag, 256), ``unknown``
    (silent or stuck sensor: the level is not known), else ``ok``."""
    if "fire" in active:
        return "burning"
    if "tilt" in active:
        return "dropped"
    if (r.get("alarm_flags") or 0) & 256:
        return "lidOpen"
    if "silent" in active or "stuck_sensor" in active:
        return "unknown"
    return "ok"


def twin_entry(
    r: dict[str, Any],
    fc: dict[str, Any] | None,
    alerts: DeviceAlerts,
    th: AlertThresholds,
    previous: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The twin entry after the live reading ``r`` (a reading dict), the forecaster's
    view ``fc`` (:meth:`tidstream.Forecaster.step` output, or None) and the device's
    alert state. ``previous`` keeps the last known temperature / battery when this
    reading has none."""
    prev = previous or {}
    t = _epoch(r["measured_at"])
    pct, volts, temp = r.get("battery_pct"), r.get("battery_v"), r.get("temperature_c")
    stuck = bool(fc and fc["stuck"]) or "stuck_sensor" in alerts.active
    fill = r.get("fill_ratio")
    if fill is None:
        quality = 1
    elif stuck or r.get("tilt") or (r.get("alarm_flags") or 0) & 256:
        quality = 3
    else:
        quality = 4
    e: dict[str, Any] = {
        "id": f"urn:ngsi-ld:WasteContainer:{r['container_id']}",
        "type": "WasteContainer",
        "refDevice": f"urn:ngsi-ld:Device:{r['device_id']}",
        "deviceId": r["device_id"],
        "containerId": r["container_id"],
        "containerKind": r["container_kind"],
        "storedWasteKind": WASTE_KIND.get(r.get("stream") or "", "other"),
        "communeInsee": r["commune_insee"],
        "location": {"type": "Point", "coordinates": [r.get("lon"), r.get("lat")]},
        "dateObserved": r["measured_at"],
        "lastReadingId": r["reading_id"],
        "fillingLevel": fill,
        "temperature": temp if temp is not None else prev.get("temperature"),
        "batteryLevel": pct / 100.0 if pct is not None else prev.get("batteryLevel"),
        "batteryVoltage": volts if volts is not None else prev.get("batteryVoltage"),
        "status": twin_status(r, alerts.active),
        "activeAlerts": sorted(alerts.active),
        "dateLastEmptying": alerts.last_emptied_at,
        "binFullnessThreshold": th.overflow_fill,
        "nextActuationDeadline": None,
        "nextActuationDeadlineEarliest": None,
        "forecastHorizonH": None,
        "fillingLevelForecast": None,
        "fillingLevelForecastP10": None,
        "fillingLevelForecastP90": None,
        "overflowProbability": None,
        "fillingRatePerDay": None,
        "measurementQuality": quality,
    }
    for h in ACCOUNTABILITY_HORIZONS_H:
        e[f"forecastScored{h}h"] = 0
        e[f"forecastMae{h}h"] = e[f"forecastBias{h}h"] = e[f"forecastCoverage{h}h"] = None
    if fc is not None:
        h50, h90 = fc["hours_to_threshold"], fc["hours_to_threshold_p90"]
        e.update(
            {
                "nextActuationDeadline": None if h50 is None else _rfc3339(t + h50 * 3600.0),
                "nextActuationDeadlineEarliest": None if h90 is None else _rfc3339(t + h90 * 3600.0),
                "forecastHorizonH": th.overflow_lead_h,
                "fillingLevelForecast": fc["fill_p50"],
                "fillingLevelForecastP10": fc["fill_p10"],
                "fillingLevelForecastP90": fc["fill_p90"],
                "overflowProbability": fc["p_over_threshold"],
                "fillingRatePerDay": fc["rate_per_day"],
            }
        )
        for a in fc["accountability"]:
            h = round(a["horizon_h"])
            if h in ACCOUNTABILITY_HORIZONS_H:
                e[f"forecastScored{h}h"] = a["n_scored"]
                e[f"forecastMae{h}h"] = a["mae"]
                e[f"forecastBias{h}h"] = a["bias"]
                e[f"forecastCoverage{h}h"] = a["coverage"]
    return e


def twin_silenced(entry: dict[str, Any], alerts: DeviceAlerts) -> dict[str, Any]:
    """The entry once the ``silent`` timer fired: status ``unknown``, alerts updated."""
    e = dict(entry)
    e["activeAlerts"] = sorted(alerts.active)
    e["status"] = (
        "burning" if "fire" in alerts.active else "dropped" if "tilt" in alerts.active else "unknown"
    )
    return e


def to_table(entries: list[dict[str, Any]]) -> pa.Table:
    """Twin entries (JSON dicts) as a table of :data:`TWIN_SCHEMA`, sorted by device."""
    rows = sorted(entries, key=lambda e: e["deviceId"])
    cols = []
    for f in TWIN_SCHEMA:
        vals = [e.get(f.name) for e in rows]
        if pa.types.is_timestamp(f.type):
            cols.append(pa.array(vals, pa.string()).cast(f.type))
        else:
            cols.append(pa.array(vals, f.type))
    return pa.Table.from_arrays(cols, schema=TWIN_SCHEMA)


def write_snapshot(entries: list[dict[str, Any]], path: str | os.PathLike[str]) -> Path:
    """Write the twin as ONE Parquet file, atomically: a temp file in the same folder,
    fsynced, then renamed over ``path`` (readers see the old or the new snapshot, never
    a partial one)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.tmp-{os.getpid()}")
    table = to_table(entries)
    meta = dict(table.schema.metadata or {})
    meta[b"tidstream.twin_entries"] = str(table.num_rows).encode()
    meta[b"tidstream.written_at"] = _rfc3339(datetime.now(timezone.utc).timestamp()).encode()
    pq.write_table(table.replace_schema_metadata(meta), tmp)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, p)
    # One writer per snapshot path (one key, one worker): any other temporary file is
    # what a process killed in the middle of a write left behind.
    for stale in p.parent.glob(f".{p.name}.tmp-*"):
        if stale != tmp:
            stale.unlink(missing_ok=True)
    return p


def read_snapshot(path: str | os.PathLike[str]) -> pa.Table:
    """Read a twin snapshot back."""
    return pq.read_table(path)
