"""Server-drawn SVG charts: well-formed, to scale, and every piece of text escaped."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from decimal import Decimal

import pytest
from markupsafe import Markup

from web.charts import (
    LABEL_WIDTH,
    VALUE_WIDTH,
    WIDTH,
    Bar,
    StackedBar,
    bar_chart,
    column_chart,
    stacked_bar_chart,
)

SVG = "{http://www.w3.org/2000/svg}"
FULL_LENGTH = WIDTH - LABEL_WIDTH - VALUE_WIDTH


def parsed(markup: Markup) -> ElementTree.Element:
    return ElementTree.fromstring(str(markup))


def bar_widths(markup: Markup) -> list[float]:
    return [float(rect.get("width")) for rect in parsed(markup).iter(f"{SVG}rect")]


def test_bars_are_drawn_to_scale_of_the_largest():
    chart = bar_chart("Money per farm", [Bar("A", Decimal("100.00"), "USD 100.00"),
                                         Bar("B", Decimal("25.00"), "USD 25.00")])

    assert bar_widths(chart) == [FULL_LENGTH, FULL_LENGTH / 4]


def test_columns_are_drawn_to_scale_and_keep_the_time_order():
    chart = column_chart("Tonnes per month", [Bar("2025-01", 50, "50 t"),
                                              Bar("2025-02", 200, "200 t")])
    heights = [float(rect.get("height")) for rect in parsed(chart).iter(f"{SVG}rect")]

    assert heights[1] == 4 * heights[0] > 0
    assert str(chart).index("2025-01") < str(chart).index("2025-02")


@pytest.mark.parametrize("draw", [
    lambda label: bar_chart(label, [Bar(label, 1, label)]),
    lambda label: column_chart(label, [Bar(label, 1, label)]),
    lambda label: stacked_bar_chart(label, [label], [StackedBar(label, (Bar(label, 1, label),))]),
])
def test_every_text_in_a_chart_is_escaped(draw):
    hostile = '<script>alert("x")</script> & "quoted"'

    chart = draw(hostile)

    assert "<script>" not in str(chart)
    assert "&lt;script&gt;" in str(chart)
    assert hostile in "".join(parsed(chart).itertext())  # the text survives, as text
    assert isinstance(chart, Markup)


def test_a_chart_without_data_says_so_instead_of_dividing_by_zero():
    assert "No data yet" in str(bar_chart("Empty", []))
    assert "No data yet" in str(column_chart("Empty", []))
    assert "No data yet" in str(stacked_bar_chart("Empty", ["a"], []))


def test_zero_values_draw_empty_bars():
    assert bar_widths(bar_chart("Nothing sold", [Bar("A", 0, "USD 0.00")])) == [0.0]


def test_stacked_parts_sit_end_to_end_on_the_scale_of_the_longest_bar():
    chart = stacked_bar_chart("Paid and owed", ["paid out", "owed"], [
        StackedBar("aider", (Bar("paid out", Decimal("30"), "30"), Bar("owed", Decimal("10"), "10"))),
        StackedBar("COOP-001", (Bar("paid out", 0, "0"), Bar("owed", Decimal("20"), "20"))),
    ])
    rects = [rect for rect in parsed(chart).iter(f"{SVG}rect") if rect.find(f"{SVG}title") is not None]
    paid, owed = rects[0], rects[1]

    assert float(paid.get("width")) == FULL_LENGTH * 3 / 4
    assert float(owed.get("x")) == LABEL_WIDTH + float(paid.get("width"))
    assert float(rects[3].get("width")) == FULL_LENGTH / 2


def test_a_chart_describes_its_figures_for_screen_readers():
    chart = parsed(bar_chart("Money per project", [Bar("KAP-AF-01", 240, "USD 240.00")]))

    assert chart.get("role") == "img"
    assert chart.find(f"{SVG}title").text == "Money per project"
    assert chart.find(f"{SVG}desc").text == "KAP-AF-01: USD 240.00"
