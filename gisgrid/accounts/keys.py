"""API keys of machine clients: made, parsed and checked here; stored by :mod:`gisgrid.accounts.store`.

A key reads ``gg_<prefix>_<secret>``: the prefix (12 hex digits) finds the
key's row and is shown in lists; the secret (32 random bytes, URL-safe
base64) is shown once, when the key is made, and only its SHA-256 digest is
stored.  A slow password hash (argon2id) is for what people choose; a secret
of 256 random bits cannot be guessed, and hashing it slowly would only add a
cost to every request.  Clients send it as ``Authorization: Bearer <key>``.

A key acts as its user: with the user's roles and sight, and only while the
account is active and holds the ``api_client`` role.

Pure: no database, no Flask.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

#: The role an account needs for keys.
API_ROLE = "api_client"
#: ``gg_`` + 12 hex digits + ``_`` + 43 URL-safe base64 characters.
KEY_RE = re.compile(r"^gg_(?P<prefix>[0-9a-f]{12})_(?P<secret>[A-Za-z0-9_-]{43})$")
#: Longest key name.
MAX_KEY_NAME = 100


@dataclass(frozen=True)
class NewKey:
    """A key just made: ``text`` is given to the client once; the rest is stored."""

    text: str
    prefix: str
    secret_sha256: str


def digest(secret: str) -> str:
    """The SHA-256 digest (hex) stored for a key's secret."""
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def new_key() -> NewKey:
    """A fresh random key."""
    prefix, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    return NewKey(f"gg_{prefix}_{secret}", prefix, digest(secret))


def parse_key(text: str | None) -> tuple[str, str] | None:
    """(prefix, secret) of a key as a client sent it, or None when it is not shaped like one."""
    match = KEY_RE.fullmatch((text or "").strip())
    return (match["prefix"], match["secret"]) if match else None


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (None for any other header)."""
    scheme, _sep, token = (header or "").strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def secret_matches(stored_sha256: str, secret: str) -> bool:
    """True when ``secret`` is the one whose digest was stored (compared in constant time)."""
    return hmac.compare_digest(stored_sha256, digest(secret))


def check_key_name(raw: object) -> str:
    """A key's name (what it is for): trimmed, 1 to :data:`MAX_KEY_NAME` characters; ValueError otherwise."""
    name = " ".join(str(raw or "").split())
    if not name or len(name) > MAX_KEY_NAME:
        raise ValueError(f"a key's name has 1 to {MAX_KEY_NAME} characters")
    return name
