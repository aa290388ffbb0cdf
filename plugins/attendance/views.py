"""The statistics page of a series, its chart and CSV, and saving a meeting's counted figures."""

from __future__ import annotations

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user
from markupsafe import Markup

from plugins.attendance import default_settings, services
from portal import pagecache, plugins
from portal.csvexport import csv_response, csv_stream_response
from portal.db import db
from portal.events import services as event_services
from portal.events.models import Series
from portal.i18n import current_language
from portal.pagination import Page, page_number
from portal.params import int_arg

bp = Blueprint("attendance", __name__, url_prefix="/<lang_code>", template_folder="templates")


def format_number(value) -> str:
    """1,857 — or a dash where the figure is not known."""
    if value is None:
        return "–"
    if isinstance(value, int):  # Babel's grouping for ja_JP and en_US alike, without its data
        return f"{value:,}"
    from babel.numbers import format_decimal

    return format_decimal(value, locale="ja_JP" if current_language() == "ja" else "en_US")


def fiscal_year_label(year: int) -> str:
    return _("FY%(year)s", year=year)


def meeting_label(number) -> str:
    return _("Meeting %(number)s", number=number) if number is not None else ""


def _series_or_404(slug: str) -> Series:
    series = event_services.series_by_slug(db.session, slug)
    if series is None:
        abort(404)
    plugins.require_series_enabled(series, services.PLUGIN)
    if not services.can_see_statistics(db.session, series, current_user, default_settings):
        if not current_user.is_authenticated:
            abort(current_app.login_manager.unauthorized())  # organisers: log in first
        abort(404)
    return series


ALL_YEARS = "all"
MEETINGS_PER_PAGE = 50  # a fiscal year's meetings on one page (and in its chart)


def _year_arg() -> tuple[int | None, bool]:
    """``fy``: a fiscal year, ``all`` (a row per fiscal year), or nothing (the latest year)."""
    if request.args.get("fy", "").strip() == ALL_YEARS:
        return None, False
    return int_arg("fy", minimum=1900, maximum=2200), True


def _statistics(slug: str):
    series = _series_or_404(slug)
    year, latest = _year_arg()
    return series, services.series_statistics(db.session, series, year=year, latest=latest)


def _chart_svg(stats, rows=None) -> str:
    """The year's meetings (``rows``: the page of them shown) or a bar per fiscal year."""
    from plugins.attendance import chart  # pygal loads on first chart

    if stats.selected_year is not None:
        title = _("Participants per meeting, %(year)s", year=fiscal_year_label(stats.selected_year))
        return chart.participants_svg(stats.rows if rows is None else rows, title)
    return chart.fiscal_years_svg(stats.fiscal_years, _("Participants per fiscal year"))


