"""A bounded soak: one worker at a fixed rate for a fixed time, its memory and state sampled.

Live traffic (``LiveTraffic``, stamped with the wall clock) flows into a fresh worker at
``--rate`` events/s for ``--minutes``, from a fixed population: ``--users`` shoppers and a
pool of farm accounts for the brushing bursts, so that every user's window fills and then
stays full (bounded by ``FRAUDSTREAM_MAX_EVENTS`` and ``FRAUDSTREAM_MAX_AGE_HOURS``). New
accounts would add state until they age out, 30 days of event time later, which no soak
of minutes can show.

Every ``--interval`` seconds it samples: events sent and consumed, the consumer lag, the
worker's resident memory (VmRSS), the exact keys and value bytes of the worker's tables
and the size of their RocksDB write buffers (``/tables``), RocksDB's own key estimate
(``fraudstream_table_keys``), and the bytes of the worker's data directory on disk (SST
files, write-ahead logs, RocksDB's own files). The
summary compares the growth over the first third of the run with that over the last
third: state that is bounded grows in the first and hardly at all in the last.

Run: ``python -m stream.local.soak --broker B --minutes M --rate R [--model DIR]
[--users N] [--max-events K] [--out CSV]``
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import orjson
from confluent_kafka import Producer

from stream.local.traffic import LiveTraffic
from stream.local.workerproc import WorkerFailed, WorkerProcess

PARTITIONS = 8
MIB = 1024 * 1024
# A window counts as full once the users' state reaches this share of its final size.
FILLED_SHARE = 0.95


@dataclass(frozen=True)
class SoakConfig:
    bootstrap: str
    minutes: float
    rate: float
    model: Path | None = None
    users: int = 300
    sellers: int = 40
    farm_accounts: int = 20
    max_events: int | None = None  # the worker's FRAUDSTREAM_MAX_EVENTS (default 128)
    max_age_hours: float | None = None  # FRAUDSTREAM_MAX_AGE_HOURS (default 720)
    interval_s: float = 5.0
    seed: int = 21
    drain_timeout_s: float = 120.0

    def worker_env(self) -> dict[str, str]:
        env = {}
        if self.max_events is not None:
            env["FRAUDSTREAM_MAX_EVENTS"] = str(self.max_events)
        if self.max_age_hours is not None:
            env["FRAUDSTREAM_MAX_AGE_HOURS"] = str(self.max_age_hours)
        return env


@dataclass(frozen=True)
class Sample:
    t_s: float
    sent: int
    consumed: int
    lag: int  # fraudstream_consumer_lag over all partitions (refreshed every 5 s)
    rss_bytes: int
    user_keys: int
    user_bytes: int
    seller_keys: int
    seller_bytes: int
    keys_estimate: int  # fraudstream_table_keys of both tables: RocksDB's estimate
    memtable_bytes: int  # RocksDB's write buffers of both tables
    disk_bytes: int
    sst_bytes: int


@dataclass(frozen=True)
class Growth:
    """One quantity at the start, once the windows are full, and at the end; and how much
    it grew over the first and over the last third of the run."""

    name: str
    start: float
    filled: float
    end: float
    first_third: float
    last_third: float

    @property
    def ratio(self) -> float | None:
        """Last third's growth over the first's: near 0 when it flattened, near 1 when not."""
        return self.last_third / self.first_third if self.first_third > 0 else None


@dataclass(frozen=True)
class SoakResult:
    config: SoakConfig
    samples: list[Sample]  # while producing, the first at 0 s, the last at the end
    drained: Sample  # once the worker consumed everything sent
    drain_s: float

    @property
    def duration_s(self) -> float:
        return self.samples[-1].t_s

    @property
    def filled_at_s(self) -> float:
        """When the users' state first reached ``FILLED_SHARE`` of its size in the last
        third: the windows are full from then on."""
        final = statistics.median(s.user_bytes for s in self.last_third())
        return next(s.t_s for s in self.samples if s.user_bytes >= FILLED_SHARE * final)

    def last_third(self) -> list[Sample]:
        return [s for s in self.samples if s.t_s >= 2 * self.duration_s / 3]

    def at(self, t_s: float) -> Sample:
        return min(self.samples, key=lambda s: abs(s.t_s - t_s))

    def growth(self, name: str) -> Growth:
        def value(t_s: float) -> float:
            return float(getattr(self.at(t_s), name))

        end = self.duration_s
        return Growth(
            name,
            start=value(0),
            filled=value(self.filled_at_s),
            end=value(end),
            first_third=value(end / 3) - value(0),
            last_third=value(end) - value(2 * end / 3),
        )

    def max_lag_last_third(self) -> int:
        return max(s.lag for s in self.last_third())


def rss_bytes(pid: int) -> int:
    """Resident memory of a process (VmRSS), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def disk_bytes(root: Path, skip: Path) -> tuple[int, int]:
    """Bytes of all files under ``root`` but ``skip`` (the worker's log), and of SST files."""
    total = sst = 0
    for path in root.rglob("*"):
        try:
            if path == skip or not path.is_file():
                continue
            size = path.stat().st_size
        except OSError:  # RocksDB removed it (a compaction) while we looked
            continue
        total += size
        if path.suffix == ".sst":
            sst += size
    return total, sst


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text as ``{series: value}``, with each name's total under the bare name."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        series, value = line.rsplit(" ", 1)
        out[series] = float(value)
        name = series.split("{", 1)[0]
        if name != series:
            out[name] = out.get(name, 0.0) + float(value)
    return out


