"""Organiser pages (幹事・主催者ページ): series, events, talks, plugins per event, roles.

Who gets in: administrators, and organisers of a series for that series' events. Anyone else
logged in gets 403; visitors are sent to the login page; an organiser of another series gets
404 for an event that is not theirs.
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
from markupsafe import Markup

from portal import pagecache, plugins
from portal.accounts import services as account_services
from portal.accounts.models import Person, User, UserRole
from portal.db import db
from portal.events import services as event_services
from portal.events.models import Event, EventStatus, Series, Talk
from portal.events.services import STATUS_LABELS, STATUS_MOVES
from portal.localtime import to_local
from portal.organiser import forms, services
from portal.pagecache import EVENTS
from portal.pagination import page_number, paginate
from portal.payments.unmatched import needing_attention
from portal.transactions import state_change

bp = Blueprint("organiser", __name__, url_prefix="/<lang_code>/organiser")

PER_PAGE = 20
SPEAKER_RESULTS = 20


@bp.before_request
def require_organiser():
    if not current_user.is_authenticated:
        return current_app.login_manager.unauthorized()
    if not current_user.is_organiser:
        abort(403)
    return None


def _require_admin() -> None:
    if not current_user.is_admin:
        abort(403)


def _series_or_404(slug: str) -> Series:
    series = event_services.series_by_slug(db.session, slug)
    if series is None:
        abort(404)
    return series


def _event_or_404(slug: str) -> Event:
    """The event, if the person organises its series; everyone else gets 404."""
    event = event_services.event_with_programme(db.session, slug)
    if event is None or not current_user.is_organiser_of(event.series):
        abort(404)
    return event


def _talk_or_404(event: Event, talk_id: int) -> Talk:
    for talk in event.talks:
        if talk.id == talk_id:
            return talk
    abort(404)


# -- index -----------------------------------------------------------------------------------


@bp.get("/")
def index():
    series = services.organised_series(db.session, current_user)
    page = paginate(
        db.session, services.organiser_events([s.id for s in series]), page_number(), PER_PAGE
    )
    counts = services.registration_counts(db.session, [e.id for e in page.items])
    return render_template(
        "organiser/index.html",
        series=series,
        page=page,
        counts=counts,
        status_labels=STATUS_LABELS,
        unmatched_payments=needing_attention(db.session, current_user),
    )


# -- series (administrators) -----------------------------------------------------------------


@bp.route("/series/new", methods=["GET", "POST"])
def series_new():
    _require_admin()
    form = forms.SeriesForm()
    if form.validate_on_submit():
        series = services.create_series(db.session, current_user, **form.values())
        db.session.commit()
        flash(_("The series “%(name)s” was created.", name=series.name.get()), "success")
        return redirect(url_for(".index"))
    code = 400 if form.is_submitted() else 200
    return render_template("organiser/series_form.html", form=form, series=None), code


@bp.route("/series/<slug>/edit", methods=["GET", "POST"])
def series_edit(slug: str):
    _require_admin()
    series = _series_or_404(slug)
    form = forms.SeriesForm(series=series)
    if form.validate_on_submit():
        services.update_series(db.session, series, current_user, **form.values())
        db.session.commit()
        flash(_("The series “%(name)s” was saved.", name=series.name.get()), "success")
        return redirect(url_for(".index"))
    code = 400 if form.is_submitted() else 200
    return render_template("organiser/series_form.html", form=form, series=series), code


# -- events ----------------------------------------------------------------------------------


@bp.route("/events/new", methods=["GET", "POST"])
def event_new():
    series = services.organised_series(db.session, current_user)
    if not series:
        abort(404)
    chosen = next((s for s in series if s.slug == request.args.get("series")), series[0])
    form = forms.EventForm(
        series=series,
        data={
            "series_id": chosen.id,
            "timezone": chosen.timezone,
            "status": EventStatus.draft.value,
            "format": "onsite",
        },
    )
    if form.validate_on_submit():
        with state_change(form, success=_("The event was created.")) as change:
            event = services.create_event(
                db.session,
                current_user,
                status=EventStatus(form.status.data),
                reason=form.reason.data,
                **form.values(),
            )
        if change.ok:
            return redirect(url_for(".event_dashboard", slug=event.slug))
    code = 400 if form.is_submitted() else 200
    return render_template("organiser/event_form.html", form=form, event=None), code


@bp.route("/events/<slug>/edit", methods=["GET", "POST"])
def event_edit(slug: str):
    event = _event_or_404(slug)
    series = services.organised_series(db.session, current_user)
    form = forms.EventForm(series=series, event=event)
    if form.validate_on_submit():
        with state_change(form, success=_("The event was saved.")) as change:
            services.update_event(
                db.session,
                event,
                current_user,
                status=EventStatus(form.status.data),
                reason=form.reason.data,
                **form.values(),
            )
        if change.ok:
            return redirect(url_for(".event_dashboard", slug=event.slug))
    code = 400 if form.is_submitted() else 200
    return render_template("organiser/event_form.html", form=form, event=event), code


def _plugin_rows(
    names, enabled: set[str], current, urls, settings_forms: dict | None = None
) -> list[dict]:
    """One card per plugin: on or off, its switch and its settings form (``current(name)``
    its settings, ``urls(name)`` the switch's and the settings form's addresses)."""
    rows = []
    for name in names:
        module = plugins.installed()[name]
        form = (settings_forms or {}).get(name) or forms.plugin_settings_form(module, current(name))
        toggle_url, settings_url = urls(name)
        rows.append(
            {
                "name": name,
                "label": getattr(module, "label", name),
                "description": getattr(module, "description", ""),
                "enabled": name in enabled,
                "settings_form": form,
                "settings_endpoint": getattr(module, "settings_endpoint", None),
                "toggle_url": toggle_url,
                "settings_url": settings_url,
            }
        )
    return rows


def _event_plugin_rows(event: Event, settings_forms: dict | None = None) -> list[dict]:
    """The event's own plugins (series plugins are switched on the series' page)."""
    names = [n for n in plugins.installed() if plugins.scope(n) == plugins.EVENT]
    return _plugin_rows(
        names,
        plugins.enabled_names(event),
        lambda name: plugins.settings(event, name),
        lambda name: (
            url_for(".plugin_toggle", slug=event.slug, name=name),
            url_for(".plugin_settings", slug=event.slug, name=name),
        ),
        settings_forms,
    )


def _series_plugin_rows(series: Series, settings_forms: dict | None = None) -> list[dict]:
    names = plugins.series_plugin_names()
    return _plugin_rows(
        names,
        {n for n in names if plugins.series_enabled(series, n)},
        lambda name: plugins.series_settings(series, name),
        lambda name: (
            url_for(".series_plugin_toggle", slug=series.slug, name=name),
            url_for(".series_plugin_settings", slug=series.slug, name=name),
        ),
        settings_forms,
    )


def _render_dashboard(event: Event, status_form=None, settings_forms=None, code: int = 200):
    moves = sorted(STATUS_MOVES[event.status], key=lambda s: list(EventStatus).index(s))
    again = status_form is not None or settings_forms is not None  # a form with its errors
    if status_form is None:
        status_form = forms.StatusForm(formdata=None)
    status_form.status.choices = forms.status_choices(moves) if moves else []

    def content() -> str:
        return render_template(
            "organiser/_event_content.html",
            event=event,
            status_form=status_form,
            can_move=bool(moves),
            plugin_rows=_event_plugin_rows(event, settings_forms),
            series_plugins=[
                plugins.installed()[n].label
                for n in plugins.series_plugin_names()
                if plugins.series_enabled(event.series, n)
            ],
            status_labels=STATUS_LABELS,
            format_labels=event_services.FORMAT_LABELS,
        )

    # The panels, counts and cards change with the event's rows or anything global (their
    # plugins' rows, people, roles): kept under those versions for the organiser.
    html = content() if again else pagecache.kept_for_person("dashboard", [EVENTS], content)
    return (
        render_template(
            "organiser/event.html", event=event, status_form=status_form, content=Markup(html)
        ),
        code,
    )


@bp.get("/events/<slug>/")
def event_dashboard(slug: str):
    return _render_dashboard(_event_or_404(slug))


@bp.post("/events/<slug>/status")
def event_status(slug: str):
    event = _event_or_404(slug)
    form = forms.StatusForm()
    if not form.validate():
        return _render_dashboard(event, status_form=form, code=400)
    new = EventStatus(form.status.data)
    now = _("The status is now “%(status)s”.", status=STATUS_LABELS[new])
    with state_change(form, success=now) as change:
        event_services.change_status(db.session, event, new, current_user, form.reason.data)
    if not change.ok:
        return _render_dashboard(event, status_form=form, code=400)
    return redirect(url_for(".event_dashboard", slug=slug))


# -- plugins per event -----------------------------------------------------------------------


def _plugin_or_404(name: str):
    module = plugins.installed().get(name)
    if module is None:
        abort(404)
    return module


def _event_plugin_or_404(name: str):
    """A plugin switched per event; a series plugin is switched on the series' page."""
    module = _plugin_or_404(name)
    if plugins.scope(name) != plugins.EVENT:
        abort(404)
    return module


