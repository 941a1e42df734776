"""Analyst verdicts on the ``feedback`` topic (docs/contract.md, Additions), validated.

A verdict names what it is about (an alert, an event, a user or a seller: at least one),
the detection kind, whether the analyst confirmed it or found a false positive, who and
when. Confirmed verdicts become labels (the labels file format of the contract, section
4) for ``fraudstream retrain``; false positives take labels away.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated, Any, Final, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from stream.core.schema import MAX_MESSAGE_BYTES, Rejected
from stream.core.timeutil import format_ts, parse_ts

Kind = Literal["fraud", "brushing", "churn"]
Verdict = Literal["confirmed", "false_positive"]
VERDICTS: Final = ("confirmed", "false_positive")
Id = Annotated[str | None, Field(default=None, min_length=1, max_length=128)]
SUBJECTS: Final = ("alert_id", "event_id", "user_id", "seller_id")


class Feedback(BaseModel):
    """One verdict; ``at`` is normalised to epoch milliseconds."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)

    kind: Kind
    verdict: Verdict
    analyst: Annotated[str, Field(min_length=1, max_length=128)]
    at: int
    alert_id: Id = None
    event_id: Id = None
    user_id: Id = None
    seller_id: Id = None
    feedback_id: Id = None
    note: Annotated[str | None, Field(default=None, max_length=1024)] = None

    @field_validator("at", mode="before")
    @classmethod
    def _at(cls, value: object) -> int:
        return parse_ts(value)

    @model_validator(mode="after")
    def _about_something(self) -> Feedback:
        if all(getattr(self, name) is None for name in SUBJECTS):
            raise ValueError(f"names no subject: give one of {', '.join(SUBJECTS)}")
        return self

    @property
    def id(self) -> str:
        """The given ``feedback_id``, else one derived from the content: a redelivered
        verdict keeps its id, so keeping verdicts by id is idempotent."""
        if self.feedback_id is not None:
            return self.feedback_id
        return (
            "fb-"
            + hashlib.sha256(orjson.dumps(self.wire(), option=orjson.OPT_SORT_KEYS)).hexdigest()[
                :24
            ]
        )

    def wire(self) -> dict[str, Any]:
        out = self.model_dump(exclude_none=True)
        out["at"] = format_ts(self.at)
        return out

    def subject_key(self) -> bytes:
        """The Kafka key: the alert, else the event, user or seller it is about."""
        subject: str = next(v for n in SUBJECTS if (v := getattr(self, n)) is not None)
        return subject.encode()


def parse_feedback(raw: bytes | None) -> Feedback:
    """Validate one ``feedback`` message; raise ``Rejected`` naming the offending field."""
    if raw is None:
        raise Rejected("empty", "value: message has no value (tombstone)")
    if len(raw) > MAX_MESSAGE_BYTES:
        raise Rejected(
            "oversize", f"value: message of {len(raw)} bytes exceeds {MAX_MESSAGE_BYTES}"
        )
    try:
        return Feedback.model_validate_json(raw)
    except ValidationError as exc:
        raise _rejection(exc) from None


def _rejection(exc: ValidationError) -> Rejected:
    first = exc.errors(include_url=False)[0]
    if first["type"] == "json_invalid":
        return Rejected("invalid_json", f"value: invalid JSON: {first['msg']}")
    if first["type"] in ("model_type", "model_attributes_type"):
        return Rejected("not_object", "value: must be a JSON object")
    loc = ".".join(str(p) for p in first["loc"])
    msg = str(first["msg"]).removeprefix("Value error, ")
    if not loc:
        return Rejected("invalid_field", f"value: {msg}")
    if first["type"] == "missing":
        return Rejected("missing_field", f"field '{loc}': required field is missing")
    return Rejected("invalid_field", f"field '{loc}': {msg}")


def apply_to_labels(labels: list[dict[str, Any]], verdicts: list[Feedback]) -> list[dict[str, Any]]:
    """Labels (contract section 4) with the verdicts applied, latest verdict per subject
    winning: a confirmed fraud or brushing event, or brushing seller, adds a label; a false
    positive removes it. Churn verdicts name no last-activity time and add nothing."""
    keyed = {_label_key(label): label for label in labels}
    for fb in sorted(verdicts, key=lambda f: f.at):
        for label in _labels_of(fb):
            if fb.verdict == "confirmed":
                keyed[_label_key(label)] = label
            else:
                keyed.pop(_label_key(label), None)
    return list(keyed.values())


def _labels_of(fb: Feedback) -> list[dict[str, Any]]:
    if fb.kind == "churn":
        return []
    if fb.event_id is not None:
        return [{"kind": fb.kind, "event_id": fb.event_id}]
    if fb.kind == "brushing" and fb.seller_id is not None:
        return [{"kind": "brushing", "seller_id": fb.seller_id}]
    return []


def _label_key(label: dict[str, Any]) -> tuple[Any, ...]:
    return (label.get("kind"), label.get("event_id"), label.get("seller_id"), label.get("user_id"))


def read_feedback(path: Path) -> list[Feedback]:
    """A kept feedback file (``<data_dir>/feedback.jsonl``), one verdict per id."""
    return read_verdicts(path, skip_invalid=False)[0]


def read_verdicts(path: Path, skip_invalid: bool) -> tuple[list[Feedback], int]:
    """Verdicts one per line, one kept per id, and how many lines were skipped as invalid.

    A kept file holds only valid verdicts, so a bad line there is an error naming the
    line. A copy of the ``feedback`` topic (``skip_invalid``) also holds what the worker
    dead-lettered; those are skipped and counted."""
    kept: dict[str, Feedback] = {}
    skipped = 0
    with open(path, "rb") as lines:
        for n, line in enumerate(lines, 1):
            if not line.strip():
                skipped += skip_invalid  # a value holding a newline, copied as an empty line
                continue
            try:
                fb = parse_feedback(line.rstrip(b"\n"))
            except Rejected as exc:
                if skip_invalid:
                    skipped += 1
                    continue
                raise ValueError(f"{path}:{n}: {exc.message}") from None
            kept[fb.id] = fb
    return list(kept.values()), skipped
