"""NKEY and decentralised (operator / account / user JWT, ``.creds``) authentication against
a real nats-server (docs/SECURITY.md): keys and JWTs are made in the test (tests/nkeykit.py),
a real ingest flow runs with each, the wrong key is refused, and no seed or JWT appears in
the flow's output, the error messages or the server log."""

from __future__ import annotations

import asyncio

import pytest
from flowkit import flow_env, scripted, start_flow, write_registry
from nkeykit import Decentralised, Key, nkey_user_server
from tidstream.config import NatsSettings, Settings, StreamSettings
from tidstream.exceptions import ConnectorError
from tidstream.nats.connect import connect
from tidstream.nats.publish import publish_uplinks
from tidstream.nats.server import EmbeddedServer
from tidstream.nats.setup import init_jetstream

pytestmark = pytest.mark.nats


async def _counts(cfg: NatsSettings) -> dict[str, int]:
    nc = await connect(cfg)
    try:
        js = nc.jetstream()
        return {s: (await js.stream_info(s)).state.messages for s in ("TID_RAW", "TID_READINGS", "TID_DLQ")}
    finally:
        await nc.close()


def _run_ingest_under(cfg: NatsSettings, env_auth: dict[str, str], srv: EmbeddedServer, tmp_path) -> str:
    """Streams set up, scripted uplinks published and a real ingest flow run, every
    connection authenticated with ``cfg`` / ``env_auth``; returns the flow's output."""

    async def init() -> None:
        nc = await connect(cfg)
        try:
            await init_jetstream(nc.jetstream(), Settings(streams=StreamSettings(partitions=2)))
        finally:
            await nc.close()

    asyncio.run(init())
    reg = write_registry(tmp_path / "registry.csv", 8)
    script = scripted(8, 40)
    n = publish_uplinks(cfg, [(u.subject, u.data, u.headers) for u in script.uplinks])
    assert n == len(script.uplinks)
    env = flow_env(srv.url, reg, tmp_path, partitions=2, **env_auth)
    p = start_flow("ingest", env, tmp_path / "rec-ingest")
    out, _ = p.communicate(timeout=240)
    text = out.decode(errors="replace")
    assert p.returncode == 0, text[:3000]
    counts = asyncio.run(_counts(cfg))
    assert counts == {
        "TID_RAW": len(script.uplinks),
        "TID_READINGS": script.expected_readings(),
        "TID_DLQ": sum(script.expected_dlq().values()),
    }
    return text


def _refused(cfg: NatsSettings) -> str:
    cfg.connect_retry_s = 2
    with pytest.raises(ConnectorError) as e:
        asyncio.run(connect(cfg))
    assert "cannot connect" in str(e.value)
    return str(e.value)


def test_nkey_user_runs_a_real_flow_and_a_wrong_key_is_refused(tmp_path):
    srv, user, seed_file = nkey_user_server(tmp_path, "ingest.nk")
    try:
        cfg = NatsSettings(url=srv.url, nkey_seed_file=str(seed_file))
        out = _run_ingest_under(cfg, {"TIDSTREAM_NATS_NKEY_SEED_FILE": str(seed_file)}, srv, tmp_path)

        # No credentials, or a key the server does not know: refused.
        errors = [_refused(NatsSettings(url=srv.url))]
        other = Key.new("user")
        other_file = tmp_path / "other.nk"
        other_file.write_bytes(other.seed)
        errors.append(_refused(NatsSettings(url=srv.url, nkey_seed_file=str(other_file))))
        text = out + "\n".join(errors) + (srv.store_dir.parent / f"nats-{srv.port}.log").read_text()
        for secret in (user.seed.decode(), other.seed.decode()):
            assert secret not in text
        assert user.public in srv.config_text()  # the server holds the public key only
        assert user.seed.decode() not in srv.config_text()
    finally:
        srv.stop()


def test_creds_file_of_decentralised_auth_runs_a_real_flow_and_a_forged_user_is_refused(tmp_path):
    d = Decentralised.new()
    creds = d.write_creds(tmp_path / "ingest.creds")
    srv = EmbeddedServer(store_dir=tmp_path / "nats" / "jetstream", extra_config=d.server_config()).start()
    try:
        cfg = NatsSettings(url=srv.url, credentials_file=str(creds))
        out = _run_ingest_under(cfg, {"TIDSTREAM_NATS_CREDENTIALS_FILE": str(creds)}, srv, tmp_path)

        # A user JWT signed by an account key the operator never signed: refused. The
        # same for no credentials at all.
        rogue = Decentralised.new()
        forged = Decentralised(
            d.operator, d.system, rogue.account, rogue.user, d.operator_jwt, d.system_jwt,
            rogue.account_jwt, rogue.user_jwt,
        )  # fmt: skip
        errors = [
            _refused(NatsSettings(url=srv.url)),
            _refused(
                NatsSettings(url=srv.url, credentials_file=str(forged.write_creds(tmp_path / "f.creds")))
            ),
        ]
        text = out + "\n".join(errors) + (srv.store_dir.parent / f"nats-{srv.port}.log").read_text()
        for secret in (d.user.seed.decode(), d.user_jwt, rogue.user.seed.decode(), rogue.user_jwt):
            assert secret not in text
        # The flow's log names the server, not the credentials file's content.
        assert "BEGIN NATS USER JWT" not in text
    finally:
        srv.stop()
