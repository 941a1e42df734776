"""``fraudstream replay``: produce a JSON Lines file into Kafka in event-time order.

Each line goes out unchanged as the message value, keyed by its ``user_id``. A file that is
not sorted by ``ts`` is sorted first: in memory up to ``sort_chunk_lines`` lines, beyond
that as an external merge sort over temporary run files. Lines that are not events (bad JSON,
no usable ``ts``) are still produced, right after the line before them, so that a replay can
exercise the dead-letter path; they are counted as ``invalid``.
"""

from __future__ import annotations

import argparse
import heapq
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any, cast

import orjson
from confluent_kafka import KafkaError, KafkaException, Producer

from stream.core.cliutil import CommandError, add_option
from stream.core.timeutil import parse_ts
from stream.runtime.preflight import missing_topics, probe_broker
from stream.runtime.settings import Settings
from stream.runtime.topics import EVENTS, ensure_topics

DEFAULT_BROKER = "127.0.0.1:9092"
DEFAULT_TOPIC = EVENTS
DEFAULT_PARTITIONS = Settings.model_fields["partitions"].default  # as the worker creates it
SORT_CHUNK_LINES = 500_000  # about 200 MB of 300-byte events held while sorting
# (event time in ms, position in the file, Kafka key, line as read)
Record = tuple[int, int, bytes | None, bytes]


@dataclass(frozen=True)
class ReplayStats:
    events: int  # lines handed to Kafka and not reported failed
    seconds: float
    events_per_s: float
    errors: int  # delivery failures
    invalid: int  # lines produced although they are not valid events
    sorted_input: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class _TsParser:
    """Epoch ms from ``ts``; the common ``...:SS.mmmZ`` form skips the full parser because
    consecutive events share their date-time prefix."""

    def __init__(self) -> None:
        self._prefix = ""
        self._base = 0

    def __call__(self, value: object) -> int | None:
        if isinstance(value, str) and len(value) == 24 and value[19] == "." and value[23] == "Z":
            prefix = value[:17]  # down to the minute
            if prefix != self._prefix:
                try:
                    self._base = parse_ts(prefix + "00.000Z")
                except ValueError:
                    return None
                self._prefix = prefix
            seconds, millis = value[17:19], value[20:23]
            if seconds.isdigit() and millis.isdigit():
                return self._base + int(seconds) * 1000 + int(millis)
        try:
            return parse_ts(value)
        except ValueError:
            return None


_HEAD = b'{"event_id":"'
_TS = b'","ts":"'
_USER = b'","user_id":"'


def _records(lines: Iterable[bytes]) -> Iterator[Record]:
    """Parse key and event time of each non-blank line, in file order."""
    parse_ts_fast = _TsParser()
    last_ts = 0
    for index, raw in enumerate(lines):
        line = raw.rstrip(b"\r\n")
        if not line.strip():
            continue
        ts_text, key = _fast_fields(line)
        if ts_text is None:
            ts_value, key = _slow_fields(line)
            ts = parse_ts_fast(ts_value)
        else:
            ts = parse_ts_fast(ts_text)
        if ts is None:
            ts = -1 - last_ts  # marks the line invalid; keeps its place after its neighbour
        else:
            last_ts = ts
        yield ts, index, key, line


def _fast_fields(line: bytes) -> tuple[str | None, bytes | None]:
    """``ts`` and ``user_id`` of a line that starts the way the simulator writes events
    (event_id, ts, user_id; no escapes): string slicing instead of a JSON parse."""
    if not line.startswith(_HEAD):
        return None, None
    ts_at = line.find(_TS, 13, 150)
    if ts_at < 0 or line[ts_at + 32 : ts_at + 45] != _USER:
        return None, None
    end = line.find(b'"', ts_at + 45, ts_at + 45 + 129)
    if end < 0 or b"\\" in line[:end]:
        return None, None
    return line[ts_at + 8 : ts_at + 32].decode(), line[ts_at + 45 : end]


