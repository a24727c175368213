"""The simulated territory: places (communes), facilities, and containers with sensors.

Containers are placed around each place's centre (inside its polygon when one is
given) in proportion to population, with the densities in :data:`DENSITY`; each gets
a sensor model, a DevEUI, a geometry and a collection stream. The output registry has
exactly :data:`tidstream.schema.REGISTRY_SCHEMA`.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from .. import _core
from ..schema import CONTAINER_KINDS, REGISTRY_SCHEMA

__all__ = [
    "DENSITY",
    "KIND_CODES",
    "Territory",
    "default_shared_dir",
]

#: Container kinds in the simulator's code order (same order as CONTAINER_KINDS).
KIND_CODES: dict[str, int] = {k: i for i, k in enumerate(CONTAINER_KINDS)}

#: Inhabitants per container of each kind. Tuned so that PMA (139,653 inhabitants)
#: gets the 1,445 sensors of its 2021 tender (DOMAIN.md [H2]: ~1,000 bring-banks,
#: 250 park bins, ~100 grouping points of 750 L), with glass at 1 per 380 inhabitants
#: (French glass bring-bank networks are commonly sized at 1 per 300-500).
DENSITY: dict[str, float] = {
    "glass_bank": 380.0,
    "paper_bank": 480.0,
    "packaging_bank": 320.0,
    "grouping_point": 1400.0,
    "park_bin": 560.0,
}

_ABBR = {
    "glass_bank": "glass",
    "paper_bank": "paper",
    "packaging_bank": "pack",
    "grouping_point": "group",
    "park_bin": "park",
}

_M_PER_DEG_LAT = 110_540.0
_M_PER_DEG_LON_EQ = 111_320.0
_MASK40 = (1 << 40) - 1

#: Facilities without public coordinates are shown at their commune's centre.
PLACED_AT_CENTRE = "commune centre (no public coordinates)"
PLACED_AT_SEAT = "centre of the most populous place (commune not given)"


def default_shared_dir() -> Path:
    """``$TIDSTREAM_SHARED``, else ``<repo>/../shared`` (the repository's sibling)."""
    env = os.environ.get("TIDSTREAM_SHARED")
    if env:
        return Path(env)
    repo = Path(__file__).resolve().parents[3]
    return repo.parent / "shared"


def _norm(s: str) -> str:
    s = unicodedata.normalize("NFKD", s).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", " ", s).strip()


# ---------------------------------------------------------------------------
# geometry helpers (local equirectangular metres around a reference point)


def _to_xy(lat: np.ndarray, lon: np.ndarray, lat0: float, lon0: float) -> tuple[np.ndarray, np.ndarray]:
    k = math.cos(math.radians(lat0))
    return (lon - lon0) * _M_PER_DEG_LON_EQ * k, (lat - lat0) * _M_PER_DEG_LAT


def _to_latlon(x: np.ndarray, y: np.ndarray, lat0: float, lon0: float) -> tuple[np.ndarray, np.ndarray]:
    k = math.cos(math.radians(lat0))
    return lat0 + y / _M_PER_DEG_LAT, lon0 + x / (_M_PER_DEG_LON_EQ * k)


def _inside(lat: np.ndarray, lon: np.ndarray, rings: list[np.ndarray]) -> np.ndarray:
    """Even-odd point-in-polygon over all rings ((n, 2) arrays of lon, lat)."""
    inside = np.zeros(lat.shape, dtype=bool)
    for ring in rings:
        xs, ys = ring[:, 0], ring[:, 1]
        x1, y1 = xs, ys
        x2, y2 = np.roll(xs, -1), np.roll(ys, -1)
        for a, b, c, d in zip(x1, y1, x2, y2):
            if b == d:
                continue
            crosses = (b > lat) != (d > lat)
            xi = a + (lat - b) * (c - a) / (d - b)
            inside ^= crosses & (lon < xi)
    return inside


def _area_m2(rings: list[np.ndarray], lat0: float, lon0: float) -> float:
    total = 0.0
    for i, ring in enumerate(rings):
        x, y = _to_xy(ring[:, 1], ring[:, 0], lat0, lon0)
        a = 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))
        total += a if i == 0 else -a
    return max(total, 0.0)


