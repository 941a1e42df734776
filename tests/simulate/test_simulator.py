"""The labelled simulator: determinism, contract-valid events, label integrity, and the
configured rates showing up in the data."""

from __future__ import annotations

import argparse
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from stream.core.cliutil import CommandError
from stream.core.schema import parse_event
from stream.core.timeutil import DAY_MS, parse_ts
from stream.simulate import SimConfig, Simulation, generate_files, iter_events
from stream.simulate.cli import register
from stream.simulate.engine import Engine

TS_FORMAT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
SMALL = SimConfig(users=150, days=4, seed=11)
# Big enough for rates to settle, small enough to run in a few seconds. Night hours are off
# so that the daily shape is unmistakable; fraud and brushing are set above the defaults.
STATS = SimConfig(
    users=1500,
    days=10,
    seed=5,
    fraud_rate=0.01,
    brushing_order_share=0.08,
    hour_weights=(0.0,) * 7
    + (1.0, 2.0, 3.0, 3.0, 2.0, 2.0, 3.0, 4.0, 5.0, 6.0, 6.0, 4.0, 2.0, 1.0)
    + (0.0,) * 3,
)


@dataclass
class Data:
    config: SimConfig
    events: list[dict[str, Any]]
    labels: list[dict[str, Any]]
    fraud_users: set[str]
    churners: set[str]
    farm_sellers: set[str]
    decay: dict[str, tuple[int, int]]  # churner: (decay start, stop) in epoch ms
    by_id: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.by_id = {e["event_id"]: e for e in self.events}


