"""Retraining's parts that need no build: the holdout scorecard, the promotion rule, the
bundle switch, labels with verdicts, the schedule's durations."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from model.bundle import bundle_version, load_bundle, promote_bundle, write_bundle
from stream.core.cliutil import CommandError
from stream.offline.holdout import Scorecard, Truth, scorecard, verdict
from stream.offline.retrain import merged_labels, parse_every

T = 1_795_000_000_000


def card(fraud: float | None, precision: float | None) -> Scorecard:
    return Scorecard({"fraud": fraud, "brushing": None}, {"fraud": precision, "brushing": None})


def test_promotes_only_when_better_ranked_and_not_less_precise() -> None:
    assert verdict(card(0.5, 0.8), card(0.6, 0.8))[0]
    assert verdict(card(0.5, None), card(0.6, 0.5))[0]  # the champion raised no alert
    promoted, why = verdict(card(0.5, 0.8), card(0.5, 0.9))
    assert not promoted and "not better" in why
    promoted, why = verdict(card(0.5, 0.8), card(0.7, 0.6))
    assert not promoted and "fraud alert precision worse" in why
    assert not verdict(card(0.5, 0.8), card(0.7, None))[0]  # it stopped alerting
    assert "no labelled case" in verdict(card(None, None), card(0.9, 1.0))[1]


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
    alerts = [
        {"kind": "fraud", "event_id": "f1", "event_ts": T},
        {"kind": "fraud", "event_id": "n1", "event_ts": T + 5},
        {"kind": "fraud", "event_id": "old", "event_ts": T - 5},
        {"kind": "brushing", "event_id": "p1", "seller_id": "s1", "event_ts": T},
    ]
    c = scorecard(alerts, scores, T, truth)
    assert c.pr_auc["fraud"] == pytest.approx(1.0)  # "old" is before the cutoff
    assert c.alert_precision == {"fraud": 0.5, "brushing": 1.0}
    assert c.alerts == {"fraud": 2, "brushing": 1}
    assert c.pr_auc["brushing"] == pytest.approx(1.0)  # the per-seller row is not a purchase


def test_labels_with_verdicts(tmp_path: Path) -> None:
    labels, feedback = tmp_path / "l.jsonl", tmp_path / "f.jsonl"
    labels.write_bytes(b'{"kind": "fraud", "event_id": "a"}\n{"kind": "fraud", "event_id": "b"}\n')
    base = {"kind": "fraud", "analyst": "x", "at": T}
    rows = [{**base, "verdict": "false_positive", "event_id": "a"},
            {**base, "verdict": "confirmed", "event_id": "c"}]  # fmt: skip
    feedback.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    assert {x["event_id"] for x in merged_labels([labels], [feedback])} == {"b", "c"}


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
