"""The Rust JetStream I/O prototype (tidstream.nats.rustio, docs/NATSIO.md) against a real
nats-server: exact ordered consumption with resume and stop-at-end, publish with PubAcks
and dedupe, a consumer through a server restart, user/password and NKEY auth."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest
from nkeykit import Key, nkey_user_server
from tidstream.config import NatsSettings
from tidstream.exceptions import ConnectorError
from tidstream.nats.connect import connect
from tidstream.nats.roles import _consume
from tidstream.nats.rustio import MessageBatch, RustConsumer, RustPublisher
from tidstream.nats.server import EmbeddedServer

pytestmark = pytest.mark.nats

STREAM = "RIO"


def _messages(n: int) -> list[tuple[str, bytes]]:
    """Varied subjects and payloads: binary bytes, empty payloads, different lengths."""
    out = []
    for i in range(n):
        payload = bytes((i * 7 + k) % 256 for k in range(i % 37)) if i % 11 else b""
        out.append((f"rio.in.{i % 3}.dev{i % 17}", payload))
    return out


def _server(tmp_path, extra_config: str = "") -> EmbeddedServer:
    """A started embedded nats-server with its store in ``tmp_path`` (the caller stops it)."""
    return EmbeddedServer(store_dir=tmp_path / "nats" / "jetstream", extra_config=extra_config).start()


def _setup(cfg: NatsSettings, msgs: list[tuple[str, bytes]]) -> list[int]:
    """Stream ``RIO`` on ``rio.>`` holding ``msgs`` (published with nats-py); their seqs."""

    async def go() -> list[int]:
        nc = await connect(cfg)
        try:
            js = nc.jetstream()
            await js.add_stream(name=STREAM, subjects=["rio.>"])
            return [(await js.publish(s, p)).seq for s, p in msgs]
        finally:
            await nc.close()

    return asyncio.run(go())


def _stored(cfg: NatsSettings) -> list[tuple[int, str, bytes, str | None]]:
    """(seq, subject, data, Nats-Msg-Id) of every message of the stream, read by nats-py."""

    async def go() -> list[tuple[int, str, bytes, str | None]]:
        nc = await connect(cfg)
        try:
            js = nc.jetstream()
            last = (await js.stream_info(STREAM)).state.last_seq
            out = []
            for seq in range(1, last + 1):
                m = await js.get_msg(STREAM, seq)
                out.append((m.seq, m.subject, m.data or b"", (m.headers or {}).get("Nats-Msg-Id")))
            return out
        finally:
            await nc.close()

    return asyncio.run(go())


def _rows(b: MessageBatch) -> list[tuple[int, str, bytes]]:
    subjects = b.subjects().to_pylist()
    payloads = b.payloads().to_pylist()
    return [(int(s), subjects[i], payloads[i]) for i, s in enumerate(b.seqs)]


def _drain(c: RustConsumer, max_msgs: int) -> tuple[list[tuple[int, str, bytes]], list[MessageBatch]]:
    rows: list[tuple[int, str, bytes]] = []
    batches = []
    while True:
        b = c.next_batch(max_msgs, timeout_ms=5000)
        assert len(b) > 0, f"no message within 5 s after {len(rows)} ({b.errors})"
        assert len(b) <= max_msgs
        batches.append(b)
        rows += _rows(b)
        if b.num_pending == 0:
            return rows, batches


def test_consumes_every_message_in_order_resumes_and_stops_at_the_end(nats_server):
    cfg = NatsSettings(url=nats_server.url)
    msgs = _messages(2500)
    seqs = _setup(cfg, msgs)
    expected = [(seq, s, p) for seq, (s, p) in zip(seqs, msgs)]

    before_ns = time.time_ns()
    c = RustConsumer(cfg, STREAM, "rio.>")
    rows, batches = _drain(c, 700)
    assert rows == expected
    assert c.last_seq == seqs[-1]
    assert len(batches) >= 4  # 700 at most each
    b0 = batches[0]
    # Arrow layout: offsets start at 0 and end at the data length.
    assert b0.subject_offsets[0] == 0 and b0.subject_offsets[-1] == len(b0.subject_data)
    assert b0.payload_offsets[-1] == len(b0.payload_data)
    # Server store times: increasing, and within the minute before this test read them.
    ts = np.concatenate([b.timestamps_ns for b in batches])
    assert (np.diff(ts) >= 0).all()
    assert before_ns - 60e9 < ts[0] <= ts[-1] <= time.time_ns()
    # At the end: an empty batch after the timeout, no error.
    empty = c.next_batch(100, timeout_ms=200)
    assert len(empty) == 0 and empty.num_pending is None and empty.errors == []

    # Resume after a sequence, with a subject filter: only the matching later messages.
    after = seqs[1234]
    r = RustConsumer(cfg, STREAM, "rio.in.1.>", after_seq=after)
    rows2, _ = _drain(r, 1000)
    assert rows2 == [e for e in expected if e[0] > after and e[1].startswith("rio.in.1.")]

    # New messages published later are delivered to the live consumer.
    more = [("rio.in.2.late", b"late-%d" % i) for i in range(5)]
    late = _setup_more(cfg, more)
    rows3: list[tuple[int, str, bytes]] = []
    while len(rows3) < len(more):  # each may come alone, with 0 pending at its delivery
        b = c.next_batch(100, timeout_ms=5000)
        assert len(b) > 0, b.errors
        rows3 += _rows(b)
    assert rows3 == [(s, subj, p) for s, (subj, p) in zip(late, more)]


def _setup_more(cfg: NatsSettings, msgs: list[tuple[str, bytes]]) -> list[int]:
    async def go() -> list[int]:
        nc = await connect(cfg)
        try:
            js = nc.jetstream()
            return [(await js.publish(s, p)).seq for s, p in msgs]
        finally:
            await nc.close()

    return asyncio.run(go())


def test_publish_waits_for_acks_and_a_repeated_id_is_a_duplicate_not_stored(nats_server):
    cfg = NatsSettings(url=nats_server.url)
    _setup(cfg, [])
    p = RustPublisher(cfg)
    subjects = [f"rio.out.{i % 4}" for i in range(300)]
    payloads = [b"p%d" % i + bytes([i % 256]) for i in range(300)]
    ids = [f"id-{i}" for i in range(300)]
    r = p.publish_batch(subjects, payloads, ids, max_inflight=64)
    assert r.ok and not r.duplicate.any()
    assert r.seqs.tolist() == list(range(1, 301))

    # Replay of the first 100 plus 50 new: the 100 acknowledged as duplicates of their
    # first sequence, only the 50 stored.
    r2 = p.publish_batch(
        subjects[:100] + ["rio.out.new"] * 50,
        payloads[:100] + [b"n%d" % i for i in range(50)],
        ids[:100] + [f"new-{i}" for i in range(50)],
    )
    assert r2.ok
    assert r2.duplicate.tolist() == [True] * 100 + [False] * 50
    assert r2.seqs.tolist() == list(range(1, 101)) + list(range(301, 351))

    stored = _stored(cfg)
    assert stored == [(i + 1, subjects[i], payloads[i], ids[i]) for i in range(300)] + [
        (301 + i, "rio.out.new", b"n%d" % i, f"new-{i}") for i in range(50)
    ]

    # A subject no stream holds: a per-message error, the others still acknowledged.
    r3 = p.publish_batch(["rio.out.x", "nostream.x"], [b"a", b"b"], ["x1", "x2"])
    assert r3.errors[0] is None and r3.seqs[0] == 351
    assert r3.errors[1] is not None and r3.seqs[1] == 0


def test_consumer_survives_a_server_restart(tmp_path):
    srv = _server(tmp_path)
    try:
        cfg = NatsSettings(url=srv.url)
        msgs = _messages(400)
        seqs = _setup(cfg, msgs)
        c = RustConsumer(cfg, STREAM, "rio.>")
        first = c.next_batch(150, timeout_ms=5000)
        assert _rows(first) == [(s, subj, p) for s, (subj, p) in zip(seqs[:150], msgs[:150])]
        srv.stop()
        srv.start()  # same port, same store dir
        more = [("rio.in.0.after", b"after-%d" % i) for i in range(10)]
        seqs += _setup_more(cfg, more)
        rows: list[tuple[int, str, bytes]] = []
        deadline = time.monotonic() + 60
        while len(rows) < 260 and time.monotonic() < deadline:
            rows += _rows(c.next_batch(500, timeout_ms=2000))
        # Nothing lost, nothing twice, in order (the ordered consumer recreated itself).
        assert rows == [(s, subj, p) for s, (subj, p) in zip(seqs[150:], msgs[150:] + more)]
    finally:
        srv.stop()


def test_user_password_auth_and_no_secret_in_errors(tmp_path):
    srv = _server(tmp_path, 'authorization {\n  user: "rio"\n  password: "pa55-w0rd-xyz"\n}\n')
    try:
        cfg = NatsSettings(url=srv.url, user="rio", password="pa55-w0rd-xyz")
        seqs = _setup(cfg, [("rio.a", b"1"), ("rio.b", b"2")])
        rows, _ = _drain(RustConsumer(cfg, STREAM, "rio.>"), 10)
        assert rows == [(seqs[0], "rio.a", b"1"), (seqs[1], "rio.b", b"2")]
        assert RustPublisher(cfg).publish_batch(["rio.c"], [b"3"], ["c"]).seqs.tolist() == [3]

        bad = NatsSettings(url=srv.url, user="rio", password="wrong-secret-123", connect_timeout=2)
        with pytest.raises(ConnectorError) as e:
            RustConsumer(bad, STREAM, "rio.>")
        assert "wrong-secret-123" not in str(e.value)
        inurl = NatsSettings(url=srv.url.replace("://", "://rio:bad-in-url-77@"), connect_timeout=2)
        with pytest.raises(ConnectorError) as e:
            RustPublisher(inurl)
        assert "bad-in-url-77" not in str(e.value)
    finally:
        srv.stop()


def test_refused_pull_requests_fail_the_consumer_instead_of_waiting(tmp_path):
    # A user who may create the consumer but not publish its pull requests
    # ($JS.API.CONSUMER.MSG.NEXT): the server only sends an asynchronous permissions
    # error, so without the check the consumer would wait for ever.
    perms = [p for p in _consume(STREAM) if "MSG.NEXT" not in p]  # the role's rights less the pulls
    srv = _server(
        tmp_path,
        "authorization { users = [\n"
        '  { user: "adm", password: "adm-pw-1" },\n'
        f'  {{ user: "puller", password: "pull-pw-2", permissions: {{ publish: {{ allow: {perms!r} }},'
        ' subscribe: { allow: ["_INBOX.>"] } } }\n] }\n'.replace("'", '"'),
    )
    try:
        _setup(NatsSettings(url=srv.url, user="adm", password="adm-pw-1"), [("rio.a", b"1")])
        c = RustConsumer(NatsSettings(url=srv.url, user="puller", password="pull-pw-2"), STREAM, "rio.>")
        assert c.initial_pending == 1  # created: the refusal comes with the first pull
        with pytest.raises(ConnectorError) as e:
            deadline = time.monotonic() + 20  # a bound on the loop, not a speed check
            while time.monotonic() < deadline:
                assert len(c.next_batch(10, 200)) == 0
        msg = str(e.value)
        assert f"$JS.API.CONSUMER.MSG.NEXT.{STREAM}.*" in msg and "puller" in msg
        assert "pull-pw-2" not in msg
    finally:
        srv.stop()


def test_nkey_auth_and_a_wrong_key_is_refused(tmp_path):
    srv, user, seed_file = nkey_user_server(tmp_path, "rio.nk")
    try:
        cfg = NatsSettings(url=srv.url, nkey_seed_file=str(seed_file))
        seqs = _setup(cfg, [("rio.k", b"nkey")])
        rows, _ = _drain(RustConsumer(cfg, STREAM, "rio.>"), 10)
        assert rows == [(seqs[0], "rio.k", b"nkey")]

        other = Key.new("user")
        other_file = tmp_path / "other.nk"
        other_file.write_bytes(other.seed)
        with pytest.raises(ConnectorError) as e:
            RustConsumer(
                NatsSettings(url=srv.url, nkey_seed_file=str(other_file), connect_timeout=2), STREAM, "rio.>"
            )
        assert other.seed.decode() not in str(e.value) and user.seed.decode() not in str(e.value)
    finally:
        srv.stop()


def test_token_auth(tmp_path):
    srv = _server(tmp_path, 'authorization {\n  token: "tok-s3cret-42"\n}\n')
    try:
        cfg = NatsSettings(url=srv.url, token="tok-s3cret-42")
        seqs = _setup(cfg, [("rio.t", b"token")])
        rows, _ = _drain(RustConsumer(cfg, STREAM, "rio.>"), 10)
        assert rows == [(seqs[0], "rio.t", b"token")]
        with pytest.raises(ConnectorError) as e:
            RustPublisher(NatsSettings(url=srv.url, token="tok-wrong-77", connect_timeout=2))
        assert "tok-wrong-77" not in str(e.value)
    finally:
        srv.stop()


def test_mutual_tls_with_the_roles_inbox_prefix(tmp_path):
    """TLS CA + client certificate (the server verifies it), user/password and the admin
    role's own inbox prefix (the server only lets it read ``_INBOX_admin.>`` replies)."""
    from tlskit import start_secure_nats

    sn = start_secure_nats(tmp_path, verify=True)
    try:
        cfg = sn.settings("admin")
        cfg.connect_timeout = 3
        with pytest.raises(ConnectorError):  # no client certificate: refused
            RustPublisher(cfg)
        cfg.tls_cert_file = str(sn.certs["client"])
        cfg.tls_key_file = str(sn.certs["client_key"])
        seqs = _setup(cfg, [("rio.tls", b"over tls")])
        pub = RustPublisher(cfg).publish_batch(["rio.tls"], [b"by rust"], ["tls-1"])
        assert pub.ok and pub.seqs.tolist() == [seqs[0] + 1]
        rows, _ = _drain(RustConsumer(cfg, STREAM, "rio.>"), 10)
        assert rows == [(seqs[0], "rio.tls", b"over tls"), (seqs[0] + 1, "rio.tls", b"by rust")]
    finally:
        sn.server.stop()


def test_creds_file_of_decentralised_auth(tmp_path):
    from nkeykit import Decentralised

    d = Decentralised.new()
    creds = d.write_creds(tmp_path / "rio.creds")
    srv = _server(tmp_path, d.server_config())
    try:
        cfg = NatsSettings(url=srv.url, credentials_file=str(creds))
        seqs = _setup(cfg, [("rio.c", b"creds")])
        rows, _ = _drain(RustConsumer(cfg, STREAM, "rio.>"), 10)
        assert rows == [(seqs[0], "rio.c", b"creds")]
        with pytest.raises(ConnectorError) as e:
            RustConsumer(NatsSettings(url=srv.url, connect_timeout=2), STREAM, "rio.>")
        assert d.user_jwt not in str(e.value) and d.user.seed.decode() not in str(e.value)
    finally:
        srv.stop()
