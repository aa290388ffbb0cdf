"""Corporate membership: companies, yearly memberships, invoices and receipts, members.

Rules (written down once):

- **Fiscal year** (年度) runs April to March: ``fiscal_year(2026-03-31) == 2025``,
  ``fiscal_year(2026-04-01) == 2026``; "now" is read in the series' time zone.
- **A company is a member in a fiscal year** when its ``Membership`` for that year exists and
  is not cancelled, paid or not: the invoice is the company's commitment, and its people should
  not lose access while the accounting department pays.
- **A person is a member of the series** (``member_status``) in the current fiscal year when
  one of these holds for a member company of that year, unless an organiser removed them from
  that company:
  the *verified* address of their account is at one of the company's domains (exact match of
  the part after "@"; subdomains must be listed themselves), or they accepted an invitation from
  the company's contact, or an organiser added them.
- ``member_status`` is an app-wide hook (first answer wins) although the plugin is switched on
  per event: membership belongs to the series. It answers None (no opinion) for a series that
  has no member companies at all, so the portal's fallback (the ``member`` role) applies there.
- **Documents**: invoices (請求書) and receipts (領収書) are ``portal.documents`` documents about
  ``("membership_fee", membership.id)``, issued in the company's language (Japanese by
  default) and never changed. Their content (what the fee is for, the tier) is written in both
  languages, "日本語 / English", so that the English version, which is the same stored document
  rendered with English fixed labels (``render_pdf(document, language="en")``), says the same
  thing: the English version has the same number and the same content. A change is a corrected
  invoice (``correct_document``); a cancelled membership gets a credit note
  (``cancel_document``).

Each state change is one function here: it checks the move, changes rows, writes an audit
entry, queues emails and does not commit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session, aliased

from plugins.membership.models import (
    CompanyDomain,
    CompanyMember,
    MemberCompany,
    MemberHow,
    MemberInvitation,
    Membership,
    MembershipState,
    RenewalReminder,
)
from portal import audit, localtime
from portal.accounts.models import Person, User, email_domain, normalise_domain
from portal.accounts.search import person_matches
from portal.db import utcnow
from portal.documents.models import Document, DocumentKind
from portal.documents.services import cancel_document, correct_document, issue_document, latest_for
from portal.errors import UserError
from portal.events.models import Series
from portal.i18n import BilingualText, format_money
from portal.invitations import InvitationLinkError, InvitationLinks
from portal.links import external_url
from portal.mail.services import queue_email
from portal.pagination import Page, paginate
from portal.speakers.identity import person_by_email

SUBJECT = "membership_fee"
INVITATION_DAYS = 14
INVITATION_SALT = "portal.membership.invitation"
LINKS = InvitationLinks(INVITATION_SALT, timedelta(days=INVITATION_DAYS))
DOMAIN_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


ERROR_MESSAGES = {
    "exists": _l("This company already has a membership for that fiscal year."),
    "negative_amount": _l("The amount cannot be negative."),
    "not_unpaid": _l("Only an unpaid membership can be changed or cancelled."),
    "already_paid": _l("The payment of this membership has already been recorded."),
    "future_date": _l("The date of the transfer cannot be in the future."),
    "unknown_person": _l(
        "No one with this email address is known to the portal. Send an invitation instead."
    ),
    "already_member": _l("This person is already a member through this company."),
    "not_member": _l("This person is not a member through this company."),
    "expired": _l("This invitation link has expired. Please ask for a new one."),
    "invalid": _l("This invitation link is not valid. Please check that you copied all of it."),
    "used": _l("This invitation has already been accepted."),
}


class MembershipError(UserError):
    """A state change that is not allowed: ``code`` names the reason (``"domain_taken:a.jp"``,
    ``"exists"``, ...), ``message`` says it in the reader's language, ``field`` is the form
    field to show it on."""

    def __init__(self, code: str, field: str | None = None):
        self.code = code
        if code.startswith("domain_taken:"):
            message = _l(
                "Another company of this series already has these domains: %(domains)s.",
                domains=code.partition(":")[2],
            )
        else:
            message = ERROR_MESSAGES.get(code, _l("This action is not possible."))
        super().__init__(message, field)


# -- fiscal years ----------------------------------------------------------------------------


def fiscal_year(day: date | datetime) -> int:
    """The Japanese fiscal year (年度, April–March) of a date: 2026-03-31 → 2025."""
    return day.year if day.month >= 4 else day.year - 1


def local_today(series: Series, now: datetime | None = None) -> date:
    return localtime.today(series.timezone, now)


def current_fiscal_year(series: Series, now: datetime | None = None) -> int:
    return fiscal_year(local_today(series, now))


def start_of_day(day: date, series: Series) -> datetime:
    """Midnight of a local date in the series' zone, as an aware UTC datetime."""
    return localtime.start_of_day(day, series.timezone)