def _read(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def _generate(tmp: Path, config: SimConfig) -> Data:
    events, labels = tmp / "events.jsonl", tmp / "labels.jsonl"
    generate_files(events, labels, config)
    engine = Engine(config)  # the same seed rebuilds the same roles
    return Data(
        config,
        _read(events),
        _read(labels),
        {u.user_id for u in engine.fraud_users},
        {u.user_id for u in engine.churners},
        {f.seller.seller_id for f in engine.farms},
        {u.user_id: (u.decay_start_ms, u.stop_ms) for u in engine.churners},
    )


@pytest.fixture(scope="module")
def stats_data(tmp_path_factory: pytest.TempPathFactory) -> Data:
    return _generate(tmp_path_factory.mktemp("stats"), STATS)


def test_same_seed_same_files_other_seed_different(tmp_path: Path) -> None:
    outputs = []
    for name, config in (("a", SMALL), ("b", SMALL), ("c", SimConfig(users=150, days=4, seed=12))):
        events, labels = tmp_path / f"{name}.jsonl", tmp_path / f"{name}.labels.jsonl"
        stats = generate_files(events, labels, config)
        assert stats.events > 1000
        outputs.append((events.read_bytes(), labels.read_bytes()))
    assert outputs[0] == outputs[1]
    assert outputs[0][0] != outputs[2][0]
    assert outputs[0][1] != outputs[2][1]


def test_events_follow_the_contract(stats_data: Data) -> None:
    events = stats_data.events
    assert len({e["event_id"] for e in events}) == len(events)
    times = [parse_ts(e["ts"]) for e in events]
    assert times == sorted(times)
    start = stats_data.config.start_ms
    assert start <= times[0] and times[-1] < start + stats_data.config.days * DAY_MS
    for event in events:
        parse_event(orjson.dumps(event))  # raises on anything the worker would reject
        assert TS_FORMAT.match(event["ts"])
        if event["type"] in ("payment", "login"):
            assert event["status"] in ("ok", "failed")
        if event["type"] in ("payment", "purchase"):
            for key in (
                "item_id",
                "seller_id",
                "category",
                "price",
                "quantity",
                "amount",
                "currency",
                "order_id",
                "instrument_id",
                "payment_method",
            ):
                assert key in event, (key, event)
            assert event["amount"] == pytest.approx(event["price"] * event["quantity"])
        if event["type"] == "review":
            assert 1 <= event["rating"] <= 5


def test_orders_group_their_events(stats_data: Data) -> None:
    kinds: dict[str, list[str]] = defaultdict(list)
    for event in stats_data.events:
        if "order_id" in event:
            kinds[event["order_id"]].append(event["type"])
    purchased = {o for o, k in kinds.items() if "purchase" in k}
    assert len(purchased) > 500
    for order_id in purchased:
        seq = kinds[order_id]
        assert seq.index("checkout") < seq.index("payment") < seq.index("purchase"), seq
        assert seq.count("purchase") == 1
    for order_id, seq in kinds.items():
        if "review" in seq or "refund" in seq:
            assert order_id in purchased  # nobody reviews or refunds what was never bought


def test_every_label_points_at_the_right_kind_of_thing(stats_data: Data) -> None:
    events, by_id = stats_data.events, stats_data.by_id
    users = {e["user_id"] for e in events}
    sellers = {e["seller_id"] for e in events if "seller_id" in e}
    counts = Counter(orjson.dumps(label) for label in stats_data.labels)
    assert max(counts.values()) == 1  # no duplicates
    kinds = Counter(label["kind"] for label in stats_data.labels)
    assert kinds["fraud"] > 0 and kinds["brushing"] > 0 and kinds["churn"] > 0
    fake_sellers = set()
    for label in stats_data.labels:
        if label["kind"] == "fraud":
            assert set(label) == {"kind", "event_id"}
            assert by_id[label["event_id"]]["user_id"] in stats_data.fraud_users
        elif label["kind"] == "brushing" and "event_id" in label:
            event = by_id[label["event_id"]]
            assert event["type"] == "purchase"
            assert event["seller_id"] in stats_data.farm_sellers
            fake_sellers.add(event["seller_id"])
        elif label["kind"] == "brushing":
            assert set(label) == {"kind", "seller_id"}
            assert label["seller_id"] in sellers and label["seller_id"] in stats_data.farm_sellers
        else:
            assert label["kind"] == "churn" and set(label) == {"kind", "user_id", "ts"}
            assert label["user_id"] in users and label["user_id"] in stats_data.churners
    seller_labels = {lb["seller_id"] for lb in stats_data.labels if "seller_id" in lb}
    assert seller_labels == fake_sellers


def test_churn_label_is_the_last_activity_and_comes_before_the_end(stats_data: Data) -> None:
    last: dict[str, str] = {}
    for event in stats_data.events:
        last[event["user_id"]] = event["ts"]
    end = stats_data.config.start_ms + stats_data.config.days * DAY_MS
    churn = [lb for lb in stats_data.labels if lb["kind"] == "churn"]
    for label in churn:
        assert last[label["user_id"]] == label["ts"]
        assert parse_ts(label["ts"]) <= end - DAY_MS  # the silence is visible in the data
    # Those who fade out, and those who came once (a few of whom never came at all).
    expected = (STATS.churn_rate + STATS.one_time_rate) * STATS.users
    assert 0.8 * expected <= len(churn) <= expected


def test_one_time_visitors_come_on_one_day(stats_data: Data) -> None:
    days: dict[str, set[int]] = defaultdict(set)
    for event in stats_data.events:
        days[event["user_id"]].add(parse_ts(event["ts"]) // DAY_MS)
    # Their stop is the end of their one day; a session may run past midnight.
    once = [u for u, (decay, stop) in stats_data.decay.items() if stop - decay == 1]
    assert len(once) == round(STATS.one_time_rate * STATS.users)
    seen = [u for u in once if u in days]
    assert len(seen) >= 0.8 * len(once)
    assert all(len(days[u]) <= 2 for u in seen)


def test_rare_buyers_buy_rarely_and_leave_for_good() -> None:
    cfg = SimConfig.rare_buyers(users=600, seed=3)
    sim = Simulation(cfg)
    events = [e for e, _ in sim]
    labels = sim.closing_labels()
    buys: dict[str, int] = defaultdict(int)
    last: dict[str, str] = {}
    for e in events:
        last[e["user_id"]] = e["ts"]
        buys[e["user_id"]] += e["type"] == "purchase"
    per_year = sorted(buys.values())
    assert len(buys) == cfg.users  # every cohort member makes a first visit
    assert 1 <= per_year[len(per_year) // 2] <= 3  # the median customer buys one to three times
    churners = {lb["user_id"]: lb["ts"] for lb in labels if lb["kind"] == "churn"}
    assert 0.2 * cfg.users < len(churners) < 0.8 * cfg.users
    assert all(last[u] == ts for u, ts in churners.items())


def test_rare_buyers_mostly_leave_after_a_bad_visit() -> None:
    """Leaving is not a coin flip: a leaver's last visit was more often one that viewed
    little and bought nothing."""
    cfg = SimConfig.rare_buyers(users=1500, seed=4)
    sim = Simulation(cfg)
    last_browse: dict[str, str] = {}  # user -> session of their last visit that browsed
    bought: set[tuple[str, str]] = set()
    views: Counter[tuple[str, str]] = Counter()
    for e, _ in sim:
        u, sid = e["user_id"], e.get("session_id", "")
        if e["type"] == "item_view":
            last_browse[u] = sid
            views[u, sid] += 1
        elif e["type"] == "purchase":
            bought.add((u, sid))
    churners = {lb["user_id"] for lb in sim.closing_labels() if lb["kind"] == "churn"}
    stayers = set(last_browse) - churners

    def no_buy(users: set[str]) -> float:
        return sum((u, last_browse[u]) not in bought for u in users) / len(users)

    def mean_views(users: set[str]) -> float:
        return sum(views[u, last_browse[u]] for u in users) / len(users)

    assert no_buy(churners) > no_buy(stayers) + 0.1
    assert mean_views(churners) < 0.9 * mean_views(stayers)


def test_churners_fade_before_they_stop(stats_data: Data) -> None:
    """Churners visit less often in the second half of their decay than before it."""
    sessions: dict[str, set[tuple[int, str]]] = defaultdict(set)
    for event in stats_data.events:
        if event["user_id"] in stats_data.churners and event["type"] not in ("review", "refund"):
            sessions[event["user_id"]].add((parse_ts(event["ts"]), event["session_id"]))
    before = before_days = fading = fading_days = 0.0
    start = stats_data.config.start_ms
    for user_id, (decay_ms, stop_ms) in stats_data.decay.items():
        if stop_ms - decay_ms == 1:
            continue  # a one-time visitor: no decay
        middle = (decay_ms + stop_ms) // 2
        firsts = {sid: t for t, sid in sorted(sessions[user_id], reverse=True)}
        before += sum(t < decay_ms for t in firsts.values())
        before_days += (decay_ms - start) / DAY_MS
        fading += sum(middle <= t < stop_ms for t in firsts.values())
        fading_days += (stop_ms - middle) / DAY_MS
    assert fading / fading_days < 0.6 * before / before_days


def _ordinary_sessions(data: Data) -> list[list[dict[str, Any]]]:
    """Sessions of users without a role, with no labelled event and no campaign."""
    labelled = {lb["event_id"] for lb in data.labels if "event_id" in lb}
    role_users = data.fraud_users | data.churners
    sessions: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in data.events:
        if "session_id" in event:
            sessions[event["session_id"]].append(event)
    return [
        s
        for s in sessions.values()
        if s[0]["type"] not in ("review", "refund")
        and s[0]["user_id"] not in role_users
        and not any(e["event_id"] in labelled or "campaign" in (e.get("attrs") or {}) for e in s)
    ]


def test_conversion_rate_matches_config(stats_data: Data) -> None:
    sessions = _ordinary_sessions(stats_data)
    assert len(sessions) > 10_000
    rate = sum(any(e["type"] == "purchase" for e in s) for s in sessions) / len(sessions)
    assert rate == pytest.approx(STATS.conversion_rate, rel=0.15)


def test_daily_shape_matches_hour_weights(stats_data: Data) -> None:
    sessions = _ordinary_sessions(stats_data)
    hours = Counter(int(s[0]["ts"][11:13]) for s in sessions)
    total = sum(STATS.hour_weights)
    for hour, weight in enumerate(STATS.hour_weights):
        observed = hours[hour] / len(sessions)
        if weight == 0:
            # Only sessions begun just before midnight may spill into a silent hour.
            assert observed < 0.002, hour
        else:
            assert observed == pytest.approx(weight / total, abs=0.01), hour


def test_fraud_prevalence_matches_config(stats_data: Data) -> None:
    fraud_users = {
        stats_data.by_id[lb["event_id"]]["user_id"]
        for lb in stats_data.labels
        if lb["kind"] == "fraud"
    }
    assert len(fraud_users) / STATS.users == pytest.approx(STATS.fraud_rate, abs=0.002)
    # Labels cover attacks, not the whole account: victims keep their honest history.
    victims = {
        e["user_id"]
        for e in stats_data.events
        if e["user_id"] in fraud_users
        and e["event_id"] not in {lb.get("event_id") for lb in stats_data.labels}
    }
    assert victims


def test_share_of_brushing_orders_matches_config(stats_data: Data) -> None:
    purchases = sum(e["type"] == "purchase" for e in stats_data.events)
    fake = sum(1 for lb in stats_data.labels if lb["kind"] == "brushing" and "event_id" in lb)
    assert fake / purchases == pytest.approx(STATS.brushing_order_share, abs=0.015)


def test_fake_orders_skip_browsing_and_get_fast_reviews(stats_data: Data) -> None:
    fake = {
        stats_data.by_id[lb["event_id"]]["order_id"]
        for lb in stats_data.labels
        if lb["kind"] == "brushing" and "event_id" in lb
    }
    reviews = [e for e in stats_data.events if e["type"] == "review" and e["order_id"] in fake]
    assert len(reviews) > 0.4 * len(fake)
    assert sum(e["rating"] >= 4 for e in reviews) == len(reviews)


def test_iter_events_is_the_file_stream(tmp_path: Path) -> None:
    events, labels = tmp_path / "e.jsonl", tmp_path / "l.jsonl"
    generate_files(events, labels, SMALL)
    streamed = list(iter_events(SMALL))
    assert [orjson.dumps(e) for e, _ in streamed] == events.read_bytes().splitlines()
    sim = Simulation(SMALL)
    pairs = [(e["event_id"], lb) for e, lbs in sim for lb in lbs]
    file_labels = _read(labels)
    assert [lb for _, lb in pairs] + sim.closing_labels() == file_labels


def test_memory_holds_about_one_day() -> None:
    engine = Engine(SimConfig(users=400, days=8, seed=3))
    for rows in engine.days():
        pending = sum(len(b) for b in engine.ctx.em.buckets.values())
        assert pending < 0.2 * len(rows)


def test_config_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="fraud_rate"):
        SimConfig(fraud_rate=1.5)
    with pytest.raises(ValueError, match="24 hour"):
        SimConfig(hour_weights=(1.0,) * 23)
    with pytest.raises(ValueError, match="timezone"):
        SimConfig(start=datetime(2026, 1, 1))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fraudstream")
    register(parser.add_subparsers(dest="command", required=True))
    return parser


def test_generate_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, labels = tmp_path / "sub" / "e.jsonl", tmp_path / "l.jsonl"
    args = _parser().parse_args(
        [
            "generate",
            "--out",
            str(out),
            "--labels-out",
            str(labels),
            "--users",
            "80",
            "--days",
            "3",
            "--seed",
            "2",
            "--start",
            "2027-03-01",
        ]
    )
    assert args.func(args) == 0
    summary = orjson.loads(capsys.readouterr().out)
    assert summary["events"] == len(out.read_bytes().splitlines()) > 0
    assert summary["events_per_s"] > 0
    first = orjson.loads(out.read_bytes().splitlines()[0])
    assert parse_ts(first["ts"]) >= int(datetime(2027, 3, 1, tzinfo=UTC).timestamp() * 1000)


def test_generate_command_reports_bad_parameters(tmp_path: Path) -> None:
    args = _parser().parse_args(
        [
            "generate",
            "--out",
            str(tmp_path / "e"),
            "--labels-out",
            str(tmp_path / "l"),
            "--users",
            "0",
        ]
    )
    with pytest.raises(CommandError, match="users"):
        args.func(args)


def test_generate_reads_flags_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRAUDSTREAM_USERS", "42")
    args = _parser().parse_args(["generate", "--out", "e", "--labels-out", "l"])
    assert args.users == 42
