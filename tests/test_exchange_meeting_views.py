"""exchange_meeting pages: the form field and price, join/leave, organisers' list, CSV, print."""

from __future__ import annotations

import csv
import io

import pytest
import sqlalchemy as sa

from plugins.exchange_meeting import services as em
from plugins.exchange_meeting.models import SignupState
from portal.accounts.models import Sector
from portal.db import db
from portal.events.models import EventPlugin
from portal.registration import services
from portal.registration.models import Registration, RegistrationState
from tests import factories as f

S = RegistrationState
E = SignupState
JOIN = {"exchange_meeting": True}


def login(client, user) -> None:
    with client.session_transaction() as s:
        s["_user_id"] = user.get_id()
        s["_fresh"] = True


def count_queries(app, fn) -> int:
    statements = []
    engine = app.extensions["portal_db"]["engine"]

    def listener(conn, cursor, statement, *args):
        if not statement.startswith(("BEGIN", "COMMIT", "ROLLBACK")):
            statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", listener)
    try:
        fn()
    finally:
        sa.event.remove(engine, "before_cursor_execute", listener)
    return len(statements)


@pytest.fixture
def world(app):
    """An open hybrid meeting, the exchange meeting on (2 places, ¥3,000, 18:00 at the
    faculty club), a participant, an organiser of the series and a stranger."""
    with app.app_context():
        s = db.session
        series = f.series(s)
        event = f.event(s, series)
        f.enable(
            s,
            event,
            "exchange_meeting",
            capacity=2,
            price=3000,
            venue_ja="山上会館",
            venue_en="Sanjo Conference Hall",
            time_ja="18:00〜20:00",
            time_en="18:00–20:00",
        )
        user = f.user(s, email="hanako@example.org", family_name="佐藤", given_name="花子")
        organiser = f.user(s, roles=(("organiser", series),))
        stranger = f.user(s)
        s.commit()
        return dict(
            slug=event.slug,
            event_id=event.id,
            user=user,
            organiser=organiser,
            stranger=stranger,
        )


def _register(app, world, person_id=None, answers=JOIN, mode="onsite") -> int:
    with app.app_context():
        s = db.session
        from portal.accounts.models import Person
        from portal.events.models import Event

        event = s.get(Event, world["event_id"])
        person = s.get(Person, person_id) if person_id else f.person(s)
        r = services.register(s, event, person, mode=mode, answers=answers, privacy_accepted=True)
        s.commit()
        return r.id


def _signup_state(app, reg_id):
    with app.app_context():
        signup = em.signup_for(db.session, reg_id)
        return signup.state if signup else None


def test_hook_blueprints_exchange_meeting(app):
    assert "exchange_meeting" in app.blueprints
    rules = {r.rule for r in app.url_map.iter_rules() if r.endpoint.startswith("exchange_meeting.")}
    assert rules == {
        "/<lang_code>/my/registrations/<int:reg_id>/exchange-meeting",
        "/<lang_code>/organiser/events/<slug>/exchange-meeting/",
        "/<lang_code>/organiser/events/<slug>/exchange-meeting/export.csv",
        "/<lang_code>/organiser/events/<slug>/exchange-meeting/print",
        "/<lang_code>/organiser/events/<slug>/exchange-meeting/promote",
    }


def test_register_with_the_exchange_meeting_shows_its_price_then_gives_a_place(app, client, world):
    login(client, world["user"])
    url = f"/en/events/{world['slug']}/register"
    form = client.get(url)
    assert form.status_code == 200
    assert 'name="x_exchange_meeting"' in form.text
    assert "Join the exchange meeting" in form.text
    assert "Fee: ¥3,000. 2 places left. For participants on site." in form.text

    data = {"attendance_mode": "onsite", "privacy": "y", "x_exchange_meeting": "y"}
    review = client.post(url, data=data)
    assert review.status_code == 200
    assert "Exchange meeting" in review.text
    assert "¥3,000" in review.text

    done = client.post(url, data={**data, "step": "confirm"})
    assert done.status_code == 302
    with app.app_context():
        r = db.session.scalar(sa.select(Registration))
        assert (r.state, r.total_minor, r.answers) == (S.pending_payment, 3000, JOIN)
        assert em.signup_for(db.session, r.id).state == E.confirmed

    page = client.get(done.headers["Location"])
    assert page.status_code == 200
    assert 'id="exchange-meeting"' in page.text
    assert "You have a place at the exchange meeting." in page.text
    assert 'value="leave"' in page.text


