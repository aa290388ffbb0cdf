"""Membership pages: the organiser's (companies per year, members, unpaid invoices, CSV,
documents) and the member's own (status, invitations from the company's contact).

Organiser pages: administrators and organisers of the series; other logged-in people get 404,
visitors are asked to log in first.
"""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

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
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from plugins.membership import forms, services
from plugins.membership.models import (
    MemberCompany,
    MemberHow,
    Membership,
    MembershipState,
)
from plugins.membership.services import MembershipError
from portal import plugins
from portal.accounts.models import Person
from portal.csvexport import csv_response, csv_stream_response
from portal.db import db
from portal.documents.models import Document, DocumentKind
from portal.documents.pdf import render_pdf
from portal.documents.services import latest_for
from portal.events.models import Series
from portal.events.services import series_by_slug
from portal.i18n import LANGUAGES, current_language, format_person_name, from_minor
from portal.pagination import page_number
from portal.params import int_or_none
from portal.security import limit_email_form
from portal.transactions import state_change

PLUGIN = "membership"
bp = Blueprint("membership", __name__, url_prefix="/<lang_code>", template_folder="templates")

PER_PAGE = 30

STATE_LABELS = {
    MembershipState.unpaid: _l("Unpaid"),
    MembershipState.paid: _l("Paid"),
    MembershipState.cancelled: _l("Membership cancelled"),
}
HOW_LABELS = {
    MemberHow.domain: _l("Email address at the company's domain"),
    MemberHow.invited: _l("Invited by the company's contact"),
    MemberHow.organiser: _l("Added by an organiser"),
}


def fy_label(year: int) -> str:
    return _("FY%(year)s", year=year)


@bp.app_context_processor
def membership_helpers():
    return {"fy_label": fy_label}


# -- access ----------------------------------------------------------------------------------


def _login_first():
    if not current_user.is_authenticated:
        abort(current_app.login_manager.unauthorized())


def _series_or_404(slug: str) -> Series:
    """The series, if the person organises it (administrators: all); others get 404."""
    _login_first()
    series = series_by_slug(db.session, slug)
    if series is None or not current_user.is_organiser_of(series):
        abort(404)
    plugins.require_series_enabled(series, PLUGIN)
    return series


def _company_or_404(series: Series, company_id: int) -> MemberCompany:
    company = db.session.get(MemberCompany, company_id)
    if company is None or company.series_id != series.id:
        abort(404)
    return company


def _membership_or_404(series: Series, membership_id: int) -> Membership:
    membership = db.session.get(Membership, membership_id)
    if membership is None or membership.company.series_id != series.id:
        abort(404)
    return membership


def _year_arg(series: Series) -> int:
    year = int_or_none(request.args.get("fy", ""), 2000, 2100)
    return year if year is not None else services.current_fiscal_year(series)


# -- organiser: overview ---------------------------------------------------------------------


@bp.get("/organiser/membership/")
def organiser_index():
    _login_first()
    if not current_user.is_organiser:
        abort(404)
    from portal.organiser.services import organised_series

    series = [
        s for s in organised_series(db.session, current_user) if plugins.series_enabled(s, PLUGIN)
    ]
    return render_template("membership/organiser_index.html", series_list=series)


@bp.get("/organiser/membership/<slug>/")
def year_page(slug: str):
    series = _series_or_404(slug)
    year = _year_arg(series)
    page = services.companies_page(db.session, series, year, page_number(), PER_PAGE)
    documents = services.membership_documents(
        db.session, [m.id for _c, m in page.items if m is not None]
    )
    current = {mid: services.current_documents(docs) for mid, docs in documents.items()}
    summary = services.year_summary(db.session, series, year)
    return render_template(
        "membership/year.html",
        series=series,
        year=year,
        page=page,
        current=current,
        summary=summary,
        state_labels=STATE_LABELS,
        MembershipState=MembershipState,
    )


