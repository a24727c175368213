from __future__ import annotations

import pytest
from tidstream.config import NatsSettings, load_settings
from tidstream.exceptions import ConfigError


def test_defaults_file_then_env(tmp_path):
    cfg = tmp_path / "t.toml"
    cfg.write_text(
        '[nats]\nurl = "nats://a:4222,nats://b:4222"\nuser = "ingest"\npassword = "s3cret"\n'
        "[streams]\npartitions = 16\n"
        '[[streams.inputs]]\nsubject = "application.*.device.*.event.up"\nformat = "chirpstack"\ndevice_token = 2\n'
    )
    s = load_settings(cfg, env={"TIDSTREAM_STREAMS_PARTITIONS": "4", "TIDSTREAM_BATCH_SIZE": "50"})
    assert s.nats.servers() == ["nats://a:4222", "nats://b:4222"]
    assert s.streams.partitions == 4 and s.batch_size == 50
    assert s.streams.inputs[0].device_token == 2
    red = s.nats.redacted()
    assert red["password"] == "***" and "s3cret" not in repr(red)


@pytest.mark.parametrize(
    ("text", "env", "fragment"),
    [
        ("[nats]\nurll = 1\n", {}, "unknown key 'urll'"),
        ("[streams]\npartitions = 0\n", {}, "partitions must be 1..1024"),
        ("", {"TIDSTREAM_STREAMS_PARTITIONS": "many"}, "not a valid"),
        ('[[streams.inputs]]\nsubject = "a.*"\nformat = "lora"\ndevice_token = 1\n', {}, "format must be"),
        ('[[streams.inputs]]\nsubject = "a.*"\nformat = "ttn"\ndevice_token = 3\n', {}, "device_token"),
        ("[nats\n", {}, "config file"),
        ('[nats]\ndata_path = "go"\n', {}, 'data_path must be "auto", "python" or "rust"'),
        (
            '[nats]\ntls_hostname = "nats.example"\n',
            {"TIDSTREAM_NATS_DATA_PATH": "rust"},
            "tls_hostname is not supported by data_path = .rust.*put the certificate's host name in",
        ),
        (
            '[streams]\natomic_publish = true\n[nats]\ndata_path = "rust"\n',
            {},
            "atomic_publish is not implemented by data_path = .rust.*turn atomic_publish off",
        ),
    ],
)
def test_bad_config_is_a_clear_error(tmp_path, text, env, fragment):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError, match=fragment):
        load_settings(cfg, env=env)


def test_url_credentials_are_masked():
    s = load_settings(env={"TIDSTREAM_NATS_URL": "nats://user:pw@host:4222"})
    assert s.nats.redacted()["url"] == "nats://***@host:4222"


def test_data_path_from_file_and_env():
    assert load_settings(env={}).nats.data_path == "auto"  # the default
    assert load_settings(env={"TIDSTREAM_NATS_DATA_PATH": "rust"}).nats.data_path == "rust"


@pytest.mark.parametrize(
    ("data_path", "tls_hostname", "atomic", "source_rust", "sink_rust"),
    [
        ("auto", None, False, True, True),  # the default: Rust
        ("auto", "nats.example", False, False, False),  # tls_hostname: nats-py only
        ("auto", None, True, True, False),  # atomic batches: the sink on nats-py
        ("python", None, False, False, False),
        ("rust", None, False, True, True),
    ],
)
def test_auto_data_path_is_rust_unless_an_option_needs_nats_py(
    data_path, tls_hostname, atomic, source_rust, sink_rust
):
    n = NatsSettings(data_path=data_path, tls_hostname=tls_hostname)
    assert n.rust_data_path() == source_rust
    assert n.rust_data_path(atomic_publish=atomic) == sink_rust
    # "auto" with an option only nats-py has is valid configuration (explicit "rust" is refused)
    env = {"TIDSTREAM_NATS_DATA_PATH": data_path, "TIDSTREAM_STREAMS_ATOMIC_PUBLISH": str(atomic).lower()}
    if tls_hostname:
        env["TIDSTREAM_NATS_TLS_HOSTNAME"] = tls_hostname
    assert load_settings(env=env).nats.rust_data_path(atomic) == sink_rust
