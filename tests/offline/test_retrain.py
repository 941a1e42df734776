"""Retraining's parts that need no build: the holdout scorecard, the promotion rule, the
bundle switch, labels with verdicts, the schedule's durations."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from model.bundle import bundle_version, load_bundle, promote_bundle, write_bundle
from stream.core.cliutil import CommandError
from stream.core.feedback import Feedback
from stream.offline.holdout import MIN_JUDGED, Scorecard, Truth, scorecard, verdict
from stream.offline.retrain import challenger_config, merged_labels, parse_every

T = 1_795_000_000_000


def card(
    fraud: float | None, precision: float | None, judged: int = 20, alerts: int = 30
) -> Scorecard:
    """Fraud only: PR-AUC, precision over ``judged`` of the ``alerts``."""
    pr_auc, precisions = {"fraud": fraud, "brushing": None}, {"fraud": precision, "brushing": None}
    return Scorecard(pr_auc, precisions, {"fraud": alerts, "brushing": 0}, {"fraud": judged})


def test_promotes_only_when_better_ranked_and_not_less_precise() -> None:
    assert verdict(card(0.5, 0.8), card(0.6, 0.8))[0]
    promoted, why = verdict(card(0.5, 0.8), card(0.5, 0.9))
    assert not promoted and "not better" in why
    promoted, why = verdict(card(0.5, 0.8), card(0.7, 0.6))
    assert not promoted and "fraud alert precision worse (0.6000 on 20 judged" in why
    assert "no labelled case" in verdict(card(None, None), card(0.9, 1.0))[1]


def test_precision_not_measurable_below_the_minimum_of_judged_alerts() -> None:
    # The champion raised no alert, or too few were judged: PR-AUC alone, and it says so.
    for champion in (card(0.5, None, judged=0, alerts=0), card(0.5, 1.0, judged=MIN_JUDGED - 1)):
        promoted, why = verdict(champion, card(0.6, 0.5))
        assert promoted and "fraud alert precision not measurable" in why, why
        assert "PR-AUC alone" in why
    # Or the challenger: it alerts, but few of its alerts were judged.
    promoted, why = verdict(card(0.5, 0.8), card(0.7, 1.0, judged=3))
    assert promoted and "(champion 20 judged alerts, challenger 3;" in why, why
    # A challenger that stopped alerting against a measured champion stays out.
    promoted, why = verdict(card(0.5, 0.8), card(0.7, None, judged=0, alerts=0))
    assert not promoted and "raised no fraud alert" in why, why
    # Unjudged alerts weigh nothing: 20 judged of 300 raised is as good as 20 of 20.
    assert verdict(card(0.5, 0.9, alerts=20), card(0.6, 0.9, alerts=300))[0]
    # The minimum is the caller's.
    assert not verdict(card(0.5, 0.9, judged=5), card(0.6, 0.8), min_judged=5)[0]
    assert verdict(card(0.5, 0.9, judged=5), card(0.6, 0.8), min_judged=6)[0]
    assert verdict(card(0.5, 0.9), card(0.6, 0.8, judged=5), min_judged=6)[0]


def fb(verdict: str, at: int = T, kind: str = "fraud", **subject: str) -> Feedback:
    return Feedback.model_validate(
        {"kind": kind, "verdict": verdict, "analyst": "ana", "at": at, **subject}
    )


def test_alerts_are_judged_by_labels_and_verdicts_or_not_at_all() -> None:
    truth = Truth.of(
        [{"kind": "fraud", "event_id": "f1"}, {"kind": "brushing", "seller_id": "s1"}],
        [fb("false_positive", event_id="e2"),
         fb("false_positive", alert_id="a3"),
         fb("confirmed", alert_id="a4"),
         fb("false_positive", event_id="e5"), fb("confirmed", T + 1, event_id="e5"),
         fb("confirmed", event_id="e6"), fb("false_positive", T + 1, event_id="e6"),
         fb("false_positive", kind="brushing", seller_id="s2")],
    )  # fmt: skip

    def judge(
        event_id: str, alert_id: str = "x", kind: str = "fraud", seller: str = "s9"
    ) -> bool | None:
        return truth.judge({"kind": kind, "alert_id": alert_id, "event_id": event_id,
                            "seller_id": seller})  # fmt: skip

    assert judge("f1") is True  # labelled
    assert judge("e2") is False  # found a false positive
    assert judge("f1", alert_id="a3") is False  # the alert's own verdict comes first
    assert judge("n1", alert_id="a4") is True
    assert judge("e5") is None  # confirmed last: no label here (apply_to_labels adds it)
    assert judge("e6") is False  # the latest verdict wins
    assert judge("n1") is None  # nobody judged it
    assert judge("e2", kind="brushing") is None  # a fraud verdict says nothing of brushing
    assert judge("p1", kind="brushing", seller="s1") is True
    assert judge("p1", kind="brushing", seller="s2") is False


def test_scorecard_judges_only_the_holdout_days() -> None:
    truth = Truth.of([{"kind": "fraud", "event_id": "f1"}, {"kind": "fraud", "event_id": "old"},
                      {"kind": "brushing", "seller_id": "s1"}])  # fmt: skip

    def row(kind: str, eid: str | None, ts: int, score: float, subject: str = "user") -> dict:
        # Score rows and alerts may carry epoch ms as well as RFC 3339.
        return {"kind": kind, "event_id": eid, "seller_id": "s1", "ts": ts, "score": score,
                "subject": {"type": subject}}  # fmt: skip

    scores = [row("fraud", "old", T - 1, 0.0), row("fraud", "f1", T, 0.9),
              row("fraud", "n1", T + 1, 0.2), row("brushing", "p1", T, 0.7),
              row("brushing", None, T, 0.1, "seller")]  # fmt: skip
    truth.false_events.add(("fraud", "n1"))
    alerts = [
        {"kind": "fraud", "event_id": "f1", "event_ts": T},
        {"kind": "fraud", "event_id": "n1", "event_ts": T + 5},
        {"kind": "fraud", "event_id": "n2", "event_ts": T + 6},  # not judged
        {"kind": "fraud", "event_id": "old", "event_ts": T - 5},
        {"kind": "brushing", "event_id": "p1", "seller_id": "s1", "event_ts": T},
    ]
    c = scorecard(alerts, scores, T, truth)
    assert c.pr_auc["fraud"] == pytest.approx(1.0)  # "old" is before the cutoff
    assert c.alert_precision == {"fraud": 0.5, "brushing": 1.0}
    assert c.alerts == {"fraud": 3, "brushing": 1}
    assert c.judged == {"fraud": 2, "brushing": 1}
    assert c.pr_auc["brushing"] == pytest.approx(1.0)  # the per-seller row is not a purchase


def test_labels_with_verdicts(tmp_path: Path) -> None:
    labels, feedback = tmp_path / "l.jsonl", tmp_path / "f.jsonl"
    labels.write_bytes(b'{"kind": "fraud", "event_id": "a"}\n{"kind": "fraud", "event_id": "b"}\n')
    base = {"kind": "fraud", "analyst": "x", "at": T}
    rows = [{**base, "verdict": "false_positive", "event_id": "a"},
            {**base, "verdict": "confirmed", "event_id": "c"}]  # fmt: skip
    feedback.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    extra = (fb("confirmed", event_id="d"), fb("false_positive", event_id="b"))
    merged, verdicts = merged_labels([labels], [feedback, feedback], extra)
    assert {x["event_id"] for x in merged} == {"c", "d"}
    assert len(verdicts) == 4  # the file given twice counts once


def test_the_challenger_trains_on_all_but_one_day_before_its_holdout() -> None:
    from model.config import PRESETS
    from model.dataset import day_split
    from stream.core.timeutil import DAY_MS

    first, cutoff = 20_000 * DAY_MS, 20_011 * DAY_MS  # 11 days of history
    cfg = challenger_config(PRESETS["tiny"], first, cutoff)
    split = day_split(first, cutoff - 1, cfg.val_frac, cfg.test_frac)
    assert split.train_end == first + 9 * DAY_MS and split.val_end == first + 10 * DAY_MS
    assert cfg.val_frac == PRESETS["tiny"].val_frac
    # The recipe's own split kept three days out.
    recipe = day_split(first, cutoff - 1, PRESETS["tiny"].val_frac, PRESETS["tiny"].test_frac)
    assert recipe.train_end == first + 8 * DAY_MS


def test_every_takes_durations() -> None:
    assert parse_every("24h") == 86400 and parse_every("90s") == 90 and parse_every("7d") == 604800
    with pytest.raises(CommandError, match="--every"):
        parse_every("daily")


def _bundle(path: Path, tag: str) -> Path:
    src = path.parent / f"{tag}.onnx"
    src.write_bytes(tag.encode())
    return write_bundle(path, {"student.onnx": src}, {"tag": tag}).path


def test_promotion_replaces_a_directory_and_keeps_the_previous(tmp_path: Path) -> None:
    champion, challenger = _bundle(tmp_path / "live", "one"), _bundle(tmp_path / "new", "two")
    old, new = bundle_version(champion), bundle_version(challenger)
    assert promote_bundle(challenger, champion) == champion
    assert bundle_version(champion) == new and not challenger.exists()
    assert bundle_version(tmp_path / f".live.previous-{old}") == old
    load_bundle(champion)


def test_promotion_repoints_a_symlink(tmp_path: Path) -> None:
    first = _bundle(tmp_path / "b1", "one")
    link = tmp_path / "current"
    link.symlink_to(first)
    challenger = _bundle(tmp_path / "cand", "two")
    target = promote_bundle(challenger, link)
    assert link.is_symlink() and link.resolve() == target.resolve()
    assert bundle_version(link) == bundle_version(target) and bundle_version(first) is not None


def test_the_command_fails_in_one_line_naming_what_is_wrong(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from stream.cli import main

    events = tmp_path / "e.jsonl"
    events.write_bytes(b"")
    base = ["retrain", "--model", str(tmp_path / "none"), "--labels", str(events)]
    assert main([*base]) != 0
    assert "give either --events FILE or --from-topic TOPIC" in capsys.readouterr().err
    assert main([*base, "--events", str(events), "--feedback", str(tmp_path / "f")]) != 0
    assert "--feedback" in capsys.readouterr().err
    assert main([*base, "--events", str(events)]) != 0
    assert "no manifest.json" in capsys.readouterr().err
    assert main([*base, "--events", str(events), "--min-judged", "0"]) != 0
    assert "--min-judged: 0 must be at least 1" in capsys.readouterr().err


def test_metrics_carry_both_sides_and_the_judged_counts() -> None:
    from prometheus_client import generate_latest

    from stream.offline.retrain import RetrainMetrics

    metrics = RetrainMetrics()
    sides = {"champion": card(0.5, 0.8, judged=12, alerts=12), "challenger": card(0.6, 1.0, 10)}
    metrics.record({"promoted": True, "seconds": {"total": 700.0}}, sides)
    text = generate_latest(metrics.registry).decode()
    assert 'fraudstream_retrain_judged_alerts{kind="fraud",side="champion"} 12.0' in text
    assert 'fraudstream_retrain_judged_alerts{kind="fraud",side="challenger"} 10.0' in text
    assert 'fraudstream_retrain_alert_precision{kind="fraud",side="challenger"} 1.0' in text
    assert "fraudstream_retrain_promotions_total 1.0" in text
