"""The `tidstream` command, as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from flowkit import write_registry


def tidstream(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tidstream.cli", *args], capture_output=True, text=True, timeout=120, env=env
    )


def test_help_explains_every_command():
    out = tidstream("--help").stdout
    for cmd in ("nats", "run", "devices", "demo", "models", "decode", "config"):
        assert cmd in out
    run_help = tidstream("run", "--help").stdout
    assert "--once" in run_help and "--process-id" in run_help and "--from" in run_help


def test_decode_prints_vendor_json():
    p = tidstream("decode", "dragino-ldds20", "0d3b0aef00000001", "--fport", "2")
    assert p.returncode == 0
    assert json.loads(p.stdout) == {
        "Bat": 3.387,
        "Distance": "2799 mm",
        "Interrupt_flag": 0,
        "TempC_DS18B20": "0.00",
        "Sensor_flag": 1,
    }
    p = tidstream("decode", "dragino-ldds20", "0d3b0aef00000001", "--fport", "42")
    assert p.returncode == 2 and "unknown FPort 42" in p.stderr


def test_devices_validate(tmp_path):
    good = write_registry(tmp_path / "r.csv", 5)
    p = tidstream("devices", "validate", str(good))
    assert p.returncode == 0 and "5 devices OK" in p.stdout
    bad = tmp_path / "bad.csv"
    bad.write_text(good.read_text().replace("glass_bank", "bin", 1))
    p = tidstream("devices", "validate", str(bad))
    assert p.returncode == 1 and "row 1: container_kind 'bin'" in p.stderr


def test_config_show_masks_secrets(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[nats]\nurl = "nats://x:4222"\npassword = "hunter2"\nuser = "u"\n')
    p = tidstream("--config", str(cfg), "config", "show")
    assert p.returncode == 0 and "hunter2" not in p.stdout
    assert json.loads(p.stdout)["nats"]["password"] == "***"


@pytest.mark.nats
def test_nats_init_via_cli(nats_server):
    p = tidstream("nats", "init", "--nats-url", nats_server.url)
    assert p.returncode == 0, p.stderr
    assert "TID_RAW" in p.stdout and "created" in p.stdout
    p = tidstream("nats", "init", "--nats-url", nats_server.url)
    assert "updated" not in p.stdout and "created" not in p.stdout


def test_unreachable_nats_is_a_clear_error_without_secrets():
    env = {**__import__("os").environ, "TIDSTREAM_NATS_CONNECT_RETRY_S": "2"}
    p = tidstream("nats", "init", "--nats-url", "nats://user:topsecret@127.0.0.1:1", env=env)
    assert p.returncode == 2
    assert "cannot connect to NATS" in p.stderr and "topsecret" not in p.stderr