# -- domains ---------------------------------------------------------------------------------


def parse_domains(text: str) -> tuple[list[str], list[str]]:
    """Domains from text (one per line, or separated by commas or spaces): (good, bad)."""
    good: list[str] = []
    bad: list[str] = []
    for raw in re.split(r"[\s,、，]+", text or ""):
        if not raw.strip():
            continue
        domain = normalise_domain(raw)
        if DOMAIN_RE.match(domain):
            if domain not in good:
                good.append(domain)
        else:
            bad.append(raw.strip())
    return good, bad


# -- companies -------------------------------------------------------------------------------

COMPANY_FIELDS = ("name", "contact_name", "contact_email", "billing_address", "language")


def _set_domains(session: Session, company: MemberCompany, domains: list[str]) -> None:
    taken = session.scalars(
        sa.select(CompanyDomain.domain).where(
            CompanyDomain.series_id == company.series_id,
            CompanyDomain.domain.in_(domains or [""]),
            CompanyDomain.company_id != (company.id or -1),
        )
    ).all()
    if taken:
        raise MembershipError("domain_taken:" + ", ".join(sorted(taken)), field="domains")
    current = {row.domain: row for row in company.domain_rows}
    for domain, row in current.items():
        if domain not in domains:
            company.domain_rows.remove(row)
    for domain in domains:
        if domain not in current:
            company.domain_rows.append(CompanyDomain(series_id=company.series_id, domain=domain))


def _plain(value):
    return value.as_dict() if isinstance(value, BilingualText) else value


def create_company(session: Session, series: Series, actor, *, domains: list[str], **values):
    company = MemberCompany(series_id=series.id, **{k: values[k] for k in COMPANY_FIELDS})
    company.contact_email = (company.contact_email or "").strip().lower()
    session.add(company)
    _set_domains(session, company, domains)
    session.flush()
    audit.record(
        session, actor, "member_company", company.id, "created", domains=domains, series=series.id
    )
    return company


def update_company(session: Session, company: MemberCompany, actor, *, domains, **values):
    changes = {}
    values["contact_email"] = (values.get("contact_email") or "").strip().lower()
    for field in COMPANY_FIELDS:
        old, new = getattr(company, field), values[field]
        if _plain(old) != _plain(new):
            changes[field] = [_plain(old), _plain(new)]
            setattr(company, field, new)
    old_domains = company.domains
    _set_domains(session, company, domains)
    if sorted(old_domains) != sorted(domains):
        changes["domains"] = [old_domains, domains]
    session.flush()
    if changes:
        # Personal details (contact name and address) are not copied into the audit log.
        audit.record(
            session, actor, "member_company", company.id, "updated", fields=sorted(changes)
        )
    return changes


# -- memberships, invoices and receipts ------------------------------------------------------


def _both(ja: str, en: str) -> str:
    ja, en = (ja or "").strip(), (en or "").strip()
    if ja and en and ja != en:
        return f"{ja} / {en}"
    return ja or en


def fee_purpose(year: int) -> str:
    """What the fee is for, in both languages (the document's content never changes)."""
    return _both(
        f"{year}年度 法人会費",
        f"Corporate membership fee FY{year} (Apr {year}–Mar {year + 1})",
    )


def _fee_lines(membership: Membership) -> list[dict]:
    tier = membership.tier or BilingualText()
    label = _both(
        f"{membership.fiscal_year}年度 法人会費", f"Membership fee FY{membership.fiscal_year}"
    )
    if tier:
        label = _both(
            f"{membership.fiscal_year}年度 法人会費（{tier.ja or tier.en}）",
            f"Membership fee FY{membership.fiscal_year} ({tier.en or tier.ja})",
        )
    return [{"label": label, "amount_minor": membership.amount_minor}]


def _recipient(company: MemberCompany) -> dict:
    lang = company.language
    return {
        "recipient_company": company.name.get(lang, company.series.default_language),
        "recipient_name": company.contact_name,
        "recipient_address": company.billing_address,
    }


def issue_invoice(
    session: Session, membership: Membership, actor, due_date: date | None = None
) -> Document:
    company = membership.company
    series = company.series
    return issue_document(
        session,
        series=series,
        kind=DocumentKind.invoice,
        language=company.language,
        lines=_fee_lines(membership),
        currency=membership.currency,
        subject_type=SUBJECT,
        subject_id=membership.id,
        purpose=fee_purpose(membership.fiscal_year),
        due_date=start_of_day(due_date, series) if due_date else None,
        actor=actor,
        **_recipient(company),
    )


