"""Sending an announcement: deliveries created in one INSERT … SELECT, claimed, sent once.

1. ``queue`` (the organiser's "send now" or "send at"): the announcement becomes
   ``scheduled``; nothing else happens in the web request.
2. ``prepare_due`` (the ``send-announcements`` job): a scheduled announcement whose time has
   come gets one ``announcement_deliveries`` row per recipient, created by a single
   INSERT … SELECT from the audience (``portal.announcements.audience``), unique per
   (announcement, person), and becomes ``sending``.
3. ``send_due``: deliveries are claimed in batches (one UPDATE of a lease,
   ``claimed_until``; on PostgreSQL the rows are picked ``FOR UPDATE SKIP LOCKED``, so two
   workers take different rows; on SQLite the UPDATE is atomic), then each is sent on its own:
   ``handing_over_at`` is committed just before the message goes to the SMTP server, and
   ``sent_at`` right after the server accepted it (in the next commit).

Exactly once, and where it cannot be: SMTP has no way to ask "did you get this one?", so a
sender that dies between handing a message over and committing ``sent_at`` leaves one
delivery whose fate is unknown. We choose *at most once* for that one: a delivery with
``handing_over_at`` and an expired lease becomes ``uncertain`` and is never sent again
(a duplicate announcement to a person is worse than one missed mail, which the progress page
shows). Everything else is exactly once: rows claimed but never handed over are taken over
after the lease (``CLAIM_LEASE``) by the next run; a message the SMTP server refused or an
exception raised while sending (the server never said 250) releases its row to be sent again
(``MAX_ATTEMPTS`` tries, then ``failed``); an interrupted run releases the rest of its batch.
The Message-ID of a delivery is fixed (``<announcement-A-P@domain>``), so even a message that
did go out twice would be one message to the recipient's mail program.

The rate is the setting ``ANNOUNCEMENTS_RATE_PER_MINUTE`` (0: as fast as the server takes
them); one run of the job sends for at most ``ANNOUNCEMENTS_RUN_SECONDS`` and the next run
continues.
"""

from __future__ import annotations

import base64
import secrets
import smtplib
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.header import Header
from email.utils import formataddr, formatdate

import sqlalchemy as sa
from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from portal import audit
from portal.announcements import audience, compose, tokens
from portal.announcements.models import (
    Announcement,
    AnnouncementDelivery,
    AnnouncementStatus,
    DeliveryStatus,
    Subscription,
    SubscriptionStatus,
)
from portal.announcements.subscriptions import mark_undeliverable
from portal.db import utcnow
from portal.errors import UserError
from portal.links import external_url
from portal.mail.services import connect, message_id_domain, office_contact, queue_email

D = AnnouncementDelivery
CLAIM_BATCH = 50
CLAIM_LEASE = timedelta(minutes=10)
MAX_ATTEMPTS = 5
RETRY_DELAY = timedelta(minutes=5)  # after a temporary refusal (4xx), times the tries


class SendError(UserError):
    default_message = _l("This announcement cannot be sent.")


# -- 1. queue -------------------------------------------------------------------------------


def queue(session: Session, announcement: Announcement, actor, send_at: datetime | None = None):
    """Schedule the announcement (now, or at ``send_at``); the job does the rest."""
    if not announcement.editable:
        raise SendError(_l("This announcement has already been sent."))
    if not (announcement.subject and announcement.body):
        raise SendError(_l("Please write the subject and the text first."))
    now = utcnow()
    if send_at is not None and send_at < now - timedelta(minutes=1):
        raise SendError(_l("Please choose a time in the future."), field="send_at")
    announcement.status = AnnouncementStatus.scheduled
    announcement.send_at = send_at or now
    audit.record(
        session,
        actor,
        "announcement",
        announcement.id,
        "scheduled",
        send_at=announcement.send_at.isoformat(),
    )
    session.info["announcements_kick"] = True


def unschedule(session: Session, announcement: Announcement, actor) -> None:
    """Back to a draft, while the deliveries are not created yet."""
    if announcement.status != AnnouncementStatus.scheduled:
        raise SendError(_l("This announcement is no longer waiting to be sent."))
    announcement.status = AnnouncementStatus.draft
    announcement.send_at = None
    audit.record(session, actor, "announcement", announcement.id, "unscheduled")


# -- 2. prepare -----------------------------------------------------------------------------