def _switch(where, name: str, module) -> tuple[bool, str]:
    """Turn the plugin on or off for an event or a series as the form says; (on?, label)."""
    enabled = request.form.get("enabled") == "1"
    services.set_plugin_enabled(db.session, where, name, enabled, current_user)
    db.session.commit()
    return enabled, str(getattr(module, "label", name))


@bp.post("/events/<slug>/plugins/<name>")
def plugin_toggle(slug: str, name: str):
    event = _event_or_404(slug)
    enabled, label = _switch(event, name, _event_plugin_or_404(name))
    if enabled:
        flash(_("%(plugin)s is now on for this event.", plugin=label), "success")
    else:
        flash(_("%(plugin)s is now off for this event.", plugin=label), "success")
    return redirect(url_for(".event_dashboard", slug=slug, _anchor="plugins"))


def _save_settings(where, name: str, module, current: dict, on_error, done_url: str):
    """A plugin's settings form sent for an event or a series: saved (and back to the page),
    or ``on_error({name: form})`` renders the page again with the input kept (400)."""
    form = forms.plugin_settings_form(module, current, request.form)
    if form is None:
        abort(404)
    if not form.validate():
        return on_error({name: form})
    values = forms.plugin_settings_values(module, form)
    services.update_plugin_settings(db.session, where, name, values, current_user)
    db.session.commit()
    flash(
        _("The settings of %(plugin)s were saved.", plugin=str(getattr(module, "label", name))),
        "success",
    )
    return redirect(done_url)


