"""Announcements against the real SMTP server of the test suite: 2,500 recipients, each once,
in their language, one-click leave from the received header; interrupted sends resume without
duplicates; uncertain deliveries are never sent again."""

from __future__ import annotations

import smtplib
import time
from collections import Counter
from datetime import timedelta
from email import message_from_bytes, policy
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from portal.accounts.models import Person
from portal.announcements import sending
from portal.announcements.models import (
    Announcement,
    AnnouncementDelivery,
    AnnouncementStatus,
    DeliveryStatus,
    Subscription,
    SubscriptionEvent,
    SubscriptionStatus,
)
from portal.db import db, utcnow
from portal.i18n import BilingualText
from tests import factories as f
from tests.smtp_process import ProcessSMTPRecorder


def _people(session, series, n, status, language=None, prefix="p"):
    """n people on the list (bulk inserts, no per-row query); returns their addresses."""
    emails = [f"{prefix}{i}@example.org" for i in range(n)]
    session.execute(
        sa.insert(Person),
        [
            {
                "email": e,
                "family_name": "山田",
                "given_name": str(i),
                "preferred_language": "ja",
                "search_key": "",
            }
            for i, e in enumerate(emails)
        ],
    )
    ids = dict(
        session.execute(sa.select(Person.email, Person.id).where(Person.email.in_(emails))).all()
    )
    now = utcnow() - timedelta(days=1)
    session.execute(
        sa.insert(Subscription),
        [
            {
                "series_id": series.id,
                "person_id": ids[e],
                "status": status.value,
                "language": language or ("en" if i % 3 == 0 else "ja"),
                "source": "test",
                "created_at": now,
                "updated_at": now,
            }
            for i, e in enumerate(emails)
        ],
    )
    return emails


@pytest.fixture
def world(app, session):
    series = f.series(session, slug="study")
    event = f.event(session, series, slug="meeting-94")
    session.commit()
    return series, event


def _announcement(session, series, event=None, **kw):
    a = Announcement(
        series_id=series.id,
        event_id=event.id if event else None,
        subject=BilingualText(ja="第94回のご案内", en="The 94th meeting"),
        body=BilingualText(
            ja="# ご案内\n\n{event_title}を開催します。申込：{registration_link}",
            en="# Notice\n\nWe hold {event_title}. Register: {registration_link}",
        ),
        **kw,
    )
    session.add(a)
    session.commit()
    return a


@pytest.fixture
def smtp_process(tmp_path):
    """The real SMTP server in a process of its own (tests/smtp_process.py): thousands of
    messages, without the sender and the server taking turns on the test process's GIL."""
    from tests.conftest import free_port

    server = ProcessSMTPRecorder(free_port(), tmp_path / "smtp.spool").start()
    yield server
    server.stop()


def _configure(app, smtp_server):
    app.config.update(MAIL_PORT=smtp_server.port, ANNOUNCEMENTS_RATE_PER_MINUTE=0)


