"""Pages of the list and the announcements.

Public (no log-in): joining a series' list, confirming, leaving and choosing the language from
an announcement's signed link, an announcement in the browser. The one-click leave answers a
POST without CSRF token or log-in (RFC 8058; the signed link is the credential; only that view
is exempt). Machine: the bounce and complaint webhook (shared secret). Organisers of the
series: announcements (write, preview, test, send, progress), the list and its import.
"""

from __future__ import annotations

import hmac

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user

from portal import audit
from portal.accounts.models import Person
from portal.announcements import (
    compose,
    counts,
    forms,
    list_import,
    queries,
    sending,
    subscriptions,
    tokens,
)
from portal.announcements.models import (
    Announcement,
    AnnouncementStatus,
    Audience,
    Subscription,
    SubscriptionStatus,
)
from portal.db import db
from portal.events.models import Event, Series
from portal.events.services import series_by_slug
from portal.extensions import csrf
from portal.i18n import BilingualText
from portal.localtime import to_local, to_utc
from portal.pagination import page_number, paginate
from portal.params import int_or_none
from portal.security import limit_email_form
from portal.transactions import state_change

bp = Blueprint("announcements", __name__, url_prefix="/<lang_code>")
admin = Blueprint(
    "announcements_admin", __name__, url_prefix="/<lang_code>/organiser/series/<slug>/announcements"
)
hooks = Blueprint("announcement_hooks", __name__)

PER_PAGE = 50


def _series_or_404(slug: str) -> Series:
    series = series_by_slug(db.session, slug)
    if series is None:
        abort(404)
    return series


def _link_problem(error: tokens.LinkError):
    message = (
        _("This link has expired. Please ask again.")
        if error.expired
        else _("This link is not valid. Please check that you copied all of it.")
    )
    return render_template("announcements/link_problem.html", message=message), 400


def _opened_link(read, token: str, find):
    """The values a signed link carries (``read(token)``) and the row ``find(*values)`` looks
    up; a link that is not valid, has expired or whose row is gone ends the request with the
    link-problem page (400)."""
    try:
        values = read(token)
    except tokens.LinkError as error:
        abort(make_response(_link_problem(error)))
    found = find(*values)
    if found is None:
        abort(make_response(_link_problem(tokens.LinkError())))
    return values, found


# -- public: join, confirm ----------------------------------------------------------------------


@bp.route("/series/<slug>/announcements/join", methods=["GET", "POST"])
@limit_email_form
def join(slug: str):
    series = _series_or_404(slug)
    form = forms.JoinForm()
    if request.method == "GET":
        form.language.data = g.get("lang_code") or "ja"
        if current_user.is_authenticated:
            form.email.data = current_user.email
            form.language.data = current_user.preferred_language
    if form.validate_on_submit():
        email = form.email.data.strip()
        verified_self = (
            current_user.is_authenticated
            and current_user.is_verified
            and current_user.email.lower() == email.lower()
        )
        with state_change(form) as change:
            sub = subscriptions.request_join(
                db.session,
                series,
                email=email,
                person=current_user.person if verified_self else None,
                name=form.name.data or "",
                language=form.language.data,
                source="page",
                confirmed=verified_self,
            )
            # Only the address's logged-in owner learns that it is on the list; anyone else
            # reads "we sent an email" whatever the address's state (no enumeration).
            joined = verified_self and sub.status == SubscriptionStatus.confirmed
        if change.ok:
            return render_template(
                "announcements/join_sent.html", series=series, email=email, joined=joined
            )
    return render_template("announcements/join.html", series=series, form=form), (
        400 if form.errors else 200
    )


@bp.route("/announcements/confirm/<token>", methods=["GET", "POST"])
def confirm(token: str):
    _values, sub = _opened_link(
        tokens.read_confirm, token, lambda sub_id, _email: db.session.get(Subscription, sub_id)
    )
    form = forms.EmptyForm()
    if form.validate_on_submit():
        with state_change(errors=(tokens.LinkError,), flash_errors=False) as change:
            sub = subscriptions.confirm(db.session, token)
        if not change.ok:
            return _link_problem(change.error)
        return render_template("announcements/confirmed.html", series=sub.series, sub=sub)
    return render_template("announcements/confirm.html", series=sub.series, form=form, sub=sub)


# -- public: leave, language, view -----------------------------------------------------------------


