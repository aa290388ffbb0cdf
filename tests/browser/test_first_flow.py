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
