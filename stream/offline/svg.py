"""Small inline SVG charts for the backtest report: lines, step histograms and horizontal
bars, drawn by hand so the report needs no plotting library and no network.

Every chart is a self-contained ``<svg>`` string with its own axes, ticks and legend."""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT = 430, 260
LEFT, RIGHT, TOP, BOTTOM = 52, 26, 26, 40
PALETTE = ("#1f6fb4", "#d9480f", "#2b8a3e", "#862e9c", "#868e96")


@dataclass(frozen=True)
class Series:
    name: str
    points: Sequence[tuple[float, float]]  # (x, y), x ascending
    colour: str = ""
    step: bool = False  # draw as a step line (histograms)


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """Round tick values (1, 2, 2.5 or 5 times a power of ten) covering [lo, hi]."""
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / (n - 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def _fmt(v: float) -> str:
    if v == int(v):
        return f"{int(v):,}"
    if abs(v) >= 10:
        return f"{v:,.0f}"
    if abs(v) >= 1:
        return f"{v:.1f}"
    return f"{v:.2f}".rstrip("0")


class Frame:
    """Maps data coordinates to the plot area and draws axes, title and legend."""

    def __init__(
        self, x: tuple[float, float], y: tuple[float, float], title: str, xlabel: str, ylabel: str
    ) -> None:
        self.x0, self.x1 = x if x[1] > x[0] else (x[0], x[0] + 1)
        self.y0, self.y1 = y if y[1] > y[0] else (y[0], y[0] + 1)
        self.parts: list[str] = [
            f'<text x="{WIDTH / 2}" y="16" text-anchor="middle" font-weight="bold">'
            f"{escape(title)}</text>",
            f'<text x="{LEFT + (WIDTH - LEFT - RIGHT) / 2}" y="{HEIGHT - 6}" '
            f'text-anchor="middle">{escape(xlabel)}</text>',
            f'<text transform="translate(12,{TOP + (HEIGHT - TOP - BOTTOM) / 2}) rotate(-90)" '
            f'text-anchor="middle">{escape(ylabel)}</text>',
        ]

    def px(self, x: float) -> float:
        return LEFT + (x - self.x0) / (self.x1 - self.x0) * (WIDTH - LEFT - RIGHT)

    def py(self, y: float) -> float:
        return HEIGHT - BOTTOM - (y - self.y0) / (self.y1 - self.y0) * (HEIGHT - TOP - BOTTOM)

    def axes(self, xticks: list[tuple[float, str]] | None = None) -> None:
        b, t = self.py(self.y0), self.py(self.y1)
        self.parts.append(
            f'<rect x="{LEFT}" y="{t}" width="{WIDTH - LEFT - RIGHT}" height="{b - t}" '
            'fill="none" stroke="#adb5bd"/>'
        )
        for v in _ticks(self.y0, self.y1):
            y = self.py(v)
            self.parts.append(
                f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
                f'stroke="#e9ecef"/><text x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end">'
                f"{_fmt(v)}</text>"
            )
        for v, label in xticks or [(v, _fmt(v)) for v in _ticks(self.x0, self.x1)]:
            x = self.px(v)
            self.parts.append(
                f'<text x="{x:.1f}" y="{b + 14:.1f}" text-anchor="middle">{escape(label)}</text>'
            )

    def legend(self, names: list[tuple[str, str]], lower_left: bool = False) -> None:
        """Names with colour keys, top right (or lower left, clear of curves that start
        high on the left, such as precision-recall)."""
        x = LEFT + 8 if lower_left else WIDTH - RIGHT - 190
        top = (HEIGHT - BOTTOM - 19 - 15 * (len(names) - 1)) if lower_left else TOP + 1
        self.parts.append(
            f'<rect x="{x - 4}" y="{top}" width="186" height="{15 * len(names) + 4}" '
            'fill="#fff" fill-opacity="0.85"/>'
        )
        for i, (name, colour) in enumerate(names):
            y = (
                (HEIGHT - BOTTOM - 8 - 15 * (len(names) - 1 - i))
                if lower_left
                else TOP + 12 + 15 * i
            )
            self.parts.append(
                f'<rect x="{x}" y="{y - 8}" width="10" height="10" fill="{colour}"/>'
                f'<text x="{x + 14}" y="{y + 1}">{escape(name[:32])}</text>'
            )

    def svg(self) -> str:
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
            f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="11">'
            + "".join(self.parts)
            + "</svg>"
        )


def line_chart(
    series: list[Series],
    title: str,
    xlabel: str,
    ylabel: str,
    x: tuple[float, float] | None = None,
    y: tuple[float, float] | None = None,
    xticks: list[tuple[float, str]] | None = None,
    legend_lower_left: bool = False,
) -> str:
    """Lines (or step lines) on shared axes; ranges default to the data's."""
    xs = [p[0] for s in series for p in s.points] or [0.0, 1.0]
    ys = [p[1] for s in series for p in s.points] or [0.0, 1.0]
    frame = Frame(x or (min(xs), max(xs)), y or (0.0, max(ys) * 1.05 or 1.0), title, xlabel, ylabel)
    frame.axes(xticks)
    names = []
    for i, s in enumerate(series):
        colour = s.colour or PALETTE[i % len(PALETTE)]
        names.append((s.name, colour))
        if not s.points:
            continue
        path = []
        prev_y: float | None = None
        for px_, py_ in s.points:
            X, Y = frame.px(px_), frame.py(py_)
            if s.step and prev_y is not None:
                path.append(f"{X:.1f},{prev_y:.1f}")
            path.append(f"{X:.1f},{Y:.1f}")
            prev_y = Y
        frame.parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{" ".join(path)}"/>'
        )
    frame.legend(names, legend_lower_left)
    return frame.svg()


def bar_chart(items: Sequence[tuple[str, float]], title: str, xlabel: str) -> str:
    """Horizontal bars, largest first as given; labels on the left."""
    rows = items[:12]
    height = TOP + 20 * max(1, len(rows)) + 24
    top = max((v for _, v in rows), default=1.0) or 1.0
    label_w, bar_w = 210, WIDTH - 210 - RIGHT - 30
    parts = [
        f'<text x="{WIDTH / 2}" y="16" text-anchor="middle" font-weight="bold">'
        f"{escape(title)}</text>",
        f'<text x="{label_w + bar_w / 2}" y="{height - 8}" text-anchor="middle">'
        f"{escape(xlabel)}</text>",
    ]
    for i, (label, value) in enumerate(rows):
        y = TOP + 20 * i
        w = value / top * bar_w
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 13}" text-anchor="end">{escape(label[:40])}</text>'
            f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="13" fill="{PALETTE[0]}"/>'
            f'<text x="{label_w + w + 4:.1f}" y="{y + 13}">{_fmt(value)}</text>'
        )
    if not rows:
        parts.append(f'<text x="{WIDTH / 2}" y="{TOP + 14}" text-anchor="middle">none</text>')
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="11">'
        + "".join(parts)
        + "</svg>"
    )


def histogram(values: Sequence[float], bins: list[float]) -> list[int]:
    """Counts per bin, ``bins`` being ascending edges (values past the ends go to the
    first or last bin)."""
    counts = [0] * (len(bins) - 1)
    inner = bins[1:-1]
    for v in values:
        counts[bisect.bisect_right(inner, v)] += 1
    return counts
