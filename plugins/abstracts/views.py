"""Pages of the call for abstracts, under /<lang>/events/<slug>/abstracts/.

Who sees what (everyone else gets 404; visitors who are not logged in are asked to log in):
- everyone: the call (dates, instructions) and the book of abstracts (accepted ones only);
- a logged-in person: their own abstracts (list, page, form, PDF);
- a reviewer of the series: the abstracts assigned to them that are under review or accepted;
- organisers of the series: everything under ``manage/``.
The plugin off for the event → every page here answers 404.
"""

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
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_login import current_user

from plugins.abstracts import files, forms, queries, services
from plugins.abstracts.models import Abstract, AbstractState, ReviewAssignment
from plugins.abstracts.services import NotFound
from portal import plugins
from portal.accounts.models import Person
from portal.db import db
from portal.events import services as event_services
from portal.events.models import Event
from portal.i18n import BilingualText, current_language
from portal.pagination import page_number, paginate
from portal.params import int_or_none
from portal.transactions import state_change

bp = Blueprint(
    "abstracts",
    __name__,
    url_prefix="/<lang_code>/events/<slug>/abstracts",
    template_folder="templates",
)

PER_PAGE = 20
MANAGE_PER_PAGE = 50


# -- helpers ---------------------------------------------------------------------------------


def _event(slug: str) -> Event:
    event = event_services.event_by_slug(db.session, slug)
    if event is None or not event_services.can_view(event, current_user):
        abort(404)
    plugins.require_enabled(event, services.PLUGIN)
    return event


def _login() -> None:
    if not current_user.is_authenticated:
        abort(current_app.login_manager.unauthorized())


def _organiser_event(slug: str) -> Event:
    event = _event(slug)
    _login()
    if not services.is_organiser(current_user, event):
        abort(404)
    return event


def _own_abstract(event: Event, abstract_id: int) -> Abstract:
    _login()
    abstract = services.get_abstract(db.session, event, abstract_id)
    if abstract is None or not services.is_submitter(current_user, abstract):
        abort(404)
    return abstract


def _managed_abstract(event: Event, abstract_id: int) -> Abstract:
    abstract = services.get_abstract(db.session, event, abstract_id)
    if abstract is None or not services.organisers_see(abstract):
        abort(404)
    return abstract


def _viewer():
    return current_user.person if current_user.is_authenticated else None


def _common(event: Event, settings: services.CallSettings) -> dict:
    return {
        "event": event,
        "settings": settings,
        "state_labels": services.STATE_LABELS,
        "type_labels": services.TYPE_LABELS,
        "history_labels": services.HISTORY_LABELS,
        "render_markdown": services.render_markdown,
        "time_lines": lambda value: services.time_lines(value, event, _viewer()),
        "lang": current_language(),
    }


def _render(template: str, event: Event, code: int = 200, **context):
    settings = context.pop("settings", None) or services.call_settings(event)
    return render_template(template, **_common(event, settings), **context), code


# -- the call --------------------------------------------------------------------------------


@bp.get("/")
def call(slug: str):
    event = _event(slug)
    settings = services.call_settings(event)
    mine = 0
    if current_user.is_authenticated:
        mine = queries.count_my_abstracts(db.session, event, current_user)
    return _render(
        "abstracts/call.html",
        event,
        settings=settings,
        new_block=services.new_block(event, settings),
        mine=mine,
        is_organiser=services.is_organiser(current_user, event),
    )


# -- submitting ------------------------------------------------------------------------------


def _form_data_without_files(form: forms.AbstractForm) -> dict:
    return {k: v for k, v in form.data.items() if k not in ("csrf_token", "pdf")}


