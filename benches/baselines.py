"""Workloads and baselines that tidstream's benchmarks are measured against.

Three codecs, decoded three ways each (tidstream's own ``decode_batch`` is the third):

* pure Python with ``struct`` (and ``binascii.crc_hqx`` for tid1's CRC), over
  ``list[bytes]``, producing column lists (``dict[str, list]``, ``None`` = absent);
* numba ``@njit`` over the Arrow binary layout (one flat ``uint8`` buffer plus
  ``int32`` / ``int64`` offsets), writing numpy output arrays (``NaN`` = absent;
  ``tilt`` as ``int8`` with ``-1`` = absent).

And one envelope baseline: ``orjson.loads`` + field extraction in Python +
``base64.b64decode`` of ``frm_payload``, per TTN v3 uplink message.

The baselines decode only what the benchmark workloads contain (the measurement
channels of the EM310-UDL, 8-byte v1.1.4 LDDS75 frames, any tid1 frame); anything else
is ``ok = False``, as in tidstream's normalized decode (which rejects an EM310 frame
with an unknown record, where the vendor decoder returns a partial object).
They produce *fewer* columns than tidstream (no alarm flags, timestamps, error text,
Arrow assembly), which favours the baselines. ``check_*`` compare a baseline's output
with tidstream's on the same frames: a fast wrong baseline is worthless.
"""

from __future__ import annotations

import base64
import binascii
import os
import struct
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import tidstream

EM310 = "milesight-em310-udl"
LDDS75 = "dragino-ldds75"
TID1 = "tid1"
CODECS = (EM310, LDDS75, TID1)

