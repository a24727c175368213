"""Least privilege over TLS (docs/SECURITY.md): a real nats-server that requires TLS and
has one user per role. Each role can do its job; a gateway cannot publish readings,
alerts or dead letters; a subscriber cannot publish at all; no credential appears in
logs or error messages."""

from __future__ import annotations

import asyncio
import json
import ssl
import subprocess

import nats
import pytest
from flowkit import ROOT, flow_env, scripted, start_flow, write_registry
from tidstream.config import NatsSettings, Settings, StreamSettings, load_settings
from tidstream.exceptions import ConnectorError
from tidstream.nats.connect import MASK_ANYWHERE_LEN, connect, connect_options, mask_secrets
from tidstream.nats.publish import publish_uplinks
from tidstream.nats.roles import ROLES, authorization_block, role_permissions
from tidstream.nats.setup import init_jetstream
from tlskit import SecureNats, start_secure_nats

pytestmark = pytest.mark.nats


@pytest.fixture(scope="module")
def secure(tmp_path_factory):
    sn = start_secure_nats(tmp_path_factory.mktemp("secure"))

    async def init() -> None:
        nc = await connect(sn.settings("admin"))
        await init_jetstream(nc.jetstream(), Settings())
        await nc.close()

    asyncio.run(init())
    try:
        yield sn
    finally:
        sn.server.stop()


async def _session(sn: SecureNats, role: str):
    """A connection as ``role`` plus the list of errors the server sent it."""
    errors: list[str] = []

    async def on_err(e: Exception) -> None:
        errors.append(str(e))

    opts = connect_options(sn.settings(role))
    opts["max_reconnect_attempts"] = 0
    nc = await nats.connect(**opts, error_cb=on_err)
    return nc, errors


async def _count(sn: SecureNats, stream: str) -> int:
    nc = await connect(sn.settings("admin"))
    try:
        return (await nc.jetstream().stream_info(stream)).state.messages
    finally:
        await nc.close()


async def _denied_publish(nc, errors: list[str], subject: str) -> bool:
    """Publish on core NATS; True when the server answered with a permissions violation."""
    before = len(errors)
    await nc.publish(subject, b'{"forged": true}')
    await nc.flush(timeout=5)
    # The -ERR arrives before the PONG that ends flush(); give the reader one more turn.
    for _ in range(200):
        if len(errors) > before:
            break
        await asyncio.sleep(0.01)
    return any("permissions violation" in e.lower() for e in errors[before:])


def test_plaintext_and_wrong_password_are_refused(secure):
    async def go() -> None:
        # No TLS: the server requires it.
        with pytest.raises(ConnectorError) as e:
            await connect(
                NatsSettings(url=secure.url, user="tid-admin", password="x-wrong-x", connect_retry_s=1)
            )
        assert "x-wrong-x" not in str(e.value)
        # TLS but a wrong password: refused, and the message names no secret.
        cfg = secure.settings("ingest")
        cfg.password = "not-the-password-123"
        cfg.connect_retry_s = 1
        with pytest.raises(ConnectorError) as e:
            await connect(cfg)
        assert "not-the-password-123" not in str(e.value) and "cannot connect" in str(e.value)
        # TLS with an unknown CA: the certificate check fails.
        bad = secure.settings("ingest")
        bad.tls_ca_file = None
        opts = connect_options(bad)
        opts["tls"] = ssl.create_default_context()  # system CAs only
        opts["max_reconnect_attempts"] = 0
        opts["allow_reconnect"] = False
        with pytest.raises(Exception) as e2:
            await asyncio.wait_for(nats.connect(**opts), 5)
        assert secure.passwords["ingest"][1] not in str(e2.value)

    asyncio.run(go())


def test_gateway_publishes_uplinks_only(secure):
    async def go() -> None:
        nc, errors = await _session(secure, "gateway")
        js = nc.jetstream()
        raw0 = await _count(secure, "TID_RAW")
        ack = await js.publish("tid.up.raw.a840410000000001", b"\x01\x02", headers={"Tid-FPort": "1"})
        assert ack.stream == "TID_RAW"
        assert await _count(secure, "TID_RAW") == raw0 + 1
        counts = {s: await _count(secure, s) for s in ("TID_READINGS", "TID_ALERTS", "TID_DLQ")}
        for subject in (
            "tid.readings.25388.a840410000000001",
            "tid.alerts.full.25388.a840410000000001",
            "tid.dlq.invalid_json",
            "tid.raw.0.raw.a840410000000001",  # straight into the raw stream, skipping the transform
            "$JS.API.STREAM.DELETE.TID_RAW",
            "$JS.API.STREAM.PURGE.TID_READINGS",
        ):
            assert await _denied_publish(nc, errors, subject), subject
        # Nor can it read anything.
        sub = await nc.subscribe("tid.readings.>")
        await nc.flush(timeout=5)
        for _ in range(200):
            if any("subscription" in e.lower() for e in errors):
                break
            await asyncio.sleep(0.01)
        assert any("permissions violation for subscription" in e.lower() for e in errors)
        await sub.unsubscribe()
        await nc.close()
        assert {s: await _count(secure, s) for s in counts} == counts

    asyncio.run(go())


