"""Speaker pages: the public directory and speaker page, the speaker's own form (through an
invitation link or their account), and the organisers' pages under /organiser/speakers/."""

from __future__ import annotations

import click
from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user

from portal import people
from portal.accounts.models import Person
from portal.csvexport import csv_stream_response
from portal.db import db
from portal.extensions import login_manager
from portal.i18n import LANGUAGES, BilingualText, current_language
from portal.pagecache import cached_for_visitors
from portal.pagination import page_number, paginate
from portal.params import int_or_none
from portal.registration.labels import STATE_LABELS
from portal.security import limit_email_form
from portal.speakers import forms, institutions, merge, photos, records, services
from portal.speakers.models import Institution, SpeakerProfile
from portal.transactions import state_change

bp = Blueprint("speakers", __name__, url_prefix="/<lang_code>/speakers", cli_group="speakers")
admin = Blueprint("speaker_admin", __name__, url_prefix="/<lang_code>/organiser")

PER_PAGE = 20


def shown_in(value, default: str | None = None) -> str:
    """The language a bilingual text is shown in (for the lang attribute)."""
    value = BilingualText.of(value)
    for candidate in (current_language(), default, *LANGUAGES):
        if candidate in LANGUAGES and value.has(candidate):
            return candidate
    return current_language()


LANGUAGE_NAMES = {"ja": "日本語", "en": "English"}


def _render(template: str, status: int = 200, **context):
    context.setdefault("shown_in", shown_in)
    context.setdefault("language_names", LANGUAGE_NAMES)
    context.setdefault("field_label", services.field_label)
    context.setdefault("moved_label", services.moved_label)
    return render_template(template, **context), status


def _live_profile(person_id: int) -> SpeakerProfile:
    profile = services.get_profile(db.session, person_id)
    if profile is None or profile.is_merged or profile.person.anonymised_at is not None:
        abort(404)
    return profile


def _send_photo(profile: SpeakerProfile) -> Response:
    response = photos.send(profile.photo_filename, max_age=0)
    if response is None:
        abort(404)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'"
    response.headers["Cache-Control"] = (
        "public, max-age=3600" if profile.publish_consent else "private, no-store"
    )
    return response


# -- public -----------------------------------------------------------------------------------


@bp.get("/")
@cached_for_visitors
def directory():
    query = (request.args.get("q") or "").strip()[:100]
    page = services.speakers_page(db.session, query, current_language(), page_number(), PER_PAGE)
    return _render("speakers/directory.html", page=page, query=query)


@bp.get("/<int:person_id>/")
@cached_for_visitors
def speaker_page(person_id: int):
    survivor = services.resolve(db.session, person_id)
    if survivor is not None and survivor != person_id:
        return redirect(url_for("speakers.speaker_page", person_id=survivor), 301)
    profile = _live_profile(person_id)
    entries = services.talk_entries(db.session, person_id, current_user)
    return _render(
        "speakers/speaker.html",
        profile=profile,
        person=profile.person,
        entries=entries,
        can_edit=services.is_editor(profile.person, current_user),
        is_self=getattr(current_user, "person_id", None) == person_id,
    )


@bp.get("/<int:person_id>/photo")
def photo(person_id: int):
    profile = _live_profile(person_id)
    if not (profile.publish_consent or services.is_editor(profile.person, current_user)):
        abort(404)
    return _send_photo(profile)


def _own_form_page(profile, talks, template_context: dict, invitation=None):
    """GET/POST of the speaker's own form (shared by the invitation and the account route)."""
    person = profile.person
    form = forms.own_profile_form(talks)
    if request.method == "GET":
        form.fill(profile)
        forms.fill_talk_introductions(form, talks)
    affiliation_form = forms.AffiliationForm(prefix="aff")
    status = 200
    if request.method == "POST" and form.validate_on_submit():
        saved = _("Thank you. Your speaker profile has been saved.")
        with state_change(form, success=saved) as change:
            services.update_speaker(
                db.session,
                person,
                form.values(),
                current_user,
                photo=photos.read_upload(form.photo.data),
                talk_introductions=forms.talk_introductions(form, talks),
                invitation=invitation,
            )
        if change.ok:
            return redirect(request.path)
        status = change.status
    elif request.method == "POST":
        status = 400
    return _render(
        "speakers/own_profile.html",
        status,
        form=form,
        affiliation_form=affiliation_form,
        profile=profile,
        person=person,
        talk_fields=forms.talk_field_pairs(form, talks),
        **template_context,
    )


