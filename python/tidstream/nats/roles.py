"""Least-privilege NATS users, one per role (``docs/SECURITY.md``).

:func:`role_permissions` lists, for the configured prefix and stream names, exactly the
subjects each role may publish to and subscribe to, JetStream API subjects included;
:func:`authorization_block` renders them as a ``nats-server`` ``authorization { users
= [...] }`` block. Everything not listed is denied by the server.

Roles:

* ``gateway``: publishes uplinks (``tid.up.>``) and reads its publish acknowledgements.
  Cannot publish readings, alerts or dead letters, cannot read any stream.
* ``ingest``: reads the raw stream (ordered consumer), publishes readings and dead
  letters; reads the readings stream at start (last reading per device: frame counters).
* ``alerting``: reads the readings stream, publishes alerts.
* ``export``: reads the readings stream (and the raw stream for ``replay``); publishes
  nothing but JetStream API requests for its own consumers.
* ``subscriber``: a downstream read-only client: core NATS subscriptions to readings and
  alerts, no publish right at all (not even JetStream API requests).
* ``admin``: ``tidstream nats init`` (creates streams and KV buckets): everything.

Every role except ``subscriber`` receives replies on its own inbox prefix
(``_INBOX_<role>.>``, set as ``[nats] inbox_prefix``), so a role cannot read another's
replies.
"""

from __future__ import annotations

import json

from ..config import Settings

__all__ = ["ROLES", "authorization_block", "inbox_prefix", "role_permissions"]

ROLES = ("gateway", "ingest", "alerting", "export", "subscriber", "admin")


def inbox_prefix(role: str) -> str:
    """The reply-subject prefix of a role (``[nats] inbox_prefix``)."""
    return f"_INBOX_{role}"


def _consume(stream: str) -> list[str]:
    """JetStream API subjects an ordered consumer of ``stream`` needs: push (nats-py,
    ``data_path = "python"``) or pull (async-nats, ``data_path = "rust"``: its pull
    requests, ``CONSUMER.MSG.NEXT``)."""
    return [
        "$JS.API.INFO",
        f"$JS.API.STREAM.INFO.{stream}",
        f"$JS.API.CONSUMER.CREATE.{stream}",
        f"$JS.API.CONSUMER.CREATE.{stream}.>",
        f"$JS.API.CONSUMER.INFO.{stream}.*",
        f"$JS.API.CONSUMER.DELETE.{stream}.*",
        f"$JS.API.CONSUMER.MSG.NEXT.{stream}.*",
        f"$JS.FC.{stream}.>",  # flow-control replies
        f"$JS.ACK.{stream}.>",
    ]


def role_permissions(s: Settings) -> dict[str, dict[str, list[str]]]:
    """``{role: {"publish": [...], "subscribe": [...]}}`` (allow lists) for the settings."""
    p, st = s.streams.prefix, s.streams

    def inbox(role: str) -> list[str]:
        return [f"{inbox_prefix(role)}.>"]

    return {
        "gateway": {"publish": [f"{p}.up.>"], "subscribe": inbox("gateway")},
        "ingest": {
            # + the readings stream: frame counters are rebuilt from it at start
            "publish": [f"{p}.readings.>", f"{p}.dlq.>", *_consume(st.raw), *_consume(st.readings)[1:]],
            "subscribe": inbox("ingest"),
        },
        "alerting": {"publish": [f"{p}.alerts.>", *_consume(st.readings)], "subscribe": inbox("alerting")},
        "export": {"publish": [*_consume(st.readings), *_consume(st.raw)[1:]], "subscribe": inbox("export")},
        "subscriber": {"publish": [], "subscribe": [f"{p}.readings.>", f"{p}.alerts.>"]},
        "admin": {"publish": [">"], "subscribe": [">"]},
    }


def authorization_block(s: Settings, passwords: dict[str, tuple[str, str]]) -> str:
    """A ``nats-server`` ``authorization`` block: ``passwords`` maps role -> (user,
    password or bcrypt hash); roles left out get no user."""
    perms = role_permissions(s)
    users = []
    for role in ROLES:
        if role not in passwords:
            continue
        user, pw = passwords[role]
        pub = perms[role]["publish"]
        sub = perms[role]["subscribe"]
        publish = f"{{ allow: {json.dumps(pub)} }}" if pub else '{ deny: [">"] }'
        users.append(
            f"    {{ user: {json.dumps(user)}, password: {json.dumps(pw)},\n"
            f"      permissions: {{ publish: {publish},\n"
            f"                     subscribe: {{ allow: {json.dumps(sub)} }} }} }}"
        )
    return "authorization {\n  users = [\n" + ",\n".join(users) + "\n  ]\n}\n"
