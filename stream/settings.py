"""One frozen settings object, read at the edge (CLI, environment) and passed down."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from stream.processor import DetectorConfig
from stream.rules import RuleConfig
from stream.state import StateLimits


class Settings(BaseSettings):
    """Worker settings; every field reads ``FRAUDSTREAM_<NAME>`` from the environment."""

    model_config = SettingsConfigDict(env_prefix="FRAUDSTREAM_", frozen=True, extra="ignore")

    broker: str = "127.0.0.1:9092"
    app_id: str = "fraudstream"
    data_dir: Path = Path(".fraudstream/worker")
    web_port: int = Field(default=6066, ge=0, le=65535)
    web_host: str = "127.0.0.1"
    model: Path | None = None
    partitions: int = Field(default=8, ge=1)
    # Prepended to every topic name; empty in production, unique per test run.
    topic_prefix: str = ""
    log_level: str = "warn"
    max_events: int = Field(default=128, ge=1)
    max_age_hours: float = Field(default=30 * 24, gt=0)
    allowed_lateness_seconds: float = Field(default=600, ge=0)
    fraud_cooldown_seconds: float = Field(default=3600, ge=0)
    brushing_cooldown_seconds: float = Field(default=6 * 3600, gt=0)
    commit_interval_seconds: float = Field(default=1.0, gt=0)
    # Batches changelog and seller-topic writes; alerts wait at most this long too.
    producer_linger_ms: float = Field(default=2.0, ge=0)
    # Micro-batches: up to batch_max events, waiting at most batch_wait_ms for more.
    batch_max: int = Field(default=500, ge=1)
    batch_wait_ms: float = Field(default=2.0, ge=0)
    # Kafka security for real clusters; the secret is never printed.
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None

    def kafka_client_config(self) -> dict[str, str]:
        """librdkafka settings for security; empty for a plaintext local broker."""
        config: dict[str, str] = {}
        if self.security_protocol != "PLAINTEXT":
            config["security.protocol"] = self.security_protocol
        if self.sasl_mechanism:
            config["sasl.mechanism"] = self.sasl_mechanism
        if self.sasl_username:
            config["sasl.username"] = self.sasl_username
        if self.sasl_password is not None:
            config["sasl.password"] = self.sasl_password.get_secret_value()
        return config

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"

    def detector_config(self) -> DetectorConfig:
        limits = StateLimits(
            max_events=self.max_events,
            max_age_ms=int(self.max_age_hours * 3600 * 1000),
            allowed_lateness_ms=int(self.allowed_lateness_seconds * 1000),
        )
        return DetectorConfig(
            limits=limits,
            rules=RuleConfig(),
            fraud_cooldown_ms=int(self.fraud_cooldown_seconds * 1000),
            brushing_cooldown_ms=int(self.brushing_cooldown_seconds * 1000),
        )