def test_2500_recipients_each_once_in_their_language_with_one_click_leave(
    app, session, world, smtp_process
):
    series, event = world
    smtp_server = smtp_process
    _configure(app, smtp_server)
    confirmed = _people(session, series, 2500, SubscriptionStatus.confirmed)
    imported = _people(session, series, 20, SubscriptionStatus.imported, prefix="imp")
    pending = _people(session, series, 20, SubscriptionStatus.pending, prefix="pen")
    left = _people(session, series, 20, SubscriptionStatus.left, prefix="left")
    bounced = _people(session, series, 20, SubscriptionStatus.undeliverable, prefix="bad")
    session.commit()
    a = _announcement(session, series, event)

    started = time.monotonic()
    sending.queue(session, a, None)
    session.commit()
    assert sending.prepare_due(session) == [a.id]
    queued_in = time.monotonic() - started
    assert queued_in < 5
    assert session.scalar(sa.select(sa.func.count()).select_from(AnnouncementDelivery)) == 2500
    report = sending.send_due(session)
    assert (report.sent, report.failed, report.uncertain) == (2500, 0, 0)
    assert report.finished == [a.id]

    addressed_to = smtp_server.header("To")  # every message's To, without parsing its parts
    received = Counter(addressed_to)
    assert set(received) == set(confirmed)
    assert set(received.values()) == {1}
    for other in (imported, pending, left, bounced):
        assert not set(other) & set(received)
    raw = dict(zip(addressed_to, smtp_server.raw_messages, strict=True))
    by_address = {  # parsed in full: the ones read below
        address: message_from_bytes(raw[address], policy=policy.default)
        for address in confirmed[:30]
    }
    assert all(message["To"] == address for address, message in by_address.items())
    for i, address in enumerate(confirmed[:30]):
        message = by_address[address]
        if i % 3 == 0:
            assert message["Subject"] == "The 94th meeting"
            assert message["Content-Language"] == "en"
            assert "We hold" in message.get_body(("plain",)).get_content()
        else:
            assert message["Subject"] == "第94回のご案内"
            assert "を開催します" in message.get_body(("plain",)).get_content()
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    db.session.expire_all()
    a = session.get(Announcement, a.id)
    assert a.status == AnnouncementStatus.sent and a.recipients == 2500

    # One-click leave: POST to the URL in the received header, no CSRF token, no log-in.
    message = by_address[confirmed[1]]
    url = message["List-Unsubscribe"].strip("<>")
    path = urlsplit(url).path
    client = app.test_client()
    app.config["WTF_CSRF_ENABLED"] = True
    response = client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    again = client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert again.status_code == 200  # idempotent
    person_id = session.scalar(sa.select(Person.id).where(Person.email == confirmed[1]))
    sub = session.scalar(sa.select(Subscription).where(Subscription.person_id == person_id))
    db.session.refresh(sub)
    assert sub.status == SubscriptionStatus.left
    lefts = session.scalars(
        sa.select(SubscriptionEvent).where(
            SubscriptionEvent.subscription_id == sub.id, SubscriptionEvent.kind == "left"
        )
    ).all()
    assert [(e.delta, e.note) for e in lefts] == [(-1, f"announcement:{a.id}")]
    # The next announcement is not for them.
    b = _announcement(session, series)
    sending.queue(session, b, None)
    session.commit()
    sending.prepare_due(session)
    addresses = set(
        session.scalars(
            sa.select(AnnouncementDelivery.email).where(
                AnnouncementDelivery.announcement_id == b.id
            )
        )
    )
    assert len(addresses) == 2499 and confirmed[1] not in addresses


def test_a_send_interrupted_midway_resumes_without_duplicates(
    app, session, world, smtp_server, monkeypatch
):
    series, _ = world
    _configure(app, smtp_server)
    emails = _people(session, series, 300, SubscriptionStatus.confirmed)
    session.commit()
    a = _announcement(session, series)
    sending.queue(session, a, None)
    session.commit()
    sending.prepare_due(session)

    real = smtplib.SMTP.sendmail
    calls = {"n": 0}

    class WorkerDied(Exception):
        pass

    def dying(self, *args, **kwargs):
        if calls["n"] == 120:
            raise WorkerDied("killed")
        calls["n"] += 1
        return real(self, *args, **kwargs)

    monkeypatch.setattr(smtplib.SMTP, "sendmail", dying)
    with pytest.raises(WorkerDied):
        sending.send_due(session)
    assert len(smtp_server.messages) == 120
    monkeypatch.setattr(smtplib.SMTP, "sendmail", real)
    report = sending.send_due(session)  # the worker restarted
    assert report.sent == 180
    received = Counter(m["To"] for m in smtp_server.messages)
    assert set(received) == set(emails) and set(received.values()) == {1}


