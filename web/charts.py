"""Charts drawn on the server as inline SVG: no JavaScript, nothing fetched from elsewhere.

Each function returns ``Markup``: every piece of text inside is escaped here, so the markup
is safe to place in a page as it is. Values are ints or Decimals (never floats); only the
drawing coordinates are floats. Colours are SVG attributes, as the site's CSP forbids inline
styles.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Sequence

from markupsafe import Markup, escape

WIDTH = 640
BAR_HEIGHT = 22
GAP = 10
LABEL_WIDTH = 170
VALUE_WIDTH = 130
COLUMN_HEIGHT = 180
CHARACTER_WIDTH = 0.6  # of the font size: a generous average for the site's sans-serif
PALETTE = ("#2f6b3a", "#c98a1b", "#7aa874", "#5b6b5d")


@dataclass(frozen=True)
class Bar:
    """One bar: its ``label``, its ``value`` (drawn to scale) and the ``text`` shown for it
    (e.g. ``USD 12.50`` or ``1,200 t``)."""

    label: str
    value: int | Decimal
    text: str


@dataclass(frozen=True)
class StackedBar:
    """One bar made of parts, in the order of the chart's ``series``."""

    label: str
    parts: tuple[Bar, ...]


def _scale(value: int | Decimal, largest: int | Decimal, length: float) -> float:
    if largest <= 0 or value <= 0:
        return 0.0
    return float(Decimal(value) / Decimal(largest)) * length


def _svg(title: str, description: str, width: int, height: int, body: list[str]) -> Markup:
    return Markup(
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" role="img" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
        f'<desc>{escape(description)}</desc>{"".join(body)}</svg>'
    )


def _empty(title: str) -> Markup:
    return _svg(title, "No data yet.", WIDTH, 60, [
        f'<text x="{WIDTH / 2}" y="35" text-anchor="middle" fill="#5b6b5d">No data yet</text>'])


