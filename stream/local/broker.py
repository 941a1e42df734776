"""A local single-node Apache Kafka broker (KRaft) from Maven Central jars.

The jars are resolved once by Maven from ``deploy/kafka/pom.xml`` into ``deploy/kafka/lib``
(or ``~/.cache/fraudstream/kafka/lib`` when the package runs outside a checkout).
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka.admin import AdminClient

from stream.core.cliutil import CommandError

REPO_ROOT = Path(__file__).resolve().parents[2]
KAFKA_DIR = REPO_ROOT / "deploy" / "kafka"
PID_FILE = "broker.pid"


class BrokerError(CommandError):
    """A one-line reason the broker cannot be started or stopped."""


@dataclass(frozen=True)
class SecureListener:
    """An extra SASL_SSL listener with SCRAM users and PEM key and trust stores.

    The PLAINTEXT listener stays for inter-broker traffic and the readiness check; clients
    that are to be tested against security connect to ``port`` only."""

    port: int
    keystore: Path  # PEM: the broker's PKCS#8 private key followed by its certificate chain
    truststore: Path  # PEM: CA certificates for client certificates
    users: tuple[tuple[str, str], ...]  # (name, password), created at format time
    mechanism: str = "SCRAM-SHA-512"
    client_auth: str = "required"  # mutual TLS: clients must present a certificate


@dataclass(frozen=True)
class BrokerConfig:
    data_dir: Path
    port: int = 9092
    host: str = "127.0.0.1"
    heap_mb: int = 512
    partitions: int = 8
    secure: SecureListener | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"


def lib_dir() -> Path:
    env = os.environ.get("FRAUDSTREAM_KAFKA_LIB")
    if env:
        return Path(env)
    if (KAFKA_DIR / "pom.xml").is_file() and os.access(KAFKA_DIR, os.W_OK):
        return KAFKA_DIR / "lib"
    return Path.home() / ".cache" / "fraudstream" / "kafka" / "lib"


def ensure_jars() -> Path:
    """Resolve the broker's jars with Maven unless they are already there."""
    lib = lib_dir()
    if lib.is_dir() and any(lib.glob("kafka_2.13-*.jar")):
        return lib
    pom = KAFKA_DIR / "pom.xml"
    if not pom.is_file():
        raise BrokerError(f"Kafka jars missing in {lib} and no pom.xml at {pom}")
    if shutil.which("mvn") is None:
        raise BrokerError("Maven (mvn) is not installed; it is needed once to fetch the Kafka jars")
    lib.mkdir(parents=True, exist_ok=True)
    cmd = [
        "mvn",
        "-q",
        "-B",
        "-f",
        str(pom),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={lib}",
        "-DincludeScope=runtime",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = (done.stdout + done.stderr).strip().splitlines()[-1:] or ["no output"]
        raise BrokerError(f"Maven could not fetch the Kafka jars: {tail[0]}")
    return lib


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _properties(cfg: BrokerConfig, controller_port: int) -> str:
    log_dir = (cfg.data_dir / "logs").resolve()
    listeners = f"PLAINTEXT://{cfg.host}:{cfg.port}"
    if cfg.secure is not None:
        listeners += f",SASL_SSL://{cfg.host}:{cfg.secure.port}"
    return "\n".join(
        [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@{cfg.host}:{controller_port}",
            f"listeners={listeners},CONTROLLER://{cfg.host}:{controller_port}",
            f"advertised.listeners={listeners}",
            "controller.listener.names=CONTROLLER",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,"
            "SASL_SSL:SASL_SSL",
            "inter.broker.listener.name=PLAINTEXT",
            f"log.dirs={log_dir}",
            f"num.partitions={cfg.partitions}",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=1",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "transaction.state.log.num.partitions=1",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.num.partitions=1",
            "group.initial.rebalance.delay.ms=0",
            "auto.create.topics.enable=true",
            "log.retention.hours=168",
            *_secure_properties(cfg.secure),
            "",
        ]
    )


def _secure_properties(secure: SecureListener | None) -> list[str]:
    if secure is None:
        return []
    mech = secure.mechanism.lower()
    return [
        f"listener.name.sasl_ssl.sasl.enabled.mechanisms={secure.mechanism}",
        f"listener.name.sasl_ssl.{mech}.sasl.jaas.config="
        "org.apache.kafka.common.security.scram.ScramLoginModule required;",
        "ssl.keystore.type=PEM",
        f"ssl.keystore.location={secure.keystore.resolve()}",
        "ssl.truststore.type=PEM",
        f"ssl.truststore.location={secure.truststore.resolve()}",
        # KIP-684: on SASL_SSL listeners only the listener-prefixed setting enables mutual TLS.
        f"listener.name.sasl_ssl.ssl.client.auth={secure.client_auth}",
    ]


_LOG4J = """rootLogger.level=WARN
rootLogger.appenderRef.file.ref=FILE
appender.file.type=File
appender.file.name=FILE
appender.file.fileName={path}
appender.file.layout.type=PatternLayout
appender.file.layout.pattern=[%d] %p %m (%c)%n
"""


def read_pid(data_dir: Path) -> int | None:
    try:
        pid = int((data_dir / PID_FILE).read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return pid


def start(cfg: BrokerConfig, timeout: float = 90.0) -> int:
    """Start the broker in the background and wait until it answers metadata requests."""
    if shutil.which("java") is None:
        raise BrokerError("Java is not installed; the Kafka broker needs a JRE 17 or newer")
    running = read_pid(cfg.data_dir)
    if running is not None:
        raise BrokerError(f"a broker from {cfg.data_dir} is already running (pid {running})")
    if not port_free(cfg.host, cfg.port):
        raise BrokerError(f"port {cfg.port} on {cfg.host} is already in use")
    classpath = str(ensure_jars() / "*")
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    props = cfg.data_dir / "server.properties"
    props.write_text(_properties(cfg, free_port(cfg.host)))
    log4j = cfg.data_dir / "log4j2.properties"
    log4j.write_text(_LOG4J.format(path=(cfg.data_dir / "broker.log").resolve()))
    if not (cfg.data_dir / "logs" / "meta.properties").exists():
        _format_storage(classpath, props, cfg.secure)
    cmd = [
        "java",
        f"-Xmx{cfg.heap_mb}m",
        f"-Xms{cfg.heap_mb}m",
        "-XX:+UseG1GC",
        f"-Dlog4j2.configurationFile={log4j.resolve()}",
        "-cp",
        classpath,
        "kafka.Kafka",
        str(props),
    ]
    with open(cfg.data_dir / "broker.out", "ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    (cfg.data_dir / PID_FILE).write_text(str(proc.pid))
    _wait_ready(cfg, proc, timeout)
    return proc.pid


def _format_storage(classpath: str, props: Path, secure: SecureListener | None) -> None:
    cluster_id = "-"
    while cluster_id.startswith("-"):  # as Kafka's Uuid does: "-..." would parse as an option
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    cmd = [
        "java",
        "-cp",
        classpath,
        "kafka.tools.StorageTool",
        "format",
        "-t",
        cluster_id,
        "-c",
        str(props),
    ]
    # KRaft keeps SCRAM credentials in the metadata log: they are seeded at format time.
    if secure is not None:
        for name, password in secure.users:
            cmd += ["--add-scram", f"{secure.mechanism}=[name={name},password={password}]"]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BrokerError(f"formatting Kafka storage failed: {done.stderr.strip()[-300:]}")


def _wait_ready(cfg: BrokerConfig, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    admin = AdminClient({"bootstrap.servers": cfg.bootstrap, "log_level": 0})
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BrokerError(
                f"the broker exited with code {proc.returncode}; see {cfg.data_dir}/broker.out"
            )
        try:
            metadata = admin.list_topics(timeout=2.0)
            if metadata.brokers:
                return
        except Exception:  # not up yet: keep asking until the deadline
            time.sleep(0.5)
    stop(cfg.data_dir)
    raise BrokerError(f"the broker did not answer metadata requests within {timeout:.0f}s")


def stop(data_dir: Path, timeout: float = 30.0) -> bool:
    """Stop the broker started from ``data_dir``; False if none was running."""
    pid = read_pid(data_dir)
    if pid is None:
        (data_dir / PID_FILE).unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        _reap(pid)
        time.sleep(0.2)
    else:
        os.kill(pid, signal.SIGKILL)
    _reap(pid)
    (data_dir / PID_FILE).unlink(missing_ok=True)
    return True


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