def take_sample(worker: WorkerProcess, t_s: float, sent: int) -> Sample:
    if worker.proc is None or not worker.running():
        raise WorkerFailed(f"the worker exited during the soak:\n{worker.log_tail()}")
    metrics = parse_metrics(str(worker.get("/metrics")[1]))
    tables = worker.get("/tables")[1]
    disk, sst = disk_bytes(worker.data_dir, worker.log_path)
    return Sample(
        t_s=round(t_s, 1),
        sent=sent,
        consumed=int(metrics.get("fraudstream_events_consumed_total", 0)),
        lag=int(metrics.get("fraudstream_consumer_lag", 0)),
        rss_bytes=rss_bytes(worker.proc.pid),
        user_keys=tables["users"]["keys"],
        user_bytes=tables["users"]["value_bytes"],
        seller_keys=tables["sellers"]["keys"],
        seller_bytes=tables["sellers"]["value_bytes"],
        keys_estimate=int(metrics.get("fraudstream_table_keys", 0)),
        memtable_bytes=sum(t["memtable_bytes"] for t in tables.values()),
        disk_bytes=disk,
        sst_bytes=sst,
    )


def _producer(bootstrap: str) -> Producer:
    # As the stream benchmark's latency run: batches of up to 5 ms, murmur2 like Faust.
    config = {"bootstrap.servers": bootstrap, "partitioner": "murmur2_random", "linger.ms": 5}
    return Producer(config)


def _send(producer: Producer, topic: str, event: dict[str, object]) -> None:
    key, value = str(event["user_id"]).encode(), orjson.dumps(event)
    while True:
        try:
            producer.produce(topic, key=key, value=value)
            return
        except BufferError:  # local queue full: let librdkafka deliver, then retry
            producer.poll(0.05)


def drive(
    worker: WorkerProcess, config: SoakConfig, on_sample: Callable[[Sample], None]
) -> tuple[list[Sample], int]:
    """Produce at the fixed rate for the configured time, sampling as it goes; return the
    samples and the number of events sent. A slow sample is caught up on, so the rate
    holds on average over any few seconds."""
    producer, topic = _producer(config.bootstrap), worker.topic("events")
    traffic: Iterator[dict[str, object]] = iter(
        LiveTraffic(config.users, config.sellers, config.seed, config.farm_accounts)
    )
    duration = config.minutes * 60
    samples: list[Sample] = []
    sent, start, next_sample = 0, time.monotonic(), 0.0
    while True:
        elapsed = time.monotonic() - start
        for _ in range(int(min(elapsed, duration) * config.rate) - sent):
            _send(producer, topic, next(traffic))
            sent += 1
        producer.poll(0)
        if elapsed >= next_sample or elapsed >= duration:
            samples.append(take_sample(worker, elapsed, sent))
            on_sample(samples[-1])
            if elapsed >= duration:
                break
            next_sample += config.interval_s
        time.sleep(0.01)
    producer.flush(60)
    return samples, sent


def drain(worker: WorkerProcess, sent: int, timeout_s: float) -> float:
    """Seconds until the worker has consumed every event sent."""
    start = time.monotonic()
    worker.wait_metric("fraudstream_events_consumed_total", sent, timeout_s)
    return time.monotonic() - start


