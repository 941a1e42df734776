"""Failing well: what a command cannot start without fails fast, as one line on stderr
with a documented exit code, and logs written to a file carry no terminal escapes."""

from __future__ import annotations

import io
import json
import logging
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stream.cli import main
from stream.core.cliutil import EXIT_FAILURE, EXIT_UNAVAILABLE
from stream.local.broker import free_port
from stream.runtime import preflight
from stream.runtime.logs import level_number, logging_config


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err[-3000:]
    assert lines[0].startswith("fraudstream: error: ")
    return lines[0]


def test_worker_without_broker_says_how_to_start_one(tmp_path: Path) -> None:
    """A real process, so that anything the Kafka client prints itself would show."""
    port = free_port()
    cmd = [sys.executable, "-m", "stream.cli", "worker", "--broker", f"127.0.0.1:{port}",
           "--data-dir", str(tmp_path / "w"), "--web-port", str(free_port())]  # fmt: skip
    started = time.monotonic()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    assert time.monotonic() - started < 10
    assert done.returncode == EXIT_UNAVAILABLE == 69
    line = one_line(done.stderr)
    assert f"127.0.0.1:{port}" in line and "Connection refused" in line
    assert f"fraudstream broker start --port {port}" in line
    assert done.stdout == ""


@pytest.fixture
def quick_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(preflight, "PROBE_TIMEOUT_S", 1.0)


@pytest.mark.parametrize(
    "command",
    [
        ["replay", "EVENTS"],
        ["alerts", "tail"],
        ["backtest", "--from-topic", "events", "--alerts-out", "ALERTS"],
    ],
    ids=lambda c: " ".join(c[:2]),
)
def test_other_kafka_commands_without_broker(
    command: list[str], tmp_path: Path, capfd: pytest.CaptureFixture[str], quick_probe: None
) -> None:
    events = tmp_path / "e.jsonl"
    events.write_text('{"event_id":"e","ts":0,"user_id":"u","type":"login"}\n')
    paths = {"EVENTS": str(events), "ALERTS": str(tmp_path / "a.jsonl")}
    argv = [paths.get(a, a) for a in command]
    port = free_port()
    assert main([*argv, "--broker", f"127.0.0.1:{port}"]) == EXIT_UNAVAILABLE
    err = capfd.readouterr().err  # file descriptors: the client library's own output too
    assert "fraudstream broker start" in one_line(err) and f"127.0.0.1:{port}" in err


def test_remote_broker_hint_does_not_offer_a_local_port() -> None:
    assert "--port" not in preflight._start_hint("kafka-1.example:9093,kafka-2.example:9093")
    assert "--port 9092" in preflight._start_hint("localhost:9092")


def test_web_port_in_use(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        argv = ["worker", "--data-dir", str(tmp_path), "--web-port", str(port)]
        assert main(argv) == EXIT_FAILURE
    line = one_line(capsys.readouterr().err)
    assert f"web port {port}" in line and "in use" in line and "--web-port" in line


def test_data_dir_not_writable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert main(["worker", "--data-dir", str(blocker / "state")]) == EXIT_FAILURE
    line = one_line(capsys.readouterr().err)
    assert str(blocker / "state") in line and "--data-dir" in line


def test_model_bundle_that_fails_its_checks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from model.bundle import FORMAT

    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "student.onnx").write_bytes(b"not what the manifest hashed")
    manifest = {"format": FORMAT, "version": "v1", "files": {"student.onnx": {"sha256": "0" * 64}}}
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    argv = ["worker", "--data-dir", str(tmp_path / "w"), "--web-port", str(free_port())]
    assert main([*argv, "--model", str(bundle)]) == EXIT_FAILURE
    line = one_line(capsys.readouterr().err)
    assert "sha256" in line and "fraudstream build" in line
    assert main([*argv, "--model", str(tmp_path / "none")]) == EXIT_FAILURE
    assert "no such directory" in one_line(capsys.readouterr().err)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _log_through(stream: io.StringIO, monkeypatch: pytest.MonkeyPatch) -> str:
    """Set logging up as ``run_worker`` asks Faust to, with stdout a terminal (the case
    that used to write escapes into ``2>file``), log a line and a Faust table."""
    from faust.utils import terminal
    from mode.utils import logging as mode_logging

    monkeypatch.setattr(sys, "stdout", Terminal())
    monkeypatch.setattr(mode_logging, "LOG_ISATTY", mode_logging.LOG_ISATTY)
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        mode_logging.setup_logging(
            loglevel="warn", logfile=stream, logging_config=logging_config("warn", stream)
        )
        logging.getLogger("fraudstream.test").error("something %s", "broke")
        logging.getLogger("fraudstream.test").info("not at warn level")
        table = terminal.logtable([["a", "b"]], title="Subscription")
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
    return stream.getvalue() + table


def test_logs_to_a_file_have_no_escape_codes(monkeypatch: pytest.MonkeyPatch) -> None:
    text = _log_through(io.StringIO(), monkeypatch)
    assert "something broke" in text and "not at warn level" not in text
    assert "\x1b" not in text


def test_logs_to_a_terminal_keep_their_colour(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert "\x1b[" in _log_through(Terminal(), monkeypatch)


def test_log_level_names() -> None:
    assert level_number("crit") == logging.CRITICAL and level_number("warn") == logging.WARNING
    with pytest.raises(ValueError, match="unknown log level"):
        level_number("loud")