def _text_width(texts, font_size: int, least: int) -> int:
    """Room for the longest text (an estimate: the server cannot measure fonts), at least
    ``least`` and at most half the chart."""
    longest = max((len(text) for text in texts), default=0)
    return min(max(least, round(longest * font_size * CHARACTER_WIDTH) + 12), WIDTH // 2)


def _describe(bars: Sequence[Bar]) -> str:
    return "; ".join(f"{bar.label}: {bar.text}" for bar in bars)


def bar_chart(title: str, bars: Sequence[Bar]) -> Markup:
    """Horizontal bars, one per row, labelled on the left with their value on the right."""
    if not bars:
        return _empty(title)
    largest = max(bar.value for bar in bars)
    label_width = _text_width([bar.label for bar in bars], 13, LABEL_WIDTH)
    length = WIDTH - label_width - _text_width([bar.text for bar in bars], 13, VALUE_WIDTH)
    height = GAP + len(bars) * (BAR_HEIGHT + GAP)
    body = []
    for index, bar in enumerate(bars):
        y = GAP + index * (BAR_HEIGHT + GAP)
        middle = y + BAR_HEIGHT / 2 + 4
        drawn = _scale(bar.value, largest, length)
        body.append(
            f'<text x="{label_width - 8}" y="{middle}" text-anchor="end" font-size="13" '
            f'fill="#1d2b1f">{escape(bar.label)}</text>'
            f'<rect x="{label_width}" y="{y}" width="{drawn:.2f}" height="{BAR_HEIGHT}" '
            f'rx="3" fill="{PALETTE[0]}"><title>{escape(bar.label)}: {escape(bar.text)}</title>'
            f'</rect>'
            f'<text x="{label_width + drawn + 6:.2f}" y="{middle}" font-size="13" '
            f'fill="#1d2b1f">{escape(bar.text)}</text>'
        )
    return _svg(title, _describe(bars), WIDTH, height, body)


def column_chart(title: str, columns: Sequence[Bar]) -> Markup:
    """Vertical columns along a time axis (oldest left), each with its value on top."""
    if not columns:
        return _empty(title)
    largest = max(column.value for column in columns)
    top, bottom = 24, 28
    slot = (WIDTH - 2 * GAP) / len(columns)
    width = min(slot * 0.7, 80.0)
    body = [f'<line x1="{GAP}" y1="{top + COLUMN_HEIGHT}" x2="{WIDTH - GAP}" '
            f'y2="{top + COLUMN_HEIGHT}" stroke="#b9c7b8"/>']
    for index, column in enumerate(columns):
        drawn = _scale(column.value, largest, COLUMN_HEIGHT)
        x = GAP + index * slot + (slot - width) / 2
        centre = x + width / 2
        body.append(
            f'<rect x="{x:.2f}" y="{top + COLUMN_HEIGHT - drawn:.2f}" width="{width:.2f}" '
            f'height="{drawn:.2f}" fill="{PALETTE[0]}"><title>{escape(column.label)}: '
            f'{escape(column.text)}</title></rect>'
            f'<text x="{centre:.2f}" y="{top + COLUMN_HEIGHT - drawn - 6:.2f}" '
            f'text-anchor="middle" font-size="12" fill="#1d2b1f">{escape(column.text)}</text>'
            f'<text x="{centre:.2f}" y="{top + COLUMN_HEIGHT + 18}" text-anchor="middle" '
            f'font-size="12" fill="#5b6b5d">{escape(column.label)}</text>'
        )
    return _svg(title, _describe(columns), WIDTH, top + COLUMN_HEIGHT + bottom, body)


def stacked_bar_chart(title: str, series: Sequence[str], bars: Sequence[StackedBar]) -> Markup:
    """Horizontal bars split into parts (e.g. paid out, then still owed), with a legend;
    every bar is drawn to the scale of the longest whole bar."""
    if not bars:
        return _empty(title)
    largest = max(sum((part.value for part in bar.parts), 0) for bar in bars)
    summaries = [" · ".join(part.text for part in bar.parts) for bar in bars]
    label_width = _text_width([bar.label for bar in bars], 13, LABEL_WIDTH)
    length = WIDTH - label_width - _text_width(summaries, 12, VALUE_WIDTH)
    legend = [
        f'<rect x="{label_width + index * 150}" y="6" width="12" height="12" '
        f'fill="{PALETTE[index % len(PALETTE)]}"/>'
        f'<text x="{label_width + index * 150 + 18}" y="16" font-size="12" '
        f'fill="#1d2b1f">{escape(name)}</text>'
        for index, name in enumerate(series)
    ]
    body, first = list(legend), 30
    for row, (bar, summary) in enumerate(zip(bars, summaries)):
        y = first + row * (BAR_HEIGHT + GAP)
        middle = y + BAR_HEIGHT / 2 + 4
        x = float(label_width)
        body.append(f'<text x="{label_width - 8}" y="{middle}" text-anchor="end" '
                    f'font-size="13" fill="#1d2b1f">{escape(bar.label)}</text>')
        for index, part in enumerate(bar.parts):
            drawn = _scale(part.value, largest, length)
            body.append(
                f'<rect x="{x:.2f}" y="{y}" width="{drawn:.2f}" height="{BAR_HEIGHT}" '
                f'fill="{PALETTE[index % len(PALETTE)]}"><title>{escape(bar.label)}, '
                f'{escape(part.label)}: {escape(part.text)}</title></rect>')
            x += drawn
        body.append(f'<text x="{x + 6:.2f}" y="{middle}" font-size="12" '
                    f'fill="#1d2b1f">{escape(summary)}</text>')
    description = "; ".join(
        f"{bar.label}: " + ", ".join(f"{part.label} {part.text}" for part in bar.parts)
        for bar in bars)
    height = first + len(bars) * (BAR_HEIGHT + GAP)
    return _svg(title, description, WIDTH, height, body)
