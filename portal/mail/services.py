"""Emails: written in the recipient's language into the outbox, delivered by `portal outbox send`.

``queue_email`` writes a row in the caller's transaction, so the email is committed (or rolled
back) together with the change that caused it. ``send_due`` delivers over SMTP with retries and
exponential back-off; while the mail server is down nothing is lost.
"""

from __future__ import annotations

import smtplib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import current_app
from flask_babel import force_locale
from sqlalchemy.orm import Session, selectinload

from portal import audit
from portal.db import utcnow
from portal.i18n import LANGUAGES
from portal.mail.models import OutboxAttachment, OutboxEmail


@dataclass(frozen=True)
class Generated:
    """An attachment rendered when the mail is sent: ``generator`` names a function registered
    with ``attachment_generator``; ``args`` (JSON) are passed to it with the session."""

    generator: str
    args: dict = field(default_factory=dict)


_GENERATORS: dict[str, Callable[..., bytes]] = {}


def attachment_generator(name: str):
    """Register ``fn(session, **args) -> bytes`` as the renderer of ``Generated(name, args)``
    attachments (import the heavy libraries inside it: the web worker need not load them)."""

    def register(fn):
        _GENERATORS[name] = fn
        return fn

    return register


class AttachmentError(RuntimeError):
    """A generated attachment could not be rendered (the mail is retried later)."""


def attachment_content(session: Session, attachment: OutboxAttachment) -> bytes:
    if not attachment.generator:
        return attachment.content or b""
    try:
        fn = _GENERATORS[attachment.generator]
    except KeyError:
        raise AttachmentError(f"no attachment generator {attachment.generator!r}") from None
    try:
        return fn(session, **(attachment.generator_args or {}))
    except AttachmentError:
        raise
    except Exception as exc:  # noqa: BLE001 - any renderer failure postpones the mail
        raise AttachmentError(f"{attachment.generator}: {type(exc).__name__}: {exc}") from exc


MAX_ATTEMPTS = 8
BASE_DELAY = timedelta(minutes=1)


def _render(name: str, context: dict) -> str:
    """A mail template rendered with ``context`` and the app's Jinja globals and filters: no
    page context processors or template signals (a mail shows no page's helpers, and a
    registration writes its mail while it holds the event's lock)."""
    return current_app.jinja_env.get_template(name).render(context)


_EMAIL_INSERT = sa.insert(OutboxEmail.__table__).returning(OutboxEmail.__table__.c.id)
_ATTACHMENT_INSERT = sa.insert(OutboxAttachment.__table__)


def queue_email(
    session: Session,
    to: str,
    template: str,
    language: str | None = None,
    *,
    attachments: Iterable[tuple[str, str, bytes | Generated]] = (),
    headers: dict[str, str] | None = None,
    reply_to: str = "",
    **context,
) -> int:
    """Render ``mail/<template>.txt`` and ``.html`` (first line of the text is the subject)
    and write the mail into the outbox in the session's transaction; returns its id.

    ``attachments`` are ``(filename, content_type, content)``, the content being the bytes or
    a ``Generated`` reference rendered when the mail is sent; ``headers`` are extra headers
    (``List-Unsubscribe`` …); ``reply_to`` sets Reply-To. The Message-ID is fixed here, so a
    retried mail is the same message to the receiving server.

    The rows are written with plain INSERTs rather than ORM objects to flush: a registration
    queues its mail while it holds the event's lock (docs/performance.md).
    """
    language = language if language in LANGUAGES else "ja"
    office = office_contact(language)
    context.setdefault("office", office)
    reply_to = reply_to or office["email"]  # "reply to this email" reaches the office
    with force_locale(language):
        context.setdefault("lang", language)
        text = _render(f"mail/{template}.txt", context)
        html = _render(f"mail/{template}.html", context)
    subject, _, body = text.partition("\n")
    now = utcnow()
    email_id = session.execute(
        _EMAIL_INSERT,
        {
            "to_address": to,
            "language": language,
            "subject": subject.strip(),
            "body_text": body.lstrip("\n"),
            "body_html": html,
            "template": template,
            "message_id": make_msgid(domain=_msgid_domain()),
            "reply_to": reply_to,
            "headers": dict(headers or {}),
            "created_at": now,
            "next_attempt_at": now,
        },
    ).scalar_one()
    rows = [_attachment(email_id, name, ctype, content) for name, ctype, content in attachments]
    if rows:
        session.execute(_ATTACHMENT_INSERT, rows)
    return email_id  # a worker finds it within a second (portal.tasks.worker, the watcher)


