"""``python -m stream.bench``: the worker beside a pass-through Faust agent and a bare
consumer loop, each configuration repeated and pinned; prints one JSON object.

Run: ``python -m stream.bench [--broker B] [--runs N] [--events N] [--rates R,R,R]
[--seconds S] [--model DIR | --rules-only] [--backend B] [--drivers aiokafka,confluent]
[--out FILE]``, or
``--gc-compare RUNS [--cpus C]`` for garbage-collection settling on and off.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from model.shipped import shipped_bundle
from stream.bench.gc_compare import gc_compare
from stream.bench.measure import PARTITIONS, emit
from stream.bench.suite import (
    DRIVERS,
    Pinning,
    Plan,
    cpu_set,
    default_pinning,
    legacy_keys,
    run_suite,
    summarise,
)
from stream.local import broker as local_broker

DEFAULT_RATES = "1000,3000,5000"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m stream.bench", description=__doc__)
    parser.add_argument("--broker", help="bootstrap HOST:PORT (default: start a local broker)")
    parser.add_argument("--runs", type=int, default=5, help="repetitions of every configuration")
    parser.add_argument("--events", type=int, default=50_000, help="events per drain")
    parser.add_argument(
        "--rates", default=DEFAULT_RATES, help="events/s of the latency runs, comma-separated"
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each latency run")
    parser.add_argument("--model", type=Path, help="bundle (default: the shipped bundle)")
    parser.add_argument("--rules-only", action="store_true", help="no worker with the model")
    parser.add_argument("--backend", help="model backend (default auto)")
    parser.add_argument(
        "--drivers",
        default="aiokafka,confluent",
        help=f"consumer drivers of the pass-through agent and the worker, comma-separated "
        f"({', '.join(DRIVERS)})",
    )
    parser.add_argument("--no-pin", action="store_true", help="leave every process unpinned")
    parser.add_argument("--worker-cpus", help="cores of the measured processes (default: last)")
    parser.add_argument("--other-cpus", help="cores of the load and the broker (default: rest)")
    parser.add_argument("--out", type=Path, help="also write the JSON object to this file")
    parser.add_argument(
        "--gc-compare",
        type=int,
        metavar="RUNS",
        help="instead: drain rate and GC pauses with and without GC settling, RUNS times each",
    )
    parser.add_argument("--cpus", help="with --gc-compare: pin the worker (taskset -c CPUS)")
    parser.add_argument(
        "--gc-baseline",
        type=Path,
        metavar="DIR",
        help="with --gc-compare: against the worker of the checkout in DIR, not settling off",
    )
    parser.add_argument(
        "--gc-steady",
        metavar="RATE,SECONDS",
        help="with --gc-compare: survivors frozen and not, over SECONDS at RATE events/s "
        "after the drain",
    )
    return parser


def _pinning(args: argparse.Namespace, broker_given: bool) -> Pinning:
    if args.no_pin:
        return Pinning(None, None)
    default = default_pinning(os.cpu_count() or 1)
    worker, others = args.worker_cpus or default.worker, args.other_cpus or default.others
    if worker is None or others is None:
        return Pinning(None, None)
    return Pinning(worker, others, broker_pinned=not broker_given)


def _plan(args: argparse.Namespace, pinning: Pinning) -> Plan:
    try:
        rates = tuple(float(r) for r in args.rates.split(",") if r.strip())
    except ValueError:
        raise SystemExit(
            f"--rates: not a comma-separated list of numbers: {args.rates!r}"
        ) from None
    if args.runs < 1 or args.events < 1 or not rates or min(rates) <= 0:
        raise SystemExit("--runs, --events and every rate of --rates must be positive")
    drivers = tuple(d.strip() for d in args.drivers.split(",") if d.strip())
    unknown = [d for d in drivers if d not in DRIVERS]
    if unknown or not drivers or len(set(drivers)) != len(drivers):
        raise SystemExit(
            f"--drivers: distinct names among {', '.join(DRIVERS)}, not {args.drivers!r}"
        )
    model = None if args.rules_only else (args.model or shipped_bundle())
    return Plan(args.events, args.runs, rates, args.seconds, model, args.backend, pinning, drivers)


def suite(bootstrap: str, plan: Plan, argv: list[str]) -> dict[str, Any]:
    load_before = list(os.getloadavg())
    started = time.time()
    rows = run_suite(bootstrap, plan, lambda line: print(line, file=sys.stderr, flush=True))
    summary = summarise(plan, rows)
    return {
        "command": shlex.join(["python", "-m", "stream.bench", *argv]),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
        "minutes": round((time.time() - started) / 60, 1),
        "machine": {
            "nproc": os.cpu_count(),
            "load_avg_before": load_before,
            "load_avg_after": list(os.getloadavg()),
            "pinning": plan.pinning.describe(),
        },
        "events": plan.events,
        "partitions": PARTITIONS,
        "runs": plan.runs,
        "rates": list(plan.rates),
        "seconds": plan.seconds,
        "model": None if plan.model is None else str(plan.model),
        **summary,
        **legacy_keys(plan, summary),
        "raw": rows,
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = _parser().parse_args(argv)
    pinning = _pinning(args, broker_given=bool(args.broker))
    if pinning.others is not None:
        # This process is the load generator; the broker it starts inherits the affinity.
        os.sched_setaffinity(0, cpu_set(pinning.others))
    plan = None if args.gc_compare else _plan(args, pinning)

    def bench(bootstrap: str) -> dict[str, Any]:
        if plan is None:
            steady = None
            if args.gc_steady:
                rate, seconds = (float(x) for x in args.gc_steady.split(","))
                steady = (rate, seconds)
            return gc_compare(
                bootstrap,
                args.events,
                args.gc_compare,
                args.cpus,
                args.model,
                args.gc_baseline,
                steady,
            )
        return suite(bootstrap, plan, argv)

    if args.broker:
        result = bench(args.broker)
    else:
        with tempfile.TemporaryDirectory(prefix="fraudstream-bench-kafka-") as tmp:
            cfg = local_broker.BrokerConfig(data_dir=Path(tmp), port=local_broker.free_port())
            local_broker.start(cfg)
            try:
                result = bench(cfg.bootstrap)
            finally:
                local_broker.stop(cfg.data_dir)
    emit(result, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