def _own_affiliation(profile, redirect_to: str, template_context: dict, talks, invitation=None):
    affiliation_form = forms.AffiliationForm(prefix="aff")
    if affiliation_form.validate_on_submit():
        with state_change(success=_("The affiliation has been added.")) as change:
            services.add_affiliation(
                db.session,
                profile.person,
                affiliation_form.organisation,
                affiliation_form.position,
                affiliation_form.started_on.data,
                affiliation_form.ended_on.data,
                current_user if invitation is None else None,
            )
        if change.ok:
            return redirect(redirect_to)
    form = forms.own_profile_form(talks)
    form.fill(profile)
    forms.fill_talk_introductions(form, talks)
    return _render(
        "speakers/own_profile.html",
        400,
        form=form,
        affiliation_form=affiliation_form,
        profile=profile,
        person=profile.person,
        talk_fields=forms.talk_field_pairs(form, talks),
        **template_context,
    )


def _own_profile(person_id: int) -> SpeakerProfile:
    if not current_user.is_authenticated:
        abort(404)
    if current_user.person_id != person_id:
        abort(404)
    profile = services.get_profile(db.session, person_id)
    if profile is None or profile.is_merged:
        abort(404)
    return profile


@bp.route("/<int:person_id>/profile", methods=["GET", "POST"])
def own_profile(person_id: int):
    """The speaker's own form, for a logged-in speaker (others: 404)."""
    profile = _own_profile(person_id)
    talks = services.upcoming_talks(db.session, person_id)
    return _own_form_page(
        profile,
        talks,
        {
            "photo_url": url_for("speakers.photo", person_id=person_id),
            "affiliation_action": url_for("speakers.own_affiliation", person_id=person_id),
            "invitation": None,
        },
    )


@bp.post("/<int:person_id>/profile/affiliations")
def own_affiliation(person_id: int):
    profile = _own_profile(person_id)
    talks = services.upcoming_talks(db.session, person_id)
    return _own_affiliation(
        profile,
        url_for("speakers.own_profile", person_id=person_id),
        {
            "photo_url": url_for("speakers.photo", person_id=person_id),
            "affiliation_action": request.path,
            "invitation": None,
        },
        talks,
    )


def _invitation(token: str):
    try:
        invitation = services.load_invitation(db.session, token)
    except services.InvitationError as exc:
        return None, _render(
            "speakers/invitation_invalid.html", 410 if exc.expired else 404, message=exc.message
        )
    profile = services.get_profile(db.session, invitation.person_id)
    if profile is None or profile.is_merged:
        abort(404)
    owner = profile.person.user
    if owner is not None and not (current_user.is_authenticated and current_user.id == owner.id):
        # The record belongs to an account now (e.g. after a merge): only that account
        # changes it; an old link does not.
        return None, _render(
            "speakers/invitation_invalid.html",
            403,
            message=_("This speaker record now belongs to an account. Please log in to change it."),
            login_url=url_for(
                "accounts.login",
                next=url_for("speakers.own_profile", person_id=profile.person_id),
            ),
        )
    return (invitation, profile), None


@bp.route("/invitation/<token>/", methods=["GET", "POST"])
def invitation(token: str):
    """The speaker's own form through the emailed link: no account needed."""
    found, error = _invitation(token)
    if error:
        return error
    invitation, profile = found
    talks = services.upcoming_talks(db.session, profile.person_id)
    return _own_form_page(
        profile,
        talks,
        {
            "photo_url": url_for("speakers.invitation_photo", token=token),
            "affiliation_action": url_for("speakers.invitation_affiliation", token=token),
            "invitation": invitation,
            "token": token,
            "link_form": forms.EmptyForm(prefix="link"),
        },
        invitation=invitation,
    )


