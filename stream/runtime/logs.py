"""The worker's log format: colour only where the log goes to a terminal.

Faust's logging (``mode``) decides on colour by looking at stdout while it writes to stderr,
so ``fraudstream worker 2>worker.log`` run from a terminal filled the file with escape codes.
Here the stream written to is the one asked: colorlog colours it only when it is a terminal
(and honours ``NO_COLOR`` and ``FORCE_COLOR``).
"""

from __future__ import annotations

import logging
import sys
from typing import IO, Any

from mode.utils.logging import DEFAULT_COLOR_FORMAT, DEFAULT_COLORS

# The CLI's level names; logging itself knows only some of them ("crit" is not one).
LEVELS = {
    "crit": logging.CRITICAL,
    "error": logging.ERROR,
    "warn": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
}


def level_number(name: str) -> int:
    level = LEVELS.get(name.lower(), logging.getLevelName(name.upper()))
    if not isinstance(level, int):
        raise ValueError(f"unknown log level {name!r}; choose from {', '.join(LEVELS)}")
    return level


def logging_config(level: str, stream: IO[str] | None = None) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` dict for Faust's worker (its ``logging_config``)."""
    out = sys.stderr if stream is None else stream
    number = level_number(level)
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "default": {
                "()": "mode.utils.logging.ExtensionFormatter",
                "format": DEFAULT_COLOR_FORMAT,
                "log_colors": DEFAULT_COLORS,
                "stream": out,  # the stream whose isatty() decides on colour
            }
        },
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "level": number,
                "formatter": "default",
                "stream": out,
            }
        },
        "root": {"level": number, "handlers": ["default"]},
    }