def record_membership(
    session: Session,
    company: MemberCompany,
    year: int,
    *,
    tier: BilingualText,
    amount_minor: int,
    actor,
    due_date: date | None = None,
) -> Membership:
    """The company's membership for a fiscal year, unpaid, with its invoice."""
    if amount_minor < 0:
        raise MembershipError("negative_amount", field="amount")
    membership = session.scalar(
        sa.select(Membership).where(
            Membership.company_id == company.id, Membership.fiscal_year == year
        )
    )
    if membership is not None and membership.state != MembershipState.cancelled:
        raise MembershipError("exists", field="fiscal_year")
    if membership is None:
        membership = Membership(company=company, company_id=company.id, fiscal_year=year)
        session.add(membership)
    membership.tier = tier
    membership.amount_minor = amount_minor
    membership.currency = company.series.currency
    membership.state = MembershipState.unpaid
    membership.paid_at = None
    membership.cancelled_at = None
    session.flush()
    invoice = issue_invoice(session, membership, actor, due_date)
    audit.record(
        session,
        actor,
        "membership",
        membership.id,
        "invoiced",
        company=company.id,
        fiscal_year=year,
        amount_minor=amount_minor,
        invoice=invoice.id,
    )
    return membership


def correct_invoice(
    session: Session,
    membership: Membership,
    *,
    tier: BilingualText,
    amount_minor: int,
    actor,
    due_date: date | None = None,
) -> Document:
    """Change an unpaid membership's tier or amount (or pick up the company's new name and
    address): a corrected invoice replaces the current one; the old one stays as issued."""
    if membership.state != MembershipState.unpaid:
        raise MembershipError("not_unpaid")
    if amount_minor < 0:
        raise MembershipError("negative_amount", field="amount")
    current = latest_for(session, SUBJECT, membership.id, DocumentKind.invoice)
    old = {"tier": _plain(membership.tier), "amount_minor": membership.amount_minor}
    membership.tier = tier
    membership.amount_minor = amount_minor
    series = membership.company.series
    fields = dict(
        lines=_fee_lines(membership),
        purpose=fee_purpose(membership.fiscal_year),
        due_date=start_of_day(due_date, series) if due_date else None,
        language=membership.company.language,
        **_recipient(membership.company),
    )
    if current is None:
        document = issue_invoice(session, membership, actor, due_date)
    else:
        document = correct_document(session, current, actor=actor, **fields)
    audit.record(
        session,
        actor,
        "membership",
        membership.id,
        "invoice_corrected",
        old=old,
        new={"tier": _plain(tier), "amount_minor": amount_minor},
        invoice=document.id,
    )
    return document


def record_payment(session: Session, membership: Membership, paid_on: date, actor) -> Document:
    """An organiser records the bank transfer: unpaid → paid, and the receipt is issued.

    Recording a payment twice is an error, not a second payment.
    """
    if membership.state == MembershipState.paid:
        raise MembershipError("already_paid")
    if membership.state != MembershipState.unpaid:
        raise MembershipError("not_unpaid")
    company = membership.company
    series = company.series
    if paid_on > local_today(series):
        raise MembershipError("future_date", field="paid_on")
    membership.state = MembershipState.paid
    membership.paid_at = start_of_day(paid_on, series)
    session.flush()
    receipt = issue_document(
        session,
        series=series,
        kind=DocumentKind.receipt,
        language=company.language,
        lines=_fee_lines(membership),
        currency=membership.currency,
        subject_type=SUBJECT,
        subject_id=membership.id,
        purpose=fee_purpose(membership.fiscal_year),
        paid_at=membership.paid_at,
        actor=actor,
        **_recipient(company),
    )
    audit.record(
        session,
        actor,
        "membership",
        membership.id,
        "paid",
        method="bank_transfer",
        paid_on=paid_on.isoformat(),
        receipt=receipt.id,
    )
    return receipt


# -- the year's invoices in one step ----------------------------------------------------------


@dataclass
class AnnualInvoice:
    """One line of the preview: a company that was a member last year and has no membership
    for ``year`` yet, with last year's tier and amount."""

    company: MemberCompany
    tier: BilingualText
    amount_minor: int
    currency: str

    @property
    def mailed(self) -> bool:
        return bool((self.company.contact_email or "").strip())


def annual_invoice_plan(session: Session, series: Series, year: int) -> list[AnnualInvoice]:
    """What ``issue_annual_invoices`` would issue for ``year``: every company with a
    (not cancelled) membership in the year before and none for ``year``, at last year's tier
    and amount; one query."""
    this_year = aliased(Membership)
    has_year = (
        sa.select(this_year.id)
        .where(this_year.company_id == MemberCompany.id, this_year.fiscal_year == year)
        .correlate(MemberCompany)
    )
    rows = session.execute(
        sa.select(MemberCompany, Membership)
        .join(Membership, Membership.company_id == MemberCompany.id)
        .where(
            MemberCompany.series_id == series.id,
            Membership.fiscal_year == year - 1,
            Membership.state != MembershipState.cancelled,
            ~has_year.exists(),
        )
        .order_by(MemberCompany.id)
    ).all()
    return [
        AnnualInvoice(
            company=company,
            tier=previous.tier or BilingualText(),
            amount_minor=previous.amount_minor,
            currency=previous.currency,
        )
        for company, previous in rows
    ]