@bp.route("/announcements/leave/<token>", methods=["GET", "POST"])
def leave(token: str):
    """GET: the page with the leave button and the language choice. POST (the button, or a
    mail program's one-click request, ``List-Unsubscribe=One-Click``): leave; idempotent."""
    (series_id, person_id, announcement_id), series = _opened_link(
        tokens.read_leave,
        token,
        lambda series_id, person_id, _announcement: (
            db.session.get(Series, series_id) if db.session.get(Person, person_id) else None
        ),
    )
    if request.method == "POST":
        note = f"announcement:{announcement_id}" if announcement_id else "link"
        subscriptions.leave(db.session, series_id, person_id, source=note)
        db.session.commit()
        if request.form.get("List-Unsubscribe") == "One-Click":
            return "OK", 200, {"Content-Type": "text/plain; charset=utf-8"}
        return render_template("announcements/left.html", series=series)
    sub = subscriptions.subscription_of(db.session, series_id, person_id)
    form = forms.LanguageForm(language=sub.language if sub else g.get("lang_code"))
    return render_template(
        "announcements/leave.html", series=series, sub=sub, form=form, token=token
    )


csrf.exempt(leave)


@bp.post("/announcements/language/<token>")
def set_language(token: str):
    (series_id, person_id, _announcement), series = _opened_link(
        tokens.read_leave, token, lambda series_id, *_rest: db.session.get(Series, series_id)
    )
    form = forms.LanguageForm()
    if form.validate_on_submit():
        with state_change(form, success=_("Your choice of language has been saved.")) as change:
            subscriptions.set_language(db.session, series_id, person_id, form.language.data)
        if change.ok:
            return redirect(url_for("announcements.leave", token=token))
    sub = subscriptions.subscription_of(db.session, series_id, person_id)
    return render_template(
        "announcements/leave.html", series=series, sub=sub, form=form, token=token
    ), 400


@bp.get("/announcements/view/<token>")
def view(token: str):
    try:
        announcement_id, person_id = tokens.read_view(token)
    except tokens.LinkError as error:
        return _link_problem(error)
    announcement = db.session.get(Announcement, announcement_id)
    if announcement is None or announcement.status == AnnouncementStatus.draft:
        abort(404)
    lang = g.get("lang_code") or "ja"
    subject, body = compose.web_body(db.session, announcement, lang)
    leave_token = tokens.leave_token(announcement.series_id, person_id, announcement.id)
    return render_template(
        "announcements/view.html",
        announcement=announcement,
        subject=subject,
        body=body,
        leave_token=leave_token,
    )


# -- machine: bounces and complaints -------------------------------------------------------------


@hooks.post("/announcements/bounces")
def bounces():
    """``{"email": "...", "type": "bounce"|"complaint"}`` or a list of such objects, with the
    shared secret in the ``X-Portal-Secret`` header (setting ``BOUNCE_WEBHOOK_SECRET``)."""
    secret = current_app.config.get("BOUNCE_WEBHOOK_SECRET") or ""
    given = request.headers.get("X-Portal-Secret", "")
    if not secret or not hmac.compare_digest(secret.encode(), given.encode()):
        abort(403)
    payload = request.get_json(silent=True)
    items = payload if isinstance(payload, list) else [payload]
    changed = 0
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("email"), str):
            return jsonify(error='expected {"email": ..., "type": ...}'), 400
        kind = item.get("type") if item.get("type") in ("bounce", "complaint") else "bounce"
        changed += subscriptions.mark_undeliverable(db.session, item["email"][:254], kind)
    db.session.commit()
    return jsonify(changed=changed)


csrf.exempt(bounces)


# -- organisers -------------------------------------------------------------------------------------


@admin.url_value_preprocessor
def _pull_series(endpoint, values):
    g.announcement_series_slug = (values or {}).get("slug")


@admin.before_request
def require_organiser():
    if not current_user.is_authenticated:
        return current_app.login_manager.unauthorized()
    series = _series_or_404(g.get("announcement_series_slug") or "")
    if not current_user.is_organiser_of(series):
        abort(403 if not current_user.is_organiser else 404)
    g.series = series
    return None


def _announcement_or_404(series: Series, announcement_id: int) -> Announcement:
    announcement = db.session.get(Announcement, announcement_id)
    if announcement is None or announcement.series_id != series.id:
        abort(404)
    return announcement


