"""A ``fraudstream worker`` in a subprocess, for tests and benchmarks against a real broker."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from stream.broker import free_port


class WorkerProcess:
    """``fraudstream worker`` in a subprocess with its own topics, group and state."""

    def __init__(
        self, bootstrap: str, data_dir: Path, prefix: str | None = None, partitions: int = 4
    ) -> None:
        self.partitions = partitions
        self.log_level = "info"
        self.bootstrap = bootstrap
        self.data_dir = data_dir
        self.prefix = prefix or f"t{uuid.uuid4().hex[:10]}."
        self.app_id = self.prefix.rstrip(".")
        self.web_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir / "worker.log"

    def topic(self, name: str) -> str:
        return self.prefix + name

    def start(self) -> WorkerProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = [
            sys.executable,
            "-m",
            "stream.cli",
            "worker",
            "--broker",
            self.bootstrap,
            "--data-dir",
            str(self.data_dir),
            "--web-port",
            str(self.web_port),
            "--app-id",
            self.app_id,
            "--topic-prefix",
            self.prefix,
            "--partitions",
            "4",
            "--log-level",
            "info",
        ]
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.wait_http("/metrics", 90)
        return self

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.web_port}{path}"

    def get(self, path: str) -> tuple[int, Any]:
        try:
            with urllib.request.urlopen(self.url(path), timeout=5) as resp:
                body = resp.read()
                status = resp.status
        except urllib.error.HTTPError as err:
            return err.code, None
        ctype = resp.headers.get("Content-Type", "")
        return status, json.loads(body) if "json" in ctype else body.decode()

    def wait_http(self, path: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None and self.proc.poll() is None, self.log_tail()
            with contextlib.suppress(OSError):
                if self.get(path)[0] == 200:
                    return
            time.sleep(0.3)
        raise AssertionError(f"worker did not serve {path}: {self.log_tail()}")

    def metric(self, name: str) -> float:
        total = 0.0
        for line in str(self.get("/metrics")[1]).splitlines():
            if line.startswith(name) and line[len(name)] in " {":
                total += float(line.rsplit(" ", 1)[1])
        return total

    def wait_metric(self, name: str, at_least: float, timeout: float = 60) -> float:
        deadline = time.monotonic() + timeout
        value = 0.0
        while time.monotonic() < deadline:
            value = self.metric(name)
            if value >= at_least:
                return value
            time.sleep(0.3)
        raise AssertionError(f"{name} stayed at {value} < {at_least}: {self.log_tail()}")

    def kill(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