def issue_annual_invoices(
    session: Session, series: Series, year: int, *, actor, due_date: date | None = None
) -> list[Document]:
    """The year's invoices to every company of the plan, each emailed as a PDF attachment to
    the company's contact (companies without a contact email get theirs issued, to be sent
    by hand). A company invoiced meanwhile is skipped, so pressing twice issues nothing more.
    """
    from portal.documents.pdf import pdf_attachment

    issued = []
    for row in annual_invoice_plan(session, series, year):
        membership = record_membership(
            session,
            row.company,
            year,
            tier=row.tier,
            amount_minor=row.amount_minor,
            actor=actor,
            due_date=due_date,
        )
        invoice = latest_for(session, SUBJECT, membership.id, DocumentKind.invoice)
        issued.append(invoice)
        company = row.company
        if row.mailed:
            lang = company.language
            queue_email(
                session,
                company.contact_email,
                "membership/invoice",
                lang,
                attachments=[pdf_attachment(invoice)],
                company=company,
                series=series,
                contact_name=company.contact_name,
                year=year,
                invoice=invoice,
                amount=format_money(invoice.total_minor, invoice.currency, lang),
            )
    audit.record(
        session,
        actor,
        "series",
        series.id,
        "annual_invoices_issued",
        fiscal_year=year,
        count=len(issued),
    )
    return issued


def cancel_membership(session: Session, membership: Membership, actor) -> Document | None:
    """Cancel an unpaid membership: its invoice is cancelled by a credit note."""
    if membership.state != MembershipState.unpaid:
        raise MembershipError("not_unpaid")
    membership.state = MembershipState.cancelled
    membership.cancelled_at = utcnow()
    invoice = latest_for(session, SUBJECT, membership.id, DocumentKind.invoice)
    credit = None
    if invoice is not None and not invoice.is_cancellation:
        credit = cancel_document(session, invoice, actor=actor)
    audit.record(
        session,
        actor,
        "membership",
        membership.id,
        "cancelled",
        credit_note=credit.id if credit else None,
    )
    return credit


# -- the year's companies (the organiser's year page and its CSV) -----------------------------


def _name_order():
    return sa.type_coerce(MemberCompany.name, sa.JSON)["ja"].as_string()


def companies_page(session: Session, series: Series, year: int, page: int, per_page: int) -> Page:
    """The series' companies by name, each with its membership of ``year`` (or None)."""
    stmt = (
        sa.select(MemberCompany, Membership)
        .outerjoin(
            Membership,
            sa.and_(Membership.company_id == MemberCompany.id, Membership.fiscal_year == year),
        )
        .where(MemberCompany.series_id == series.id)
        .order_by(_name_order(), MemberCompany.id)
    )
    total = session.scalar(sa.select(sa.func.count()).select_from(stmt.order_by(None).subquery()))
    # The page's companies are picked on narrow columns (id and name), then loaded with their
    # membership and relations: sorting every company's whole row cost more than the page.
    ids = list(
        session.scalars(
            sa.select(MemberCompany.id)
            .where(MemberCompany.series_id == series.id)
            .order_by(_name_order(), MemberCompany.id)
            .limit(per_page)
            .offset((page - 1) * per_page)
        )
    )
    found = {
        company.id: (company, membership)
        for company, membership in session.execute(stmt.where(MemberCompany.id.in_(ids or [-1])))
        .unique()
        .all()
    }
    rows = [found[i] for i in ids if i in found]
    return Page(items=rows, page=page, per_page=per_page, total=total or 0)


def memberships_of_year(session: Session, series: Series, year: int) -> list:
    """(company, membership) of every membership of ``year``, by company name."""
    return (
        session.execute(
            sa.select(MemberCompany, Membership)
            .join(Membership, Membership.company_id == MemberCompany.id)
            .where(MemberCompany.series_id == series.id, Membership.fiscal_year == year)
            .order_by(_name_order(), MemberCompany.id)
        )
        .unique()
        .all()
    )


def year_summary(session: Session, series: Series, year: int) -> dict:
    """{state: (memberships, amount in minor units)} of ``year``: one grouped query."""
    totals = session.execute(
        sa.select(
            Membership.state,
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(Membership.amount_minor), 0),
        )
        .join(MemberCompany, MemberCompany.id == Membership.company_id)
        .where(MemberCompany.series_id == series.id, Membership.fiscal_year == year)
        .group_by(Membership.state)
    ).all()
    return {state: (count, amount) for state, count, amount in totals}