@bp.route("/organiser/membership/<slug>/invoices", methods=["GET", "POST"])
def annual_invoices(slug: str):
    """The year's invoices in one step: the preview (GET), then issue and mail them (POST)."""
    series = _series_or_404(slug)
    year = _year_arg(series)
    form = forms.AnnualInvoicesForm()
    if form.validate_on_submit():
        issued = services.issue_annual_invoices(
            db.session, series, year, actor=current_user, due_date=form.due_date.data
        )
        db.session.commit()
        flash(
            _(
                "%(count)s invoices for %(year)s were issued and sent to the companies' contacts.",
                count=len(issued),
                year=fy_label(year),
            ),
            "success",
        )
        return redirect(url_for(".year_page", slug=slug, fy=year))
    plan = services.annual_invoice_plan(db.session, series, year)
    return render_template(
        "membership/annual_invoices.html",
        series=series,
        year=year,
        plan=plan,
        form=form,
        total=sum(row.amount_minor for row in plan),
    ), 400 if form.is_submitted() else 200


@bp.get("/organiser/membership/<slug>/members")
def members(slug: str):
    series = _series_or_404(slug)
    year = _year_arg(series)
    query = (request.args.get("q") or "").strip()[:100]
    page = services.members_page(db.session, series, year, page_number(), PER_PAGE, query=query)
    return render_template(
        "membership/members.html",
        series=series,
        year=year,
        page=page,
        query=query,
        how_labels=HOW_LABELS,
    )


@bp.get("/organiser/membership/<slug>/unpaid")
def unpaid(slug: str):
    series = _series_or_404(slug)
    page = services.unpaid_memberships(db.session, series, page_number(), PER_PAGE)
    documents = services.membership_documents(db.session, [m.id for m in page.items])
    current = {mid: services.current_documents(docs) for mid, docs in documents.items()}
    return render_template(
        "membership/unpaid.html",
        series=series,
        year=services.current_fiscal_year(series),
        page=page,
        current=current,
    )


_csv_response = csv_response


@bp.get("/organiser/membership/<slug>/companies.csv")
def companies_csv(slug: str):
    series = _series_or_404(slug)
    year = _year_arg(series)
    lang = current_language()
    rows = services.memberships_of_year(db.session, series, year)
    documents = services.membership_documents(db.session, [m.id for _c, m in rows])
    table = [
        [
            _("Fiscal year"),
            _("Company name (Japanese)"),
            _("Company name (English)"),
            _("Contact person"),
            _("Contact person's email address"),
            _("Billing address"),
            _("Email domains"),
            _("Fee tier"),
            _("Annual fee"),
            _("Currency"),
            _("State"),
            _("Paid on"),
            _("Invoice number"),
            _("Receipt number"),
        ]
    ]
    for company, membership in rows:
        docs = services.current_documents(documents[membership.id])
        paid_on = (
            membership.paid_at.astimezone(ZoneInfo(series.timezone)).date().isoformat()
            if membership.paid_at
            else ""
        )
        table.append(
            [
                year,
                company.name.ja,
                company.name.en,
                company.contact_name,
                company.contact_email,
                company.billing_address,
                " ".join(company.domains),
                membership.tier.get(lang, series.default_language) if membership.tier else "",
                membership.amount_minor,
                membership.currency,
                str(STATE_LABELS[membership.state]),
                paid_on,
                docs["invoice"].reference if docs["invoice"] else "",
                docs["receipt"].reference if docs["receipt"] else "",
            ]
        )
    return _csv_response(table, f"member-companies-{series.slug}-{year}.csv")


@bp.get("/organiser/membership/<slug>/members.csv")
def members_csv(slug: str):
    series = _series_or_404(slug)
    year = _year_arg(series)
    lang = current_language()

    def rows():
        yield [_("Fiscal year"), _("Member company"), _("Name"), _("Email address"), _("How")]
        for row in services.members_export(db.session, series, year):
            yield [
                year,
                row.name.get(lang, series.default_language),
                format_person_name(row, lang),
                row.email or "",
                str(HOW_LABELS[MemberHow(row.how)]),
            ]

    return csv_stream_response(rows(), f"members-{series.slug}-{year}.csv")


# -- organiser: companies --------------------------------------------------------------------


