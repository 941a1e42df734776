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
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from stream.core.cliutil import CommandError
from stream.local.broker import free_port


class WorkerFailed(CommandError):
    """The worker process exited or did not come up."""


class WorkerProcess:
    """``fraudstream worker`` in a subprocess; by default with its own topics, group and state
    (a random topic prefix), as tests and benchmarks want."""

    def __init__(
        self,
        bootstrap: str,
        data_dir: Path,
        prefix: str | None = None,
        partitions: int | None = 4,
        *,
        app_id: str | None = None,
        web_port: int | None = None,
        log_level: str = "info",
        model: Path | None = None,
        backend: str | None = None,
        env: Mapping[str, str] | None = None,
        cpus: str | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.data_dir = data_dir
        self.prefix = f"t{uuid.uuid4().hex[:10]}." if prefix is None else prefix
        self.app_id = app_id or self.prefix.rstrip(".") or "fraudstream"
        self.partitions = partitions
        self.web_port = web_port or free_port()
        self.log_level = log_level
        self.model, self.backend = model, backend
        self.env = dict(env or {})  # FRAUDSTREAM_* settings without a flag, on top of ours
        self.cpus = cpus  # pinned with taskset (e.g. "1"), for benchmarks
        # ``python -m`` imports from the working directory first: another checkout's worker
        # runs from that checkout (benchmarks against an earlier version)
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir / "worker.log"

    def topic(self, name: str) -> str:
        return self.prefix + name

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "stream.cli", "worker", "--broker", self.bootstrap,
               "--data-dir", str(self.data_dir), "--web-port", str(self.web_port),
               "--app-id", self.app_id, "--topic-prefix", self.prefix,
               "--log-level", self.log_level]  # fmt: skip
        if self.partitions is not None:
            cmd += ["--partitions", str(self.partitions)]
        if self.model is not None:
            cmd += ["--model", str(self.model)]
        else:
            cmd += ["--rules-only"]
        if self.backend is not None:
            cmd += ["--backend", self.backend]
        return cmd if self.cpus is None else ["taskset", "-c", self.cpus, *cmd]

    def start(self, timeout: float = 90.0) -> WorkerProcess:
        """Start and wait until the worker serves ``/metrics``."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, **self.env},
                cwd=self.cwd,
            )
        self.wait_http("/metrics", timeout)
        return self

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

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
            if not self.running():
                raise WorkerFailed(f"the worker exited; see {self.log_path}:\n{self.log_tail()}")
            with contextlib.suppress(OSError):
                if self.get(path)[0] == 200:
                    return
            time.sleep(0.3)
        raise WorkerFailed(f"the worker did not serve {path} within {timeout:.0f}s")

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
        raise WorkerFailed(f"{name} stayed at {value} < {at_least}:\n{self.log_tail()}")

    def kill(self) -> None:
        if self.proc is None:
            return
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
