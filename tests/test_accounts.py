"""Accounts: sign up, email verification, log in and out, rate limit, safe redirects, CSRF.

The helpers at the top (catalogue, db_session, outbox, link_path) are shared by the other
tests/test_accounts_*.py and tests/test_mail_*.py modules.
"""

from __future__ import annotations

import re
import time
from contextlib import contextmanager
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from itsdangerous import TimestampSigner

from portal.accounts import tokens
from portal.accounts.models import LoginAttempt, Person, Sector, User
from portal.accounts.passwords import needs_rehash
from portal.accounts.services import is_safe_next
from portal.app import create_app
from portal.audit import AuditEntry
from portal.db import db
from portal.mail.models import OutboxEmail
from tests import factories as f

# -- shared helpers ----------------------------------------------------------------------------


@contextmanager
def db_session(app):
    """A session in its own app context, committed on leaving (never open during a request)."""
    with app.app_context():
        yield db.session
        db.session.commit()


def outbox(app, template: str | None = None) -> list[OutboxEmail]:
    with db_session(app) as s:
        stmt = sa.select(OutboxEmail).order_by(OutboxEmail.id)
        if template:
            stmt = stmt.where(OutboxEmail.template == template)
        return list(s.scalars(stmt))


def link_path(text: str) -> str:
    """The path of the first portal link in an email body."""
    match = re.search(r"https?://[^\s\"<>]+", text)
    assert match, text
    parts = urlsplit(match.group(0))
    return parts.path + (f"?{parts.query}" if parts.query else "")


def make_user(app, **kw) -> tuple[int, str]:
    with db_session(app) as s:
        u = f.user(s, **kw)
        return u.id, u.email


def log_in(client, email, password=f.PASSWORD, lang="en", environ_base=None, **extra):
    return client.post(
        f"/{lang}/account/login",
        data={"email": email, "password": password, **extra},
        environ_base=environ_base or {},
    )


def is_logged_in(client) -> bool:
    r = client.get("/en/account/profile")
    return r.status_code == 200


SIGNUP = dict(
    email="Hanako.Sato@Example.org",
    password="a long password",
    password_confirm="a long password",
    family_name="佐藤",
    given_name="花子",
    family_name_kana="さとう",
    given_name_kana="はなこ",
    romanized_name="Hanako Sato",
    affiliation="架空大学",
    sector="university",
    country="JP",
    preferred_language="ja",
)


# -- sign up ---------------------------------------------------------------------------------


def test_signup_creates_unverified_person_and_user_and_queues_verification(app, client):
    r = client.post("/ja/account/signup", data=SIGNUP)
    assert r.status_code == 200
    assert "hanako.sato@example.org に確認メールをお送りしました。" in r.text
    with db_session(app) as s:
        user = s.scalar(sa.select(User))
        assert user.email == "hanako.sato@example.org"
        assert user.email_verified_at is None
        assert user.password_hash.startswith("$argon2id$")
        person = user.person
        assert (person.family_name, person.given_name) == ("佐藤", "花子")
        assert (person.family_name_kana, person.given_name_kana) == ("さとう", "はなこ")
        assert person.romanized_name == "Hanako Sato"
        assert person.affiliation == "架空大学"
        assert person.sector == Sector.university
        assert person.country == "JP"
        assert person.preferred_language == "ja"
        assert person.email == "hanako.sato@example.org"
        actions = [e.action for e in s.scalars(sa.select(AuditEntry))]
        assert actions == ["account.created"]
    [mail] = outbox(app)
    assert mail.to_address == "hanako.sato@example.org"
    assert mail.template == "accounts/verify_email"
    assert mail.language == "ja"
    assert mail.subject == "【確認メール】メールアドレスのご確認"
    assert mail.body_text.startswith("佐藤 花子 様\n")
    assert "/ja/account/verify/" in mail.body_text
    assert "/ja/account/verify/" in mail.body_html