def prepare(session: Session, announcement: Announcement, now=None) -> int:
    """Create the deliveries in one INSERT … SELECT; returns how many. Does not commit."""
    recipients = audience.recipients(session, announcement, now=now).subquery()
    select = sa.select(
        sa.literal(announcement.id),
        recipients.c[0],
        recipients.c[1],
        recipients.c[2],
        sa.literal(DeliveryStatus.queued.value),
        sa.literal(0),
        sa.literal(""),
    )
    session.execute(
        sa.insert(D).from_select(
            [
                "announcement_id",
                "person_id",
                "email",
                "language",
                "status",
                "attempts",
                "last_error",
            ],
            select,
        )
    )
    created = session.scalar(
        sa.select(sa.func.count()).select_from(D).where(D.announcement_id == announcement.id)
    )
    announcement.recipients = created or 0
    announcement.status = AnnouncementStatus.sending
    announcement.queued_at = now or utcnow()
    audit.record(session, None, "announcement", announcement.id, "queued", recipients=created)
    return created or 0


def prepare_due(session: Session, now=None) -> list[int]:
    """Create the deliveries of every scheduled announcement whose time has come; commits
    each. The announcement row is locked, so two workers never prepare one twice."""
    now = now or utcnow()
    ids = list(
        session.scalars(
            sa.select(Announcement.id).where(
                Announcement.status == AnnouncementStatus.scheduled, Announcement.send_at <= now
            )
        )
    )
    session.commit()
    done = []
    for announcement_id in ids:
        stmt = sa.select(Announcement).where(
            Announcement.id == announcement_id, Announcement.status == AnnouncementStatus.scheduled
        )
        if session.get_bind().dialect.name == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True)
        announcement = session.scalar(stmt.execution_options(populate_existing=True))
        if announcement is None:
            session.commit()
            continue
        prepare(session, announcement, now=now)
        session.commit()
        done.append(announcement_id)
    return done


# -- 3. send --------------------------------------------------------------------------------


@dataclass
class SendReport:
    sent: int = 0
    failed: int = 0  # refused this round (tried again later, or given up)
    uncertain: int = 0
    finished: list[int] = field(default_factory=list)


def _claimable(now):
    return sa.and_(
        D.status == DeliveryStatus.queued,
        D.handing_over_at.is_(None),
        sa.or_(D.claimed_until.is_(None), D.claimed_until < now),
        D.announcement_id.in_(
            sa.select(Announcement.id).where(Announcement.status == AnnouncementStatus.sending)
        ),
    )


def claim(session: Session, limit: int, now=None) -> list[int]:
    """Lease up to ``limit`` deliveries to this sender; commits.

    Two statements in one transaction: the SELECT takes the rows (on PostgreSQL ``FOR UPDATE
    SKIP LOCKED``: rows another sender is claiming are skipped, and the LIMIT holds — inside an
    ``UPDATE … WHERE id IN (SELECT … LIMIT n)`` PostgreSQL may evaluate the subquery more than
    once and claim more than ``n``), then one UPDATE leases exactly those. On SQLite the
    transaction holds the write lock from its start, so two senders never overlap.
    """
    now = now or utcnow()
    withdraw_left(session)
    pick = sa.select(D.id).where(_claimable(now)).order_by(D.id).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        pick = pick.with_for_update(skip_locked=True, of=D)
    ids = list(session.scalars(pick))
    if ids:
        session.execute(
            sa.update(D)
            .where(D.id.in_(ids))
            .values(claimed_until=now + CLAIM_LEASE)
            .execution_options(synchronize_session=False)
        )
    session.commit()
    return sorted(ids)


def withdraw_left(session: Session) -> None:
    """Deliveries not handed over yet to people who left the series' list (or whose address
    bounced) since the announcement was prepared are withdrawn. Does not commit."""
    gone = (
        sa.select(Subscription.id)
        .join(Announcement, Announcement.series_id == Subscription.series_id)
        .where(
            Announcement.id == D.announcement_id,
            Subscription.person_id == D.person_id,
            Subscription.status.in_([SubscriptionStatus.left, SubscriptionStatus.undeliverable]),
        )
    )
    session.execute(
        sa.update(D)
        .where(
            D.announcement_id.in_(
                sa.select(Announcement.id).where(Announcement.status == AnnouncementStatus.sending)
            ),
            D.status == DeliveryStatus.queued,
            D.handing_over_at.is_(None),
            sa.or_(D.claimed_until.is_(None), D.claimed_until < utcnow()),
            sa.exists(gone),
        )
        .values(status=DeliveryStatus.withdrawn, claimed_until=None)
        .execution_options(synchronize_session=False)
    )


