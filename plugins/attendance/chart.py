"""The participants chart, drawn on the server as SVG by pygal.

Stacked bars per meeting (on site and online, plus "not split" where the split is unknown),
and cumulative participants as a line on a second axis. pygal draws every series of a chart
in the chart's own kind, so ``BarsAndLine`` asks pygal's line drawing for the secondary
series; the bars keep their full width.
"""

from __future__ import annotations

import math

import pygal
from babel.numbers import format_decimal
from flask_babel import gettext as _
from pygal.graph.line import Line
from pygal.style import Style

from portal.i18n import current_language

ONSITE, ONLINE, UNSPLIT, CUMULATIVE = "#0b5cad", "#6fa8dc", "#9aa5b1", "#c0392b"
STYLE = dict(
    background="#ffffff",
    plot_background="#ffffff",
    foreground="#1d2733",
    foreground_strong="#1d2733",
    foreground_subtle="#d8dee6",
    font_family='system-ui, "Hiragino Sans", "Noto Sans CJK JP", "Yu Gothic", sans-serif',
    label_font_size=11,
    major_label_font_size=11,
    legend_font_size=12,
    title_font_size=14,
)


class BarsAndLine(pygal.StackedBar):
    """Stacked bars for the series, a line for the secondary series (own axis on the right)."""

    _self_close = False

    def _bar(self, serie, parent, x, y, i, zero, secondary=False):
        # StackedBar halves the bars when there is a secondary series; here that one is a line.
        saved, self.secondary_series = self.secondary_series, []
        try:
            return super()._bar(serie, parent, x, y, i, zero, secondary)
        finally:
            self.secondary_series = saved

    def _compute_secondary(self):
        # The right axis gets round steps (0, 250, 500 …) on the left axis' guide lines.
        if not (self.secondary_series and self._y_labels):
            return
        y_pos = list(zip(*self._y_labels, strict=True))[1]
        steps = max(len(y_pos) - 1, 1)
        step = _nice_step(max(self._secondary_max, 1) / steps)
        self._y_2nd_labels = [(self._y_format(i * step), pos) for i, pos in enumerate(y_pos)]
        self._scale = abs(y_pos[-1] - y_pos[0]) / (step * steps)
        self._scale_diff = y_pos[0]
        self._scale_min_2nd = 0

    def _plot(self):
        for serie in self.series:
            self.bar(serie)
        half = 0.5 / self._len
        for serie in self.secondary_series:
            # Points sit on the bars' left edges; the line joins the bars' middles.
            serie.points = [(x + half, y) for x, y in serie.points]
            Line.line(self, serie, True)


def _nice_step(raw: float) -> float:
    """The smallest round step (1, 1.2, 1.5, 2 … 10 times a power of ten) of at least ``raw``."""
    magnitude = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    for factor in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if factor * magnitude >= raw:
            return factor * magnitude
    return 10 * magnitude


def _without_scripts(root):
    """Drop pygal's script elements: the SVG works inline without running any script."""
    for parent in list(root.iter()):
        for child in list(parent):
            if isinstance(child.tag, str) and child.tag.rsplit("}", 1)[-1] == "script":
                parent.remove(child)
    return root


def _unsplit(figures) -> bool:
    return figures.onsite_participants is None and figures.online_participants is None


def participants_chart(rows, title: str = "") -> BarsAndLine:
    """The chart for statistics rows (``plugins.attendance.services.MeetingRow``)."""
    locale = "ja_JP" if current_language() == "ja" else "en_US"
    unsplit = [r.figures.participants if _unsplit(r.figures) else 0 for r in rows]
    colors = (ONSITE, ONLINE, UNSPLIT, CUMULATIVE) if any(unsplit) else (ONSITE, ONLINE, CUMULATIVE)
    chart = BarsAndLine(
        style=Style(colors=colors, **STYLE),
        title=title or None,
        js=(),  # no script from elsewhere; the SVG is self-contained
        disable_xml_declaration=True,
        legend_at_bottom=True,
        legend_at_bottom_columns=2,
        x_title=_("Meeting"),
        y_title=_("Participants"),
        x_label_rotation=0 if len(rows) <= 25 else 90,
        show_minor_x_labels=len(rows) <= 40,
        x_labels_major_every=max(1, len(rows) // 20) if len(rows) > 40 else None,
        truncate_label=-1,
        print_zeroes=False,
        width=800,
        height=450,
        dots_size=2.5,
        stroke_style={"width": 2},
        value_formatter=lambda v: format_decimal(round(v), locale=locale),
    )
    chart.add_xml_filter(_without_scripts)
    chart.x_labels = [str(r.number) if r.number is not None else "" for r in rows]
    onsite = [r.figures.onsite_participants or 0 for r in rows]
    online = [r.figures.online_participants or 0 for r in rows]
    chart.add(_("On site"), onsite)
    chart.add(_("Online"), online)
    if any(unsplit):
        chart.add(_("On site or online (not split)"), unsplit)
    chart.add(
        _("Cumulative participants"),
        [r.cumulative for r in rows],
        secondary=True,
        show_dots=True,
        fill=False,
    )
    return chart


def participants_svg(rows, title: str = "") -> str:
    """The chart as an SVG document (text)."""
    return participants_chart(rows, title).render(is_unicode=True)
