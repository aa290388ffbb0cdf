"""Log-in limits that hold (atomic, shared by workers, per client address behind the proxy)
and cannot be turned against the owner; limits on email-sending forms; security headers and
cookies (issue #12)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from portal.accounts.models import User
from portal.app import create_app
from portal.db import db
from portal.mail.models import OutboxEmail
from portal.security import CONTENT_SECURITY_POLICY
from tests import factories as f
from tests.conftest import free_port
from tests.test_accounts import is_logged_in, link_path, log_in, make_user, outbox


def _wrong(client, email, address="10.9.9.9"):
    return log_in(client, email, "wrong password", environ_base={"REMOTE_ADDR": address})


# -- log-in ----------------------------------------------------------------------------------


def test_strangers_cannot_lock_the_owner_out_the_reset_link_logs_in(app, client):
    _, email = make_user(app, preferred_language="en")
    for n in range(8):
        _wrong(app.test_client(), email, f"203.0.113.{n}")
    assert log_in(client, email).status_code == 429  # the password alone: not for now
    client.post("/en/account/password/forgot", data={"email": email})
    [mail] = [m for m in outbox(app) if m.template == "accounts/reset_password"]
    new = "a brand new password"
    r = client.post(link_path(mail.body_text), data={"password": new, "password_confirm": new})
    assert r.status_code == 302
    assert log_in(client, email, new).status_code == 302
    assert is_logged_in(client)


def test_parallel_guesses_do_not_slip_past_the_count(app):
    app.config.update(LOGIN_RATE_LIMIT=5)
    _, email = make_user(app)

    def guess(n):
        return _wrong(app.test_client(), email, f"198.51.100.{n}").status_code

    with ThreadPoolExecutor(max_workers=6) as pool:
        codes = list(pool.map(guess, range(12)))
    assert codes.count(400) <= 5  # checked passwords: never more than the limit
    assert codes.count(400) + codes.count(429) == 12


@pytest.fixture(scope="module")
def redis_url():
    """A Redis server of its own (the production storage of the counters)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    process.terminate()
    process.wait(timeout=10)


def test_two_workers_share_the_count_in_redis(app_config, database_url, redis_url, app):
    _, email = make_user(app)
    config = dict(app_config, RATELIMIT_STORAGE_URL=redis_url, LOGIN_RATE_LIMIT=5)
    workers = [create_app(config), create_app(config)]
    try:
        codes = [
            _wrong(workers[n % 2].test_client(), email, f"192.0.2.{n}").status_code
            for n in range(8)
        ]
    finally:
        for worker in workers:
            worker.extensions["portal_db"]["engine"].dispose()
    assert codes == [400] * 5 + [429] * 3


def test_behind_the_proxy_each_client_is_counted_by_its_own_address(app_config, app):
    make_user(app)
    config = dict(app_config, TRUSTED_PROXIES=1, LOGIN_ADDRESS_RATE_LIMIT="3 per 5 minutes")
    proxied = create_app(config)
    try:

        def attempt(forwarded_for):
            return proxied.test_client().post(
                "/en/account/login",
                data={"email": "nobody@example.org", "password": "wrong password"},
                environ_base={"REMOTE_ADDR": "127.0.0.1"},
                headers={"X-Forwarded-For": forwarded_for},
            )

        assert [attempt("198.51.100.7").status_code for _ in range(4)] == [400, 400, 400, 429]
        # Another visitor behind the same proxy is not slowed down.
        assert attempt("198.51.100.8").status_code == 400
        # A forged header in front of the real one does not help: the proxy's entry counts.
        assert attempt("10.0.0.1, 198.51.100.7").status_code == 429
    finally:
        proxied.extensions["portal_db"]["engine"].dispose()


# -- email-sending forms ---------------------------------------------------------------------


def test_password_reset_requests_are_limited_per_account_without_telling(app, client):
    _, email = make_user(app, preferred_language="en")
    pages = [client.post("/en/account/password/forgot", data={"email": email}) for _ in range(5)]
    assert [p.status_code for p in pages] == [200] * 5
    assert len({p.text for p in pages}) == 1  # the same answer every time
    assert [m.template for m in outbox(app)] == ["accounts/reset_password"] * 3


