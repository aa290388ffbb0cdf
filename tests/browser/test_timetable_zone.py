"""The timetable in Chromium: times in the event's zone, the reader's own time beside them."""

from __future__ import annotations

from datetime import timedelta

from portal.i18n import BilingualText
from tests import factories as f


def _workshop(app) -> str:
    from portal.db import db
    from portal.programme import services

    with app.app_context():
        s = db.session
        series = f.series(s, "workshop")
        start = f.at(2027, 6, 10, 13, 0)  # 09:00 in Boston, 22:00 in Tokyo
        event = f.event(s, series, starts_at=start, timezone="America/New_York")
        services.save_item(
            s,
            event,
            kind="session",
            title=BilingualText(en="Opening session"),
            room="Hall",
            starts_at=start,
            ends_at=start + timedelta(hours=1),
            actor=None,
        )
        s.commit()
        return event.slug


def test_reader_zone_beside_event_zone(browser, live_server):
    slug = _workshop(live_server.app)
    context = browser.new_context(locale="en-GB", timezone_id="Asia/Tokyo")
    page = context.new_page()
    try:
        page.goto(f"{live_server.url}/en/events/{slug}/programme/")
        first = page.locator(".timetable .when").first
        assert first.locator("time").first.inner_text() == "09:00"
        assert first.locator(".reader-time").first.inner_text().strip() == "(22:00)"
        assert "Asia/Tokyo" in page.locator("#timezone-note").inner_text()
    finally:
        context.close()
    same = browser.new_context(locale="en-GB", timezone_id="America/New_York")
    page = same.new_page()
    try:
        page.goto(f"{live_server.url}/en/events/{slug}/programme/")
        page.locator(".timetable").wait_for()
        assert page.locator(".reader-time").count() == 0
    finally:
        same.close()