def _form_page(event: Event, abstract: Abstract | None):
    settings = services.call_settings(event)
    lang = current_language()
    form_error = None
    code = 200
    if request.method == "POST":
        action = request.form.get("action", "")
        form = forms.AbstractForm.build(settings, lang)
        if action == "add_author":
            if len(form.authors) < services.MAX_AUTHORS:
                form.authors.append_entry()
            form = forms.AbstractForm.build(
                settings, lang, formdata=None, data=_form_data_without_files(form)
            )
        elif action.startswith("remove-") and int_or_none(action[7:]) is not None:
            data = _form_data_without_files(form)
            index = int_or_none(action[7:])
            rows = list(data.get("authors") or [])
            if 0 <= index < len(rows):
                del rows[index]
                presenting = data.get("presenting")
                if presenting == index:
                    data["presenting"] = None
                elif isinstance(presenting, int) and presenting > index:
                    data["presenting"] = presenting - 1
            data["authors"] = rows or [{}]
            form = forms.AbstractForm.build(settings, lang, formdata=None, data=data)
        else:
            submitting = action == "submit"
            if form.check(settings, submitting):
                save = services.submit if submitting else services.save_draft
                try:
                    with state_change(form, flash_errors=False) as change:
                        abstract = save(db.session, event, current_user, form.to_input(), abstract)
                except NotFound:
                    abort(404)
                form_error = change.message
                if change.ok:
                    if submitting:
                        flash(
                            _("Your abstract was submitted. We sent you a confirmation."), "success"
                        )
                    else:
                        flash(_("Your draft was saved. It is not submitted yet."), "success")
                    return redirect(url_for(".view", slug=event.slug, abstract_id=abstract.id))
            code = 400
    else:
        data = (
            forms.abstract_form_data(abstract)
            if abstract is not None
            else forms.new_form_data(current_user, event)
        )
        form = forms.AbstractForm.build(settings, lang, formdata=None, data=data)
    return _render(
        "abstracts/form.html",
        event,
        code=code,
        settings=settings,
        form=form,
        abstract=abstract,
        form_error=form_error,
    )


@bp.route("/new", methods=["GET", "POST"])
def new(slug: str):
    event = _event(slug)
    _login()
    settings = services.call_settings(event)
    block = services.new_block(event, settings)
    if block is not None and request.method == "GET":
        flash(str(block), "error")
        return redirect(url_for(".call", slug=slug))
    return _form_page(event, None)


@bp.get("/mine")
def mine(slug: str):
    event = _event(slug)
    _login()
    page = paginate(db.session, services.my_abstracts(event, current_user), page_number(), PER_PAGE)
    return _render("abstracts/mine.html", event, page=page)


@bp.get("/<int:abstract_id>/")
def view(slug: str, abstract_id: int):
    event = _event(slug)
    abstract = _own_abstract(event, abstract_id)
    settings = services.call_settings(event)
    return _render(
        "abstracts/view.html",
        event,
        settings=settings,
        abstract=abstract,
        edit_block=services.edit_block(abstract, settings),
        history=services.submitter_history(db.session, abstract),
    )


@bp.route("/<int:abstract_id>/edit", methods=["GET", "POST"])
def edit(slug: str, abstract_id: int):
    event = _event(slug)
    abstract = _own_abstract(event, abstract_id)
    settings = services.call_settings(event)
    block = services.edit_block(abstract, settings)
    if block is not None and request.method == "GET":
        flash(str(block), "error")
        return redirect(url_for(".view", slug=slug, abstract_id=abstract.id))
    return _form_page(event, abstract)


@bp.post("/<int:abstract_id>/withdraw")
def withdraw(slug: str, abstract_id: int):
    event = _event(slug)
    abstract = _own_abstract(event, abstract_id)
    with state_change(success=_("Your abstract was withdrawn.")) as change:
        services.withdraw(db.session, abstract, current_user)
    if not change.ok:
        return redirect(url_for(".view", slug=slug, abstract_id=abstract_id))
    return redirect(url_for(".mine", slug=slug))


@bp.get("/<int:abstract_id>/abstract.pdf")
def pdf(slug: str, abstract_id: int):
    event = _event(slug)
    _login()
    abstract = services.get_abstract(db.session, event, abstract_id)
    if abstract is None or not abstract.pdf_name:
        abort(404)
    allowed = services.is_submitter(current_user, abstract) or (
        services.is_organiser(current_user, event) and services.organisers_see(abstract)
    )
    if not allowed:
        allowed = any(services.reviewer_may_see(a, current_user) for a in abstract.assignments)
    if not allowed:
        abort(404)
    response = files.send(abstract.pdf_name, download_name=f"abstract-{abstract.id}.pdf")
    if response is None:
        abort(404)
    return response