def test_hook_event_sections_exchange_meeting(app, client, world):
    page = f"/en/events/{world['slug']}/"
    anonymous = client.get(page)
    assert anonymous.status_code == 200
    assert 'id="exchange-meeting"' in anonymous.text
    assert "Sanjo Conference Hall" in anonymous.text
    assert "18:00–20:00" in anonymous.text
    assert "2 places left." in anonymous.text
    assert 'name="action"' not in anonymous.text

    ja = client.get(f"/ja/events/{world['slug']}/")
    assert "山上会館" in ja.text and "18:00〜20:00" in ja.text

    reg_id = _register(app, world, world["user"].person_id, answers={})
    login(client, world["user"])
    shown = client.get(page)
    assert "You have not signed up for the exchange meeting." in shown.text
    assert 'value="join"' in shown.text

    joined = client.post(
        f"/en/my/registrations/{reg_id}/exchange-meeting",
        data={"action": "join", "next": "event"},
    )
    assert joined.status_code == 302
    assert joined.headers["Location"] == f"/en/events/{world['slug']}/#exchange-meeting"
    assert _signup_state(app, reg_id) == E.confirmed
    after = client.get(page)
    assert "You have a place at the exchange meeting." in after.text
    assert "1 place left." in after.text

    # Online participants are told it is for those on site, with no button.
    online_user = f_user(app)
    _register(app, world, online_user.person_id, mode="online")
    login(client, online_user)
    online = client.get(page)
    assert "The exchange meeting is for participants on site." in online.text
    assert 'value="join"' not in online.text


def f_user(app):
    with app.app_context():
        u = f.user(db.session)
        db.session.commit()
        return u


def test_leave_from_my_registration_promotes_the_next_person(app, client, world):
    mine = _register(app, world, world["user"].person_id)
    _register(app, world)
    waiting = _register(app, world)
    assert _signup_state(app, waiting) == E.waitlisted

    login(client, world["user"])
    r = client.post(
        f"/en/my/registrations/{mine}/exchange-meeting",
        data={"action": "leave", "next": "registration"},
        follow_redirects=True,
    )
    assert r.status_code == 200
    assert "You have left the exchange meeting." in r.text
    assert "You have not signed up for the exchange meeting." in r.text
    assert _signup_state(app, mine) == E.cancelled
    assert _signup_state(app, waiting) == E.confirmed

    # Joining again: the exchange meeting is full now, so the waiting list.
    again = client.post(
        f"/en/my/registrations/{mine}/exchange-meeting",
        data={"action": "join"},
        follow_redirects=True,
    )
    assert "so you are on its waiting list" in again.text
    assert "You are number 1 on the exchange meeting's waiting list." in again.text
    # Leaving twice: a message, nothing changes.
    client.post(f"/en/my/registrations/{mine}/exchange-meeting", data={"action": "leave"})
    twice = client.post(
        f"/en/my/registrations/{mine}/exchange-meeting",
        data={"action": "leave"},
        follow_redirects=True,
    )
    assert "You are not signed up for the exchange meeting." in twice.text


def test_other_peoples_registrations_answer_404(app, client, world):
    theirs = _register(app, world, world["user"].person_id)
    login(client, world["stranger"])
    r = client.post(f"/en/my/registrations/{theirs}/exchange-meeting", data={"action": "leave"})
    assert r.status_code == 404
    assert _signup_state(app, theirs) == E.confirmed
    anonymous = app.test_client()
    r = anonymous.post(f"/en/my/registrations/{theirs}/exchange-meeting", data={"action": "leave"})
    assert r.status_code == 302 and "/login" in r.headers["Location"]


