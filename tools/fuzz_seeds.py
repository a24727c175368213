"""Seed corpora for the cargo-fuzz targets (``make fuzz``, docs/RELIABILITY.md).

``fuzz/corpus/decode/``: byte 0 = model index (in ``tidstream.models()`` order, which
is the Rust registry's order), byte 1 = fPort (255 = none), then the frame: the vendor
test vectors of shared/sensors/vectors and one encoded frame per encodable model.
``fuzz/corpus/decode_uplinks/``: byte 0 = format (0 TTN v3, 1 ChirpStack v4), then a
valid envelope (the integration tests' builders) and a few truncations.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import tidstream

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from conftest import load_vectors  # noqa: E402
from flowkit import chirpstack, ttn  # noqa: E402


def _put(folder: Path, data: bytes) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / hashlib.sha1(data).hexdigest()).write_bytes(data)


def main() -> int:
    """Write the seeds; print how many."""
    models = tidstream.models()
    index = {m: i for i, m in enumerate(models)}
    dec = ROOT / "fuzz" / "corpus" / "decode"
    up = ROOT / "fuzz" / "corpus" / "decode_uplinks"
    n = 0
    for _stem, model, v in load_vectors():
        fport = v.get("fport")
        _put(dec, bytes([index[model], 255 if fport is None else int(fport)]) + bytes.fromhex(v["hex"]))
        n += 1
    frames = []
    for m in models:
        try:
            frame = tidstream.encode(m, distance_mm=800, battery_pct=70, temperature_c=11, tilt=False)
        except Exception:  # models without an encoder
            continue
        frames.append(frame)
        _put(dec, bytes([index[m], 255]) + frame)
        n += 1
    dev = "a840410000000001"
    for k, frame in enumerate(frames[:8]):
        for fmt, env in ((0, ttn(dev, 1, k, frame)), (1, chirpstack(dev, 1, k, frame))):
            _put(up, bytes([fmt]) + env)
            _put(up, bytes([fmt]) + env[: len(env) // 2])
            n += 2
    _put(up, b"\x00" + json.dumps({"end_device_ids": {"dev_eui": dev}, "uplink_message": {}}).encode())
    print(f"{n + 1} seeds in {dec.parent}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
