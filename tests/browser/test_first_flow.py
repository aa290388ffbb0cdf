"""The first flow in a real browser: open /, switch language, sign up, verify by email, log in,
open an event."""

from __future__ import annotations

import re

from tests import factories as f


def _make_event(app):
    from portal.db import db

    with app.app_context():
        e = f.event(db.session)
        db.session.commit()
        return e.slug


def test_open_home_and_switch_language(page, live_server):
    slug = _make_event(live_server.app)
    page.goto(live_server.url + "/")
    assert page.url.endswith("/ja/")  # the browser prefers Japanese
    assert page.locator("h1").inner_text() == "今後のイベント"
    page.get_by_role("link", name="English").click()
    assert page.url.endswith("/en/")
    assert page.locator("h1").inner_text() == "Upcoming events"
    page.locator(f'a[href="/en/events/{slug}/"]').click()
    assert re.search(rf"/en/events/{slug}/$", page.url)
    page.get_by_role("link", name="日本語").click()
    assert page.url.endswith(f"/ja/events/{slug}/")
    assert page.locator("h2").first.inner_text() == "プログラム"


def test_sign_up_verify_by_email_log_in_and_open_an_event(page, live_server, smtp_server):
    from portal.db import db
    from portal.mail.services import send_due

    slug = _make_event(live_server.app)
    page.goto(live_server.url + "/en/")
    page.get_by_role("link", name="Sign up").click()
    page.get_by_label("Email").fill("hana.example@example.org")
    page.get_by_label("Password", exact=True).fill("a long enough password")
    page.get_by_label("Password (again)").fill("a long enough password")
    page.get_by_label("Family name", exact=True).fill("見本")
    page.get_by_label("Given name", exact=True).fill("花子")
    page.get_by_label("Name in Latin letters").fill("Hanako Mihon")
    page.get_by_label("Affiliation").fill("Fictional University")
    page.get_by_label("University").check()
    page.get_by_label("Country or region").select_option("JP")
    page.get_by_label("Preferred language").select_option("en")
    page.get_by_role("button", name="Create my account").click()
    assert page.locator(".flash-error").count() == 0

    # The verification email goes through the outbox and a real SMTP server.
    with live_server.app.app_context():
        assert send_due(db.session) == (1, 0)
    assert len(smtp_server.messages) == 1
    message = smtp_server.messages[0]
    assert message["To"] == "hana.example@example.org"
    text = message.get_body(("plain",)).get_content()
    link = re.search(r"https?://\S+/verify/\S+", text).group(0)
    page.goto(link)
    page.get_by_label("Email").fill("hana.example@example.org")
    page.get_by_label("Password", exact=True).fill("a long enough password")
    page.get_by_role("button", name="Log in").click()
    assert page.get_by_role("link", name="Hanako Mihon").is_visible()
    assert page.get_by_role("button", name="Send the email again").count() == 0

    page.goto(f"{live_server.url}/en/events/{slug}/")
    assert page.locator("h1").inner_text() == "Meeting " + slug.split("-")[1]