def test_a_worker_killed_while_handing_over_sends_that_one_at_most_once(
    app, session, world, smtp_server
):
    """A hard kill leaves rows claimed: those never handed over are taken over after the
    lease; the one being handed over is uncertain and not sent again."""
    series, _ = world
    _configure(app, smtp_server)
    emails = _people(session, series, 10, SubscriptionStatus.confirmed)
    session.commit()
    a = _announcement(session, series)
    sending.queue(session, a, None)
    session.commit()
    sending.prepare_due(session)
    claimed = sending.claim(session, 5)
    assert len(claimed) == 5
    expired = utcnow() - timedelta(seconds=1)
    session.execute(
        sa.update(AnnouncementDelivery)
        .where(AnnouncementDelivery.id.in_(claimed))
        .values(claimed_until=expired)
    )
    session.execute(
        sa.update(AnnouncementDelivery)
        .where(AnnouncementDelivery.id == claimed[0])
        .values(handing_over_at=expired)
    )
    session.commit()
    report = sending.send_due(session)
    assert (report.sent, report.uncertain) == (9, 1)
    db.session.expire_all()
    row = session.get(AnnouncementDelivery, claimed[0])
    assert row.status == DeliveryStatus.uncertain
    received = Counter(m["To"] for m in smtp_server.messages)
    assert len(received) == 9 and set(received.values()) == {1}
    assert row.email not in received and set(received) < set(emails)


def test_a_live_lease_is_not_taken_over(app, session, world, smtp_server):
    series, _ = world
    _configure(app, smtp_server)
    _people(session, series, 6, SubscriptionStatus.confirmed)
    session.commit()
    a = _announcement(session, series)
    sending.queue(session, a, None)
    session.commit()
    sending.prepare_due(session)
    held = sending.claim(session, 4)  # another worker holds these
    report = sending.send_due(session)
    assert report.sent == 2
    assert len(smtp_server.messages) == 2
    db.session.expire_all()
    assert session.get(Announcement, a.id).status == AnnouncementStatus.sending
    assert {session.get(AnnouncementDelivery, i).status for i in held} == {DeliveryStatus.queued}


def test_a_refused_address_is_retried_then_failed(app, session, world, smtp_server, monkeypatch):
    series, _ = world
    _configure(app, smtp_server)
    emails = _people(session, series, 3, SubscriptionStatus.confirmed)
    session.commit()
    a = _announcement(session, series)
    sending.queue(session, a, None)
    session.commit()
    sending.prepare_due(session)
    real = smtplib.SMTP.sendmail

    def refuse_one(self, from_addr, to_addrs, msg, *args, **kwargs):
        if to_addrs == [emails[1]]:
            raise smtplib.SMTPRecipientsRefused({emails[1]: (550, b"no such user")})
        return real(self, from_addr, to_addrs, msg, *args, **kwargs)

    monkeypatch.setattr(smtplib.SMTP, "sendmail", refuse_one)
    report = sending.send_due(session)
    assert (report.sent, report.failed) == (2, 1)
    db.session.expire_all()
    counts = sending.progress(session, [a.id])[a.id]
    assert (counts["sent"], counts["failed"], counts["queued"]) == (2, 1, 0)
    assert session.get(Announcement, a.id).status == AnnouncementStatus.sent
    assert [m["To"] for m in smtp_server.messages].count(emails[0]) == 1
    # 550: the address is undeliverable at once (no further tries, no more announcements)
    person_id = session.scalar(sa.select(Person.id).where(Person.email == emails[1]))
    sub = session.scalar(sa.select(Subscription).where(Subscription.person_id == person_id))
    assert sub.status == SubscriptionStatus.undeliverable


