"""The outbox under real conditions: concurrent senders, retries with one Message-ID,
undelivered mail shown to the office and sent again, failures that exit non-zero."""

from __future__ import annotations

import threading
from datetime import timedelta
from email.utils import make_msgid

import sqlalchemy as sa

from portal.audit import AuditEntry
from portal.db import db, utcnow
from portal.mail.models import OutboxEmail
from portal.mail.services import MAX_ATTEMPTS, send_due
from tests import factories as f


def _queue(app, count: int) -> list[str]:
    with app.app_context():
        rows = [
            OutboxEmail(
                to_address=f"person{i}@example.org",
                language="en",
                subject=f"Mail {i}",
                body_text=f"Body {i}",
                body_html=f"<p>Body {i}</p>",
                message_id=make_msgid(domain="portal.test"),
            )
            for i in range(count)
        ]
        db.session.add_all(rows)
        db.session.commit()
        return [r.message_id for r in rows]


def test_two_concurrent_senders_deliver_each_of_200_mails_exactly_once(app, smtp_server):
    app.config["MAIL_PORT"] = smtp_server.port
    message_ids = _queue(app, 200)
    results, errors = [], []
    start = threading.Barrier(2)

    def sender():
        try:
            with app.app_context():
                start.wait()
                results.append(send_due(db.session, limit=1000))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=sender) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    assert sum(sent for sent, _ in results) == 200
    assert sum(failed for _, failed in results) == 0
    received = [m["Message-ID"] for m in smtp_server.messages]
    assert len(received) == 200
    assert sorted(received) == sorted(message_ids)  # each once, with the queued Message-ID
    with app.app_context():
        assert (
            db.session.scalar(sa.select(sa.func.count()).where(OutboxEmail.sent_at.is_not(None)))
            == 200
        )
        assert (
            db.session.scalar(
                sa.select(sa.func.count()).where(OutboxEmail.claimed_until.is_not(None))
            )
            == 0
        )


def test_a_mail_claimed_by_another_sender_is_left_alone_until_its_claim_expires(
    app, runner, smtp_server
):
    app.config["MAIL_PORT"] = smtp_server.port
    _queue(app, 1)
    with app.app_context():
        row = db.session.scalar(sa.select(OutboxEmail))
        row.claimed_until = utcnow() + timedelta(minutes=3)
        db.session.commit()
        assert send_due(db.session) == (0, 0)
        row.claimed_until = utcnow() - timedelta(seconds=1)  # that sender died
        db.session.commit()
        assert send_due(db.session) == (1, 0)
    assert len(smtp_server.messages) == 1


def test_the_longest_waiting_mail_is_claimed_first(app):
    """A claim takes the mails due longest ago first (the order of the partial index of
    unsent mails), whatever order they were queued in; sent and failed mails never."""
    from portal.mail.services import claim_due

    _queue(app, 4)
    with app.app_context():
        first, second, sent, failed = db.session.scalars(
            sa.select(OutboxEmail).order_by(OutboxEmail.id)
        ).all()
        now = utcnow()
        first.next_attempt_at = now - timedelta(minutes=1)  # queued first, retried since
        second.next_attempt_at = now - timedelta(minutes=30)
        sent.next_attempt_at = failed.next_attempt_at = now - timedelta(hours=1)
        sent.sent_at = now - timedelta(minutes=50)
        failed.failed_at = now - timedelta(minutes=50)
        db.session.commit()
        ids = first.id, second.id
        assert claim_due(db.session, 1) == [ids[1]]
        assert claim_due(db.session, 5) == [ids[0]]
        assert claim_due(db.session, 5) == []