def _meetings_page(stats, page: int) -> Page:
    """The page of the selected year's meetings shown (a year of a long history at 100x
    holds hundreds); the subtotal and the cumulative column still count the whole year."""
    per_page = MEETINGS_PER_PAGE
    pages = max(1, -(-len(stats.rows) // per_page))
    page = min(page, pages)
    rows = stats.rows[(page - 1) * per_page : page * per_page]
    return Page(items=rows, page=page, per_page=per_page, total=len(stats.rows))


def _figures_html(series: Series, year: int | None, latest: bool, page: int) -> str:
    """The tables and the chart: the statistics' SQL, the SVG and the tables, rendered only
    when figures changed (any event's rows, or anything global) or a meeting ended since."""
    pagecache.fresh_until(services.next_meeting_end(db.session, series))
    stats = services.series_statistics(db.session, series, year=year, latest=latest)
    meetings = _meetings_page(stats, page)
    return render_template(
        "attendance/_statistics_figures.html",
        series=series,
        stats=stats,
        meetings=meetings,
        all_years=ALL_YEARS,
        chart=Markup(_chart_svg(stats, meetings.items)) if stats.fiscal_years else "",
        num=format_number,
        fiscal_year_label=fiscal_year_label,
        meeting_label=meeting_label,
    )


@bp.get("/series/<slug>/statistics")
def statistics(slug: str):
    series = _series_or_404(slug)
    year, latest = _year_arg()
    page = page_number()
    figures = pagecache.kept_part(
        lambda: f"attendance-statistics:{series.id}:{current_language()}:{year}:{latest}:{page}",
        [pagecache.EVENTS],
        lambda: _figures_html(series, year, latest, page),
    )
    organiser = services.is_organiser(current_user, series)
    return render_template(
        "attendance/statistics.html",
        series=series,
        figures=Markup(figures),
        is_organiser=organiser,
        is_public=organiser and services.statistics_public(db.session, series, default_settings),
    )


@bp.get("/series/<slug>/statistics/chart.svg")
def chart_svg(slug: str):
    series, stats = _statistics(slug)
    svg = '<?xml version="1.0" encoding="utf-8"?>\n' + _chart_svg(stats)
    return Response(svg, mimetype="image/svg+xml")


def csv_header() -> list[str]:
    return [
        _("Meeting"),
        _("Date"),
        _("Fiscal year"),
        _("Registered"),
        _("On the mailing list"),
        _("Participants"),
        _("Company"),
        _("University"),
        _("Government & other"),
        _("On site"),
        _("Online"),
        _("Cumulative participants"),
        _("Cancelled"),
        _("Note"),
    ]


def csv_row(row) -> list:
    f = row.figures
    return [
        row.number,
        row.day.isoformat(),
        fiscal_year_label(row.fiscal_year),
        f.registered,
        f.mailing_list,
        f.participants,
        f.company,
        f.university,
        f.government_other,
        f.onsite_participants,
        f.online_participants,
        row.cumulative,
        _("Cancelled") if f.cancelled else "",
        f.note,
    ]


def csv_total(t) -> list:
    return [
        _("Total"),
        "",
        "",
        "",
        "",
        t.participants,
        t.company,
        t.university,
        t.government_other,
        t.onsite_participants,
        t.online_participants,
        t.cumulative,
        t.cancelled or "",
        "",
    ]


@bp.get("/series/<slug>/statistics.csv")
def statistics_csv(slug: str):
    """One fiscal year (``fy``), or the whole history, meeting by meeting, streamed."""
    series = _series_or_404(slug)
    year, _latest = _year_arg()
    language = current_language()
    if year is not None:
        stats = services.series_statistics(db.session, series, year=year)
        if stats.selected_year == year:
            rows = [csv_header(), *map(csv_row, stats.rows), csv_total(stats.totals)]
            return csv_response(rows, f"attendance-{series.slug}-fy{year}-{language}.csv")
    series_id = series.id

    def rows():
        session = db.session
        series = session.get(Series, series_id)
        yield csv_header()
        total = services.Totals()
        for row in services.history_rows(session, series):
            total.add(row.figures, row.cumulative)
            yield csv_row(row)
        yield csv_total(total)

    return csv_stream_response(rows(), f"attendance-{series.slug}-{language}.csv")


@bp.post("/events/<slug>/attendance/record")
def record(slug: str):
    """Save the figures counted from registrations as the meeting's reported figures."""
    event = event_services.event_by_slug(db.session, slug)
    if event is None or not services.is_organiser(current_user, event.series):
        abort(404)
    plugins.require_enabled(event, services.PLUGIN)
    try:
        row, outcome = services.record_from_registrations(db.session, event, actor=current_user)
    except services.NoFigures:
        flash(_("There are no registrations to count for this meeting yet."), "error")
    except services.NotHeld:
        flash(_("Figures can be saved only once the meeting has taken place."), "error")
    else:
        db.session.commit()
        flash(
            _(
                "The figures of %(event)s are saved: %(participants)s participants.",
                event=event.t("title"),
                participants=format_number(row.participants),
            ),
            "success",
        )
    target = request.form.get("next", "")
    if not target.startswith("/") or target.startswith("//"):
        target = url_for("attendance.statistics", slug=event.series.slug)
    return redirect(target)


# -- the organiser's import page ---------------------------------------------------------------


def _organiser_series_or_404(slug: str) -> Series:
    series = event_services.series_by_slug(db.session, slug)
    if series is None:
        abort(404)
    plugins.require_series_enabled(series, services.PLUGIN)
    if not current_user.is_authenticated:
        abort(current_app.login_manager.unauthorized())
    if not services.is_organiser(current_user, series):
        abort(404)
    return series


def _import_page(series, form, status=200, report=None, confirm=None, error=None):
    return (
        render_template(
            "attendance/import.html",
            series=series,
            form=form,
            report=report,
            confirm=confirm,
            error=error,
            num=format_number,
            meeting_label=meeting_label,
        ),
        status,
    )


@bp.route("/series/<slug>/statistics/import", methods=["GET", "POST"])
def import_page(slug: str):
    """Upload a table (CSV or .xlsx): a dry-run preview first, then the import itself."""
    from plugins.attendance.forms import MAX_TABLE_CHARS, ConfirmForm, UploadForm
    from plugins.attendance.importer import (
        ImportFileError,
        import_attendance,
        read_table,
        table_as_csv,
    )

    series = _organiser_series_or_404(slug)
    form = UploadForm()
    if request.method == "GET":
        return _import_page(series, form)

    confirm = ConfirmForm()
    importing = "table" in request.form
    if importing:
        if not confirm.validate_on_submit():
            abort(400)
        text = confirm.table.data or ""
        if len(text) > MAX_TABLE_CHARS:
            return _import_page(series, form, 400, error=_("The file is too large."))
    else:
        if not form.validate_on_submit():
            abort(400)
        upload = form.file.data
        if not upload or not getattr(upload, "filename", ""):
            return _import_page(series, form, 400, error=_("Choose a file to import."))
        try:
            text = table_as_csv(read_table(upload.read(), upload.filename))
        except ImportFileError as exc:
            return _import_page(series, form, 400, error=exc.translated())

    try:
        report = import_attendance(db.session, text, series, actor=current_user)
    except ImportFileError as exc:
        db.session.rollback()
        return _import_page(series, form, 400, error=exc.translated())
    if not importing:
        db.session.rollback()  # the preview saves nothing
        confirm.table.data = text
        return _import_page(series, form, report=report, confirm=confirm)
    db.session.commit()
    flash(
        _(
            "Imported: %(created)s created, %(changed)s changed, %(unchanged)s unchanged, "
            "%(skipped)s skipped.",
            created=report.created,
            changed=report.changed,
            unchanged=report.unchanged,
            skipped=len(report.invalid),
        ),
        "success",
    )
    return redirect(url_for("attendance.statistics", slug=series.slug))