@bp.post("/invitation/<token>/affiliations")
def invitation_affiliation(token: str):
    found, error = _invitation(token)
    if error:
        return error
    invitation, profile = found
    talks = services.upcoming_talks(db.session, profile.person_id)
    return _own_affiliation(
        profile,
        url_for("speakers.invitation", token=token),
        {
            "photo_url": url_for("speakers.invitation_photo", token=token),
            "affiliation_action": request.path,
            "invitation": invitation,
            "token": token,
            "link_form": forms.EmptyForm(prefix="link"),
        },
        talks,
        invitation=invitation,
    )


@bp.get("/invitation/<token>/photo")
def invitation_photo(token: str):
    found, error = _invitation(token)
    if error:
        abort(404)
    return _send_photo(found[1])


@bp.post("/invitation/<token>/link")
def invitation_link(token: str):
    """Join the record to the logged-in account (log in first)."""
    found, error = _invitation(token)
    if error:
        return error
    if not current_user.is_authenticated:
        flash(_("Please log in to link this speaker record to your account."), "info")
        return redirect(url_for("accounts.login", next=url_for("speakers.invitation", token=token)))
    form = forms.EmptyForm(prefix="link")
    if not form.validate_on_submit():
        abort(400)
    invitation, _profile = found
    linked = _("The speaker record is now linked to your account.")
    with state_change(success=linked) as change:
        person = services.link_speaker_to_account(db.session, invitation, current_user)
    if not change.ok:
        return redirect(url_for("speakers.invitation", token=token))
    return redirect(url_for("speakers.own_profile", person_id=person.id))


# -- institutions ------------------------------------------------------------------------------


def _institution(institution_id: int):
    institution = db.session.get(Institution, institution_id)
    if institution is None:
        abort(404)
    return institution


@admin.get("/institutions/")
def institution_list():
    query = (request.args.get("q") or "").strip()[:100]
    page = paginate(
        db.session, institutions.institutions_page(db.session, query), page_number(), PER_PAGE
    )
    counts = institutions.people_counts(db.session, [i.id for i in page.items])
    return _render("speakers/organiser/institutions.html", page=page, query=query, counts=counts)


@admin.route("/institutions/new", methods=["GET", "POST"])
def institution_new():
    form = forms.InstitutionForm()
    status = 200
    if request.method == "POST":
        status = 400
        if form.validate_on_submit():
            with state_change(form, success=_("The institution has been saved.")) as change:
                institution = institutions.create_institution(
                    db.session, form.name, form.alias_list, form.ror_id.data, current_user
                )
            if change.ok:
                return redirect(
                    url_for("speaker_admin.institution_edit", institution_id=institution.id)
                )
    return _render("speakers/organiser/institution_form.html", status, form=form, institution=None)


@admin.route("/institutions/<int:institution_id>/edit", methods=["GET", "POST"])
def institution_edit(institution_id: int):
    institution = _institution(institution_id)
    form = forms.InstitutionForm()
    status = 200
    if request.method == "GET":
        form.fill(institution)
    else:
        status = 400
        if form.validate_on_submit():
            with state_change(form, success=_("The institution has been saved.")) as change:
                institutions.update_institution(
                    db.session,
                    institution,
                    form.name,
                    form.alias_list,
                    form.ror_id.data,
                    current_user,
                )
            if change.ok:
                return redirect(
                    url_for("speaker_admin.institution_edit", institution_id=institution_id)
                )
            institution = _institution(institution_id)
    counts = institutions.people_counts(db.session, [institution.id])
    return _render(
        "speakers/organiser/institution_form.html",
        status,
        form=form,
        institution=institution,
        count=counts.get(institution.id, 0),
    )


class _MergePage:
    """The two records of a merge page (speakers, institutions): ``a`` and ``b`` in the query
    or the form (404 unless both are records), and the form's choice of the one to keep (the
    first, until the organiser chooses)."""

    def __init__(self, load, form, key, label):
        self.ids = [int_or_none(request.values.get(name, "")) for name in ("a", "b")]
        if None in self.ids:
            abort(404)
        self.load, self.form, self.key = load, form, key
        self.reload()
        form.survivor_id.choices = [
            forms.choice(key(record), f"#{key(record)} {label(record)}")
            for record in (self.first, self.second)
        ]
        if request.method != "POST" and form.survivor_id.data is None:
            form.survivor_id.data = key(self.first)

    def reload(self) -> None:
        """Read the two records again (after a refused merge rolled back)."""
        self.first, self.second = (self.load(i) for i in self.ids)

    def survivor_and_merged(self) -> tuple:
        if self.form.survivor_id.data == self.key(self.first):
            return self.first, self.second
        return self.second, self.first

    def render(self, template: str, status: int, **context):
        return _render(
            template,
            status,
            form=self.form,
            first=self.first,
            second=self.second,
            a=self.ids[0],
            b=self.ids[1],
            **context,
        )


