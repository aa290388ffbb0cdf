"""Removing a deleted person's email address (and other details) from stored copies: webhook
payloads, outbox messages. Receipts, invoices and the payment ledger are kept as they are (the
law requires them); only free-form copies are scrubbed.
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from sqlalchemy.orm import Session

REMOVED = "[deleted]"


def _pattern(needles) -> re.Pattern | None:
    words = sorted({n for n in needles if n and len(n) >= 3}, key=len, reverse=True)
    if not words:
        return None
    return re.compile("|".join(re.escape(w) for w in words), re.IGNORECASE)


def scrub_text(text: str | None, needles) -> str | None:
    """``text`` with every occurrence of a needle (case-insensitive) replaced."""
    pattern = _pattern(needles)
    if not text or pattern is None:
        return text
    return pattern.sub(REMOVED, text)


def scrub_json(value, needles, drop_keys=()):
    """A copy of a JSON value: needles replaced in every string, ``drop_keys`` removed."""
    pattern = _pattern(needles)

    def walk(node):
        if isinstance(node, dict):
            return {k: walk(v) for k, v in node.items() if k not in drop_keys}
        if isinstance(node, list):
            return [walk(v) for v in node]
        if isinstance(node, str) and pattern is not None:
            return pattern.sub(REMOVED, node)
        return node

    return walk(value)


def contains(column, needle: str):
    """A condition: the (text or JSON) column contains ``needle``, ignoring case."""
    escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return sa.cast(column, sa.Text).ilike(f"%{escaped}%", escape="\\")


def forget_in_outbox(session: Session, emails) -> None:
    """Delete the emails to the person's addresses (also earlier ones) and scrub the address
    from every other outbox message that mentions it.

    Earlier addresses are found through the messages themselves: an email to an address that
    mentions a known address (the "your address was changed" notice) was sent to the person.
    """
    from portal.mail.models import OutboxEmail

    known = {e.strip().lower() for e in emails if e and e.strip()}
    if not known:
        return
    searched: set[str] = set()
    while known - searched:
        for email in sorted(known - searched):
            searched.add(email)
            notices = session.scalars(
                sa.select(OutboxEmail.to_address).where(
                    OutboxEmail.template == "accounts/email_changed",
                    contains(OutboxEmail.body_text, email),
                )
            )
            known.update(a.strip().lower() for a in notices if a)
    session.execute(
        sa.delete(OutboxEmail)
        .where(sa.func.lower(OutboxEmail.to_address).in_(sorted(known)))
        .execution_options(synchronize_session=False)
    )
    mentions = session.scalars(
        sa.select(OutboxEmail).where(
            sa.or_(
                *(
                    contains(column, email)
                    for email in known
                    for column in (
                        OutboxEmail.subject,
                        OutboxEmail.body_text,
                        OutboxEmail.body_html,
                        OutboxEmail.reply_to,
                        OutboxEmail.headers,
                    )
                )
            )
        )
    )
    for message in mentions:
        message.subject = scrub_text(message.subject, known)
        message.body_text = scrub_text(message.body_text, known)
        message.body_html = scrub_text(message.body_html, known)
        message.reply_to = "" if (message.reply_to or "").lower() in known else message.reply_to
        message.headers = scrub_json(message.headers or {}, known)
    session.flush()
