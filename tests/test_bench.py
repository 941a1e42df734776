"""The stream benchmark's bookkeeping, without a broker: pinning, medians and ranges, ratios
taken within a run, lag growth and percentiles."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stream.bench.__main__ import main as bench_main
from stream.bench.measure import _percentiles, lag_grew
from stream.bench.spread import spread
from stream.bench.suite import (
    Pinning,
    Plan,
    cpu_set,
    default_pinning,
    legacy_keys,
    split_driver,
    summarise,
)


def test_pinning_puts_the_measured_process_on_the_last_core() -> None:
    assert default_pinning(2) == Pinning("1", "0")
    assert default_pinning(4) == Pinning("3", "0-2")
    assert default_pinning(1) == Pinning(None, None)
    assert cpu_set("0-2,5") == {0, 1, 2, 5}
    assert "not pinned (given by --broker" in Pinning("1", "0").describe()
    assert "load generator and broker on cpu 0" in Pinning("1", "0", True).describe()


def test_spread_is_median_and_range() -> None:
    assert spread([3.0, 1.0, 2.0, 10.0]) == {"median": 2.5, "min": 1.0, "max": 10.0}
    with pytest.raises(ValueError):
        spread([])


def test_lag_grows_only_beyond_half_a_second_of_traffic() -> None:
    assert not lag_grew(100, 1500, 3000)
    assert lag_grew(100, 1700, 3000)


def test_percentiles_include_p999() -> None:
    values = [i / 1000 for i in range(1, 2001)]  # 1..2000 ms
    p = _percentiles(values)
    assert (p["p50_ms"], p["p99_ms"], p["p999_ms"], p["max_ms"]) == (1001.0, 1981.0, 1999.0, 2000.0)
    assert _percentiles([])["p999_ms"] is None


def _run(n: int, loop: float, passthrough: float, rules: float) -> dict[str, Any]:
    gc = {"collections": 3, "full_collections": 0, "over_10ms": 0, "longest_under_ms": 5.0}
    lat = {"p50_ms": 10.0 * n, "p99_ms": 50.0 * n, "p999_ms": 60.0 * n, "max_ms": 60.0 * n,
           "alerts": 20, "offered_events_per_s": 2990.0, "lag_mid": 0, "lag_end": 10 * n,
           "lag_grew": n == 2}  # fmt: skip
    return {
        "run": n,
        "consumer_loop": {"events_per_s": loop},
        "faust_passthrough": {"events_per_s": passthrough},
        "worker_rules": {
            "events_per_s": rules,
            "latency": {"3000": lat},
            "gc": gc,
            "gc_latency_runs": gc,
        },
    }


def test_ratios_are_taken_within_each_run() -> None:
    plan = Plan(1000, 3, (3000.0,), 5.0, None, None, Pinning(None, None))
    # The worker is half the pass-through agent in every run, whatever the machine did.
    rows = [_run(1, 1e5, 10_000, 5_000), _run(2, 2e5, 4_000, 2_000), _run(3, 3e5, 8_000, 4_000)]
    summary = summarise(plan, rows)
    ratio = summary["ratios"]["worker_rules_vs_faust_passthrough"]
    assert ratio == {"median": 0.5, "min": 0.5, "max": 0.5}
    assert summary["drain_events_per_s"]["worker_rules"] == {
        "median": 4000.0,
        "min": 2000.0,
        "max": 5000.0,
    }
    at_3000 = summary["latency"]["worker_rules"]["3000"]
    assert at_3000["p99_ms"] == {"median": 100.0, "min": 50.0, "max": 150.0}
    assert at_3000["lag_grew_runs"] == 1
    legacy = legacy_keys(plan, summary)
    assert legacy["worker_rules_vs_passthrough"] == 0.5
    assert legacy["worker_rules_latency"]["p50_ms"] == 20.0


def test_the_model_worker_joins_when_a_bundle_is_given() -> None:
    plan = Plan(1000, 1, (1000.0,), 5.0, Path("bundle"), None, Pinning(None, None))
    assert plan.configurations() == [
        "consumer_loop",
        "faust_passthrough",
        "worker_rules",
        "worker_model",
    ]


def test_a_second_driver_adds_its_pass_through_agent_and_workers() -> None:
    plan = Plan(
        1000, 1, (1000.0,), 5.0, Path("bundle"), None, Pinning(None, None),
        ("aiokafka", "confluent"),
    )  # fmt: skip
    assert plan.configurations() == [
        "consumer_loop",
        "faust_passthrough",
        "faust_passthrough_confluent",
        "worker_rules",
        "worker_model",
        "worker_rules_confluent",
        "worker_model_confluent",
    ]
    assert split_driver("worker_model_confluent") == ("worker_model", "confluent")
    assert split_driver("faust_passthrough") == ("faust_passthrough", "aiokafka")


def test_an_unknown_driver_is_refused_by_name() -> None:
    with pytest.raises(SystemExit, match="--drivers"):
        bench_main(["--drivers", "aiokafka,kafka-python", "--rules-only", "--no-pin"])


def test_the_pipeline_benchmark_times_the_detectors_in_process(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The rules and the shipped model over the drain's traffic: every timed event is
    counted, the model's windows and time are measured, and nothing is dead-lettered."""
    import orjson

    from stream.bench.pipeline import main as pipeline_main

    out = tmp_path / "pipeline.json"
    args = ["--events", "600", "--batch", "100", "--runs", "2", "--out", str(out)]
    assert pipeline_main([*args, "--rules-only"]) == 0
    rules = orjson.loads(out.read_bytes())
    assert [r["events"] for r in rules["raw"]] == [480, 480]
    assert rules["model"] is None and rules["model_windows_per_event"]["max"] == 0
    assert rules["events_per_s"]["min"] > 0
    assert pipeline_main(args) == 0
    model = orjson.loads(out.read_bytes())
    assert model["backend"] == "onnx"
    assert 0.1 < model["model_windows_per_event"]["median"] < 1
    assert model["model_us_per_event"]["min"] > 0
    assert all(r["dead_letters"] == 0 for r in rules["raw"] + model["raw"])
    assert '"batch": 100' in capsys.readouterr().out  # printed as well as written
