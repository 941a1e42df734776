"""Checks before a command starts its Kafka clients, web server or state store.

Without them a missing broker costs half a minute of retries and hundreds of client log
lines, and a taken port or a read-only directory a traceback from deep inside Faust. Each
check raises ``CommandError`` (``Unavailable`` for the broker) with one line that says what
was tried and what to do.
"""

from __future__ import annotations

import errno
import logging
import re
import socket
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

from stream.core.cliutil import CommandError, Unavailable

PROBE_TIMEOUT_S = 5.0
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "0.0.0.0", "[::1]"})
# librdkafka prefixes each error with the broker and suffixes it with its state machine.
_BROKER_PREFIX = re.compile(r"^(?:\w+://)?\S+/\S+: ")
_STATE_SUFFIX = re.compile(r" \(after \d+ms in state \w+\).*$")
_SECURITY_CODES = frozenset(
    {KafkaError._AUTHENTICATION, KafkaError._SSL, KafkaError.SASL_AUTHENTICATION_FAILED}
)


def _quiet_logger() -> logging.Logger:
    """A logger outside the hierarchy that drops everything: the probe's connection
    retries would otherwise print one line each, many per second, straight to stderr."""
    quiet = logging.Logger("fraudstream.kafka-probe")
    quiet.addHandler(logging.NullHandler())
    return quiet


def probe_broker(
    bootstrap: str,
    client_config: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> Any:
    """Fetch the cluster's metadata (all topics) within ``timeout`` seconds (default
    ``PROBE_TIMEOUT_S``), or raise ``Unavailable`` (no answer) or ``CommandError`` (the
    security handshake failed). ``client_config`` carries the security settings
    (``Settings.kafka_client_config()``)."""
    timeout = PROBE_TIMEOUT_S if timeout is None else timeout
    errors: list[KafkaError] = []
    config: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        **(client_config or {}),
        "logger": _quiet_logger(),
        "error_cb": errors.append,
    }
    admin = AdminClient(config)
    try:
        return admin.list_topics(timeout=timeout)
    except KafkaException as exc:
        admin.poll(0)  # hands the errors met while connecting to error_cb
        raise _unreachable(bootstrap, errors, exc, timeout) from None


def _unreachable(
    bootstrap: str, errors: list[KafkaError], exc: KafkaException, timeout: float
) -> CommandError:
    causes = [e for e in errors if e.code() != KafkaError._ALL_BROKERS_DOWN]
    last = causes[-1] if causes else exc.args[0]
    cause = _STATE_SUFFIX.sub("", _BROKER_PREFIX.sub("", last.str()))
    if last.code() in _SECURITY_CODES or "SSL" in cause or "SASL" in cause:
        return CommandError(
            f"Kafka at {bootstrap} did not accept the connection ({cause}); check "
            "FRAUDSTREAM_SECURITY_PROTOCOL and the FRAUDSTREAM_SASL_* and FRAUDSTREAM_SSL_* "
            "settings"
        )
    return Unavailable(
        f"no Kafka broker answered at {bootstrap} within {timeout:g} s ({cause}); "
        f"{_start_hint(bootstrap)}"
    )


def _start_hint(bootstrap: str) -> str:
    host, _, port = bootstrap.split(",")[0].strip().rpartition(":")
    if host in LOCAL_HOSTS and port.isdigit():
        start = f"fraudstream broker start --port {port}"
        return f"start one with `{start}`, or pass --broker HOST:PORT of a running one"
    return (
        "check that it runs and is reachable from here, or pass --broker HOST:PORT "
        "(a local one: `fraudstream broker start`)"
    )


def missing_topics(metadata: Any, names: Iterable[str]) -> list[str]:
    """The names among ``names`` that the cluster metadata does not list."""
    return [n for n in names if n not in metadata.topics]


def check_writable_dir(path: Path, flag: str = "--data-dir") -> None:
    """Create ``path`` if needed and write a file into it."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-check-"):
            pass
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise CommandError(
            f"data directory {path} is not usable ({reason}); pass {flag} DIR with a "
            "directory this user can write"
        ) from None


def check_port_free(host: str, port: int, flag: str = "--web-port") -> None:
    """Bind ``host:port`` as the web server will (0: any free port, nothing to check)."""
    if port == 0:
        return
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        with socket.socket(family, kind, proto) as sock:
            # As aiohttp binds: a port whose last connections linger in TIME_WAIT is free.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise CommandError(
                f"web port {port} on {host} is already in use (another worker?); pass "
                f"{flag} P with a free port, or stop what holds it"
            ) from None
        reason = exc.strerror or str(exc)
        raise CommandError(
            f"cannot serve HTTP on {host}:{port} ({reason}); check {flag} and FRAUDSTREAM_WEB_HOST"
        ) from None


def check_model_bundle(path: Path | None) -> None:
    """Verify the bundle's manifest and file hashes, as the worker will at start."""
    if path is None:
        return
    from model.bundle import BundleError, load_bundle

    if not path.is_dir():
        raise CommandError(
            f"model bundle {path}: no such directory; pass --model with a directory "
            "written by `fraudstream build`, or leave it out to score with the rules"
        )
    try:
        load_bundle(path)
    except BundleError as exc:
        raise bundle_error(exc) from None


def bundle_error(exc: Exception) -> CommandError:
    return CommandError(
        f"{exc}; build a new one with `fraudstream build`, or pass --model with a bundle "
        "that passes its checks"
    )