def membership_documents(session: Session, membership_ids: list[int]) -> dict[int, list[Document]]:
    """Every document of the given memberships, oldest first, in one query."""
    out: dict[int, list[Document]] = {mid: [] for mid in membership_ids}
    if not membership_ids:
        return out
    rows = session.scalars(
        sa.select(Document)
        .where(Document.subject_type == SUBJECT, Document.subject_id.in_(membership_ids))
        .order_by(Document.id)
    )
    for document in rows:
        out[document.subject_id].append(document)
    return out


def unpaid_memberships(session: Session, series: Series, page: int, per_page: int) -> Page:
    """One page of the series' unpaid memberships, newest fiscal year first."""
    stmt = (
        sa.select(Membership)
        .join(MemberCompany, MemberCompany.id == Membership.company_id)
        .where(MemberCompany.series_id == series.id, Membership.state == MembershipState.unpaid)
        .order_by(Membership.fiscal_year.desc(), Membership.id)
    )
    return paginate(session, stmt, page, per_page)


def memberships_of_company(session: Session, company: MemberCompany) -> list[Membership]:
    """The company's memberships, newest fiscal year first."""
    return list(
        session.scalars(
            sa.select(Membership)
            .where(Membership.company_id == company.id)
            .order_by(Membership.fiscal_year.desc())
        ).unique()
    )


def removed_members(session: Session, company: MemberCompany, limit: int = 50) -> list:
    """The people an organiser removed from the company, latest first."""
    return list(
        session.scalars(
            sa.select(CompanyMember)
            .where(CompanyMember.company_id == company.id, CompanyMember.removed_at.is_not(None))
            .order_by(CompanyMember.removed_at.desc())
            .limit(limit)
        ).unique()
    )


def company_invitations(
    session: Session, company: MemberCompany, limit: int = 20
) -> list[MemberInvitation]:
    """The invitations sent for the company, newest first."""
    return list(
        session.scalars(
            sa.select(MemberInvitation)
            .where(MemberInvitation.company_id == company.id)
            .order_by(MemberInvitation.id.desc())
            .limit(limit)
        ).unique()
    )


def current_documents(documents: list[Document]) -> dict[str, Document | None]:
    """The newest invoice and receipt among a membership's documents."""
    found: dict[str, Document | None] = {"invoice": None, "receipt": None}
    for document in documents:
        found[document.kind.value] = document
    return found


# -- members ---------------------------------------------------------------------------------


def has_membership_data(session: Session, series: Series) -> bool:
    return (
        session.scalar(
            sa.select(MemberCompany.id).where(MemberCompany.series_id == series.id).limit(1)
        )
        is not None
    )


def active_companies(session: Session, series: Series, year: int) -> set[int]:
    """The ids of the series' companies that are members in ``year``."""
    return set(session.scalars(active_company_ids(series.id, year)))


def active_company_ids(series_id: int, year: int) -> sa.Select:
    """Companies of the series whose membership for the year exists and is not cancelled."""
    return (
        sa.select(MemberCompany.id)
        .join(Membership, Membership.company_id == MemberCompany.id)
        .where(
            MemberCompany.series_id == series_id,
            Membership.fiscal_year == year,
            Membership.state != MembershipState.cancelled,
        )
    )


def member_companies(
    session: Session, user, series: Series, year: int | None = None
) -> list[tuple[MemberCompany, MemberHow]]:
    """The member companies through which the user is a member in the year (current one by
    default), with how."""
    if user is None or not getattr(user, "is_authenticated", False):
        return []
    year = current_fiscal_year(series) if year is None else year
    active = active_company_ids(series.id, year)
    rows = list(
        session.scalars(
            sa.select(CompanyMember).where(
                CompanyMember.person_id == user.person_id, CompanyMember.company_id.in_(active)
            )
        )
    )
    found = [(row.company, row.how) for row in rows if row.is_active]
    decided = {row.company_id for row in rows}  # an active row, or a removal that overrides
    domain = email_domain(user.email) if user.email_verified_at is not None else ""
    if domain:
        stmt = (
            sa.select(MemberCompany)
            .join(CompanyDomain, CompanyDomain.company_id == MemberCompany.id)
            .where(
                CompanyDomain.series_id == series.id,
                CompanyDomain.domain == domain,
                MemberCompany.id.in_(active),
            )
        )
        for company in session.scalars(stmt).unique():
            if company.id not in decided:
                found.append((company, MemberHow.domain))
    return found


def member_status(session: Session, user, series: Series) -> bool | None:
    """True or False for a series with member companies; None (no opinion) otherwise."""
    if series is None or not has_membership_data(session, series):
        return None
    return bool(member_companies(session, user, series))


