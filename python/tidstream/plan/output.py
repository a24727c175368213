"""Plan outputs: routes as Parquet and GeoJSON, a PNG map, a JSON summary."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .model import DayPlan

__all__ = ["routes_geojson", "write_map", "write_plan"]


def routes_geojson(routes: pa.Table) -> dict[str, Any]:
    """A FeatureCollection: one LineString per truck and day (the stops in order, lon/lat)
    and one Point per container stop (properties: truck, trip, seq, arrival, litres...)."""
    feats: list[dict[str, Any]] = []
    rows = routes.to_pylist()
    by: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        by.setdefault((str(r["date"]), r["truck"]), []).append(r)
    for (day, truck), rs in by.items():
        rs.sort(key=lambda r: r["seq"])
        feats.append(
            {
                "type": "Feature",
                "geometry": {"type": "LineString", "coordinates": [[r["lon"], r["lat"]] for r in rs]},
                "properties": {
                    "date": day,
                    "truck": truck,
                    "stream": rs[0]["stream"],
                    "stops": sum(r["stop_kind"] == "container" for r in rs),
                    "trips": max(r["trip"] for r in rs) + 1,
                    "km": round(sum(r["leg_m"] for r in rs) / 1000.0, 3),
                },
            }
        )
        for r in rs:
            feats.append(
                {
                    "type": "Feature",
                    "geometry": {"type": "Point", "coordinates": [r["lon"], r["lat"]]},
                    "properties": {
                        "date": day,
                        "truck": truck,
                        "trip": r["trip"],
                        "seq": r["seq"],
                        "stop_kind": r["stop_kind"],
                        "container_id": r["container_id"],
                        "name": r["name"],
                        "arrival": r["arrival"].isoformat(),
                        "litres": r["litres"],
                        "fill_forecast": r["fill_forecast"],
                        "required": r["required"],
                    },
                }
            )
    return {"type": "FeatureCollection", "features": feats}


def write_map(
    routes: pa.Table,
    path: str | os.PathLike[str],
    *,
    all_lat: np.ndarray | None = None,
    all_lon: np.ndarray | None = None,
    title: str = "",
) -> Path:
    """PNG map: every container in grey, the routes in colour (one per truck), unloading
    facilities as squares and the depot as a star."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 9), dpi=110)
    if all_lat is not None and all_lon is not None:
        ax.scatter(all_lon, all_lat, s=3, c="#bbbbbb", label="containers", zorder=1)
    cmap = plt.get_cmap("tab10")
    trucks = sorted(set(routes.column("truck").to_pylist()))
    rows = routes.to_pylist()
    for k, tr in enumerate(trucks):
        rs = sorted((r for r in rows if r["truck"] == tr), key=lambda r: (str(r["date"]), r["seq"]))
        xs = [r["lon"] for r in rs]
        ys = [r["lat"] for r in rs]
        col = cmap(k % 10)
        n_stops = sum(r["stop_kind"] == "container" for r in rs)
        km = sum(r["leg_m"] for r in rs) / 1000.0
        ax.plot(
            xs,
            ys,
            "-",
            lw=1.0,
            color=col,
            alpha=0.8,
            zorder=2,
            label=f"{tr} ({rs[0]['stream']}): {n_stops} stops, {km:.0f} km",
        )
        cs = [r for r in rs if r["stop_kind"] == "container"]
        ax.scatter([r["lon"] for r in cs], [r["lat"] for r in cs], s=10, color=col, zorder=3)
        un = [r for r in rs if r["stop_kind"] == "unload"]
        ax.scatter([r["lon"] for r in un], [r["lat"] for r in un], s=60, marker="s", color="black", zorder=4)
    dep = [r for r in rows if r["stop_kind"] == "start"]
    if dep:
        ax.scatter([dep[0]["lon"]], [dep[0]["lat"]], s=200, marker="*", color="red", zorder=5, label="depot")
    ax.set_xlabel("longitude (deg)")
    ax.set_ylabel("latitude (deg)")
    ax.set_aspect(
        1.0 / np.cos(np.radians(np.mean(routes.column("lat").to_numpy()) if routes.num_rows else 47.5))
    )
    ax.set_title(title or "collection plan")
    ax.legend(loc="upper left", fontsize=7)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


def write_plan(
    plan: DayPlan,
    out_dir: str | os.PathLike[str],
    *,
    all_lat: np.ndarray | None = None,
    all_lon: np.ndarray | None = None,
) -> dict[str, Path]:
    """Write ``routes.parquet``, ``routes.geojson``, ``map.png`` and ``summary.json``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "routes": out / "routes.parquet",
        "geojson": out / "routes.geojson",
        "map": out / "map.png",
        "summary": out / "summary.json",
    }
    pq.write_table(plan.routes, paths["routes"])
    paths["geojson"].write_text(json.dumps(routes_geojson(plan.routes)), encoding="utf-8")
    s = plan.summary
    write_map(
        plan.routes,
        paths["map"],
        all_lat=all_lat,
        all_lon=all_lon,
        title=f"{s['date']}: {s['stops']} stops, {s['km']:.1f} km, {s['truck_hours']:.1f} truck-hours",
    )
    paths["summary"].write_text(json.dumps(s, indent=2), encoding="utf-8")
    return paths