@admin.route("/institutions/merge", methods=["GET", "POST"])
def institution_merge():
    page = _MergePage(
        _institution, forms.InstitutionMergeForm(), lambda i: i.id, lambda i: i.name.get()
    )
    status = 200
    if request.method == "POST":
        status = 400
        if page.form.validate_on_submit():
            survivor, merged = page.survivor_and_merged()
            done = _("The institutions have been merged.")
            with state_change(page.form, success=done) as change:
                institutions.merge_institutions(db.session, survivor, merged, current_user)
            if change.ok:
                return redirect(
                    url_for("speaker_admin.institution_edit", institution_id=survivor.id)
                )
            page.reload()
    counts = institutions.people_counts(db.session, page.ids)
    return page.render("speakers/organiser/institution_merge.html", status, counts=counts)


@bp.cli.command("reindex")
def reindex_command():
    """Give every person with a talk a speaker profile and rebuild the search keys."""
    count = services.reindex(db.session)
    db.session.commit()
    click.echo(f"{count} speaker records indexed.")


# -- organisers -------------------------------------------------------------------------------


@admin.before_request
def organisers_only():
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    if not current_user.is_organiser:
        abort(403)
    return None


def _person(person_id: int) -> SpeakerProfile:
    profile = services.get_profile(db.session, person_id)
    if profile is None:
        abort(404)
    if profile.is_merged:
        flash(_("This record has been merged into another one."), "info")
    return profile


@admin.get("/speakers/")
def speaker_list():
    query = (request.args.get("q") or "").strip()[:100]
    page = services.speakers_page(
        db.session,
        query,
        current_language(),
        page_number(),
        PER_PAGE,
        organiser=True,
        public=False,
        email_scope=people.visible_to(current_user),  # else only the exact email
    )
    shown = people.emails_shown(db.session, current_user, [p.person_id for p in page.items])
    return _render("speakers/organiser/list.html", page=page, query=query, emails_shown=shown)


@admin.route("/speakers/new", methods=["GET", "POST"])
def speaker_new():
    form = forms.SpeakerForm()
    duplicates = []
    status = 200
    if request.method == "POST":
        status = 400
        if form.validate_on_submit():
            duplicates = services.likely_duplicates_of(db.session, form.values())
            if duplicates and not form.confirm_new.data:
                flash(
                    _(
                        "Similar speaker records exist. Please check them, or confirm that this is a different person."
                    ),
                    "error",
                )
            else:
                created = _("The speaker record has been created.")
                with state_change(form, success=created) as change:
                    profile = services.create_speaker(
                        db.session,
                        form.values(),
                        current_user,
                        photo=photos.read_upload(form.photo.data),
                    )
                if change.ok:
                    return redirect(
                        url_for("speaker_admin.speaker_edit", person_id=profile.person_id)
                    )
    return _render("speakers/organiser/new.html", status, form=form, duplicates=duplicates)


def _speaker_form(person) -> forms.SpeakerForm:
    """The organiser's form; without the email field for a speaker of the other series only
    (the directory is shared, their address is not: it is neither shown nor changed)."""
    form = forms.SpeakerForm()
    if not people.may_see(db.session, current_user, person):
        del form.email
    return form