def _link(session: Session, company: MemberCompany, person: Person, how: MemberHow, actor):
    row = session.scalar(
        sa.select(CompanyMember).where(
            CompanyMember.company_id == company.id, CompanyMember.person_id == person.id
        )
    )
    if row is not None and row.is_active and row.how != MemberHow.domain:
        return row, False
    if row is None:
        row = CompanyMember(company_id=company.id, person_id=person.id, how=how)
        session.add(row)
    row.how = how
    row.removed_at = None
    row.added_at = utcnow()
    row.added_by_id = getattr(actor, "id", None)
    session.flush()
    return row, True


def add_member(session: Session, company: MemberCompany, email: str, actor) -> CompanyMember:
    """An organiser adds a person (found by their email address) to a company."""
    person = person_by_email(session, email)
    if person is None:
        raise MembershipError("unknown_person", field="email")
    row, added = _link(session, company, person, MemberHow.organiser, actor)
    if not added:
        raise MembershipError("already_member", field="email")
    audit.record(
        session,
        actor,
        "member_company",
        company.id,
        "member_added",
        person=person.id,
        how="organiser",
    )
    return row


def remove_member(session: Session, company: MemberCompany, person: Person, actor) -> CompanyMember:
    """An organiser removes a person from a company; this also overrides their email domain."""
    row = session.scalar(
        sa.select(CompanyMember).where(
            CompanyMember.company_id == company.id, CompanyMember.person_id == person.id
        )
    )
    if row is not None and not row.is_active:
        raise MembershipError("not_member")
    if row is None:
        row = CompanyMember(
            company_id=company.id, person_id=person.id, how=MemberHow.domain, added_at=utcnow()
        )
        session.add(row)
    row.removed_at = utcnow()
    session.flush()
    audit.record(session, actor, "member_company", company.id, "member_removed", person=person.id)
    return row


@dataclass(frozen=True)
class MemberRow:
    person: Person
    company: MemberCompany
    how: MemberHow
    since: datetime | None


def member_branches(
    series_id: int, year: int, company_id: int | list[int] | None = None
) -> tuple[sa.Select, sa.Select]:
    """The two halves of ``members_select``: (people linked to a member company, verified
    accounts at its domains that are not linked), each (person_id, company_id, how, since)."""
    active = active_company_ids(series_id, year)
    if isinstance(company_id, int):
        active = active.where(MemberCompany.id == company_id)
    elif company_id is not None:
        active = active.where(MemberCompany.id.in_(list(company_id)))
    linked = sa.select(
        CompanyMember.person_id.label("person_id"),
        CompanyMember.company_id.label("company_id"),
        # Plain VARCHAR in both halves: with the same column types PostgreSQL flattens the
        # UNION ALL and plans each half on its own.
        sa.cast(CompanyMember.how, sa.String).label("how"),
        CompanyMember.added_at.label("since"),
    ).where(CompanyMember.removed_at.is_(None), CompanyMember.company_id.in_(active))
    any_row = (
        sa.select(CompanyMember.id)
        .where(
            CompanyMember.person_id == User.person_id,
            CompanyMember.company_id == CompanyDomain.company_id,
        )
        .exists()
    )
    by_domain = (
        sa.select(
            User.person_id.label("person_id"),
            CompanyDomain.company_id.label("company_id"),
            sa.literal(MemberHow.domain.value, sa.String).label("how"),
            User.email_verified_at.label("since"),
        )
        .join(CompanyDomain, CompanyDomain.domain == User.email_domain)
        .where(
            User.email_verified_at.is_not(None),
            CompanyDomain.series_id == series_id,
            CompanyDomain.company_id.in_(active),
            ~any_row,
        )
    )
    return linked, by_domain


def members_select(
    series_id: int, year: int, company_id: int | list[int] | None = None
) -> sa.Select:
    """(person_id, company_id, how, since) of every member of the year, one statement:
    people linked to a member company, and verified accounts at its domains that are not
    linked (nor removed). ``company_id``: only that company (or those companies)."""
    return sa.union_all(*member_branches(series_id, year, company_id))


def colleagues_of(
    session: Session, series: Series, year: int, companies
) -> dict[int, list[MemberRow]]:
    """The members of ``year`` of each of ``companies`` (company id → rows by person), in the
    queries of one ``members_page`` whatever the number of companies."""
    out: dict[int, list[MemberRow]] = {c.id: [] for c in companies}
    if out:
        for row in members_page(session, series, year, 1, 0, company_id=list(out)).items:
            out[row.company.id].append(row)
    return out


