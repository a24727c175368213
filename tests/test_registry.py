from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from tidstream.registry import RegistryError, load_registry, validate_registry
from tidstream.schema import REGISTRY_SCHEMA

HEADER = "device_id,model,container_id,container_kind,stream,volume_l,depth_mm,offset_mm,lat,lon,commune_insee,commune\n"
GOOD = (
    "A84041000181C8AA,milesight-em310-udl,C-1,glass_bank,glass,3000,1500,250,47.51,6.79,25388,Montbéliard\n"
)


def test_csv_loads_and_normalises_device_ids(tmp_path):
    f = tmp_path / "r.csv"
    f.write_text(HEADER + GOOD)
    reg = load_registry(f)
    assert len(reg) == 1
    assert reg.table.column("device_id").to_pylist() == ["a84041000181c8aa"]
    assert reg.lookup(["a84041000181c8aa", "0000000000000000"]).tolist() == [0, -1]
    # 1500 mm usable, full line 250 mm below the sensor: 1000 mm -> (250+1500-1000)/1500
    assert reg.fill_ratio(np.array([0]), np.array([1000.0]))[0] == pytest.approx(0.5)


def test_every_problem_is_reported_with_its_row(tmp_path):
    f = tmp_path / "r.csv"
    f.write_text(
        HEADER
        + GOOD
        + "A84041000181C8AA,milesight-em310-udl,C-2,glass_bank,glass,3000,1500,250,47.5,6.8,25388,X\n"
        + "zz,nope,C-3,bin,trash,-1,0,250,95,6.8,ABC,X\n"
    )
    with pytest.raises(RegistryError) as ei:
        load_registry(f)
    rows = {r for r, _ in ei.value.problems}
    assert rows == {2, 3}
    text = str(ei.value)
    for fragment in (
        "row 2: device_id a84041000181c8aa already on row 1",
        "row 3: device_id 'zz'",
        "model 'nope'",
        "container_kind 'bin'",
        "stream 'trash'",
        "volume_l -1.0",
        "depth_mm 0.0",
        "location (95.0, 6.8)",
        "commune_insee 'ABC'",
    ):
        assert fragment in text


def test_missing_column_and_parquet(tmp_path):
    with pytest.raises(RegistryError, match="missing column"):
        validate_registry(pa.table({"device_id": ["a"]}))
    f = tmp_path / "r.csv"
    f.write_text(HEADER + GOOD)
    t = load_registry(f).table
    import pyarrow.parquet as pq

    pq.write_table(t, tmp_path / "r.parquet")
    assert load_registry(tmp_path / "r.parquet").table.schema.equals(REGISTRY_SCHEMA)
