"""Shared pieces for the command-line interface.

Every flag also reads ``FRAUDSTREAM_<NAME>`` from the environment (docs/contract.md, section 5);
flags given on the command line win. Command modules expose ``register(subparsers)``
and set ``func`` on their parser to a callable ``(args) -> int`` (the exit code).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any

Handler = Callable[[argparse.Namespace], int]
ENV_PREFIX = "FRAUDSTREAM_"
# Exit codes, for scripts and supervisors (sysexits.h where one fits):
EXIT_FAILURE = 1  # a failure to fix before trying again: a flag, file, port, bundle, topic
EXIT_USAGE = 2  # a command line argparse cannot parse
EXIT_UNAVAILABLE = 69  # EX_UNAVAILABLE: no Kafka broker answered; try again once one runs
EXIT_INTERRUPTED = 130  # Ctrl-C


class CommandError(Exception):
    """A failure the user can act on; the CLI prints it as one line and exits with
    ``exit_code``."""

    exit_code = EXIT_FAILURE


class Unavailable(CommandError):
    """A service the command needs (the Kafka broker) did not answer."""

    exit_code = EXIT_UNAVAILABLE


def env_name(flag: str) -> str:
    return ENV_PREFIX + flag.lstrip("-").replace("-", "_").upper()


def add_option(parser: argparse.ArgumentParser, flag: str, **kwargs: Any) -> None:
    """Add ``--flag`` whose default comes from ``FRAUDSTREAM_FLAG`` when that is set."""
    env = os.environ.get(env_name(flag))
    if env is not None:
        if kwargs.get("action") in ("store_true", "store_false", argparse.BooleanOptionalAction):
            kwargs["default"] = env.strip().lower() in ("1", "true", "yes", "on")
        else:
            conv = kwargs.get("type", str)
            try:
                kwargs["default"] = conv(env)
            except (TypeError, ValueError) as exc:
                raise CommandError(
                    f"{env_name(flag)}={env!r} is not valid for {flag}: {exc}"
                ) from exc
            # A value from the environment satisfies a required flag.
            kwargs["required"] = False
    help_text = kwargs.get("help", "")
    kwargs["help"] = f"{help_text} [env {env_name(flag)}]".strip()
    parser.add_argument(flag, **kwargs)


def fail(message: str, code: int = 1) -> int:
    print(f"fraudstream: error: {message}", file=sys.stderr)
    return code