def test_a_temporary_refusal_is_tried_again_later(app, session, world, smtp_server, monkeypatch):
    series, _ = world
    _configure(app, smtp_server)
    emails = _people(session, series, 2, SubscriptionStatus.confirmed)
    session.commit()
    a = _announcement(session, series)
    sending.queue(session, a, None)
    session.commit()
    sending.prepare_due(session)
    real = smtplib.SMTP.sendmail
    busy = {"on": True}

    def greylist(self, from_addr, to_addrs, msg, *args, **kwargs):
        if to_addrs == [emails[0]] and busy["on"]:
            raise smtplib.SMTPRecipientsRefused({emails[0]: (451, b"try again later")})
        return real(self, from_addr, to_addrs, msg, *args, **kwargs)

    monkeypatch.setattr(smtplib.SMTP, "sendmail", greylist)
    report = sending.send_due(session)
    assert (report.sent, report.failed) == (1, 1)
    assert sending.send_due(session).sent == 0  # not yet: it waits RETRY_DELAY
    busy["on"] = False
    session.execute(
        sa.update(AnnouncementDelivery)
        .where(AnnouncementDelivery.email == emails[0])
        .values(claimed_until=utcnow() - timedelta(seconds=1))
    )
    session.commit()
    assert sending.send_due(session).sent == 1
    received = Counter(m["To"] for m in smtp_server.messages)
    assert received == {emails[0]: 1, emails[1]: 1}


def test_two_workers_at_once_send_each_delivery_once(app, session, world, smtp_server):
    import threading

    series, _ = world
    _configure(app, smtp_server)
    emails = _people(session, series, 400, SubscriptionStatus.confirmed)
    session.commit()
    a = _announcement(session, series)
    sending.queue(session, a, None)
    session.commit()
    sending.prepare_due(session)
    reports, errors = [], []

    def worker():
        try:
            with app.app_context():
                reports.append(sending.send_due(db.session))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    assert sum(r.sent for r in reports) == 400
    received = Counter(m["To"] for m in smtp_server.messages)
    assert set(received) == set(emails) and set(received.values()) == {1}


def test_a_set_time_waits_and_the_author_gets_the_report(app, session, world, smtp_server):
    from portal.mail.models import OutboxEmail
    from portal.registration.models import FeeCategory

    series, event = world
    _configure(app, smtp_server)
    organiser = f.user(session, email="org@example.org", roles=(("organiser", series),))
    session.add_all(
        [
            FeeCategory(
                event_id=event.id,
                code="general",
                name=BilingualText(ja="一般", en="General"),
                price_minor=5000,
            ),
            FeeCategory(
                event_id=event.id, code="student", name=BilingualText(ja="学生", en="Student")
            ),
        ]
    )
    emails = _people(session, series, 3, SubscriptionStatus.confirmed, language="ja")
    session.commit()
    a = _announcement(session, series, event, created_by_id=organiser.id)
    a.body = BilingualText(ja="参加費\n\n{fee_table}\n\n会場：{venue}", en="Fees\n\n{fee_table}")
    session.commit()
    later = utcnow() + timedelta(hours=2)
    sending.queue(session, a, organiser, send_at=later)
    session.commit()
    assert sending.prepare_due(session) == []
    assert sending.prepare_due(session, now=later + timedelta(seconds=1)) == [a.id]
    report = sending.send_due(session)
    assert report.sent == 3 and report.finished == [a.id]
    html = smtp_server.messages[0].get_body(("html",)).get_content()
    assert "<td>一般</td>" in html and "¥5,000" in html and "無料" in html
    mail = session.scalar(
        sa.select(OutboxEmail).where(OutboxEmail.template == "announcements/report")
    )
    assert mail.to_address == "org@example.org"
    assert "送信済み：3" in mail.body_text
    assert {m["To"] for m in smtp_server.messages} == set(emails)


def test_someone_who_leaves_while_it_is_being_sent_receives_nothing(
    app, session, world, smtp_server
):
    from portal.announcements import subscriptions

    series, _ = world
    _configure(app, smtp_server)
    emails = _people(session, series, 5, SubscriptionStatus.confirmed)
    session.commit()
    a = _announcement(session, series)
    sending.queue(session, a, None)
    session.commit()
    sending.prepare_due(session)
    person_id = session.scalar(sa.select(Person.id).where(Person.email == emails[2]))
    subscriptions.leave(session, series.id, person_id)
    session.commit()
    report = sending.send_due(session)
    assert report.sent == 4 and report.finished == [a.id]
    assert emails[2] not in {m["To"] for m in smtp_server.messages}
    assert sending.progress(session, [a.id])[a.id]["withdrawn"] == 1