def _people(app, world, n, **person_kw):
    ids = []
    with app.app_context():
        s = db.session
        from portal.events.models import Event

        event = s.get(Event, world["event_id"])
        for _i in range(n):
            p = f.person(s, **person_kw)
            ids.append(
                services.register(
                    s, event, p, mode="onsite", answers=JOIN, privacy_accepted=True
                ).id
            )
        s.commit()
    return ids


def test_organiser_list_csv_and_reception_list(app, client, world):
    with app.app_context():
        s = db.session
        from portal.events.models import Event

        event = s.get(Event, world["event_id"])
        people = [
            f.person(
                s,
                family_name="鈴木",
                given_name="一郎",
                family_name_kana="すずき",
                given_name_kana="いちろう",
                romanized_name="Ichiro Suzuki",
                email="ichiro@example.org",
                affiliation="=HYPERLINK(1)",
                sector=Sector.university,
            ),
            f.person(
                s,
                family_name="青木",
                given_name="花",
                family_name_kana="あおき",
                given_name_kana="はな",
                romanized_name="Hana Aoki",
                email="hana@example.org",
                affiliation="架空金属",
                sector=Sector.company,
            ),
            f.person(
                s,
                family_name="田中",
                given_name="三郎",
                family_name_kana="たなか",
                given_name_kana="さぶろう",
                romanized_name="Saburo Tanaka",
                email="saburo@example.org",
                affiliation="経済産業省",
                sector=Sector.government_other,
            ),
        ]
        for p in people:
            services.register(s, event, p, mode="onsite", answers=JOIN, privacy_accepted=True)
        s.commit()

    base = f"/en/organiser/events/{world['slug']}/exchange-meeting/"
    for who in (None, world["user"], world["stranger"]):
        c = app.test_client()
        if who is not None:
            login(c, who)
        for path in ("", "export.csv", "print"):
            r = c.get(base + path)
            assert r.status_code in ((302,) if who is None else (404,)), (who, path)
        assert c.post(base + "promote").status_code in ((302,) if who is None else (404,))

    login(client, world["organiser"])
    listing = client.get(base)
    assert listing.status_code == 200
    assert listing.text.index("Hana Aoki") < listing.text.index("Ichiro Suzuki")
    assert listing.text.index("Ichiro Suzuki") < listing.text.index("Saburo Tanaka")
    assert "2 of 2" in listing.text
    assert "Waiting list (1)" in listing.text

    export = client.get(base + "export.csv")
    assert export.status_code == 200
    assert export.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert export.data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(export.data.decode("utf-8-sig"))))
    assert rows[0] == [
        "Family name",
        "Given name",
        "Family name (kana)",
        "Given name (kana)",
        "Name in Latin letters",
        "Email",
        "Affiliation",
        "Affiliation type",
        "Attendance",
        "Registration",
        "Exchange meeting",
        "Waiting list position",
        "Fee at the reception",
        "Currency",
        "Signed up at",
    ]
    assert [row[:14] for row in rows[1:]] == [
        [
            "青木",
            "花",
            "あおき",
            "はな",
            "Hana Aoki",
            "hana@example.org",
            "架空金属",
            "Company",
            "Attending on site",
            "Awaiting payment",
            "Place confirmed",
            "",
            "0",
            "JPY",
        ],
        [
            "鈴木",
            "一郎",
            "すずき",
            "いちろう",
            "Ichiro Suzuki",
            "ichiro@example.org",
            "'=HYPERLINK(1)",
            "University",
            "Attending on site",
            "Awaiting payment",
            "Place confirmed",
            "",
            "0",
            "JPY",
        ],
        [
            "田中",
            "三郎",
            "たなか",
            "さぶろう",
            "Saburo Tanaka",
            "saburo@example.org",
            "経済産業省",
            "Government and other",
            "Attending on site",
            "Place confirmed",
            "Waiting list",
            "1",
            "",
            "JPY",
        ],
    ]

    printed = client.get(base + "print")
    assert printed.status_code == 200
    assert "Reception check-in list" in printed.text
    assert printed.text.count('<td class="tick">☐</td>') == 2
    assert "Saburo Tanaka" not in printed.text  # waiting, not at the reception
    assert printed.text.index("あおき") < printed.text.index("すずき")
    assert "Paid with the registration" in printed.text

    ja = client.get(f"/ja/organiser/events/{world['slug']}/exchange-meeting/")
    assert ja.status_code == 200 and '<html lang="ja">' in ja.text