def members_page(
    session: Session,
    series: Series,
    year: int,
    page: int = 1,
    per_page: int = 50,
    company_id: int | list[int] | None = None,
    query: str = "",
) -> Page:
    """Members of the year, a page at a time: four queries whatever the size (the two halves
    of the membership, the people, the companies; a fifth counts the matches of a search). Pages are "next page" pages: one row more than the page
    tells whether another follows; the whole membership is never counted (issue 19).

    ``query`` finds people by name in any script (kana, half-width kana, romaji) or email,
    with the folding of every people search (``portal.accounts.search``)."""

    def matching(select: sa.Select):
        sub = select.subquery()
        if query.strip():
            sub = (
                sa.select(sub)
                .join(Person, Person.id == sub.c.person_id)
                .where(person_matches(query))
                .subquery()
            )
        return sub

    more = False
    if per_page:
        # Each half read in order up to the end of the page, the two merged here: ordered
        # and limited on its own, each half walks the indexes (companies by id, their
        # domains' accounts) and stops; their UNION ALL would be sorted whole.
        end = page * per_page + 1
        rows = []
        for half in member_branches(series.id, year, company_id):
            sub = matching(half)
            rows += session.execute(
                sa.select(sub.c.person_id, sub.c.company_id, sub.c.how, sub.c.since)
                .order_by(sub.c.company_id, sub.c.person_id)
                .limit(end)
            ).all()
        rows.sort(key=lambda r: (r.company_id, r.person_id))
        rows = rows[(page - 1) * per_page : end]
        more, rows = len(rows) > per_page, rows[:per_page]
    else:
        sub = matching(members_select(series.id, year, company_id))
        rows = session.execute(
            sa.select(sub.c.person_id, sub.c.company_id, sub.c.how, sub.c.since).order_by(
                sub.c.company_id, sub.c.person_id
            )
        ).all()
    if query.strip():
        sub = matching(members_select(series.id, year, company_id))
        total = session.scalar(sa.select(sa.func.count()).select_from(sub)) or 0
    elif not per_page or not more:
        total = (page - 1) * per_page + len(rows)  # the last page: the count is exact
    else:
        total = None
    people = {
        p.id: p
        for p in session.scalars(
            sa.select(Person).where(Person.id.in_({r.person_id for r in rows} or {-1}))
        ).unique()
    }
    companies = {
        c.id: c
        for c in session.scalars(
            sa.select(MemberCompany).where(
                MemberCompany.id.in_({r.company_id for r in rows} or {-1})
            )
        ).unique()
    }
    items = [
        MemberRow(people[r.person_id], companies[r.company_id], MemberHow(r.how), r.since)
        for r in rows
    ]
    return Page(
        items=items, page=page, per_page=per_page or max(len(items), 1), total=total, more=more
    )


def members_export(session: Session, series: Series, year: int):
    """Every member of the year for the CSV, streamed: (company name, person's name fields,
    email, how), ordered as the members page, read a thousand rows at a time."""
    sub = members_select(series.id, year).subquery()
    stmt = (
        sa.select(
            MemberCompany.name,
            Person.family_name,
            Person.given_name,
            Person.romanized_name,
            Person.email,
            sub.c.how,
        )
        .join(MemberCompany, MemberCompany.id == sub.c.company_id)
        .join(Person, Person.id == sub.c.person_id)
        .order_by(sub.c.company_id, sub.c.person_id)
        .execution_options(yield_per=1000)
    )
    yield from session.execute(stmt)


# -- invitations -----------------------------------------------------------------------------


def invitation_token(invitation: MemberInvitation) -> str:
    return LINKS.token(invitation)


def contact_companies(session: Session, user, series: Series) -> list[MemberCompany]:
    """Companies of the series whose contact is this (verified) account."""
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_verified:
        return []
    return list(
        session.scalars(
            sa.select(MemberCompany)
            .where(
                MemberCompany.series_id == series.id,
                MemberCompany.contact_email == user.email.lower(),
            )
            .order_by(MemberCompany.id)
        ).unique()
    )


def invite_member(
    session: Session, company: MemberCompany, email: str, actor, language: str | None = None
) -> MemberInvitation:
    """The company's contact (or an organiser) invites a colleague: an emailed, signed link
    that works for INVITATION_DAYS days and once."""
    email = (email or "").strip().lower()
    language = language or company.language
    invitation = LINKS.new(
        MemberInvitation, actor, company_id=company.id, email=email, language=language
    )
    session.add(invitation)
    session.flush()
    link = external_url(
        "membership.accept_invitation", token=invitation_token(invitation), lang_code=language
    )
    queue_email(
        session,
        email,
        "membership/invitation",
        language,
        company=company,
        series=company.series,
        inviter=company.contact_name,
        link=link,
        days=INVITATION_DAYS,
    )
    audit.record(session, actor, "member_company", company.id, "invited", invitation=invitation.id)
    return invitation


def read_invitation(session: Session, token: str) -> MemberInvitation:
    """The invitation of a valid link; MembershipError("expired" / "invalid" / "used")."""
    try:
        return LINKS.load(session, MemberInvitation, token)
    except InvitationLinkError as exc:
        raise MembershipError(exc.reason) from exc