def _edit_page(profile, status=200, form=None, affiliation_form=None, invite_form=None):
    person = profile.person
    email_shown = people.may_see(db.session, current_user, person)
    if form is None:
        form = _speaker_form(person)
        form.fill(profile)
    if affiliation_form is None:
        affiliation_form = forms.AffiliationForm(prefix="aff")
    if invite_form is None:
        invite_form = forms.InviteForm(prefix="inv")
        invite_form.invite_email.data = (person.email or "") if email_shown else ""
        invite_form.invite_language.data = person.preferred_language
    talks = services.speaker_talks(db.session, person.id, current_user)
    return _render(
        "speakers/organiser/edit.html",
        status,
        profile=profile,
        person=person,
        form=form,
        affiliation_form=affiliation_form,
        invite_form=invite_form,
        talks=talks,
        merges=services.merges_of(db.session, person.id),
        photo_form=forms.EmptyForm(prefix="photo"),
        duplicates=(
            [] if profile.is_merged else services.likely_duplicates_of_record(db.session, person)
        ),
        institutions=institutions.institutions_by_id(
            db.session, [a.institution_id for a in profile.affiliations]
        ),
    )


@admin.route("/speakers/<int:person_id>/edit", methods=["GET", "POST"])
def speaker_edit(person_id: int):
    profile = _person(person_id)
    if request.method == "GET":
        return _edit_page(profile)
    form = _speaker_form(profile.person)
    if form.validate_on_submit():
        with state_change(form, success=_("The speaker record has been saved.")) as change:
            data = photos.read_upload(form.photo.data)
            services.update_speaker(db.session, profile.person, form.values(), current_user, data)
        if change.ok:
            return redirect(url_for("speaker_admin.speaker_edit", person_id=person_id))
        profile = _person(person_id)
    return _edit_page(profile, 400, form=form)


@admin.post("/speakers/<int:person_id>/affiliations")
def speaker_affiliation(person_id: int):
    profile = _person(person_id)
    affiliation_form = forms.AffiliationForm(prefix="aff")
    if affiliation_form.validate_on_submit():
        with state_change(success=_("The affiliation has been added.")) as change:
            services.add_affiliation(
                db.session,
                profile.person,
                affiliation_form.organisation,
                affiliation_form.position,
                affiliation_form.started_on.data,
                affiliation_form.ended_on.data,
                current_user,
            )
        if change.ok:
            return redirect(url_for("speaker_admin.speaker_edit", person_id=person_id))
    return _edit_page(profile, 400, affiliation_form=affiliation_form)


@admin.post("/speakers/<int:person_id>/photo/delete")
def speaker_photo_delete(person_id: int):
    profile = _person(person_id)
    if not forms.EmptyForm(prefix="photo").validate_on_submit():
        abort(400)
    services.remove_photo(db.session, profile.person, current_user)
    db.session.commit()
    flash(_("The photo has been removed."), "success")
    return redirect(url_for("speaker_admin.speaker_edit", person_id=person_id))


@admin.post("/speakers/<int:person_id>/invite")
@limit_email_form
def speaker_invite(person_id: int):
    profile = _person(person_id)
    invite_form = forms.InviteForm(prefix="inv")
    if invite_form.validate_on_submit():
        sent = _("The invitation has been sent to %(email)s.", email=invite_form.invite_email.data)
        with state_change(success=sent) as change:
            services.invite_speaker(
                db.session,
                profile.person,
                invite_form.invite_email.data,
                current_user,
                invite_form.invite_language.data,
            )
        if change.ok:
            return redirect(url_for("speaker_admin.speaker_edit", person_id=person_id))
    return _edit_page(profile, 400, invite_form=invite_form)


@admin.get("/speakers/export.csv")
def speaker_export():
    def rows():  # db.session taken while streaming: the one closed when the stream ends
        yield from services.speakers_csv_rows(db.session, current_user)

    return csv_stream_response(rows(), "speakers.csv")


@admin.get("/speakers/duplicates")
def speaker_duplicates():
    return _render("speakers/organiser/duplicates.html", pairs=services.find_duplicates(db.session))