#: pytest sizes (``make test`` runs each benchmark once, so keep these small by default).
BENCH_N = int(os.environ.get("TIDSTREAM_BENCH_N", "20000"))
BENCH_ENVELOPES = int(os.environ.get("TIDSTREAM_BENCH_ENVELOPES", str(max(BENCH_N // 10, 100))))

# --------------------------------------------------------------------------------------
# Workloads (deterministic for a given n and seed)
# --------------------------------------------------------------------------------------


def make_workload(model: str, n: int, seed: int = 0) -> tuple[pa.BinaryArray, dict[str, Any]]:
    """``n`` realistic frames of ``model`` (a BinaryArray, via encode_batch) and the
    normalized values they carry (ground truth: ``NaN`` / ``-1`` = absent)."""
    rng = np.random.default_rng(seed)
    if model == EM310:
        cols: dict[str, Any] = {
            "battery_pct": rng.integers(0, 101, n).astype(np.float64),
            "distance_mm": rng.integers(0, 65536, n).astype(np.float64),
            "tilt": rng.random(n) < 0.05,
        }
        truth = dict(cols)
    elif model == LDDS75:
        dist = rng.integers(0, 7501, n).astype(np.float64)
        # A few "No Sensor" (0) / "Invalid Reading" (20) frames: absent distance.
        special = rng.random(n) < 0.01
        dist[special] = rng.choice([0.0, 20.0], int(special.sum()))
        cols = {
            "battery_v": rng.integers(2500, 3700, n) / 1000.0,
            "distance_mm": dist,
            "temperature_c": rng.integers(-400, 850, n) / 10.0,
        }
        truth = dict(cols, distance_mm=np.where((dist == 0) | (dist == 20), np.nan, dist))
    elif model == TID1:
        dist = rng.integers(0, 65536, n).astype(np.float64)
        dist[rng.random(n) < 0.02] = np.nan  # no echo
        temp = rng.integers(-400, 850, n) / 10.0
        temp[rng.random(n) < 0.02] = np.nan
        bpct = rng.integers(0, 101, n).astype(np.float64)
        bpct[rng.random(n) < 0.02] = np.nan
        cols = {
            "distance_mm": dist,
            "temperature_c": temp,
            "battery_pct": bpct,
            "battery_v": rng.integers(200, 455, n) / 100.0,
            "tilt": rng.random(n) < 0.05,
            "fire_alarm": rng.random(n) < 0.01,
            "measured_at_ms": 1_764_000_000_000 + rng.integers(0, 86_400, n) * 1000,
        }
        truth = dict(cols)
    else:
        raise ValueError(f"no workload for {model}")
    truth["ok"] = np.ones(n, dtype=bool)
    if "tilt" in truth:
        truth["tilt"] = truth["tilt"].astype(np.int8)
    return tidstream.encode_batch(model, cols), truth


def make_frames(model: str, n: int, seed: int = 0) -> pa.BinaryArray:
    """The frames of :func:`make_workload`."""
    return make_workload(model, n, seed)[0]


def corrupt_frames(model: str) -> list[bytes]:
    """A few frames each baseline must reject or decode partially like tidstream does."""
    if model == EM310:
        return [
            b"",
            bytes.fromhex("0175"),  # cut record
            bytes.fromhex("01755c038244"),  # cut distance
            bytes.fromhex("01755c0382440804000001"),  # trailing byte
            bytes.fromhex("03824408"),  # distance only
            bytes.fromhex("01755c9999000382440804"),  # unknown record: rejected
        ]
    if model == LDDS75:
        # empty, cut, one byte too long (the vendor decoder ignores trailing bytes)
        return [b"", bytes.fromhex("0ce4084400ff9c"), bytes.fromhex("0ce4084400ff9c0100")]
    good = tidstream.encode(
        TID1,
        distance_mm=1234,
        temperature_c=-3.5,
        battery_pct=87,
        battery_v=3.61,
        measured_at_ms=1_764_000_000_000,
        stored=[(1_764_000_000_000 - 3_600_000, 1300.0), (1_764_000_000_000 - 60_000, None)],
    )
    bad_crc = bytearray(good)
    bad_crc[7] ^= 1
    reserved = bytearray(good[:-2])
    reserved[1] |= 0x80  # reserved flag bit, with a valid CRC
    reserved += binascii.crc_hqx(bytes(reserved), 0xFFFF).to_bytes(2, "little")
    too_many = bytearray(good[:-2])
    too_many[12] = 33
    return [
        good,
        good[:-1],
        good + b"\0",
        bytes(bad_crc),
        bytes(reserved),
        bytes(too_many),
        b"\x02" + good[1:],
        good[:5],
        b"",
    ]


def make_ttn_messages(n: int, seed: int = 0) -> list[bytes]:
    """``n`` TTN v3 uplink messages (the documented example) carrying EM310 frames.

    Distinct DevEUI and f_cnt per message, f_port 85, 1-3 gateways with distinct
    RSSI/SNR, received_at with nanoseconds. Compact JSON, as a webhook/MQTT sends it.
    """
    rng = np.random.default_rng(seed)
    frames = make_frames(EM310, n, seed).to_pylist()
    n_gw = rng.integers(1, 4, n)
    rssi = rng.integers(-120, -30, (n, 3))
    snr = rng.integers(-200, 120, (n, 3)) / 10.0
    base_s = 1_764_000_000
    secs = base_s + np.arange(n, dtype=np.int64) * 7
    nanos = rng.integers(0, 1_000_000_000, n)
    out = []
    for i in range(n):
        t = _rfc3339(int(secs[i]), int(nanos[i]))
        gws = [
            {
                "gateway_ids": {"gateway_id": f"gtw{g}", "eui": f"9C5C8E00001A05C{g}"},
                "time": t[:23] + "Z",
                "timestamp": 2463457000 + g,
                "rssi": int(rssi[i, g]),
                "channel_rssi": int(rssi[i, g]),
                "snr": float(snr[i, g]),
                "uplink_token": "ChIKEAoEZ3R3MRIInFyOAAAaBcQQ6L3Vlgk=",
                "channel_index": 2,
            }
            for g in range(int(n_gw[i]))
        ]
        msg = {
            "end_device_ids": {
                "device_id": f"em310-{i}",
                "application_ids": {"application_id": "app1"},
                "dev_eui": f"{0x0004A30B00000000 + i:016X}",
                "join_eui": "800000000000000C",
                "dev_addr": f"{(0x00BC0000 + i) & 0xFFFFFFFF:08X}",
            },
            "correlation_ids": [
                "as:up:01E0WZGT6Y7657CPFPE5WEYDSQ",
                "gs:conn:01E0WDEC6T5T4XXBAX7S1VMFKE",
                "gs:uplink:01E0WZGSZWT07NE5TS2APTV1Z9",
                "ns:uplink:01E0WZGSZXZXZS8RFAWZX0F2FY",
                "rpc:/ttn.lorawan.v3.GsNs/HandleUplink:01E0WZGSZXGE1KS577PFBWRJEE",
            ],
            "received_at": t,
            "uplink_message": {
                "session_key_id": "AXA50tHUGUucuzS/bCGMNw==",
                "f_port": 85,
                "f_cnt": i + 1,
                "frm_payload": base64.b64encode(frames[i]).decode(),
                "rx_metadata": gws,
                "settings": {
                    "data_rate": {"lora": {"bandwidth": 125000, "spreading_factor": 7}},
                    "coding_rate": "4/6",
                    "frequency": "868300000",
                    "timestamp": 2463457000,
                    "time": t[:23] + "Z",
                },
                "consumed_airtime": "0.056576s",
                "locations": {
                    "user": {
                        "latitude": 37.97155556731436,
                        "longitude": 23.72678801175413,
                        "altitude": 10,
                        "source": "SOURCE_REGISTRY",
                    }
                },
                "version_ids": {
                    "brand_id": "milesight-iot",
                    "model_id": "em310-udl",
                    "hardware_version": "1.0",
                    "firmware_version": "1.0",
                    "band_id": "EU_863_870",
                },
                "network_ids": {"net_id": "000013", "tenant_id": "tenant1", "cluster_id": "eu1"},
                "attributes": {"key1": "value1", "key2": "value2"},
                "received_at": t,
            },
        }
        out.append(orjson.dumps(msg))
    return out


def make_chirpstack_messages(n: int, seed: int = 0) -> list[bytes]:
    """``n`` ChirpStack v4 ``up`` events (the documented example, fields as a v4 server
    sends them) carrying EM310 frames.

    Distinct devEui and fCnt per message, fPort 85, 1-3 gateways in ``rxInfo`` with
    distinct RSSI/SNR, ``time`` with nanoseconds and a ``+00:00`` offset (pbjson's
    form). Compact JSON, as the MQTT integration sends it.
    """
    rng = np.random.default_rng(seed)
    frames = make_frames(EM310, n, seed).to_pylist()
    n_gw = rng.integers(1, 4, n)
    rssi = rng.integers(-120, -30, (n, 3))
    snr = rng.integers(-200, 120, (n, 3)) / 10.0
    base_s = 1_764_000_000
    secs = base_s + np.arange(n, dtype=np.int64) * 7
    nanos = rng.integers(0, 1_000_000_000, n)
    out = []
    for i in range(n):
        t = _rfc3339(int(secs[i]), int(nanos[i]))[:-1] + "+00:00"
        gws = [
            {
                "gatewayId": f"0016c001f153a14{g}",
                "uplinkId": 4217106255 + g,
                "gwTime": t[:23] + "+00:00",
                "nsTime": t[:26] + "+00:00",
                "rssi": int(rssi[i, g]),
                "snr": float(snr[i, g]),
                "channel": 2,
                "location": {"latitude": 47.51, "longitude": 6.79, "altitude": 330.0},
                "context": "E3OWOQ==",
                "metadata": {"region_config_id": "eu868", "region_common_name": "EU868"},
                "crcStatus": "CRC_OK",
            }
            for g in range(int(n_gw[i]))
        ]
        msg = {
            "deduplicationId": f"3ac7e3c4-4401-4b8d-9386-{i:012x}",
            "time": t,
            "deviceInfo": {
                "tenantId": "52f14cd4-c6f1-4fbd-8f87-4025e1d49242",
                "tenantName": "ChirpStack",
                "applicationId": "17c82e96-be03-4f38-aef3-f83d48582d97",
                "applicationName": "Test application",
                "deviceProfileId": "14855bf7-d10d-4aee-b618-ebfcb64dc7ad",
                "deviceProfileName": "EM310-UDL",
                "deviceName": f"em310-{i}",
                "devEui": f"{0x0004A30B00000000 + i:016x}",
                "deviceClassEnabled": "CLASS_A",
                "tags": {"key": "value"},
            },
            "devAddr": f"{(0x00BC0000 + i) & 0xFFFFFFFF:08x}",
            "adr": True,
            "dr": 5,
            "fCnt": i + 1,
            "fPort": 85,
            "confirmed": False,
            "data": base64.b64encode(frames[i]).decode(),
            "rxInfo": gws,
            "txInfo": {
                "frequency": 868300000,
                "modulation": {"lora": {"bandwidth": 125000, "spreadingFactor": 7, "codeRate": "CR_4_5"}},
            },
        }
        out.append(orjson.dumps(msg))
    return out


def _rfc3339(sec: int, nanos: int) -> str:
    s = np.datetime64(sec, "s").astype(str)
    return f"{s}.{nanos:09d}Z"


# --------------------------------------------------------------------------------------
# Pure Python decoders: list[bytes] -> dict of column lists
# --------------------------------------------------------------------------------------


def py_decode_em310(frames: Sequence[bytes]) -> dict[str, list[Any]]:
    """EM310-UDL TLV: 0x01 0x75 battery u8, 0x03 0x82 distance u16 LE, 0x04 0x00 position."""
    ok: list[bool] = []
    dist: list[float | None] = []
    bat: list[float | None] = []
    tilt: list[bool | None] = []
    for p in frames:
        n = len(p)
        d = b = t = None
        good = n > 0
        i = 0
        while i < n:
            if i + 2 > n:
                good = False
                break
            ch = p[i]
            ty = p[i + 1]
            if ch == 0x01 and ty == 0x75:
                if i + 3 > n:
                    good = False
                    break
                b = float(p[i + 2])
                i += 3
            elif ch == 0x03 and ty == 0x82:
                if i + 4 > n:
                    good = False
                    break
                d = float(p[i + 2] | p[i + 3] << 8)
                i += 4
            elif ch == 0x04 and ty == 0x00:
                if i + 3 > n:
                    good = False
                    break
                t = p[i + 2] != 0
                i += 3
            else:  # unknown record: tidstream's normalized decode rejects the frame
                good = False
                break
        ok.append(good)
        if good:
            dist.append(d)
            bat.append(b)
            tilt.append(t)
        else:
            dist.append(None)
            bat.append(None)
            tilt.append(None)
    return {"ok": ok, "distance_mm": dist, "battery_pct": bat, "tilt": tilt}


_LDDS75 = struct.Struct(">HHBhB")


def py_decode_ldds75(frames: Sequence[bytes]) -> dict[str, list[Any]]:
    """Dragino LDDS75 v1.1.4, 8 bytes BE: bat u16 & 0x3FFF mV, dist u16, int u8, temp s16/10."""
    unpack = _LDDS75.unpack
    ok: list[bool] = []
    dist: list[float | None] = []
    bat: list[float | None] = []
    temp: list[float | None] = []
    for p in frames:
        if len(p) < 8:  # (tidstream also decodes 5-byte pre-v1.1.4 frames; not done here)
            ok.append(False)
            dist.append(None)
            bat.append(None)
            temp.append(None)
            continue
        b, d, _interrupt, t, _flag = unpack(p[:8])  # trailing bytes ignored, as the vendor's
        ok.append(True)
        bat.append((b & 0x3FFF) / 1000)
        dist.append(None if d == 0 or d == 20 else float(d))
        temp.append(t / 10)
    return {"ok": ok, "distance_mm": dist, "battery_v": bat, "temperature_c": temp}


_TID1_HEAD = struct.Struct("<BBIHhBBB")  # 13 bytes


def py_decode_tid1(frames: Sequence[bytes]) -> dict[str, list[Any]]:
    """tid1 (core/src/codec/tid1.rs), CRC-16/CCITT-FALSE checked (binascii.crc_hqx)."""
    unpack_from = _TID1_HEAD.unpack_from
    crc = binascii.crc_hqx
    ok: list[bool] = []
    dist: list[float | None] = []
    bat: list[float | None] = []
    temp: list[float | None] = []
    tilt: list[bool | None] = []
    for p in frames:
        n = len(p)
        if n >= 15:
            ver, flags, _t, d, tc, bp, _bc, k = unpack_from(p)
            if (
                ver == 1
                and k <= 32
                and n == 15 + 4 * k
                and crc(p[: n - 2], 0xFFFF) == p[n - 2] | p[n - 1] << 8
                and not flags & 0xC0
            ):
                ok.append(True)
                dist.append(None if flags & 0x20 else float(d))
                temp.append(None if tc == -32768 else tc / 10)
                bat.append(None if bp == 255 else float(bp))
                tilt.append(bool(flags & 1))
                continue
        ok.append(False)
        dist.append(None)
        bat.append(None)
        temp.append(None)
        tilt.append(None)
    return {"ok": ok, "distance_mm": dist, "battery_pct": bat, "temperature_c": temp, "tilt": tilt}


PY_DECODERS: dict[str, Callable[[Sequence[bytes]], dict[str, list[Any]]]] = {
    EM310: py_decode_em310,
    LDDS75: py_decode_ldds75,
    TID1: py_decode_tid1,
}

# --------------------------------------------------------------------------------------
# numba decoders: Arrow binary buffers -> numpy columns
# --------------------------------------------------------------------------------------

_numba: dict[str, Any] = {}


def _crc_table() -> np.ndarray:
    t = np.zeros(256, dtype=np.uint16)
    for i in range(256):
        c = i << 8
        for _ in range(8):
            c = ((c << 1) ^ 0x1021) if c & 0x8000 else (c << 1)
        t[i] = c & 0xFFFF
    return t


def _compile() -> dict[str, Any]:
    """Define the @njit kernels on first use (importing numba costs ~0.5 s)."""
    if _numba:
        return _numba
    from numba import njit

    crc_table = _crc_table()

    @njit(cache=True, nogil=True, boundscheck=False)
    def em310(data, offsets, dist, bat, tilt, ok):  # pragma: no cover - compiled
        nan = np.nan
        for k in range(len(offsets) - 1):
            i = offsets[k]
            e = offsets[k + 1]
            d = nan
            b = nan
            t = -1
            good = e > i
            while i < e:
                if i + 2 > e:
                    good = False
                    break
                ch = data[i]
                ty = data[i + 1]
                if ch == 0x01 and ty == 0x75:
                    if i + 3 > e:
                        good = False
                        break
                    b = float(data[i + 2])
                    i += 3
                elif ch == 0x03 and ty == 0x82:
                    if i + 4 > e:
                        good = False
                        break
                    d = float(np.uint16(data[i + 2]) | (np.uint16(data[i + 3]) << 8))
                    i += 4
                elif ch == 0x04 and ty == 0x00:
                    if i + 3 > e:
                        good = False
                        break
                    t = 1 if data[i + 2] != 0 else 0
                    i += 3
                else:
                    good = False
                    break
            ok[k] = good
            if good:
                dist[k] = d
                bat[k] = b
                tilt[k] = t
            else:
                dist[k] = nan
                bat[k] = nan
                tilt[k] = -1

    @njit(cache=True, nogil=True, boundscheck=False)
    def ldds75(data, offsets, dist, bat, temp, ok):  # pragma: no cover - compiled
        nan = np.nan
        for k in range(len(offsets) - 1):
            i = offsets[k]
            if offsets[k + 1] - i < 8:
                ok[k] = False
                dist[k] = nan
                bat[k] = nan
                temp[k] = nan
                continue
            b = ((np.int32(data[i]) << 8) | np.int32(data[i + 1])) & 0x3FFF
            d = (np.int32(data[i + 2]) << 8) | np.int32(data[i + 3])
            t = (np.int32(data[i + 5]) << 8) | np.int32(data[i + 6])
            if t >= 0x8000:
                t -= 0x10000
            ok[k] = True
            bat[k] = b / 1000
            dist[k] = nan if d == 0 or d == 20 else float(d)
            temp[k] = t / 10

    @njit(cache=True, nogil=True, boundscheck=False)
    def tid1(data, offsets, dist, bat, temp, tilt, ok):  # pragma: no cover - compiled
        nan = np.nan
        for k in range(len(offsets) - 1):
            i = offsets[k]
            n = offsets[k + 1] - i
            good = n >= 15 and data[i] == 1
            if good:
                m = np.int64(data[i + 12])
                good = m <= 32 and n == 15 + 4 * m
            if good:
                body = n - 2
                c = np.uint16(0xFFFF)
                for j in range(i, i + body):
                    c = np.uint16(c << 8) ^ crc_table[(c >> 8) ^ data[j]]
                stored = np.uint16(data[i + body]) | (np.uint16(data[i + body + 1]) << 8)
                good = c == stored and (data[i + 1] & 0xC0) == 0
            if not good:
                ok[k] = False
                dist[k] = nan
                bat[k] = nan
                temp[k] = nan
                tilt[k] = -1
                continue
            flags = data[i + 1]
            ok[k] = True
            if flags & 0x20:
                dist[k] = nan
            else:
                dist[k] = float(np.int32(data[i + 6]) | (np.int32(data[i + 7]) << 8))
            tc = np.int32(data[i + 8]) | (np.int32(data[i + 9]) << 8)
            if tc >= 0x8000:
                tc -= 0x10000
            temp[k] = nan if tc == -32768 else tc / 10
            bp = data[i + 10]
            bat[k] = nan if bp == 255 else float(bp)
            tilt[k] = flags & 1

    _numba.update(em310=em310, ldds75=ldds75, tid1=tid1)
    return _numba


def arrow_buffers(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(data uint8, offsets int32|int64) of a null-free binary array, zero-copy."""
    if arr.null_count:
        raise ValueError("the numba baselines take null-free arrays")
    _, off_buf, data_buf = arr.buffers()
    off_t = np.int64 if pa.types.is_large_binary(arr.type) else np.int32
    offsets = np.frombuffer(off_buf, dtype=off_t)[arr.offset : arr.offset + len(arr) + 1]
    if data_buf is None:
        return np.empty(0, np.uint8), offsets
    data = np.frombuffer(data_buf, dtype=np.uint8)
    return data, offsets


def nb_decode_em310(arr: pa.Array) -> dict[str, np.ndarray]:
    data, offsets = arrow_buffers(arr)
    n = len(arr)
    out = {
        "ok": np.empty(n, np.bool_),
        "distance_mm": np.empty(n, np.float64),
        "battery_pct": np.empty(n, np.float64),
        "tilt": np.empty(n, np.int8),
    }
    _compile()["em310"](data, offsets, out["distance_mm"], out["battery_pct"], out["tilt"], out["ok"])
    return out


def nb_decode_ldds75(arr: pa.Array) -> dict[str, np.ndarray]:
    data, offsets = arrow_buffers(arr)
    n = len(arr)
    out = {
        "ok": np.empty(n, np.bool_),
        "distance_mm": np.empty(n, np.float64),
        "battery_v": np.empty(n, np.float64),
        "temperature_c": np.empty(n, np.float64),
    }
    _compile()["ldds75"](data, offsets, out["distance_mm"], out["battery_v"], out["temperature_c"], out["ok"])
    return out


def nb_decode_tid1(arr: pa.Array) -> dict[str, np.ndarray]:
    data, offsets = arrow_buffers(arr)
    n = len(arr)
    out = {
        "ok": np.empty(n, np.bool_),
        "distance_mm": np.empty(n, np.float64),
        "battery_pct": np.empty(n, np.float64),
        "temperature_c": np.empty(n, np.float64),
        "tilt": np.empty(n, np.int8),
    }
    _compile()["tid1"](
        data,
        offsets,
        out["distance_mm"],
        out["battery_pct"],
        out["temperature_c"],
        out["tilt"],
        out["ok"],
    )
    return out


NB_DECODERS: dict[str, Callable[[pa.Array], dict[str, np.ndarray]]] = {
    EM310: nb_decode_em310,
    LDDS75: nb_decode_ldds75,
    TID1: nb_decode_tid1,
}


def warm_up_numba(arr: pa.Array) -> None:
    """Compile (or load from cache) every kernel for ``arr``'s offset type, untimed."""
    for model, dec in NB_DECODERS.items():
        dec(make_frames(model, 4).cast(arr.type))


# --------------------------------------------------------------------------------------
# Envelope baseline: orjson + Python extraction + base64
# --------------------------------------------------------------------------------------


def py_parse_ttn(messages: Sequence[bytes | str]) -> dict[str, Any]:
    """TTN v3 uplinks -> columns, the way a Python ingest step would do it.

    dev_eui lowercased, received_at (top-level, else uplink_message's) as
    ``datetime64[ns]`` (parsed by numpy at the end, one vectorised call), best RSSI
    (``rssi`` else ``channel_rssi``) and SNR over the gateways, gateway count,
    fport / fcnt (0 when omitted), payload bytes.
    """
    loads = orjson.loads
    b64 = base64.b64decode
    dev_eui: list[str] = []
    device_id: list[str | None] = []
    received: list[str] = []
    fport: list[int] = []
    fcnt: list[int] = []
    payload: list[bytes] = []
    rssi: list[float | None] = []
    snr: list[float | None] = []
    gw_count: list[int] = []
    for m in messages:
        d = loads(m)
        ids = d["end_device_ids"]
        up = d["uplink_message"]
        dev_eui.append(ids["dev_eui"].lower())
        device_id.append(ids.get("device_id"))
        t = d.get("received_at") or up.get("received_at") or "NaT"
        received.append(t[:-1] if t.endswith("Z") else t)
        fport.append(up.get("f_port", 0))
        fcnt.append(up.get("f_cnt", 0))
        payload.append(b64(up.get("frm_payload", "")))
        best_rssi = best_snr = None
        gws = up.get("rx_metadata", ())
        for g in gws:
            r = g.get("rssi", g.get("channel_rssi"))
            if r is not None and (best_rssi is None or r > best_rssi):
                best_rssi = r
            s = g.get("snr")
            if s is not None and (best_snr is None or s > best_snr):
                best_snr = s
        rssi.append(best_rssi)
        snr.append(best_snr)
        gw_count.append(len(gws))
    return {
        "dev_eui": dev_eui,
        "device_id": device_id,
        "received_at": np.array(received, dtype="datetime64[ns]"),
        "fport": fport,
        "fcnt": fcnt,
        "payload": payload,
        "rssi": rssi,
        "snr": snr,
        "gateway_count": gw_count,
    }


def py_parse_chirpstack(messages: Sequence[bytes | str]) -> dict[str, Any]:
    """ChirpStack v4 ``up`` events -> columns, the way a Python ingest step would do it.

    The same columns as :func:`py_parse_ttn`: devEui lowercased, ``time`` (its
    ``+00:00`` offset dropped) as ``datetime64[ns]`` by one vectorised numpy call, best
    RSSI and SNR over ``rxInfo``, gateway count, fPort / fCnt (0 when omitted), payload.
    """
    loads = orjson.loads
    b64 = base64.b64decode
    dev_eui: list[str] = []
    device_id: list[str | None] = []
    received: list[str] = []
    fport: list[int] = []
    fcnt: list[int] = []
    payload: list[bytes] = []
    rssi: list[float | None] = []
    snr: list[float | None] = []
    gw_count: list[int] = []
    for m in messages:
        d = loads(m)
        info = d["deviceInfo"]
        dev_eui.append(info["devEui"].lower())
        device_id.append(info.get("deviceName"))
        t = d.get("time") or "NaT"
        received.append(t[:-6] if t.endswith("+00:00") else t)
        fport.append(d.get("fPort", 0))
        fcnt.append(d.get("fCnt", 0))
        payload.append(b64(d.get("data", "")))
        best_rssi = best_snr = None
        gws = d.get("rxInfo", ())
        for g in gws:
            r = g.get("rssi")
            if r is not None and (best_rssi is None or r > best_rssi):
                best_rssi = r
            s = g.get("snr")
            if s is not None and (best_snr is None or s > best_snr):
                best_snr = s
        rssi.append(best_rssi)
        snr.append(best_snr)
        gw_count.append(len(gws))
    return {
        "dev_eui": dev_eui,
        "device_id": device_id,
        "received_at": np.array(received, dtype="datetime64[ns]"),
        "fport": fport,
        "fcnt": fcnt,
        "payload": payload,
        "rssi": rssi,
        "snr": snr,
        "gateway_count": gw_count,
    }


# --------------------------------------------------------------------------------------
# Correctness checks against tidstream's output on the same input
# --------------------------------------------------------------------------------------

#: Columns each baseline produces (besides ``ok``), compared with tidstream's.
COMPARED = {
    EM310: ("distance_mm", "battery_pct", "tilt"),
    LDDS75: ("distance_mm", "battery_v", "temperature_c"),
    TID1: ("distance_mm", "battery_pct", "temperature_c", "tilt"),
}


def columns_of(model: str, out: Any) -> dict[str, np.ndarray]:
    """``ok`` and the compared columns of a tidstream RecordBatch or a baseline's dict,
    as numpy (float64 with ``NaN`` = absent; booleans as int8 with ``-1`` = absent)."""
    cols: dict[str, np.ndarray] = {}
    for name in ("ok", *COMPARED[model]):
        v = out.column(name) if isinstance(out, pa.RecordBatch) else out[name]
        if isinstance(v, pa.Array):
            if pa.types.is_boolean(v.type):
                a = v.fill_null(False).to_numpy(zero_copy_only=False).astype(np.int8)
                cols[name] = np.where(v.is_null().to_numpy(zero_copy_only=False), -1, a).astype(np.int8)
            else:
                cols[name] = v.to_numpy(zero_copy_only=False).astype(np.float64)  # null -> NaN
        elif isinstance(v, np.ndarray):
            kind = v.dtype.kind
            cols[name] = v.astype(np.float64 if kind == "f" else np.int8)
        elif name == "tilt" or name == "ok":
            cols[name] = np.array([-1 if x is None else int(x) for x in v], dtype=np.int8)
        else:
            cols[name] = np.array([np.nan if x is None else x for x in v], dtype=np.float64)
    cols["ok"] = cols["ok"].astype(bool)
    return cols


def assert_same(model: str, have: Any, want: Any, what: str = "baseline") -> int:
    """Assert ``have`` (checked) equals ``want`` (reference) on ``ok`` and, on the rows the
    reference decoded, every compared column. Returns the number of ok rows."""
    h = columns_of(model, have)
    w = columns_of(model, want)
    assert len(h["ok"]) == len(w["ok"]), f"{model}: {len(h['ok'])} rows, expected {len(w['ok'])}"
    bad = np.flatnonzero(h["ok"] != w["ok"])
    assert bad.size == 0, f"{model} {what}: ok differs at rows {bad[:10].tolist()}"
    for name in COMPARED[model]:
        same = h[name] == w[name]
        if w[name].dtype.kind == "f":
            same |= np.isnan(h[name]) & np.isnan(w[name])
        bad = np.flatnonzero(~same & w["ok"])  # rows the reference rejects carry no values
        assert bad.size == 0, (
            f"{model} {what}: {name} differs at rows {bad[:10].tolist()}: "
            f"got {h[name][bad[:5]].tolist()}, expected {w[name][bad[:5]].tolist()}"
        )
    return int(w["ok"].sum())


def check_decoded(model: str, got: dict[str, Any], ts: pa.RecordBatch) -> int:
    """Assert a baseline's columns equal tidstream's on the same frames."""
    return assert_same(model, got, ts, "baseline vs tidstream")


def check_expected(model: str, got: Any, truth: dict[str, Any]) -> int:
    """Assert decoded columns (tidstream or baseline) equal the workload's ground truth."""
    return assert_same(model, got, truth, "vs ground truth")


def check_uplinks(got: dict[str, Any], ts: pa.RecordBatch) -> None:
    """Assert the orjson baseline's columns equal tidstream.decode_uplinks' columns."""
    assert ts.num_rows == len(got["dev_eui"])
    assert ts.column("ok").to_numpy(zero_copy_only=False).all(), "tidstream rejected a message"
    for name in ("dev_eui", "fport", "fcnt", "payload", "rssi", "snr", "gateway_count"):
        want = ts.column(name).to_pylist()
        assert want == list(got[name]), f"uplinks.{name} differs"
    want_t = ts.column("received_at").cast(pa.int64()).to_numpy(zero_copy_only=False)
    assert np.array_equal(want_t, got["received_at"].astype(np.int64)), "received_at differs"
