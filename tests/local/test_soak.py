"""The soak's arithmetic and its fixed population, without a broker."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest

from stream.local.soak import Sample, SoakConfig, SoakResult, parse_metrics, summary
from stream.local.traffic import LiveTraffic

ZERO = Sample(0.0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)


def result(user_bytes: list[int]) -> SoakResult:
    """Samples every 10 s whose users' state takes the given sizes."""
    samples = [replace(ZERO, t_s=10.0 * i, user_bytes=b) for i, b in enumerate(user_bytes)]
    return SoakResult(SoakConfig("b", 1, 1), samples, samples[-1], 0.5)


def test_bounded_state_grows_in_the_first_third_only() -> None:
    soak = result([0, 600, 960, 1000, 1001, 1000, 1002])
    growth = soak.growth("user_bytes")
    assert (growth.first_third, growth.last_third) == (960, 1)
    assert growth.ratio == pytest.approx(1 / 960)
    assert soak.filled_at_s == 20.0
    assert growth.filled == 960
    assert "user_bytes" in summary(soak)


def test_unbounded_state_grows_as_much_at_the_end() -> None:
    growth = result([0, 100, 200, 300, 400, 500, 600]).growth("user_bytes")
    assert growth.ratio == pytest.approx(1.0)


def test_metrics_are_summed_over_their_labels() -> None:
    text = (
        "# HELP fraudstream_consumer_lag lag\n"
        'fraudstream_consumer_lag{partition="0"} 3.0\n'
        'fraudstream_consumer_lag{partition="1"} 4.0\n'
        "fraudstream_events_consumed_total 12.0\n"
    )
    metrics = parse_metrics(text)
    assert metrics["fraudstream_consumer_lag"] == 7.0
    assert metrics['fraudstream_consumer_lag{partition="1"}'] == 4.0
    assert metrics["fraudstream_events_consumed_total"] == 12.0


def test_farm_accounts_keep_the_population_fixed() -> None:
    def users(traffic: LiveTraffic) -> set[str]:
        return {e["user_id"] for e in itertools.islice(traffic, 20_000)}

    assert len(users(LiveTraffic(users=50, seed=3, farm_accounts=20))) == 70
    assert len(users(LiveTraffic(users=50, seed=3))) > 70  # new fake accounts every burst
