"""Solver quality: PyVRP on CVRPLIB instances against their best-known solutions."""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = ["CvrpGap", "cvrplib_gap", "default_cvrplib_dir"]


def default_cvrplib_dir() -> Path:
    """``$TIDSTREAM_SHARED/data/cvrplib``, else the repository's sibling ``../shared``."""
    from ..simulate.territory import default_shared_dir

    return default_shared_dir() / "data" / "cvrplib"


@dataclass
class CvrpGap:
    """One instance: PyVRP's cost, the best-known cost (BKS, from the ``.sol`` file,
    recomputed from its routes) and the gap ``cost / bks - 1``."""

    instance: str
    clients: int
    bks: int
    bks_file: int
    cost: int
    gap: float
    feasible: bool
    time_limit_s: float
    elapsed_s: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def cvrplib_gap(
    name: str, *, time_limit_s: float = 5.0, seed: int = 1, folder: str | os.PathLike[str] | None = None
) -> CvrpGap:
    """Solve ``<folder>/<name>.vrp`` (nearest-integer rounding per edge, the TSPLIB / X
    convention) for ``time_limit_s`` seconds and compare with ``<name>.sol``.

    ``bks`` is the cost of the ``.sol`` routes evaluated by PyVRP on the same data (it
    must equal ``bks_file``, the ``Cost`` line: the evaluation and the file agree).
    """
    import pyvrp
    from pyvrp.stop import MaxRuntime

    d = Path(folder) if folder is not None else default_cvrplib_dir()
    vrp, sol = d / f"{name}.vrp", d / f"{name}.sol"
    if not vrp.exists() or not sol.exists():
        raise FileNotFoundError(f"{vrp} / {sol} not found: pass folder= or set TIDSTREAM_SHARED")
    data = pyvrp.read(vrp, round_func="round")
    best = pyvrp.read_solution(sol, data)
    bks_file = 0
    for line in sol.read_text().splitlines():
        if line.strip().lower().startswith("cost"):
            bks_file = round(float(line.split()[1]))
    t0 = time.perf_counter()
    res = pyvrp.solve(data, stop=MaxRuntime(time_limit_s), seed=seed, display=False, collect_stats=False)
    elapsed = time.perf_counter() - t0
    cost = int(res.best.distance())
    bks = int(best.distance())
    return CvrpGap(
        instance=name,
        clients=data.num_clients,
        bks=bks,
        bks_file=bks_file,
        cost=cost,
        gap=cost / bks - 1.0,
        feasible=bool(res.best.is_feasible()),
        time_limit_s=time_limit_s,
        elapsed_s=elapsed,
    )
