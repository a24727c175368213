r"""Safe names: every value that becomes a NATS subject token, a KV key or a file path
component goes through this module (``docs/SECURITY.md``, "Names").

Two tools, one alphabet:

* :func:`encode_token` / :func:`decode_token`: a reversible escaping for NATS subject
  tokens and KV keys. Letters, digits, ``-`` and ``_`` are kept; every other byte of
  the UTF-8 text (``.``, ``*``, ``>``, ``/``, ``=``, spaces, control characters,
  non-ASCII) becomes ``=XX`` (two upper-case hex digits), like quoted-printable. The
  result matches ``[A-Za-z0-9_=-]+``: one subject token (never a wildcard, never a
  separator) and a valid KV key. A DevEUI (16 hex digits) or an INSEE code is returned
  unchanged, the empty string becomes ``=``, so the escaping is invisible for every valid name and only defuses
  hostile ones.
* :func:`safe_path_component`: a file or folder name that cannot leave its parent
  folder (no ``/``, ``\\``, ``..``, NUL, leading dot); same escaping, and
  :func:`safe_join` checks the final path is inside the root.

Where a name must be *valid* rather than merely harmless (the registry's device ids,
INSEE codes, container ids), the data is refused instead: :func:`check_text` is the
rule used by the registry loader.
"""

from __future__ import annotations

import re
from functools import lru_cache
from os import PathLike
from pathlib import Path

__all__ = [
    "UnsafeNameError",
    "check_text",
    "decode_token",
    "encode_token",
    "is_plain_token",
    "safe_join",
    "safe_path_component",
]

_PLAIN = re.compile(r"[A-Za-z0-9_-]+")  # always used with fullmatch ($ accepts a final \n)
_KEEP = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
_ESCAPED = re.compile(r"=([0-9A-F]{2})")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


class UnsafeNameError(ValueError):
    """A name that cannot be used as given (empty, or not decodable)."""


def is_plain_token(s: str) -> bool:
    """True when ``s`` is non-empty and only letters, digits, ``-``, ``_`` (ASCII):
    :func:`encode_token` returns it unchanged."""
    return bool(_PLAIN.fullmatch(s))


@lru_cache(maxsize=1 << 16)  # called for every published reading: ~1,500 devices, a few communes
def encode_token(s: str) -> str:
    """Escape ``s`` into one NATS subject token / KV key (``[A-Za-z0-9_=-]+``).

    Reversible: ``decode_token(encode_token(s)) == s`` for every string. The empty
    string (which would change the subject's shape) becomes ``=`` alone.
    Never raises for a ``str``.
    """
    if not s:
        return "="
    if _PLAIN.fullmatch(s):
        return s
    return "".join(chr(b) if b in _KEEP else f"={b:02X}" for b in s.encode("utf-8", "surrogatepass"))


def decode_token(t: str) -> str:
    """Inverse of :func:`encode_token`.

    Raises:
        UnsafeNameError: ``t`` is not an output of :func:`encode_token`.
    """
    if t == "=":
        return ""
    if not t or not re.fullmatch(r"(?:[A-Za-z0-9_-]|=[0-9A-F]{2})+", t):
        raise UnsafeNameError(f"{t!r} is not an encoded token")
    raw = bytearray()
    i = 0
    while i < len(t):
        if t[i] == "=":
            raw.append(int(t[i + 1 : i + 3], 16))
            i += 3
        else:
            raw.append(ord(t[i]))
            i += 1
    try:
        return raw.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        raise UnsafeNameError(f"{t!r} does not decode to UTF-8 text") from None


def safe_path_component(s: str) -> str:
    r"""A file/folder name made from ``s`` that stays in its parent folder.

    Names of letters, digits, ``-``, ``_``, ``=`` and inner dots (``date=2026-11-25``,
    ``readings-1-100.parquet``) are kept; anything else (``/``, ``\\``, ``..``, a
    leading dot, spaces, control or non-ASCII characters) is escaped like
    :func:`encode_token` (``=`` then stays as is: the name is for humans, not decoded).

    Raises:
        UnsafeNameError: ``s`` is empty.
    """
    if not s:
        raise UnsafeNameError("an empty name cannot be a file name")
    if re.fullmatch(r"[A-Za-z0-9_=-][A-Za-z0-9_=.-]*", s) and ".." not in s:
        return s
    return "".join(
        chr(b) if b in _KEEP or b == ord("=") else f"={b:02X}" for b in s.encode("utf-8", "surrogatepass")
    )


def safe_join(root: str | PathLike[str], *names: str) -> Path:
    """``root / safe_path_component(n) / ...``, checked to lie inside ``root``."""
    base = Path(root).resolve()
    p = base.joinpath(*(safe_path_component(n) for n in names)).resolve()
    if p != base and base not in p.parents:  # pragma: no cover - guaranteed by the escaping
        raise UnsafeNameError(f"{p} is outside {base}")
    return p


def check_text(s: str | None, what: str, max_len: int = 200) -> str | None:
    """Why ``s`` is not acceptable as a name shown to people and stored in data
    (``None`` when it is): empty, longer than ``max_len`` characters, or holding
    control characters (which forge log lines and terminal output)."""
    if not s or not s.strip():
        return f"{what} is empty"
    if len(s) > max_len:
        return f"{what} is longer than {max_len} characters"
    m = _CONTROL.search(s)
    if m:
        return f"{what} {s[:40]!r} holds a control character (U+{ord(m.group()):04X})"
    return None
