"""Topic names of the contract and their creation before the worker starts.

Faust would auto-create missing topics with the broker's default partition count, and a
table whose changelog disagrees with its source topic then refuses to run; so the worker
creates every topic itself, up front, with one partition count.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

EVENTS = "events"
DEAD_LETTERS = "events.dlq"
BY_SELLER = "events.by_seller"  # internal: purchases and reviews re-keyed by seller
FEEDBACK = "feedback"  # analysts' verdicts on alerts (stream.core.feedback)
TABLES = ("users", "sellers")  # the worker's RocksDB tables
ALERT_TOPICS = {"fraud": "alerts.fraud", "brushing": "alerts.brushing", "churn": "alerts.churn"}


def changelog_topic(app_id: str, table: str) -> str:
    """Faust's name for a table's changelog topic."""
    return f"{app_id}-{table}-changelog"


def ensure_topics(
    bootstrap: str,
    names: list[str],
    partitions: int,
    timeout: float = 30.0,
    compacted: frozenset[str] = frozenset(),
    client_config: Mapping[str, str] | None = None,
) -> dict[str, int]:
    """Create missing topics; return each topic's actual partition count.

    ``client_config`` carries security settings (``Settings.kafka_client_config()``)."""
    admin = AdminClient({"bootstrap.servers": bootstrap, **(client_config or {})})
    existing = admin.list_topics(timeout=timeout).topics
    missing = [n for n in names if n not in existing]
    if missing:
        futures = admin.create_topics(
            [
                NewTopic(
                    n,
                    num_partitions=partitions,
                    replication_factor=1,
                    config={"cleanup.policy": "compact"} if n in compacted else {},
                )
                for n in missing
            ],
            operation_timeout=timeout,
        )
        for name, fut in futures.items():
            try:
                fut.result()
            except Exception as exc:  # a concurrent worker may have created it first
                if "TOPIC_ALREADY_EXISTS" not in str(exc):
                    raise RuntimeError(f"cannot create topic {name}: {exc}") from exc
    # New topics reach the metadata cache a moment after creation: wait until all are seen.
    deadline = time.monotonic() + timeout
    while True:
        metadata = admin.list_topics(timeout=timeout).topics
        counts = {n: len(metadata[n].partitions) for n in names if n in metadata}
        if all(counts.get(n) for n in names):
            return counts
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"topics not visible after creation: {sorted(set(names) - set(counts))}"
            )
        time.sleep(0.2)
