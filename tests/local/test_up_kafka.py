"""``fraudstream up`` end to end: its own broker, a worker, live traffic, alerts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from stream.local.broker import free_port

# A first-run build, a minute of traffic and the stop: 213 s measured on a shared 2-core machine.
pytestmark = [pytest.mark.kafka, pytest.mark.slow, pytest.mark.timeout(480)]


def test_up_shows_fraud_and_brushing_within_a_minute_and_sums_up_churn(tmp_path: Path) -> None:
    port, web = free_port(), free_port()
    cmd = [
        sys.executable,
        "-m",
        "stream.cli",
        "up",
        "--port",
        str(port),
        "--web-port",
        str(web),
        "--data-dir",
        str(tmp_path),
        "--duration",
        "60",
        "--rate",
        "1000",  # more simulated time per minute, so attacks enough to show within it
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=420, check=False)
    out = done.stdout
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"http://127.0.0.1:{web}/metrics" in out
    assert f"http://127.0.0.1:{web}/ " in out
    assert f"127.0.0.1:{port}" in out
    lines = out.splitlines()
    fraud = [line for line in lines if " FRAUD " in line]
    brushing = [line for line in lines if " BRUSHING " in line]
    assert fraud and brushing, out[-3000:]
    assert "(shipped default, recipe" in out  # no training before it streams
    # Alerts say what they found, about whom and why, in words: the bundle's occlusion
    # results read as the score without what was hidden.
    assert any("the score falls from" in line for line in fraud), fraud
    assert all(": user " in line for line in fraud) and all(
        ": seller " in line for line in brushing
    )
    # Churn is a periodic summary, never a line per alert.
    churn = [line for line in lines if " CHURN " in line]
    assert all("at risk of churning" in line for line in churn), churn
    assert out.rstrip().endswith("stopped")
    # Everything it started is gone: the broker's pid file is removed on stop.
    assert not (tmp_path / "kafka" / "broker.pid").exists()
