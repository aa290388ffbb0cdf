"""Issuing documents: one function to issue, one to correct or cancel; none to edit.

Issuer details come from settings (PORTAL_ISSUER_*), copied into the document at issue time so
that a later change of address does not alter documents already issued.
"""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import Session

from portal import audit
from portal.db import utcnow
from portal.documents.models import Document, DocumentKind
from portal.events.models import Series

REGISTRATION_NUMBER = re.compile(r"^T\d{13}$")


class DocumentError(ValueError):
    pass


def issuer_settings() -> dict:
    cfg = current_app.config
    number = cfg.get("ISSUER_REGISTRATION_NUMBER") or ""
    if number and not REGISTRATION_NUMBER.match(number):
        raise DocumentError("PORTAL_ISSUER_REGISTRATION_NUMBER must be T followed by 13 digits")
    return {
        "name": cfg.get("ISSUER_NAME") or "",
        "name_en": cfg.get("ISSUER_NAME_EN") or cfg.get("ISSUER_NAME") or "",
        "address": cfg.get("ISSUER_ADDRESS") or "",
        "address_en": cfg.get("ISSUER_ADDRESS_EN") or cfg.get("ISSUER_ADDRESS") or "",
        "registration_number": number,
        "bank_account": cfg.get("ISSUER_BANK_ACCOUNT") or "",
    }


def tax_rate_for(currency: str) -> int:
    """Percent of consumption tax included in amounts of this currency (PORTAL_TAX_RATES)."""
    rates = current_app.config.get("TAX_RATES") or "JPY:10"
    for part in rates.split(","):
        code, _, rate = part.partition(":")
        if code.strip().upper() == currency.upper() and rate.strip().isdigit():
            return int(rate)
    return 0


def included_tax(total_minor: int, rate: int) -> int:
    """The tax contained in a tax-inclusive total, rounded down once per document."""
    return total_minor * rate // (100 + rate) if rate else 0


NUMBERING_ZONE = ZoneInfo("Asia/Tokyo")  # the issuer's calendar: numbers restart each year


def tax_summary(lines: list[dict], default_rate: int) -> list[tuple[int, int, int]]:
    """(rate, tax-inclusive amount, tax included) per tax rate, as a qualified invoice shows
    them: the tax is computed once per rate (rounded down), not per line."""
    totals: dict[int, int] = {}
    for line in lines:
        rate = int(line.get("tax_rate", default_rate))
        totals[rate] = totals.get(rate, 0) + int(line["amount_minor"])
    out = []
    for rate in sorted(totals, reverse=True):
        amount = totals[rate]
        tax = included_tax(abs(amount), rate) * (1 if amount >= 0 else -1)
        out.append((rate, amount, tax))
    return out


def _next_number(session: Session, kind: DocumentKind, year: int) -> int:
    """The next number of the kind in the year: one issuer, one sequence for every series.

    Serialised by a transaction-scoped advisory lock on PostgreSQL; SQLite's writing
    transactions already hold the database's write lock (BEGIN IMMEDIATE). The unique
    constraint (kind, year, number) is the last line of defence."""
    if session.get_bind().dialect.name == "postgresql":
        key = 1_100_000 + year * 10 + (1 if kind == DocumentKind.receipt else 2)
        session.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
    last = session.scalar(
        sa.select(sa.func.max(Document.number)).where(Document.kind == kind, Document.year == year)
    )
    return (last or 0) + 1


def issue_document(
    session: Session,
    *,
    series: Series,
    kind: DocumentKind,
    language: str,
    lines: list[dict],
    currency: str,
    subject_type: str,
    subject_id: int,
    purpose: str = "",
    recipient_name: str = "",
    recipient_company: str = "",
    recipient_address: str = "",
    owner_person_id: int | None = None,
    due_date: datetime | None = None,
    paid_at: datetime | None = None,
    replaces: Document | None = None,
    is_cancellation: bool = False,
    actor=None,
) -> Document:
    """Issue a new, numbered document. Amounts are tax-inclusive minor units."""
    if not lines:
        raise DocumentError("a document needs at least one line")
    total = sum(int(line["amount_minor"]) for line in lines)
    rate = tax_rate_for(currency)
    # A line may name its own tax rate (``tax_rate``, percent); otherwise the currency's.
    stored = []
    for line in lines:
        row = {"label": str(line["label"]), "amount_minor": int(line["amount_minor"])}
        if line.get("tax_rate") is not None:
            row["tax_rate"] = int(line["tax_rate"])
        stored.append(row)
    issued_at = utcnow()
    year = issued_at.astimezone(NUMBERING_ZONE).year
    document = Document(
        series_id=series.id,
        kind=kind,
        year=year,
        number=_next_number(session, kind, year),
        issued_at=issued_at,
        language=language,
        recipient_name=recipient_name,
        recipient_company=recipient_company,
        recipient_address=recipient_address,
        owner_person_id=owner_person_id,
        purpose=purpose,
        lines=stored,
        currency=currency,
        total_minor=total,
        tax_rate=rate,
        tax_minor=sum(row[2] for row in tax_summary(stored, rate)),
        due_date=due_date,
        paid_at=paid_at,
        issuer=issuer_settings(),
        subject_type=subject_type,
        subject_id=subject_id,
        replaces_id=replaces.id if replaces else None,
        is_cancellation=is_cancellation,
    )
    session.add(document)
    session.flush()
    audit.record(
        session,
        actor,
        "document",
        document.id,
        "issued",
        kind=kind.value,
        number=document.number,
        replaces=document.replaces_id,
    )
    return document


def correct_document(session: Session, original: Document, actor=None, **changes) -> Document:
    """Issue a corrected document that names the one it replaces; the original stays as it is."""
    fields = {
        "series": original.series,
        "kind": original.kind,
        "language": original.language,
        "lines": original.lines,
        "currency": original.currency,
        "subject_type": original.subject_type,
        "subject_id": original.subject_id,
        "purpose": original.purpose,
        "recipient_name": original.recipient_name,
        "recipient_company": original.recipient_company,
        "recipient_address": original.recipient_address,
        "owner_person_id": original.owner_person_id,
        "due_date": original.due_date,
        "paid_at": original.paid_at,
    }
    fields.update(changes)
    return issue_document(session, replaces=original, actor=actor, **fields)


def cancel_document(session: Session, original: Document, actor=None) -> Document:
    """A cancellation is a new document with the negated lines that names the original."""
    lines = [
        {"label": line["label"], "amount_minor": -int(line["amount_minor"])}
        for line in original.lines
    ]
    return correct_document(session, original, actor=actor, lines=lines, is_cancellation=True)


def documents_for(session: Session, subject_type: str, subject_id: int) -> list[Document]:
    return list(
        session.scalars(
            sa.select(Document)
            .where(Document.subject_type == subject_type, Document.subject_id == subject_id)
            .order_by(Document.issued_at, Document.id)
        )
    )


def latest_for(
    session: Session, subject_type: str, subject_id: int, kind: DocumentKind
) -> Document | None:
    """The current document: the newest one of that kind about the subject."""
    return session.scalar(
        sa.select(Document)
        .where(
            Document.subject_type == subject_type,
            Document.subject_id == subject_id,
            Document.kind == kind,
        )
        .order_by(Document.id.desc())
        .limit(1)
    )


def pdf_attachment(document: Document) -> tuple[str, str, bytes]:
    """The document as an email attachment: (file name, "application/pdf", PDF bytes)."""
    from portal.documents.pdf import pdf_attachment as attachment

    return attachment(document)
