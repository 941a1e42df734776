"""One frozen settings object, read at the edge (CLI, environment) and passed down."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from stream.core.event_time import DEFAULT_MAX_SKEW_MS, EventTimeGuard
from stream.core.privacy import Pseudonymiser, load_key
from stream.core.state import StateLimits
from stream.core.timeutil import HOUR_MS, HOUR_S, now_ms
from stream.detect.churn import ChurnConfig
from stream.detect.processor import DetectorConfig
from stream.detect.rules import RuleConfig
from stream.runtime.security import SaslMechanism, SecurityProtocol, check, librdkafka_config

# Who fetches the records: librdkafka in batches on a thread of its own, each poll delivered
# to the streams at once, with aiokafka keeping the group (the default:
# stream.runtime.driver.confluent_consumer), or aiokafka with Faust's own fetch loop.
ConsumerDriver = Literal["aiokafka", "confluent"]


class Settings(BaseSettings):
    """Worker settings; every field reads ``FRAUDSTREAM_<NAME>`` from the environment."""

    # Validation errors would echo the raw input, passwords included: hide it.
    model_config = SettingsConfigDict(
        env_prefix="FRAUDSTREAM_", frozen=True, extra="ignore", hide_input_in_errors=True
    )

    broker: str = "127.0.0.1:9092"
    app_id: str = "fraudstream"
    data_dir: Path = Path(".fraudstream/worker")
    web_port: int = Field(default=6066, ge=0, le=65535)
    web_host: str = "127.0.0.1"
    model: Path | None = None
    # auto: TensorRT where there is a GPU and an engine, else ONNX Runtime.
    model_backend: str = "auto"
    # Decision events scored per model call; a micro-batch holding more is split.
    model_batch_max: int = Field(default=256, ge=1)
    # Inference threads. One by default: a micro-batch is small, and a second thread would
    # spin on the core the event loop needs.
    model_threads: int = Field(default=1, ge=1)
    # How often the bundle directory is checked for a new version (0: never reload).
    model_reload_seconds: float = Field(default=10.0, ge=0)
    # Freeze start-up objects out of the garbage collector's way and collect young objects
    # less often (stream.runtime.gc_pauses); off only to measure the difference.
    gc_settle: bool = True
    # With gc_settle: freeze the survivors of every older-generation collection too, so
    # that no collection walks the run-time population (stream.runtime.gc_pauses); frozen
    # cycles are collected by a compaction at every rebalance and when the frozen count
    # has grown past a bound.
    gc_freeze_survivors: bool = True
    # Drift gauges: the latest this many decisions against the bundle's reference
    # distributions, recomputed every drift_seconds.
    drift_window: int = Field(default=5000, ge=1)
    drift_seconds: float = Field(default=15.0, gt=0)
    partitions: int = Field(default=8, ge=1)
    # Prepended to every topic name; empty in production, unique per test run.
    topic_prefix: str = ""
    log_level: str = "warn"
    max_events: int = Field(default=128, ge=1)
    max_age_hours: float = Field(default=30 * 24, gt=0)
    allowed_lateness_seconds: float = Field(default=600, ge=0)
    # Events dated more than this ahead of their partition's latest accepted event time (and
    # of the wall clock, when wall_clock_skew is on) are rejected as "future".
    max_skew_ms: int = Field(default=DEFAULT_MAX_SKEW_MS, ge=0)
    # Off where event time runs ahead of the wall clock on purpose (simulated traffic).
    wall_clock_skew: bool = True
    fraud_cooldown_seconds: float = Field(default=HOUR_S, ge=0)
    brushing_cooldown_seconds: float = Field(default=6 * HOUR_S, gt=0)
    commit_interval_seconds: float = Field(default=1.0, gt=0)
    # How long the group waits for a silent worker (killed, or stuck) before its partitions
    # move; heartbeats go every 3 s, and brokers refuse less than 6 s by default.
    session_timeout_seconds: float = Field(default=60.0, ge=6)
    # Batches changelog and seller-topic writes; alerts wait at most this long too.
    producer_linger_ms: float = Field(default=2.0, ge=0)
    # Churn: users are scored each time their partition's event-time clock passes a tick.
    churn_interval_hours: float = Field(default=24, gt=0)
    churn_threshold: float = Field(default=0.5, ge=0, le=1)
    churn_horizon_days: float = Field(default=30.0, gt=0)  # a bundle's own replaces it
    # Churn alerts per 1,000 users per day at most (0: no limit), best first.
    churn_budget_per_1000: float = Field(default=10.0, ge=0)
    # Micro-batches: up to batch_max of the events already queued; one that is not full
    # waits batch_wait_ms once for more.
    batch_max: int = Field(default=500, ge=1)
    batch_wait_ms: float = Field(default=2.0, ge=0)
    # The seller side decides purchases in event-time order once every input partition's
    # watermark has passed them; none waits longer than this for a quiet partition.
    reorder_wait_ms: int = Field(default=2000, ge=0)
    # Records per consumer poll: small polls keep events flowing to the agents evenly,
    # instead of bursts of many thousands that stall them while they are decoded.
    max_poll_records: int = Field(default=500, ge=1)
    consumer_driver: ConsumerDriver = "confluent"
    # Decoded user and seller states kept in memory between micro-batches, per table.
    state_cache_size: int = Field(default=4096, ge=0)
    # Kafka security for real clusters (see stream.runtime.security); secrets are never printed.
    security_protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None  # PEM; the system trust store when unset
    ssl_certfile: Path | None = None  # PEM client certificate (chain), for mutual TLS
    ssl_keyfile: Path | None = None
    ssl_key_password: SecretStr | None = None
    ssl_check_hostname: bool = True
    # Device ids, IPs and instrument tokens are kept as HMAC-SHA256 pseudonyms under this
    # secret (or the one in pseudonym_key_file); with neither, a key generated in data_dir.
    pseudonym_key: SecretStr | None = None
    pseudonym_key_file: Path | None = None

    @model_validator(mode="after")
    def _security_complete(self) -> Settings:
        check(self)
        return self

    def kafka_client_config(self) -> dict[str, str]:
        """librdkafka settings for security; empty for a plaintext local broker."""
        return librdkafka_config(self)

    def churn_config(self) -> ChurnConfig:
        return ChurnConfig(
            horizon_days=self.churn_horizon_days,
            interval_ms=int(self.churn_interval_hours * HOUR_MS),
            threshold=self.churn_threshold,
            budget_per_1000=self.churn_budget_per_1000 or None,
        )

    def event_time_guard(self) -> EventTimeGuard:
        return EventTimeGuard(self.max_skew_ms, now_ms if self.wall_clock_skew else None)

    def pseudonymiser(self) -> Pseudonymiser:
        secret = self.pseudonym_key.get_secret_value() if self.pseudonym_key else None
        return Pseudonymiser(load_key(secret, self.pseudonym_key_file, self.data_dir))

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"

    def detector_config(self) -> DetectorConfig:
        limits = StateLimits(
            max_events=self.max_events,
            max_age_ms=int(self.max_age_hours * HOUR_MS),
            allowed_lateness_ms=int(self.allowed_lateness_seconds * 1000),
        )
        return DetectorConfig(
            limits=limits,
            rules=RuleConfig(),
            fraud_cooldown_ms=int(self.fraud_cooldown_seconds * 1000),
            brushing_cooldown_ms=int(self.brushing_cooldown_seconds * 1000),
        )
