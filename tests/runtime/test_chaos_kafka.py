"""Chaos against the real broker: a broker restart mid-stream, a SIGKILLed worker whose
partition moves with its state, workers joining and leaving under load.

Each test prints its figures (``pytest -s``); the module prints them as one table at the
end, the table in docs/benchmarks.md ("Chaos tests"). A failing rebalance run names the
missing events' partitions and offsets; ``FRAUDSTREAM_TEST_LOG_LEVEL=info`` keeps the
workers' rebalance and recovery logs (``<tmp>/<worker>/worker.log``) to go with them.
"""

from __future__ import annotations

import os
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from stream.local import broker
from stream.local.workerproc import WorkerProcess
from tests.events import T0, card_testing, ev
from tests.support import consume, produce_events

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

CONSUMED = "fraudstream_events_consumed_total"
BROWSING = ("page_view", "item_view", "search")
BURST_EVERY = 150  # a card-testing burst starts every this many events
QUIET_S = 10.0  # seconds without consumption after which the workers are taken as idle
FIGURES: list[dict[str, Any]] = []
COLUMNS = ("test", "events_sent", "events_in_state", "lost", "counted_twice", "alerts",
           "duplicate_alert_ids", "recovery_s")  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def figures_table() -> Iterator[None]:
    """The figures of the tests that ran, as docs/benchmarks.md shows them."""
    yield
    if FIGURES:
        print("\n| " + " | ".join(c.replace("_", " ") for c in COLUMNS) + " |")
        print("|" + "---|" * len(COLUMNS))
        for row in FIGURES:
            print("| " + " | ".join(str(row.get(c, "")) for c in COLUMNS) + " |")


@pytest.fixture(autouse=True)
def fast_failover(monkeypatch: pytest.MonkeyPatch) -> None:
    # A killed worker's partitions move after 10 s, not 60; the broker restart passes too.
    monkeypatch.setenv("FRAUDSTREAM_SESSION_TIMEOUT_SECONDS", "10")