def test_signup_page_in_both_languages(client):
    ja = client.get("/ja/account/signup")
    en = client.get("/en/account/signup")
    assert ja.status_code == 200 and en.status_code == 200
    for text in ("新規登録", "メールアドレス", "パスワード", "姓（ふりがな）", "大学関係者"):
        assert text in ja.text
    for text in ("Sign up", "Family name (kana)", "University", "Government and other"):
        assert text in en.text
    # Japanese visitors start with Japan chosen; the form uses the phone-friendly classes.
    assert '<option selected value="JP">日本</option>' in ja.text
    assert 'class="stacked"' in ja.text and 'class="two-cols"' in ja.text


def test_signup_bad_input_rerenders_with_translated_errors_and_keeps_input(app, client):
    data = dict(
        SIGNUP,
        email="not-an-address",
        password="first long password",
        password_confirm="second long password",
        given_name="",
        affiliation="架空金属株式会社",
    )
    r = client.post("/ja/account/signup", data=data)
    assert r.status_code == 400
    errors = re.findall(r'<p class="error" id="[^"]*-error">([^<]*)</p>', r.text)
    assert errors == [
        "正しいメールアドレスを入力してください（例：name@example.com）。",
        "2つのパスワードが一致しません。",
        "この項目を入力してください。",
    ]
    assert 'value="not-an-address"' in r.text
    assert 'value="佐藤"' in r.text
    assert 'value="さとう"' in r.text
    assert 'value="Hanako Sato"' in r.text
    assert 'value="架空金属株式会社"' in r.text
    assert (
        '<input checked id="sector-1" name="sector" required type="radio" value="university">'
        in r.text
    )
    assert '<option selected value="JP">' in r.text
    # Passwords are not sent back.
    assert "first long password" not in r.text
    with db_session(app) as s:
        assert s.scalar(sa.select(sa.func.count(User.id))) == 0
        assert s.scalar(sa.select(sa.func.count(OutboxEmail.id))) == 0


def test_signup_missing_fields_in_english(client):
    r = client.post("/en/account/signup", data={"email": "x@example.org"})
    assert r.status_code == 400
    errors = re.findall(r'<p class="error" id="[^"]*-error">([^<]*)</p>', r.text)
    assert errors == [
        "Please choose a password.",
        "Please enter the password a second time.",
        "Please fill in this field.",
        "Please fill in this field.",
        "Please fill in this field.",
        "Please fill in this field.",
        "Please choose a sector.",
        "Please choose a country or region.",
        "Please choose a language.",
    ]
    assert 'value="x@example.org"' in r.text


def test_signup_password_needs_ten_characters_and_kana_must_be_kana(client):
    data = dict(SIGNUP, password="short9char", password_confirm="short9char")
    assert client.post("/en/account/signup", data=data).status_code == 200  # exactly 10: fine
    data = dict(
        SIGNUP,
        email="other@example.org",
        password="nine char",
        password_confirm="nine char",
        family_name_kana="Sato",
    )
    r = client.post("/en/account/signup", data=data)
    assert r.status_code == 400
    errors = re.findall(r'<p class="error" id="[^"]*-error">([^<]*)</p>', r.text)
    assert errors == [
        "The password must be at least 10 characters long.",
        "Please write the reading in hiragana or katakana.",
    ]


def test_signup_with_existing_email_says_the_same_and_emails_the_owner(app, client):
    make_user(app, email="owner@example.org", preferred_language="en")
    fresh = client.post("/en/account/signup", data=dict(SIGNUP, email="new@example.org"))
    again = client.post("/en/account/signup", data=dict(SIGNUP, email="Owner@example.org"))
    assert fresh.status_code == again.status_code == 200
    assert again.text == fresh.text.replace("new@example.org", "owner@example.org")
    with db_session(app) as s:
        assert s.scalar(sa.select(sa.func.count(User.id))) == 2
        owner = s.scalar(sa.select(User).where(User.email == "owner@example.org"))
        assert owner.person.family_name == "山田"  # untouched
    mails = outbox(app)
    assert [(m.to_address, m.template) for m in mails] == [
        ("new@example.org", "accounts/verify_email"),
        ("owner@example.org", "accounts/already_registered"),
    ]
    assert mails[1].subject == "You already have an account"
    assert mails[1].language == "en"
    assert "/en/account/login" in mails[1].body_text
    assert "/en/account/password/forgot" in mails[1].body_text


