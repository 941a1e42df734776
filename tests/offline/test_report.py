"""``fraudstream report``: the page's figures, that it is self-contained, and that a real
browser (Debian's chromium, headless) draws it."""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import zlib
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from stream.cli import main
from stream.offline.backtest import run_backtest
from stream.offline.evaluate import Labels, read_jsonl
from stream.offline.report import render
from stream.offline.report_data import Run, human_duration, kind_result
from stream.simulate import SimConfig, generate_files


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small simulated marketplace and the rules' backtest of it."""
    root = tmp_path_factory.mktemp("report")
    start = datetime(2026, 11, 1, tzinfo=UTC)
    config = SimConfig(users=600, days=10, seed=7, start=start, fraud_rate=0.03,
                       brushing_seller_rate=0.1)  # fmt: skip
    generate_files(root / "e.jsonl", root / "l.jsonl", config)
    run_backtest(root / "e.jsonl", root / "a.jsonl", root / "s.jsonl")
    return root


def test_figures_match_the_labels(run: Path) -> None:
    labels = Labels(read_jsonl(run / "l.jsonl"))
    result = Run.load(run / "a.jsonl", run / "s.jsonl")
    assert result.name == "rules-v1"
    fraud = kind_result("fraud", result, labels)
    alerts = [a for a in result.alerts if a["kind"] == "fraud"]
    assert fraud.alerts == len(alerts) > 0
    assert fraud.right == sum(a["event_id"] in labels.fraud_events for a in alerts)
    fraud_users = {r["user_id"] for r in result.scores
                   if r["kind"] == "fraud" and r["event_id"] in labels.fraud_events}  # fmt: skip
    assert fraud.cases == len(fraud_users) and 0 < fraud.found <= fraud.cases
    assert len(fraud.delays_s) == fraud.found and min(fraud.delays_s) >= 0
    assert sum(fraud.labels) == sum(r["event_id"] in labels.fraud_events
                                    for r in result.scores if r["kind"] == "fraud")  # fmt: skip
    assert fraud.patterns and fraud.reasons.most_common(1)[0][0].startswith(("card", "ato"))
    churn = kind_result("churn", result, labels)
    assert churn.cases == len(set(labels.churn_users) & {r["subject"]["id"] for r in result.scores
                                                          if r["kind"] == "churn"})  # fmt: skip
    curve = fraud.curve()
    assert curve[-1][0] == 1.0 and all(0 <= p <= 1 for _, p in curve)


def test_human_durations() -> None:
    assert [human_duration(s) for s in (42, 450, 11_880, 415_103.5)] == [
        "42 s", "7.5 min", "3.3 h", "4.8 days"]  # fmt: skip


def test_page_is_self_contained_and_compares_the_runs(run: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    code = main(["report", "--labels", str(run / "l.jsonl"), "--alerts", str(run / "a.jsonl"),
                 "--scores", str(run / "s.jsonl"), "--rules-alerts", str(run / "a.jsonl"),
                 "--rules-scores", str(run / "s.jsonl"), "--name", "candidate",
                 "--out", str(out)])  # fmt: skip
    assert code == 0
    page = out.read_text()
    for kind in ("fraud", "brushing", "churn"):
        assert f"<h2>{kind}</h2>" in page
        for chart in ("precision-recall", "alerts per", "score distribution",
                      "detection delay", "top reasons"):  # fmt: skip
            assert f"{kind}: {chart}" in page, (kind, chart)
    assert page.count("<svg") == 15 and "candidate" in page and ">rules<" in page
    # Nothing is fetched: no scripts, no external references of any kind.
    assert "<script" not in page and "<link" not in page and "src=" not in page
    urls = set(re.findall(r"https?://[^\"' )]+", page))
    assert urls == {"http://www.w3.org/2000/svg"}  # the SVG namespace, an identifier


def test_the_rules_inputs_go_together(run: Path, tmp_path: Path) -> None:
    args = ["report", "--labels", str(run / "l.jsonl"), "--alerts", str(run / "a.jsonl"),
            "--scores", str(run / "s.jsonl"), "--rules-alerts", str(run / "a.jsonl"),
            "--out", str(tmp_path / "r.html")]  # fmt: skip
    assert main(args) == 1 and not (tmp_path / "r.html").exists()


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def test_a_real_browser_draws_the_report(run: Path, tmp_path: Path) -> None:
    """Headless chromium renders the page to a PNG: charts drawn (many pixels neither
    white nor text-black, in the palette's colours), not a blank page."""
    browser = chromium()
    if browser is None:
        if os.environ.get("FRAUDSTREAM_REQUIRE_BROWSER"):
            pytest.fail("chromium is not installed (apt-get install chromium)")
        pytest.skip("chromium is not installed; CI installs it (.ci/run)")
    html = render(
        [Run.load(run / "a.jsonl", run / "s.jsonl")], Labels(read_jsonl(run / "l.jsonl")), "t"
    )
    page, shot = tmp_path / "r.html", tmp_path / "r.png"
    page.write_text(html)
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
           "--window-size=1400,1200", f"--screenshot={shot}", page.as_uri()]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    pixels = read_png(shot.read_bytes())
    assert pixels.shape[:2] == (1200, 1400)
    white = (pixels >= 250).all(axis=2)
    assert white.mean() < 0.97, "the page is (nearly) blank"
    # The charts' blue (#1f6fb4) and orange (#d9480f), give or take anti-aliasing.
    for colour in ((0x1F, 0x6F, 0xB4), (0xD9, 0x48, 0x0F)):
        near = (np.abs(pixels.astype(int) - colour) <= 12).all(axis=2)
        assert near.sum() > 500, f"too few pixels of {colour}"


def read_png(data: bytes) -> np.ndarray:
    """An 8-bit RGB or RGBA, non-interlaced PNG (what chromium writes) as an RGB array;
    the test image needs no imaging library."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks, header = 8, [], b""
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos : pos + 4]), data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            chunks.append(body)
        pos += 12 + length
    width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour_type in (2, 6) and interlace == 0
    bpp = 3 if colour_type == 2 else 4
    raw, stride = zlib.decompress(b"".join(chunks)), width * bpp
    rows, prev = [], [0] * stride
    for y in range(height):
        start = y * (stride + 1)
        prev = _unfilter(raw[start], list(raw[start + 1 : start + 1 + stride]), prev, bpp)
        rows.append(prev)
    return np.array(rows, dtype=np.uint8).reshape(height, width, bpp)[:, :, :3]


def _unfilter(filt: int, cur: list[int], prev: list[int], bpp: int) -> list[int]:
    """Undo one scanline's filter (PNG specification, section 9.2)."""
    if filt == 2:
        return [(c + p) & 0xFF for c, p in zip(cur, prev, strict=True)]
    for i in range(len(cur)) if filt else ():
        left = cur[i - bpp] if i >= bpp else 0
        if filt == 1:
            cur[i] = (cur[i] + left) & 0xFF
        elif filt == 3:
            cur[i] = (cur[i] + (left + prev[i]) // 2) & 0xFF
        else:
            up, corner = prev[i], prev[i - bpp] if i >= bpp else 0
            p = left + up - corner
            pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
            cur[i] = (
                cur[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)
            ) & 0xFF
    return cur
