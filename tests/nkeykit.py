"""NKEYs and NATS JWTs made in the tests (no ``nsc``): seeds, an operator / account / user
chain signed with ed25519, ``.creds`` files and the server configuration of decentralised
auth (operator JWT + MEMORY resolver with the account JWTs preloaded).

A NATS JWT is ``base64url(header).base64url(claims).base64url(ed25519 signature)``, header
``{"typ": "JWT", "alg": "ed25519-nkey"}``, signed by the issuer's NKEY; ``jti`` is the
base32 SHA-512/256 of the claims without it (as the Go ``jwt`` package computes it).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nkeys

PREFIX = {
    "operator": nkeys.PREFIX_BYTE_OPERATOR,
    "account": nkeys.PREFIX_BYTE_ACCOUNT,
    "user": nkeys.PREFIX_BYTE_USER,
}


def make_seed(kind: str) -> bytes:
    """A fresh random NKEY seed (``SO...``, ``SA...``, ``SU...``) for ``kind``."""
    prefix = PREFIX[kind]
    src = bytearray([nkeys.PREFIX_BYTE_SEED | prefix >> 5, (prefix & 31) << 3]) + os.urandom(32)
    src += nkeys.crc16(src).to_bytes(2, "little")
    return base64.b32encode(bytes(src)).rstrip(b"=")


@dataclass
class Key:
    kind: str
    seed: bytes

    @classmethod
    def new(cls, kind: str) -> Key:
        return cls(kind, make_seed(kind))

    @property
    def pair(self) -> Any:
        return nkeys.from_seed(self.seed)

    @property
    def public(self) -> str:
        return self.pair.public_key.decode()


def _b64(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def encode_jwt(issuer: Key, subject: str, name: str, nats: dict[str, Any]) -> str:
    """A signed NATS JWT (v2 claims) issued by ``issuer`` for ``subject``."""
    claims: dict[str, Any] = {"iat": int(time.time()), "iss": issuer.public, "name": name, "sub": subject}
    claims["nats"] = nats
    h = hashlib.new("sha512_256", json.dumps(claims, separators=(",", ":")).encode()).digest()
    claims = {"jti": base64.b32encode(h).rstrip(b"=").decode(), **claims}
    header = _b64(json.dumps({"typ": "JWT", "alg": "ed25519-nkey"}).encode())
    body = _b64(json.dumps(claims, separators=(",", ":")).encode())
    sig = issuer.pair.sign(f"{header}.{body}".encode())
    return f"{header}.{body}.{_b64(sig)}"


#: Account limits: unlimited, JetStream enabled (disk and memory storage -1 = no limit).
ACCOUNT_LIMITS = {
    "subs": -1,
    "data": -1,
    "payload": -1,
    "imports": -1,
    "exports": -1,
    "wildcards": True,
    "conn": -1,
    "leaf": -1,
    "mem_storage": -1,
    "disk_storage": -1,
    "streams": -1,
    "consumer": -1,
}


@dataclass
class Decentralised:
    """An operator, a system account, an application account with JetStream and one
    user of it; :meth:`server_config` for nats-server, :meth:`write_creds` for the client."""

    operator: Key
    system: Key
    account: Key
    user: Key
    operator_jwt: str
    system_jwt: str
    account_jwt: str
    user_jwt: str

    @classmethod
    def new(cls) -> Decentralised:
        op, sys_, acc, usr = Key.new("operator"), Key.new("account"), Key.new("account"), Key.new("user")
        op_jwt = encode_jwt(
            op, op.public, "tid-operator", {"type": "operator", "version": 2, "system_account": sys_.public}
        )
        sys_jwt = encode_jwt(
            op, sys_.public, "SYS", {"type": "account", "version": 2, "limits": {"conn": -1, "subs": -1}}
        )
        acc_jwt = encode_jwt(
            op, acc.public, "TIDSTREAM", {"type": "account", "version": 2, "limits": ACCOUNT_LIMITS}
        )
        user_jwt = encode_jwt(
            acc,
            usr.public,
            "tid-ingest",
            {"type": "user", "version": 2, "pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1},
        )
        return cls(op, sys_, acc, usr, op_jwt, sys_jwt, acc_jwt, user_jwt)

    def server_config(self) -> str:
        """nats-server settings of operator mode with a MEMORY resolver."""
        return (
            f"operator: {self.operator_jwt}\n"
            f"system_account: {self.system.public}\n"
            "resolver: MEMORY\n"
            "resolver_preload: {\n"
            f"  {self.system.public}: {self.system_jwt}\n"
            f"  {self.account.public}: {self.account_jwt}\n"
            "}\n"
        )

    def write_creds(self, path: Path) -> Path:
        """A ``.creds`` file as ``nsc generate creds`` writes it (user JWT + user seed)."""
        path.write_text(
            "-----BEGIN NATS USER JWT-----\n"
            f"{self.user_jwt}\n"
            "------END NATS USER JWT------\n\n"
            "************************* IMPORTANT *************************\n"
            "NKEY Seed printed below can be used to sign and prove identity.\n"
            "NKEYs are sensitive and should be treated as secrets.\n\n"
            "-----BEGIN USER NKEY SEED-----\n"
            f"{self.user.seed.decode()}\n"
            "------END USER NKEY SEED------\n\n"
            "*************************************************************\n",
            encoding="utf-8",
        )
        path.chmod(0o600)
        return path


def nkey_user_server(tmp_path: Path, seed_name: str) -> tuple[Any, Key, Path]:
    """A started embedded nats-server whose only user is a fresh NKEY user, the user's
    key and its seed file (mode 0600) in ``tmp_path``; the caller stops the server."""
    from tidstream.nats.server import EmbeddedServer

    user = Key.new("user")
    seed_file = tmp_path / seed_name
    seed_file.write_bytes(user.seed + b"\n")
    seed_file.chmod(0o600)
    srv = EmbeddedServer(
        store_dir=tmp_path / "nats" / "jetstream",
        extra_config=f"authorization {{\n  users = [\n    {{ nkey: {user.public} }}\n  ]\n}}\n",
    ).start()
    return srv, user, seed_file