def mark_uncertain(session: Session, now=None) -> int:
    """Deliveries handed over by a sender that died before recording the outcome: never sent
    again (at most once). Commits."""
    now = now or utcnow()
    result = session.execute(
        sa.update(D)
        .where(
            D.status == DeliveryStatus.queued,
            D.handing_over_at.is_not(None),
            D.claimed_until < now,
        )
        .values(status=DeliveryStatus.uncertain, claimed_until=None)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return result.rowcount or 0


def _header(name: str, value: str) -> str:
    """One header line, encoded (RFC 2047) only when it is not plain ASCII."""
    try:
        value.encode("ascii")
    except UnicodeEncodeError:
        value = Header(value, "utf-8", header_name=name).encode(linesep="\r\n")
    return f"{name}: {value}\r\n"


def _part(content_type: str, text: str) -> str:
    body = base64.encodebytes(text.encode("utf-8")).decode("ascii").replace("\n", "\r\n")
    return (
        f'Content-Type: {content_type}; charset="utf-8"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\n" + body
    )


def _shared_headers(rendered: compose.Rendered, announcement: Announcement) -> str:
    """The headers every recipient of a language shares, encoded once per run."""
    lang = rendered.language
    office = office_contact(lang)
    domain = message_id_domain()
    sender = (office["name"] or "Rare Metal Portal", current_app.config["MAIL_SENDER"])
    return "".join(
        (
            _header("From", formataddr(sender, charset="utf-8")),
            _header("Subject", rendered.subject),
            _header("Reply-To", office["email"]) if office["email"] else "",
            _header("List-Id", f"<{announcement.series.slug}.list.{domain}>"),
            _header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
            _header("Precedence", "bulk"),
            _header("Content-Language", lang),
            "MIME-Version: 1.0\r\n",
        )
    )


def _message(
    rendered: compose.Rendered, row, announcement: Announcement, shared: str | None = None
) -> bytes:
    """The message as bytes (MIME built by hand: the email package's header folding costs
    more than everything else of a delivery). ``shared``: ``_shared_headers`` for this
    announcement and language."""
    lang = rendered.language
    leave = external_url(
        "announcements.leave",
        lang_code=lang,
        token=tokens.leave_token(announcement.series_id, row.person_id, announcement.id),
    )
    view = external_url(
        "announcements.view",
        lang_code=lang,
        token=tokens.view_token(announcement.id, row.person_id),
    )
    text, html = compose.personalise(rendered, leave, view)
    boundary = f"=_announcement_{announcement.id}_{row.person_id}_{secrets.token_hex(6)}"
    message_id = f"<announcement-{announcement.id}-{row.person_id}@{message_id_domain()}>"
    head = "".join(
        (
            shared if shared is not None else _shared_headers(rendered, announcement),
            _header("To", row.email),
            _header("Date", formatdate(usegmt=True)),
            _header("Message-ID", message_id),
            _header("List-Unsubscribe", f"<{leave}>"),
            f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n',
        )
    )
    return (
        f"{head}\r\n--{boundary}\r\n{_part('text/plain', text)}"
        f"--{boundary}\r\n{_part('text/html', html)}--{boundary}--\r\n"
    ).encode("ascii")


# The two statements of every delivery, on the table (no ORM bookkeeping per message).
_TABLE = AnnouncementDelivery.__table__
_HANDING_OVER = (
    _TABLE.update()
    .where(_TABLE.c.id == sa.bindparam("b_id"))
    .values(handing_over_at=sa.bindparam("b_at"))
)
_SENT = (
    _TABLE.update()
    .where(_TABLE.c.id == sa.bindparam("b_id"))
    .values(
        status=DeliveryStatus.sent,
        sent_at=sa.bindparam("b_at"),
        claimed_until=None,
        attempts=sa.bindparam("b_attempts"),
    )
)


def _smtp_code(exc: Exception) -> int:
    """The SMTP reply code of a refusal (the recipient's, when the recipient was refused); 0
    when the server gave none (the connection broke)."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        return min(codes) if codes else 0
    return int(getattr(exc, "smtp_code", 0) or 0)


def _rate_pause() -> float:
    rate = int(current_app.config.get("ANNOUNCEMENTS_RATE_PER_MINUTE") or 0)
    return 60.0 / rate if rate > 0 else 0.0


def _release(session: Session, ids) -> None:
    ids = list(ids)
    if ids:
        session.execute(
            sa.update(D)
            .where(D.id.in_(ids), D.status == DeliveryStatus.queued)
            .values(claimed_until=None, handing_over_at=None)
            .execution_options(synchronize_session=False)
        )
    session.commit()


def send_due(
    session: Session, *, limit: int | None = None, seconds: float | None = None
) -> SendReport:
    """Send claimed deliveries until none is left, ``limit`` were tried or ``seconds`` passed."""
    report = SendReport(uncertain=mark_uncertain(session))
    pause = _rate_pause()
    if seconds is None:
        seconds = float(current_app.config.get("ANNOUNCEMENTS_RUN_SECONDS") or 240)
    stop_at = time.monotonic() + seconds
    announcements: dict[int, Announcement] = {}
    rendered: dict[tuple[int, str], compose.Rendered] = {}
    shared: dict[tuple[int, str], str] = {}
    smtp = None
    tried = 0
    pending: list[int] = []  # claimed by this run, not handed over yet
    try:
        while (limit is None or tried < limit) and time.monotonic() < stop_at:
            batch = CLAIM_BATCH if limit is None else min(CLAIM_BATCH, limit - tried)
            pending = claim(session, batch)
            if not pending:
                break
            rows = session.execute(
                sa.select(D.id, D.announcement_id, D.person_id, D.email, D.language, D.attempts)
                .where(D.id.in_(pending))
                .order_by(D.id)
            ).all()
            if smtp is None:
                try:
                    smtp = connect()
                except (OSError, smtplib.SMTPException):
                    _release(session, pending)
                    pending = []
                    raise
            for row in rows:
                if time.monotonic() >= stop_at:
                    break
                announcement = announcements.get(row.announcement_id)
                if announcement is None:
                    announcement = session.get(Announcement, row.announcement_id)
                    announcements[row.announcement_id] = announcement
                key = (row.announcement_id, row.language)
                if key not in rendered:
                    rendered[key] = compose.render(session, announcement, row.language)
                    shared[key] = _shared_headers(rendered[key], announcement)
                message = _message(rendered[key], row, announcement, shared[key])
                session.execute(_HANDING_OVER, {"b_id": row.id, "b_at": utcnow()})
                session.commit()  # also commits the previous delivery's sent_at
                pending.remove(row.id)
                tried += 1
                try:
                    smtp.sendmail(current_app.config["MAIL_SENDER"], [row.email], message)
                except Exception as exc:  # the server never accepted it
                    attempts = row.attempts + 1
                    refused = isinstance(
                        exc, smtplib.SMTPResponseException | smtplib.SMTPRecipientsRefused
                    )
                    permanent = refused and _smtp_code(exc) >= 500
                    session.execute(
                        sa.update(D)
                        .where(D.id == row.id)
                        .values(
                            handing_over_at=None,
                            # a refusal is tried again after a pause that grows with the
                            # tries; a broken connection or a dying sender at the next run
                            claimed_until=utcnow() + RETRY_DELAY * attempts if refused else None,
                            attempts=attempts,
                            last_error=f"{type(exc).__name__}: {exc}"[:2000],
                            status=DeliveryStatus.failed
                            if permanent or attempts >= MAX_ATTEMPTS
                            else DeliveryStatus.queued,
                        )
                        .execution_options(synchronize_session=False)
                    )
                    if permanent:  # 5xx: the address does not exist (a bounce at once)
                        mark_undeliverable(session, row.email, "refused")
                    session.commit()
                    report.failed += 1
                    if not refused:
                        raise  # the connection is gone, or the sender is dying
                    continue
                session.execute(
                    _SENT, {"b_id": row.id, "b_at": utcnow(), "b_attempts": row.attempts + 1}
                )
                report.sent += 1
                if pause:
                    session.commit()
                    time.sleep(pause)
            session.commit()
            _release(session, pending)
            pending = []
    finally:
        try:
            session.commit()  # the last sent_at
            _release(session, pending)
        except sa.exc.SQLAlchemyError:
            session.rollback()  # the lease runs out; the next run takes the rows over
        if smtp is not None:
            try:
                smtp.quit()
            except (OSError, smtplib.SMTPException):
                pass
    report.finished = finish(session)
    return report


# -- the end --------------------------------------------------------------------------------


def progress(session: Session, announcement_ids) -> dict[int, dict[str, int]]:
    """Deliveries per status for several announcements in one query."""
    ids = list(announcement_ids)
    found = {i: dict.fromkeys([s.value for s in DeliveryStatus], 0) for i in ids}
    if not ids:
        return found
    for announcement_id, status, n in session.execute(
        sa.select(D.announcement_id, D.status, sa.func.count())
        .where(D.announcement_id.in_(ids))
        .group_by(D.announcement_id, D.status)
    ):
        found[announcement_id][DeliveryStatus(status).value] = n
    return found


def finish(session: Session) -> list[int]:
    """Announcements being sent with nothing left to send become ``sent``; the organiser who
    wrote one gets the report by email. Commits."""
    left = sa.select(D.id).where(
        D.announcement_id == Announcement.id, D.status == DeliveryStatus.queued
    )
    done = list(
        session.scalars(
            sa.select(Announcement).where(
                Announcement.status == AnnouncementStatus.sending, ~sa.exists(left)
            )
        )
    )
    counts = progress(session, [a.id for a in done])
    for announcement in done:
        announcement.status = AnnouncementStatus.sent
        announcement.finished_at = utcnow()
        figures = counts[announcement.id]
        audit.record(session, None, "announcement", announcement.id, "sent", **figures)
        _queue_report(session, announcement, figures)
    session.commit()
    return [a.id for a in done]


def _queue_report(session: Session, announcement: Announcement, figures: dict) -> None:
    from portal.accounts.models import User

    if announcement.created_by_id is None:
        return
    user = session.get(User, announcement.created_by_id)
    if user is None:
        return
    lang = user.preferred_language
    queue_email(
        session,
        user.email,
        "announcements/report",
        lang,
        person=user.person,
        announcement=announcement,
        figures=figures,
        link=external_url(
            "announcements_admin.detail",
            lang_code=lang,
            slug=announcement.series.slug,
            announcement_id=announcement.id,
        ),
    )


def send_test(session: Session, announcement: Announcement, user, language: str) -> None:
    """The announcement as a recipient of ``language`` reads it, to the organiser (through the
    outbox; the leave link is one for the organiser, who stays on the list)."""
    from flask_babel import force_locale

    with force_locale(language):
        values = compose.context(session, announcement, language)
    values["view_link"] = external_url(
        "announcements.view",
        lang_code=language,
        token=tokens.view_token(announcement.id, user.person_id),
    )
    values["leave_link"] = values["view_link"]  # a test: the organiser does not leave
    queue_email(session, user.email, "announcements/test", language, **values)
    audit.record(session, user, "announcement", announcement.id, "test_sent", language=language)


# -- asking a worker to start now -------------------------------------------------------------


@sa.event.listens_for(Session, "after_commit")
def _kick_after_commit(session: Session) -> None:
    """A commit that scheduled an announcement asks a worker to run the job now."""
    if session.info.pop("announcements_kick", False):
        kick()


@sa.event.listens_for(Session, "after_rollback")
def _forget_kick(session: Session) -> None:
    session.info.pop("announcements_kick", None)


def kick() -> None:
    """Never fails the caller: the scheduled run (every 30 seconds) sends it anyway."""
    from flask import has_app_context

    if not has_app_context() or not current_app.config.get("TASKS_KICK_OUTBOX"):
        return
    from portal.tasks import celery_for
    from portal.tasks.worker import run_job_task

    try:
        celery_for(current_app)
        run_job_task.apply_async(args=("send-announcements",))
    except Exception:  # the broker is down
        current_app.logger.warning("could not ask a worker to send announcements now")


def run(session: Session) -> str:
    """The ``send-announcements`` job: prepare what is due, then send for one run's time."""
    prepared = prepare_due(session)
    report = send_due(session)
    return (
        f"prepared {len(prepared)}, sent {report.sent}, refused {report.failed}, "
        f"uncertain {report.uncertain}, finished {len(report.finished)}"
    )