# -- book of abstracts -----------------------------------------------------------------------


def _book_order() -> str:
    return "session" if request.args.get("by") == "session" else "topic"


@bp.get("/book")
def book(slug: str):
    event = _event(slug)
    by = _book_order()
    groups = services.book_abstracts(db.session, event, by)
    return _render(
        "abstracts/book.html",
        event,
        groups=groups,
        by=by,
        author_affiliations=services.author_affiliations,
    )


@bp.get("/book.pdf")
def book_pdf(slug: str):
    from plugins.abstracts.pdf import render_book

    event = _event(slug)
    by = _book_order()
    lang = current_language()
    body = render_book(event, services.book_abstracts(db.session, event, by), lang)
    return Response(
        body,
        mimetype="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{event.slug}-abstracts.pdf"'},
    )


# -- reviewing -------------------------------------------------------------------------------


@bp.get("/reviews")
def reviews(slug: str):
    event = _event(slug)
    _login()
    if not services.is_reviewer(current_user, event):
        abort(404)
    page = paginate(db.session, services.assigned_to(event, current_user), page_number(), PER_PAGE)
    return _render("abstracts/reviews.html", event, page=page)


@bp.route("/reviews/<int:assignment_id>", methods=["GET", "POST"])
def review(slug: str, assignment_id: int):
    event = _event(slug)
    _login()
    assignment = services.get_assignment(db.session, event, assignment_id)
    if assignment is None or not services.reviewer_may_see(assignment, current_user):
        abort(404)
    settings = services.call_settings(event)
    lang = current_language()
    abstract = assignment.abstract
    editable = abstract.state in services.UNDER_REVIEW
    code = 200
    form_error = None
    if request.method == "POST":
        form = forms.review_form(settings, lang, formdata=request.form)
        if form.validate():
            saved = _("Your review was saved. You can change it until the decision.")
            try:
                with state_change(form, success=saved, flash_errors=False) as change:
                    services.save_review(
                        db.session,
                        assignment,
                        current_user,
                        forms.scores_of(form, settings),
                        form.comment.data,
                    )
            except NotFound:
                abort(404)
            form_error = change.message
            if change.ok:
                return redirect(url_for(".reviews", slug=slug))
        code = 400
    else:
        form = forms.review_form(settings, lang, review=assignment.review)
    return _render(
        "abstracts/review.html",
        event,
        code=code,
        settings=settings,
        assignment=assignment,
        abstract=abstract,
        form=form,
        editable=editable,
        form_error=form_error,
        show_authors=not settings.anonymised,
    )


# -- organisers ------------------------------------------------------------------------------


@bp.get("/manage/")
def manage(slug: str):
    event = _organiser_event(slug)
    sort = request.args.get("sort", "id")
    sort = sort if sort in services.SORTS else "id"
    state = request.args.get("state") or None
    state = state if state in AbstractState.__members__ else None
    page = paginate(
        db.session, services.organiser_list(event, state, sort), page_number(), MANAGE_PER_PAGE
    )
    return _render(
        "abstracts/manage.html",
        event,
        page=page,
        summaries=services.score_summaries(db.session, page.items),
        progress=services.progress(db.session, event),
        flagged=services.flagged_conflicts(db.session, event),
        conflict_messages=services.CONFLICT_MESSAGES,
        sort=sort,
        state=state,
        auto_form=forms.AutoAssignForm(
            formdata=None,
            data={"per_abstract": services.call_settings(event).reviewers_per_abstract},
        ),
    )


