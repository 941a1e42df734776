"""The feedback agent's work: verdicts from the ``feedback`` topic, validated, appended to
``<data_dir>/feedback.jsonl`` for ``fraudstream retrain``; bad records to the dead-letter
topic with an error naming the field, like bad events."""

from __future__ import annotations

from pathlib import Path
from typing import IO

import orjson

from stream.core.dlq import dead_letter
from stream.core.feedback import parse_feedback
from stream.core.schema import Rejected
from stream.runtime.metrics import Metrics
from stream.runtime.output import KafkaOutput

FEEDBACK_FILE = "feedback.jsonl"


class FeedbackKeeper:
    def __init__(self, data_dir: Path, metrics: Metrics, out: KafkaOutput, dlq: str) -> None:
        self.path = data_dir / FEEDBACK_FILE
        self.metrics, self.out, self.dlq = metrics, out, dlq
        self._file: IO[bytes] | None = None

    def handle(
        self, key: bytes | None, value: bytes | None, topic: str, partition: int, offset: int
    ) -> None:
        try:
            fb = parse_feedback(value)
        except Rejected as rejection:
            letter = dead_letter(rejection, topic, partition, offset, key, value)
            self.out.send(self.dlq, key, letter)
            self.metrics.rejected.labels(rejection.reason).inc()
            return
        # At least once: a redelivered verdict is appended again with the same id, and
        # readers keep one per id (stream.core.feedback.read_feedback).
        self._writer().write(orjson.dumps({**fb.wire(), "feedback_id": fb.id}) + b"\n")
        self.metrics.feedback.labels(fb.kind, fb.verdict).inc()

    def flush(self) -> None:
        """Before offsets are committed: what was kept is on disk."""
        if self._file is not None:
            self._file.flush()

    def _writer(self) -> IO[bytes]:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "ab")  # noqa: SIM115 - open for the worker's life
        return self._file