def test_email_forms_are_limited_per_address_with_a_translated_page(app, client):
    app.config.update(EMAIL_FORM_RATE_LIMIT="2 per 15 minutes")
    codes = [
        client.post("/ja/account/password/forgot", data={"email": f"x{n}@example.org"})
        for n in range(3)
    ]
    assert [r.status_code for r in codes] == [200, 200, 429]
    assert "試行回数が多すぎます。数分待ってからもう一度お試しください。" in codes[2].text
    signup = client.post("/en/account/signup", data={"email": "new@example.org"})
    assert signup.status_code == 400  # another form has its own count: the form is checked
    other_address = client.post(
        "/en/account/password/forgot",
        data={"email": "y@example.org"},
        environ_base={"REMOTE_ADDR": "10.8.8.8"},
    )
    assert other_address.status_code == 200


def test_signup_is_limited(app, client):
    app.config.update(EMAIL_FORM_RATE_LIMIT="1 per 15 minutes")
    data = {"email": "a@example.org", "password": "a long password", "password_confirm": "x"}
    assert client.post("/en/account/signup", data=data).status_code in (200, 400)
    r = client.post("/en/account/signup", data=data)
    assert r.status_code == 429
    assert "Too many attempts. Please wait a few minutes and try again." in r.text
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(OutboxEmail.id))) <= 1


# -- headers and cookies ---------------------------------------------------------------------


def production_config(app_config: dict) -> dict:
    return dict(
        app_config,
        ENV="production",
        TESTING=False,
        SECRET_KEY="a-production-secret-key-of-enough-length-0123456789",
        ALLOW_SQLITE_IN_PRODUCTION=True,
        BASE_URL="https://portal.example",
        ISSUER_NAME="一般財団法人 架空金属研究財団",
        ISSUER_NAME_EN="Fictional Metals Research Foundation",
        ISSUER_REGISTRATION_NUMBER="T1234567890123",
    )


def test_production_pages_send_the_security_headers(app_config, app):
    production = create_app(production_config(app_config))
    try:
        response = production.test_client().get("/en/", base_url="https://portal.example")
    finally:
        production.extensions["portal_db"]["engine"].dispose()
    headers = response.headers
    assert response.status_code == 200
    assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in CONTENT_SECURITY_POLICY
    assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
    assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_no_template_has_an_inline_script_or_event_handler():
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    found = []
    for path in [
        *root.glob("portal/templates/**/*.html"),
        *root.glob("plugins/*/templates/**/*.html"),
    ]:
        text = path.read_text(encoding="utf-8")
        if re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text) or re.search(r"\son[a-z]+\s*=", text):
            found.append(str(path.relative_to(root)))
        if "javascript:" in text:
            found.append(str(path.relative_to(root)))
    assert found == []


def test_remember_me_cookie_is_lax_secure_and_http_only(app_config, app):
    _, email = make_user(app)
    production = create_app(production_config(app_config))
    try:
        client = production.test_client()
        r = client.post(
            "/en/account/login",
            data={"email": email, "password": f.PASSWORD, "remember": "y"},
            base_url="https://portal.example",
        )
    finally:
        production.extensions["portal_db"]["engine"].dispose()
    cookies = [c for c in r.headers.getlist("Set-Cookie") if c.startswith("remember_token=")]
    assert len(cookies) == 1
    parts = {p.strip().split("=")[0].lower(): p.strip() for p in cookies[0].split(";")}
    assert "secure" in parts and "httponly" in parts
    assert parts["samesite"] == "SameSite=Lax"


def test_user_lookup_by_stamp_ignores_unicode_digits(app, client):
    with app.app_context():
        user = db.session.scalar(sa.select(User).limit(1)) or f.user(db.session)
        db.session.commit()
    with client.session_transaction() as flask_session:
        flask_session["_user_id"] = "²:1"
    assert client.get("/en/account/profile").status_code == 302
    assert user is not None


def test_log_in_still_works_when_the_rate_limit_storage_is_down(app_config, app):
    _, email = make_user(app)
    port = free_port()  # nothing listens there
    down = create_app(dict(app_config, RATELIMIT_STORAGE_URL=f"redis://127.0.0.1:{port}/0"))
    try:
        client = down.test_client()
        assert log_in(client, email, "wrong password").status_code == 400
        assert log_in(client, email).status_code == 302
        assert client.post("/en/account/password/forgot", data={"email": email}).status_code == 200
    finally:
        down.extensions["portal_db"]["engine"].dispose()
