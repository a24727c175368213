"""Simulated sensor fleet of a real territory.

A :class:`Territory` (default: Pays de Montbéliard Agglomération, from
``shared/data/pma/``) places containers with sensors around its communes; a
:class:`Simulation` runs their fill dynamics, collections, overflows and sensor faults
in Rust (deterministic from a seed) and yields the uplinks the network servers would
deliver (real vendor frames in TTN v3 / ChirpStack v4 envelopes, or raw), in time
order, with the ground truth beside them::

    from tidstream.simulate import Territory, simulate
    sim = simulate(Territory.pma(scale=1.0, seed=0), days=7, start="2025-01-06", seed=0)
    for batch in sim.uplinks():          # pyarrow RecordBatches, time order
        ...
    sim.write("out/", format="parquet")  # uplinks, registry, ground truth, run.json

See docs/SIMULATOR.md.
"""

from __future__ import annotations

from .run import SimChunk, SimResult, SimStats, Simulation, simulate
from .schemas import COLLECTION_SCHEMA, OVERFLOW_SCHEMA, SIM_UPLINK_SCHEMA, TRUTH_READING_SCHEMA
from .territory import DENSITY, Territory, default_shared_dir
from .truth import DELIVERY_CODES, TruthColumns, truth_columns

__all__ = [
    "COLLECTION_SCHEMA",
    "DELIVERY_CODES",
    "DENSITY",
    "OVERFLOW_SCHEMA",
    "SIM_UPLINK_SCHEMA",
    "TRUTH_READING_SCHEMA",
    "SimChunk",
    "SimResult",
    "SimStats",
    "Simulation",
    "Territory",
    "TruthColumns",
    "default_shared_dir",
    "simulate",
    "truth_columns",
]
