"""Registration pages: the participant's (register, my registrations) and the organiser's
(list, export, add, change state, check-in, printable list, fee categories).

Views parse input, call one service function per state change, commit once and render.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

import click
from flask import (
    Blueprint,
    Flask,
    abort,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask import session as cookie_session
from flask.cli import with_appcontext
from flask_babel import gettext as _
from flask_login import current_user, login_required
from markupsafe import Markup
from sqlalchemy.exc import IntegrityError
from werkzeug.datastructures import MultiDict

from portal import pagecache, people
from portal.accounts.models import Person
from portal.csvexport import csv_stream_response
from portal.db import db, utcnow
from portal.events import services as event_services
from portal.events.access import organised_event_or_404
from portal.events.models import AttendanceMode, Event, EventStatus
from portal.i18n import (
    BilingualText,
    format_money,
    format_person_name,
    format_short_date,
    from_minor,
)
from portal.localtime import to_local, to_utc
from portal.pagination import page_number, paginate
from portal.params import filter_args, int_or_none
from portal.registration import forms, services
from portal.registration.export import person_cells, person_header
from portal.registration.models import FeeCategory, RegistrationState
from portal.registration.services import MODE_LABELS, SECTOR_LABELS, STATE_LABELS
from portal.transactions import state_change

bp = Blueprint("registration", __name__, url_prefix="/<lang_code>")
admin = Blueprint(
    "registration_admin", __name__, url_prefix="/<lang_code>/organiser/events/<slug>/registrations"
)

PER_PAGE = 50
DRAFT_KEY = "registration_draft"


# -- helpers ---------------------------------------------------------------------------------


def _event_or_404(slug: str) -> Event:
    event = event_services.event_by_slug(db.session, slug)
    if event is None or not event_services.can_view(event, current_user):
        abort(404)
    return event


def _closed_message(event: Event) -> str | None:
    if event.status == EventStatus.cancelled:
        return _("This event has been cancelled, so registration is not possible.")
    if event.status == EventStatus.draft:
        return _("Registration for this event has not opened yet.")
    if event.status != EventStatus.open or event.is_past:
        return _("Registration for this event is closed.")
    return None


def _mode_choices(event: Event, seats: dict) -> list[tuple[str, str]]:
    choices = []
    for mode in event.attendance_modes:
        left = seats.get(mode)
        label = str(MODE_LABELS[mode])
        if left is not None and left <= 0:
            label = _("%(mode)s (full: you will join the waiting list)", mode=label)
        elif left is not None:
            label = _("%(mode)s (%(count)s places left)", mode=label, count=left)
        choices.append((mode.value, label))
    return choices


def _category_choices(event: Event, categories: list[FeeCategory]) -> list[tuple[str, str]]:
    now = utcnow()
    currency = event.series.currency
    choices = []
    for c in categories:
        name = c.name.get(None, event.series.default_language)
        price = format_money(c.price_at(now), currency)
        if c.is_early_bird_at(now):
            label = _(
                "%(name)s: %(price)s (early-bird price until %(date)s; then %(regular)s)",
                name=name,
                price=price,
                date=format_short_date(c.early_bird_until, event.timezone),
                regular=format_money(c.price_minor, currency),
            )
        else:
            label = _("%(name)s: %(price)s", name=name, price=price)
        if c.requires_membership:
            label = _("%(label)s (members only)", label=label)
        choices.append((str(c.id), label))
    return choices


def _attach_error(form, error: services.RegistrationError) -> None:
    if not form.add_error(error.field, str(error.message)):
        flash(str(error.message), "error")


def _draft_store(event: Event, data: dict) -> None:
    drafts = dict(cookie_session.get(DRAFT_KEY) or {})
    drafts[str(event.id)] = data
    cookie_session[DRAFT_KEY] = drafts


def _draft_pop(event: Event) -> dict | None:
    drafts = dict(cookie_session.get(DRAFT_KEY) or {})
    data = drafts.pop(str(event.id), None)
    if data is not None:
        cookie_session[DRAFT_KEY] = drafts
    return data


def _draft_get(event: Event) -> dict | None:
    return (cookie_session.get(DRAFT_KEY) or {}).get(str(event.id))


# -- participant pages -----------------------------------------------------------------------


@bp.route("/events/<slug>/register", methods=["GET", "POST"])
def register(slug: str):
    """Registration form → confirmation step (price lines, total) → register."""
    confirming = request.method == "POST" and request.form.get("step") == "confirm"
    if confirming:
        # Read and check first; SQLite's write lock only from services.register's event lock.
        db.defer_write_lock()
    event = _event_or_404(slug)
    closed = _closed_message(event)
    # Confirming an open event: services.register looks under the event lock (AlreadyRegistered).
    if current_user.is_authenticated and (closed or not confirming):
        existing = services.my_registration(db.session, event, current_user)
        if existing is not None and existing.is_active:
            flash(_("You are already registered for this event."), "info")
            return redirect(url_for(".my_registration", reg_id=existing.id))
    categories = services.fee_categories(db.session, event)
    fields = services.registration_fields(event)
    if request.method == "GET":
        draft = _draft_get(event)
        form = forms.registration_form(
            fields, formdata=MultiDict(draft) if draft else None, meta={"csrf": True}
        )
    else:
        form = forms.registration_form(fields)
    # Seats left label the modes of a form shown again; confirming counts them under the lock
    # and labels the choices only if it shows the form again (show_form).
    seats = {} if confirming else services.seats_left(db.session, event)
    if not confirming:
        form.attendance_mode.choices = _mode_choices(event, seats)
        form.fee_category.choices = _category_choices(event, categories)
    if len(event.attendance_modes) == 1 and not form.attendance_mode.data:
        form.attendance_mode.data = event.attendance_modes[0].value
    if len(categories) == 1 and not form.fee_category.data:
        form.fee_category.data = str(categories[0].id)

    def show_form(status: int = 200):
        nonlocal seats
        if confirming:
            seats = services.seats_left(db.session, event)
            form.attendance_mode.choices = _mode_choices(event, seats)
            form.fee_category.choices = _category_choices(event, categories)
        return (
            render_template(
                "registration/register.html",
                event=event,
                form=form,
                closed=closed,
                categories=categories,
                seats=seats,
            ),
            status,
        )

    if request.method == "GET" or request.form.get("step") == "edit":
        return show_form()
    if closed:
        flash(closed, "error")
        return show_form(400)
    if not form.validate():
        return show_form(400)
    if not current_user.is_authenticated:
        data = {k: v for k, v in request.form.items() if k not in ("csrf_token", "step")}
        _draft_store(event, data)
        flash(
            _(
                "Please log in, or create an account, to finish your registration. "
                "What you entered has been kept."
            ),
            "info",
        )
        return redirect(url_for("accounts.login", next=url_for(".register", slug=slug)))

    person = current_user.person
    choices = dict(
        mode=form.attendance_mode.data,
        fee_category=form.fee_category.data,
        answers=form.answers(),
        user=current_user,
        fields=fields,
    )
    if request.form.get("step") != "confirm":
        try:
            preview = services.build_registration(db.session, event, person, **choices)
        except services.RegistrationError as error:
            _attach_error(form, error)
            return show_form(400)
        full = seats.get(preview.attendance_mode)
        return render_template(
            "registration/review.html",
            event=event,
            form=form,
            preview=preview,
            waitlist=full is not None and full <= 0,
            payment_days=services.settings_for(db.session, event).payment_days,
        )
    try:
        with state_change(form) as change:
            registration = services.register(
                db.session, event, person, privacy_accepted=form.privacy.data, **choices
            )
            if form.join_list.data:
                from portal.announcements.subscriptions import join_on_list

                join_on_list(
                    db.session,
                    event.series,
                    person,
                    person.preferred_language,
                    "registration",
                    verified=current_user.is_verified,
                )
    except IntegrityError:
        # Two submits at once: the unique constraint kept one (rolled back above); show it.
        existing = services.my_registration(db.session, event, current_user)
        if existing is None:
            raise
        flash(_("You are already registered for this event."), "info")
        return redirect(url_for(".my_registration", reg_id=existing.id))
    if isinstance(change.error, services.AlreadyRegistered):  # flashed as "info"
        return redirect(url_for(".my_registration", reg_id=change.error.registration.id))
    if not change.ok:
        return show_form(400)
    _draft_pop(event)
    messages = {
        RegistrationState.confirmed: _("Your registration is confirmed."),
        RegistrationState.pending_payment: _(
            "You are registered. Your place is held until the payment deadline."
        ),
        RegistrationState.waitlisted: _(
            "This attendance mode is full, so you are on the waiting list."
        ),
    }
    flash(messages.get(registration.state, _("Your registration was saved.")), "success")
    return redirect(url_for(".my_registration", reg_id=registration.id))


@bp.get("/my/registrations/")
@login_required
def my_registrations():
    page = paginate(db.session, services.my_registrations(current_user), page_number(), 20)
    positions = services.waitlist_positions(db.session, page.items)
    return render_template(
        "registration/my_list.html", page=page, positions=positions, state_labels=STATE_LABELS
    )


def _own_registration(reg_id: int):
    registration = services.get_for_person(db.session, reg_id, current_user)
    if registration is None:
        abort(404)
    return registration


def _render_my_registration(registration, mode_form=None, status: int = 200):
    event = registration.event
    seats = services.seats_left(db.session, event)
    can_switch = len(event.attendance_modes) > 1 and registration.state in (
        RegistrationState.pending_payment,
        RegistrationState.confirmed,
        RegistrationState.waitlisted,
    )
    if mode_form is None and can_switch:
        mode_form = forms.ModeSwitchForm()
    if mode_form is not None:
        mode_form.attendance_mode.choices = [
            (m.value, label)
            for m, label in zip(
                event.attendance_modes, (c[1] for c in _mode_choices(event, seats)), strict=True
            )
            if m != registration.attendance_mode
        ]
    methods = (
        services.payment_methods(event, registration)
        if registration.state == RegistrationState.pending_payment
        else []
    )
    return (
        render_template(
            "registration/my_detail.html",
            registration=registration,
            event=event,
            position=services.waitlist_position(db.session, registration),
            methods=methods,
            mode_form=mode_form if can_switch else None,
            cancel_form=forms.ConfirmForm(),
            state_labels=STATE_LABELS,
            mode_labels=MODE_LABELS,
        ),
        status,
    )


@bp.get("/my/registrations/<int:reg_id>/")
@login_required
def my_registration(reg_id: int):
    return _render_my_registration(_own_registration(reg_id))


@bp.route("/my/registrations/<int:reg_id>/cancel", methods=["GET", "POST"])
@login_required
def cancel(reg_id: int):
    registration = _own_registration(reg_id)
    form = forms.ConfirmForm()
    if request.method == "POST" and form.validate():
        with state_change(success=_("Your registration has been cancelled.")):
            services.cancel(db.session, registration, actor=current_user)
        return redirect(url_for(".my_registration", reg_id=reg_id))
    if not registration.is_active:
        return redirect(url_for(".my_registration", reg_id=reg_id))
    return render_template(
        "registration/cancel.html", registration=registration, event=registration.event, form=form
    )


@bp.post("/my/registrations/<int:reg_id>/mode")
@login_required
def switch_mode(reg_id: int):
    registration = _own_registration(reg_id)
    form = forms.ModeSwitchForm()
    if not form.validate():
        return _render_my_registration(registration, form, 400)
    changed = _("Your attendance mode has been changed.")
    with state_change(form, field="attendance_mode", success=changed) as change:
        services.switch_mode(
            db.session, registration, form.attendance_mode.data, actor=current_user
        )
    if not change.ok:
        return _render_my_registration(_own_registration(reg_id), form, 400)
    return redirect(url_for(".my_registration", reg_id=reg_id))


# -- organiser pages -------------------------------------------------------------------------


def _filters() -> dict:
    return filter_args("state", "mode", "sector", fee_category_id="fee_category")


@admin.get("/")
@login_required
def index(slug: str):
    event = organised_event_or_404(slug)

    def content() -> str:
        filters = _filters()
        categories = services.fee_categories(db.session, event, active_only=False)
        stmt = services.organiser_list(event, **filters)
        page = paginate(db.session, stmt, page_number(), PER_PAGE)
        return render_template(
            "registration/_admin_list_content.html",
            event=event,
            page=page,
            positions=services.waitlist_positions(db.session, page.items),
            categories=categories,
            filters=filters,
            args={k: v for k, v in request.args.items() if k != "page" and v},
            # Translated once here, not once per row (lazy strings look the catalogue up each
            # time).
            state_labels={k: str(v) for k, v in STATE_LABELS.items()},
            mode_labels={k: str(v) for k, v in MODE_LABELS.items()},
            sector_labels={k: str(v) for k, v in SECTOR_LABELS.items()},
        )

    # Registrations, people and fees change the event's version or the global one.
    html = pagecache.kept_for_person("registrations", [pagecache.EVENTS], content)
    return render_template("registration/admin_list.html", event=event, content=Markup(html))


@admin.get("/export.csv")
@login_required
def export(slug: str):
    event = organised_event_or_404(slug)
    fields = services.registration_fields(event)
    # Streamed a few hundred rows at a time (many-to-one eager loads only: no unique()).
    stmt = services.organiser_list(event, **_filters()).execution_options(yield_per=500)
    default_lang = event.series.default_language
    tz = ZoneInfo(event.timezone)

    def rows():
        yield [
            _("ID"),
            *person_header(),
            _("Fee category"),
            _("State"),
            _("Total"),
            _("Currency"),
            _("Registered at"),
            _("Checked in at"),
            *[str(f.label) for f in fields],
        ]
        for r in services.rows_of(db.session, stmt):
            yield [
                r.id,
                *person_cells(r),
                r.fee_category.name.get(None, default_lang) if r.fee_category else "",
                str(STATE_LABELS[r.state]),
                str(from_minor(r.total_minor, r.currency)),
                r.currency,
                r.created_at.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
                r.checked_in_at.astimezone(tz).strftime("%Y-%m-%d %H:%M")
                if r.checked_in_at
                else "",
                *[_answer_text(r.answers.get(f.name)) for f in fields],
            ]

    return csv_stream_response(rows(), f"{event.slug}-registrations.csv")


def _answer_text(value) -> str:
    if value is True:
        return _("Yes")
    if value is False:
        return _("No")
    return "" if value is None else str(value)


@admin.route("/add", methods=["GET", "POST"])
@login_required
def add(slug: str):
    event = organised_event_or_404(slug)
    categories = services.fee_categories(db.session, event, active_only=False)
    fields = services.registration_fields(event)
    form = forms.organiser_add_form(fields)
    seats = services.seats_left(db.session, event)
    form.attendance_mode.choices = _mode_choices(event, seats)
    form.fee_category.choices = _category_choices(event, categories)
    if len(event.attendance_modes) == 1 and not form.attendance_mode.data:
        form.attendance_mode.data = event.attendance_modes[0].value
    q = request.values.get("q", "").strip()[:100]
    person = None
    person_id = request.values.get("person_id", "")
    if int_or_none(person_id) is not None:
        person = db.session.get(Person, int(person_id))
        # Only people of the organiser's series, or the one whose exact email was typed.
        if not people.may_see(db.session, current_user, person, q):
            person, person_id = None, ""
        form.person_id.data = person_id if person else ""
    found = []
    if q and person is None:
        found = services.people_to_add(db.session, current_user, q)

    def show(status: int = 200):
        return (
            render_template(
                "registration/admin_add.html",
                event=event,
                form=form,
                person=person,
                found=found,
                q=q,
            ),
            status,
        )

    if request.method == "GET":
        return show()
    if not form.validate():
        return show(400)
    with state_change(form) as change:
        if person is None:
            person = services.create_guest_person(
                db.session,
                family_name=form.family_name.data or "",
                given_name=form.given_name.data or "",
                family_name_kana=form.family_name_kana.data or "",
                given_name_kana=form.given_name_kana.data or "",
                romanized_name=form.romanized_name.data or "",
                email=form.email.data,
                affiliation=form.affiliation.data or "",
                sector=form.sector.data or None,
                preferred_language=form.preferred_language.data,
                actor=current_user,
            )
        registration = services.organiser_add(
            db.session,
            event,
            person,
            mode=form.attendance_mode.data,
            fee_category=form.fee_category.data,
            answers=form.answers(),
            actor=current_user,
            reason=form.reason.data or "",
            force=form.force.data,
        )
    if isinstance(change.error, services.AlreadyRegistered):  # flashed as "info"
        return redirect(url_for(".detail", slug=slug, reg_id=change.error.registration.id))
    if not change.ok:
        person = db.session.get(Person, int(person_id)) if person_id else None
        return show(400)
    flash(
        _(
            "%(name)s has been added: %(state)s.",
            name=format_person_name(person),
            state=STATE_LABELS[registration.state],
        ),
        "success",
    )
    return redirect(url_for(".detail", slug=slug, reg_id=registration.id))


def _render_detail(event, registration, state_form=None, status: int = 200):
    if state_form is None:
        state_form = forms.StateChangeForm()
    state_form.state.choices = [
        (s.value, str(STATE_LABELS[s])) for s in RegistrationState if s != registration.state
    ]
    return (
        render_template(
            "registration/admin_detail.html",
            event=event,
            registration=registration,
            history=services.history(db.session, registration),
            position=services.waitlist_position(db.session, registration),
            state_form=state_form,
            button_form=forms.ConfirmForm(),
            state_labels=STATE_LABELS,
            mode_labels=MODE_LABELS,
            sector_labels=SECTOR_LABELS,
            action_labels=services.ACTION_LABELS,
        ),
        status,
    )


def _event_registration(event, reg_id):
    registration = services.get_for_event(db.session, event, reg_id)
    if registration is None:
        abort(404)
    return registration


@admin.get("/<int:reg_id>/")
@login_required
def detail(slug: str, reg_id: int):
    event = organised_event_or_404(slug)
    return _render_detail(event, _event_registration(event, reg_id))


@admin.post("/<int:reg_id>/state")
@login_required
def change_state(slug: str, reg_id: int):
    event = organised_event_or_404(slug)
    registration = _event_registration(event, reg_id)
    form = forms.StateChangeForm()
    if not form.validate():
        return _render_detail(event, registration, form, 400)
    updated = _("The registration has been updated.")
    with state_change(form, field="state", success=updated) as change:
        services.change_state_by_organiser(
            db.session,
            registration,
            form.state.data,
            actor=current_user,
            reason=form.reason.data,
            force=form.force.data,
        )
    if not change.ok:
        return _render_detail(event, _event_registration(event, reg_id), form, 400)
    return redirect(url_for(".detail", slug=slug, reg_id=reg_id))


@admin.post("/<int:reg_id>/paid")
@login_required
def mark_paid(slug: str, reg_id: int):
    event = organised_event_or_404(slug)
    registration = _event_registration(event, reg_id)
    if forms.ConfirmForm().validate():
        paid = _("The payment has been recorded and the registration confirmed.")
        with state_change(success=paid):
            services.mark_paid(db.session, registration, actor=current_user)
    return redirect(url_for(".detail", slug=slug, reg_id=reg_id))


@admin.route("/check-in", methods=["GET"])
@login_required
def check_in_page(slug: str):
    event = organised_event_or_404(slug)
    q = request.args.get("q", "").strip()[:100]
    results = []
    if q:
        results = services.checkin_matches(db.session, event, q)
    counts = services.registration_counts(db.session, event)
    return render_template(
        "registration/checkin.html",
        event=event,
        q=q,
        results=results,
        counts=counts,
        form=forms.ConfirmForm(),
        state_labels=STATE_LABELS,
        mode_labels=MODE_LABELS,
    )


@admin.post("/<int:reg_id>/check-in")
@login_required
def check_in(slug: str, reg_id: int):
    event = organised_event_or_404(slug)
    registration = _event_registration(event, reg_id)
    q = request.form.get("q", "")
    if forms.ConfirmForm().validate():
        from portal.tickets import services as tickets

        result = tickets.check_in(db.session, event, registration, actor=current_user)
        db.session.commit()
        name = format_person_name(registration.person)
        if result.ok:
            flash(_("%(name)s: attended.", name=name), "success")
        elif result.code == "already":
            flash(_("%(name)s is already checked in.") % {"name": name}, "error")
        elif result.code == "online_only":
            message = _("%(name)s cannot be checked in: registered to attend online.")
            flash(message % {"name": name}, "error")
        else:
            message = _("%(name)s cannot be checked in: the registration is not confirmed.")
            flash(message % {"name": name}, "error")
    return redirect(url_for(".check_in_page", slug=slug, q=q or None))


@admin.get("/print")
@login_required
def print_list(slug: str):
    event = organised_event_or_404(slug)
    rows = services.roster_rows(db.session, event)
    online = services.online_count(db.session, event)
    from portal import plugins

    webinar_on = plugins.is_enabled(event, "webinar") if online else False
    return render_template(
        "registration/print.html",
        event=event,
        rows=rows,
        online=online,
        webinar_on=webinar_on,
        state_labels=STATE_LABELS,
        mode_labels=MODE_LABELS,
        printed_at=utcnow(),
    )


# -- fee categories and settings -------------------------------------------------------------


@admin.route("/fees/", methods=["GET", "POST"])
@login_required
def fees(slug: str):
    event = organised_event_or_404(slug)
    settings_form = forms.SettingsForm(
        data={"payment_days": services.settings_for(db.session, event).payment_days}
        if request.method == "GET"
        else None
    )
    status = 200
    if request.method == "POST":
        if settings_form.validate():
            saved = _("The settings have been saved.")
            with state_change(settings_form, field="payment_days", success=saved) as change:
                services.update_settings(
                    db.session,
                    event,
                    payment_days=settings_form.payment_days.data,
                    actor=current_user,
                )
            if change.ok:
                return redirect(url_for(".fees", slug=slug))
        status = 400
    return (
        render_template(
            "registration/fees.html",
            event=event,
            categories=services.fee_categories(db.session, event, active_only=False),
            settings_form=settings_form,
            button_form=forms.ConfirmForm(),
            now=utcnow(),
        ),
        status,
    )


@admin.route("/fees/new", methods=["GET", "POST"], defaults={"cat_id": None})
@admin.route("/fees/<int:cat_id>/edit", methods=["GET", "POST"])
@login_required
def fee_form(slug: str, cat_id: int | None):
    event = organised_event_or_404(slug)
    currency = event.series.currency
    category = None
    if cat_id is not None:
        category = db.session.get(FeeCategory, cat_id)
        if category is None or category.event_id != event.id:
            abort(404)
    data = None
    if request.method == "GET" and category is not None:
        data = {
            "code": category.code,
            "name_ja": category.name.ja,
            "name_en": category.name.en,
            "price": str(from_minor(category.price_minor, currency)),
            "early_bird_price": str(from_minor(category.early_bird_price_minor, currency))
            if category.early_bird_price_minor is not None
            else "",
            "early_bird_until": to_local(category.early_bird_until, event.timezone),
            "requires_membership": category.requires_membership,
            "position": category.position,
        }
    form = forms.FeeCategoryForm(data=data, currency=currency)
    status = 200
    if request.method == "POST":
        status = 400
        if form.validate():
            until = form.early_bird_until.data
            with state_change(form, field="code") as change:
                saved = services.save_fee_category(
                    db.session,
                    event,
                    actor=current_user,
                    category=category,
                    code=form.code.data,
                    name=BilingualText(
                        ja=(form.name_ja.data or "").strip(), en=(form.name_en.data or "").strip()
                    ),
                    price_minor=form.price.minor() or 0,
                    early_bird_price_minor=form.early_bird_price.minor(),
                    early_bird_until=to_utc(until, event.timezone),
                    requires_membership=form.requires_membership.data,
                    position=form.position.data or 0,
                )
            if change.ok:
                flash(
                    _(
                        "The fee category %(name)s has been saved.",
                        name=saved.name.get(None, event.series.default_language),
                    ),
                    "success",
                )
                return redirect(url_for(".fees", slug=slug))
    return (
        render_template(
            "registration/fee_form.html",
            event=event,
            form=form,
            category=category,
            currency=currency,
        ),
        status,
    )


@admin.post("/fees/<int:cat_id>/active")
@login_required
def fee_active(slug: str, cat_id: int):
    event = organised_event_or_404(slug)
    category = db.session.get(FeeCategory, cat_id)
    if category is None or category.event_id != event.id:
        abort(404)
    if forms.ConfirmForm().validate():
        active = request.form.get("active") == "1"
        services.set_fee_category_active(db.session, category, active, actor=current_user)
        db.session.commit()
        flash(
            _("The fee category has been reactivated.")
            if active
            else _("The fee category has been deactivated."),
            "success",
        )
    return redirect(url_for(".fees", slug=slug))


# -- CLI and template helpers ----------------------------------------------------------------


@click.group("registrations")
def registrations_group():
    """Registrations."""


@registrations_group.command("expire")
@with_appcontext
def expire_command():
    """Cancel pending payments whose deadline passed and promote the people waiting."""
    expired = services.expire_unpaid(db.session)
    db.session.commit()
    click.echo(f"expired {len(expired)}")


def _template_registration_counts(event):
    return services.registration_counts(db.session, event)


def _template_my_registration(event):
    return services.my_registration(db.session, event, current_user)


def _template_fee_table(event):
    """The event's active fee categories (one query), for the fee table on the event page."""
    return services.fee_categories(db.session, event)


def init_app(app: Flask) -> None:
    """Mount the pages, the CLI command and the template helpers."""
    app.register_blueprint(bp)
    app.register_blueprint(admin)
    app.cli.add_command(registrations_group)
    app.jinja_env.globals.update(
        registration_counts=_template_registration_counts,
        my_registration=_template_my_registration,
        fee_table=_template_fee_table,
        registration_state_labels=STATE_LABELS,
        registration_mode_labels=MODE_LABELS,
        registration_sector_labels=SECTOR_LABELS,
        registration_closed_message=_closed_message,
        AttendanceMode=AttendanceMode,
    )