def test_subscriber_reads_and_cannot_publish_at_all(secure):
    async def go() -> None:
        nc, errors = await _session(secure, "subscriber")
        got: list[str] = []

        async def on_msg(m) -> None:
            got.append(m.subject)

        sub = await nc.subscribe("tid.readings.>", cb=on_msg)
        await nc.flush(timeout=5)
        # A reading published by the ingest role reaches the read-only subscriber.
        ing, _ = await _session(secure, "ingest")
        await ing.jetstream().publish("tid.readings.25388.a840410000000009", b"{}", timeout=5)
        await ing.close()
        for _ in range(500):
            if got:
                break
            await asyncio.sleep(0.01)
        assert got == ["tid.readings.25388.a840410000000009"]
        counts = {s: await _count(secure, s) for s in ("TID_RAW", "TID_READINGS", "TID_ALERTS", "TID_DLQ")}
        for subject in (
            "tid.up.raw.a840410000000001",
            "tid.readings.25388.a840410000000001",
            "tid.alerts.full.25388.a840410000000001",
            "$JS.API.INFO",
            "$JS.API.CONSUMER.CREATE.TID_READINGS",
            "anything.at.all",
        ):
            assert await _denied_publish(nc, errors, subject), subject
        await sub.unsubscribe()
        await nc.close()
        assert {s: await _count(secure, s) for s in counts} == counts

    asyncio.run(go())


def test_alerting_and_export_roles(secure):
    async def go() -> None:
        # alerting: reads the readings stream with a JetStream consumer, publishes alerts.
        nc, errors = await _session(secure, "alerting")
        js = nc.jetstream()
        ing, _ = await _session(secure, "ingest")
        await ing.jetstream().publish("tid.readings.25031.a840410000000002", b'{"x": 1}', timeout=5)
        await ing.close()
        sub = await js.subscribe("tid.readings.>", stream="TID_READINGS", ordered_consumer=True)
        m = await sub.next_msg(timeout=10)
        assert m.subject.startswith("tid.readings.")
        ack = await js.publish("tid.alerts.full.25031.a840410000000002", b"{}", timeout=5)
        assert ack.stream == "TID_ALERTS"
        readings = await _count(secure, "TID_READINGS")
        assert await _denied_publish(nc, errors, "tid.readings.25031.a840410000000002")
        assert await _denied_publish(nc, errors, "tid.up.raw.a840410000000002")
        assert await _count(secure, "TID_READINGS") == readings
        await sub.unsubscribe()
        await nc.close()
        # export: reads readings, publishes nothing but its consumer requests.
        nc, errors = await _session(secure, "export")
        sub = await nc.jetstream().subscribe("tid.readings.>", stream="TID_READINGS", ordered_consumer=True)
        assert (await sub.next_msg(timeout=10)).subject.startswith("tid.readings.")
        for subject in ("tid.readings.1.2", "tid.alerts.a.b.c", "tid.dlq.x", "$JS.API.STREAM.DELETE.TID_RAW"):
            assert await _denied_publish(nc, errors, subject), subject
        await sub.unsubscribe()
        await nc.close()

    asyncio.run(go())