@bp.post("/events/<slug>/plugins/<name>/settings")
def plugin_settings(slug: str, name: str):
    event = _event_or_404(slug)
    return _save_settings(
        event,
        name,
        _event_plugin_or_404(name),
        plugins.settings(event, name),
        lambda failed: _render_dashboard(event, settings_forms=failed, code=400),
        url_for(".event_dashboard", slug=slug, _anchor="plugins"),
    )


# -- plugins of a whole series (membership, archive, attendance) ----------------------------


def _organised_series_or_404(slug: str) -> Series:
    series = _series_or_404(slug)
    if not current_user.is_organiser_of(series):
        abort(404)
    return series


def _series_plugin_or_404(name: str):
    module = _plugin_or_404(name)
    if plugins.scope(name) != plugins.SERIES:
        abort(404)
    return module


def _render_series_plugins(series: Series, settings_forms=None, code: int = 200):
    return (
        render_template(
            "organiser/series_plugins.html",
            series=series,
            plugin_rows=_series_plugin_rows(series, settings_forms),
        ),
        code,
    )


@bp.get("/series/<slug>/plugins")
def series_plugins(slug: str):
    """The series' own plugins: on for the whole series (every meeting), one switch each."""
    return _render_series_plugins(_organised_series_or_404(slug))


@bp.post("/series/<slug>/plugins/<name>")
def series_plugin_toggle(slug: str, name: str):
    series = _organised_series_or_404(slug)
    enabled, label = _switch(series, name, _series_plugin_or_404(name))
    if enabled:
        flash(_("%(plugin)s is now on for the whole series.", plugin=label), "success")
    else:
        flash(_("%(plugin)s is now off for the whole series.", plugin=label), "success")
    return redirect(url_for(".series_plugins", slug=slug))


