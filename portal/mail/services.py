"""Emails: written in the recipient's language into the outbox, delivered by `portal outbox send`.

``queue_email`` adds a row to the caller's session, so the email is committed (or rolled back)
together with the change that caused it. ``send_due`` delivers over SMTP with retries and
exponential back-off; while the mail server is down nothing is lost.
"""

from __future__ import annotations

import smtplib
from collections.abc import Iterable
from datetime import timedelta
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import current_app, render_template
from flask_babel import force_locale
from sqlalchemy.orm import Session

from portal.db import utcnow
from portal.i18n import LANGUAGES
from portal.mail.models import OutboxAttachment, OutboxEmail

MAX_ATTEMPTS = 8
BASE_DELAY = timedelta(minutes=1)


def queue_email(
    session: Session,
    to: str,
    template: str,
    language: str | None = None,
    *,
    attachments: Iterable[tuple[str, str, bytes]] = (),
    headers: dict[str, str] | None = None,
    reply_to: str = "",
    **context,
) -> OutboxEmail:
    """Render ``mail/<template>.txt`` and ``.html`` (first line of the text is the subject).

    ``attachments`` are ``(filename, content_type, content)``; ``headers`` are extra headers
    (``List-Unsubscribe`` …); ``reply_to`` sets Reply-To. The Message-ID is fixed here, so a
    retried mail is the same message to the receiving server.
    """
    language = language if language in LANGUAGES else "ja"
    with force_locale(language):
        context.setdefault("lang", language)
        text = render_template(f"mail/{template}.txt", **context)
        html = render_template(f"mail/{template}.html", **context)
    subject, _, body = text.partition("\n")
    email = OutboxEmail(
        to_address=to,
        language=language,
        subject=subject.strip(),
        body_text=body.lstrip("\n"),
        body_html=html,
        template=template,
        message_id=make_msgid(domain=_msgid_domain()),
        reply_to=reply_to,
        headers=dict(headers or {}),
        attachments=[
            OutboxAttachment(filename=name, content_type=ctype, content=content)
            for name, ctype, content in attachments
        ],
    )
    session.add(email)
    return email


def _message(email: OutboxEmail) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = email.subject
    msg["From"] = formataddr(("Rare Metal Portal", current_app.config["MAIL_SENDER"]))
    msg["To"] = email.to_address
    msg["Message-ID"] = email.message_id or make_msgid(domain=_msgid_domain())
    if email.reply_to:
        msg["Reply-To"] = email.reply_to
    for name, value in (email.headers or {}).items():
        msg[name] = value
    msg.set_content(email.body_text)
    msg.add_alternative(email.body_html, subtype="html")
    for attachment in email.attachments:
        maintype, _, subtype = attachment.content_type.partition("/")
        msg.add_attachment(
            attachment.content, maintype=maintype, subtype=subtype, filename=attachment.filename
        )
    # After add_alternative, which moves Content-* headers into the first part.
    msg["Content-Language"] = email.language
    return msg


def _msgid_domain() -> str:
    host = urlsplit(current_app.config.get("BASE_URL") or "").hostname
    return host or "portal.local"


def _connect() -> smtplib.SMTP:
    cfg = current_app.config
    smtp = smtplib.SMTP(cfg["MAIL_SERVER"], int(cfg["MAIL_PORT"]), timeout=15)
    if cfg.get("MAIL_USE_TLS"):
        smtp.starttls()
    if cfg.get("MAIL_USERNAME"):
        smtp.login(cfg["MAIL_USERNAME"], cfg.get("MAIL_PASSWORD") or "")
    return smtp


def send_due(session: Session, limit: int = 100) -> tuple[int, int]:
    """Send what is due; returns (sent, failed this round). Failed ones are retried later."""
    now = utcnow()
    due = list(
        session.scalars(
            sa.select(OutboxEmail)
            .where(OutboxEmail.sent_at.is_(None), OutboxEmail.failed_at.is_(None))
            .where(OutboxEmail.next_attempt_at <= now)
            .order_by(OutboxEmail.id)
            .limit(limit)
        )
    )
    if not due:
        return 0, 0
    sent = failed = 0
    try:
        smtp = _connect()
    except (OSError, smtplib.SMTPException) as exc:
        for email in due:
            _postpone(email, exc)
        session.commit()
        return 0, len(due)
    try:
        for email in due:
            try:
                smtp.send_message(_message(email))
            except (OSError, smtplib.SMTPException) as exc:
                _postpone(email, exc)
                failed += 1
            else:
                email.sent_at = utcnow()
                email.attempts += 1
                sent += 1
            session.commit()
    finally:
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            pass
    return sent, failed


def _postpone(email: OutboxEmail, exc: Exception) -> None:
    email.attempts += 1
    email.last_error = f"{type(exc).__name__}: {exc}"[:2000]
    if email.attempts >= MAX_ATTEMPTS:
        email.failed_at = utcnow()
    else:
        email.next_attempt_at = utcnow() + BASE_DELAY * (2 ** (email.attempts - 1))