def _slow_fields(line: bytes) -> tuple[object, bytes | None]:
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None, None
    if not isinstance(obj, dict):
        return None, None
    user = obj.get("user_id")
    return obj.get("ts"), user.encode() if isinstance(user, str) else None


def _is_sorted(path: Path) -> bool:
    """Whether the file is in ``ts`` order. Lines as the simulator writes them carry
    fixed-width UTC times, which compare correctly as bytes; any other line switches to the
    parsing check."""
    last = b""
    with open(path, "rb") as f:
        for line in f:
            at = line.find(_TS, 13, 150)
            if (
                at < 0
                or not line.startswith(_HEAD)
                or len(line) < at + 45
                or line[at + 27] != 0x2E
                or line[at + 31] != 0x5A
            ):  # '.' and 'Z'
                return _is_sorted_parsed(path)
            ts = line[at + 8 : at + 32]
            if ts < last:
                return False
            last = ts
    return True


def _is_sorted_parsed(path: Path) -> bool:
    last = -1
    with open(path, "rb") as f:
        for ts, _, _, _ in _records(f):
            ts = ts if ts >= 0 else -1 - ts
            if ts < last:
                return False
            last = ts
    return True


def _sort_key(record: Record) -> tuple[int, int]:
    ts = record[0]
    return (ts if ts >= 0 else -1 - ts, record[1])


def _sorted_records(path: Path, chunk_lines: int, tmpdir: str) -> Iterator[Record]:
    """Sorted runs of ``chunk_lines`` lines, spilled to disk when there is more than one run,
    merged by (ts, position) so that equal times keep file order."""
    runs: list[Path] = []
    with open(path, "rb") as f:
        chunk: list[Record] = []
        for record in _records(f):
            chunk.append(record)
            if len(chunk) >= chunk_lines:
                runs.append(_spill(sorted(chunk, key=_sort_key), tmpdir, len(runs)))
                chunk = []
    if not runs:
        yield from sorted(chunk, key=_sort_key)
        return
    if chunk:
        runs.append(_spill(sorted(chunk, key=_sort_key), tmpdir, len(runs)))
    handles = [open(run, "rb") for run in runs]  # noqa: SIM115 - closed below
    try:
        yield from heapq.merge(*(_read_run(h) for h in handles), key=_sort_key)
    finally:
        for handle in handles:
            handle.close()


def _spill(records: list[Record], tmpdir: str, n: int) -> Path:
    run = Path(tmpdir) / f"run-{n:05d}.bin"
    with open(run, "wb", buffering=1 << 20) as f:
        for ts, index, key, line in records:
            f.write(orjson.dumps([ts, index, key.decode() if key is not None else None]))
            f.write(b"\n")
            f.write(line)
            f.write(b"\n")
    return run


def _read_run(handle: IO[bytes]) -> Iterator[Record]:
    for header in handle:
        ts, index, key = orjson.loads(header)
        line = handle.readline().rstrip(b"\n")
        yield ts, index, key.encode() if key is not None else None, line


class _Progress:
    def __init__(self, out: IO[str] | None) -> None:
        self.out = out
        self.started = time.perf_counter()
        self.next_at = self.started + 1.0

    def maybe(self, events: int, errors: int) -> None:
        now = time.perf_counter()
        if self.out is None or now < self.next_at:
            return
        self.next_at = now + 1.0
        rate = events / (now - self.started)
        print(f"replay: {events} events, {rate:,.0f}/s, {errors} errors", file=self.out, flush=True)


