"""The one detection pipeline: a micro-batch of input records in, everything it causes out.

The worker's Faust agents (``stream.runtime.agents``) and ``fraudstream backtest``
(``stream.offline.backtest``) both drive these two classes, so stream and backtest agree
by construction. Nothing here knows Kafka or Faust: records come with their partition and
offset, states come through ``States``, and the effects (alerts, dead letters, seller
records, watermarks, score rows, state changes) go back to the caller, which delivers them.

- ``UserPipeline.run``: parse and validate each record (bad ones become dead letters that
  name the field), pseudonymise its device id, IP and instrument (``stream.core.privacy``),
  check the key, refuse events dated too far ahead
  (``stream.core.event_time``), tick the partition's churn clock, add the event to the
  user's window (duplicates change nothing, late events are refused), judge decision events
  with the rules or defer them to one model call for the whole batch, decided in event
  order; purchases and reviews become seller records. After the batch, each input
  partition's latest event time is a watermark for the seller side.
- ``SellerPipeline.run`` (``stream.detect.seller_pipeline``): seller records wait in a
  reorder buffer per seller partition and are decided in event-time order once the
  watermark of every input partition has passed them (or after a bounded wait), so
  brushing verdicts do not depend on arrival order.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from stream.core.alerts import RULES_MODEL_VERSION, Detection
from stream.core.errors import Action, as_rejection, decide
from stream.core.event_time import EventTimeGuard
from stream.core.explain import user_evidence
from stream.core.privacy import Pseudonymiser
from stream.core.schema import Event, Rejected, parse_event
from stream.core.state import (
    EID,
    TS,
    Row,
    UserState,
)
from stream.detect.churn import ChurnBudget, ChurnClock, ChurnConfig
from stream.detect.model_churn import churn_verdicts
from stream.detect.model_fraud import (
    Explanation,
    PendingFraud,
    decide_all,
    scored_seller_records,
)
from stream.detect.processor import DetectorConfig, apply_user_event

S = TypeVar("S")
S_co = TypeVar("S_co", covariant=True)


@dataclass(frozen=True, slots=True)
class Record:
    """One input message. ``origin`` is the caller's own handle (a Faust event, say),
    carried through untouched so that effects can be traced back to their message."""

    key: bytes | None
    value: bytes
    partition: int
    offset: int
    origin: Any = None


class States(Protocol[S_co]):
    """State access for one table: states by partition and key, changes reported back."""

    def get(self, partition: int, key: bytes) -> S_co: ...

    def changed(self, partition: int, key: bytes) -> None: ...

    def keys_in(self, partition: int) -> Iterable[bytes]: ...


class Model(Protocol):
    """What the pipeline needs from a model bundle (``model.sequence_model.SequenceModel``)."""

    version: str
    kinds: frozenset[str]
    thresholds: dict[str, float]

    def threshold(self, kind: str) -> float | None: ...

    def scores(self, windows: list[list[Row]]) -> dict[str, list[float]]: ...

    def explain_frauds(self, windows: list[list[Row]]) -> list[Explanation]: ...

    def idle_scores(self, windows: list[list[Row]], now_ms: int, batch: int) -> list[float]: ...


@dataclass(frozen=True, slots=True)
class ScoreRow:
    """One scoring decision (docs/contract.md, section 4: scores files)."""

    kind: str
    subject_type: str
    subject_id: str
    seller_id: str | None
    event_id: str
    ts: int
    score: float
    history: int | None = None  # churn: the visits seen from the user so far


@dataclass
class Effects:
    """Everything one micro-batch caused, for the caller to deliver. Alerts and dead letters
    name the record that caused them (for churn: the record whose time crossed the tick)."""

    model_version: str
    alerts: list[tuple[Record, Detection]] = field(default_factory=list)
    dead_letters: list[tuple[Record, Rejected]] = field(default_factory=list)
    seller_records: list[tuple[str, Row]] = field(default_factory=list)
    watermarks: dict[int, int] = field(default_factory=dict)  # input partition -> event time
    scores: list[ScoreRow] = field(default_factory=list)
    added: int = 0
    duplicates: int = 0
    handled: list[Record] = field(default_factory=list)  # seller side: records now decided


def model_version(model: Model | None) -> str:
    return model.version if model is not None else RULES_MODEL_VERSION


LATE = "field 'ts': event is older than the allowed lateness"


class UserPipeline:
    def __init__(
        self,
        cfg: DetectorConfig,
        churn: ChurnConfig,
        model_batch: int = 256,
        check_keys: bool = True,
        guard: EventTimeGuard | None = None,
        pseudonyms: Pseudonymiser | None = None,
    ) -> None:
        self.cfg, self.churn, self.model_batch = cfg, churn, model_batch
        # Device ids, IPs and instrument tokens become keyed hashes before anything keeps them.
        self._pseudonymise = pseudonyms.pseudonym if pseudonyms is not None else None
        # Files carry no message keys; Kafka messages must be keyed by their user_id.
        self.check_keys = check_keys
        # Events dated too far ahead are refused before they move any clock or state.
        self.guard = guard
        self.clock = ChurnClock(churn.interval_ms)
        self.budget = ChurnBudget(churn)

    def run(
        self, records: Sequence[Record], states: States[UserState], model: Model | None
    ) -> Effects:
        fx = Effects(model_version(model))
        fraud_model = model if model is not None and "fraud" in model.kinds else None
        pending: list[tuple[Record, PendingFraud]] = []
        for record in records:
            try:
                self._one(record, states, model, fraud_model is not None, pending, fx)
            except Exception as exc:
                if decide(exc) is Action.CRASH:
                    raise
                fx.dead_letters.append((record, as_rejection(exc)))
        if fraud_model is not None and pending:
            self._decide(pending, fraud_model, fx)
        return fx

    def close(
        self, now_ms: int, states: States[UserState], partitions: Iterable[int], model: Model | None
    ) -> Effects:
        """A closing churn evaluation of every user, as of ``now_ms`` (the end of a backtest)."""
        fx = Effects(model_version(model))
        for partition in partitions:
            self._churn(None, partition, now_ms, states, model, fx)
        return fx

    def _one(
        self,
        record: Record,
        states: States[UserState],
        model: Model | None,
        defer: bool,
        pending: list[tuple[Record, PendingFraud]],
        fx: Effects,
    ) -> None:
        event = parse_event(record.value, self._pseudonymise)
        key = event.user_id.encode()
        if self.check_keys and record.key != key:
            shown = record.key.decode("utf-8", "replace") if record.key is not None else None
            raise Rejected(
                "bad_key", f"key: message key {shown!r} must equal user_id {event.user_id!r}"
            )
        partition = record.partition
        if self.guard is not None:
            self.guard.admit(partition, event.ts)
        for tick in self.clock.crossed(partition, event.ts):
            self._churn(record, partition, tick, states, model, fx)
        state = states.get(partition, key)
        result = apply_user_event(state, event, self.cfg, defer)
        if result.outcome == "late":
            raise Rejected("late", LATE)
        fx.watermarks[partition] = max(event.ts, fx.watermarks.get(partition, event.ts))
        if result.outcome == "duplicate":
            fx.duplicates += 1
        else:
            fx.added += 1
            states.changed(partition, key)
        fx.alerts.extend((record, user_evidence(d, state.events)) for d in result.detections)
        if result.fraud_score is not None:
            fx.scores.append(_fraud_row(event, result.fraud_score))
        if result.pending is not None:
            pending.append((record, result.pending))
        if result.seller_record is not None:
            fx.seller_records.append(result.seller_record)

    def _decide(
        self, pending: list[tuple[Record, PendingFraud]], model: Model, fx: Effects
    ) -> None:
        """One model call (in chunks of ``model_batch``) for the batch's decision events,
        decided in event order; their seller records follow, purchases with their score."""
        decisions = [p for _, p in pending]
        scores, found = decide_all(
            decisions,
            model,
            model.thresholds["fraud"],
            self.cfg.fraud_cooldown_ms,
            self.cfg.rules,
            self.model_batch,
        )
        for (record, p), score, detections in zip(pending, scores["fraud"], found, strict=True):
            fx.alerts.extend((record, user_evidence(d, p.window)) for d in detections)
            row = p.trigger
            fx.scores.append(
                ScoreRow("fraud", "user", p.user_id, p.seller_id, row[EID], row[TS], score)
            )
        fx.seller_records.extend(scored_seller_records(decisions, scores))

    def _churn(
        self,
        record: Record | None,
        partition: int,
        tick: int,
        states: States[UserState],
        model: Model | None,
        fx: Effects,
    ) -> None:
        """The partition's event-time clock passed ``tick``: score every user it holds."""
        users = [(key.decode(), states.get(partition, key)) for key in states.keys_in(partition)]
        allowance = self.budget.allowance(partition, len(users))
        for v in churn_verdicts(users, tick, self.churn, model, self.model_batch, allowance):
            last = v.state.events[-1]
            fx.scores.append(
                ScoreRow("churn", "user", v.user_id, None, last[EID], tick, v.score, v.state.visits)
            )
            if v.detection is not None:
                det = user_evidence(v.detection, v.state.events)
                fx.alerts.append((record or Record(None, b"", partition, -1), det))
                states.changed(partition, v.user_id.encode())


def _fraud_row(event: Event, score: float) -> ScoreRow:
    return ScoreRow(
        "fraud", "user", event.user_id, event.seller_id, event.event_id, event.ts, score
    )


class MemoryStates(Generic[S]):
    """States held in a dict, for the backtest and for tests: the pipeline runs unchanged
    over in-memory records and sinks."""

    def __init__(self, new: Any) -> None:
        self.new = new
        self.by_partition: dict[int, dict[bytes, S]] = {}

    def get(self, partition: int, key: bytes) -> S:
        table = self.by_partition.setdefault(partition, {})
        state = table.get(key)
        if state is None:
            state = table[key] = self.new()
        return state

    def changed(self, partition: int, key: bytes) -> None:
        pass  # the dict holds the live objects

    def keys_in(self, partition: int) -> list[bytes]:
        return list(self.by_partition.get(partition, {}))

    def __len__(self) -> int:
        return sum(len(t) for t in self.by_partition.values())
