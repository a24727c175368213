"""Hostile names: subject tokens, KV keys and file paths built from untrusted values
(docs/SECURITY.md, "Names"; figures in docs/RELIABILITY.md)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tidstream.alerts import Alert
from tidstream.config import Subjects
from tidstream.flow.alerts import alert_publish
from tidstream.names import (
    UnsafeNameError,
    check_text,
    decode_token,
    encode_token,
    safe_join,
    safe_path_component,
)
from tidstream.registry import RegistryError, load_registry

#: One of each hostile family the issue names, plus a few classics.
HOSTILE = [
    "a.b",
    "a840410000000001.x",
    "*",
    ">",
    "a*b",
    "a>",
    "a/b",
    "/etc/passwd",
    "..",
    "../..",
    "../../outside",
    ".",
    ".hidden",
    "a b",
    " ",
    "\t",
    "a\nb",
    "a\rb",
    "0\n",  # a final newline passes a naive ^...$ regex check
    "a\x00b",
    "\x1b[31m",
    "é",
    "日本",
    "a=b",
    "=",
    "=2E",
    "",
    "\ud800",  # lone surrogate (not valid UTF-8 text)
]
TOKEN = re.compile(r"^[A-Za-z0-9_=-]+$")


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_name_is_one_inert_token_and_round_trips(name):
    t = encode_token(name)
    assert TOKEN.fullmatch(t), t
    assert decode_token(t) == name
    # Every subject builder keeps its shape: same number of tokens, fixed prefix.
    s = Subjects("tid")
    assert s.reading("25388", name).split(".")[:3] == ["tid", "readings", "25388"]
    assert len(s.reading("25388", name).split(".")) == 4
    assert len(s.reading(name, "a840410000000001").split(".")) == 4
    assert len(s.uplink("raw", name).split(".")) == 4
    assert len(s.alert("full", name, name).split(".")) == 5
    assert len(s.dlq(name).split(".")) == 3
    for subject in (s.reading(name, name), s.uplink(name, name), s.alert(name, name, name), s.dlq(name)):
        assert "*" not in subject and ">" not in subject and " " not in subject
        assert all(TOKEN.fullmatch(tok) for tok in subject.split("."))


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_name_never_leaves_the_folder(name, tmp_path):
    root = tmp_path / "export"
    root.mkdir()
    if name == "":
        with pytest.raises(UnsafeNameError):
            safe_path_component(name)
        return
    comp = safe_path_component(name)
    assert "/" not in comp and "\\" not in comp and "\x00" not in comp
    assert comp not in (".", "..") and not comp.startswith(".")
    p = safe_join(root, name)
    assert p.parent == root.resolve()
    p.write_bytes(b"x")  # really creatable, and inside the folder
    assert [q.name for q in root.iterdir()] == [comp]


def test_valid_names_are_unchanged():
    for name in ("a840410000000001", "25388", "2A004", "invalid_json", "battery-low"):
        assert encode_token(name) == name
    assert safe_path_component("date=2026-11-25") == "date=2026-11-25"
    assert safe_path_component("readings-000000000001-000000100000.parquet").endswith(".parquet")
    assert Subjects().reading("25388", "a840410000000001") == "tid.readings.25388.a840410000000001"


@settings(max_examples=2000, deadline=None)
@given(st.text(min_size=0, max_size=40))
def test_token_encoding_is_reversible_and_inert(name):
    t = encode_token(name)
    assert TOKEN.fullmatch(t)
    assert decode_token(t) == name
    # Distinct names never share a token (no redirection by collision).
    assert encode_token(name + "x") != t


@settings(max_examples=1000, deadline=None)
@given(st.text(min_size=1, max_size=40))
def test_path_component_is_inert(name):
    c = safe_path_component(name)
    assert "/" not in c and "\\" not in c and "\x00" not in c and ".." not in c
    assert not c.startswith(".")


def test_decode_refuses_what_encode_never_produces():
    for bad in ("a.b", "=2", "=zz", "a*", "=C3"):  # "=C3" alone is not UTF-8
        with pytest.raises(UnsafeNameError):
            decode_token(bad)


def test_alert_subject_of_a_forged_reading_stays_in_place():
    """A reading forged with a hostile device id (e.g. by a client allowed to publish
    readings) cannot move its alert to another subject."""
    a = Alert(
        alert_id="x",
        kind="full",
        state="raised",
        device_id="a.b.>",
        container_id="C-1",
        container_kind="glass_bank",
        commune_insee="25388.*",
        at="2026-11-25T00:00:00.000000Z",
        reading_id="r:1:0",
        value=1.0,
        threshold=0.9,
        message="m",
    )
    p = alert_publish(a, Subjects())
    assert p.subject == "tid.alerts.full.25388=2E=2A.a=2Eb=2E=3E"


def test_check_text():
    assert check_text("Montbéliard", "commune") is None
    assert "control character" in (check_text("Mont\nbéliard", "commune") or "")
    assert "empty" in (check_text("  ", "commune") or "")
    assert "longer" in (check_text("x" * 201, "commune") or "")


HEADER = "device_id,model,container_id,container_kind,stream,volume_l,depth_mm,offset_mm,lat,lon,commune_insee,commune\n"


def _row(dev="a840410000000001", container="C-1", insee="25388", commune="Montbéliard"):
    return f"{dev},tid1,{container},glass_bank,glass,3000,1500,250,47.5,6.8,{insee},{commune}\n"


@pytest.mark.parametrize(
    "row, why",
    [
        (_row(dev="a84041000000000.1"), "device_id"),
        (_row(dev="a8404100000000*1"), "device_id"),
        (_row(dev="../../../etc/pas"), "device_id"),
        (_row(dev="a840 41000000001"), "device_id"),
        (_row(dev='"a840410000000002\n"'), "device_id"),
        (_row(insee="25.88"), "commune_insee"),
        (_row(insee="2538>"), "commune_insee"),
        (_row(container='"C\x01"'), "container_id"),
        (_row(commune='"Mont\nbéliard"'), "commune"),
        (_row(commune='"\x1b[2J"'), "commune"),
    ],
)
def test_registry_with_an_unsafe_name_is_refused_with_its_line(tmp_path, row, why):
    p = tmp_path / "registry.csv"
    p.write_text(HEADER + _row(dev="a840410000000000") + row, encoding="utf-8")
    with pytest.raises(RegistryError) as e:
        load_registry(p)
    assert e.value.problems[0][0] == 2
    assert "row 2: " in str(e.value) and "(line 3)" in str(e.value) and why in str(e.value)
