"""The list: joining (double opt-in), confirming, leaving, language, undeliverable addresses.

Every change of a subscription goes through ``_move``, which writes a ``SubscriptionEvent``
with the change's effect on the list's size, so the list's history (and 登録人数 on any day,
``portal.announcements.counts``) is complete. Functions do not commit; the caller does.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from portal import audit
from portal.accounts.models import Person
from portal.announcements import tokens
from portal.announcements.models import (
    ON_LIST,
    Subscription,
    SubscriptionEvent,
    SubscriptionStatus,
)
from portal.db import utcnow
from portal.errors import UserError
from portal.events.models import Series
from portal.i18n import LANGUAGES
from portal.links import external_url
from portal.mail.services import queue_email
from portal.speakers.identity import person_by_email

S = SubscriptionStatus


class ListError(UserError):
    default_message = _l("This change of the list is not possible.")


def _delta(old: SubscriptionStatus | None, new: SubscriptionStatus) -> int:
    return int(new in ON_LIST) - int(old in ON_LIST if old is not None else False)


def move(
    session: Session, sub: Subscription, new: SubscriptionStatus, kind: str, *, at=None, note=""
):
    """Change the status and record it in the history (``at``: when it happened)."""
    old = sub.status
    sub.status = new
    if sub.id is None:
        session.add(sub)
        session.flush()
    session.add(
        SubscriptionEvent(
            subscription_id=sub.id,
            series_id=sub.series_id,
            kind=kind,
            status=new.value,
            delta=_delta(old, new),
            at=at or utcnow(),
            note=note[:200],
        )
    )


def subscription_of(session: Session, series_id: int, person_id: int) -> Subscription | None:
    return session.scalar(
        sa.select(Subscription).where(
            Subscription.series_id == series_id, Subscription.person_id == person_id
        )
    )


def _language(value: str | None, person: Person | None = None) -> str:
    if value in LANGUAGES:
        return value
    if person is not None and person.preferred_language in LANGUAGES:
        return person.preferred_language
    return "ja"


def _person_for(session: Session, email: str, name: str = "", language: str = "ja") -> Person:
    email = (email or "").strip()
    person = person_by_email(session, email)
    if person is None:
        family, _, given = name.strip().partition(" ")
        person = Person(
            email=email.lower(),
            family_name=family,
            given_name=given,
            preferred_language=_language(language),
        )
        session.add(person)
        session.flush()
    return person


def request_join(
    session: Session,
    series: Series,
    *,
    email: str | None = None,
    person: Person | None = None,
    name: str = "",
    language: str | None = None,
    source: str = "page",
    confirmed: bool = False,
) -> Subscription:
    """Ask to join the series' list. Unless ``confirmed`` (the logged-in owner of a verified
    address ticked the box), the person gets an email with a link to confirm (double opt-in)
    and is not on the list until they open it. Asking again resends the link; a person
    already on the list only has their language updated."""
    if person is None:
        person = _person_for(session, email or "", name, language or "ja")
    if not person.email:
        raise ListError(_l("Please enter your email address."), field="email")
    sub = subscription_of(session, series.id, person.id)
    if sub is None:
        sub = Subscription(series_id=series.id, person_id=person.id, status=None, source=source)
    if sub.status == S.confirmed:
        if confirmed:  # the owner asking: their choice of language stands
            sub.language = _language(language, person)
        return sub  # anyone else cannot change a confirmed entry
    sub.language = _language(language, person)
    if confirmed:
        move(session, sub, S.confirmed, "joined", note=source)
        audit.record(session, None, "list_subscription", sub.id, "joined", source=source)
        return sub
    if sub.status in (None, S.left, S.undeliverable):
        move(session, sub, S.pending, "requested", note=source)
    send_confirmation(session, sub, person)
    return sub


def request_joins(
    session: Session, series_ids, *, person: Person, language: str | None, source: str
) -> None:
    """Ask to join each of the lists ``series_ids`` (the boxes ticked at sign-up): each list
    asks for its own confirmation by email."""
    for series in session.scalars(sa.select(Series).where(Series.id.in_(series_ids))):
        request_join(session, series, person=person, language=language, source=source)


def send_confirmation(session: Session, sub: Subscription, person: Person) -> None:
    token = tokens.confirm_token(sub.id, person.email or "")
    series = sub.series or session.get(Series, sub.series_id)
    queue_email(
        session,
        person.email,
        "announcements/confirm",
        sub.language,
        person=person,
        series=series,
        link=external_url("announcements.confirm", lang_code=sub.language, token=token),
        days=tokens.CONFIRM_MAX_AGE.days,
    )


def confirm(session: Session, token: str) -> Subscription:
    """Open the emailed link: the subscription is confirmed (on the list). Opening it twice
    changes nothing; a link for an address the person no longer has is refused."""
    sub_id, email = tokens.read_confirm(token)
    sub = session.get(Subscription, sub_id)
    if sub is None or (sub.person.email or "").lower() != email:
        raise tokens.LinkError()
    if sub.status != S.confirmed:
        move(session, sub, S.confirmed, "joined", note="confirmed")
        audit.record(session, None, "list_subscription", sub.id, "confirmed")
    return sub


def leave(session: Session, series_id: int, person_id: int, source: str = "link") -> Subscription:
    """Leave the list (idempotent: leaving twice changes nothing after the first time). A
    person who was never on it (a speaker who received an announcement) gets a row "left", so
    they are not sent announcements again."""
    sub = subscription_of(session, series_id, person_id)
    if sub is None:
        person = session.get(Person, person_id)
        if person is None or session.get(Series, series_id) is None:
            raise tokens.LinkError()
        sub = Subscription(
            series_id=series_id,
            person_id=person_id,
            status=None,
            language=_language(None, person),
            source=source,
        )
    if sub.status == S.left:
        return sub
    move(session, sub, S.left, "left", note=source)
    audit.record(session, None, "list_subscription", sub.id, "left", source=source)
    return sub


def set_language(session: Session, series_id: int, person_id: int, language: str) -> Subscription:
    if language not in LANGUAGES:
        raise ListError(_l("Please choose a language."), field="language")
    sub = subscription_of(session, series_id, person_id)
    if sub is None:
        raise tokens.LinkError()
    sub.language = language
    return sub


def mark_undeliverable(session: Session, email: str, reason: str = "bounce") -> int:
    """The mail server reported that this address bounces (or its owner complained): every
    subscription of people with it becomes undeliverable. Returns how many changed."""
    address = (email or "").strip().lower()
    if not address:
        return 0
    subs = list(
        session.scalars(
            sa.select(Subscription)
            .join(Person, Person.id == Subscription.person_id)
            .where(sa.func.lower(Person.email) == address, Subscription.status != S.undeliverable)
        )
    )
    for sub in subs:
        move(session, sub, S.undeliverable, "undeliverable", note=reason)
        audit.record(session, None, "list_subscription", sub.id, "undeliverable", reason=reason)
    return len(subs)


def join_on_list(
    session: Session,
    series: Series,
    person: Person,
    language: str | None,
    source: str,
    verified: bool,
) -> Subscription:
    """The separate, unticked box at sign-up or registration was ticked: join (confirmed at
    once when the address is verified and its owner is the one asking, else by email)."""
    return request_join(
        session, series, person=person, language=language, source=source, confirmed=verified
    )