@bp.route("/manage/settings", methods=["GET", "POST"])
def settings(slug: str):
    event = _organiser_event(slug)
    current = services.call_settings(event)
    if request.method == "POST":
        form = forms.SettingsForm.build(current, zone=event.timezone)
        if form.validate():
            services.update_settings(db.session, event, form.values(event.timezone), current_user)
            db.session.commit()
            flash(_("The settings of the call for abstracts were saved."), "success")
            return redirect(url_for(".settings", slug=slug))
        return _render("abstracts/settings.html", event, code=400, settings=current, form=form)
    form = forms.SettingsForm.build(current, zone=event.timezone, formdata=None)
    return _render("abstracts/settings.html", event, settings=current, form=form)


def _candidates(event: Event, abstract: Abstract) -> list[tuple[Person, str | None]]:
    people = services.reviewer_candidates(db.session, event)
    taken = {a.reviewer_id for a in abstract.assignments}
    current = services.current_affiliations(
        db.session, [*people, *(a.person for a in abstract.authors)]
    )
    return [(p, services.conflict(p, abstract, current)) for p in people if p.id not in taken]


def _detail(event: Event, abstract: Abstract, code: int = 200, **forms_given):
    candidates = _candidates(event, abstract)
    assign_form = forms_given.get("assign_form") or forms.AssignForm(formdata=None)
    assign_form.reviewer.choices = [
        forms.choice(p.id, p.display_name) for p, reason in candidates if reason is None
    ]
    entries = services.history(db.session, abstract)
    return _render(
        "abstracts/detail.html",
        event,
        code=code,
        abstract=abstract,
        summary=services.summary_of(abstract),
        candidates=candidates,
        conflict_messages=services.CONFLICT_MESSAGES,
        assign_form=assign_form,
        decision_form=forms_given.get("decision_form") or forms.DecisionForm.build(formdata=None),
        history=entries,
        actor_names=queries.actor_names(db.session, entries),
        decision_labels=forms.DECISION_LABELS,
    )


@bp.get("/manage/<int:abstract_id>")
def detail(slug: str, abstract_id: int):
    event = _organiser_event(slug)
    return _detail(event, _managed_abstract(event, abstract_id))


@bp.post("/manage/<int:abstract_id>/assign")
def assign(slug: str, abstract_id: int):
    event = _organiser_event(slug)
    abstract = _managed_abstract(event, abstract_id)
    form = forms.AssignForm()
    form.reviewer.choices = [
        forms.choice(p.id, p.display_name) for p in services.reviewer_candidates(db.session, event)
    ]
    if not form.validate():
        form.reviewer.errors = [_("Please choose a reviewer.")]
        return _detail(event, abstract, code=400, assign_form=form)
    reviewer = db.session.get(Person, form.reviewer.data)
    assigned = _("%(name)s was assigned.", name=reviewer.display_name)
    with state_change(form, field="reviewer", success=assigned) as change:
        services.assign_reviewer(db.session, abstract, reviewer, current_user)
    if not change.ok:
        abstract = _managed_abstract(event, abstract_id)
        return _detail(event, abstract, code=400, assign_form=form)
    return redirect(url_for(".detail", slug=slug, abstract_id=abstract_id, _anchor="reviews"))


@bp.post("/manage/<int:abstract_id>/unassign/<int:assignment_id>")
def unassign(slug: str, abstract_id: int, assignment_id: int):
    event = _organiser_event(slug)
    abstract = _managed_abstract(event, abstract_id)
    assignment = next((a for a in abstract.assignments if a.id == assignment_id), None)
    if assignment is None:
        abort(404)
    with state_change(success=_("The reviewer was taken off this abstract.")):
        services.unassign(db.session, assignment, current_user)
    return redirect(url_for(".detail", slug=slug, abstract_id=abstract_id, _anchor="reviews"))


@bp.post("/manage/auto-assign")
def auto_assign(slug: str):
    event = _organiser_event(slug)
    form = forms.AutoAssignForm()
    if not form.validate():
        flash(_("Enter a number of reviewers per abstract from 1 to 20."), "error")
        return redirect(url_for(".manage", slug=slug))
    result = services.auto_assign(db.session, event, current_user, form.per_abstract.data)
    db.session.commit()
    flash(_("%(count)d assignments were made.", count=result.assigned), "success")
    if result.short:
        flash(
            _(
                "%(count)d abstracts still have fewer reviewers than asked: there are not "
                "enough reviewers without a conflict.",
                count=len(result.short),
            ),
            "error",
        )
    return redirect(url_for(".manage", slug=slug))


