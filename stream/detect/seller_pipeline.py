"""The seller side of the one pipeline, and the internal seller topic's wire format.

Seller records (a purchase or review, enriched by the user side) and watermarks (how far
an input partition's event time has got) arrive on ``events.by_seller``. They wait in a
reorder buffer per seller partition (``stream.detect.reorder``) and are decided in
event-time order once every input partition's watermark has passed them, or after a
bounded wait, so brushing verdicts do not depend on arrival order. Every record is checked
before it is buffered: a malformed one is one dead letter, never an exception later.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import orjson

from stream.core.errors import Action, as_rejection, decide
from stream.core.explain import seller_evidence
from stream.core.schema import Rejected
from stream.core.state import (
    S_AMOUNT,
    S_BROWSED,
    S_BUYER_AGE,
    S_BUYER_EVENTS,
    S_DEVICE,
    S_EID,
    S_IP,
    S_ITEM,
    S_KIND,
    S_MODEL,
    S_ORDER,
    S_RATING,
    S_TS,
    S_USER,
    Row,
    SellerState,
)
from stream.core.timeutil import MAX_EPOCH_MS
from stream.detect.pipeline import Effects, Model, Record, ScoreRow, States, model_version
from stream.detect.processor import DetectorConfig, apply_seller_record
from stream.detect.reorder import ReorderBuffer

# The internal seller topic's values: a seller record (a JSON array) or a watermark.
_WATERMARK = b'{"watermark"'


def encode_seller_record(row: Row) -> bytes:
    return orjson.dumps(row)


def encode_watermark(partition: int, ts: int) -> bytes:
    """That input partition has been processed up to event time ``ts``."""
    return orjson.dumps({"watermark": ts, "partition": partition})


def _is_ts(v: object) -> bool:
    return type(v) is int and 0 <= v <= MAX_EPOCH_MS


def _is_number(v: object) -> bool:
    return type(v) in (int, float)


def _is_text(v: object) -> bool:
    return v is None or type(v) is str


# What each position of a seller record must hold for the detectors to use it
# (stream.detect.processor writes them; rules compare, subtract and hash these).
_SELLER_CHECKS: tuple[tuple[int, str, Callable[[object], bool]], ...] = (
    (S_TS, "ts", _is_ts),
    (S_EID, "event_id", lambda v: type(v) is str),
    (S_USER, "user_id", lambda v: type(v) is str),
    (S_KIND, "kind", lambda v: v in ("purchase", "review")),
    (S_AMOUNT, "amount", lambda v: v is None or _is_number(v)),
    (S_RATING, "rating", lambda v: v is None or type(v) is int),
    (S_BROWSED, "browsed", lambda v: v in (0, 1)),
    (S_BUYER_AGE, "buyer_age", _is_number),
    (S_BUYER_EVENTS, "buyer_events", lambda v: type(v) is int),
    (S_DEVICE, "device_id", _is_text),
    (S_IP, "ip", _is_text),
    (S_ORDER, "order_id", _is_text),
    (S_ITEM, "item_id", _is_text),
    (S_MODEL, "model_score", lambda v: v is None or _is_number(v)),
)


def _seller_row(record: Record) -> Row:
    """The record's row, each position checked: a malformed record on the seller topic is
    one dead letter here rather than an exception when the buffer releases it, which would
    fail the decisions of every record released with it."""
    if record.key is not None:
        try:
            record.key.decode()
        except UnicodeDecodeError as exc:
            raise Rejected(
                "bad_seller_record", f"key: not valid UTF-8 at byte {exc.start}"
            ) from None
    try:
        row = orjson.loads(record.value)
    except orjson.JSONDecodeError as exc:
        raise Rejected("bad_seller_record", f"value: invalid JSON: {exc}") from None
    if not isinstance(row, list) or len(row) <= S_ORDER:
        raise Rejected(
            "bad_seller_record", f"value: not a seller record (an array of {S_ORDER + 1}+ items)"
        )
    for pos, name, valid in _SELLER_CHECKS:
        if pos < len(row) and not valid(row[pos]):
            shown = repr(row[pos])[:64]
            raise Rejected(
                "bad_seller_record", f"value: seller record item {pos} ({name}) is invalid: {shown}"
            )
    return tuple(row)


def _watermark(value: bytes, sources: int) -> tuple[int, int]:
    """(input partition, event time) of a watermark record, or a dead letter."""
    try:
        mark = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise Rejected("bad_watermark", f"value: invalid JSON: {exc}") from None
    source, ts = mark.get("partition"), mark.get("watermark")
    if type(source) is not int or not 0 <= source < sources or not _is_ts(ts):
        raise Rejected(
            "bad_watermark",
            f"value: a watermark needs 'partition' in 0..{sources - 1} and 'watermark' in epoch ms",
        )
    return source, ts


class SellerPipeline:
    def __init__(self, cfg: DetectorConfig, sources: int, wait_ms: int) -> None:
        """``sources``: how many input partitions send watermarks; ``wait_ms``: the longest a
        seller record waits for them (a quiet input partition delays brushing by that)."""
        self.cfg, self.sources, self.wait_ms = cfg, sources, wait_ms
        self.buffers: dict[int, ReorderBuffer[Record]] = {}

    def forget(self, partitions: Iterable[int]) -> list[Record]:
        """Drop the buffers of partitions no longer ours; returns the records dropped (they
        were never decided, so their offsets were never committed either)."""
        dropped: list[Record] = []
        for partition in partitions:
            buffer = self.buffers.pop(partition, None)
            if buffer is not None:
                dropped += buffer.drain()
        return dropped

    def waiting(self) -> int:
        return sum(len(b) for b in self.buffers.values())

    def run(
        self,
        records: Sequence[Record],
        states: States[SellerState],
        model: Model | None,
        now_ms: int,
        flush: bool = False,
    ) -> Effects:
        """Buffer ``records``; decide, in event-time order, those the watermarks (or the
        bounded wait, or ``flush``) release. ``now_ms`` is a monotonic clock in ms."""
        fx = Effects(model_version(model))
        for record in records:
            try:
                if not self._buffer(record, now_ms):
                    fx.handled.append(record)  # a watermark: nothing more to do with it
            except Exception as exc:
                if decide(exc) is Action.CRASH:
                    raise
                fx.dead_letters.append((record, as_rejection(exc)))
                fx.handled.append(record)
        threshold = model.threshold("brushing") if model is not None else None
        for partition, buffer in self.buffers.items():
            for record in buffer.release(now_ms, flush):
                self._decide(record, partition, states, threshold, fx)
        return fx

    def _buffer(self, record: Record, now_ms: int) -> bool:
        """Hold a seller record back (True), or take in a watermark (False)."""
        buffer = self.buffers.get(record.partition)
        if buffer is None:
            buffer = self.buffers[record.partition] = ReorderBuffer(self.sources, self.wait_ms)
        if record.value.startswith(_WATERMARK):
            source, ts = _watermark(record.value, self.sources)
            buffer.advance(source, ts)
            return False
        row = _seller_row(record)
        buffer.add(row[S_TS], row[S_EID], record, now_ms)
        return True

    def _decide(
        self,
        record: Record,
        partition: int,
        states: States[SellerState],
        threshold: float | None,
        fx: Effects,
    ) -> None:
        fx.handled.append(record)
        key = record.key or b""
        seller_id = key.decode()
        # A tuple of atoms, as _seller_row made it: the collector stops tracking it, where a
        # list kept each of a seller's up to 500 orders in every full collection's walk.
        row = tuple(orjson.loads(record.value))
        state = states.get(partition, key)
        result = apply_seller_record(state, seller_id, row, self.cfg, threshold)
        if result.outcome != "added":
            fx.duplicates += 1
            return
        fx.added += 1
        states.changed(partition, key)
        fx.alerts.extend((record, seller_evidence(d, state.orders)) for d in result.detections)
        if result.order_score is not None and result.seller_score is not None:
            eid, ts = row[S_EID], row[S_TS]
            fx.scores.append(
                ScoreRow("brushing", "user", row[S_USER], seller_id, eid, ts, result.order_score)
            )
            fx.scores.append(
                ScoreRow("brushing", "seller", seller_id, seller_id, eid, ts, result.seller_score)
            )