@pytest.mark.parametrize("data_path", ["python", "rust"])
def test_real_ingest_and_export_flows_run_under_their_users_over_tls(tmp_path, data_path):
    """The gateway publishes scripted uplinks, the ingest flow (ingest user, TLS) turns
    them into readings and dead letters, the export flow (export user) writes Parquet,
    on both data paths (``[nats] data_path``: the Rust consumer pulls, which the roles
    allow). A server of its own: the other tests put hand-made messages in the streams."""
    from tidstream.flow.export import read_dataset

    secure = start_secure_nats(tmp_path / "srv")
    try:

        async def init() -> None:
            nc = await connect(secure.settings("admin"))
            await init_jetstream(nc.jetstream(), Settings(streams=StreamSettings(partitions=4)))
            await nc.close()

        asyncio.run(init())
        reg = write_registry(tmp_path / "registry.csv", 10)
        script = scripted(10, 60)
        n = publish_uplinks(
            secure.settings("gateway"), [(u.subject, u.data, u.headers) for u in script.uplinks]
        )
        assert n == len(script.uplinks) == asyncio.run(_count(secure, "TID_RAW"))

        env = flow_env(secure.url, reg, tmp_path, partitions=4, TIDSTREAM_NATS_DATA_PATH=data_path)
        env.update(secure.env("ingest"))
        p = start_flow("ingest", env, tmp_path / "rec-ingest")
        out, _ = p.communicate(timeout=240)
        assert p.returncode == 0, out.decode(errors="replace")[:3000]
        assert (b"Rust data path" in out) == (data_path == "rust")
        # Every frame accounted for: one reading per frame, or one dead letter.
        assert asyncio.run(_count(secure, "TID_READINGS")) == script.expected_readings()
        assert asyncio.run(_count(secure, "TID_DLQ")) == sum(script.expected_dlq().values())

        env_x = flow_env(secure.url, reg, tmp_path, partitions=4, TIDSTREAM_NATS_DATA_PATH=data_path)
        env_x.update(secure.env("export"))
        p = start_flow("export", env_x, tmp_path / "rec-export")
        out2, _ = p.communicate(timeout=240)
        assert p.returncode == 0, out2.decode(errors="replace")[:3000]
        assert read_dataset(tmp_path / "export").num_rows == script.expected_readings()

        # No credential in the flows' output or the server log.
        text = out.decode(errors="replace") + out2.decode(errors="replace") + secure.log_text()
        for role in ROLES:
            assert secure.passwords[role][1] not in text
    finally:
        secure.server.stop()


def test_config_show_and_repr_mask_every_secret(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        '[nats]\nurl = "nats://u:urlsecret99@h:4222"\nuser = "u"\npassword = "pwsecret99"\n'
        'token = "toksecret99"\n',
        encoding="utf-8",
    )
    s = load_settings(cfg, env={})
    text = repr(s) + str(s) + repr(s.nats) + json.dumps(s.nats.redacted())
    p = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "tidstream"), "--config", str(cfg), "config", "show"],
        capture_output=True,
        text=True,
        check=True,
    )
    text += p.stdout + p.stderr
    for secret in ("urlsecret99", "pwsecret99", "toksecret99"):
        assert secret not in text
    assert "***" in p.stdout


def test_generated_config_matches_the_documented_one():
    """docs/examples/nats-server-roles.conf is authorization_block() for the defaults."""
    doc = (ROOT / "docs" / "examples" / "nats-server-roles.conf").read_text(encoding="utf-8")
    users = {r: (f"tid-{r}", f"$2a$11$REPLACE_WITH_BCRYPT_OF_{r.upper()}_PASSWORD") for r in ROLES}
    assert authorization_block(Settings(), users) in doc
    perms = role_permissions(Settings())
    assert perms["subscriber"]["publish"] == [] and perms["gateway"]["publish"] == ["tid.up.>"]


def test_mutual_tls_needs_the_client_certificate(tmp_path):
    """``tls_cert_file`` / ``tls_key_file``: with ``verify: true`` the server refuses a
    client without a certificate and accepts one with the CA-signed certificate."""
    sn = start_secure_nats(tmp_path, verify=True)
    try:

        async def go() -> None:
            cfg = sn.settings("admin")
            cfg.connect_retry_s = 2
            with pytest.raises(ConnectorError):
                await connect(cfg)
            cfg.tls_cert_file = str(sn.certs["client"])
            cfg.tls_key_file = str(sn.certs["client_key"])
            nc = await connect(cfg)
            assert nc.is_connected and nc.connected_url is not None
            await nc.close()

        asyncio.run(go())
    finally:
        sn.server.stop()


def test_mask_secrets_long_anywhere_short_only_standing_alone():
    """A short password is masked where it stands alone, not inside words of the message
    (a one-letter password once turned "Publish" into "Pu***lish"); a long one everywhere."""
    cfg = NatsSettings(url="nats://u:b@h:4222", password="b", token="long-token-123")
    assert MASK_ANYWHERE_LEN == 8
    assert (
        mask_secrets("Publish to b failed (b): nats://u:b@h:4222", cfg)
        == "Publish to *** failed (***): nats://***@h:4222"
    )
    assert mask_secrets("xlong-token-123y", cfg) == "x***y"
    assert mask_secrets("b b,b bb", cfg) == "*** ***,*** bb"
