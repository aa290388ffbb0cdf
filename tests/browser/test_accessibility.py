"""Accessibility in Chromium (docs/accessibility.md): axe-core on the main pages in both
languages (besides the check the conftest runs on every page any browser test opens), the
focus on the first invalid field, and the organiser tables on a 390-pixel phone."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from portal.db import db, utcnow
from portal.events.models import EventFormat
from portal.i18n import BilingualText
from portal.registration.models import FeeCategory
from portal.registration.signup import register
from tests import factories as f
from tests.browser.a11y import axe_violations, describe

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}


def _world(app, registrants: int = 3) -> dict:
    from plugins.abstracts.services import AbstractInput, AuthorInput, submit

    with app.app_context():
        s = db.session
        series = f.series(s, "workshop")
        event = f.event(
            s,
            series,
            format=EventFormat.hybrid,
            title=BilingualText(ja="反応性金属ワークショップ", en="Reactive Metal Workshop"),
        )
        # A talk titled in Japanese only: on the English page it is marked lang="ja".
        f.talk(s, event, title=BilingualText(ja="チタン粉末の電解製錬"), language="ja")
        f.enable(
            s,
            event,
            "abstracts",
            closes_at=(utcnow() + timedelta(days=10))
            .astimezone(ZoneInfo(event.timezone))
            .strftime("%Y-%m-%dT%H:%M"),
            word_limit=200,
            topics=[{"key": "extraction", "ja": "製錬", "en": "Extraction"}],
        )
        fee = FeeCategory(
            event_id=event.id,
            code="general",
            name=BilingualText(
                ja="一般（企業・官公庁所属の方）", en="General (industry and government)"
            ),
            price_minor=25000,
        )
        s.add(fee)
        s.flush()
        f.enable(s, event, "bank_transfer", bank_account="見本銀行 駒場支店 普通 1234567")
        f.enable_for_series(s, series, "membership")
        organiser = f.user(s, email="office@example.org", roles=(("organiser", series),))
        member = f.user(s, email="member@example.org", romanized_name="Hanako Mihon")
        for i in range(registrants):
            person = f.person(
                s,
                family_name="長谷川",
                given_name=f"美智子{i}",
                family_name_kana="はせがわ",
                given_name_kana="みちこ",
                romanized_name=f"Michiko Hasegawa {i}",
                affiliation="国立研究開発法人 物質・材料研究機構 構造材料研究拠点",
            )
            register(s, event, person, mode="onsite", fee_category=fee, privacy_accepted=True)
        abstract = submit(
            s,
            event,
            member,
            AbstractInput(
                title=BilingualText(en="Titanium powder by electrolysis"),
                body=BilingualText(en="A new route to titanium."),
                language="en",
                topic="extraction",
                presentation_type="oral",
                authors=[AuthorInput("Hanako Mihon", "Fictional University", member.email, True)],
            ),
        )
        s.commit()
        return {
            "slug": event.slug,
            "series": series.slug,
            "organiser": organiser.email,
            "member": member.email,
            "abstract": abstract.id,
        }


def _log_in(page, base: str, email: str) -> None:
    page.goto(f"{base}/en/account/login")
    page.locator("input[name=email]").fill(email)
    page.locator("input[name=password]").fill(f.PASSWORD)
    page.locator("form.stacked button[type=submit]").click()
    page.wait_for_load_state()
    assert "/account/login" not in page.url


def _assert_accessible(page, failures: list[str]) -> None:
    violations = axe_violations(page)
    if violations:
        failures.append(describe(page.url, violations))
    assert page.locator("h1").count() == 1, f"{page.url}: one <h1>"


def test_hook_runs_axe_on_every_page_and_finds_violations(page, live_server, axe_every_page):
    page.goto(live_server.url + "/en/")
    axe_every_page.check_open_pages()
    assert axe_every_page.checked == [live_server.url + "/en/"]
    assert axe_every_page.failures == []
    # A page with an image without text: the automatic check records it (and would fail the
    # test at its end; the record is emptied here).
    broken = live_server.url + "/en/broken-for-the-test"
    page.route(
        broken,
        lambda route: route.fulfill(
            content_type="text/html",
            body='<!doctype html><html lang="en"><title>x</title><main><img src="/x.png"></main>',
        ),
    )
    page.goto(broken)
    axe_every_page.check_open_pages()
    assert axe_every_page.checked == [live_server.url + "/en/", broken]
    assert len(axe_every_page.failures) == 1 and "image-alt" in axe_every_page.failures[0]
    axe_every_page.failures.clear()
    # The explicit check runs afresh on the page as it is now.
    page.goto(live_server.url + "/ja/")
    assert axe_violations(page) == []
    page.evaluate("() => document.querySelector('main').append(document.createElement('img'))")
    assert [v["id"] for v in axe_violations(page)] == ["image-alt"]
    page.goto(live_server.url + "/ja/")  # leave a clean page for the end-of-test check


def test_main_pages_pass_axe_in_both_languages(browser, live_server):
    world = _world(live_server.app)
    base, slug = live_server.url, world["slug"]
    failures: list[str] = []

    visitor = browser.new_context(locale="ja-JP", viewport=PHONE)
    page = visitor.new_page()
    page.set_default_timeout(15_000)
    for lang in ("ja", "en"):
        for path in (
            "/",
            f"/events/{slug}/",
            f"/series/{world['series']}/",
            f"/events/{slug}/programme/",
            "/account/login",
            "/account/signup",
            "/speakers/",
        ):
            response = page.goto(f"{base}/{lang}{path}")
            assert response.status == 200, f"{lang}{path}: {response.status}"
            _assert_accessible(page, failures)
        # The log-in form sent back with an error.
        page.goto(f"{base}/{lang}/account/login")
        page.locator("input[name=email]").fill("nobody@example.org")
        page.locator("input[name=password]").fill("wrong password")
        page.locator("form.stacked button[type=submit]").click()
        page.wait_for_load_state()
        _assert_accessible(page, failures)
    visitor.close()

    member = browser.new_context(locale="en-US", viewport=PHONE)
    page = member.new_page()
    page.set_default_timeout(15_000)
    _log_in(page, base, world["member"])
    for lang in ("ja", "en"):
        page.goto(f"{base}/{lang}/events/{slug}/register")
        page.locator("form.stacked button[type=submit]").last.click()  # nothing chosen
        page.wait_for_load_state()
        assert page.locator('[role="alert"]').count() == 1
        invalid = page.locator('[aria-invalid="true"]')
        assert invalid.count() >= 1
        # The focus is on the first invalid field, which names its error text.
        assert page.evaluate("document.activeElement.getAttribute('aria-invalid')") == "true"
        described = invalid.first.get_attribute("aria-describedby")
        assert page.locator(f"#{described.split()[-1]}").inner_text().strip()
        _assert_accessible(page, failures)
        for path in (
            "/my/registrations/",
            "/account/profile",
            f"/events/{slug}/abstracts/",
            f"/events/{slug}/abstracts/mine",
            f"/events/{slug}/abstracts/new",
            f"/events/{slug}/abstracts/{world['abstract']}/",
        ):
            response = page.goto(f"{base}/{lang}{path}")
            assert response.status == 200, f"{lang}{path}: {response.status}"
            _assert_accessible(page, failures)
    member.close()

    office = browser.new_context(locale="ja-JP", viewport={"width": 1280, "height": 900})
    page = office.new_page()
    page.set_default_timeout(15_000)
    _log_in(page, base, world["organiser"])
    for lang in ("ja", "en"):
        for path in (
            "/organiser/",
            f"/organiser/events/{slug}/",
            f"/organiser/events/{slug}/registrations/",
            f"/organiser/events/{slug}/payments/",
            f"/organiser/events/{slug}/registrations/fees/",
            f"/organiser/events/{slug}/registrations/add",
            f"/organiser/events/{slug}/edit",
            f"/organiser/events/{slug}/talks/new",
            "/organiser/events/new",
            f"/events/{slug}/abstracts/manage/",
            f"/events/{slug}/abstracts/manage/settings",
            f"/events/{slug}/abstracts/manage/{world['abstract']}",
            f"/organiser/membership/{world['series']}/",
            f"/organiser/membership/{world['series']}/members",
            f"/organiser/membership/{world['series']}/companies/new",
            "/organiser/payments/unmatched",
        ):
            response = page.goto(f"{base}/{lang}{path}")
            assert response.status == 200, f"{lang}{path}: {response.status}"
            _assert_accessible(page, failures)
    # The English event page marks the Japanese-only talk title.
    page.goto(f"{base}/en/events/{slug}/")
    assert page.locator('[lang="ja"]', has_text="チタン粉末の電解製錬").count() == 1
    office.close()
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_registration_list_is_readable_on_a_phone(browser, live_server, lang):
    world = _world(live_server.app, registrants=4)
    context = browser.new_context(locale="ja-JP", viewport=PHONE)
    page = context.new_page()
    page.set_default_timeout(15_000)
    _log_in(page, live_server.url, world["organiser"])
    page.goto(f"{live_server.url}/{lang}/organiser/events/{world['slug']}/registrations/")
    table = page.locator("table.registrations")
    assert table.locator("tbody tr").count() == 4
    # Nothing is pushed off-screen sideways.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    labels = {"en": ("State", "Total"), "ja": ("状態", "合計")}[lang]
    font = page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)")
    first = table.locator("tbody tr").first
    for label in labels:
        cell = first.locator(f'td[data-label="{label}"]')
        box = cell.bounding_box()
        assert box is not None and box["x"] >= 0
        assert box["x"] + box["width"] <= PHONE["width"], f"{label} is off-screen"
        assert cell.is_visible()
    # No column is crushed: every cell of a row is wider than two characters, and the
    # affiliation (a long Japanese name) takes few lines.
    for i in range(first.locator("td").count()):
        assert first.locator("td").nth(i).bounding_box()["width"] > 2 * font
    affiliation = first.locator("td").nth(1).bounding_box()
    assert affiliation["height"] < 6 * font * 1.6
    context.close()