@bp.post("/series/<slug>/plugins/<name>/settings")
def series_plugin_settings(slug: str, name: str):
    series = _organised_series_or_404(slug)
    return _save_settings(
        series,
        name,
        _series_plugin_or_404(name),
        plugins.series_settings(series, name),
        lambda failed: _render_series_plugins(series, settings_forms=failed, code=400),
        url_for(".series_plugins", slug=slug),
    )


# -- talks -----------------------------------------------------------------------------------


def find_people(query: str, limit: int = SPEAKER_RESULTS) -> list[Person]:
    """People whose name, reading (kana or romaji), romanised name or email contains every
    word typed (``portal.accounts.search.find_people``)."""
    from portal.accounts.search import find_people as search_people

    return search_people(db.session, query, limit)


def _speaker_choices(form: forms.TalkForm, found: list[Person], current: Person | None):
    people = {}
    if current is not None:
        people[current.id] = current
    chosen = form.speaker_id.data
    if chosen and chosen not in people:
        person = db.session.get(Person, chosen)
        if person is not None:
            people[person.id] = person
    for person in found:
        people.setdefault(person.id, person)
    form.speaker_id.choices = [forms.choice(0, _("No speaker yet"))] + [
        forms.choice(p.id, _speaker_label(p)) for p in people.values()
    ]


def _speaker_label(person: Person) -> str:
    name = person.display_name
    return f"{name} ({person.affiliation})" if person.affiliation else name


def _talk_form(event: Event, talk: Talk | None):
    if talk is None:
        next_position = max((t.position for t in event.talks), default=0) + 1
        form = forms.TalkForm(
            data={"position": next_position, "language": event.series.default_language}
        )
    else:
        form = forms.TalkForm(
            data={
                "title_ja": talk.title.ja,
                "title_en": talk.title.en,
                "speaker_id": talk.speaker_id or 0,
                "language": talk.language,
                "position": talk.position,
                "starts_at": to_local(talk.starts_at, event.timezone),
            }
        )
    return form


def _talk_page(event: Event, talk: Talk | None):
    form = _talk_form(event, talk)
    searching = form.is_submitted() and request.form.get("action") == "search"
    found = find_people(form.speaker_query.data) if searching else []
    _speaker_choices(form, found, talk.speaker if talk is not None else None)
    if form.is_submitted() and not searching and form.validate():
        speaker_id = form.speaker_id.data or None
        if speaker_id is not None and db.session.get(Person, speaker_id) is None:
            form.speaker_id.errors = [_("Choose a speaker from the search results.")]
        else:
            values = form.values(event.timezone)
            if talk is None:
                services.add_talk(db.session, event, current_user, **values)
                flash(_("The talk was added."), "success")
            else:
                services.update_talk(db.session, talk, current_user, **values)
                flash(_("The talk was saved."), "success")
            db.session.commit()
            return redirect(url_for(".event_dashboard", slug=event.slug, _anchor="talks"))
    code = 400 if form.is_submitted() and not searching else 200
    return (
        render_template(
            "organiser/talk_form.html",
            form=form,
            event=event,
            talk=talk,
            searching=searching,
            found=found,
        ),
        code,
    )


@bp.route("/events/<slug>/talks/new", methods=["GET", "POST"])
def talk_new(slug: str):
    return _talk_page(_event_or_404(slug), None)


@bp.route("/events/<slug>/talks/<int:talk_id>/edit", methods=["GET", "POST"])
def talk_edit(slug: str, talk_id: int):
    event = _event_or_404(slug)
    return _talk_page(event, _talk_or_404(event, talk_id))


@bp.post("/events/<slug>/talks/<int:talk_id>/delete")
def talk_delete(slug: str, talk_id: int):
    event = _event_or_404(slug)
    talk = _talk_or_404(event, talk_id)
    services.remove_talk(db.session, talk, current_user)
    db.session.commit()
    flash(_("The talk was removed."), "success")
    return redirect(url_for(".event_dashboard", slug=slug, _anchor="talks"))


# -- reviewers of a series (its organisers) ---------------------------------------------------


def _organised_series_or_404(slug: str) -> Series:
    """The series, if the person organises it (or is an administrator); else 404."""
    series = _series_or_404(slug)
    if not current_user.is_organiser_of(series):
        abort(404)
    return series


