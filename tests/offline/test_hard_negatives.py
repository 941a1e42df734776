"""The detectors on the simulator's look-alikes: flash sales are honest spikes of orders
from many accounts, with fast five-star reviews and new sign-ups, but buyers browse first."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from model.sequence_model import SequenceModel
from stream.offline.backtest import run_backtest
from stream.simulate import SimConfig, generate_files

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def marketplace(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, set[str], set[str]]:
    """Two simulated weeks; the flash-sale sellers (from the sale's campaign tag on item
    views) and the brushing sellers (from the labels)."""
    root = tmp_path_factory.mktemp("hard-negatives")
    events, labels = root / "e.jsonl", root / "l.jsonl"
    generate_files(events, labels, SimConfig(users=2000, days=14, seed=7))
    flash: set[str] = set()
    for line in events.read_bytes().splitlines():
        if b'"fs_' in line:
            event = orjson.loads(line)
            if event["type"] == "item_view" and event.get("seller_id"):
                flash.add(event["seller_id"])
    brushing = {
        label["seller_id"]
        for label in map(orjson.loads, labels.read_bytes().splitlines())
        if label["kind"] == "brushing" and "seller_id" in label
    }
    return events, flash - brushing, brushing


def brushing_alerts(events: Path, out: Path, model: SequenceModel | None = None) -> set[str]:
    run_backtest(events, out, model=model)
    alerts = map(orjson.loads, out.read_bytes().splitlines())
    return {a["subject"]["id"] for a in alerts if a["kind"] == "brushing"}


def test_rules_find_brushing_rings_but_not_flash_sales(
    marketplace: tuple[Path, set[str], set[str]], tmp_path: Path
) -> None:
    events, flash, brushing = marketplace
    assert len(flash) >= 5 and brushing
    alerted = brushing_alerts(events, tmp_path / "a.jsonl")
    assert alerted & brushing
    assert not alerted & flash


def test_model_does_not_take_flash_sales_for_brushing(
    marketplace: tuple[Path, set[str], set[str]],
    tiny_bundle: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    events, flash, _ = marketplace
    model = SequenceModel(tiny_bundle[1], "onnx")
    assert "brushing" in model.kinds
    assert not brushing_alerts(events, tmp_path / "a.jsonl", model) & flash
