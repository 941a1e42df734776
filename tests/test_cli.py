from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from stream.cli import build_parser, main
from stream.local import broker

COMMANDS = [["up"], ["broker", "start"], ["broker", "stop"], ["worker"], ["alerts", "tail"]]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([*command, "--help"])
    assert info.value.code == 0
    assert "usage: fraudstream" in capsys.readouterr().out


def test_flags_read_environment_and_flags_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRAUDSTREAM_BROKER", "kafka.example:9999")
    args = build_parser().parse_args(["alerts", "tail"])
    assert args.broker == "kafka.example:9999"
    args = build_parser().parse_args(["alerts", "tail", "--broker", "other:1"])
    assert args.broker == "other:1"


def test_failure_is_one_line_on_stderr_with_nonzero_exit(tmp_path: object) -> None:
    busy = broker.free_port()
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", busy))
        sock.listen()
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "stream.cli",
                "broker",
                "start",
                "--port",
                str(busy),
                "--data-dir",
                str(tmp_path),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and f"port {busy}" in lines[0] and "in use" in lines[0]


def test_missing_java_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.setattr(broker.shutil, "which", lambda name: None)
    cfg = broker.BrokerConfig(data_dir=tmp_path, port=broker.free_port())  # type: ignore[arg-type]
    with pytest.raises(broker.BrokerError, match="Java is not installed"):
        broker.start(cfg)


def test_stop_without_broker_fails_cleanly(
    tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["broker", "stop", "--data-dir", str(tmp_path)]) == 1
    assert "no broker" in capsys.readouterr().err


def test_missing_maven_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FRAUDSTREAM_KAFKA_LIB", str(tmp_path / "empty-lib"))
    monkeypatch.setattr(broker.shutil, "which", lambda name: None if name == "mvn" else name)
    with pytest.raises(broker.BrokerError, match="Maven"):
        broker.ensure_jars()
