"""Observing one amount many times at once gives what as many observations give."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from stream.runtime.metrics import observe_many


def _samples(registry: CollectorRegistry) -> dict[tuple[str, str], float]:
    text = generate_latest(registry).decode()
    return {
        (s.name, s.labels.get("le", "")): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_many_at_once_equals_one_by_one() -> None:
    one, many = CollectorRegistry(), CollectorRegistry()
    buckets = (0.001, 0.01, 0.1, 1.0)
    h1 = Histogram("h", "h", buckets=buckets, registry=one)
    h2 = Histogram("h", "h", buckets=buckets, registry=many)
    for amount, times in ((0.005, 7), (0.5, 3), (2.0, 2), (0.001, 1), (0.3, 0)):
        for _ in range(times):
            h1.observe(amount)
        observe_many(h2, amount, times)
    assert _samples(one) == _samples(many)
    assert _samples(many)[("h_count", "")] == 13
