"""Kafka security: SASL/SCRAM over mutual TLS against a real broker, with certificates made
here. The worker (aiokafka via Faust), its librdkafka output and the topic admin must all
connect through it; wrong credentials must be refused; secrets must never be printed."""

from __future__ import annotations

import datetime as dt
import ipaddress
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import Consumer, Producer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pydantic import ValidationError

from stream.local import broker
from stream.local.workerproc import WorkerProcess
from stream.runtime.security import describe, faust_app_kwargs
from stream.runtime.settings import Settings
from stream.runtime.topics import ensure_topics
from tests.events import T0, card_testing, ev

USER = "fraudstream"
PASSWORD = f"pw-{uuid.uuid4().hex}"  # unique, so that a leak into any log is unmistakable


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    # PKCS#8: the only private key form Kafka's PEM key store reads.
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _cert(
    name: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    usage: ExtendedKeyUsageOID | None = None,
) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer_name, signer = issuer if issuer is not None else (subject, key)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if usage == ExtendedKeyUsageOID.SERVER_AUTH:
        names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(signer, hashes.SHA256())


def make_certs(out: Path) -> None:
    """ca.pem; broker.pem (key + chain) for the broker; client.pem and client.key."""
    pem = serialization.Encoding.PEM
    ca_key = _key()
    ca = _cert("fraudstream test CA", ca_key, None)
    issuer = (ca.subject, ca_key)
    (out / "ca.pem").write_bytes(ca.public_bytes(pem))
    server_key = _key()
    server = _cert("localhost", server_key, issuer, ExtendedKeyUsageOID.SERVER_AUTH)
    chain = server.public_bytes(pem) + ca.public_bytes(pem)
    (out / "broker.pem").write_bytes(_pem_key(server_key) + chain)
    client_key = _key()
    client = _cert("fraudstream worker", client_key, issuer, ExtendedKeyUsageOID.CLIENT_AUTH)
    (out / "client.pem").write_bytes(client.public_bytes(pem))
    (out / "client.key").write_bytes(_pem_key(client_key))


@pytest.fixture(scope="module")
def secure_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A broker of its own: SCRAM users exist only in storage formatted with them."""
    certs = tmp_path_factory.mktemp("certs")
    make_certs(certs)
    data_dir = tmp_path_factory.mktemp("secure-kafka")
    listener = broker.SecureListener(
        port=broker.free_port(),
        keystore=certs / "broker.pem",
        truststore=certs / "ca.pem",
        users=((USER, PASSWORD),),
    )
    cfg = broker.BrokerConfig(data_dir=data_dir, port=broker.free_port(), secure=listener)
    broker.start(cfg)
    try:
        yield f"{cfg.host}:{listener.port}", certs
    finally:
        broker.stop(data_dir)


def security_env(certs: Path, password: str = PASSWORD) -> dict[str, str]:
    return {
        "FRAUDSTREAM_SECURITY_PROTOCOL": "SASL_SSL",
        "FRAUDSTREAM_SASL_MECHANISM": "SCRAM-SHA-512",
        "FRAUDSTREAM_SASL_USERNAME": USER,
        "FRAUDSTREAM_SASL_PASSWORD": password,
        "FRAUDSTREAM_SSL_CAFILE": str(certs / "ca.pem"),
        "FRAUDSTREAM_SSL_CERTFILE": str(certs / "client.pem"),
        "FRAUDSTREAM_SSL_KEYFILE": str(certs / "client.key"),
    }


def settings_from_env(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], bootstrap: str
) -> Settings:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings(broker=bootstrap)


@pytest.mark.kafka
@pytest.mark.slow
def test_worker_and_all_clients_work_over_sasl_scram_and_mutual_tls(
    secure_broker: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bootstrap, certs = secure_broker
    settings = settings_from_env(monkeypatch, security_env(certs), bootstrap)
    assert PASSWORD not in repr(faust_app_kwargs(settings))
    client = {"bootstrap.servers": bootstrap, **settings.kafka_client_config()}
    # The worker subprocess inherits the FRAUDSTREAM_* variables set above.
    worker = WorkerProcess(bootstrap, tmp_path / "worker").start()
    try:
        events = [ev("sec", "login", T0 - 60000, status="ok"), *card_testing("sec", n=5)]
        producer = Producer({**client, "partitioner": "murmur2_random"})
        for e in events:
            producer.produce(worker.topic("events"), key=b"sec", value=orjson.dumps(e))
        assert producer.flush(30) == 0
        # Alerts go out through librdkafka (stream.runtime.output), state through Faust's aiokafka.
        alerts = consume(client, worker.topic("alerts.fraud"), expect=1)
        assert [a["subject"] for a in alerts] == [{"type": "user", "id": "sec"}]
        assert worker.wait_metric("fraudstream_events_consumed_total", len(events)) >= 6
        assert worker.get("/users/sec")[1]["events_seen"] == len(events)
    finally:
        worker.stop()
    assert PASSWORD not in worker.log_path.read_text(errors="replace")


def consume(client: dict[str, str], topic: str, expect: int, timeout: float = 60) -> list[Any]:
    consumer = Consumer(
        {**client, "group.id": f"t-{uuid.uuid4().hex}", "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([topic])
    out: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while len(out) < expect and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                out.append(orjson.loads(msg.value()))
    finally:
        consumer.close()
    return out


@pytest.mark.kafka
@pytest.mark.parametrize("flaw", ["wrong password", "no client certificate", "plaintext"])
def test_the_secure_listener_refuses_bad_clients(
    secure_broker: tuple[str, Path], monkeypatch: pytest.MonkeyPatch, flaw: str
) -> None:
    bootstrap, certs = secure_broker
    env = security_env(certs, password="not-the-password")
    if flaw != "wrong password":
        env = security_env(certs)
        del env["FRAUDSTREAM_SSL_CERTFILE"], env["FRAUDSTREAM_SSL_KEYFILE"]
    if flaw == "plaintext":
        env = {}
    settings = settings_from_env(monkeypatch, env, bootstrap)
    with pytest.raises(Exception):  # noqa: B017 - librdkafka reports each flaw differently
        ensure_topics(
            bootstrap, ["never"], 1, timeout=5, client_config=settings.kafka_client_config()
        )


def test_settings_validate_without_printing_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    env = security_env(Path("/certs"))
    settings = settings_from_env(monkeypatch, env, "kafka:9093")
    for shown in (repr(settings), str(settings), describe(settings)):
        assert PASSWORD not in shown
    assert "SCRAM-SHA-512" in describe(settings)
    config = settings.kafka_client_config()
    assert config["sasl.password"] == PASSWORD
    assert config["ssl.certificate.location"] == "/certs/client.pem"
    monkeypatch.delenv("FRAUDSTREAM_SASL_USERNAME")
    with pytest.raises(ValidationError, match="sasl_username is required") as err:
        Settings()
    assert PASSWORD not in str(err.value) and "input_value" not in str(err.value)
    monkeypatch.setenv("FRAUDSTREAM_SASL_USERNAME", USER)
    with pytest.raises(ValidationError, match="needs security_protocol"):
        Settings(security_protocol="SASL_PLAINTEXT")  # the CA file in the environment needs TLS
