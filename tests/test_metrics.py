"""Observability: a real ingest flow process on a real nats-server, /metrics scraped over
HTTP and parsed with prometheus_client's parser, /healthz; JSON logs; the health rule."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import urllib.error
import urllib.request

import pytest
from flowkit import flow_env, publish, scripted, start_flow, write_registry
from prometheus_client.parser import text_string_to_metric_families
from test_flows import init
from tidstream import metrics
from tidstream.config import NatsSettings, Settings
from tidstream.logs import JsonFormatter
from tidstream.nats.server import free_port


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    out = {}
    for fam in text_string_to_metric_families(text):  # raises on invalid exposition text
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def healthz(port: int) -> tuple[int, dict]:
    try:
        r = urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5)
        return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())
    except OSError:
        return 0, {}


def poll(fn, timeout: float = 120.0):
    """fn() until it returns something truthy (waiting for a state, not timing it)."""
    end = time.monotonic() + timeout
    while True:
        try:
            v = fn()
        except OSError:
            v = None
        if v or time.monotonic() > end:
            return v
        time.sleep(0.2)


def total(m: dict, name: str, **labels: str) -> float:
    return sum(v for (n, ls), v in m.items() if n == name and all((k, lv) in ls for k, lv in labels.items()))


@pytest.mark.nats
def test_ingest_process_serves_exact_metrics_health_and_json_logs(nats_server, tmp_path):
    url = nats_server.url
    init(url)
    reg = write_registry(tmp_path / "registry.csv", 30)
    script = scripted(30, 400)
    asyncio.run(publish(url, script.uplinks))
    port = free_port()
    env = flow_env(
        url,
        reg,
        tmp_path,
        TIDSTREAM_METRICS_PORT=str(port),
        TIDSTREAM_LOG_FORMAT="json",
        TIDSTREAM_HEALTH_STALL_S="5",
    )
    proc = start_flow("ingest", env, tmp_path / "rec", once=False)  # keeps running: scrape it live
    try:
        n = len(script.uplinks)
        m = poll(lambda: (lambda m: m if total(m, "tidstream_frames_in_total") == n else None)(scrape(port)))
        assert m, f"the flow never reported {n} frames"
        # Once every frame is in, the sink has acked them too (same epoch): scrape again until so.
        m = poll(
            lambda: (lambda m: m if total(m, "tidstream_published_messages_total") == n else None)(
                scrape(port)
            )
        )
        assert m
        assert total(m, "tidstream_frames_in_total") == n
        assert total(m, "tidstream_readings_out_total") == script.expected_readings()
        dead = {
            dict(ls)["reason"]: v for (name, ls), v in m.items() if name == "tidstream_dead_letters_total"
        }
        assert dead == {k: float(v) for k, v in script.expected_dlq().items()}
        assert sum(dead.values()) + script.expected_readings() == n
        raw = Settings().streams.raw
        assert total(m, "tidstream_source_messages_total", stream=raw) == n
        assert total(m, "tidstream_batch_size_sum", stream=raw) == n
        assert 1 <= total(m, "tidstream_batch_size_count", stream=raw) <= n
        assert total(m, "tidstream_decode_seconds_count") >= 1
        assert total(m, "tidstream_decode_seconds_sum") > 0
        lags = {
            dict(ls)["partition"]: v for (name, ls), v in m.items() if name == "tidstream_source_lag_messages"
        }
        assert lags == {"0": 0.0, "1": 0.0, "2": 0.0, "3": 0.0}
        assert total(m, "tidstream_build_info", flow="ingest") == 1

        code, body = poll(lambda: (lambda r: r if r[0] == 200 else None)(healthz(port)), 30) or healthz(port)
        assert code == 200, body
        assert body["status"] == "ok" and sorted(body["partitions"]) == [f"{raw}/{p}" for p in "0123"]
        assert scrape(port)[("tidstream_healthy", ())] == 1

        # NATS goes away: the same endpoint says so (503, the reason), the process stays up.
        nats_server.stop()
        code, body = poll(lambda: (lambda r: r if r[0] == 503 else None)(healthz(port)), 60) or healthz(port)
        assert code == 503
        assert any("NATS disconnected" in p for p in body["problems"]), body
        assert scrape(port)[("tidstream_healthy", ())] == 0
    finally:
        proc.kill()
        out, _ = proc.communicate(timeout=30)
    lines = [json.loads(x) for x in out.decode(errors="replace").splitlines() if x.startswith("{")]
    msgs = [x["msg"] for x in lines]
    assert any(x.startswith("starting flow ingest") for x in msgs), msgs[:20]
    assert any(x.startswith("metrics on http://127.0.0.1:") for x in msgs)
    started = [x for x in lines if x["msg"].startswith("source partition")]
    assert sorted(x["partition"] for x in started) == ["0", "1", "2", "3"]
    assert all(x["level"] in ("info", "warning", "debug", "error") and x["ts"].endswith("Z") for x in lines)
    assert any(x["logger"] == "tidstream.nats" and "disconnected" in x["msg"] for x in lines)


def test_json_log_lines_mask_nats_secrets():
    cfg = NatsSettings(url="nats://alice:s3cr3t-pw@broker:4222", token="tok-123456")
    rec = logging.LogRecord(
        "tidstream.x", logging.WARNING, __file__, 1, "url %s token %s", (cfg.url, cfg.token), None
    )
    rec.partition = "3"
    line = json.loads(JsonFormatter(cfg).format(rec))
    assert "s3cr3t-pw" not in json.dumps(line) and "tok-123456" not in json.dumps(line)
    assert line["msg"] == "url nats://***@broker:4222 token ***"
    assert line["level"] == "warning" and line["logger"] == "tidstream.x" and line["partition"] == "3"


def test_health_rule_idle_at_head_stalled_and_disconnected():
    key = ("S_TEST", "9")
    probe = metrics.HealthProbe(True, 0, 100.0)
    metrics.register_source(*key, lambda: probe)
    try:
        # idle at the head: healthy however long ago the last batch was
        assert metrics.health(now=10_000.0)[0]
        # a backlog: healthy while batches flow, unhealthy after health_stall_s without one
        probe = metrics.HealthProbe(True, 50, 100.0)
        assert metrics.health(now=100.0 + metrics._stall_s - 1)[0]
        ok, body = metrics.health(now=100.0 + metrics._stall_s + 1)
        assert not ok and "stalled, 50 messages behind" in body["problems"][0]
        probe = metrics.HealthProbe(False, 0, 100.0)
        ok, body = metrics.health(now=100.0)
        assert not ok and body["problems"] == ["S_TEST/9: NATS disconnected"]
    finally:
        metrics.unregister(source=key)
    ok, body = metrics.health()
    assert not ok and body["problems"][0].startswith("starting")


@pytest.mark.nats
def test_export_process_metrics_count_rows_and_files(nats_server, tmp_path):
    from test_flows import readings, wait

    url = nats_server.url
    init(url)
    reg = write_registry(tmp_path / "registry.csv", 20)
    script = scripted(20, 300)
    asyncio.run(publish(url, script.uplinks))
    env = flow_env(url, reg, tmp_path)
    wait(start_flow("ingest", env, tmp_path / "rec-ingest"))
    n = len(readings(url))
    assert n == script.expected_readings()
    port = free_port()
    proc = start_flow(
        "export", dict(env, TIDSTREAM_METRICS_PORT=str(port)), tmp_path / "rec-export", once=False
    )
    try:
        # a file is written at each snapshot (every second here): wait for rows and a file
        m = poll(
            lambda: (
                lambda m: (
                    m
                    if total(m, "tidstream_export_rows_total") == n
                    and total(m, "tidstream_export_files_written_total")
                    else None
                )
            )(scrape(port))
        )
        assert m, "the export never reported its rows and a file"
        assert total(m, "tidstream_export_rows_total") == n
        assert total(m, "tidstream_source_messages_total", stream="TID_READINGS", partition="0") == n
        assert m[("tidstream_source_lag_messages", (("partition", "0"), ("stream", "TID_READINGS")))] == 0
        assert total(m, "tidstream_export_last_write_timestamp_seconds") > 1.7e9
        assert total(m, "tidstream_export_rejected_total") == 0
        assert total(m, "tidstream_build_info", flow="export") == 1
        assert healthz(port)[0] == 200
    finally:
        proc.kill()
        proc.communicate(timeout=30)


def test_alert_logic_counts_alerts_by_kind_and_state():
    from prometheus_client import REGISTRY
    from test_alerts import TH, reading
    from tidstream.flow.alerts import AlertLogic

    def value(kind: str, state: str) -> float:
        return REGISTRY.get_sample_value("tidstream_alerts_total", {"kind": kind, "state": state}) or 0.0

    keys = [("full", "raised"), ("emptied", "event"), ("full", "resolved")]
    before = {k: value(*k) for k in keys}
    logic = AlertLogic(None, TH, {}, Settings().subjects)
    published = []
    for i, f in enumerate([0.5, 0.85, 0.92, 0.95, 0.88, 0.8, 0.91, 0.2, 0.3]):
        out, _ = logic.on_item(
            reading(i, fill_ratio=f, distance_mm=1000 + 50 * i, lat=47.5, lon=6.8, commune="X")
        )
        published += [p.subject for p in out if hasattr(p, "subject")]
    assert {k: value(*k) - before[k] for k in keys} == {k: 1.0 for k in keys}
    assert len([s for s in published if s.startswith("tid.alerts.")]) == 3


def test_serve_answers_on_an_ephemeral_port_and_names_a_taken_one():
    from tidstream.exceptions import ConfigError

    srv = metrics.serve(0, flow="unit")
    try:
        port = srv.server_address[1]
        m = scrape(port)
        assert m[("tidstream_build_info", (("flow", "unit"), ("version", metrics.__version__)))] == 1
        assert healthz(port)[0] == 503  # no source partition in this process
        with pytest.raises(ConfigError, match=f"127.0.0.1:{port}"):
            metrics.serve(port)
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.mark.nats
def test_alerts_process_counts_exactly_the_alerts_it_published(nats_server, tmp_path):
    """A real alerts flow process, scraped live: tidstream_alerts_total by kind and state
    equals the alerts in the TID_ALERTS stream (and the reference rules' alerts); the
    source's lag and batch-size metrics describe the readings it read."""
    from collections import Counter

    from test_twin import alerts_of, config, publish_readings
    from tidstream.alerts import AlertThresholds
    from twinkit import BY_KIND, reference, script

    url = nats_server.url
    init(url)
    rs = script(4, 96)
    asyncio.run(publish_readings(url, rs))
    want, _ = reference(rs, AlertThresholds(), BY_KIND)
    want_by = Counter((a["kind"], a["state"]) for a in want)
    assert len(want_by) >= 3  # several kinds and states: the labels are exercised
    port = free_port()
    env = flow_env(
        url,
        None,
        tmp_path,
        TIDSTREAM_CONFIG=config(tmp_path),
        TIDSTREAM_TWIN_SNAPSHOT_PATH=str(tmp_path / "twin" / "twin.parquet"),
        TIDSTREAM_METRICS_PORT=str(port),
    )
    proc = start_flow("alerts", env, tmp_path / "rec-alerts", once=False)  # keeps running: scrape it live
    try:
        n = len(rs)
        readings = Settings().streams.readings
        m = poll(
            lambda: (
                lambda m: (
                    m
                    if total(m, "tidstream_source_messages_total", stream=readings) == n
                    and total(m, "tidstream_alerts_total") == len(want)
                    and total(m, "tidstream_published_messages_total") >= len(want)
                    else None
                )
            )(scrape(port))
        )
        assert m, "the alerts flow never reported every reading and alert"
        # the counter moves when an alert is made, the stream when its PubAck came back
        got = poll(lambda: (lambda a: a if len(a) >= len(want) else None)(alerts_of(url)), 60) or []
        m = scrape(port)
        published_by = Counter((a["kind"], a["state"]) for a in got)
        counted_by = {
            (dict(ls)["kind"], dict(ls)["state"]): v
            for (name, ls), v in m.items()
            if name == "tidstream_alerts_total" and v
        }
        assert counted_by == {k: float(v) for k, v in published_by.items()}
        assert published_by == want_by
        # lag behind the readings stream head and batch sizes of its one partition
        assert m[("tidstream_source_lag_messages", (("partition", "0"), ("stream", readings)))] == 0
        assert total(m, "tidstream_batch_size_sum", stream=readings) == n
        assert 1 <= total(m, "tidstream_batch_size_count", stream=readings) <= n
        assert total(m, "tidstream_build_info", flow="alerts") == 1
        assert healthz(port)[0] == 200
    finally:
        proc.kill()
        proc.communicate(timeout=30)
