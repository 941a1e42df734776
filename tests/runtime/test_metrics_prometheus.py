"""Worker metrics: names and buckets, and a real Prometheus server scraping a running worker
with the shipped scrape config and alert rules."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from rocksdict import Rdict

from stream.local.broker import free_port
from stream.local.workerproc import WorkerProcess
from stream.runtime.metrics import LATENCY_BUCKETS, Metrics, estimate_keys
from tests.deploy_support import (
    DEPLOY,
    dashboard_exprs,
    exported_names,
    metric_names_in,
    rule_exprs,
)
from tests.events import T0, card_testing, ev
from tests.support import produce, produce_events

# The metric names and types of docs/contract.md, section 6.
CONTRACT = {
    "fraudstream_events_consumed_total": "counter",
    "fraudstream_events_rejected_total": "counter",
    "fraudstream_alerts_emitted_total": "counter",
    "fraudstream_event_to_alert_latency_seconds": "histogram",
    "fraudstream_processing_latency_seconds": "histogram",
    "fraudstream_model_batch_size": "histogram",
    "fraudstream_model_batch_latency_seconds": "histogram",
    "fraudstream_consumer_lag": "gauge",
    "fraudstream_model_info": "gauge",
}


def test_exposition_has_the_contract_names_and_types() -> None:
    metrics = Metrics(CollectorRegistry())
    metrics.set_model("v1", "onnx", configured=True)
    text = generate_latest(metrics.registry).decode()
    types = dict(line.split()[2:4] for line in text.splitlines() if line.startswith("# TYPE"))
    for name, kind in CONTRACT.items():
        assert types.get(name) == kind, (name, types.get(name))
    assert 'fraudstream_model_info{backend="onnx",version="v1"} 1.0' in text
    assert "fraudstream_model_fallback 0.0" in text
    for kind in ("fraud", "brushing", "churn"):  # present at zero before the first alert
        assert f'fraudstream_alerts_emitted_total{{kind="{kind}"}} 0.0' in text
    counters = [n for n, k in types.items() if k == "counter"]
    assert counters and all(n.endswith("_total") for n in counters)


def test_latency_buckets_resolve_one_millisecond_to_ten_seconds() -> None:
    assert min(LATENCY_BUCKETS) <= 0.001 and max(LATENCY_BUCKETS) >= 10
    assert list(LATENCY_BUCKETS) == sorted(LATENCY_BUCKETS)
    # No decade between 1 ms and 10 s without at least two bucket bounds.
    for low in (0.001, 0.01, 0.1, 1.0):
        assert sum(low <= b <= low * 10 for b in LATENCY_BUCKETS) >= 2, low


def test_fallback_is_flagged_only_when_a_model_was_configured() -> None:
    metrics = Metrics(CollectorRegistry())
    metrics.set_model("rules-v1", "rules", configured=False)
    assert metrics.registry.get_sample_value("fraudstream_model_fallback") == 0
    metrics.set_model("rules-v1", "rules", configured=True)
    assert metrics.registry.get_sample_value("fraudstream_model_fallback") == 1


def test_table_size_is_the_rocksdb_estimate_over_partition_databases(tmp_path: Path) -> None:
    dbs = {p: Rdict(str(tmp_path / f"p{p}")) for p in (0, 3)}
    try:
        for p, db in dbs.items():
            for i in range(100 * (p + 1)):
                db[f"user-{i}".encode()] = b"state"
        table = SimpleNamespace(data=SimpleNamespace(_dbs=dbs))
        assert estimate_keys(table) == 100 + 400
        assert estimate_keys(SimpleNamespace(data=SimpleNamespace())) == 0
    finally:
        for db in dbs.values():
            db.close()


# --- a real Prometheus server -------------------------------------------------------------

PROMETHEUS = shutil.which("prometheus")
needs_prometheus = pytest.mark.skipif(
    PROMETHEUS is None,
    reason="the prometheus binary is not installed (Debian: apt-get install prometheus)",
)


class Prometheus:
    def __init__(self, port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.port, self.proc, self.log = port, proc, log

    def api(self, path: str, **params: str) -> Any:
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=5) as resp:
            body = json.loads(resp.read())
        assert body["status"] == "success", body
        return body["data"]

    def value(self, query: str) -> float | None:
        result = self.api("query", query=query)["result"]
        return float(result[0]["value"][1]) if result else None

    def wait(self, query: str, at_least: float, timeout: float = 45) -> float:
        deadline = time.monotonic() + timeout
        value: float | None = None
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()[-2000:]
            with contextlib.suppress(OSError):  # not listening yet
                value = self.value(query)
            if value is not None and value >= at_least:
                return value
            time.sleep(0.5)
        raise AssertionError(f"{query} = {value}, expected >= {at_least}")


def scrape_config(target: str, out: Path) -> Path:
    """The shipped config, pointed at the test's worker and made fast."""
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = [str(DEPLOY / "prometheus" / "rules" / "*.yml")]
    (job,) = config["scrape_configs"]
    job["static_configs"] = [{"targets": [target]}]
    path = out / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def worker(kafka_broker: str, tmp_path: Path) -> Iterator[WorkerProcess]:
    proc = WorkerProcess(kafka_broker, tmp_path / "worker").start()
    yield proc
    proc.stop()


