"""Archive pages: browse (by meeting, speaker, year) and search a series' archive, an event's
material with upload forms, the checked and logged file and link requests, and the access log.

Status codes of an item request (``/<lang>/archive/items/<id>``): 200 (file) or 302 (link)
for those who may see it; visitors who are not logged in are sent to the login page (302);
logged-in people who may not see it get 403 with the explanation of how to get access; an
item of a draft event or of an event without the plugin is 404. Every such request for an
existing item is logged, allowed or not.
"""

from __future__ import annotations

from flask import (
    Blueprint,
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

from plugins.archive import files, forms, services
from plugins.archive.models import ArchiveItem, FileType, ItemKind
from portal import plugins
from portal.db import db
from portal.events import services as event_services
from portal.events.models import Event, Series, Talk
from portal.extensions import csrf
from portal.pagination import page_number, paginate_next
from portal.params import int_arg, int_or_none
from portal.transactions import state_change

bp = Blueprint("archive", __name__, url_prefix="/<lang_code>", template_folder="templates")

PER_PAGE = 20
LOG_PER_PAGE = 50

TYPE_LABELS = {
    FileType.pdf: "PDF",
    FileType.pptx: "PowerPoint",
    FileType.png: "PNG",
    FileType.jpeg: "JPEG",
}


@bp.app_context_processor
def archive_helpers():
    return {
        "archive_type_label": type_label,
        "archive_membership_url": membership_url,
        "archive_size": size_label,
    }


def size_label(size: int) -> str:
    """850 KB / 12.3 MB."""
    if size < 1024 * 1024:
        return f"{max(1, round(size / 1024))} KB"
    return f"{size / 1024 / 1024:.1f} MB"


def type_label(item: ArchiveItem) -> str:
    if item.kind == ItemKind.link:
        return _("Video")
    return TYPE_LABELS.get(item.file_type, "")


def membership_url(series: Series) -> str | None:
    """The membership plugin's page of the series, where it is installed."""
    if "membership.mine" in current_app.view_functions:
        return url_for("membership.mine", slug=series.slug)
    return None


def _series_or_404(slug: str) -> Series:
    """The series, when it has the archive on (a series plugin), else 404."""
    series = event_services.series_by_slug(db.session, slug)
    if series is None:
        abort(404)
    plugins.require_series_enabled(series, services.PLUGIN)
    return series


def _year_arg() -> int | None:
    return int_or_none(request.args.get("year", ""), 1901, 2199)


def _int_arg(name: str) -> int | None:
    return int_arg(name)


# -- browsing --------------------------------------------------------------------------------


@bp.get("/series/<slug>/archive/")
def index(slug: str):
    series = _series_or_404(slug)
    year, speaker_id = _year_arg(), _int_arg("speaker")
    query = (request.args.get("q") or "").strip()[:200]
    access = services.access(current_user, series)
    stmt = services.archive_talks(
        series, year=year, speaker_id=speaker_id, query=query, access=access
    )
    page = paginate_next(db.session, stmt, page_number(), PER_PAGE)
    items = services.items_by_talk(db.session, [t.id for t in page.items])
    speaker = services.archive_speaker(db.session, series, speaker_id) if speaker_id else None
    return render_template(
        "archive/index.html",
        series=series,
        page=page,
        items=items,
        years=services.archive_years(db.session, series),
        year=year,
        speaker=speaker,
        query=query,
        access=access,
    )


@bp.get("/series/<slug>/archive/speakers")
def speakers(slug: str):
    series = _series_or_404(slug)
    stmt = services.archive_speakers(series)
    page = paginate_next(db.session, stmt, page_number(), PER_PAGE, scalars=False)
    return render_template("archive/speakers.html", series=series, page=page)


@bp.get("/series/<slug>/archive/log")
def log(slug: str):
    if not current_user.is_authenticated:
        abort(current_app.login_manager.unauthorized())
    series = _series_or_404(slug)
    if not current_user.is_organiser_of(series):
        abort(404)
    page = paginate_next(db.session, services.access_log(series), page_number(), LOG_PER_PAGE)
    return render_template("archive/log.html", series=series, page=page)


# -- an event's material and uploads ---------------------------------------------------------


def _event_or_404(slug: str) -> Event:
    event = event_services.event_with_programme(db.session, slug)
    if event is None or not event_services.can_view(event, current_user):
        abort(404)
    plugins.require_enabled(event, services.PLUGIN)
    return event


def _talk_or_404(event: Event, talk_id: int) -> Talk:
    for talk in event.talks:
        if talk.id == talk_id:
            return talk
    abort(404)


def _uploadable_talk(slug: str, talk_id: int) -> tuple[Event, Talk]:
    if not current_user.is_authenticated:
        abort(current_app.login_manager.unauthorized())
    event = _event_or_404(slug)
    talk = _talk_or_404(event, talk_id)
    if not services.can_upload(current_user, talk, event.series):
        abort(404)
    return event, talk


@bp.get("/events/<slug>/archive/")
def event_archive(slug: str):
    event = _event_or_404(slug)
    items = services.items_by_talk(db.session, [t.id for t in event.talks])
    return render_template(
        "archive/event.html",
        event=event,
        series=event.series,
        items=items,
        access=services.access(current_user, event.series),
        uploadable={
            t.id for t in event.talks if services.can_upload(current_user, t, event.series)
        },
        confirm_form=forms.ConfirmForm(),
        max_mb=services.max_file_mb(event),
    )


@csrf.exempt  # the form checks its CSRF token itself, after the larger size limit is set
@bp.route("/events/<slug>/archive/talks/<int:talk_id>/files", methods=["GET", "POST"])
def upload(slug: str, talk_id: int):
    event, talk = _uploadable_talk(slug, talk_id)
    limit = services.max_file_bytes(event)
    # Room for the other fields, so that a file just over the limit gets a clear message.
    request.max_content_length = limit + 1024 * 1024
    form = forms.FileForm()
    if form.validate_on_submit():
        storage = form.file.data
        added = _("The file was added to the archive.")
        with state_change(form, field="file", success=added) as change:
            data = files.read_upload(storage, limit, services.max_file_mb(event))
            services.add_file(
                db.session,
                talk,
                data,
                storage.filename,
                current_user,
                title=form.title(),
                max_bytes=limit,
            )
        if change.ok:
            return redirect(url_for(".event_archive", slug=slug))
    code = 400 if form.is_submitted() else 200
    return render_template(
        "archive/upload.html",
        event=event,
        talk=talk,
        form=form,
        max_mb=services.max_file_mb(event),
    ), code


@bp.route("/events/<slug>/archive/talks/<int:talk_id>/links", methods=["GET", "POST"])
def add_link(slug: str, talk_id: int):
    event, talk = _uploadable_talk(slug, talk_id)
    form = forms.LinkForm()
    if form.validate_on_submit():
        added = _("The video link was added to the archive.")
        with state_change(form, field="url", success=added) as change:
            services.add_link(db.session, talk, form.url.data, current_user, title=form.title())
        if change.ok:
            return redirect(url_for(".event_archive", slug=slug))
    code = 400 if form.is_submitted() else 200
    return render_template("archive/link_form.html", event=event, talk=talk, form=form), code


@bp.post("/events/<slug>/archive/items/<int:item_id>/delete")
def delete(slug: str, item_id: int):
    if not current_user.is_authenticated:
        abort(current_app.login_manager.unauthorized())
    event = _event_or_404(slug)
    item = db.session.get(ArchiveItem, item_id)
    if item is None:
        abort(404)
    talk = _talk_or_404(event, item.talk_id)
    if not services.can_upload(current_user, talk, event.series):
        abort(404)
    if not forms.ConfirmForm().validate_on_submit():
        abort(400)
    stored = services.delete_item(db.session, item, current_user)
    db.session.commit()
    files.remove(stored)
    flash(_("The item was removed from the archive."), "success")
    return redirect(url_for(".event_archive", slug=slug))


# -- the checked, logged request for an item -------------------------------------------------


def _content_disposition(item: ArchiveItem) -> dict:
    return {
        "download_name": item.original_name
        or f"archive-{item.id}.{files.EXTENSIONS[item.file_type]}",
        "as_attachment": item.file_type == FileType.pptx,
    }


@bp.get("/archive/items/<int:item_id>")
def open_item(item_id: int):
    item = db.session.get(ArchiveItem, item_id)
    if item is None:
        abort(404)
    talk = db.session.get(Talk, item.talk_id)
    event = db.session.get(Event, talk.event_id)
    if not event_services.can_view(event, current_user) or not plugins.is_enabled(
        event, services.PLUGIN
    ):
        abort(404)
    series = event.series
    access = services.access(current_user, series)
    allowed = access.sees(talk)
    services.log_access(
        item, series, current_user, allowed, access.why(talk) if allowed else access.reason
    )
    if not allowed:
        if not current_user.is_authenticated:
            return current_app.login_manager.unauthorized()
        return render_template(
            "archive/denied.html", series=series, event=event, talk=talk, item=item
        ), 403
    if item.kind == ItemKind.link:
        response = redirect(item.url)
    else:
        response = files.send(
            item.stored_name,
            files.MIMETYPES[item.file_type],
            conditional=False,
            etag=False,
            max_age=0,
            **_content_disposition(item),
        )
        if response is None:
            abort(404)
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "sandbox"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