@bp.route("/organiser/membership/<slug>/companies/new", methods=["GET", "POST"])
def company_new(slug: str):
    series = _series_or_404(slug)
    form = forms.CompanyForm()
    if form.validate_on_submit():
        with state_change(form, field="domains") as change:
            company = services.create_company(db.session, series, current_user, **form.values())
        if change.ok:
            flash(_("The company “%(name)s” was added.", name=company.name.get()), "success")
            return redirect(url_for(".company_page", slug=slug, company_id=company.id))
    code = 400 if form.is_submitted() else 200
    return render_template(
        "membership/company_form.html", series=series, form=form, company=None
    ), code


@bp.route("/organiser/membership/<slug>/companies/<int:company_id>/edit", methods=["GET", "POST"])
def company_edit(slug: str, company_id: int):
    series = _series_or_404(slug)
    company = _company_or_404(series, company_id)
    form = forms.CompanyForm(company=company)
    if form.validate_on_submit():
        with state_change(form, field="domains") as change:
            services.update_company(db.session, company, current_user, **form.values())
        if change.ok:
            flash(_("The company “%(name)s” was saved.", name=company.name.get()), "success")
            return redirect(url_for(".company_page", slug=slug, company_id=company.id))
    code = 400 if form.is_submitted() else 200
    return render_template(
        "membership/company_form.html", series=series, form=form, company=company
    ), code


def _render_company(series, company, code=200, member_form=None, invite_form=None):
    memberships = services.memberships_of_company(db.session, company)
    documents = services.membership_documents(db.session, [m.id for m in memberships])
    year = services.current_fiscal_year(series)
    people = services.members_page(db.session, series, year, 1, 0, company_id=company.id)
    removed = services.removed_members(db.session, company)
    invitations = services.company_invitations(db.session, company)
    return render_template(
        "membership/company.html",
        series=series,
        company=company,
        memberships=memberships,
        documents=documents,
        year=year,
        people=people.items,
        removed=removed,
        invitations=invitations,
        member_form=member_form or forms.EmailForm(prefix="member"),
        invite_form=invite_form or forms.EmailForm(prefix="invite"),
        confirm_form=forms.ConfirmForm(),
        state_labels=STATE_LABELS,
        how_labels=HOW_LABELS,
        MembershipState=MembershipState,
        now=services.utcnow(),
    ), code


@bp.get("/organiser/membership/<slug>/companies/<int:company_id>/")
def company_page(slug: str, company_id: int):
    series = _series_or_404(slug)
    return _render_company(series, _company_or_404(series, company_id))


@bp.post("/organiser/membership/<slug>/companies/<int:company_id>/members")
def member_add(slug: str, company_id: int):
    series = _series_or_404(slug)
    company = _company_or_404(series, company_id)
    form = forms.EmailForm(prefix="member")
    if form.validate_on_submit():
        with state_change(form, field="email") as change:
            row = services.add_member(db.session, company, form.email.data, current_user)
        if change.ok:
            flash(_("%(name)s was added to the company.", name=row.person.display_name), "success")
            return redirect(url_for(".company_page", slug=slug, company_id=company.id))
    return _render_company(series, company, 400, member_form=form)


@bp.post("/organiser/membership/<slug>/companies/<int:company_id>/members/<int:person_id>/remove")
def member_remove(slug: str, company_id: int, person_id: int):
    series = _series_or_404(slug)
    company = _company_or_404(series, company_id)
    person = db.session.get(Person, person_id)
    if person is None or not forms.ConfirmForm().validate_on_submit():
        abort(404 if person is None else 400)
    removed = _("%(name)s was removed from the company.", name=person.display_name)
    with state_change(success=removed):
        services.remove_member(db.session, company, person, current_user)
    return redirect(url_for(".company_page", slug=slug, company_id=company.id))


@bp.post("/organiser/membership/<slug>/companies/<int:company_id>/invitations")
@limit_email_form
def organiser_invite(slug: str, company_id: int):
    series = _series_or_404(slug)
    company = _company_or_404(series, company_id)
    form = forms.EmailForm(prefix="invite")
    if form.validate_on_submit():
        services.invite_member(db.session, company, form.email.data, current_user)
        db.session.commit()
        flash(_("An invitation was sent to %(email)s.", email=form.email.data), "success")
        return redirect(url_for(".company_page", slug=slug, company_id=company.id))
    return _render_company(series, company, 400, invite_form=form)