def _load_polygons(path: Path) -> dict[str, list[np.ndarray]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    out: dict[str, list[np.ndarray]] = {}
    for f in data.get("features", []):
        props = f.get("properties") or {}
        key = str(props.get("insee") or props.get("name") or "")
        geom = f.get("geometry") or {}
        rings: list[np.ndarray] = []
        if geom.get("type") == "Polygon":
            rings = [np.asarray(r, dtype=float) for r in geom["coordinates"]]
        elif geom.get("type") == "MultiPolygon":
            rings = [np.asarray(r, dtype=float) for poly in geom["coordinates"] for r in poly]
        if key and rings:
            out[key] = rings
    return out


# ---------------------------------------------------------------------------
# counts


def _apportion(weights: np.ndarray, total: int) -> np.ndarray:
    """Largest-remainder (Hamilton) apportionment of ``total`` by ``weights``."""
    if total <= 0 or weights.sum() <= 0:
        return np.zeros(len(weights), dtype=np.int64)
    quota = weights / weights.sum() * total
    base = np.floor(quota).astype(np.int64)
    rest = total - int(base.sum())
    if rest > 0:
        # Ties broken by index order (stable), so the result is deterministic.
        order = np.argsort(-(quota - base), kind="stable")[:rest]
        base[order] += 1
    return base


def _dev_eui_suffixes(n: int, key: int) -> np.ndarray:
    """N distinct 40-bit suffixes: a keyed bijection of 0..n-1 on 40 bits."""
    x = np.arange(n, dtype=np.uint64)
    k = np.uint64(key & _MASK40)
    m = np.uint64(_MASK40)
    with np.errstate(over="ignore"):
        x = (x + k) & m
        x = (x * np.uint64(0x9E3779B97)) & m  # odd multiplier: invertible mod 2^40
        x ^= x >> np.uint64(17)
        x = (x * np.uint64(0xBF58476D1)) & m
        x ^= x >> np.uint64(21)
    return x


def _splitmix(seed: int) -> int:
    z = (seed + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return z ^ (z >> 31)


# ---------------------------------------------------------------------------


@dataclass
class Territory:
    """Containers with sensors on a territory of places (communes).

    Build one with :meth:`pma` (the default territory), :meth:`from_csv` or
    :meth:`from_places`. ``registry`` is the device registry
    (:data:`~tidstream.schema.REGISTRY_SCHEMA`); ``sim`` holds the extra simulation
    columns, row-aligned with it.
    """

    name: str
    places: pa.Table
    registry: pa.Table
    sim: pa.Table
    facilities: pa.Table
    seed: int = 0
    scale: float = 1.0
    polygons: dict[str, list[np.ndarray]] = field(default_factory=dict, repr=False)
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return self.registry.num_rows

    def counts(self) -> dict[str, int]:
        """Containers per kind."""
        kinds = self.registry.column("container_kind").to_pylist()
        return {k: kinds.count(k) for k in CONTAINER_KINDS}

    # -- constructors -----------------------------------------------------

    @classmethod
    def pma(
        cls,
        shared_dir: str | os.PathLike[str] | None = None,
        scale: float = 1.0,
        seed: int = 0,
        *,
        polygons: bool = True,
        density: Mapping[str, float] | None = None,
    ) -> Territory:
        """Pays de Montbéliard Agglomération (``shared/data/pma/``): 73 communes,
        their polygons and facilities; about 1,445 containers at ``scale=1``.
        """
        base = Path(shared_dir) if shared_dir is not None else default_shared_dir()
        pma = base / "data" / "pma"
        communes = pma / "communes.csv"
        if not communes.is_file():
            raise FileNotFoundError(
                f"{communes} not found: pass shared_dir= or set TIDSTREAM_SHARED to the shared/ "
                "folder that holds data/pma/"
            )
        geo = pma / "communes.geojson"
        fac = pma / "facilities.csv"
        return cls.from_csv(
            communes,
            scale=scale,
            seed=seed,
            name="pma",
            geojson=geo if polygons and geo.is_file() else None,
            facilities=fac if fac.is_file() else None,
            density=density,
        )

    @classmethod
    def from_csv(
        cls,
        path: str | os.PathLike[str],
        scale: float = 1.0,
        seed: int = 0,
        *,
        name: str | None = None,
        geojson: str | os.PathLike[str] | None = None,
        facilities: str | os.PathLike[str] | None = None,
        density: Mapping[str, float] | None = None,
    ) -> Territory:
        """A territory from a CSV of places with columns ``name, lat, lon,
        population`` (``insee`` optional), as ``communes.csv``.
        """
        p = Path(path)
        with p.open(encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
        fac_rows: list[dict[str, str]] = []
        if facilities is not None:
            with Path(facilities).open(encoding="utf-8", newline="") as f:
                fac_rows = list(csv.DictReader(f))
        polys = _load_polygons(Path(geojson)) if geojson is not None else {}
        return cls.from_places(
            rows,
            scale=scale,
            seed=seed,
            name=name or p.stem,
            polygons=polys,
            facilities=fac_rows,
            density=density,
        )

    @classmethod
    def from_places(
        cls,
        places: Iterable[Mapping[str, Any]],
        scale: float = 1.0,
        seed: int = 0,
        *,
        name: str = "territory",
        polygons: Mapping[str, list[np.ndarray]] | None = None,
        facilities: Iterable[Mapping[str, Any]] = (),
        density: Mapping[str, float] | None = None,
    ) -> Territory:
        """A territory from place records (``name, lat, lon, population``, ``insee``
        optional). ``polygons`` maps an insee code (or name) to rings of (lon, lat).
        """
        if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
            raise ValueError(f"scale must be a positive number, got {scale!r}")
        if not isinstance(seed, int) or seed < 0 or seed >= 2**64:
            raise ValueError(f"seed must be an int in 0..2**64-1, got {seed!r}")
        dens = dict(DENSITY)
        if density:
            unknown = set(density) - set(DENSITY)
            if unknown:
                raise ValueError(
                    f"unknown container kinds in density: {sorted(unknown)}; use {list(DENSITY)}"
                )
            dens.update(density)
        pl = _parse_places(places)
        polys = dict(polygons or {})
        return _build(name, pl, polys, list(facilities), float(scale), int(seed), dens)

    # -- output -------------------------------------------------------------

    def write(self, out_dir: str | os.PathLike[str]) -> dict[str, Path]:
        """Write the registry (Parquet and CSV), places and facilities (CSV)."""
        import pyarrow.csv as pacsv
        import pyarrow.parquet as pq

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {
            "registry_parquet": out / "registry.parquet",
            "registry_csv": out / "registry.csv",
            "places": out / "places.csv",
            "facilities": out / "facilities.csv",
        }
        pq.write_table(self.registry, paths["registry_parquet"], compression="zstd")
        pacsv.write_csv(self.registry, paths["registry_csv"])
        pacsv.write_csv(self.places, paths["places"])
        pacsv.write_csv(self.facilities, paths["facilities"])
        if self.polygons:
            paths["places_geojson"] = out / "places.geojson"
            feats = []
            for code, nm in zip(
                self.places.column("insee").to_pylist(), self.places.column("name").to_pylist()
            ):
                rings = self.polygons.get(code) or self.polygons.get(nm)
                if rings:
                    feats.append(
                        {
                            "type": "Feature",
                            "properties": {"insee": code, "name": nm},
                            "geometry": {"type": "Polygon", "coordinates": [r.tolist() for r in rings]},
                        }
                    )
            doc = {"type": "FeatureCollection", "features": feats}
            paths["places_geojson"].write_text(json.dumps(doc), encoding="utf-8")
        return paths


@dataclass
class _Places:
    insee: list[str]
    name: list[str]
    lat: np.ndarray
    lon: np.ndarray
    pop: np.ndarray


def _parse_places(places: Iterable[Mapping[str, Any]]) -> _Places:
    insee, names, lat, lon, pop = [], [], [], [], []
    for i, r in enumerate(places):
        try:
            la, lo, po = float(r["lat"]), float(r["lon"]), float(r["population"])
            nm = str(r["name"]).strip()
        except KeyError as e:
            raise ValueError(
                f"place {i}: missing column {e}; a place needs name, lat, lon, population"
            ) from None
        except (TypeError, ValueError):
            raise ValueError(f"place {i}: lat, lon and population must be numbers") from None
        if not (-90 <= la <= 90 and -180 <= lo <= 180) or not math.isfinite(po) or po < 0 or not nm:
            raise ValueError(f"place {i} ({nm!r}): lat/lon out of range, empty name or negative population")
        code = str(r.get("insee") or "").strip() or f"p{i:05d}"
        if not re.fullmatch(r"[A-Za-z0-9]+", code):
            raise ValueError(f"place {i}: insee code {code!r} must be letters and digits")
        insee.append(code)
        names.append(nm)
        lat.append(la)
        lon.append(lo)
        pop.append(po)
    if not insee:
        raise ValueError("no places: the CSV needs at least one row with name, lat, lon, population")
    if len(set(insee)) != len(insee):
        raise ValueError("duplicate place codes (insee): each place needs its own code")
    return _Places(insee, names, np.array(lat), np.array(lon), np.array(pop))


def _market_dow(insee: str, seed: int, pop: float) -> int:
    """Weekly market day of a place (Tuesday..Saturday), towns of 2,500+ only."""
    if pop < 2500:
        return -1
    h = _splitmix(seed ^ int.from_bytes(insee.encode()[:8].ljust(8, b"\0"), "little"))
    return 1 + h % 5


def _place_points(
    rng: np.random.Generator,
    n: int,
    lat0: float,
    lon0: float,
    sigma_m: float,
    rings: list[np.ndarray] | None,
) -> tuple[np.ndarray, np.ndarray]:
    """N points around (lat0, lon0), Gaussian with sigma_m, kept inside the polygon."""
    lat = np.empty(n)
    lon = np.empty(n)
    todo = np.arange(n)
    for _ in range(40):
        if todo.size == 0:
            break
        x = rng.normal(0.0, sigma_m, todo.size)
        y = rng.normal(0.0, sigma_m, todo.size)
        la, lo = _to_latlon(x, y, lat0, lon0)
        ok = _inside(la, lo, rings) if rings else np.ones(todo.size, dtype=bool)
        lat[todo[ok]] = la[ok]
        lon[todo[ok]] = lo[ok]
        todo = todo[~ok]
    if todo.size:
        # Narrow polygons: fall back to a tight cluster at the centre.
        x = rng.normal(0.0, 30.0, todo.size)
        y = rng.normal(0.0, 30.0, todo.size)
        lat[todo], lon[todo] = _to_latlon(x, y, lat0, lon0)
    return lat, lon


def _geometry(rng: np.random.Generator, kind: str, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(volume_l, depth_mm, offset_mm) for n containers of a kind."""
    if kind == "glass_bank":
        vol = rng.choice([3000.0, 4000.0], n, p=[0.6, 0.4])
        depth = np.where(vol == 3000.0, 1550.0, 1750.0) * rng.uniform(0.95, 1.05, n)
        offset = rng.uniform(150.0, 300.0, n)
    elif kind in ("paper_bank", "packaging_bank"):
        vol = rng.choice([3000.0, 4000.0], n, p=[0.3, 0.7])
        depth = np.where(vol == 3000.0, 1600.0, 1800.0) * rng.uniform(0.95, 1.05, n)
        offset = rng.uniform(200.0, 350.0, n)
    elif kind == "grouping_point":
        vol = rng.choice([660.0, 770.0], n, p=[0.5, 0.5])
        depth = np.where(vol == 660.0, 1020.0, 1110.0) * rng.uniform(0.97, 1.03, n)
        offset = rng.uniform(80.0, 120.0, n)
    else:  # park_bin
        vol = rng.choice([50.0, 60.0, 80.0, 100.0, 110.0, 120.0], n, p=[0.15, 0.2, 0.2, 0.2, 0.1, 0.15])
        depth = (380.0 + 4.3 * vol) * rng.uniform(0.95, 1.05, n)
        offset = rng.uniform(40.0, 80.0, n)
    return vol, np.round(depth), np.round(offset)


def _match_commune(row: Mapping[str, Any], pl: _Places) -> int | None:
    """Index of the place a facility row names (postcode + name in the address, else
    any place name in the address or name), or None."""
    address = str(row.get("address") or "")
    text = _norm(address + " " + str(row.get("name") or ""))
    names = [_norm(n) for n in pl.name]
    m = re.search(r"\b\d{5}\s+([^,(;]+)", address)
    if m:
        want = _norm(m.group(1))
        for i, n in enumerate(names):
            if n == want:
                return i
    best: tuple[int, int] | None = None
    for i, n in enumerate(names):
        if n and re.search(rf"\b{re.escape(n)}\b", text):
            if best is None or len(n) > best[1]:
                best = (i, len(n))
    return best[0] if best else None


def _build(
    name: str,
    pl: _Places,
    polys: dict[str, list[np.ndarray]],
    fac_rows: list[Mapping[str, Any]],
    scale: float,
    seed: int,
    dens: dict[str, float],
) -> Territory:
    rng = np.random.default_rng([seed, 0x7E881])
    models = _core.sim_models()  # (name, fport, eui prefix, mix per kind)
    n_places = len(pl.insee)
    market = [_market_dow(pl.insee[i], seed, float(pl.pop[i])) for i in range(n_places)]

    # Counts per place and kind (largest remainder, proportional to population).
    counts: dict[str, np.ndarray] = {}
    for kind in CONTAINER_KINDS:
        total = round(float(pl.pop.sum()) / dens[kind] * scale)
        counts[kind] = _apportion(pl.pop, total)

    cols: dict[str, list[Any]] = {
        k: []
        for k in (
            "container_id",
            "container_kind",
            "lat",
            "lon",
            "insee",
            "commune",
            "volume",
            "depth",
            "offset",
            "market",
            "site",
            "placement",
        )
    }
    for i in range(n_places):
        code = pl.insee[i]
        rings = polys.get(code) or polys.get(pl.name[i])
        lat0, lon0 = float(pl.lat[i]), float(pl.lon[i])
        if rings:
            area = _area_m2(rings, lat0, lon0)
            spread = 0.35 * math.sqrt(area) if area > 0 else 800.0
            placement = "polygon"
        else:
            spread = float(np.clip(150.0 * math.sqrt(max(pl.pop[i], 1.0) / 1000.0), 200.0, 2500.0))
            placement = "around_centre"
        # Bring-bank sites: one glass, paper and packaging bank per site as counts allow.
        n_sites = int(max(counts["glass_bank"][i], counts["paper_bank"][i], counts["packaging_bank"][i]))
        s_lat, s_lon = _place_points(rng, n_sites, lat0, lon0, spread, rings)
        for kind in CONTAINER_KINDS:
            n = int(counts[kind][i])
            if n == 0:
                continue
            if kind in ("glass_bank", "paper_bank", "packaging_bank"):
                # Spread the kind's banks over the sites, a few metres apart.
                idx = np.arange(n) % max(n_sites, 1)
                jx = rng.normal(0.0, 4.0, n)
                jy = rng.normal(0.0, 4.0, n)
                x, y = _to_xy(s_lat[idx], s_lon[idx], lat0, lon0)
                la, lo = _to_latlon(x + jx, y + jy, lat0, lon0)
                site = [f"{code}-site-{int(j) + 1:04d}" for j in idx]
            else:
                sigma = spread * (0.5 if kind == "park_bin" else 1.0)
                la, lo = _place_points(rng, n, lat0, lon0, sigma, rings)
                site = [""] * n
            vol, depth, offset = _geometry(rng, kind, n)
            x, y = _to_xy(la, lo, lat0, lon0)
            near = np.hypot(x, y) < 600.0
            mk = market[i] if kind in ("park_bin", "grouping_point", "packaging_bank") else -1
            cols["container_id"] += [f"{code}-{_ABBR[kind]}-{j + 1:04d}".lower() for j in range(n)]
            cols["container_kind"] += [kind] * n
            cols["lat"].append(np.round(la, 6))
            cols["lon"].append(np.round(lo, 6))
            cols["insee"] += [code] * n
            cols["commune"] += [pl.name[i]] * n
            cols["volume"].append(vol)
            cols["depth"].append(depth)
            cols["offset"].append(offset)
            cols["market"].append(np.where(near, mk, -1).astype(np.int8))
            cols["site"] += site
            cols["placement"] += [placement] * n
    n = len(cols["container_id"])
    if n == 0:
        raise ValueError(
            "the territory has no containers: the population is too small for the densities "
            "at this scale; raise scale"
        )
    kinds = np.array([KIND_CODES[k] for k in cols["container_kind"]], dtype=np.uint8)

    # Sensor model per container, by the per-kind mix.
    mix = np.array([m[3] for m in models], dtype=float)  # (models, kinds)
    model_code = np.empty(n, dtype=np.uint8)
    u = rng.random(n)
    for k in range(len(CONTAINER_KINDS)):
        sel = kinds == k
        p = mix[:, k] / mix[:, k].sum()
        model_code[sel] = np.searchsorted(np.cumsum(p), u[sel], side="right").clip(0, len(models) - 1)
    # DevEUIs: model prefix (24 bits) + a keyed bijection of a per-model counter (40 bits).
    dev_eui = np.empty(n, dtype=np.uint64)
    for m, (_, _, prefix, _) in enumerate(models):
        sel = np.flatnonzero(model_code == m)
        suffix = _dev_eui_suffixes(sel.size, _splitmix(seed * 31 + m))
        dev_eui[sel] = (np.uint64(prefix) << np.uint64(40)) | suffix
    device_id = [f"{int(e):016x}" for e in dev_eui]
    model_names = [m[0] for m in models]

    registry = pa.Table.from_arrays(
        [
            pa.array(device_id, pa.string()),
            pa.array([model_names[c] for c in model_code], pa.string()),
            pa.array(cols["container_id"], pa.string()),
            pa.array(cols["container_kind"], pa.string()),
            pa.array([CONTAINER_KINDS[k] for k in cols["container_kind"]], pa.string()),
            pa.array(np.concatenate(cols["volume"]), pa.float64()),
            pa.array(np.concatenate(cols["depth"]), pa.float64()),
            pa.array(np.concatenate(cols["offset"]), pa.float64()),
            pa.array(np.concatenate(cols["lat"]), pa.float64()),
            pa.array(np.concatenate(cols["lon"]), pa.float64()),
            pa.array(cols["insee"], pa.string()),
            pa.array(cols["commune"], pa.string()),
        ],
        schema=REGISTRY_SCHEMA,
    )
    sim = pa.table(
        {
            "device_id": registry.column("device_id"),
            "kind_code": pa.array(kinds),
            "model_code": pa.array(model_code),
            "dev_eui": pa.array(dev_eui),
            "market_dow": pa.array(np.concatenate(cols["market"])),
            "site_id": pa.array(cols["site"], pa.string()),
            "placement": pa.array(cols["placement"], pa.string()),
        }
    )
    places = pa.table(
        {
            "insee": pl.insee,
            "name": pl.name,
            "lat": pl.lat,
            "lon": pl.lon,
            "population": pl.pop,
            "market_dow": pa.array(market, pa.int8()),
            "containers": pa.array(
                sum((counts[k] for k in CONTAINER_KINDS), np.zeros(n_places, dtype=np.int64))
            ),
            "polygon": [bool(polys.get(c) or polys.get(nm)) for c, nm in zip(pl.insee, pl.name)],
        }
    )
    seat = int(np.argmax(pl.pop))
    fac: dict[str, list[Any]] = {
        k: [] for k in ("name", "kind", "commune_insee", "commune", "lat", "lon", "placement")
    }
    for r in fac_rows:
        lat_s, lon_s = str(r.get("lat") or "").strip(), str(r.get("lon") or "").strip()
        found = _match_commune(r, pl)
        j = seat if found is None else found
        try:
            given = (float(lat_s), float(lon_s)) if lat_s and lon_s else None
        except ValueError:
            given = None
        if given is not None:
            flat, flon, how = given[0], given[1], "given coordinates"
        elif found is not None:
            flat, flon, how = float(pl.lat[j]), float(pl.lon[j]), PLACED_AT_CENTRE
        else:
            flat, flon, how = float(pl.lat[j]), float(pl.lon[j]), PLACED_AT_SEAT
        fac["name"].append(str(r.get("name") or ""))
        fac["kind"].append(str(r.get("kind") or "other"))
        fac["commune_insee"].append(pl.insee[j])
        fac["commune"].append(pl.name[j])
        fac["lat"].append(flat)
        fac["lon"].append(flon)
        fac["placement"].append(how)
    facilities = pa.table(
        {
            "name": pa.array(fac["name"], pa.string()),
            "kind": pa.array(fac["kind"], pa.string()),
            "commune_insee": pa.array(fac["commune_insee"], pa.string()),
            "commune": pa.array(fac["commune"], pa.string()),
            "lat": pa.array(fac["lat"], pa.float64()),
            "lon": pa.array(fac["lon"], pa.float64()),
            "placement": pa.array(fac["placement"], pa.string()),
        }
    )
    notes = [
        f"{n} containers over {n_places} places at scale {scale:g} (densities: "
        + ", ".join(f"{k} 1/{dens[k]:g} inhabitants" for k in CONTAINER_KINDS)
        + ")",
    ]
    if fac_rows:
        notes.append("facilities without coordinates are placed at their commune's centre (column placement)")
    return Territory(
        name=name,
        places=places,
        registry=registry,
        sim=sim,
        facilities=facilities,
        seed=seed,
        scale=scale,
        polygons=polys,
        notes=notes,
    )
