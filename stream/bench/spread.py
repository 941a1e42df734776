"""Medians and ranges over repeated runs."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence

Spread = dict[str, float]  # median, min, max


def spread(values: Iterable[float]) -> Spread:
    """Median and range of ``values`` (each rounded to 3 decimals)."""
    vals = list(values)
    if not vals:
        raise ValueError("no values to summarise")
    return {
        "median": round(statistics.median(vals), 3),
        "min": round(min(vals), 3),
        "max": round(max(vals), 3),
    }


def spread_each(rows: Sequence[Mapping[str, float]]) -> dict[str, Spread]:
    """``spread`` of each key of ``rows`` (the keys of the first row)."""
    return {key: spread(r[key] for r in rows) for key in rows[0]}