# -- organiser: memberships, payments, documents ---------------------------------------------


@bp.route(
    "/organiser/membership/<slug>/companies/<int:company_id>/memberships/new",
    methods=["GET", "POST"],
)
def membership_new(slug: str, company_id: int):
    series = _series_or_404(slug)
    company = _company_or_404(series, company_id)
    today = services.local_today(series)
    form = forms.MembershipForm(
        currency=series.currency,
        data=None
        if request.method == "POST"
        else {"fiscal_year": services.fiscal_year(today), "due_date": today + timedelta(days=30)},
    )
    if form.validate_on_submit():
        with state_change(form, field="fiscal_year") as change:
            membership = services.record_membership(
                db.session,
                company,
                form.fiscal_year.data,
                tier=form.tier(),
                amount_minor=form.amount_minor,
                due_date=form.due_date.data,
                actor=current_user,
            )
        if change.ok:
            flash(
                _(
                    "The membership for %(year)s was recorded and its invoice issued.",
                    year=fy_label(membership.fiscal_year),
                ),
                "success",
            )
            return redirect(url_for(".company_page", slug=slug, company_id=company.id))
    code = 400 if form.is_submitted() else 200
    return render_template(
        "membership/membership_form.html",
        series=series,
        company=company,
        form=form,
        membership=None,
    ), code


@bp.route(
    "/organiser/membership/<slug>/memberships/<int:membership_id>/correct", methods=["GET", "POST"]
)
def membership_correct(slug: str, membership_id: int):
    series = _series_or_404(slug)
    membership = _membership_or_404(series, membership_id)
    company = membership.company
    if membership.state != MembershipState.unpaid:
        flash(str(MembershipError("not_unpaid").message), "error")
        return redirect(url_for(".company_page", slug=slug, company_id=company.id))
    data = None
    if request.method != "POST":
        current = latest_for(db.session, services.SUBJECT, membership.id, DocumentKind.invoice)
        due = (
            current.due_date.astimezone(ZoneInfo(series.timezone)).date()
            if current is not None and current.due_date
            else None
        )
        data = {
            "fiscal_year": membership.fiscal_year,
            "tier_ja": membership.tier.ja if membership.tier else "",
            "tier_en": membership.tier.en if membership.tier else "",
            "amount": str(from_minor(membership.amount_minor, membership.currency)),
            "due_date": due,
        }
    form = forms.MembershipForm(currency=membership.currency, data=data)
    if form.validate_on_submit():
        with state_change(form, field="amount") as change:
            services.correct_invoice(
                db.session,
                membership,
                tier=form.tier(),
                amount_minor=form.amount_minor,
                due_date=form.due_date.data,
                actor=current_user,
            )
        if change.ok:
            flash(_("A corrected invoice was issued."), "success")
            return redirect(url_for(".company_page", slug=slug, company_id=company.id))
    code = 400 if form.is_submitted() else 200
    return render_template(
        "membership/membership_form.html",
        series=series,
        company=company,
        form=form,
        membership=membership,
    ), code


@bp.route(
    "/organiser/membership/<slug>/memberships/<int:membership_id>/payment", methods=["GET", "POST"]
)
def payment(slug: str, membership_id: int):
    series = _series_or_404(slug)
    membership = _membership_or_404(series, membership_id)
    form = forms.PaymentForm(
        data=None if request.method == "POST" else {"paid_on": services.local_today(series)}
    )
    if form.validate_on_submit():
        with state_change(form, field="paid_on") as change:
            receipt = services.record_payment(
                db.session, membership, form.paid_on.data, current_user
            )
        if change.ok:
            flash(
                _(
                    "The payment was recorded and receipt %(number)s issued.",
                    number=receipt.reference,
                ),
                "success",
            )
            return redirect(url_for(".company_page", slug=slug, company_id=membership.company_id))
    code = 400 if form.is_submitted() else 200
    return render_template(
        "membership/payment_form.html", series=series, membership=membership, form=form
    ), code


