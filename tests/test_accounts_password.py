"""Password reset by emailed link: same answer for unknown addresses, expiry, single use."""

from __future__ import annotations

import re
import time

import sqlalchemy as sa
from itsdangerous import TimestampSigner

from portal.accounts import tokens
from portal.accounts.models import User
from portal.accounts.passwords import verify_password
from portal.audit import AuditEntry
from tests import factories as f
from tests.test_accounts import (  # noqa: F401  (fixtures)
    db_session,
    is_logged_in,
    link_path,
    log_in,
    make_user,
    outbox,
)

NEW = "a brand new password"


def _errors(text: str) -> list[str]:
    return re.findall(r'<p class="error" id="[^"]*-error">([^<]*)</p>', text)


def test_reset_request_answers_the_same_whether_or_not_the_account_exists(app, client):
    make_user(app, email="known@example.org", preferred_language="ja")
    known = client.post("/ja/account/password/forgot", data={"email": "Known@example.org"})
    unknown = client.post("/ja/account/password/forgot", data={"email": "nobody@example.org"})
    assert known.status_code == unknown.status_code == 200
    assert unknown.text == known.text.replace("known@example.org", "nobody@example.org")
    assert "パスワード再設定用のリンクをお送りしました。" in known.text
    [mail] = outbox(app)
    assert (mail.to_address, mail.template, mail.language) == (
        "known@example.org",
        "accounts/reset_password",
        "ja",
    )
    assert mail.subject == "新しいパスワードの設定"
    assert "/ja/account/password/reset/" in mail.body_text
    assert "リンクの有効期限は60分で、一度だけ使用できます。" in mail.body_text


def test_reset_request_with_bad_address_keeps_it_and_says_why(client):
    r = client.post("/en/account/password/forgot", data={"email": "not an address"})
    assert r.status_code == 400
    assert _errors(r.text) == ["Please enter a valid email address, like name@example.com."]
    assert 'value="not an address"' in r.text


def test_reset_link_sets_a_new_password_once(app, client):
    uid, email = make_user(app, preferred_language="en")
    client.post("/en/account/password/forgot", data={"email": email})
    [mail] = outbox(app)
    path = link_path(mail.body_text)
    assert client.get(path).status_code == 200
    # Mismatching passwords: the form says so and nothing changes.
    r = client.post(path, data={"password": NEW, "password_confirm": "something else"})
    assert r.status_code == 400
    assert _errors(r.text) == ["The two passwords are not the same."]
    r = client.post(path, data={"password": NEW, "password_confirm": NEW})
    assert r.status_code == 302
    assert r.headers["Location"] == "/en/account/login"
    with db_session(app) as s:
        user = s.get(User, uid)
        assert verify_password(user.password_hash, NEW)
        actions = [e.action for e in s.scalars(sa.select(AuditEntry).order_by(AuditEntry.id))]
        assert actions == ["password.reset_requested", "password.reset"]
    assert [m.template for m in outbox(app)] == [
        "accounts/reset_password",
        "accounts/password_changed",
    ]
    # Used once, the link is spent.
    r = client.get(path)
    assert r.status_code == 400
    assert "This link is not valid any more. Please ask for a new one." in r.text
    r = client.post(
        path, data={"password": "yet another password", "password_confirm": "yet another password"}
    )
    assert r.status_code == 400
    assert log_in(client, email, f.PASSWORD).status_code == 400
    assert log_in(client, email, NEW).status_code == 302


def test_reset_link_stops_working_when_the_password_changed_meanwhile(app, client):
    uid, email = make_user(app)
    client.post("/en/account/password/forgot", data={"email": email})
    path = link_path(outbox(app)[0].body_text)
    log_in(client, email)
    client.post(
        "/en/account/profile/password",
        data={
            "password-current_password": f.PASSWORD,
            "password-password": NEW,
            "password-password_confirm": NEW,
        },
    )
    client.post("/en/account/logout")
    assert client.get(path).status_code == 400


class _HourAgoSigner(TimestampSigner):
    def get_timestamp(self) -> int:
        return int(time.time()) - 3601


def test_reset_link_expires_after_an_hour(app, client):
    uid, _ = make_user(app)
    with app.app_context():
        from portal.db import db

        stamp = db.session.get(User, uid).password_changed_at.isoformat()
        old = tokens.serializer(tokens.RESET_PASSWORD, signer=_HourAgoSigner).dumps(
            {"u": uid, "p": stamp}
        )
        db.session.rollback()
    r = client.get(f"/ja/account/password/reset/{old}")
    assert r.status_code == 400
    assert "このリンクは有効期限が切れています。" in r.text
    r = client.post(
        f"/ja/account/password/reset/{old}", data={"password": NEW, "password_confirm": NEW}
    )
    assert r.status_code == 400
    with db_session(app) as s:
        assert not verify_password(s.get(User, uid).password_hash, NEW)


def test_reset_logs_out_every_other_session(app, client):
    uid, email = make_user(app)
    phone = app.test_client()
    log_in(phone, email, remember="y")
    assert is_logged_in(phone)
    client.post("/en/account/password/forgot", data={"email": email})
    path = link_path(outbox(app)[0].body_text)
    client.post(path, data={"password": NEW, "password_confirm": NEW})
    assert not is_logged_in(phone)
    # The remember-me cookie does not bring the old session back either.
    assert phone.get_cookie("remember_token") is not None
    assert not is_logged_in(phone)


def test_reset_also_confirms_an_unverified_address(app, client):
    uid, email = make_user(app, verified=False)
    client.post("/en/account/password/forgot", data={"email": email})
    path = link_path(outbox(app)[0].body_text)
    client.post(path, data={"password": NEW, "password_confirm": NEW})
    with db_session(app) as s:
        assert s.get(User, uid).email_verified_at is not None
