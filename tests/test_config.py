from __future__ import annotations

import pytest
from tidstream.config import load_settings
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
        ('[nats]\ndata_path = "go"\n', {}, 'data_path must be "python" or "rust"'),
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
    assert load_settings(env={}).nats.data_path == "python"  # the default
    assert load_settings(env={"TIDSTREAM_NATS_DATA_PATH": "rust"}).nats.data_path == "rust"