def report(test: str, **figures: Any) -> None:
    row = {"test": test, **figures}
    FIGURES.append(row)
    print(f"\nchaos {test}: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in figures.items()))


def traffic(users: int, tag: str) -> Iterator[dict[str, Any]]:
    """Browsing events of ``users`` users one second of event time apart, and every
    BURST_EVERY events a card-testing burst (4 failed payments a minute apart) by a user of
    its own: each burst is worth one fraud alert."""
    rng = random.Random(tag)
    burst_slots: dict[int, dict[str, Any]] = {}
    i = 0
    while True:
        if i % BURST_EVERY == 0:
            for k, e in enumerate(card_testing(f"card-{tag}-{i}", T0 + i * 1000, n=4)):
                assert i + 60 * k not in burst_slots  # bursts never land on the same slot
                burst_slots[i + 60 * k] = e
        event = burst_slots.pop(i, None)
        if event is None:
            user = f"u{rng.randrange(users)}"
            event = ev(user, rng.choice(BROWSING), T0 + i * 1000, event_id=f"{tag}-{i}")
        yield event
        i += 1


class Feeder:
    """Sends events at a steady rate from a thread until stopped; counts deliveries per user."""

    def __init__(self, bootstrap: str, topic: str, events: Iterator[dict[str, Any]], rate: float):
        self.topic, self.events, self.period = topic, events, 1.0 / rate
        self.producer = Producer({"bootstrap.servers": bootstrap, "partitioner": "murmur2_random",
                                  "enable.idempotence": True, "linger.ms": 5})  # fmt: skip
        self.delivered: Counter[str] = Counter()
        self.payments: Counter[str] = Counter()  # delivered card-testing payments per user
        # Where each delivered event landed, to name what a failing run is missing.
        self.placed: dict[str, tuple[str, int, int]] = {}  # event id -> user, partition, offset
        self.errors: list[str] = []
        self._count = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Feeder:
        self._thread.start()
        return self

    def _on_delivery(self, err: Any, msg: Any) -> None:
        if err is not None:
            self.errors.append(str(err))
            return
        user = msg.key().decode()
        self.delivered[user] += 1
        self._count += 1
        event = orjson.loads(msg.value())
        self.placed[event["event_id"]] = (user, msg.partition(), msg.offset())
        if event["type"] == "payment":
            self.payments[user] += 1

    def _run(self) -> None:
        due = time.monotonic()
        while not self._stop.is_set():
            e = next(self.events)
            self.producer.produce(self.topic, key=e["user_id"].encode(), value=orjson.dumps(e),
                                  on_delivery=self._on_delivery)  # fmt: skip
            self.producer.poll(0)
            due += self.period
            self._stop.wait(max(0.0, due - time.monotonic()))

    def sent(self) -> int:
        return self._count  # not a sum over ``delivered``: the thread may add a user meanwhile

    def halt(self) -> None:
        self._stop.set()

    def stop(self) -> Counter[str]:
        """Stop sending, wait for every delivery; return events delivered per user."""
        self.halt()
        self._thread.join()
        assert self.producer.flush(120) == 0 and not self.errors, self.errors[:3]
        return self.delivered

    def alerting_users(self) -> set[str]:
        """Users whose burst reached 3 failed payments: the card-testing rule fires."""
        return {u for u, n in self.payments.items() if n >= 3}


def consumed(worker: WorkerProcess) -> float:
    """Events the worker consumed; fails with its exit code and log once it has exited."""
    code = worker.proc.poll() if worker.proc else None
    assert code is None, f"the worker exited with {code}:\n{worker.log_tail()}"
    return worker.metric(CONSUMED)


def user_totals(workers: list[WorkerProcess], user: str) -> list[int]:
    """The user's ``events_seen`` on every worker that serves the user's state."""
    found = []
    for worker in workers:
        status, state = worker.get(f"/users/{user}")
        if status == 200:
            found.append(int(state["events_seen"]))
    return found


def wait_in_state(
    workers: list[WorkerProcess], sent: Counter[str], timeout: float = 120
) -> dict[str, list[int]]:
    """Every user's totals, once each user's state holds what was sent (or the timeout):
    users already complete are not asked again until one last pass over everyone."""
    deadline = time.monotonic() + timeout
    # First until the workers have consumed as many events as were sent, or consume no
    # more for a while: events a worker handled before it left are not consumed again.
    total, last, moved = sum(sent.values()), -1.0, time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - moved < QUIET_S:
        now = sum(w.metric(CONSUMED) for w in workers)
        if now >= total:
            break
        if now != last:
            last, moved = now, time.monotonic()
        time.sleep(1)
    todo = list(sent)
    while todo and time.monotonic() < deadline:
        todo = [u for u in todo if user_totals(workers, u) != [sent[u]]]
        time.sleep(1 if todo else 0)
    return {u: user_totals(workers, u) for u in sent}


def missing_events(
    workers: list[WorkerProcess], feeder: Feeder, found: dict[str, list[int]]
) -> list[tuple[str, int, int]]:
    """The events (id, partition, offset) sent for users whose state holds fewer than were
    sent, and not in the window of the worker serving them: what a failing run lost."""
    short = {u for u, totals in found.items() if sum(totals) < feeder.delivered[u]}
    kept: set[str] = set()
    for user in short:
        for worker in workers:
            status, state = worker.get(f"/users/{user}")
            if status == 200:
                kept.update(e["event_id"] for e in state["events"])
    return sorted(
        ((eid, partition, offset) for eid, (user, partition, offset) in feeder.placed.items()
         if user in short and eid not in kept),
        key=lambda m: (m[1], m[2]),
    )  # fmt: skip


def state_figures(sent: Counter[str], found: dict[str, list[int]]) -> dict[str, int]:
    return {
        "events_sent": sum(sent.values()),
        "events_in_state": sum(sum(t) for t in found.values()),
        "lost": sum(max(0, n - sum(found[u])) for u, n in sent.items()),
        "counted_twice": sum(max(0, sum(found[u]) - n) for u, n in sent.items()),
        "users_not_on_one_worker": sum(len(t) != 1 for t in found.values()),
    }


def alert_figures(bootstrap: str, topic: str, expected: set[str]) -> dict[str, int]:
    """Alerts on ``topic``: distinct ids, repeated ids, and alerted users not expected."""
    messages = consume(bootstrap, topic, len(expected), timeout=60,
                       unique=lambda m: orjson.loads(m.value())["alert_id"])  # fmt: skip
    alerts = [orjson.loads(m.value()) for m in messages]
    ids = [a["alert_id"] for a in alerts]
    users = {a["subject"]["id"] for a in alerts}
    return {
        "alerts": len(set(ids)),
        "duplicate_alert_ids": len(ids) - len(set(ids)),
        "alerts_missing": len(expected - users),
        "alerts_unexpected": len(users - expected),
    }


def assert_clean(figures: dict[str, Any], expected_alerts: int) -> None:
    assert figures["lost"] == 0 and figures["counted_twice"] == 0, figures
    assert figures["users_not_on_one_worker"] == 0, figures
    assert figures["events_in_state"] == figures["events_sent"], figures
    assert figures["alerts"] == expected_alerts and figures["duplicate_alert_ids"] == 0, figures
    assert figures["alerts_missing"] == 0 and figures["alerts_unexpected"] == 0, figures


def wait_until(
    check: Any, timeout: float, what: str | Callable[[], str], poll: float = 0.2
) -> float:
    """Poll ``check`` until it is true; return the seconds it took. ``what`` names the
    wait when it runs out (a callable: worked out then)."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started >= timeout:
            named = what() if callable(what) else what
            raise AssertionError(f"not within {timeout:.0f}s: {named}")
        time.sleep(poll)
    return time.monotonic() - started


# Longer than the 30 s the worker's outputs once waited for a flush before it gave up
# (exit 70) although librdkafka would still have delivered everything.
OUTAGE_S = 35.0


def test_broker_restart_mid_stream(tmp_path: Path) -> None:
    """The broker stops cleanly and comes back on the same data and port: the same worker
    process carries on, every event in state once, every alert once."""
    cfg = broker.BrokerConfig(data_dir=tmp_path / "kafka", port=broker.free_port())
    broker.start(cfg)
    worker = WorkerProcess(cfg.bootstrap, tmp_path / "w", log_level="warn")
    feeder: Feeder | None = None
    try:
        worker.start()
        pid = worker.proc.pid if worker.proc else None
        feeder = Feeder(cfg.bootstrap, worker.topic("events"), traffic(200, "restart"), 50).start()
        worker.wait_metric(CONSUMED, 400)
        stopped = time.monotonic()
        broker.stop(cfg.data_dir)
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - stopped)))
        broker.start(cfg)
        back = time.monotonic()
        before = consumed(worker)
        recovery = wait_until(lambda: consumed(worker) > before, 120, "consuming again")
        wait_until(lambda: consumed(worker) > before + 250, 60, "traffic after the restart")
        sent = feeder.stop()
        assert worker.running() and worker.proc and worker.proc.pid == pid, worker.log_tail()
        found = wait_in_state([worker], sent)
        expected = feeder.alerting_users()
        figures = {
            **state_figures(sent, found),
            **alert_figures(cfg.bootstrap, worker.topic("alerts.fraud"), expected),
            "broker_away_s": round(back - stopped, 1),
            "recovery_s": round(recovery, 1),
            "worker_restarts": 0 if worker.running() and worker.proc.pid == pid else 1,
        }
        report("broker restart", **figures)
        assert figures["worker_restarts"] == 0
        assert_clean(figures, len(expected))
    finally:
        if feeder is not None:
            feeder.halt()
        worker.stop()
        broker.stop(cfg.data_dir)


def committed_total(bootstrap: str, group: str, topic: str, partitions: int) -> int:
    """The group's committed offsets on ``topic``, summed (without joining the group)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        tps = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], 10)
        return sum(max(0, tp.offset) for tp in tps)
    finally:
        consumer.close()


def test_failover_keeps_state_and_the_next_alert_cites_it(
    kafka_broker: str, tmp_path: Path
) -> None:
    """The first half of an account takeover lands on one worker, which is SIGKILLed; the
    survivor restores the user's state from the changelog, and the purchase that completes
    the pattern is alerted with the login and update from before the move as evidence."""
    prefix = f"t{uuid.uuid4().hex[:10]}."
    app_id = prefix.rstrip(".")
    workers = [
        WorkerProcess(kafka_broker, tmp_path / name, prefix=prefix, app_id=app_id,
                      log_level="warn")
        for name in ("a", "b")
    ]  # fmt: skip
    try:
        for worker in workers:
            worker.start()
        # Both through the rebalance that the second one's joining causes.
        workers[0].wait_metric("fraudstream_rebalances_total", 2)
        workers[1].wait_metric("fraudstream_rebalances_total", 1)
        user, t = "victim", T0
        first = [
            ev(user, "login", t, status="ok", device_id="d-home", country="DE", ip="10.0.0.1"),
            ev(user, "purchase", t + 60_000, amount=40.0, currency="EUR", item_id="i1",
               seller_id="s1", order_id="o1"),
            ev(user, "login", t + 1_800_000, status="ok", device_id="d-new", country="BR",
               ip="10.9.9.9"),
            ev(user, "account_update", t + 1_860_000, attrs={"field": "email"}),
        ]  # fmt: skip
        produce_events(kafka_broker, workers[0].topic("events"), first)
        # 120 s, as for the survivor below: on a loaded machine right after the rebalance the
        # owner may still be restoring; what each worker holds is named if it never comes.
        totals: list[list[int]] = []
        wait_until(
            lambda: totals.append(user_totals(workers, user)) or totals[-1] == [len(first)],
            120,
            lambda: f"first events in state (per worker that serves the user: {totals[-1]})",
        )
        # Past the next commit: the survivor must restore the state, not re-derive it.
        topic, partitions = workers[0].topic("events"), workers[0].partitions or 4
        wait_until(
            lambda: committed_total(kafka_broker, app_id, topic, partitions) >= len(first),
            30,
            "offsets committed",
            poll=0.5,
        )
        owner = next(w for w in workers if w.get(f"/users/{user}")[0] == 200)
        survivor = next(w for w in workers if w is not owner)
        owner.kill()
        recovery = wait_until(
            lambda: user_totals([survivor], user) == [len(first)], 120, "survivor serves state"
        )
        rest = ev(user, "purchase", t + 1_920_000, amount=900.0, currency="EUR", item_id="i9",
                  seller_id="s9", order_id="o9", instrument_id="card-new")  # fmt: skip
        produce_events(kafka_broker, survivor.topic("events"), [rest])
        messages = consume(kafka_broker, survivor.topic("alerts.fraud"), 1, timeout=60)
        alerts = [orjson.loads(m.value()) for m in messages]
        ids = [a["alert_id"] for a in alerts]
        before_move = {first[2]["event_id"], first[3]["event_id"]}
        cited = set(alerts[0]["evidence_event_ids"]) if alerts else set()
        sent = len(first) + 1
        wait_until(lambda: user_totals([survivor], user) == [sent], 30, "the purchase in state")
        in_state = sum(user_totals([survivor], user))
        report(
            "failover",
            events_sent=sent,
            events_in_state=in_state,
            lost=max(0, sent - in_state),
            counted_twice=max(0, in_state - sent),
            alerts=len(set(ids)),
            duplicate_alert_ids=len(ids) - len(set(ids)),
            evidence_from_before_move=len(cited & before_move),
            recovery_s=round(recovery, 1),
        )
        assert len(alerts) == 1, survivor.log_tail()
        assert alerts[0]["event_id"] == rest["event_id"]
        assert before_move <= cited, alerts[0]
        assert in_state == sent
    finally:
        for worker in workers:
            worker.stop()


@pytest.mark.timeout(600)  # three workers, a restore and up to 300 s of waiting for state
def test_rebalance_under_load(kafka_broker: str, tmp_path: Path) -> None:
    """Events flow steadily while a second and a third worker join and the third leaves:
    every event in exactly one user's state, once; every alert once."""
    prefix = f"t{uuid.uuid4().hex[:10]}."
    # Six partitions: Faust's assignor moves partitions only off workers holding more than
    # ceil(partitions / workers), so with four a third worker would get none.
    workers = [
        WorkerProcess(kafka_broker, tmp_path / name, prefix=prefix, partitions=6,
                      log_level=os.environ.get("FRAUDSTREAM_TEST_LOG_LEVEL", "warn"))
        for name in ("a", "b", "c")
    ]  # fmt: skip
    first, second, third = workers
    feeder: Feeder | None = None
    try:
        first.start()
        topic = first.topic("events")
        feeder = Feeder(kafka_broker, topic, traffic(300, prefix), 60).start()
        first.wait_metric(CONSUMED, 300)
        second.start()
        second.wait_metric(CONSUMED, 1, timeout=90)
        third.start()
        third.wait_metric(CONSUMED, 40, timeout=90)  # it holds states and alerts when it goes
        third_handled = third.metric(CONSUMED)
        third.stop()  # its partitions go back to the other two

        def handled() -> float:
            return consumed(first) + consumed(second)

        seen = handled()
        # Recovery: until the two have handled one more second of traffic.
        recovery = wait_until(lambda: handled() > seen + 60, 90, "traffic after the third left")
        wait_until(lambda: handled() > seen + 600, 90, "more traffic after the third left")
        wait_until(lambda: feeder.sent() >= 2400, 60, "a few thousand events", poll=0.5)
        sent = feeder.stop()
        # Under load the two may still be restoring the third's partitions from their
        # changelogs: lost events never arrive, late ones do, so waiting longer hides nothing.
        found = wait_in_state([first, second], sent, timeout=300)
        expected = feeder.alerting_users()
        figures = {
            **state_figures(sent, found),
            **alert_figures(kafka_broker, first.topic("alerts.fraud"), expected),
            "recovery_s": round(recovery, 1),
            "users": len(sent),
            "handled_by_third": int(third_handled),
            "rebalances_seen_by_first": int(first.metric("fraudstream_rebalances_total")),
        }
        report("rebalance under load", **figures)
        if figures["lost"]:
            missing = missing_events(workers[:2], feeder, found)
            print("missing (event id, partition, offset):", missing)
        assert_clean(figures, len(expected))
    finally:
        if feeder is not None:
            feeder.halt()
        for worker in reversed(workers):
            worker.stop()
