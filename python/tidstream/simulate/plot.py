"""PNG plots of a simulation run (matplotlib, Agg backend): a container's fill curve
with its collections and the ground truth, and a map of the territory."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

__all__ = ["plot_fill", "plot_map"]

KIND_COLORS = {
    "glass_bank": "#2ca02c",
    "paper_bank": "#1f77b4",
    "packaging_bank": "#e6b800",
    "grouping_point": "#7f7f7f",
    "park_bin": "#d62728",
}
KIND_LABELS = {
    "glass_bank": "glass bank",
    "paper_bank": "paper bank",
    "packaging_bank": "packaging bank",
    "grouping_point": "grouping point (660-770 L)",
    "park_bin": "park bin (50-120 L)",
}


def _plt() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise ImportError("plots need matplotlib (a tidstream dependency): pip install matplotlib") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _need(run: Path, name: str) -> Path:
    p = run / name
    if not p.exists():
        raise FileNotFoundError(f"{p} not found: is {run} the --out folder of `tidstream simulate`?")
    return p


def _pick_device(run: Path, registry: pa.Table) -> str:
    """The device with the most overflows (else the first park bin, else the first)."""
    ov = run / "overflows.parquet"
    if ov.exists():
        t = pq.read_table(ov, columns=["device_id"])
        if t.num_rows:
            vc = pc.value_counts(t.column("device_id")).to_pylist()
            vc.sort(key=lambda r: (-r["counts"], r["values"]))
            return str(vc[0]["values"])
    kinds = registry.column("container_kind").to_pylist()
    i = kinds.index("park_bin") if "park_bin" in kinds else 0
    return str(registry.column("device_id")[i].as_py())


def plot_fill(
    run_dir: str | Path,
    out: str | Path,
    device: str | None = None,
    container: str | None = None,
    days: float | None = None,
) -> Path:
    """A container's fill curve: ground-truth fill, what its sensor reported (by
    condition), collections (missed ones in red), overflow periods shaded."""
    plt = _plt()
    import matplotlib.dates as mdates

    run = Path(run_dir)
    registry = pq.read_table(_need(run, "registry.parquet"))
    if container is not None:
        m = pc.equal(registry.column("container_id"), container)
        rows = registry.filter(m)
        if rows.num_rows == 0:
            raise ValueError(f"container {container!r} is not in {run}/registry.parquet")
        device = str(rows.column("device_id")[0].as_py())
    if device is None:
        device = _pick_device(run, registry)
    device = device.lower()
    rows = registry.filter(pc.equal(registry.column("device_id"), device))
    if rows.num_rows == 0:
        raise ValueError(f"device {device!r} is not in {run}/registry.parquet")
    info = rows.to_pylist()[0]
    truth_path = run / "truth_readings.parquet"
    if not truth_path.exists():
        raise FileNotFoundError(
            f"{truth_path} not found: the fill curve needs the reading-level ground truth "
            "(run `tidstream simulate` without --no-truth)"
        )
    flt = [("device_id", "=", device)]
    tr = pq.read_table(truth_path, filters=flt)
    col = pq.read_table(_need(run, "collections.parquet"), filters=flt)
    ov = pq.read_table(_need(run, "overflows.parquet"), filters=flt)

    def times(a: pa.ChunkedArray) -> np.ndarray:
        return a.cast(pa.int64()).to_numpy().astype("datetime64[ns]")

    t = times(tr.column("measured_at"))
    order = np.argsort(t, kind="stable")
    t = t[order]
    true_fill = tr.column("true_fill").to_numpy()[order] * 100
    dist = tr.column("distance_mm").to_numpy(zero_copy_only=False).astype(float)[order]
    cond = np.asarray(tr.column("condition").to_pylist(), dtype=object)[order]
    delivered = np.asarray(tr.column("delivered").to_pylist(), dtype=object)[order]
    depth, offset = info["depth_mm"], info["offset_mm"]
    measured = np.clip((offset + depth - dist) / depth, -0.2, 1.6) * 100
    if days is not None and len(t):
        end = t[0] + np.timedelta64(int(days * 86400), "s")
        keep = t <= end
        t, true_fill, measured, cond, delivered = (
            t[keep],
            true_fill[keep],
            measured[keep],
            cond[keep],
            delivered[keep],
        )
    else:
        end = t[-1] if len(t) else None

    fig, ax = plt.subplots(figsize=(12, 5), dpi=110)
    ax.axhline(100, color="#444", lw=0.8, ls=":", zorder=1)
    if len(t):
        ax.text(t[-1], 101, "full line (100 %) ", fontsize=8, color="#444", va="bottom", ha="right")
    for r in ov.to_pylist():
        a = np.datetime64(r["started_at"].replace(tzinfo=None), "ns")
        b = (
            np.datetime64(r["ended_at"].replace(tzinfo=None), "ns")
            if r["ended_at"]
            else (t[-1] if len(t) else a)
        )
        if end is not None and a > end:
            continue
        ax.axvspan(a, min(b, end) if end is not None else b, color="#d62728", alpha=0.12, lw=0, zorder=0)
    ax.plot(t, true_fill, color="black", lw=1.3, label="true fill (ground truth)", zorder=3)
    ok = (cond == "ok") & (delivered == "live")
    ax.scatter(t[ok], measured[ok], s=7, color="#1f77b4", label="reported by the sensor", zorder=4)
    styles = {
        "no_echo": ("x", "#9467bd"),
        "lid_open": ("^", "#ff7f0e"),
        "obstructed": ("s", "#8c564b"),
        "stuck": ("D", "#e377c2"),
        "tilted": ("v", "#17becf"),
        "fire": ("*", "#d62728"),
    }
    for name, (marker, color) in styles.items():
        sel = (cond == name) & (delivered == "live") & ~np.isnan(measured)
        if sel.any():
            ax.scatter(
                t[sel],
                measured[sel],
                s=22,
                marker=marker,
                color=color,
                label=f"reported: {name.replace('_', ' ')}",
                zorder=5,
            )
    lost = delivered != "live"
    if lost.any():
        ax.scatter(
            t[lost],
            np.where(np.isnan(measured[lost]), 0, measured[lost]),
            s=10,
            facecolors="none",
            edgecolors="#999",
            label="not received live (outage)",
            zorder=4,
        )
    first = True
    for r in col.to_pylist():
        x = np.datetime64(r["collected_at"].replace(tzinfo=None), "ns")
        if end is not None and x > end:
            continue
        if r["missed"]:
            ax.axvline(x, color="#d62728", lw=1.2, ls="--", zorder=2)
        else:
            ax.axvline(x, color="#2ca02c", lw=0.9, ls="--", zorder=2, label="collection" if first else None)
            first = False
    if any(r["missed"] for r in col.to_pylist()):
        ax.plot([], [], color="#d62728", ls="--", label="missed collection")
    if ov.num_rows:
        ax.fill_between([], [], color="#d62728", alpha=0.12, label="overflowing")
    top = max(120.0, float(np.nanmax(measured)) + 5 if len(measured) else 120.0)
    low = min(
        -5.0, float(np.nanmin(measured)) - 3 if len(measured) and not np.isnan(measured).all() else -5.0
    )
    ax.set_ylim(max(low, -25.0), min(top, 165))
    ax.set_ylabel("fill (%)")
    if len(t):
        ax.set_xlim(t[0], end)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(mdates.AutoDateLocator()))
    ax.grid(alpha=0.25)
    ax.set_title(
        f"{info['container_id']} ({info['container_kind'].replace('_', ' ')}, {info['volume_l']:.0f} L, "
        f"{info['commune']}) - sensor {info['model']} {device}",
        fontsize=10,
    )
    ax.legend(loc="upper left", fontsize=7, ncol=3, framealpha=0.9)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


def plot_map(run_dir: str | Path, out: str | Path) -> Path:
    """Map of the territory: containers coloured by kind, place centres, facilities
    (drawn where the run put them, e.g. at their commune's centre) and, when the run
    has them, the place boundaries."""
    plt = _plt()
    run = Path(run_dir)
    reg = pq.read_table(_need(run, "registry.parquet"))
    places = pacsv.read_csv(_need(run, "places.csv"))
    fac_path = run / "facilities.csv"
    fac = pacsv.read_csv(fac_path) if fac_path.exists() and fac_path.stat().st_size > 0 else None
    lat = reg.column("lat").to_numpy()
    lon = reg.column("lon").to_numpy()
    kinds = np.asarray(reg.column("container_kind").to_pylist(), dtype=object)
    lat0 = float(np.mean(places.column("lat").to_numpy()))
    fig, ax = plt.subplots(figsize=(10, 10), dpi=110)
    geo = run / "places.geojson"
    if geo.exists():
        data = json.loads(geo.read_text(encoding="utf-8"))
        for f in data.get("features", []):
            g = f.get("geometry") or {}
            polys = g["coordinates"] if g.get("type") == "MultiPolygon" else [g.get("coordinates", [])]
            for poly in polys:
                for ring in poly:
                    r = np.asarray(ring)
                    ax.plot(r[:, 0], r[:, 1], color="#bbb", lw=0.6, zorder=1)
    n = len(lat)
    size = 6 if n < 5000 else max(0.3, 6 * math.sqrt(5000 / n))
    # Bring-banks share sites: draw them as concentric dots (glass largest) so all
    # three streams stay visible; then grouping points and park bins.
    rel = {
        "glass_bank": 2.6,
        "paper_bank": 1.6,
        "packaging_bank": 0.8,
        "grouping_point": 1.2,
        "park_bin": 1.0,
    }
    for kind in ("glass_bank", "paper_bank", "packaging_bank", "grouping_point", "park_bin"):
        sel = kinds == kind
        if sel.any():
            ax.scatter(
                lon[sel],
                lat[sel],
                s=size * rel[kind],
                color=KIND_COLORS[kind],
                alpha=0.9,
                lw=0,
                label=f"{KIND_LABELS[kind]} ({int(sel.sum()):,})",
                zorder=3,
            )
    plon = places.column("lon").to_numpy()
    plat = places.column("lat").to_numpy()
    pop = places.column("population").to_numpy()
    ax.scatter(plon, plat, marker="+", s=40, color="black", lw=1, label="commune centre", zorder=4)
    for i in np.argsort(-pop)[:12]:
        ax.annotate(
            str(places.column("name")[int(i)].as_py()),
            (plon[i], plat[i]),
            xytext=(4, 4),
            textcoords="offset points",
            fontsize=8,
            zorder=6,
        )
    if fac is not None and fac.num_rows:
        flon = fac.column("lon").to_numpy()
        flat = fac.column("lat").to_numpy()
        # Several facilities can share a commune centre: fan them out a little.
        offsets: dict[tuple[float, float], int] = {}
        for j in range(fac.num_rows):
            key = (round(float(flon[j]), 5), round(float(flat[j]), 5))
            k = offsets.get(key, 0)
            offsets[key] = k + 1
            ang = k * 2.1
            dx, dy = (0.004 * math.cos(ang) * k, 0.0028 * math.sin(ang) * k) if k else (0.0, 0.0)
            ax.scatter(
                flon[j] + dx,
                flat[j] + dy,
                marker="*",
                s=150,
                color="#6a0dad",
                edgecolors="white",
                lw=0.6,
                zorder=7,
                label="facility (placed at a commune centre)" if j == 0 else None,
            )
            ax.annotate(
                str(fac.column("kind")[j].as_py()).replace("_", " "),
                (flon[j] + dx, flat[j] + dy),
                xytext=(5, -9),
                textcoords="offset points",
                fontsize=7,
                color="#6a0dad",
                zorder=7,
            )
    ax.set_aspect(1 / math.cos(math.radians(lat0)))
    ax.set_xlabel("longitude")
    ax.set_ylabel("latitude")
    name = ""
    runjson = run / "run.json"
    if runjson.exists():
        try:
            params = json.loads(runjson.read_text(encoding="utf-8")).get("params", {})
            name = f"{params.get('territory', '')}, scale {params.get('scale', 1):g}, "
        except (ValueError, AttributeError):
            name = ""
    ax.set_title(f"Simulated territory ({name}{n:,} containers)", fontsize=11)
    ax.legend(loc="lower left", fontsize=8, markerscale=2 if size < 6 else 1.5, framealpha=0.9)
    ax.grid(alpha=0.2)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out