def test_organiser_list_is_paginated_with_constant_queries(app, client, world):
    with app.app_context():
        row = db.session.scalar(
            sa.select(EventPlugin).where(EventPlugin.plugin == "exchange_meeting")
        )
        row.settings = {**row.settings, "capacity": 0}
        db.session.commit()
    login(client, world["organiser"])
    url = f"/en/organiser/events/{world['slug']}/exchange-meeting/"
    _people(app, world, 5)
    client.get(url)
    small = count_queries(app, lambda: client.get(url))
    _people(app, world, 60)
    large = count_queries(app, lambda: client.get(url))
    assert small == large
    page2 = client.get(url + "?page=2")
    assert page2.status_code == 200
    assert page2.text.count("data-signup=") == 15


def test_hook_dashboard_panels_exchange_meeting(app, client, world):
    _people(app, world, 3)
    login(client, world["organiser"])
    dashboard = client.get(f"/en/organiser/events/{world['slug']}/")
    assert dashboard.status_code == 200
    assert 'id="exchange-meeting-panel"' in dashboard.text
    assert '<dd data-count="confirmed">2 of 2</dd>' in dashboard.text
    assert '<dd data-count="waitlisted">1</dd>' in dashboard.text
    with app.test_request_context():
        from portal import plugins
        from portal.accounts.models import User
        from portal.events.models import Event

        event = db.session.get(Event, world["event_id"])
        for who, expected in (("stranger", 0), ("organiser", 1)):
            user = db.session.get(User, world[who].id)
            panels = plugins.call_event_hook("dashboard_panels", event, user=user)
            assert len([p for p in panels if "exchange-meeting-panel" in p]) == expected


def test_promote_button_gives_places_after_the_capacity_is_raised(app, client, world):
    _people(app, world, 4)
    with app.app_context():
        row = db.session.scalar(
            sa.select(EventPlugin).where(EventPlugin.plugin == "exchange_meeting")
        )
        row.settings = {**row.settings, "capacity": 3}
        db.session.commit()
    login(client, world["organiser"])
    r = client.post(
        f"/en/organiser/events/{world['slug']}/exchange-meeting/promote", follow_redirects=True
    )
    assert "1 person moved up from the waiting list." in r.text
    with app.app_context():
        from portal.events.models import Event

        counts = em.counts(db.session, db.session.get(Event, world["event_id"]))
        assert counts == {E.confirmed: 3, E.waitlisted: 1, E.cancelled: 0}


def test_disabled_plugin_field_price_panel_and_pages_vanish(app, client, world):
    reg_id = _register(app, world, world["user"].person_id)
    with app.app_context():
        row = db.session.scalar(
            sa.select(EventPlugin).where(EventPlugin.plugin == "exchange_meeting")
        )
        row.enabled = False
        db.session.commit()

    login(client, world["organiser"])
    base = f"/en/organiser/events/{world['slug']}/exchange-meeting/"
    for path in ("", "export.csv", "print"):
        assert client.get(base + path).status_code == 404, path
    assert client.post(base + "promote").status_code == 404
    dashboard = client.get(f"/en/organiser/events/{world['slug']}/")
    assert "exchange-meeting-panel" not in dashboard.text

    login(client, world["user"])
    assert (
        client.post(f"/en/my/registrations/{reg_id}/exchange-meeting", data={"action": "leave"})
    ).status_code == 404
    assert 'id="exchange-meeting"' not in client.get(f"/en/events/{world['slug']}/").text
    assert 'id="exchange-meeting"' not in client.get(f"/en/my/registrations/{reg_id}/").text

    other = f_user(app)
    login(client, other)
    form = client.get(f"/en/events/{world['slug']}/register")
    assert "x_exchange_meeting" not in form.text
    review = client.post(
        f"/en/events/{world['slug']}/register",
        data={"attendance_mode": "onsite", "privacy": "y", "x_exchange_meeting": "y"},
    )
    assert "Exchange meeting" not in review.text
    assert "¥3,000" not in review.text