def accept_invitation(session: Session, invitation: MemberInvitation, user) -> CompanyMember:
    """The logged-in person accepts: they join the company (again, if they had been removed)."""
    if invitation.accepted_at is not None:
        raise MembershipError("used")
    if invitation.expires_at < utcnow():
        raise MembershipError("expired")
    row, _added = _link(session, invitation.company, user.person, MemberHow.invited, user)
    invitation.accepted_at = utcnow()
    invitation.accepted_person_id = user.person_id
    audit.record(
        session,
        user,
        "member_company",
        invitation.company_id,
        "invitation_accepted",
        invitation=invitation.id,
        person=user.person_id,
    )
    return row


# -- renewal reminders -----------------------------------------------------------------------


def queue_renewal_reminders(
    session: Session, today: date | None = None, series_slug: str | None = None
) -> list[MemberCompany]:
    """Remind the contacts of this year's member companies that have no membership for the
    next fiscal year yet: once per company and year (``RenewalReminder``)."""
    stmt = sa.select(Series).order_by(Series.id)
    if series_slug:
        stmt = stmt.where(Series.slug == series_slug)
    reminded: list[MemberCompany] = []
    for series in session.scalars(stmt):
        year = fiscal_year(today or local_today(series))
        next_year = year + 1
        has_next = sa.select(Membership.id).where(
            Membership.company_id == MemberCompany.id, Membership.fiscal_year == next_year
        )
        already = sa.select(RenewalReminder.id).where(
            RenewalReminder.company_id == MemberCompany.id,
            RenewalReminder.fiscal_year == next_year,
        )
        companies = session.scalars(
            sa.select(MemberCompany)
            .where(
                MemberCompany.id.in_(active_company_ids(series.id, year)),
                ~has_next.exists(),
                ~already.exists(),
                MemberCompany.contact_email != "",
            )
            .order_by(MemberCompany.id)
        ).unique()
        for company in companies:
            queue_email(
                session,
                company.contact_email,
                "membership/renewal_reminder",
                company.language,
                company=company,
                series=series,
                contact_name=company.contact_name,
                year=next_year,
            )
            session.add(
                RenewalReminder(
                    company_id=company.id, fiscal_year=next_year, email=company.contact_email
                )
            )
            audit.record(
                session,
                None,
                "member_company",
                company.id,
                "renewal_reminder",
                fiscal_year=next_year,
            )
            reminded.append(company)
    session.flush()
    return reminded


# -- personal data ---------------------------------------------------------------------------


def personal_data(session: Session, person: Person) -> dict:
    rows = session.scalars(
        sa.select(CompanyMember)
        .where(CompanyMember.person_id == person.id)
        .order_by(CompanyMember.id)
    ).unique()
    invitations = session.scalars(
        sa.select(MemberInvitation)
        .where(MemberInvitation.accepted_person_id == person.id)
        .order_by(MemberInvitation.id)
    ).unique()
    emails = {e for e in (person.email, person.user.email if person.user else None) if e}
    contact_of = (
        session.scalars(
            sa.select(MemberCompany)
            .where(MemberCompany.contact_email.in_({e.lower() for e in emails}))
            .order_by(MemberCompany.id)
        ).unique()
        if emails
        else []
    )
    return {
        "company_members": [
            {
                "company": row.company.name.as_dict(),
                "series": row.company.series.slug,
                "how": row.how.value,
                "added_at": row.added_at,
                "removed_at": row.removed_at,
            }
            for row in rows
        ],
        "invitations_accepted": [
            {
                "company": inv.company.name.as_dict(),
                "email": inv.email,
                "accepted_at": inv.accepted_at,
            }
            for inv in invitations
        ],
        "contact_of": [
            {
                "company": c.name.as_dict(),
                "contact_name": c.contact_name,
                "contact_email": c.contact_email,
            }
            for c in contact_of
        ],
    }


def forget_person(session: Session, person: Person) -> None:
    """Delete the person's company links and invitations; blank their contact details."""
    emails = {e.lower() for e in (person.email, person.user.email if person.user else None) if e}
    session.execute(sa.delete(CompanyMember).where(CompanyMember.person_id == person.id))
    session.execute(
        sa.update(MemberInvitation)
        .where(MemberInvitation.accepted_person_id == person.id)
        .values(accepted_person_id=None, email="")
    )
    if emails:
        session.execute(sa.delete(MemberInvitation).where(MemberInvitation.email.in_(emails)))
        session.execute(
            sa.update(MemberCompany)
            .where(MemberCompany.contact_email.in_(emails))
            .values(contact_name="", contact_email="")
        )
        session.execute(
            sa.update(RenewalReminder).where(RenewalReminder.email.in_(emails)).values(email="")
        )
    session.flush()
