"""`tidstream nats init` against a real nats-server: streams, partitions, idempotence,
and the network-server native input subjects (TTS direct, ChirpStack over MQTT)."""

from __future__ import annotations

import asyncio
import socket
import struct

import nats
import pytest
from tidstream.config import IngestInput, Settings
from tidstream.nats.server import EmbeddedServer
from tidstream.nats.setup import init_jetstream

pytestmark = pytest.mark.nats


def _settings(url: str, **kw) -> Settings:
    s = Settings()
    s.nats.url = url
    s.streams.partitions = 4
    for k, v in kw.items():
        setattr(s.streams, k, v)
    return s


async def _init(s: Settings) -> dict[str, str]:
    nc = await nats.connect(s.nats.url)
    try:
        return await init_jetstream(nc.jetstream(), s)
    finally:
        await nc.close()


async def _raw_subjects(url: str, stream: str, n: int) -> list[str]:
    nc = await nats.connect(url)
    js = nc.jetstream()
    sub = await js.subscribe(">", stream=stream, ordered_consumer=True)
    out = []
    for _ in range(n):
        m = await sub.next_msg(timeout=5)
        out.append(m.subject)
    await nc.close()
    return out


def test_init_is_idempotent_and_partitions_by_device(nats_server):
    s = _settings(nats_server.url)
    first = asyncio.run(_init(s))
    assert first["TID_RAW"] == "created" and first["TID_READINGS"] == "created"
    assert first["KV_tid_twin"] == "created"
    again = asyncio.run(_init(s))
    assert set(again.values()) == {"unchanged"}
    s.streams.duplicate_window_s = 3600
    assert asyncio.run(_init(s))["TID_RAW"] == "updated"

    async def publish() -> None:
        nc = await nats.connect(nats_server.url)
        js = nc.jetstream()
        for dev in ("a84041000181c8aa", "a84041000181c8ab", "a84041000181c8aa"):
            await js.publish(f"tid.up.ttn.{dev}", b"{}")
        await nc.close()

    asyncio.run(publish())
    subjects = asyncio.run(_raw_subjects(nats_server.url, "TID_RAW", 3))
    parts = [x.split(".")[2] for x in subjects]
    assert all(x.startswith("tid.raw.") for x in subjects)
    assert parts[0] == parts[2]  # same device, same partition
    assert all(p in {"0", "1", "2", "3"} for p in parts)


def _mqtt_publish(port: int, topic: str, payload: bytes) -> None:
    """Minimal MQTT 3.1.1 client: CONNECT, PUBLISH QoS 1, wait for PUBACK, DISCONNECT."""

    def enc_len(n: int) -> bytes:
        out = bytearray()
        while True:
            b, n = n % 128, n // 128
            out.append(b | (0x80 if n else 0))
            if not n:
                return bytes(out)

    def s(x: bytes) -> bytes:
        return struct.pack(">H", len(x)) + x

    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        var = s(b"MQTT") + bytes([4, 0x02]) + struct.pack(">H", 30) + s(b"chirpstack-test")
        sock.sendall(bytes([0x10]) + enc_len(len(var)) + var)
        assert sock.recv(4)[0] == 0x20  # CONNACK
        body = s(topic.encode()) + struct.pack(">H", 1) + payload
        sock.sendall(bytes([0x32]) + enc_len(len(body)) + body)
        assert sock.recv(4)[0] == 0x40  # PUBACK
        sock.sendall(bytes([0xE0, 0]))


def test_chirpstack_mqtt_and_tts_native_subjects_land_in_raw(tmp_path):
    with EmbeddedServer(store_dir=tmp_path / "js", mqtt_port=0) as srv:
        s = _settings(
            srv.url,
            inputs=[
                IngestInput("application.*.device.*.event.up", "chirpstack", 2),
                IngestInput("v3.*.devices.*.up", "ttn", 2),
            ],
        )
        res = asyncio.run(_init(s))
        assert res["TID_RAW_IN_CHIRPSTACK"] == "created" and res["TID_RAW_IN_TTN"] == "created"
        # ChirpStack's MQTT integration topic, through nats-server's MQTT listener:
        _mqtt_publish(srv.mqtt_port, "application/app-1/device/0101010101010101/event/up", b'{"x":1}')

        async def tts() -> None:
            nc = await nats.connect(srv.url)
            await nc.publish("v3.app1@tenant.devices.0004a30b001c0530.up", b'{"y":2}')
            await nc.flush()
            await nc.close()

        asyncio.run(tts())
        subjects = sorted(asyncio.run(_raw_subjects(srv.url, "TID_RAW", 2)))
        assert subjects[0].startswith("tid.raw.") and subjects[0].endswith(".chirpstack.0101010101010101")
        assert subjects[1].endswith(".ttn.0004a30b001c0530")


@pytest.mark.parametrize(
    ("server_auth", "client"),
    [
        ("authorization { user: ingest, password: s3cret }", {"user": "ingest", "password": "s3cret"}),
        ("authorization { token: t0ken }", {"token": "t0ken"}),
    ],
)
def test_auth_settings_connect_and_wrong_secrets_are_refused(tmp_path, server_auth, client):
    from tidstream.config import NatsSettings
    from tidstream.exceptions import ConnectorError
    from tidstream.nats.connect import connect

    with EmbeddedServer(store_dir=tmp_path / "js", extra_config=server_auth) as srv:

        async def go(cfg: NatsSettings) -> bool:
            nc = await connect(cfg)
            ok = nc.is_connected
            await nc.close()
            return ok

        assert asyncio.run(go(NatsSettings(url=srv.url, **client)))
        wrong = {k: "nope" for k in client if k != "user"} | (
            {"user": client["user"]} if "user" in client else {}
        )
        with pytest.raises(ConnectorError) as ei:
            asyncio.run(go(NatsSettings(url=srv.url, connect_retry_s=2, **wrong)))
        assert "nope" not in str(ei.value) and "s3cret" not in str(ei.value) and "t0ken" not in str(ei.value)