def _reviewers_page(series: Series, form, code: int = 200):
    return (
        render_template(
            "organiser/reviewers.html",
            series=series,
            form=form,
            reviewers=services.series_reviewers(db.session, series),
        ),
        code,
    )


@bp.get("/series/<slug>/reviewers")
def series_reviewers(slug: str):
    series = _organised_series_or_404(slug)
    return _reviewers_page(series, forms.ReviewerForm(formdata=None))


@bp.post("/series/<slug>/reviewers")
def reviewer_appoint(slug: str):
    series = _organised_series_or_404(slug)
    form = forms.ReviewerForm()
    if not form.validate_on_submit():
        return _reviewers_page(series, form, 400)
    with state_change(form) as change:
        granted = services.appoint_reviewer(db.session, series, form.email.data, current_user)
    if not change.ok:
        return _reviewers_page(series, form, 400)
    if granted is None:
        flash(_("%(email)s is already a reviewer of this series.", email=form.email.data), "info")
    else:
        flash(_("%(email)s is now a reviewer of this series.", email=form.email.data), "success")
    return redirect(url_for(".series_reviewers", slug=slug))


@bp.post("/series/<slug>/reviewers/<int:role_id>/remove")
def reviewer_remove(slug: str, role_id: int):
    series = _organised_series_or_404(slug)
    if not forms.EmptyForm().validate_on_submit():
        abort(400)
    user_role = db.session.get(UserRole, role_id)
    if user_role is None or user_role.series_id != series.id:
        abort(404)
    email = user_role.user.email
    with state_change(success=_("%(email)s is no longer a reviewer of this series.", email=email)):
        services.remove_reviewer(db.session, series, user_role, current_user)
    return redirect(url_for(".series_reviewers", slug=slug))


# -- roles (administrators) ------------------------------------------------------------------


def _roles_page(user: User | None, search_form, grant_form, code: int = 200):
    all_series = event_services.all_series(db.session)
    return (
        render_template(
            "organiser/roles.html",
            user=user,
            search_form=search_form,
            grant_form=grant_form,
            series_by_id={s.id: s for s in all_series},
            role_labels=forms.ROLE_LABELS,
        ),
        code,
    )


def _user_or_404(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        abort(404)
    return user


@bp.get("/roles")
def roles():
    _require_admin()
    all_series = event_services.all_series(db.session)
    search_form = forms.UserSearchForm(request.args if "email" in request.args else None)
    user = None
    code = 200
    if "email" in request.args:
        if search_form.validate():
            user = account_services.user_by_email(db.session, search_form.email.data)
            if user is None:
                search_form.email.errors.append(_("Nobody has an account with this email."))
        else:
            code = 400
    grant_form = forms.RoleGrantForm(series=all_series, formdata=None)
    return _roles_page(user, search_form, grant_form, code)


@bp.post("/roles/<int:user_id>/grant")
def role_grant(user_id: int):
    _require_admin()
    user = _user_or_404(user_id)
    all_series = event_services.all_series(db.session)
    grant_form = forms.RoleGrantForm(series=all_series)
    if not grant_form.validate():
        search_form = forms.UserSearchForm(formdata=None, data={"email": user.email})
        return _roles_page(user, search_form, grant_form, 400)
    series = next((s for s in all_series if s.id == grant_form.series_id.data), None)
    granted = services.grant_role(db.session, user, grant_form.role.data, series, current_user)
    db.session.commit()
    if granted is None:
        flash(_("%(email)s already has this role.", email=user.email), "info")
    else:
        flash(_("The role was given to %(email)s.", email=user.email), "success")
    return redirect(url_for(".roles", email=user.email))


@bp.post("/roles/<int:user_id>/revoke/<int:role_id>")
def role_revoke(user_id: int, role_id: int):
    _require_admin()
    user = _user_or_404(user_id)
    user_role = db.session.get(UserRole, role_id)
    if user_role is None or user_role.user_id != user.id:
        abort(404)
    services.revoke_role(db.session, user_role, current_user)
    db.session.commit()
    flash(_("The role was taken from %(email)s.", email=user.email), "success")
    return redirect(url_for(".roles", email=user.email))