def run_soak(
    config: SoakConfig, work: Path, on_sample: Callable[[Sample], None] = lambda s: None
) -> SoakResult:
    """Start a worker in ``work``, drive it, wait for it to drain, stop it."""
    worker = WorkerProcess(
        config.bootstrap,
        work / "worker",
        partitions=PARTITIONS,
        log_level="warn",
        model=config.model,
        env=config.worker_env(),
    )
    worker.start()
    try:
        samples, sent = drive(worker, config, on_sample)
        drain_s = drain(worker, sent, config.drain_timeout_s)
        drained = take_sample(worker, samples[-1].t_s + drain_s, sent)
    finally:
        worker.stop()
    return SoakResult(config, samples, drained, drain_s)


HEADER = (
    f"{'t_s':>6} {'sent':>8} {'consumed':>8} {'lag':>6} {'rss_mib':>8} {'user_keys':>9} "
    f"{'user_kib':>9} {'sell_keys':>9} {'sell_kib':>9} {'keys_est':>9} {'memtab_mib':>10} "
    f"{'disk_mib':>8} {'sst_mib':>8}"
)


def row(s: Sample) -> str:
    return (
        f"{s.t_s:6.0f} {s.sent:8d} {s.consumed:8d} {s.lag:6d} {s.rss_bytes / MIB:8.1f} "
        f"{s.user_keys:9d} {s.user_bytes / 1024:9.1f} {s.seller_keys:9d} "
        f"{s.seller_bytes / 1024:9.1f} {s.keys_estimate:9d} {s.memtable_bytes / MIB:10.1f} "
        f"{s.disk_bytes / MIB:8.1f} {s.sst_bytes / MIB:8.1f}"
    )


SUMMARY_FIELDS = (
    ("rss_bytes", MIB, "MiB"),
    ("user_bytes", 1024, "KiB"),
    ("user_keys", 1, "keys"),
    ("seller_bytes", 1024, "KiB"),
    ("keys_estimate", 1, "keys"),
    ("memtable_bytes", MIB, "MiB"),
    ("disk_bytes", MIB, "MiB"),
)


def summary(result: SoakResult) -> str:
    """The growth of each quantity over the first and the last third, as lines of text."""
    lines = [
        f"windows full at {result.filled_at_s:.0f} s of {result.duration_s:.0f} s; "
        f"drained {result.drain_s:.1f} s after the last event; "
        f"max lag in the last third {result.max_lag_last_third()}",
        f"{'':14} {'start':>10} {'full':>10} {'end':>10} {'1st third':>10} "
        f"{'last third':>10} {'ratio':>6}",
    ]
    for name, scale, unit in SUMMARY_FIELDS:
        g = result.growth(name)
        ratio = "-" if g.ratio is None else f"{g.ratio:.3f}"
        values = (g.start, g.filled, g.end, g.first_third, g.last_third)
        cells = " ".join(f"{v / scale:10.1f}" for v in values)
        lines.append(f"{name:14} {cells} {ratio:>6}  ({unit})")
    return "\n".join(lines)


def write_csv(result: SoakResult, path: Path) -> None:
    names = [f.name for f in fields(Sample)]
    with path.open("w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=names)
        writer.writeheader()
        for sample in [*result.samples, result.drained]:
            writer.writerow(asdict(sample))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stream.local.soak", description=__doc__)
    parser.add_argument("--broker", required=True, help="bootstrap HOST:PORT")
    parser.add_argument("--minutes", type=float, required=True, help="how long to produce")
    parser.add_argument("--rate", type=float, required=True, help="events/s")
    parser.add_argument("--model", type=Path, help="model bundle for the worker")
    parser.add_argument("--users", type=int, default=300, help="shoppers (default 300)")
    parser.add_argument("--sellers", type=int, default=40, help="sellers (default 40)")
    parser.add_argument("--farm-accounts", type=int, default=20, help="brushing accounts")
    parser.add_argument("--max-events", type=int, help="the worker's FRAUDSTREAM_MAX_EVENTS")
    parser.add_argument("--max-age-hours", type=float, help="FRAUDSTREAM_MAX_AGE_HOURS")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between samples")
    parser.add_argument("--out", type=Path, help="write the samples to this CSV file")
    args = parser.parse_args(argv)
    config = SoakConfig(
        args.broker, args.minutes, args.rate, args.model, args.users, args.sellers,
        args.farm_accounts, args.max_events, args.max_age_hours, args.interval,
    )  # fmt: skip
    print(HEADER, flush=True)
    with tempfile.TemporaryDirectory(prefix="fraudstream-soak-") as tmp:
        result = run_soak(config, Path(tmp), lambda s: print(row(s), flush=True))
    print(row(result.drained), "(drained)")
    print(summary(result))
    if args.out:
        write_csv(result, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