@admin.get("/")
def index(slug: str):
    series = g.series
    page = paginate(db.session, queries.announcements_of(series), page_number(), 20)
    ids = [a.id for a in page.items]
    progress = sending.progress(db.session, ids)
    left = queries.unsubscribes_after(db.session, series, ids)
    return render_template(
        "announcements/admin_index.html",
        series=series,
        page=page,
        progress=progress,
        left=left,
        status_counts=queries.status_counts(db.session, series),
        list_size=counts.current_size(db.session, series),
    )


def _event_choices(series: Series) -> list[tuple[str, str]]:
    events = queries.linkable_events(db.session, series)
    return [("", _("(none)"))] + [
        (str(e.id), e.title.get(None, series.default_language)) for e in events
    ]


def _fill_form(form: forms.AnnouncementForm, series: Series) -> None:
    form.event_id.choices = _event_choices(series)


def _apply(form: forms.AnnouncementForm, announcement: Announcement, series: Series) -> None:
    announcement.subject = BilingualText(
        ja=(form.subject_ja.data or "").strip(), en=(form.subject_en.data or "").strip()
    )
    announcement.body = BilingualText(ja=form.body_ja.data or "", en=form.body_en.data or "")
    announcement.audience = Audience(form.audience.data)
    event_id = int_or_none(form.event_id.data)
    if event_id is not None:
        event = db.session.get(Event, event_id)
        if event is None or event.series_id != series.id:
            event_id = None
    announcement.event_id = event_id


@admin.route("/new", methods=["GET", "POST"])
def new(slug: str):
    series = g.series
    form = forms.AnnouncementForm()
    _fill_form(form, series)
    if form.validate_on_submit():
        with state_change(form, success=_("The announcement has been saved.")) as change:
            announcement = Announcement(series_id=series.id, created_by_id=current_user.id)
            _apply(form, announcement, series)
            db.session.add(announcement)
            db.session.flush()
            audit.record(db.session, current_user, "announcement", announcement.id, "created")
        if change.ok:
            return _to_detail(announcement)
    return render_template(
        "announcements/admin_form.html",
        series=series,
        form=form,
        announcement=None,
        placeholders=compose.PLACEHOLDERS,
    ), (400 if form.errors else 200)


def _detail(announcement: Announcement, form=None, schedule_form=None, test_form=None, code=200):
    series = g.series
    if form is None and announcement.editable:
        form = forms.AnnouncementForm(
            data={
                "subject_ja": announcement.subject.ja,
                "subject_en": announcement.subject.en,
                "body_ja": announcement.body.ja,
                "body_en": announcement.body.en,
                "event_id": str(announcement.event_id or ""),
                "audience": Audience(announcement.audience).value,
            }
        )
    if form is not None:
        _fill_form(form, series)
    previews = {lang: compose.web_body(db.session, announcement, lang) for lang in ("ja", "en")}
    figures = sending.progress(db.session, [announcement.id])[announcement.id]
    send_at_local = (
        to_local(announcement.send_at, series.timezone) if announcement.send_at else None
    )
    return render_template(
        "announcements/admin_detail.html",
        series=series,
        announcement=announcement,
        form=form,
        schedule_form=schedule_form or forms.ScheduleForm(),
        test_form=test_form or forms.TestForm(),
        previews=previews,
        figures=figures,
        remaining=figures["queued"],
        unsubscribes=queries.unsubscribes_after(db.session, series, [announcement.id]).get(
            announcement.id, 0
        ),
        audience_size=None if not announcement.editable else _audience_size(announcement),
        send_at_local=send_at_local,
        placeholders=compose.PLACEHOLDERS,
        audience_labels=forms.AUDIENCE_LABELS,
    ), code


def _audience_size(announcement: Announcement) -> int:
    from portal.announcements import audience

    return audience.count(db.session, announcement)


def _to_detail(announcement: Announcement):
    return redirect(url_for(".detail", slug=g.series.slug, announcement_id=announcement.id))


def _detail_form(announcement: Announcement, form, form_name: str, success: str, change):
    """A form of an announcement's page: if it is valid, ``change()`` as one state change
    (flashing ``success``) and back to the page; else the page again with the form's errors
    (400). ``form_name`` is the form's name in ``_detail``."""
    if form.validate_on_submit():
        with state_change(form, success=success) as done:
            change()
        if done.ok:
            return _to_detail(announcement)
    return _detail(announcement, code=400, **{form_name: form})