@bp.post("/organiser/membership/<slug>/memberships/<int:membership_id>/cancel")
def membership_cancel(slug: str, membership_id: int):
    series = _series_or_404(slug)
    membership = _membership_or_404(series, membership_id)
    if not forms.ConfirmForm().validate_on_submit():
        abort(400)
    with state_change(success=_("The membership was cancelled and a credit note issued.")):
        services.cancel_membership(db.session, membership, current_user)
    return redirect(url_for(".company_page", slug=slug, company_id=membership.company_id))


@bp.get("/organiser/membership/<slug>/documents/<int:document_id>.pdf")
def document_pdf(slug: str, document_id: int):
    """An issued invoice or receipt as PDF. ``?language=en`` (or ``ja``) renders the same
    stored document with the fixed labels in that language; its content does not change."""
    series = _series_or_404(slug)
    document = db.session.get(Document, document_id)
    if (
        document is None
        or document.series_id != series.id
        or document.subject_type != services.SUBJECT
    ):
        abort(404)
    language = request.args.get("language")
    if language not in LANGUAGES:
        language = document.language
    body = render_pdf(document, language=language)
    filename = f"{document.reference}-{language}.pdf"
    return Response(
        body,
        mimetype="application/pdf",
        headers={
            "Content-Disposition": f'inline; filename="{filename}"',
            "Cache-Control": "private, no-store",
        },
    )


# -- members: status and invitations ---------------------------------------------------------


def _public_series_or_404(slug: str) -> Series:
    series = series_by_slug(db.session, slug)
    if series is None:
        abort(404)
    plugins.require_series_enabled(series, PLUGIN)
    return series


def _render_mine(series, code=200, invite_form=None):
    year = services.current_fiscal_year(series)
    through = services.member_companies(db.session, current_user, series, year)
    contact_of = services.contact_companies(db.session, current_user, series)
    active_ids = services.active_companies(db.session, series, year)
    colleagues = services.colleagues_of(db.session, series, year, contact_of)
    return render_template(
        "membership/mine.html",
        series=series,
        year=year,
        through=through,
        contact_of=contact_of,
        active_ids=active_ids,
        colleagues=colleagues,
        invite_form=invite_form or forms.EmailForm(prefix="invite"),
        how_labels=HOW_LABELS,
    ), code


@bp.get("/membership/<slug>/")
def mine(slug: str):
    _login_first()
    return _render_mine(_public_series_or_404(slug))


@bp.post("/membership/<slug>/companies/<int:company_id>/invitations")
@limit_email_form
def contact_invite(slug: str, company_id: int):
    _login_first()
    series = _public_series_or_404(slug)
    company = next(
        (
            c
            for c in services.contact_companies(db.session, current_user, series)
            if c.id == company_id
        ),
        None,
    )
    if company is None:
        abort(404)
    form = forms.EmailForm(prefix="invite")
    if form.validate_on_submit():
        services.invite_member(db.session, company, form.email.data, current_user)
        db.session.commit()
        flash(_("An invitation was sent to %(email)s.", email=form.email.data), "success")
        return redirect(url_for(".mine", slug=slug))
    return _render_mine(series, 400, invite_form=form)


@bp.route("/membership/invitations/<token>", methods=["GET", "POST"])
def accept_invitation(token: str):
    try:
        invitation = services.read_invitation(db.session, token)
    except MembershipError as exc:
        return render_template("membership/invitation_problem.html", message=str(exc.message)), 400
    _login_first()  # accepting needs an account: log in (or sign up) and come back
    form = forms.ConfirmForm()
    if request.method == "POST" and form.validate_on_submit():
        with state_change(flash_errors=False) as change:
            services.accept_invitation(db.session, invitation, current_user)
        if not change.ok:
            return render_template(
                "membership/invitation_problem.html", message=str(change.message)
            ), 400
        flash(
            _(
                "You are now a member through %(company)s.",
                company=invitation.company.name.get(
                    None, invitation.company.series.default_language
                ),
            ),
            "success",
        )
        return redirect(url_for(".mine", slug=invitation.company.series.slug))
    return render_template("membership/invitation.html", invitation=invitation, form=form)
