"""``fraudstream up`` end to end: its own broker, a worker, live traffic, alerts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from stream.local.broker import free_port

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def test_up_prints_where_to_look_and_alerts_within_a_minute(tmp_path: Path) -> None:
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
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=240, check=False)
    out = done.stdout
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"http://127.0.0.1:{web}/metrics" in out
    assert f"127.0.0.1:{port}" in out
    alerts = [line for line in out.splitlines() if line.startswith("ALERT")]
    kinds = {line.split()[1] for line in alerts}
    assert "fraud" in kinds, out[-3000:]
    assert "(shipped default, recipe" in out  # no training before it streams
    # Fraud alerts come from the shipped bundle, and say why.
    assert any("sequence model score" in line for line in alerts if " fraud " in line), alerts
    assert out.rstrip().endswith("stopped")
    # Everything it started is gone: the broker's pid file is removed on stop.
    assert not (tmp_path / "kafka" / "broker.pid").exists()
