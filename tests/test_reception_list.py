"""The printed reception list (受付名簿) has the on-site participants only; the online ones
are on the webinar's list."""

from __future__ import annotations

import pytest

from portal.db import db
from portal.registration import services
from portal.registration.models import FeeCategory
from tests import factories as f


@pytest.fixture
def world(app):
    with app.app_context():
        s = db.session
        series = f.series(s)
        event = f.event(s, series)
        f.enable(s, event, "webinar", url="https://zoom.example/j/1")
        free = FeeCategory(event_id=event.id, code="free", name={"en": "Free"}, price_minor=0)
        s.add(free)
        s.flush()
        for family, mode in (("会場", "onsite"), ("遠隔", "online"), ("現地", "onsite")):
            person = f.person(s, family_name=family)
            services.register(
                s, event, person, mode=mode, fee_category=free.id, privacy_accepted=True
            )
        organiser = f.user(s, roles=(("organiser", series),))
        s.commit()
        return dict(slug=event.slug, organiser=organiser.get_id())


def _log_in(client, user_id):
    with client.session_transaction() as s:
        s["_user_id"] = user_id
        s["_fresh"] = True


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_printed_list_has_onsite_participants_only(app, client, world, lang):
    _log_in(client, world["organiser"])
    page = client.get(f"/{lang}/organiser/events/{world['slug']}/registrations/print")
    assert page.status_code == 200
    table = page.text.split('class="print-list"', 1)[1].split("</table>", 1)[0]
    assert "会場" in table and "現地" in table
    assert "遠隔" not in table
    assert f"/{lang}/organiser/events/{world['slug']}/webinar/" in page.text
    if lang == "ja":
        assert "オンラインで参加する1名はこの名簿に載っていません。" in page.text
    else:
        assert "1 person attending online is not on this list." in page.text
