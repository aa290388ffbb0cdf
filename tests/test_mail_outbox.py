"""The outbox delivered for real over SMTP (aiosmtpd): languages, parts, links, retries."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from portal.accounts.models import User
from portal.db import db, utcnow
from portal.mail.models import OutboxEmail
from portal.mail.services import MAX_ATTEMPTS, send_due
from tests.test_accounts import (  # noqa: F401  (fixtures)
    SIGNUP,
    db_session,
    link_path,
    outbox,
)


def _send(runner) -> str:
    result = runner.invoke(args=["outbox", "send"])
    assert result.exit_code == 0, result.output
    return result.output.strip()


def _parts(message) -> tuple[str, str]:
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    return text.replace("\r\n", "\n"), html.replace("\r\n", "\n")


def test_verification_email_arrives_in_japanese_with_text_and_html_and_its_link_works(
    app, client, runner, smtp_server
):
    app.config["MAIL_PORT"] = smtp_server.port
    client.post("/en/account/signup", data=dict(SIGNUP, preferred_language="ja"))
    assert _send(runner) == "sent 1, postponed 0"
    [message] = smtp_server.messages
    assert message["To"] == "hanako.sato@example.org"
    assert message["Subject"] == "【確認メール】メールアドレスのご確認"
    assert message["Content-Language"] == "ja"
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    text, html = _parts(message)
    assert text.startswith("佐藤 花子 様\n")
    assert "メールアドレスの確認を完了してください。" in text
    assert "リンクの有効期限は48時間です。" in text
    assert '<html lang="ja">' in html
    assert "メールアドレスを確認する</a>" in html
    path = link_path(text)
    assert path.startswith("/ja/account/verify/")
    assert f'href="http://localhost{path}"' in html

    r = client.get(path)
    assert r.status_code == 302
    assert "メールアドレスの確認が完了しました。" in client.get(r.headers["Location"]).text
    with db_session(app) as s:
        assert s.scalar(sa.select(User)).email_verified_at is not None
        [row] = s.scalars(sa.select(OutboxEmail))
        assert row.sent_at is not None
        assert row.attempts == 1
    assert _send(runner) == "sent 0, postponed 0"  # nothing is sent twice


def test_verification_email_arrives_in_english_for_an_english_speaker(
    app, client, runner, smtp_server
):
    app.config["MAIL_PORT"] = smtp_server.port
    # The page was Japanese; the email follows the person's own choice.
    client.post(
        "/ja/account/signup",
        data=dict(
            SIGNUP,
            family_name="Example",
            given_name="Jane",
            romanized_name="Jane Example",
            preferred_language="en",
            family_name_kana="",
            given_name_kana="",
        ),
    )
    assert _send(runner) == "sent 1, postponed 0"
    [message] = smtp_server.messages
    assert message["Subject"] == "Please confirm your email address"
    assert message["Content-Language"] == "en"
    text, html = _parts(message)
    assert text.startswith("Dear Jane Example,\n")
    assert "The link works for 48 hours." in text
    assert "Confirm my email address</a>" in html
    path = link_path(text)
    assert path.startswith("/en/account/verify/")
    r = client.get(path)
    assert r.status_code == 302
    assert r.headers["Location"] == "/en/account/login"
    with db_session(app) as s:
        assert s.scalar(sa.select(User)).email_verified_at is not None


def test_send_due_keeps_the_email_while_the_server_is_down_then_delivers_it(
    app, client, runner, smtp_server
):
    assert app.config["MAIL_PORT"] == 1  # nothing listens there: the server is "down"
    client.post("/en/account/signup", data=dict(SIGNUP, preferred_language="en"))

    with app.app_context():
        before = utcnow()
        assert send_due(db.session) == (0, 1)
        row = db.session.scalar(sa.select(OutboxEmail))
        assert (row.attempts, row.sent_at, row.failed_at) == (1, None, None)
        assert row.last_error.startswith("ConnectionRefusedError")
        assert before + timedelta(seconds=59) <= row.next_attempt_at
        assert row.next_attempt_at <= utcnow() + timedelta(seconds=61)
        # Not due yet: nothing is tried.
        assert send_due(db.session) == (0, 0)
        assert row.attempts == 1

        # The next try fails too and waits twice as long.
        row.next_attempt_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
        before = utcnow()
        assert send_due(db.session) == (0, 1)
        assert row.attempts == 2
        assert before + timedelta(seconds=119) <= row.next_attempt_at
        assert row.next_attempt_at <= utcnow() + timedelta(seconds=121)
        row.next_attempt_at = utcnow() - timedelta(seconds=1)
        db.session.commit()

    assert smtp_server.messages == []
    app.config["MAIL_PORT"] = smtp_server.port  # the server is back
    assert _send(runner) == "sent 1, postponed 0"
    [message] = smtp_server.messages
    assert message["Subject"] == "Please confirm your email address"
    [row] = outbox(app)
    assert row.attempts == 3
    assert row.sent_at is not None


def test_send_due_gives_up_after_the_last_attempt(app, client):
    client.post("/en/account/signup", data=dict(SIGNUP, preferred_language="en"))
    with app.app_context():
        row = db.session.scalar(sa.select(OutboxEmail))
        row.attempts = MAX_ATTEMPTS - 1
        db.session.commit()
        assert send_due(db.session) == (0, 1)
        assert row.attempts == MAX_ATTEMPTS
        assert row.failed_at is not None
        row.next_attempt_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
        assert send_due(db.session) == (0, 0)  # given up: kept, not retried
        assert db.session.scalar(sa.select(sa.func.count(OutboxEmail.id))) == 1
