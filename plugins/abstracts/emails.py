"""The emails of the call: the office's own wording per kind and language over the defaults,
placeholders filled in, sent in the recipient's language.
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from flask import url_for
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from plugins.abstracts.models import (
    Abstract,
    AbstractEmailText,
    AbstractState,
)
from plugins.abstracts.settings import call_settings
from plugins.abstracts.states import STATE_LABELS, AbstractError
from portal import audit
from portal.accounts.models import Person
from portal.events.models import Event
from portal.i18n import (
    LANGUAGES,
    BilingualText,
    format_datetime,
    format_person_name,
)
from portal.mail.services import queue_email

EMAIL_KINDS = (
    "submitted",
    "withdrawn",
    "reopened",
    "accepted_oral",
    "accepted_poster",
    "rejected",
    "revision_requested",
    "reviewer_assigned",
)


EMAIL_KIND_LABELS = {
    "submitted": _l("Abstract received"),
    "withdrawn": _l("Abstract withdrawn"),
    "reopened": _l("Abstract reopened for changes"),
    "accepted_oral": _l("Accepted (oral presentation)"),
    "accepted_poster": _l("Accepted (poster presentation)"),
    "rejected": _l("Not accepted"),
    "revision_requested": _l("Revision requested"),
    "reviewer_assigned": _l("Reviewer assigned (to the reviewer)"),
}


DECISION_KINDS = ("accepted_oral", "accepted_poster", "rejected", "revision_requested")


PLACEHOLDERS = ("name", "title", "event", "decision", "note", "link", "deadline")


DEFAULT_SUBJECTS = {
    "submitted": _l("Abstract received: {title}"),
    "withdrawn": _l("Abstract withdrawn: {title}"),
    "reopened": _l("You may change your abstract again: {title}"),
    "accepted_oral": _l("Your abstract has been accepted: {title}"),
    "accepted_poster": _l("Your abstract has been accepted: {title}"),
    "rejected": _l("Decision on your abstract: {title}"),
    "revision_requested": _l("Please revise your abstract: {title}"),
    "reviewer_assigned": _l("An abstract to review: {title}"),
}


DEFAULT_BODIES = {
    "submitted": _l(
        "Dear {name},\n\nThank you for submitting your abstract “{title}” to {event}. "
        "You can change it until the deadline ({deadline}).\n\nYour abstract: {link}"
    ),
    "withdrawn": _l(
        "Dear {name},\n\nYour abstract “{title}” for {event} has been withdrawn.\n\n{link}"
    ),
    "reopened": _l(
        "Dear {name},\n\nThe organisers of {event} have reopened your abstract “{title}”. "
        "You may change it and submit it again.\n\n{link}"
    ),
    "accepted_oral": _l(
        "Dear {name},\n\nWe are pleased to tell you that your abstract “{title}” has been "
        "accepted for {event}: {decision}.\n\n{note}\n\n{link}"
    ),
    "accepted_poster": _l(
        "Dear {name},\n\nWe are pleased to tell you that your abstract “{title}” has been "
        "accepted for {event}: {decision}.\n\n{note}\n\n{link}"
    ),
    "rejected": _l(
        "Dear {name},\n\nThank you for your abstract “{title}”. We regret that we could not "
        "accept it for {event}.\n\n{note}\n\n{link}"
    ),
    "revision_requested": _l(
        "Dear {name},\n\nThe organisers of {event} ask you to revise your abstract “{title}”."
        "\n\n{note}\n\nPlease change it and submit it again: {link}"
    ),
    "reviewer_assigned": _l(
        "Dear {name},\n\nYou have been asked to review an abstract for {event}: “{title}”."
        "\n\n{link}"
    ),
}


_PLACEHOLDER = re.compile(r"\{([A-Za-z_]+)\}")


def fill(template: str, values: dict) -> str:
    """Replace {known} placeholders; unknown ones and stray braces stay as written."""
    return _PLACEHOLDER.sub(
        lambda m: str(values[m.group(1)]) if m.group(1) in values else m.group(0), template or ""
    )


def email_texts(session: Session, event: Event) -> dict[str, AbstractEmailText]:
    rows = session.scalars(
        sa.select(AbstractEmailText).where(AbstractEmailText.event_id == event.id)
    )
    return {row.kind: row for row in rows}


def email_wording(session: Session, event: Event, kind: str, lang: str) -> tuple[str, str]:
    """The subject and body template for the language: the organiser's, else the built-in."""
    row = email_texts(session, event).get(kind)
    with force_locale(lang):
        subject = str(DEFAULT_SUBJECTS[kind])
        body = str(DEFAULT_BODIES[kind])
    if row is not None:
        subject = getattr(row.subject, lang) or subject
        body = getattr(row.body, lang) or body
    return subject, body


def save_email_text(
    session: Session, event: Event, kind: str, subject: BilingualText, body: BilingualText, actor
) -> AbstractEmailText:
    """An organiser's wording of one email (empty languages fall back to the built-in text)."""
    if kind not in EMAIL_KINDS:
        raise AbstractError(_l("Unknown email."))
    row = email_texts(session, event).get(kind)
    if row is None:
        row = AbstractEmailText(event_id=event.id, kind=kind)
        session.add(row)
    row.subject = subject
    row.body = body
    audit.record(session, actor, "event", event.id, "abstracts.email_text", kind=kind)
    return row


def _recipient(person: Person | None) -> tuple[str | None, str]:
    if person is None or person.anonymised_at is not None:
        return None, "ja"
    address = person.user.email if person.user is not None else person.email
    lang = person.preferred_language if person.preferred_language in LANGUAGES else "ja"
    return address, lang


def _notify(
    session: Session,
    abstract: Abstract,
    kind: str,
    person: Person | None,
    link: str,
    note: str = "",
) -> None:
    address, lang = _recipient(person)
    if not address:
        return
    event = abstract.event
    settings = call_settings(event)
    subject_t, body_t = email_wording(session, event, kind, lang)
    with force_locale(lang):
        decision = str(STATE_LABELS[AbstractState(kind)]) if kind in DECISION_KINDS else ""
        values = {
            "name": format_person_name(person, lang),
            "title": abstract.title.get(lang, abstract.language),
            "event": event.title.get(lang, event.series.default_language),
            "decision": decision,
            "note": note or "",
            "link": link,
            "deadline": format_datetime(settings.closes_at, event.timezone, lang)
            if settings.closes_at
            else _("none"),
        }
    subject = " ".join(fill(subject_t, values).split())
    body = re.sub(r"\n{3,}", "\n\n", fill(body_t, values).replace("\r\n", "\n")).strip()
    queue_email(session, address, "abstracts/notice", lang, subject=subject, body=body)


def _link(endpoint: str, **values) -> str:
    try:
        return url_for(endpoint, _external=True, **values)
    except RuntimeError:  # outside a request (CLI): no link
        return ""


def _submitter_link(abstract: Abstract, lang: str) -> str:
    return _link(
        "abstracts.view", lang_code=lang, slug=abstract.event.slug, abstract_id=abstract.id
    )


def _notify_submitter(session: Session, abstract: Abstract, kind: str, note: str = "") -> None:
    _address, lang = _recipient(abstract.submitter)
    _notify(session, abstract, kind, abstract.submitter, _submitter_link(abstract, lang), note)