def test_signed_in_person_is_sent_from_signup_to_profile(app, client):
    _, email = make_user(app)
    log_in(client, email)
    r = client.get("/en/account/signup")
    assert r.status_code == 302
    assert r.headers["Location"] == "/en/account/profile"


# -- email verification ----------------------------------------------------------------------


def test_verification_link_verifies_the_email(app, client):
    client.post("/en/account/signup", data=dict(SIGNUP, preferred_language="en"))
    [mail] = outbox(app)
    r = client.get(link_path(mail.body_text))
    assert r.status_code == 302
    assert r.headers["Location"] == "/en/account/login"
    with db_session(app) as s:
        user = s.scalar(sa.select(User))
        assert user.email_verified_at is not None
        assert [e.action for e in s.scalars(sa.select(AuditEntry).order_by(AuditEntry.id))] == [
            "account.created",
            "email.verified",
        ]
    # Following it again changes nothing and does no harm.
    assert client.get(link_path(mail.body_text)).status_code == 302


def test_verification_link_tampered_or_for_old_address_does_not_work(app, client):
    client.post("/ja/account/signup", data=SIGNUP)
    [mail] = outbox(app)
    path = link_path(mail.body_text)
    r = client.get(path[:-3] + "abc")
    assert r.status_code == 400
    assert "このリンクは無効になっています。" in r.text
    with db_session(app) as s:
        s.scalar(sa.select(User)).email = "changed@example.org"
    assert client.get(path).status_code == 400
    with db_session(app) as s:
        assert s.scalar(sa.select(User)).email_verified_at is None


class _PastSigner(TimestampSigner):
    """Signs as if 49 hours ago (the test's clock for an expired link)."""

    def get_timestamp(self) -> int:
        return int(time.time()) - 49 * 3600


def test_verification_link_expires_after_48_hours(app, client):
    uid, email = make_user(app, verified=False)
    from portal.accounts.services import _fingerprint

    with app.app_context():
        old = tokens.serializer(tokens.VERIFY_EMAIL, signer=_PastSigner).dumps(
            {"u": uid, "e": _fingerprint(email)}
        )
        fresh = tokens.make_token(tokens.VERIFY_EMAIL, {"u": uid, "e": _fingerprint(email)})
        # A link for another purpose does not work as a verification link.
        other = tokens.make_token(tokens.RESET_PASSWORD, {"u": uid, "e": _fingerprint(email)})
    r = client.get(f"/en/account/verify/{old}")
    assert r.status_code == 400
    assert "This link has expired. Please ask for a new one." in r.text
    assert client.get(f"/en/account/verify/{other}").status_code == 400
    assert client.get(f"/en/account/verify/{fresh}").status_code == 302


def test_unverified_user_can_log_in_sees_notice_and_can_resend(app, client):
    _, email = make_user(app, verified=False, preferred_language="ja")
    r = log_in(client, email, lang="ja")
    assert r.status_code == 302
    page = client.get("/ja/")
    assert "確認メールのリンクから、メールアドレスの確認を完了してください。" in page.text
    assert "確認メールを再送する" in page.text
    r = client.post("/ja/account/verify/resend", data={"next": "/ja/"})
    assert r.status_code == 302
    assert r.headers["Location"] == "/ja/"
    [mail] = outbox(app)
    assert (mail.to_address, mail.template, mail.language) == (
        email,
        "accounts/verify_email",
        "ja",
    )
    client.get(link_path(mail.body_text))
    assert "確認メールを再送する" not in client.get("/ja/").text


def test_verified_user_sees_no_notice_and_resend_sends_nothing(app, client):
    _, email = make_user(app)
    log_in(client, email)
    assert "Send the email again" not in client.get("/en/").text
    client.post("/en/account/verify/resend")
    assert outbox(app) == []


# -- log in and out --------------------------------------------------------------------------


def test_login_and_logout(app, client):
    uid, email = make_user(app, email="Taro@Example.org")
    assert client.get("/ja/account/login").status_code == 200
    assert "ログイン" in client.get("/ja/account/login").text
    r = log_in(client, "  TARO@example.org ")
    assert r.status_code == 302
    assert r.headers["Location"] == "/en/"
    assert is_logged_in(client)
    with db_session(app) as s:
        assert s.get(User, uid).last_login_at is not None
    assert client.get("/en/account/logout").status_code == 405  # only POST logs out
    r = client.post("/en/account/logout")
    assert r.status_code == 302
    assert r.headers["Location"] == "/en/"
    assert not is_logged_in(client)


