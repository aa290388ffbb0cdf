"""The participants chart, drawn on the server as SVG by pygal.

Stacked bars per meeting (on site and online, plus "not split" where the split is unknown),
and cumulative participants as a line on a second axis, with the people on the list (登録人数:
the imported figure, or the list's history once the portal keeps it) as a dashed line on the
same axis where known. pygal draws every series of a chart
in the chart's own kind, so ``BarsAndLine`` asks pygal's line drawing for the secondary
series; the bars keep their full width.

What the reader can tell apart without colour: online bars are hatched (and of another hue)
while on-site bars are solid; the cumulative series is a line in the legend too; meetings
without figures show as an empty slot labelled with their numbers (e.g. 11–80), where the
cumulative line breaks; a cancelled meeting's label says so. Both axes have titles (the right
one: cumulative participants).

Rendering costs most of the page's time, so ``participants_svg`` keeps the SVG per language,
title and figures (``_CACHE``): the same figures are drawn once per worker, and any change of
figures changes the key.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass

import pygal
from babel.numbers import format_decimal
from flask_babel import gettext as _
from pygal.graph.line import Line
from pygal.style import Style

from portal.i18n import current_language

ONSITE, ONLINE, UNSPLIT, CUMULATIVE = "#0b5cad", "#e08a00", "#9aa5b1", "#c0392b"
ON_LIST = "#2e7d32"  # people on the list (登録人数), a dashed line
SVG_NS = "http://www.w3.org/2000/svg"
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
            # Points sit on the bars' left edges; the line joins the bars' middles. The
            # stacking turned missing values into zeros: they are gaps in the line again.
            gaps = getattr(self, "gap_indexes", set())
            serie.points = [
                (x + half, None if i in gaps else y) for i, (x, y) in enumerate(serie.points)
            ]
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


@dataclass(frozen=True)
class Slot:
    """One place on the x axis: a meeting, or a gap where meetings have no figures."""

    label: str
    onsite: int | None
    online: int | None
    unsplit: int | None
    cumulative: int | None
    gap: bool = False
    on_list: int | None = None  # people on the list that day (登録人数), where known


def chart_slots(rows) -> list[Slot]:
    """The x axis of the chart: meetings in order, with one empty slot for each run of
    meeting numbers without figures (e.g. 11–80), and cancelled meetings labelled."""
    slots: list[Slot] = []
    previous = None
    for r in rows:
        number = r.number
        if previous is not None and number is not None and number - previous > 1:
            first, last = previous + 1, number - 1
            label = str(first) if first == last else f"{first}–{last}"
            slots.append(Slot(label, None, None, None, None, gap=True))
        if number is not None:
            previous = number
        f = r.figures
        label = str(number) if number is not None else ""
        if f.cancelled:
            label = _("%(number)s (cancelled)", number=label)
        unsplit = f.participants if _unsplit(f) else 0
        slots.append(
            Slot(
                label,
                f.onsite_participants or 0,
                f.online_participants or 0,
                unsplit,
                r.cumulative,
                on_list=f.mailing_list,
            )
        )
    return slots


def _tag(element) -> str:
    return element.tag.rsplit("}", 1)[-1] if isinstance(element.tag, str) else ""


def _make(root, name: str, **attrs):
    namespaced = root.tag.startswith("{")
    element = root.makeelement(f"{{{SVG_NS}}}{name}" if namespaced else name, {})
    for key, value in attrs.items():
        element.set(key.replace("_", "-"), str(value))
    return element


def _decorate(online_index: int, line_index: int, right_title: str, list_index: int | None = None):
    """An XML filter: hatched online bars, the lines' legends as lines, the list's line dashed,
    a right axis title."""
    lines = {line_index: CUMULATIVE, **({list_index: ON_LIST} if list_index is not None else {})}

    def apply(root):
        chart_id = root.get("id", "chart")
        pattern_id = f"{chart_id}-online-hatch"
        defs = next((e for e in root if _tag(e) == "defs"), None)
        if defs is not None:
            pattern = _make(
                root,
                "pattern",
                id=pattern_id,
                patternUnits="userSpaceOnUse",
                width=6,
                height=6,
                patternTransform="rotate(45)",
            )
            pattern.append(_make(root, "rect", width=6, height=6, fill=ONLINE))
            pattern.append(
                _make(root, "line", x1=0, y1=0, x2=0, y2=6, stroke="#ffffff", stroke_width=2.5)
            )
            defs.append(pattern)
        hatch = f"fill:url(#{pattern_id});stroke:{ONLINE}"
        for element in root.iter():
            classes = (element.get("class") or "").split()
            if f"serie-{online_index}" in classes and "series" in classes:
                for rect in element.iter():
                    if _tag(rect) == "rect":
                        rect.set("style", hatch)
            if element.get("id") == f"activate-serie-{online_index}":
                for rect in element:
                    if _tag(rect) == "rect":
                        rect.set("style", hatch)
                        rect.set("data-pattern", "hatched")
            if list_index is not None and f"serie-{list_index}" in classes and "series" in classes:
                for path in element.iter():
                    if _tag(path) == "path":
                        path.set("stroke-dasharray", "6 4")
            legend_of = next((i for i in lines if element.get("id") == f"activate-serie-{i}"), None)
            if legend_of is not None:
                colour = lines[legend_of]
                for child in list(element):
                    if _tag(child) == "rect":
                        x, y = float(child.get("x", 0)), float(child.get("y", 0))
                        element.remove(child)
                        element.insert(
                            0,
                            _make(
                                root,
                                "line",
                                x1=x - 2,
                                y1=y + 6,
                                x2=x + 14,
                                y2=y + 6,
                                stroke=colour,
                                stroke_width=2.5,
                                **{"class": "legend-line"},
                                **({"stroke-dasharray": "6 4"} if legend_of == list_index else {}),
                            ),
                        )
                        element.insert(
                            1, _make(root, "circle", cx=x + 6, cy=y + 6, r=3, fill=colour)
                        )
            if "titles" in classes:
                width = float((root.get("viewBox") or "0 0 800 450").split()[2])
                height = float((root.get("viewBox") or "0 0 800 450").split()[3])
                text = _make(
                    root,
                    "text",
                    x=width - 12,
                    y=height / 2,
                    transform=f"rotate(90 {width - 12} {height / 2})",
                    **{"class": "title y2-title", "text-anchor": "middle"},
                )
                text.text = right_title
                element.append(text)
        return root

    return apply


def participants_chart(rows, title: str = "") -> BarsAndLine:
    """The chart for statistics rows (``plugins.attendance.services.MeetingRow``)."""
    return _chart(chart_slots(rows), title)


def fiscal_year_slots(years) -> list[Slot]:
    """The x axis of the chart of the whole history: a place per fiscal year
    (``plugins.attendance.services.FiscalYearTotals``)."""
    return [
        Slot(
            _("FY%(year)s", year=fy.year),
            fy.onsite_participants or 0,
            fy.online_participants or 0,
            fy.unsplit,
            fy.cumulative,
        )
        for fy in years
    ]


def _chart(slots: list[Slot], title: str, per_year: bool = False) -> BarsAndLine:
    locale = "ja_JP" if current_language() == "ja" else "en_US"
    with_unsplit = any(s.unsplit for s in slots)
    with_list = any(s.on_list is not None for s in slots)
    colors = (ONSITE, ONLINE, UNSPLIT, CUMULATIVE) if with_unsplit else (ONSITE, ONLINE, CUMULATIVE)
    if with_list:
        colors = (*colors, ON_LIST)
    count = len(slots)
    chart = BarsAndLine(
        style=Style(colors=colors, **STYLE),
        title=title or None,
        js=(),  # no script from elsewhere; the SVG is self-contained
        disable_xml_declaration=True,
        legend_at_bottom=True,
        legend_at_bottom_columns=2,
        x_title=_("Fiscal year") if per_year else _("Meeting (number)"),
        y_title=_("Participants per fiscal year") if per_year else _("Participants per meeting"),
        x_label_rotation=0 if count <= 20 else 90,
        show_minor_x_labels=count <= 40,
        x_labels_major_every=max(1, count // 20) if count > 40 else None,
        truncate_label=-1,
        print_zeroes=False,
        allow_interruptions=True,
        width=800,
        height=470,
        margin_right=26,
        dots_size=2.5,
        stroke_style={"width": 2},
        value_formatter=lambda v: format_decimal(round(v), locale=locale),
    )
    chart.add_xml_filter(_without_scripts)
    line_index = 3 if with_unsplit else 2
    chart.add_xml_filter(
        _decorate(
            1,
            line_index,
            _("Cumulative participants and people on the list (lines, right axis)")
            if with_list
            else _("Cumulative participants (line, right axis)"),
            list_index=line_index + 1 if with_list else None,
        )
    )
    chart.gap_indexes = {i for i, s in enumerate(slots) if s.gap}
    chart.x_labels = [s.label for s in slots]
    chart.add(_("On site"), [s.onsite for s in slots])
    chart.add(_("Online (hatched)"), [s.online for s in slots])
    if with_unsplit:
        chart.add(_("On site or online (not split)"), [s.unsplit for s in slots])
    chart.add(
        _("Cumulative participants"),
        [s.cumulative for s in slots],
        secondary=True,
        show_dots=True,
        fill=False,
    )
    if with_list:
        chart.add(
            _("People on the list (登録人数)"),
            [s.on_list for s in slots],
            secondary=True,
            show_dots=True,
            fill=False,
        )
    return chart


_CACHE: OrderedDict[str, str] = OrderedDict()
_CACHE_SIZE = 64
_LOCK = threading.Lock()


def cache_key(slots: list[Slot], title: str, per_year: bool = False) -> str:
    raw = repr((current_language(), title, per_year, slots)).encode()
    return hashlib.sha256(raw).hexdigest()


def _svg(slots: list[Slot], title: str, per_year: bool = False) -> str:
    """The chart as an SVG document (text), drawn once per language, title and figures."""
    key = cache_key(slots, title, per_year)
    with _LOCK:
        svg = _CACHE.get(key)
        if svg is not None:
            _CACHE.move_to_end(key)
            return svg
    svg = _chart(slots, title, per_year).render(is_unicode=True)
    with _LOCK:
        _CACHE[key] = svg
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return svg


def participants_svg(rows, title: str = "") -> str:
    """The chart of meetings (statistics rows), as an SVG document (text)."""
    return _svg(chart_slots(rows), title)


def fiscal_years_svg(years, title: str = "") -> str:
    """The chart of the whole history, a bar per fiscal year, as an SVG document (text)."""
    return _svg(fiscal_year_slots(years), title, per_year=True)
