"""Documentation that states facts is checked against the code."""

from __future__ import annotations

import doctest
import re
from pathlib import Path

import tidstream

ROOT = Path(__file__).resolve().parents[1]


def crc16_ccitt_false(data: bytes) -> int:
    """Independent implementation (catalogue check value 0x29B1 for b"123456789")."""
    crc = 0xFFFF
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def test_crc_reference():
    assert crc16_ccitt_false(b"123456789") == 0x29B1


def test_tid1_doc_example_is_what_the_encoder_writes():
    text = (ROOT / "docs" / "TID1.md").read_text()
    block = text.split("gives 19 bytes", 1)[1].split("```", 2)[1]
    doc_bytes = bytes.fromhex(" ".join(re.findall(r"^((?:[0-9a-f]{2} )+)", block, re.M)))
    frame = tidstream.encode(
        "tid1",
        distance_mm=1234,
        temperature_c=-3.5,
        battery_pct=87,
        battery_v=3.61,
        fire_alarm=True,
        measured_at_ms=1_764_000_000_000,
        stored=[(1_763_996_400_000, 1300.0)],
    )
    assert doc_bytes == frame
    assert int.from_bytes(frame[-2:], "little") == crc16_ccitt_false(frame[:-2])


def test_package_docstring_examples_run():
    failures, tried = doctest.testmod(tidstream, verbose=False)
    assert tried > 0 and failures == 0


def test_readme_lists_every_model():
    readme = (ROOT / "README.md").read_text()
    builtins = [m for m in tidstream.models() if tidstream.model_info(m)["engine"] != "runtime-layout"]
    assert len(builtins) == 18
    for m in builtins:
        assert f"`{m}`" in readme, m