def test_login_with_wrong_password_or_unknown_email(app, client):
    _, email = make_user(app)
    for attempt in (dict(email=email, password="wrong password"), dict(email="nobody@x.org")):
        r = client.post("/ja/account/login", data={"password": "wrong password", **attempt})
        assert r.status_code == 400
        assert "メールアドレスまたはパスワードが正しくありません。" in r.text
        assert f'value="{attempt["email"]}"' in r.text
    assert not is_logged_in(client)
    with db_session(app) as s:
        assert s.scalar(sa.select(sa.func.count(LoginAttempt.id))) == 2


def test_login_rehashes_an_outdated_password_hash(app, client, production_password_hashing):
    # The suite hashes with cheap parameters (tests/conftest.py); this test runs with the
    # production hasher, whose parameters are argon2-cffi's RFC 9106 low-memory profile.
    assert (
        production_password_hashing.time_cost,
        production_password_hashing.memory_cost,
        production_password_hashing.parallelism,
    ) == (3, 65536, 4)
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
    uid, email = make_user(app)
    with db_session(app) as s:
        s.get(User, uid).password_hash = weak.hash(f.PASSWORD)
    assert needs_rehash(weak.hash("x"))
    log_in(client, email)
    with db_session(app) as s:
        new_hash = s.get(User, uid).password_hash
    assert not needs_rehash(new_hash)
    assert new_hash.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    client.post("/en/account/logout")
    assert log_in(client, email).status_code == 302


def test_remember_me_sets_a_remember_cookie(app, client):
    _, email = make_user(app)
    log_in(client, email, remember="y")
    assert client.get_cookie("remember_token") is not None
    other = app.test_client()
    log_in(other, email)
    assert other.get_cookie("remember_token") is None


# -- rate limit ------------------------------------------------------------------------------
# Counters: portal/ratelimit.py, what is counted: portal/security.py; tests/test_security_limits.py
# and tests/test_ratelimit.py have more.


def test_login_rate_limit_per_account_points_to_the_reset_link(app, client):
    _, email = make_user(app)
    for n in range(5):
        r = log_in(client, email, "wrong password", environ_base={"REMOTE_ADDR": f"10.0.0.{n}"})
        assert r.status_code == 400
    # The sixth try answers 429, even with the right password, from any address: the
    # password alone does not log in for now, the emailed reset link does.
    r = client.post(
        "/ja/account/login",
        data={"email": email, "password": f.PASSWORD},
        environ_base={"REMOTE_ADDR": "10.0.0.99"},
    )
    assert r.status_code == 429
    assert (
        "このアカウントではログインの失敗が続いたため、しばらくの間パスワードだけではログインできません。"
        "「パスワードをお忘れの方」からメールでリンクを受け取ってください。リンクはすぐに使えます。"
        in r.text
    )
    assert not is_logged_in(client)
    r = log_in(client, email)
    assert r.status_code == 429
    assert "its password alone does not log in for now" in r.text
    with db_session(app) as s:
        assert s.scalar(sa.select(sa.func.count(LoginAttempt.id))) == 5


def test_login_rate_limit_per_remote_address_slows_that_address_only(app, client):
    app.config.update(LOGIN_ADDRESS_RATE_LIMIT="5 per 5 minutes")
    _, email = make_user(app)
    for n in range(5):
        r = log_in(client, f"guess{n}@example.org", environ_base={"REMOTE_ADDR": "10.1.1.1"})
        assert r.status_code == 400
    r = log_in(client, email, environ_base={"REMOTE_ADDR": "10.1.1.1"})
    assert r.status_code == 429
    assert "Too many attempts from your network. Please wait a minute and try again." in r.text
    r = log_in(client, email, environ_base={"REMOTE_ADDR": "10.2.2.2"})
    assert r.status_code == 302


