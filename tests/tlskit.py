"""Test helpers for the least-privilege, TLS-only NATS setup (docs/SECURITY.md): a
throw-away CA and server certificate made with ``cryptography``, and a real nats-server
with TLS and one user per role."""

from __future__ import annotations

import datetime as dt
import ipaddress
import secrets
from dataclasses import dataclass
from pathlib import Path

from tidstream.config import NatsSettings, Settings
from tidstream.nats.roles import ROLES, authorization_block, inbox_prefix
from tidstream.nats.server import EmbeddedServer


def make_certs(folder: Path) -> dict[str, Path]:
    """CA, server cert (``localhost`` / 127.0.0.1) and a client cert, PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    folder.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.timezone.utc)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def key_pem(k: ec.EllipticCurvePrivateKey) -> bytes:
        return k.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("tidstream test CA"))
        .issuer_name(name("tidstream test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .sign(ca_key, hashes.SHA256())
    )
    out = {"ca": folder / "ca.pem"}
    out["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    for who, usage, san in (
        (
            "server",
            ExtendedKeyUsageOID.SERVER_AUTH,
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
        ),
        ("client", ExtendedKeyUsageOID.CLIENT_AUTH, [x509.DNSName("tidstream-client")]),
    ):
        k = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(name(f"tidstream test {who}"))
            .issuer_name(ca.subject)
            .public_key(k.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(san), critical=False)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        out[who] = folder / f"{who}.pem"
        out[f"{who}_key"] = folder / f"{who}-key.pem"
        out[who].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        out[f"{who}_key"].write_bytes(key_pem(k))
    return out


@dataclass
class SecureNats:
    """A running TLS-only server with one user per role."""

    server: EmbeddedServer
    certs: dict[str, Path]
    passwords: dict[str, tuple[str, str]]

    @property
    def url(self) -> str:
        return self.server.url

    def settings(self, role: str) -> NatsSettings:
        user, pw = self.passwords[role]
        return NatsSettings(
            url=self.url,
            user=user,
            password=pw,
            tls_ca_file=str(self.certs["ca"]),
            inbox_prefix=None if role == "subscriber" else inbox_prefix(role),
            connect_retry_s=5,
        )

    def env(self, role: str) -> dict[str, str]:
        """``TIDSTREAM_NATS_*`` variables that make a flow connect as ``role``."""
        c = self.settings(role)
        return {
            "TIDSTREAM_NATS_URL": c.url,
            "TIDSTREAM_NATS_USER": c.user or "",
            "TIDSTREAM_NATS_PASSWORD": c.password or "",
            "TIDSTREAM_NATS_TLS_CA_FILE": c.tls_ca_file or "",
            "TIDSTREAM_NATS_INBOX_PREFIX": c.inbox_prefix or "",
        }

    def log_text(self) -> str:
        logs = list(Path(self.server.store_dir).parent.glob("nats-*.log"))  # type: ignore[arg-type]
        return "".join(p.read_text(errors="replace") for p in logs)


def start_secure_nats(tmp: Path, settings: Settings | None = None, *, verify: bool = False) -> SecureNats:
    """Certificates, users with random passwords, and a server that requires TLS (and,
    with ``verify``, a client certificate signed by the CA: mutual TLS)."""
    s = settings or Settings()
    certs = make_certs(tmp / "certs")
    passwords = {role: (f"tid-{role}", "pw-" + secrets.token_urlsafe(18)) for role in ROLES}
    tls = (
        "tls {\n"
        f'  cert_file: "{certs["server"]}"\n  key_file: "{certs["server_key"]}"\n'
        f'  ca_file: "{certs["ca"]}"\n  timeout: 5\n' + ("  verify: true\n" if verify else "") + "}\n"
    )
    srv = EmbeddedServer(
        store_dir=tmp / "nats" / "jetstream", extra_config=tls + authorization_block(s, passwords)
    )
    srv.start()
    return SecureNats(srv, certs, passwords)
