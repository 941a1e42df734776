"""The Faust and aiokafka versions whose internals the driver was written and tested against.

The driver reaches into private parts of both (``bulk_take``, ``seek_guard``, ``tables``,
``commit_hook``, ``confluent_consumer``, ``drain``: the last copies Faust's fetch loop);
another version may have moved them silently. The worker refuses to start on an untested
version rather than lose events in ways no test has seen.
"""

from __future__ import annotations

from importlib.metadata import version

# Keep in step with pyproject.toml's dependency bounds.
TESTED = {"faust-streaming": ((0, 11), (0, 16)), "aiokafka": ((0, 10), (0, 15))}


def _release(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split(".")[:3]:
        digits = "".join(c for c in piece if c.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def untested(installed: dict[str, str] | None = None) -> list[str]:
    """What is installed outside the tested ranges, as readable lines."""
    found = installed if installed is not None else {n: version(n) for n in TESTED}
    out = []
    for name, (low, high) in TESTED.items():
        release = _release(found[name])
        if not low <= release < high:
            lo, hi = ".".join(map(str, low)), ".".join(map(str, high))
            out.append(f"{name} {found[name]} (tested: >={lo},<{hi})")
    return out


def check() -> None:
    problems = untested()
    if problems:
        raise RuntimeError(
            "the worker's Faust driver is untested with "
            + ", ".join(problems)
            + "; install the tested versions (pip install -e .)"
        )
