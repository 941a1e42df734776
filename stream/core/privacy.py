"""Pseudonyms for device ids, IP addresses and payment instrument tokens.

Events are pseudonymised as they enter the pipeline, right after validation, so the raw
values never reach state, changelogs, seller records, model features, logs or alerts.
The detectors only compare these fields for equality or novelty (a new device, devices
shared by a seller's buyers, distinct instruments), and a keyed hash keeps equality, so
nothing is lost. The hash is HMAC-SHA256 under a secret key, truncated to 96 bits: without
the key nobody can test a guessed IP address or card token against a pseudonym.

Where the key comes from: ``FRAUDSTREAM_PSEUDONYM_KEY`` (the secret itself) or
``FRAUDSTREAM_PSEUDONYM_KEY_FILE`` (a file holding it). With neither, a random key is
generated once and kept in the worker's data directory, next to its RocksDB state, so a
restart keeps the same pseudonyms; workers that share partitions must share a key.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import secrets
from pathlib import Path
from typing import Final

from stream.core.schema import PSEUDONYMISED

__all__ = ["PSEUDONYMISED", "PseudonymKeyError", "Pseudonymiser", "load_key"]
PREFIX: Final = "ps:"  # marks a pseudonym: "ps:" and 24 hex digits
MIN_KEY_BYTES: Final = 16
_BLOCK: Final = 64  # SHA-256's block size, in bytes
GENERATED_KEY_FILE: Final = "pseudonym.key"

log = logging.getLogger("fraudstream")


class PseudonymKeyError(ValueError):
    """A configured key that cannot be used; the message names the setting."""


class Pseudonymiser:
    """Keyed hashes of the identifying fields' values; ``parse_event(raw, p.pseudonym)``
    validates an event and pseudonymises it in one step."""

    def __init__(self, key: bytes) -> None:
        if len(key) < MIN_KEY_BYTES:
            raise PseudonymKeyError(f"pseudonym key: {len(key)} bytes, at least {MIN_KEY_BYTES}")
        # HMAC's two keyed hash states, computed once (RFC 2104): a pseudonym then costs two
        # copies and two short hashes, half of what ``hmac.new`` takes for each value.
        block = key if len(key) <= _BLOCK else hashlib.sha256(key).digest()
        block = block.ljust(_BLOCK, b"\x00")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))
        # A user's events repeat a few devices and addresses: hash each value once.
        self.pseudonym = functools.lru_cache(maxsize=65536)(self._hash)

    def _hash(self, field: str, value: str) -> str:
        # The field name separates the namespaces: a device id never equals an IP address.
        inner = self._inner.copy()
        inner.update(f"{field}\x00{value}".encode())
        outer = self._outer.copy()
        outer.update(inner.digest())
        return PREFIX + outer.digest()[:12].hex()  # HMAC-SHA256, its first 96 bits


def load_key(secret: str | None, key_file: Path | None, state_dir: Path | None) -> bytes:
    """The configured key (the secret, else the file), else the one kept in ``state_dir``
    (generated there on first use, with one warning); ``None`` dirs get a fresh key."""
    if secret is not None:
        return _checked(secret.encode(), "FRAUDSTREAM_PSEUDONYM_KEY")
    if key_file is not None:
        try:
            data = key_file.read_bytes().strip()
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise PseudonymKeyError(
                f"FRAUDSTREAM_PSEUDONYM_KEY_FILE: cannot read {key_file} ({reason})"
            ) from None
        return _checked(data, f"FRAUDSTREAM_PSEUDONYM_KEY_FILE ({key_file})")
    if state_dir is None:
        return secrets.token_hex(32).encode()
    return _kept_key(state_dir)


def _checked(key: bytes, where: str) -> bytes:
    if len(key) < MIN_KEY_BYTES:
        raise PseudonymKeyError(f"{where}: the key must be at least {MIN_KEY_BYTES} bytes")
    return key


def _kept_key(state_dir: Path) -> bytes:
    path = state_dir / GENERATED_KEY_FILE
    if path.is_file():
        return _checked(path.read_bytes().strip(), str(path))
    log.warning(
        "no pseudonym key configured (FRAUDSTREAM_PSEUDONYM_KEY or _KEY_FILE): generated "
        "one in %s; workers that share partitions need the same key",
        path,
    )
    state_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32).encode()
    # Created readable by the owner only; O_EXCL: a concurrent start keeps the first key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _checked(path.read_bytes().strip(), str(path))
    with os.fdopen(fd, "wb") as out:
        out.write(key + b"\n")
    return key