@admin.route("/<int:announcement_id>/", methods=["GET", "POST"])
def detail(slug: str, announcement_id: int):
    announcement = _announcement_or_404(g.series, announcement_id)
    if request.method == "GET":
        return _detail(announcement)
    if not announcement.editable:
        flash(_("This announcement has already been sent."), "error")
        return _to_detail(announcement)
    form = forms.AnnouncementForm()
    _fill_form(form, g.series)

    def edit():
        _apply(form, announcement, g.series)
        audit.record(db.session, current_user, "announcement", announcement.id, "edited")

    return _detail_form(announcement, form, "form", _("The announcement has been saved."), edit)


@admin.post("/<int:announcement_id>/test")
def send_test(slug: str, announcement_id: int):
    announcement = _announcement_or_404(g.series, announcement_id)
    form = forms.TestForm()
    return _detail_form(
        announcement,
        form,
        "test_form",
        _("A test has been sent to %(email)s.", email=current_user.email),
        lambda: sending.send_test(db.session, announcement, current_user, form.language.data),
    )


@admin.post("/<int:announcement_id>/send")
def send(slug: str, announcement_id: int):
    announcement = _announcement_or_404(g.series, announcement_id)
    form = forms.ScheduleForm()

    def queue():
        send_at = to_utc(form.send_at.data, g.series.timezone) if form.send_at.data else None
        sending.queue(db.session, announcement, current_user, send_at)

    success = (
        _("The announcement will be sent at the time set.")
        if form.send_at.data
        else _("The announcement is being sent. This page shows the progress.")
    )
    return _detail_form(announcement, form, "schedule_form", success, queue)


@admin.post("/<int:announcement_id>/unschedule")
def unschedule(slug: str, announcement_id: int):
    announcement = _announcement_or_404(g.series, announcement_id)
    form = forms.EmptyForm()
    if form.validate_on_submit():
        with state_change(form, success=_("The announcement is a draft again.")):
            sending.unschedule(db.session, announcement, current_user)
    return _to_detail(announcement)


@admin.get("/list")
def subscribers(slug: str):
    series = g.series
    status = request.args.get("status", "")
    if status not in {s.value for s in SubscriptionStatus}:
        status = ""
    page, rows = queries.subscribers_page(db.session, series, status, page_number(), PER_PAGE)
    return render_template(
        "announcements/admin_list.html",
        series=series,
        page=page,
        rows=rows,
        status=status,
        statuses=[s.value for s in SubscriptionStatus],
    )


@admin.route("/list/import", methods=["GET", "POST"])
def import_list(slug: str):
    series = g.series
    form = forms.ImportForm()
    preview = None
    code = 200
    if form.validate_on_submit():
        upload = request.files.get("file")
        stash = request.form.get("stash", "")
        try:
            if upload is not None and upload.filename:
                rows = list_import.read_upload(upload.read(), upload.filename)
                stash = list_import.stash(rows)
            elif stash:
                rows = list_import.unstash(stash)
            else:
                raise list_import.ImportError_(_("Please choose a file."))
            preview = list_import.preview(db.session, series, rows)
        except list_import.ImportError_ as error:
            form.file.errors = [*form.file.errors, str(error.message)]
            code = 400
        else:
            if request.form.get("step") == "import" and not preview.errors:
                with state_change(form) as change:
                    result = list_import.import_rows(
                        db.session,
                        series,
                        preview,
                        ask_to_confirm=form.confirm_by_email.data == "ask",
                        actor=current_user,
                    )
                if change.ok:
                    flash(
                        _(
                            "%(added)d people added to the list, %(merged)d already known.",
                            added=result.added,
                            merged=result.merged,
                        ),
                        "success",
                    )
                    return redirect(url_for(".subscribers", slug=slug))
            return render_template(
                "announcements/admin_import.html",
                series=series,
                form=form,
                preview=preview,
                stash=stash,
            ), (400 if preview.errors else 200)
    elif request.method == "POST":
        code = 400
    return render_template(
        "announcements/admin_import.html", series=series, form=form, preview=None, stash=""
    ), code


def init_app(app) -> None:
    app.register_blueprint(bp)
    app.register_blueprint(admin)
    app.register_blueprint(hooks)
