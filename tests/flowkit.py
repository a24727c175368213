"""Helpers for dataflow integration tests: a registry, scripted uplinks, running a
flow as a real process, and reading streams back."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import nats
import tidstream

ROOT = Path(__file__).resolve().parents[1]
HEADER = "device_id,model,container_id,container_kind,stream,volume_l,depth_mm,offset_mm,lat,lon,commune_insee,commune\n"
MODELS = ["tid1", "milesight-em310-udl", "dragino-ldds75", "decentlab-dl-mbx", "dingtek-df703"]
FPORT = {"tid1": 1, "milesight-em310-udl": 85, "dragino-ldds75": 2, "decentlab-dl-mbx": 1, "dingtek-df703": 3}


def eui(i: int) -> str:
    return f"a840410000{i:06x}"


def write_registry(path: Path, n: int) -> Path:
    lines = [HEADER]
    for i in range(n):
        model = MODELS[i % len(MODELS)]
        commune = ("25388", "Montbéliard") if i % 2 else ("25031", "Audincourt")
        lines.append(
            f"{eui(i)},{model},C-{i},glass_bank,glass,3000,1500,250,47.5,6.8,{commune[0]},{commune[1]}\n"
        )
    path.write_text("".join(lines), encoding="utf-8")
    return path


@dataclass
class Uplink:
    subject: str
    data: bytes
    headers: dict[str, str] | None = None
    #: expected outcome: ("reading", distance_mm) or ("dlq", reason)
    expect: tuple[str, object] = ("reading", None)


@dataclass
class Script:
    uplinks: list[Uplink] = field(default_factory=list)

    def expected_dlq(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for u in self.uplinks:
            if u.expect[0] == "dlq":
                out[str(u.expect[1])] = out.get(str(u.expect[1]), 0) + 1
        return out

    def expected_readings(self) -> int:
        return sum(1 for u in self.uplinks if u.expect[0] == "reading")


def ttn(dev: str, fport: int, fcnt: int, payload: bytes) -> bytes:
    return json.dumps(
        {
            "end_device_ids": {"device_id": f"bin-{dev[-4:]}", "dev_eui": dev.upper()},
            "received_at": f"2026-11-20T08:{fcnt // 60 % 60:02d}:{fcnt % 60:02d}.123456789Z",
            "uplink_message": {
                "f_port": fport,
                "f_cnt": fcnt,
                "frm_payload": base64.b64encode(payload).decode(),
                "rx_metadata": [{"gateway_ids": {"gateway_id": "gw1"}, "rssi": -90 - fcnt % 20, "snr": 7.5}],
            },
        }
    ).encode()


def chirpstack(dev: str, fport: int, fcnt: int, payload: bytes) -> bytes:
    return json.dumps(
        {
            "time": f"2026-11-20T09:{fcnt // 60 % 60:02d}:{fcnt % 60:02d}.5+00:00",
            "deviceInfo": {"deviceName": f"bin-{dev[-4:]}", "devEui": dev},
            "fPort": fport,
            "fCnt": fcnt,
            "data": base64.b64encode(payload).decode(),
            "rxInfo": [{"gatewayId": "0016c001f153a14c", "rssi": -100, "snr": 3.0}],
        }
    ).encode()


def scripted(n_devices: int, n_good: int, *, with_bad: bool = True) -> Script:
    """n_good valid uplinks over the registered devices (TTN, ChirpStack and raw), then
    one of each malformed case."""
    s = Script()
    for k in range(n_good):
        i = k % n_devices
        model = MODELS[i % len(MODELS)]
        dist = float(300 + (k * 37) % 1100)
        frame = tidstream.encode(
            model,
            distance_mm=dist,
            battery_pct=80,
            battery_v=3.3,
            temperature_c=12,
            measured_at_ms=1_763_600_000_000 + k * 1000,
            tilt=False,
        )
        dev = eui(i)
        kind = k % 3
        if kind == 0:
            s.uplinks.append(
                Uplink(f"tid.up.ttn.{dev}", ttn(dev, FPORT[model], k, frame), expect=("reading", dist))
            )
        elif kind == 1:
            s.uplinks.append(
                Uplink(
                    f"tid.up.chirpstack.{dev}",
                    chirpstack(dev, FPORT[model], k, frame),
                    expect=("reading", dist),
                )
            )
        else:
            s.uplinks.append(
                Uplink(f"tid.up.raw.{dev}", frame, {"Tid-FPort": str(FPORT[model])}, expect=("reading", dist))
            )
    if with_bad:
        dev = eui(0)  # tid1
        good = tidstream.encode("tid1", distance_mm=500, measured_at_ms=1_763_600_000_000)
        s.uplinks += [
            Uplink(f"tid.up.ttn.{dev}", b'{"end_device_ids": {"dev_eui": ', expect=("dlq", "invalid_json")),
            Uplink(
                f"tid.up.ttn.{dev}",
                ttn(dev, 1, 1, good).replace(base64.b64encode(good), b"!!!"),
                expect=("dlq", "invalid_base64"),
            ),
            Uplink(f"tid.up.chirpstack.{dev}", chirpstack(dev, 1, 2, good[:7]), expect=("dlq", "truncated")),
            Uplink(
                f"tid.up.ttn.{eui(999_999)}", ttn(eui(999_999), 1, 3, good), expect=("dlq", "unknown_device")
            ),
            Uplink(f"tid.up.raw.{dev}", b"\x01" * 70_000, {"Tid-FPort": "1"}, expect=("dlq", "oversized")),
            Uplink(
                f"tid.up.raw.{dev}",
                good[:-1] + bytes([good[-1] ^ 1]),
                {"Tid-FPort": "1"},
                expect=("dlq", "crc_mismatch"),
            ),
        ]
    return s


async def publish(url: str, uplinks: list[Uplink]) -> None:
    nc = await nats.connect(url)
    js = nc.jetstream()
    futs = [await js.publish_async(u.subject, u.data, headers=u.headers) for u in uplinks]
    await asyncio.gather(*futs)
    await nc.close()


async def read_stream(url: str, stream: str, subject: str = ">") -> list:
    nc = await nats.connect(url)
    js = nc.jetstream()
    info = await js.stream_info(stream)
    out = []
    if info.state.messages:
        sub = await js.subscribe(subject, stream=stream, ordered_consumer=True)
        while len(out) < info.state.messages:
            out.append(await sub.next_msg(timeout=10))
    await nc.close()
    return out


def flow_env(url: str, registry: Path | None, tmp: Path, partitions: int = 4, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "TIDSTREAM_NATS_URL": url,
            "TIDSTREAM_STREAMS_PARTITIONS": str(partitions),
            "TIDSTREAM_EXPORT_DIR": str(tmp / "export"),
            "TIDSTREAM_BATCH_SIZE": "200",
            "TIDSTREAM_EXPORT_BLOCK_SIZE": "500",
            "PYTHONPATH": str(ROOT / "python"),
        }
    )
    if registry is not None:
        env["TIDSTREAM_REGISTRY"] = str(registry)
    env.update(extra)
    return env


def start_flow(
    name: str,
    env: dict[str, str],
    recovery: Path,
    *,
    once: bool = True,
    process_id: int | None = None,
    addresses: str | None = None,
    parts: int = 2,
    preexec_fn: Callable[[], None] | None = None,
) -> subprocess.Popen:
    if not recovery.exists():  # as `tidstream run`: a store with its manifest, made once
        from tidstream.recovery import init_recovery

        init_recovery(recovery, f"tidstream-{name}", parts)
    cmd = [
        sys.executable,
        "-m",
        "bytewax.run",
        f"{ROOT / 'dataflows' / (name + '.py')}:flow",
        "-r",
        str(recovery),
        "-s",
        "1",
        "-b",
        "0",
    ]
    if process_id is not None:
        cmd += ["-i", str(process_id), "-a", addresses or ""]
    e = dict(env)
    if once:
        e["TIDSTREAM_STOP_AT_END"] = "1"
    return subprocess.Popen(
        cmd, env=e, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, preexec_fn=preexec_fn
    )