def _producer_config(broker: str, paced: bool) -> dict[str, Any]:
    return {
        "bootstrap.servers": broker,
        # The Java client's partitioner, as Faust and the worker's own producer use: every
        # producer of `events` must agree, or one user's state splits across partitions.
        "partitioner": "murmur2_random",
        "enable.idempotence": True,  # no duplicates or reordering on retries
        "acks": "all",
        "compression.type": "lz4",
        # Paced replays keep latency low; --max favours big batches.
        "linger.ms": 2 if paced else 25,
        "batch.size": 1_000_000,
        "batch.num.messages": 100_000,
        "queue.buffering.max.messages": 1_000_000,
        "queue.buffering.max.kbytes": 1_048_576,
        "delivery.report.only.error": True,
        "message.timeout.ms": 120_000,
    }


def iter_in_time_order(
    path: Path, tmpdir: str, sort_chunk_lines: int = SORT_CHUNK_LINES
) -> Iterator[Record]:
    """The file's non-blank lines in event-time order (file order among equal times);
    lines without a usable ``ts`` follow the line before them, with a negative time."""
    if _is_sorted(path):
        with open(path, "rb") as f:
            yield from _records(f)
    else:
        yield from _sorted_records(path, sort_chunk_lines, tmpdir)


def replay_file(
    path: Path | str,
    broker: str = DEFAULT_BROKER,
    topic: str = DEFAULT_TOPIC,
    speed: float | None = None,
    *,
    progress: IO[str] | None = None,
    sort_chunk_lines: int = SORT_CHUNK_LINES,
    create_partitions: int | None = None,
) -> ReplayStats:
    """Produce every line of ``path`` to ``topic`` in event-time order.

    ``speed=None`` sends as fast as possible; ``speed=X`` keeps the gaps between events,
    divided by X. A missing topic is created with ``create_partitions`` partitions when that
    is given. Raises ``CommandError`` when the file, the broker or the topic is unusable
    (``Unavailable`` when no broker answers).
    """
    path = Path(path)
    if not path.is_file():
        raise CommandError(f"{path}: no such file")
    if speed is not None and speed <= 0:
        raise CommandError("--speed must be positive")
    errors = [0]

    def on_delivery(err: KafkaError | None, _msg: Any) -> None:
        if err is not None:
            errors[0] += 1

    # Security (SASL, TLS) from the FRAUDSTREAM_* environment, as the worker reads it.
    security = Settings().kafka_client_config()
    _require_topic(broker, topic, security, create_partitions)
    config = {**_producer_config(broker, speed is not None), **security, "on_delivery": on_delivery}
    producer = Producer(config)
    started = time.perf_counter()
    sorted_input = _is_sorted(path)
    with tempfile.TemporaryDirectory(prefix="fraudstream-replay-") as tmpdir:
        if sorted_input:
            with open(path, "rb") as f:
                sent, invalid = _produce(producer, topic, _records(f), speed, errors, progress)
        else:
            records = _sorted_records(path, sort_chunk_lines, tmpdir)
            sent, invalid = _produce(producer, topic, records, speed, errors, progress)
    # Every message is delivered or failed within message.timeout.ms; whatever is still
    # queued after that counts as an error too.
    left = producer.flush(130.0)
    seconds = time.perf_counter() - started
    failed = errors[0] + left
    delivered = sent - failed
    return ReplayStats(
        delivered,
        round(seconds, 3),
        round(delivered / seconds, 1) if seconds > 0 else 0.0,
        failed,
        invalid,
        sorted_input,
    )


def _require_topic(
    broker: str, topic: str, security: dict[str, str], create_partitions: int | None
) -> None:
    """Without this check every message would wait out message.timeout.ms, then fail."""
    metadata = probe_broker(broker, security)
    if not missing_topics(metadata, [topic]):
        return
    if create_partitions is None:
        raise CommandError(
            f"topic {topic!r} does not exist on {broker}: {_create_hint(broker, topic)}"
        )
    try:
        ensure_topics(broker, [topic], create_partitions, client_config=security)
    except (RuntimeError, KafkaException) as exc:
        raise CommandError(f"--create-topic {topic!r} on {broker}: {exc}") from None