@admin.route("/speakers/merge", methods=["GET", "POST"])
def speaker_merge():
    page = _MergePage(
        _person, forms.MergeForm(), lambda p: p.person_id, lambda p: p.person.display_name
    )
    first_id, second_id = page.ids
    clashes = services.registration_clashes(db.session, first_id, second_id)
    chosen = {c.event.id: c.default.id for c in clashes}
    status = 200
    if request.method == "POST":
        status = 400
        valid = page.form.validate_on_submit()
        for clash in clashes:
            raw = int_or_none(request.form.get(f"keep_{clash.event.id}", ""))
            if raw not in {r.id for r in clash.registrations}:
                valid = False
                flash(
                    _(
                        "Please choose which registration for %(event)s to keep.",
                        event=str(clash.event.title),
                    ),
                    "error",
                )
            else:
                chosen[clash.event.id] = raw
        if valid:
            survivor, merged = page.survivor_and_merged()
            with state_change(success=_("The records have been merged.")) as change:
                record = services.merge_speakers(
                    db.session,
                    survivor.person,
                    merged.person,
                    current_user,
                    keep_registrations=chosen,
                )
            if change.ok:
                return redirect(url_for("speaker_admin.merge_detail", merge_id=record.id))
            page.reload()
            clashes = services.registration_clashes(db.session, first_id, second_id)
    counts = merge.talk_counts(db.session, page.ids)
    return page.render(
        "speakers/organiser/merge.html",
        status,
        talk_counts=counts,
        clashes=clashes,
        chosen=chosen,
        state_labels=STATE_LABELS,
    )


@admin.get("/speakers/merges/")
def merge_list():
    page = paginate(db.session, services.merges(db.session), page_number(), PER_PAGE)
    return _render("speakers/organiser/merges.html", page=page)


@admin.get("/speakers/merges/<int:merge_id>")
def merge_detail(merge_id: int):
    record = merge.merge_record(db.session, merge_id)
    if record is None:
        abort(404)
    institution_id = (record.snapshot or {}).get("person", {}).get("institution_id")
    return _render(
        "speakers/organiser/merge_detail.html",
        record=record,
        institutions=institutions.institutions_by_id(db.session, [institution_id]),
    )


@admin.route("/talks/<int:talk_id>/speaker", methods=["GET", "POST"])
def talk_speaker(talk_id: int):
    """Give a talk its speaker: pick an existing record (search) or create one."""
    talk = records.talk_with_event(db.session, talk_id)
    if talk is None or not current_user.is_organiser_of(talk.event.series):
        abort(404)
    query = (request.args.get("q") or "").strip()[:100]
    new_form = forms.SpeakerForm(prefix="new")
    pick_form = forms.PickSpeakerForm(prefix="pick")
    intro_form = forms.TalkIntroductionForm(prefix="intro")
    duplicates = []
    status = 200
    action = request.form.get("action")
    if request.method == "POST":
        status = 400
        done = None
        with state_change() as change:  # a refused change is flashed
            if action == "pick" and pick_form.validate_on_submit():
                raw = pick_form.speaker_id.data
                person = db.session.get(Person, raw) if int_or_none(raw) is not None else None
                if person is None:
                    abort(404)
                services.attach_speaker(db.session, talk, person, current_user)
                done = _("The speaker has been set.")
            elif action == "create" and new_form.validate_on_submit():
                duplicates = services.likely_duplicates_of(db.session, new_form.values())
                if duplicates and not new_form.confirm_new.data:
                    flash(
                        _(
                            "Similar speaker records exist. Please check them, or confirm that this is a different person."
                        ),
                        "error",
                    )
                else:
                    services.create_speaker_for_talk(
                        db.session, talk, new_form.values(), current_user
                    )
                    done = _("The speaker has been set.")
            elif action == "intro" and intro_form.validate_on_submit():
                services.set_talk_self_introduction(
                    db.session,
                    talk,
                    BilingualText(
                        ja=intro_form.talk_intro_ja.data, en=intro_form.talk_intro_en.data
                    ),
                    current_user,
                )
                done = _("The self-introduction for this talk has been saved.")
        if change.ok and done is not None:
            flash(done, "success")
            return redirect(request.path)
    else:
        intro_form.talk_intro_ja.data = talk.self_introduction.ja
        intro_form.talk_intro_en.data = talk.self_introduction.en
    results = None
    if query:
        results = services.speakers_page(
            db.session,
            query,
            current_language(),
            page_number(),
            10,
            organiser=True,
            public=False,
            email_scope=people.visible_to(current_user),  # else only the exact email
        )
    return _render(
        "speakers/organiser/talk_speaker.html",
        status,
        talk=talk,
        query=query,
        results=results,
        new_form=new_form,
        pick_form=pick_form,
        intro_form=intro_form,
        duplicates=duplicates,
    )
