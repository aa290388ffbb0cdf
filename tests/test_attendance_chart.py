"""The participants chart: gaps, cancelled labels, axis titles, the cumulative line in the
legend, hatched online bars, and the rendered SVG kept until the figures change."""

from __future__ import annotations

import dataclasses
import re

import pytest

from plugins.attendance import chart as chart_module
from plugins.attendance import services
from plugins.attendance.importer import import_attendance, read_text
from portal.config import ROOT
from tests import factories as f

HISTORY = ROOT / "plugins/attendance/data/study_group_attendance.csv"


@pytest.fixture
def rows(app, session):
    series = f.series(session, slug="study-group")
    import_attendance(session, read_text(HISTORY), series)
    session.flush()
    return series, list(services.history_rows(session, series))


def _svg(app, rows, lang="en", title="T"):
    from flask_babel import force_locale

    with app.test_request_context(f"/{lang}/"), force_locale(lang):
        return chart_module.participants_svg(rows, title)


def test_missing_meetings_are_a_labelled_gap_and_break_the_line(app, rows):
    _, meeting_rows = rows
    svg = _svg(app, meeting_rows)
    labels = re.findall(r'<desc class="x_label">([^<]*)</desc>', svg)
    assert labels[9:12] == ["10", "11–80", "81"]
    # The cumulative line and the list's line (登録人数), each stopping at the gap.
    assert svg.count('class="line reactive nofill"') == 4
    slots = chart_module.chart_slots(meeting_rows)
    assert [s.label for s in slots if s.gap] == ["11–80"]


def test_cancelled_meeting_is_labelled_in_both_languages(app, rows):
    _, meeting_rows = rows
    assert ">90 (cancelled)<" in _svg(app, meeting_rows, "en")
    assert ">90（中止）<" in _svg(app, meeting_rows, "ja")


def test_both_axes_have_titles(app, rows):
    _, meeting_rows = rows
    svg = _svg(app, meeting_rows, "ja")
    titles = re.findall(r'<text[^>]*class="title[^"]*"[^>]*>([^<]*)</text>', svg)
    assert "開催回" in titles[1] and "参加者数" in titles[2]
    assert any("累計参加者数" in t and "右軸" in t for t in titles)  # the right-hand axis


def test_cumulative_series_is_a_line_in_the_legend_and_online_bars_are_hatched(app, rows):
    _, meeting_rows = rows
    svg = _svg(app, meeting_rows)
    legend = svg.split('class="legends"', 1)[1]
    cumulative = legend.split('id="activate-serie-2"', 1)[1].split("</g>", 1)[0]
    assert 'class="legend-line"' in cumulative and "<rect" not in cumulative
    online = legend.split('id="activate-serie-1"', 1)[1].split("</g>", 1)[0]
    assert 'data-pattern="hatched"' in online
    pattern_id = re.search(r'<pattern id="([^"]+)"', svg).group(1)
    online_bars = svg.split('class="series serie-1 color-1"', 1)[1].split(
        'class="series serie-2', 1
    )[0]
    assert online_bars.count(f"fill:url(#{pattern_id})") >= 23
    onsite_bars = svg.split('class="series serie-0 color-0"', 1)[1].split(
        'class="series serie-1', 1
    )[0]
    assert "url(#" not in onsite_bars  # on site: solid


def test_svg_is_drawn_once_until_the_figures_change(app, session, rows, monkeypatch):
    series, meeting_rows = rows
    chart_module._CACHE.clear()
    drawn = []
    real = chart_module._chart

    def counting(slots, title, *args):
        drawn.append(title)
        return real(slots, title, *args)

    monkeypatch.setattr(chart_module, "_chart", counting)
    first = _svg(app, meeting_rows)
    second = _svg(app, meeting_rows)
    assert first == second and len(drawn) == 1

    event = meeting_rows[-1].event
    services.save_figures(session, event, services.Figures(participants=191, company=138, university=30, government_other=23, online_participants=191, onsite_participants=0))  # fmt: skip
    changed = list(services.history_rows(session, series))
    _svg(app, changed)
    assert len(drawn) == 2
    _svg(app, meeting_rows, "ja")
    assert len(drawn) == 3  # another language is another drawing


def test_people_on_the_list_are_a_dashed_line_on_the_right_axis(app, rows):
    _, meeting_rows = rows
    svg = _svg(app, meeting_rows)
    legend = svg.split('class="legends"', 1)[1]
    on_list = legend.split('id="activate-serie-3"', 1)[1].split("</g>", 1)[0]
    assert 'class="legend-line"' in on_list and 'stroke-dasharray="6 4"' in on_list
    line = svg.split('class="series serie-3 color-3"', 1)[1].split("</g>", 1)[0]
    assert 'stroke-dasharray="6 4"' in line
    assert "Cumulative participants and people on the list (lines, right axis)" in svg
    without = [
        dataclasses.replace(r, figures=dataclasses.replace(r.figures, mailing_list=None))
        for r in meeting_rows
    ]
    assert "People on the list" not in _svg(app, without)