def _create_hint(broker: str, topic: str) -> str:
    if not topic.endswith(EVENTS):
        return "check --topic, or pass --create-topic"
    prefix = topic.removesuffix(EVENTS)
    worker = f"fraudstream worker --broker {broker}" + (
        f" --topic-prefix {prefix}" if prefix else ""
    )
    return (
        f"start a worker (`{worker}`), which creates the contract's topics, or pass --create-topic"
    )


def _produce(
    producer: Producer,
    topic: str,
    records: Iterable[Record],
    speed: float | None,
    errors: list[int],
    progress: IO[str] | None,
) -> tuple[int, int]:
    meter = _Progress(progress)
    produce, poll = producer.produce, producer.poll
    sent = invalid = 0
    first_ts = -1
    wall0 = time.perf_counter()
    for ts, _, key, line in records:
        if ts < 0:
            invalid += 1
            ts = -1 - ts
        if speed is not None:
            first_ts = ts if first_ts < 0 else first_ts
            _wait_until(producer, wall0 + (ts - first_ts) / 1000.0 / speed)
        while True:
            try:
                produce(topic, line, key)
                break
            except BufferError:
                poll(0.05)  # the local queue is full: let deliveries drain it
        sent += 1
        if sent % 1000 == 0 or speed is not None:
            poll(0)
            meter.maybe(sent, errors[0])
    return sent, invalid


def _wait_until(producer: Producer, target: float) -> None:
    while (delay := target - time.perf_counter()) > 0:
        producer.poll(min(delay, 0.1))


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "replay",
        help="produce a JSON Lines file into Kafka in event-time order",
        description="Produce each line of a JSON Lines event file into Kafka, keyed by "
        "user_id, in ts order (sorting the file first when needed). Prints "
        "progress to stderr and a JSON summary to stdout.",
    )
    parser.add_argument("file", type=Path, help="events file (JSON Lines)")
    add_option(parser, "--broker", default=DEFAULT_BROKER, help="Kafka bootstrap HOST:PORT")
    add_option(parser, "--topic", default=DEFAULT_TOPIC, help="topic to produce to")
    # add_option only calls add_argument, which the group provides.
    pace = cast(argparse.ArgumentParser, parser.add_mutually_exclusive_group())
    add_option(
        pace,
        "--speed",
        type=float,
        default=None,
        help="keep event-time gaps, divided by X (2 = twice real time)",
    )
    add_option(
        pace,
        "--max",
        action="store_true",
        default=False,
        help="as fast as possible (the default when --speed is not given)",
    )
    add_option(
        parser,
        "--create-topic",
        action="store_true",
        default=False,
        help="create the topic if it does not exist (with --partitions partitions)",
    )
    add_option(
        parser,
        "--partitions",
        type=int,
        default=DEFAULT_PARTITIONS,
        help="partitions of a topic --create-topic creates (the worker's default)",
    )
    add_option(
        parser,
        "--sort-chunk-lines",
        type=int,
        default=SORT_CHUNK_LINES,
        help="lines sorted in memory at a time when the file is not in ts order",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    speed = None if args.max else args.speed
    if args.sort_chunk_lines < 1:
        raise CommandError("--sort-chunk-lines must be at least 1")
    if args.partitions < 1:
        raise CommandError("--partitions must be at least 1")
    stats = replay_file(
        args.file,
        args.broker,
        args.topic,
        speed,
        progress=sys.stderr,
        sort_chunk_lines=args.sort_chunk_lines,
        create_partitions=args.partitions if args.create_topic else None,
    )
    summary = {
        "events": stats.events,
        "seconds": stats.seconds,
        "events_per_s": stats.events_per_s,
        "errors": stats.errors,
        "invalid": stats.invalid,
        "sorted_input": stats.sorted_input,
    }
    print(orjson.dumps(summary).decode(), flush=True)
    return 1 if stats.errors else 0
