"""Country is chosen from a list, 日本 first on Japanese pages (sign-up, profile, speakers)."""

from __future__ import annotations

import re

from portal.accounts.forms import country_choices
from tests import test_speakers_support as support
from tests.test_speakers_support import login, organiser


def _options(html: str, name: str = "country") -> list[tuple[str, str]]:
    select = html.split(f'name="{name}"', 1)[1].split("</select>", 1)[0]
    return re.findall(r'<option[^>]*value="([^"]*)"[^>]*>([^<]*)</option>', select)


def test_japan_first_on_japanese_pages(app):
    with app.test_request_context("/ja/"):
        ja = country_choices("ja")
        en = country_choices("en")
    assert (ja[0].value, ja[0].label) == ("JP", "日本")
    assert [c.value for c in en[:2]] == ["US", "JP"]
    assert len(ja) > 200 and len({c.value for c in ja}) == len(ja)


def test_sign_up_form_lists_countries(client):
    page = client.get("/ja/account/signup")
    options = _options(page.text)
    assert options[0][0] == "" and options[1] == ("JP", "日本")
    assert _options(client.get("/en/account/signup").text)[1] == ("US", "United States")


def test_speaker_form_has_a_country_list(app, client):
    sessions = support.open_session(app)
    session = next(sessions)
    profile = support.speaker(session)
    user = organiser(session)
    session.commit()
    person_id = profile.person_id
    login(client, user)
    page = client.get(f"/ja/organiser/speakers/{person_id}/edit")
    assert page.status_code == 200
    options = _options(page.text)
    assert options[0] == ("", "未回答") and options[1] == ("JP", "日本")
    assert 'maxlength="2"' not in page.text.split('name="country"', 1)[1][:200]
    sessions.close()
