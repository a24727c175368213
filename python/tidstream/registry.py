"""The device registry: which sensor model sits on which container, and its geometry.

Loaded from CSV or Parquet with :data:`tidstream.schema.REGISTRY_SCHEMA` columns and
validated row by row: every problem is reported with its row number (1-based, header
excluded) and a reason, all at once, so a file can be fixed in one pass.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from . import _core
from .exceptions import ConfigError
from .names import check_text
from .schema import CONTAINER_KINDS, REGISTRY_SCHEMA

__all__ = ["Registry", "RegistryError", "load_registry"]

_EUI = re.compile(r"^[0-9a-f]{16}$")
_INSEE = re.compile(r"^[0-9][0-9AB][0-9]{3}$")


class RegistryError(ConfigError):
    """An invalid registry file. ``problems`` lists ``(row, reason)`` pairs."""

    def __init__(self, message: str, problems: list[tuple[int, str]]) -> None:
        super().__init__(message)
        self.problems = problems


@dataclass
class Registry:
    """A validated registry with O(1) lookup by device id (lowercase DevEUI)."""

    table: pa.Table

    def __post_init__(self) -> None:
        ids = self.table.column("device_id").to_pylist()
        self.index: dict[str, int] = {d: i for i, d in enumerate(ids)}
        self.depth_mm = self.table.column("depth_mm").to_numpy()
        self.offset_mm = self.table.column("offset_mm").to_numpy()
        cols = (
            "device_id",
            "model",
            "container_id",
            "container_kind",
            "stream",
            "commune_insee",
            "commune",
            "lat",
            "lon",
            "volume_l",
        )
        self._rows = list(zip(*(self.table.column(c).to_pylist() for c in cols)))

    def __len__(self) -> int:
        return self.table.num_rows

    def row(self, i: int) -> tuple:
        """(device_id, model, container_id, container_kind, stream, commune_insee, commune, lat, lon, volume_l)."""
        return self._rows[i]

    def lookup(self, device_ids: list[str | None]) -> np.ndarray:
        """Row index per device id, -1 when unknown."""
        get = self.index.get
        return np.fromiter(
            (get(d, -1) if d else -1 for d in device_ids), dtype=np.int64, count=len(device_ids)
        )

    def fill_ratio(self, rows: np.ndarray, distance_mm: np.ndarray) -> np.ndarray:
        """Fill ratio (0 empty, 1 full, up to 1.5 heaped) for readings of the given rows;
        NaN where the distance is missing. Computed in the Rust core."""
        return _core.fill_ratio(
            np.ascontiguousarray(distance_mm, dtype=np.float64),
            np.ascontiguousarray(self.depth_mm[rows]),
            np.ascontiguousarray(self.offset_mm[rows]),
        )


def _read(path: Path) -> pa.Table:
    if path.suffix.lower() in (".parquet", ".pq"):
        return pq.read_table(path)
    if path.suffix.lower() in (".csv", ".txt"):
        text_cols = {f.name: pa.string() for f in REGISTRY_SCHEMA if pa.types.is_string(f.type)}
        return pacsv.read_csv(
            path, convert_options=pacsv.ConvertOptions(column_types=text_cols, strings_can_be_null=False)
        )
    raise ConfigError(f"registry {path}: use a .csv or .parquet file")


def validate_registry(table: pa.Table, source: str = "registry", header_lines: int = 0) -> Registry:
    """Check columns, types and every row; returns a :class:`Registry`.

    ``header_lines`` (1 for a CSV file) makes messages also give the file line of a row.

    Raises:
        RegistryError: listing every problem with its row number.
    """
    missing = [f.name for f in REGISTRY_SCHEMA if f.name not in table.column_names]
    if missing:
        raise RegistryError(f"{source}: missing column(s) {', '.join(missing)}", [(0, "missing columns")])
    table = table.select([f.name for f in REGISTRY_SCHEMA])
    try:
        table = table.cast(REGISTRY_SCHEMA)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
        raise RegistryError(f"{source}: a column has the wrong type: {e}", [(0, str(e))]) from None
    problems: list[tuple[int, str]] = []
    known_models = set(_core.models())
    seen: dict[str, int] = {}
    cols = {n: table.column(n).to_pylist() for n in table.column_names}
    for i in range(table.num_rows):
        row = i + 1

        def bad(reason: str, row: int = row) -> None:
            problems.append((row, reason))

        dev = cols["device_id"][i]
        if dev is None or not _EUI.fullmatch(dev.lower()):
            bad(f"device_id {dev!r} is not 16 hex digits")
        else:
            low = dev.lower()
            if low in seen:
                bad(f"device_id {low} already on row {seen[low]}")
            seen[low] = row
        if cols["model"][i] not in known_models:
            bad(f"model {cols['model'][i]!r} is not a known model (tidstream.models() or a loaded layout)")
        kind = cols["container_kind"][i]
        if kind not in CONTAINER_KINDS:
            bad(f"container_kind {kind!r} is not one of {', '.join(CONTAINER_KINDS)}")
        if cols["stream"][i] not in set(CONTAINER_KINDS.values()):
            bad(f"stream {cols['stream'][i]!r} is not one of glass, paper, packaging, residual")
        for name, lo, hi in (("volume_l", 1, 100_000), ("depth_mm", 10, 10_000), ("offset_mm", 0, 5_000)):
            v = cols[name][i]
            if v is None or not (isinstance(v, float) and math.isfinite(v)) or not lo <= v <= hi:
                bad(f"{name} {v!r} must be a number in {lo}..{hi}")
        lat, lon = cols["lat"][i], cols["lon"][i]
        if lat is None or not -90 <= lat <= 90 or lon is None or not -180 <= lon <= 180:
            bad(f"location ({lat}, {lon}) is not a WGS84 latitude/longitude")
        insee = cols["commune_insee"][i]
        if insee is None or not _INSEE.fullmatch(insee):
            bad(f"commune_insee {insee!r} is not a 5-character INSEE code")
        for name in ("container_id", "commune"):
            why = check_text(cols[name][i], name)
            if why:
                bad(why)
    if problems:

        def at(r: int, why: str) -> str:
            return f"row {r}: {why} (line {r + header_lines})" if header_lines else f"row {r}: {why}"

        shown = "; ".join(at(r, why) for r, why in problems[:20])
        more = f" (and {len(problems) - 20} more)" if len(problems) > 20 else ""
        raise RegistryError(f"{source}: {len(problems)} problem(s): {shown}{more}", problems)
    table = table.set_column(0, REGISTRY_SCHEMA.field("device_id"), pc.utf8_lower(table.column("device_id")))
    return Registry(table)


def load_registry(path: str | PathLike[str]) -> Registry:
    """Load and validate a registry file (CSV or Parquet)."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"registry file {p} not found")
    try:
        table = _read(p)
    except (pa.ArrowInvalid, OSError) as e:
        raise RegistryError(f"{p}: cannot read: {e}", [(0, str(e))]) from None
    csv = p.suffix.lower() in (".csv", ".txt")
    return validate_registry(table, str(p), header_lines=1 if csv else 0)