@bp.post("/manage/<int:abstract_id>/decide")
def decide(slug: str, abstract_id: int):
    event = _organiser_event(slug)
    abstract = _managed_abstract(event, abstract_id)
    form = forms.DecisionForm.build()
    if not form.validate() or form.decision.data not in services.DECISIONS:
        return _detail(event, abstract, code=400, decision_form=form)
    with state_change(form, field="decision") as change:
        services.DECISIONS[form.decision.data](
            db.session, abstract, current_user, form.note.data or ""
        )
    if not change.ok:
        abstract = _managed_abstract(event, abstract_id)
        return _detail(event, abstract, code=400, decision_form=form)
    flash(
        _("Decision saved: %(decision)s.", decision=services.STATE_LABELS[abstract.state]),
        "success",
    )
    return redirect(url_for(".detail", slug=slug, abstract_id=abstract_id))


@bp.post("/manage/<int:abstract_id>/reopen")
def reopen(slug: str, abstract_id: int):
    event = _organiser_event(slug)
    abstract = _managed_abstract(event, abstract_id)
    reopened = _("The abstract is open for changes by the submitter until the decision.")
    try:
        with state_change(success=reopened):
            services.reopen(db.session, abstract, current_user)
    except NotFound:  # rolled back above
        abort(404)
    return redirect(url_for(".detail", slug=slug, abstract_id=abstract_id))


@bp.get("/manage/emails")
def emails(slug: str):
    event = _organiser_event(slug)
    return _render(
        "abstracts/emails.html",
        event,
        kinds=services.EMAIL_KINDS,
        kind_labels=services.EMAIL_KIND_LABELS,
        texts=services.email_texts(db.session, event),
    )


@bp.route("/manage/emails/<kind>", methods=["GET", "POST"])
def email_text(slug: str, kind: str):
    event = _organiser_event(slug)
    if kind not in services.EMAIL_KINDS:
        abort(404)
    row = services.email_texts(db.session, event).get(kind)
    code = 200
    if request.method == "POST":
        form = forms.EmailTextForm()
        if form.validate():
            services.save_email_text(
                db.session,
                event,
                kind,
                BilingualText(ja=form.subject_ja.data or "", en=form.subject_en.data or ""),
                BilingualText(ja=form.body_ja.data or "", en=form.body_en.data or ""),
                current_user,
            )
            db.session.commit()
            flash(_("The email text was saved."), "success")
            return redirect(url_for(".emails", slug=slug))
        code = 400
    else:
        data = {}
        if row is not None:
            data = {
                "subject_ja": row.subject.ja,
                "subject_en": row.subject.en,
                "body_ja": row.body.ja,
                "body_en": row.body.en,
            }
        form = forms.EmailTextForm(formdata=None, data=data)
    builtin = {}
    for lang in ("ja", "en"):
        with force_locale(lang):
            builtin[lang] = (
                str(services.DEFAULT_SUBJECTS[kind]),
                str(services.DEFAULT_BODIES[kind]),
            )
    return _render(
        "abstracts/email_text.html",
        event,
        code=code,
        form=form,
        kind=kind,
        kind_label=services.EMAIL_KIND_LABELS[kind],
        builtin=builtin,
        placeholders=services.PLACEHOLDERS,
    )


@bp.get("/manage/export.csv")
def export(slug: str):
    event = _organiser_event(slug)
    body = services.export_csv(db.session, event)
    return Response(
        body.encode("utf-8"),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="{event.slug}-abstracts.csv"',
            "Content-Type": "text/csv; charset=utf-8",
        },
    )


def reviewer_label(assignment: ReviewAssignment) -> str:
    return assignment.reviewer.display_name if assignment.reviewer else _("(deleted account)")
