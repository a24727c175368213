"""Every dataflow file caps OpenBLAS at one thread before numpy loads (no flow calls BLAS;
OpenBLAS would start a thread per core that spins after the import), unless the
environment already says otherwise."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FLOWS = sorted((ROOT / "dataflows").glob("*.py"))


@pytest.mark.parametrize("path", FLOWS, ids=[p.stem for p in FLOWS])
def test_openblas_threads_set_before_any_import_but_os(path: Path) -> None:
    body = ast.parse(path.read_text()).body
    stmts = [s for s in body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
    assert [a.name for a in stmts[0].names] == ["os"]  # type: ignore[attr-defined]
    assert ast.unparse(stmts[1]) == "os.environ.setdefault('OPENBLAS_NUM_THREADS', '1')"
    assert all(isinstance(s, (ast.Import, ast.ImportFrom)) for s in stmts[2:4])


def _threads_after_import(tmp: Path, openblas: str | None) -> tuple[str, int]:
    """(OPENBLAS_NUM_THREADS, threads of the process) after loading dataflows/export.py
    and numpy in a fresh interpreter."""
    code = (
        "import os, runpy, sys; runpy.run_path(sys.argv[1]); import numpy; "
        "print(os.environ['OPENBLAS_NUM_THREADS'], len(os.listdir('/proc/self/task')))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TIDSTREAM_", "OPENBLAS_"))}
    env["TIDSTREAM_EXPORT_DIR"] = str(tmp / "export")
    env["PYTHONPATH"] = str(ROOT / "python")
    if openblas is not None:
        env["OPENBLAS_NUM_THREADS"] = openblas
    out = subprocess.run(
        [sys.executable, "-c", code, str(ROOT / "dataflows" / "export.py")],
        env=env, capture_output=True, text=True, check=True, cwd=tmp,
    )  # fmt: skip
    value, threads = out.stdout.split()[-2:]
    return value, int(threads)


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="counts threads in /proc (Linux)")
def test_openblas_threads_in_a_flow_process(tmp_path: Path) -> None:
    default = _threads_after_import(tmp_path, None)
    one = _threads_after_import(tmp_path, "1")
    # Unset: the flow sets 1, and the process has exactly the threads of an explicit 1.
    assert default == one and default[0] == "1"
    # Set by the operator: kept.
    assert _threads_after_import(tmp_path, "2")[0] == "2"
