"""Faust and aiokafka internals stay in one subpackage, on tested versions."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from stream.runtime.driver import versions

ROOT = Path(__file__).resolve().parents[2]
# Private names of Faust, mode and aiokafka objects that the driver uses on purpose.
INTERNALS = re.compile(
    r"\b(_unacked_messages|_on_message_in|_on_stream_event_in|_on_stream_event_out|"
    r"_on_message_out|_db_for_partition|_key_index|_current_event|_channel_stop_iteration|"
    r"_finalized|_thread|_errors)\b"
)


def test_faust_internals_are_used_only_in_the_driver() -> None:
    offenders = []
    for path in sorted((ROOT / "stream").rglob("*.py")):
        if "driver" in path.parts:
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if INTERNALS.search(line) and "self._errors" not in line:
                offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def test_the_driver_does_use_them_so_the_check_above_can_fail() -> None:
    driver = "\n".join(p.read_text() for p in (ROOT / "stream/runtime/driver").glob("*.py"))
    assert INTERNALS.search(driver)


def test_the_installed_versions_are_the_tested_ones() -> None:
    assert versions.untested() == []


@pytest.mark.parametrize(
    ("installed", "bad"),
    [
        ({"faust-streaming": "0.15.3", "aiokafka": "0.14.0"}, []),
        ({"faust-streaming": "0.16.0", "aiokafka": "0.14.0"}, ["faust-streaming 0.16.0"]),
        ({"faust-streaming": "0.10.9", "aiokafka": "0.15.1rc1"}, ["faust-streaming", "aiokafka"]),
    ],
)
def test_versions_outside_the_tested_ranges_are_named(
    installed: dict[str, str], bad: list[str]
) -> None:
    found = versions.untested(installed)
    assert len(found) == len(bad)
    for line, name in zip(found, bad, strict=True):
        assert line.startswith(name)
