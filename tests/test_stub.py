"""The hand-written stub `_core.pyi` matches the compiled module (mypy.stubtest)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_stub_matches_compiled_module():
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy.stubtest",
            "tidstream._core",
            "--allowlist",
            str(ROOT / "stubtest-allowlist.txt"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_public_api_is_exported_and_typed():
    import tidstream

    for name in tidstream.__all__:
        assert hasattr(tidstream, name), name
    assert (Path(tidstream.__file__).parent / "py.typed").exists()
    assert (Path(tidstream.__file__).parent / "_core.pyi").exists()