def test_retries_keep_the_message_id_and_failures_exit_non_zero(app, runner, smtp_server):
    [message_id] = _queue(app, 1)
    result = runner.invoke(args=["outbox", "send"])  # nothing listens on port 1
    assert result.exit_code == 1
    assert "sent 0, postponed 1" in result.output
    assert "1 email(s) could not be delivered this round." in result.output
    with app.app_context():
        row = db.session.scalar(sa.select(OutboxEmail))
        row.next_attempt_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    app.config["MAIL_PORT"] = smtp_server.port
    result = runner.invoke(args=["outbox", "send"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "sent 1, postponed 0"
    [message] = smtp_server.messages
    assert message["Message-ID"] == message_id


def _give_up(app) -> int:
    with app.app_context():
        row = db.session.scalar(sa.select(OutboxEmail))
        row.attempts = MAX_ATTEMPTS - 1
        db.session.commit()
        assert send_due(db.session) == (0, 1)
        assert row.failed_at is not None
        return row.id


def test_undelivered_mail_is_shown_to_the_office_and_sent_again_with_the_same_message_id(
    app, client, runner, smtp_server
):
    [message_id] = _queue(app, 1)
    email_id = _give_up(app)
    status = runner.invoke(args=["outbox", "status"])
    assert status.exit_code == 1
    assert "waiting 0, due 0, undelivered 1" in status.output

    with app.app_context():
        admin = f.user(db.session, email="admin@example.org", is_admin=True)
        organiser = f.user(db.session, email="org@example.org", roles=(("organiser", None),))
        db.session.commit()
        admin_stamp, organiser_stamp = admin.get_id(), organiser.get_id()
    with client.session_transaction() as s:
        s["_user_id"] = organiser_stamp
    assert client.get("/en/organiser/outbox/").status_code == 403
    with client.session_transaction() as s:
        s["_user_id"] = admin_stamp
    page = client.get("/ja/organiser/outbox/")
    assert page.status_code == 200
    assert "送信できなかったメール" in page.text
    assert "person0@example.org" in page.text
    assert "ConnectionRefusedError" in page.text
    assert f"/ja/organiser/outbox/{email_id}/resend" in page.text

    r = client.post(f"/en/organiser/outbox/{email_id}/resend")
    assert r.status_code == 302
    assert "will be sent again" in client.get(r.headers["Location"]).text
    with app.app_context():
        row = db.session.get(OutboxEmail, email_id)
        assert (row.failed_at, row.attempts) == (None, 0)
        entry = db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "requeued"))
        assert (entry.subject_type, entry.subject_id) == ("outbox_email", email_id)
    assert client.post("/en/organiser/outbox/999999/resend").status_code == 404

    app.config["MAIL_PORT"] = smtp_server.port
    assert runner.invoke(args=["outbox", "send"]).output.strip() == "sent 1, postponed 0"
    [message] = smtp_server.messages
    assert message["Message-ID"] == message_id
    status = runner.invoke(args=["outbox", "status"])
    assert (status.exit_code, status.output.strip()) == (0, "waiting 0, due 0, undelivered 0")


def test_outbox_requeue_command(app, runner):
    _queue(app, 1)
    email_id = _give_up(app)
    assert runner.invoke(args=["outbox", "requeue"]).exit_code == 2
    result = runner.invoke(args=["outbox", "requeue", "--all"])
    assert result.output.strip() == "requeued 1"
    assert runner.invoke(args=["outbox", "requeue", str(email_id)]).output.strip() == "requeued 0"
    with app.app_context():
        assert db.session.get(OutboxEmail, email_id).failed_at is None


def test_the_outbox_watcher_sends_due_mail_and_publishes_nothing_when_none_is_due(
    app_config, database_url, smtp_server
):
    """A worker's watcher looks every second; the commit that queued the mail sends nothing
    and publishes nothing itself."""
    from portal.app import create_app
    from portal.mail.services import queue_email
    from portal.tasks import celery_for, worker
    from tests.conftest import _empty_all_tables

    app = create_app(dict(app_config, MAIL_PORT=smtp_server.port, TASKS_EAGER=True))
    celery = celery_for(app)
    published = []
    celery_send = worker.send_outbox_now.apply_async

    def apply_async(*args, **kwargs):
        published.append(args)
        return celery_send(*args, **kwargs)

    worker.send_outbox_now.apply_async = apply_async
    try:
        assert worker.watch_outbox_once() is False  # nothing due: nothing published
        with app.test_request_context("/en/"):
            person = f.person(db.session, email="watch@example.org")
            queue_email(
                db.session,
                "watch@example.org",
                "accounts/password_changed",
                "en",
                person=person,
                reset_url="http://localhost/en/account/reset",
            )
            db.session.commit()
        assert smtp_server.messages == [] and published == []
        assert worker.watch_outbox_once() is True
        [message] = smtp_server.messages
        assert message["To"] == "watch@example.org"
        assert message["Subject"] == "Your password has been changed"
        assert published == [()]
        assert worker.watch_outbox_once() is False  # sent: nothing due any more
        assert published == [()]
    finally:
        del worker.send_outbox_now.apply_async
        celery.conf.task_always_eager = False
        app.extensions["portal_db"]["engine"].dispose()
        _empty_all_tables(database_url)  # its own app: the next test starts from nothing