@pytest.fixture
def prometheus(worker: WorkerProcess, tmp_path: Path) -> Iterator[Prometheus]:
    assert PROMETHEUS is not None
    port = free_port()
    log = tmp_path / "prometheus.log"
    cmd = [
        PROMETHEUS,
        f"--config.file={scrape_config(f'127.0.0.1:{worker.web_port}', tmp_path)}",
        f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    server = Prometheus(port, proc, log)
    try:
        server.wait('up{job="fraudstream"}', 1)
        yield server
    finally:
        proc.terminate()
        proc.wait(20)


@needs_prometheus
@pytest.mark.kafka
@pytest.mark.slow
def test_prometheus_scrapes_a_worker_and_sees_the_metrics_move(
    kafka_broker: str, worker: WorkerProcess, prometheus: Prometheus
) -> None:
    consumed = "sum(fraudstream_events_consumed_total)"
    assert prometheus.wait(consumed, 0) == 0  # scraped, nothing consumed yet
    events = [ev("pm", "login", T0 - 60000, status="ok"), *card_testing("pm", n=5)]
    events += [ev(f"v{i}", "item_view", T0 + i, item_id="i1") for i in range(20)]
    produce_events(kafka_broker, worker.topic("events"), events)
    produce(kafka_broker, worker.topic("events"), [(b"pm", b"{not json")])

    assert prometheus.wait(consumed, len(events) + 1) == len(events) + 1
    assert prometheus.wait('sum(fraudstream_alerts_emitted_total{kind="fraud"})', 1) >= 1
    assert prometheus.wait("sum(fraudstream_events_rejected_total)", 1) == 1
    assert prometheus.wait("sum(fraudstream_event_to_alert_latency_seconds_count)", 1) >= 1
    p99 = "histogram_quantile(0.99, sum by (le) (fraudstream_processing_latency_seconds_bucket))"
    assert 0 < prometheus.wait(p99, 0) < 10
    assert prometheus.wait('fraudstream_table_keys{table="users"}', 21) >= 21
    assert prometheus.wait("count(fraudstream_consumer_lag)", 1) == worker.partitions
    assert prometheus.wait('fraudstream_model_info{backend="rules"}', 1) == 1
    assert prometheus.wait("fraudstream_rebalances_total", 1) >= 1

    # The shipped rules load and evaluate against live data without errors.
    rules = [r for g in prometheus.api("rules")["groups"] for r in g["rules"]]
    assert len(rules) == len(rule_exprs()) and all(r["health"] == "ok" for r in rules), rules


@pytest.mark.kafka
@pytest.mark.slow
def test_the_live_worker_exports_every_metric_the_dashboard_and_rules_use(
    worker: WorkerProcess,
) -> None:
    text = str(worker.get("/metrics")[1])
    live = exported_names(text)
    used = metric_names_in(rule_exprs()) | metric_names_in(dashboard_exprs())
    assert used and used <= live, sorted(used - live)