def test_login_rate_limit_follows_the_settings(app, client):
    app.config.update(LOGIN_RATE_LIMIT=2, LOGIN_RATE_WINDOW=60)
    _, email = make_user(app)
    log_in(client, email, "wrong password")
    log_in(client, email, "wrong password")
    assert log_in(client, email).status_code == 429


def test_successful_login_clears_the_account_counter(app, client):
    _, email = make_user(app)
    for _ in range(4):
        log_in(client, email, "wrong password", environ_base={"REMOTE_ADDR": "10.3.0.1"})
    assert log_in(client, email, environ_base={"REMOTE_ADDR": "10.3.0.2"}).status_code == 302
    client.post("/en/account/logout")
    with db_session(app) as s:
        assert s.scalar(sa.select(sa.func.count(LoginAttempt.id))) == 0
    for _ in range(4):
        r = log_in(client, email, "wrong password", environ_base={"REMOTE_ADDR": "10.3.0.3"})
        assert r.status_code == 400
    assert log_in(client, email, environ_base={"REMOTE_ADDR": "10.3.0.4"}).status_code == 302


# -- safe redirects --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "/en/account/profile",
        "/ja/events/meeting-93/",
        "/en/?page=2&q=%E7%A0%94",
        "/",
    ],
)
def test_is_safe_next_accepts_paths_on_this_site(url):
    assert is_safe_next(url) is True


@pytest.mark.parametrize(
    "url",
    [
        None,
        "",
        "https://evil.example/",
        "http://localhost/en/",
        "//evil.example/path",
        "///evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "\\/evil.example",
        "/\t/evil.example",
        "/\n/evil.example",
        " /evil",
        "/%2F/evil.example",
        "/%5Cevil.example",
        "/%09/evil.example",
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "evil.example",
        "en/account",
        "https:/evil.example",
        "/en/\u3000/x",
        "/" + "a" * 3000,
    ],
)
def test_is_safe_next_rejects_other_hosts_and_tricks(url):
    assert is_safe_next(url) is False


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "javascript:alert(1)",
        "/%2F%2Fevil.example",
        "/\t/evil.example",
    ],
)
def test_open_redirect_attempts_land_on_the_home_page(app, client, target):
    _, email = make_user(app)
    r = log_in(client, email, next=target)
    assert r.status_code == 302
    assert r.headers["Location"] == "/en/"


def test_login_follows_a_safe_next_and_login_required_pages_send_there(app, client):
    _, email = make_user(app)
    r = client.get("/ja/account/profile")
    assert r.status_code == 302
    assert r.headers["Location"] == "/ja/account/login?next=%2Fja%2Faccount%2Fprofile"
    page = client.get(r.headers["Location"])
    assert 'name="next" type="hidden" value="/ja/account/profile"' in page.text
    r = log_in(client, email, lang="ja", next="/ja/account/profile")
    assert r.headers["Location"] == "/ja/account/profile"


# -- CSRF ------------------------------------------------------------------------------------


@pytest.fixture
def csrf_app(app, app_config):
    """The same portal with CSRF protection on, as in production."""
    csrf = create_app(dict(app_config, WTF_CSRF_ENABLED=True))
    yield csrf
    csrf.extensions["portal_db"]["engine"].dispose()


def test_csrf_is_enforced_on_login_and_logout(csrf_app):
    _, email = make_user(csrf_app)
    client = csrf_app.test_client()
    r = client.post("/en/account/login", data={"email": email, "password": f.PASSWORD})
    assert r.status_code == 400
    assert not is_logged_in(client)
    page = client.get("/en/account/login")
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text).group(1)
    r = client.post(
        "/en/account/login", data={"email": email, "password": f.PASSWORD, "csrf_token": token}
    )
    assert r.status_code == 302
    assert is_logged_in(client)
    # Logging out needs the token too, so another site cannot log a person out.
    assert client.post("/en/account/logout").status_code == 400
    assert is_logged_in(client)


def test_csrf_is_enforced_on_signup(csrf_app):
    client = csrf_app.test_client()
    r = client.post("/en/account/signup", data=SIGNUP)
    assert r.status_code == 400
    with db_session(csrf_app) as s:
        assert s.scalar(sa.select(sa.func.count(Person.id))) == 0