def load_templates(folder: str) -> None:
    """Compile the templates of ``mail/<folder>/`` and the shared ``mail/_*`` parts, once per
    process and Flask app. A state change calls it before it takes a lock (``lock_event``):
    compiling a registration email (about 40 ms) under the event's lock held every other
    registration of the event that long, once in each new worker."""
    app = current_app._get_current_object()
    done = app.extensions.setdefault("portal_mail_templates", set())
    if folder in done:
        return
    env = app.jinja_env
    parts = (f"mail/{folder}/", "mail/_")
    for name in env.list_templates(filter_func=lambda name: name.startswith(parts)):
        env.get_template(name)
    done.add(folder)


def office_contact(language: str) -> dict[str, str]:
    """The office (事務局) that signs emails: name in the language, email, phone (settings
    PORTAL_OFFICE_NAME / _NAME_EN / _EMAIL / _PHONE; the email defaults to the sender)."""
    config = current_app.config
    name = config.get("OFFICE_NAME_EN" if language == "en" else "OFFICE_NAME") or ""
    email = config.get("OFFICE_EMAIL") or config.get("MAIL_SENDER") or ""
    return {"name": name, "email": email, "phone": config.get("OFFICE_PHONE") or ""}


def _attachment(email_id: int, name: str, ctype: str, content: bytes | Generated) -> dict:
    """The outbox_attachments row of one attachment."""
    generated = isinstance(content, Generated)
    return {
        "email_id": email_id,
        "filename": name,
        "content_type": ctype,
        "content": None if generated else content,
        "generator": content.generator if generated else "",
        "generator_args": dict(content.args) if generated else {},
    }


def _message(email: OutboxEmail, session: Session) -> EmailMessage:
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
    html_part = msg.get_payload()[-1]
    for attachment in email.attachments:
        maintype, _, subtype = attachment.content_type.partition("/")
        if maintype == "image" and f'src="cid:{attachment.filename}"' in email.body_html:
            # An image the HTML shows (<img src="cid:…">): a related part of the HTML, named
            # too so that a program without HTML offers it as a file.
            html_part.add_related(
                attachment_content(session, attachment),
                maintype=maintype,
                subtype=subtype,
                cid=f"<{attachment.filename}>",
                filename=attachment.filename,
                disposition="inline",
            )
            continue
        msg.add_attachment(
            attachment_content(session, attachment),
            maintype=maintype,
            subtype=subtype,
            filename=attachment.filename,
        )
    # After add_alternative, which moves Content-* headers into the first part.
    msg["Content-Language"] = email.language
    return msg


def _msgid_domain() -> str:
    host = urlsplit(current_app.config.get("BASE_URL") or "").hostname
    return host or "portal.local"


def connect() -> smtplib.SMTP:
    """An SMTP connection to the configured server (announcements send through it too)."""
    return _connect()


def message_id_domain() -> str:
    """The domain of Message-IDs (from BASE_URL)."""
    return _msgid_domain()


def _connect() -> smtplib.SMTP:
    cfg = current_app.config
    smtp = smtplib.SMTP(cfg["MAIL_SERVER"], int(cfg["MAIL_PORT"]), timeout=15)
    if cfg.get("MAIL_USE_TLS"):
        smtp.starttls()
    if cfg.get("MAIL_USERNAME"):
        smtp.login(cfg["MAIL_USERNAME"], cfg.get("MAIL_PASSWORD") or "")
    return smtp


class OutboxDeliveryError(RuntimeError):
    """Some mail could not be delivered this round (raised for monitoring; nothing is lost)."""


CLAIM_LEASE = timedelta(minutes=5)
CLAIM_BATCH = 50


def _due_filter(now):
    return sa.and_(
        OutboxEmail.sent_at.is_(None),
        OutboxEmail.failed_at.is_(None),
        OutboxEmail.next_attempt_at <= now,
        sa.or_(OutboxEmail.claimed_until.is_(None), OutboxEmail.claimed_until < now),
    )


def _due_in_order(now) -> sa.Select:
    """The ids of due mails, the longest-waiting first, in the order of the partial index of
    unsent mails: ordered by id, PostgreSQL walks the primary key through the whole sent
    history when nothing is due (it expects some of the failed mails, which have no sent_at
    either, to be due)."""
    return (
        sa.select(OutboxEmail.id)
        .where(_due_filter(now))
        .order_by(OutboxEmail.next_attempt_at, OutboxEmail.id)
    )


def has_due(session: Session) -> bool:
    """Whether any mail is due now (one indexed look; what a worker's watcher asks)."""
    return session.scalar(_due_in_order(utcnow()).limit(1)) is not None


