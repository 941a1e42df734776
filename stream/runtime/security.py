"""Kafka security for real clusters: one set of settings, three client libraries.

The worker's Faust consumer and producer (aiokafka) take an ``ssl.SSLContext`` and
``faust.SASLCredentials``; the librdkafka clients (output, topic admin) take a config
dict. Both are derived here from the same settings, so they cannot drift apart. Secrets
stay in ``SecretStr`` until the moment a client is built, and ``describe`` is the only
form that is ever logged.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import faust

if TYPE_CHECKING:
    from stream.runtime.settings import Settings

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


def uses_tls(settings: Settings) -> bool:
    return settings.security_protocol in ("SSL", "SASL_SSL")


def uses_sasl(settings: Settings) -> bool:
    return settings.security_protocol in ("SASL_PLAINTEXT", "SASL_SSL")


def check(settings: Settings) -> None:
    """Raise ValueError naming the missing setting; never echo a value."""
    if uses_sasl(settings):
        for name in ("sasl_mechanism", "sasl_username", "sasl_password"):
            if getattr(settings, name) is None:
                raise ValueError(
                    f"{name} is required with security_protocol {settings.security_protocol}"
                )
    if (settings.ssl_certfile is None) != (settings.ssl_keyfile is None):
        raise ValueError("ssl_certfile and ssl_keyfile must be given together")
    for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
        path: Path | None = getattr(settings, name)
        if path is not None and not uses_tls(settings):
            raise ValueError(f"{name} needs security_protocol SSL or SASL_SSL")


def librdkafka_config(settings: Settings) -> dict[str, str]:
    """librdkafka settings; empty for a plaintext broker."""
    config: dict[str, str] = {}
    if settings.security_protocol == "PLAINTEXT":
        return config
    config["security.protocol"] = settings.security_protocol
    if uses_sasl(settings):
        assert settings.sasl_mechanism and settings.sasl_username and settings.sasl_password
        config["sasl.mechanism"] = settings.sasl_mechanism
        config["sasl.username"] = settings.sasl_username
        config["sasl.password"] = settings.sasl_password.get_secret_value()
    if uses_tls(settings):
        if settings.ssl_cafile is not None:
            config["ssl.ca.location"] = str(settings.ssl_cafile)
        if settings.ssl_certfile is not None and settings.ssl_keyfile is not None:
            config["ssl.certificate.location"] = str(settings.ssl_certfile)
            config["ssl.key.location"] = str(settings.ssl_keyfile)
        if settings.ssl_key_password is not None:
            config["ssl.key.password"] = settings.ssl_key_password.get_secret_value()
        if not settings.ssl_check_hostname:
            config["ssl.endpoint.identification.algorithm"] = "none"
    return config


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context for aiokafka: CA (or the system store), optional client certificate."""
    if not uses_tls(settings):
        return None
    cafile = str(settings.ssl_cafile) if settings.ssl_cafile is not None else None
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile)
    context.check_hostname = settings.ssl_check_hostname
    if settings.ssl_certfile is not None:
        password = settings.ssl_key_password
        context.load_cert_chain(
            str(settings.ssl_certfile),
            str(settings.ssl_keyfile) if settings.ssl_keyfile is not None else None,
            password.get_secret_value() if password is not None else None,
        )
    return context


def faust_app_kwargs(settings: Settings) -> dict[str, Any]:
    """``faust.App`` keyword arguments: ``ssl_context`` for TLS, credentials for SASL."""
    context = ssl_context(settings)
    if not uses_sasl(settings):
        return {"ssl_context": context} if context is not None else {}
    assert settings.sasl_password is not None
    credentials = faust.SASLCredentials(
        username=settings.sasl_username,
        password=settings.sasl_password.get_secret_value(),
        ssl_context=context,  # SASL_SSL with a context, SASL_PLAINTEXT without
        mechanism=settings.sasl_mechanism,
    )
    return {"broker_credentials": credentials}


def describe(settings: Settings) -> str:
    """A loggable one-liner: protocol, mechanism, user and files, never a secret."""
    parts: list[str] = [settings.security_protocol]
    if uses_sasl(settings):
        parts.append(f"{settings.sasl_mechanism} as {settings.sasl_username!r}")
    if uses_tls(settings):
        parts.append(f"CA {settings.ssl_cafile or 'system store'}")
        if settings.ssl_certfile is not None:
            parts.append(f"client certificate {settings.ssl_certfile}")
    return ", ".join(parts)
