"""The page parts shared between areas, in Chromium with axe-core (the conftest checks every
page opened): the affiliation section of the speaker pages (macro ``affiliation_section``)
and the print layout of the reception lists (``print_layout.html``), in both languages."""

from __future__ import annotations

import pytest

from portal.db import db
from portal.i18n import BilingualText
from portal.registration.signup import register
from tests import factories as f
from tests.browser.test_accessibility import _log_in

pytestmark = pytest.mark.browser


def _world(app) -> dict:
    from tests.test_speakers_support import speaker

    with app.app_context():
        s = db.session
        series = f.series(s)
        event = f.event(s, series, title=BilingualText(ja="第1回 研究会", en="Meeting 1"))
        f.enable(s, event, "exchange_meeting", capacity=10, price=3000)
        f.user(s, email="office@example.org", roles=(("organiser", None),))
        profile = speaker(s, organisation=BilingualText(ja="見本大学", en="Sample University"))
        own = f.user(s, email="speaker@example.org")
        own.person_id = profile.person_id
        register(s, event, f.person(s, family_name="長谷川"), mode="onsite", privacy_accepted=True)
        s.commit()
        return {"slug": event.slug, "person": profile.person_id, "speaker": own.email}


HEADINGS = {"ja": "所属履歴", "en": "Affiliation history"}


def _affiliation_section(page, lang: str, action: str) -> None:
    section = page.locator("section", has=page.locator("h2", has_text=HEADINGS[lang]))
    assert section.count() == 1
    assert section.locator("table td").first.inner_text().strip() in {
        "見本大学",
        "Sample University",
    }
    form = section.locator("form")
    assert form.get_attribute("action") == action
    assert form.locator("#aff-organisation_ja[lang=ja]").count() == 1


def _logged_in(browser, base: str, email: str):
    context = browser.new_context(locale="ja-JP")
    page = context.new_page()
    page.set_default_timeout(15_000)
    _log_in(page, base, email)
    return context, page


def test_speaker_pages_share_the_affiliation_section(browser, live_server):
    world = _world(live_server.app)
    base, person = live_server.url, world["person"]

    for email, path, action in (
        (
            "office@example.org",
            "organiser/speakers/{p}/edit",
            "organiser/speakers/{p}/affiliations",
        ),
        (world["speaker"], "speakers/{p}/profile", "speakers/{p}/profile/affiliations"),
    ):
        context, page = _logged_in(browser, base, email)
        for lang in ("ja", "en"):
            response = page.goto(f"{base}/{lang}/{path.format(p=person)}")
            assert response.status == 200
            _affiliation_section(page, lang, f"/{lang}/{action.format(p=person)}")
        context.close()


def test_reception_lists_share_the_print_layout(browser, live_server):
    world = _world(live_server.app)
    base, slug = live_server.url, world["slug"]
    context, page = _logged_in(browser, base, "office@example.org")
    for lang in ("ja", "en"):
        for path, own_rule in (
            (f"/organiser/events/{slug}/registrations/print", True),
            (f"/organiser/events/{slug}/exchange-meeting/print", False),
        ):
            response = page.goto(f"{base}/{lang}{path}")
            assert response.status == 200, f"{lang}{path}"
            assert (" · 第1回 研究会 · " if lang == "ja" else " · Meeting 1 · ") in page.title()
            style = page.locator('style[media="print"]').inner_text()
            assert ".site-header, .site-footer, .tabs, .breadcrumb, .no-print" in style
            assert ("table { page-break-inside: auto; }" in style) is own_rule
            # On screen the navigation and the print button show; printed, they do not.
            assert page.locator("button[data-print]").is_visible()
            page.emulate_media(media="print")
            assert not page.locator("button[data-print]").is_visible()
            assert not page.locator(".site-header").first.is_visible()
            page.emulate_media(media="screen")
    context.close()