def claim_due(session: Session, limit: int) -> list[int]:
    """Claim up to ``limit`` due mails for this sender in one UPDATE; commits.

    On PostgreSQL the rows are picked with ``FOR UPDATE SKIP LOCKED``, so concurrent senders
    take different mails; on SQLite the single UPDATE … RETURNING is atomic (one writer).
    A claim is a lease: a sender that dies leaves its mails to be taken over after it.
    """
    now = utcnow()
    pick = _due_in_order(now).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        # Pick and lock first, then update those ids: PostgreSQL may run an IN-subquery with
        # LIMIT more than once inside an UPDATE and so claim more rows than asked.
        chosen = list(session.scalars(pick.with_for_update(skip_locked=True)))
        which = OutboxEmail.id.in_(chosen)
    else:
        which = OutboxEmail.id.in_(pick.scalar_subquery())
    ids = list(
        session.scalars(
            sa.update(OutboxEmail)
            .where(which)
            .values(claimed_until=now + CLAIM_LEASE)
            .returning(OutboxEmail.id)
            .execution_options(synchronize_session=False)
        )
    )
    session.commit()
    return sorted(ids)


def send_due(session: Session, limit: int = 100) -> tuple[int, int]:
    """Send what is due; returns (sent, failed this round). Failed ones are retried later.

    Every mail is claimed before the SMTP server sees it, so two senders at once (two workers,
    overlapping runs, two machines) deliver each mail once; the Message-ID fixed at queue time
    is kept across retries.
    """
    sent = failed = 0
    smtp = None
    try:
        while sent + failed < limit:
            ids = claim_due(session, min(CLAIM_BATCH, limit - sent - failed))
            if not ids:
                break
            emails = list(
                session.scalars(
                    sa.select(OutboxEmail)
                    .where(OutboxEmail.id.in_(ids))
                    .order_by(OutboxEmail.id)
                    .options(selectinload(OutboxEmail.attachments))
                    .execution_options(populate_existing=True)
                )
            )
            if smtp is None:
                try:
                    smtp = _connect()
                except (OSError, smtplib.SMTPException) as exc:
                    for email in emails:
                        _postpone(email, exc)
                    session.commit()
                    return sent, failed + len(emails)
            for email in emails:
                try:
                    smtp.send_message(_message(email, session))
                except (OSError, smtplib.SMTPException, AttachmentError) as exc:
                    _postpone(email, exc)
                    failed += 1
                else:
                    email.sent_at = utcnow()
                    email.attempts += 1
                    email.claimed_until = None
                    sent += 1
                session.commit()
    finally:
        if smtp is not None:
            try:
                smtp.quit()
            except (OSError, smtplib.SMTPException):
                pass
    return sent, failed


def undelivered(session: Session, limit: int = 200) -> list[OutboxEmail]:
    """Mails given up after the last retry, newest first (shown to the office)."""
    return list(
        session.scalars(
            sa.select(OutboxEmail)
            .where(OutboxEmail.sent_at.is_(None), OutboxEmail.failed_at.is_not(None))
            .order_by(OutboxEmail.failed_at.desc(), OutboxEmail.id.desc())
            .limit(limit)
        )
    )


def outbox_counts(session: Session) -> dict[str, int]:
    """Backlog figures for monitoring: waiting (not sent, not given up), due now, undelivered."""
    now = utcnow()
    pending = sa.and_(OutboxEmail.sent_at.is_(None), OutboxEmail.failed_at.is_(None))
    row = session.execute(
        sa.select(
            sa.func.count().filter(pending),
            sa.func.count().filter(pending, OutboxEmail.next_attempt_at <= now),
            sa.func.count().filter(
                OutboxEmail.sent_at.is_(None), OutboxEmail.failed_at.is_not(None)
            ),
        ).select_from(OutboxEmail)
    ).one()
    return {"waiting": row[0], "due": row[1], "undelivered": row[2]}


def requeue(session: Session, email_ids: Iterable[int] | None = None, actor=None) -> int:
    """Send undelivered mails again (all of them, or these ids): a fresh round of retries with
    the same Message-ID. Returns how many were requeued; the caller commits."""
    stmt = sa.select(OutboxEmail).where(
        OutboxEmail.sent_at.is_(None), OutboxEmail.failed_at.is_not(None)
    )
    if email_ids is not None:
        stmt = stmt.where(OutboxEmail.id.in_(list(email_ids)))
    count = 0
    for email in session.scalars(stmt.order_by(OutboxEmail.id)):
        email.failed_at = None
        email.attempts = 0
        email.claimed_until = None
        email.next_attempt_at = utcnow()
        audit.record(session, actor, "outbox_email", email.id, "requeued")
        count += 1
    return count


def _postpone(email: OutboxEmail, exc: Exception) -> None:
    email.attempts += 1
    email.claimed_until = None
    email.last_error = f"{type(exc).__name__}: {exc}"[:2000]
    if email.attempts >= MAX_ATTEMPTS:
        email.failed_at = utcnow()
    else:
        email.next_attempt_at = utcnow() + BASE_DELAY * (2 ** (email.attempts - 1))
