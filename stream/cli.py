"""The ``fraudstream`` command (docs/contract.md, section 5)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from model.cli import register as register_model
from stream import __version__
from stream.core.cliutil import EXIT_INTERRUPTED, CommandError, add_option, fail
from stream.local.feedback_cli import register as register_feedback
from stream.offline.backtest import register as register_backtest
from stream.offline.evaluate import register as register_evaluate
from stream.offline.report import register as register_report
from stream.offline.retrain import register as register_retrain
from stream.simulate.cli import register as register_simulate


def _broker_start(args: argparse.Namespace) -> int:
    from stream.local.broker import BrokerConfig, start

    cfg = BrokerConfig(data_dir=Path(args.data_dir), port=args.port, heap_mb=args.heap_mb)
    pid = start(cfg)
    print(f"Kafka broker running at {cfg.bootstrap} (pid {pid}, data in {cfg.data_dir})")
    return 0


def _broker_stop(args: argparse.Namespace) -> int:
    from stream.local.broker import stop

    if stop(Path(args.data_dir)):
        print(f"Kafka broker from {args.data_dir} stopped")
        return 0
    raise CommandError(f"no broker from {args.data_dir} is running")


def _register_broker(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    broker = sub.add_parser("broker", help="a local single-node Kafka broker (KRaft)")
    actions = broker.add_subparsers(dest="action", required=True)
    start = actions.add_parser("start", help="start the broker and wait until it serves")
    add_option(start, "--data-dir", default=".fraudstream/kafka", help="broker data directory")
    add_option(start, "--port", type=int, default=9092, help="client port")
    add_option(start, "--heap-mb", type=int, default=512, help="JVM heap in MiB")
    start.set_defaults(func=_broker_start)
    stop = actions.add_parser("stop", help="stop the broker started from --data-dir")
    add_option(stop, "--data-dir", default=".fraudstream/kafka", help="broker data directory")
    stop.set_defaults(func=_broker_stop)


def _worker(args: argparse.Namespace) -> int:
    from model.shipped import choose_bundle
    from stream.runtime.settings import Settings
    from stream.runtime.worker import run_worker

    bundle = choose_bundle(args.model, args.rules_only)
    overrides = {
        "broker": args.broker,
        "data_dir": args.data_dir,
        "web_port": args.web_port,
        "model": bundle,
        "model_backend": args.backend,
        "partitions": args.partitions,
        "app_id": args.app_id,
        "topic_prefix": args.topic_prefix,
        "log_level": args.log_level,
    }
    settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    run_worker(settings)
    return 0


def _register_worker(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("worker", help="run one stream worker (Faust)")
    add_option(p, "--broker", help="Kafka bootstrap HOST:PORT (default 127.0.0.1:9092)")
    add_option(p, "--data-dir", help="RocksDB state directory (default .fraudstream/worker)")
    add_option(p, "--model", help="model bundle directory (default: the shipped bundle)")
    add_option(p, "--rules-only", action="store_true", help="no model: the rules score all")
    add_option(
        p,
        "--backend",
        choices=["auto", "tensorrt", "onnx", "onnx-int8", "torch"],
        help="model backend (default auto: TensorRT on a GPU, else ONNX Runtime)",
    )
    add_option(p, "--web-port", type=int, help="HTTP port for /metrics (default 6066)")
    add_option(p, "--partitions", type=int, help="partitions for topics it creates (default 8)")
    add_option(p, "--app-id", help="Kafka consumer group and state name (default fraudstream)")
    add_option(p, "--topic-prefix", help="prefix for every topic name (default none)")
    add_option(
        p,
        "--log-level",
        choices=["crit", "error", "warn", "info", "debug"],
        help="log level (default warn)",
    )
    p.set_defaults(func=_worker)


def _alerts_tail(args: argparse.Namespace) -> int:
    from stream.local.tail import tail_alerts

    tail_alerts(
        args.broker,
        args.kind,
        args.from_beginning,
        args.topic_prefix,
        args.max_messages,
        args.pretty,
    )
    return 0


def _register_alerts(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    alerts = sub.add_parser("alerts", help="alert topics")
    actions = alerts.add_subparsers(dest="action", required=True)
    p = actions.add_parser("tail", help="follow alert topics, one alert per line")
    add_option(p, "--broker", default="127.0.0.1:9092", help="Kafka bootstrap HOST:PORT")
    add_option(p, "--kind", choices=["fraud", "brushing", "churn"], help="only this kind")
    add_option(p, "--from-beginning", action="store_true", help="start at the oldest alert")
    add_option(p, "--topic-prefix", default="", help="prefix for topic names")
    add_option(p, "--max-messages", type=int, help="exit after this many alerts")
    add_option(
        p,
        "--pretty",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="one readable, coloured line per alert (default on a terminal; JSON otherwise)",
    )
    p.set_defaults(func=_alerts_tail)
    register_feedback(actions)


def _up(args: argparse.Namespace) -> int:
    from stream.local.up import run_up

    return run_up(args)


def _register_up(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("up", help="broker, worker and live traffic on this machine; Ctrl-C stops")
    add_option(p, "--port", type=int, default=9092, help="Kafka client port")
    add_option(p, "--web-port", type=int, default=6066, help="worker HTTP port (/metrics)")
    add_option(p, "--data-dir", default=".fraudstream", help="where broker and state live")
    add_option(p, "--rate", type=float, default=200.0, help="traffic events per second")
    add_option(p, "--duration", type=float, help="stop after this many seconds")
    add_option(p, "--model", help="model bundle directory (default: the shipped bundle)")
    add_option(p, "--rules-only", action="store_true", help="no model: the rules score all")
    p.set_defaults(func=_up)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fraudstream", description="Streaming fraud, brushing and churn detection on Kafka."
    )
    parser.add_argument("--version", action="version", version=f"fraudstream {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _register_up(sub)
    _register_broker(sub)
    _register_worker(sub)
    _register_alerts(sub)
    register_simulate(sub)  # generate, and replay
    register_backtest(sub)
    register_evaluate(sub)
    register_report(sub)
    register_retrain(sub)
    register_model(sub)  # build, and bench model
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        code: int = args.func(args)
    except CommandError as exc:
        return fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as exc:  # the contract: one line on stderr, non-zero exit
        return fail(f"{type(exc).__name__}: {exc}")
    return code


if __name__ == "__main__":
    sys.exit(main())
