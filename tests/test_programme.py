"""The programme: builder, clashes, timetable page, PDF, .ics and Frab/pretalx JSON."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import icalendar
import pytest
import sqlalchemy as sa

from portal.db import db
from portal.events.models import Event, Talk
from portal.i18n import BilingualText
from portal.programme import services
from portal.programme.models import ItemKind, ProgrammeItem, TalkPlacement
from tests import factories as f
from tests import pdfcheck
from tests.pdfcheck import needs_poppler


def login(client, user) -> None:
    with client.session_transaction() as s:
        s["_user_id"] = user.get_id()
        s["_fresh"] = True


def item(session, event, title, start, hours=1.0, room="", kind="session", chair=None):
    return services.save_item(
        session,
        event,
        kind=kind,
        title=BilingualText(ja=title[0], en=title[1])
        if isinstance(title, tuple)
        else BilingualText(),
        room=room,
        chair=chair,
        starts_at=start,
        ends_at=start + timedelta(hours=hours),
        actor=None,
    )


@pytest.fixture
def workshop(app):
    """A two-day workshop in Boston: two rooms, three talks, a break and the reception."""
    with app.app_context():
        s = db.session
        series = f.series(s, "workshop")
        day1 = f.at(2027, 6, 10, 13, 0)  # 09:00 in Boston (EDT)
        event = f.event(
            s,
            series,
            starts_at=day1,
            timezone="America/New_York",
            title=BilingualText(ja="反応性金属ワークショップ", en="Reactive Metal Workshop"),
            venue=BilingualText(ja="ボストン会場", en="Boston Hall"),
        )
        event.ends_at = day1 + timedelta(days=1, hours=8)
        organiser = f.user(s, roles=(("organiser", series),))
        alice = f.person(
            s, family_name="", given_name="", romanized_name="Alice Chen", affiliation="MIT"
        )
        kenji = f.person(
            s,
            family_name="田中",
            given_name="健二",
            romanized_name="Kenji Tanaka",
            affiliation="東北大学",
        )
        t1 = f.talk(
            s,
            event,
            alice,
            title=BilingualText(ja="チタンの精錬", en="Refining titanium"),
            language="en",
            position=1,
        )
        t2 = f.talk(
            s,
            event,
            kenji,
            title=BilingualText(ja="希土類の回収", en="Recovering rare earths"),
            language="ja",
            position=2,
        )
        t3 = f.talk(
            s, event, alice, title=BilingualText(en="Hafnium outlook"), language="en", position=3
        )
        s.commit()
        return {
            "slug": event.slug,
            "event_id": event.id,
            "organiser": organiser,
            "alice_id": alice.id,
            "kenji_id": kenji.id,
            "talks": [t1.id, t2.id, t3.id],
            "day1": day1,
        }


def _event(s, workshop) -> Event:
    return s.get(Event, workshop["event_id"])


def _build(app, workshop):
    """Day 1: session A (room 1, chair Kenji) with t1, t2; a break; day 2: session B with t3;
    the reception."""
    with app.app_context():
        s = db.session
        event = _event(s, workshop)
        d1 = workshop["day1"]
        kenji = s.get(f.Person, workshop["kenji_id"])
        a = item(s, event, ("材料プロセス", "Materials processing"), d1, 2, "Room 1", chair=kenji)
        item(s, event, None, d1 + timedelta(hours=2), 0.5, kind="break")
        b = item(s, event, ("展望", "Outlook"), d1 + timedelta(days=1), 2, "Room 2")
        item(
            s,
            event,
            ("意見交換会", "Reception"),
            d1 + timedelta(days=1, hours=6),
            2,
            kind="reception",
        )
        t1, t2, t3 = (s.get(Talk, i) for i in workshop["talks"])
        services.place_talk(
            s, event, t1, a, starts_at=d1, ends_at=d1 + timedelta(minutes=40), actor=None
        )
        services.place_talk(
            s,
            event,
            t2,
            a,
            starts_at=d1 + timedelta(minutes=40),
            ends_at=d1 + timedelta(minutes=80),
            actor=None,
        )
        start = d1 + timedelta(days=1)
        services.place_talk(
            s, event, t3, b, starts_at=start, ends_at=start + timedelta(hours=1), actor=None
        )
        s.commit()
        return a.id, b.id


# -- builder ---------------------------------------------------------------------------------


def test_builder_is_for_organisers(client, app, workshop):
    url = f"/en/organiser/events/{workshop['slug']}/programme/"
    assert client.get(url).status_code == 302
    with app.app_context():
        other = f.user(db.session)
        db.session.commit()
    login(client, other)
    assert client.get(url).status_code == 404
    assert client.post(url + "items/new", data={}).status_code == 404


def test_build_on_one_page(client, app, workshop):
    login(client, workshop["organiser"])
    base = f"/en/organiser/events/{workshop['slug']}/programme/"
    page = client.get(base)
    assert page.status_code == 200
    assert page.text.count('class="talk-row"') == 3  # all to place
    r = client.post(
        base + "items/new",
        data={
            "kind": "session",
            "title_ja": "材料",
            "title_en": "Materials",
            "room": "Room 1",
            "starts_at": "2027-06-10T09:00",
            "ends_at": "2027-06-10T11:00",
        },
    )
    assert r.status_code == 302
    with app.app_context():
        added = db.session.scalar(sa.select(ProgrammeItem))
        assert added.starts_at == workshop["day1"]  # 09:00 in Boston is 13:00 UTC
        assert added.room == "Room 1"
        item_id = added.id
    talk_id = workshop["talks"][0]
    r = client.post(
        base + f"talks/{talk_id}",
        data={
            "item": item_id,
            "starts_at": "2027-06-10T09:00",
            "ends_at": "2027-06-10T09:30",
        },
    )
    assert r.status_code == 302 and r.headers["Location"].endswith(f"#talk-{talk_id}")
    # Move it later in the session.
    client.post(
        base + f"talks/{talk_id}",
        data={
            "item": item_id,
            "starts_at": "2027-06-10T10:00",
            "ends_at": "2027-06-10T10:30",
        },
    )
    with app.app_context():
        talk = db.session.get(Talk, talk_id)
        assert talk.starts_at == workshop["day1"] + timedelta(hours=1)
        assert db.session.scalar(sa.select(TalkPlacement.item_id)) == item_id
    page = client.get(base)
    assert f'id="talk-{talk_id}"' in page.text and "No clashes." in page.text
    # Take it out again.
    client.post(base + f"talks/{talk_id}", data={"action": "unplace"})
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(TalkPlacement)) == 0
        assert db.session.get(Talk, talk_id).starts_at is None


def test_bad_input_keeps_the_form(client, workshop):
    login(client, workshop["organiser"])
    base = f"/en/organiser/events/{workshop['slug']}/programme/"
    r = client.post(
        base + "items/new",
        data={
            "kind": "session",
            "title_en": "Backwards",
            "room": "Room 9",
            "starts_at": "2027-06-10T11:00",
            "ends_at": "2027-06-10T10:00",
        },
    )
    assert r.status_code == 400
    assert "The end must be after the start." in r.text
    assert 'value="Backwards"' in r.text and 'value="Room 9"' in r.text
    r = client.post(
        base + "items/new",
        data={"kind": "session", "title_en": "X", "starts_at": "soon", "ends_at": ""},
    )
    assert r.status_code == 400 and "YYYY-MM-DD" in r.text
    r = client.post(
        base + "items/new",
        data={"kind": "nonsense", "starts_at": "2027-06-10T09:00", "ends_at": "2027-06-10T10:00"},
    )
    assert r.status_code == 400
    r = client.post(base + f"talks/{workshop['talks'][0]}", data={"item": "x"})
    assert r.status_code == 400 and "Choose a session." in r.text
    assert client.post(base + "talks/999999", data={"item": "1"}).status_code == 404


def test_clashes(app, client, workshop):
    a_id, b_id = _build(app, workshop)
    with app.app_context():
        s = db.session
        event = _event(s, workshop)
        d1 = workshop["day1"]
        table = services.timetable(s, event)
        assert services.clashes(table, "en") == []
        # Alice's second talk moves to day 1, in another room at the time of her first talk.
        c = item(s, event, ("並行", "Parallel"), d1, 1, "Room 1")  # Room 1 is taken then
        t3 = s.get(Talk, workshop["talks"][2])
        services.place_talk(
            s,
            event,
            t3,
            c,
            starts_at=d1 + timedelta(minutes=10),
            ends_at=d1 + timedelta(minutes=70),
            actor=None,
        )  # past c's end
        # Kenji chairs session A and speaks in it: not a clash.
        s.commit()
        found = services.clashes(services.timetable(s, event), "en")
        kinds = sorted(x.kind for x in found)
        assert kinds == ["outside", "room", "speaker"]
        messages = " ".join(x.message for x in found)
        assert "Alice Chen is in two places at once" in messages
        assert "Room 1 is used twice at once" in messages
        assert "“Hafnium outlook” runs outside its session “Parallel”." in messages
    login(client, workshop["organiser"])
    page = client.get(f"/en/organiser/events/{workshop['slug']}/programme/")
    assert page.text.count('<li data-kind="') == 3
    assert 'class="talk-row clash"' in page.text


def test_chair_speaking_elsewhere_is_a_clash(app, workshop):
    a_id, _b = _build(app, workshop)
    with app.app_context():
        s = db.session
        event = _event(s, workshop)
        d1 = workshop["day1"]
        other = item(s, event, ("別室", "Other room"), d1, 1, "Room 3")
        kenji_talk = f.talk(
            s, event, s.get(f.Person, workshop["kenji_id"]), title=BilingualText(en="Second talk")
        )
        services.place_talk(
            s,
            event,
            kenji_talk,
            other,
            starts_at=d1,
            ends_at=d1 + timedelta(minutes=30),
            actor=None,
        )
        found = services.clashes(services.timetable(s, event), "en")
        assert [x.kind for x in found] == ["speaker"]
        assert found[0].item_ids == {a_id, other.id}


# -- the public timetable and its exports -------------------------------------------------


def test_event_page_links_the_timetable_by_day_and_room(client, app, workshop):
    _build(app, workshop)
    event_page = client.get(f"/en/events/{workshop['slug']}/")
    assert f"/en/events/{workshop['slug']}/programme/" in event_page.text
    page = client.get(f"/en/events/{workshop['slug']}/programme/")
    assert page.status_code == 200
    for link in ("programme.pdf", "programme.ics", "programme.json"):
        assert f"/en/events/{workshop['slug']}/programme/{link}" in page.text
    # Day 1 first, in Boston time, with the reader's zone added by a static script.
    assert "Refining titanium" in page.text and "Hafnium outlook" not in page.text
    assert ">09:00</time>–<time" in page.text
    assert "America/New_York" in page.text
    assert "/static/programme/localtime.js" in page.text
    assert "Chair: Kenji Tanaka" in page.text
    day2 = client.get(
        f"/en/events/{workshop['slug']}/programme/", query_string={"day": "2027-06-11"}
    )
    assert "Hafnium outlook" in day2.text and "Refining titanium" not in day2.text
    assert 'aria-current="page">Friday 11 June 2027' in day2.text or "11 June" in day2.text
    room2 = client.get(
        f"/en/events/{workshop['slug']}/programme/",
        query_string={"day": "2027-06-11", "room": "Room 2"},
    )
    assert "Hafnium outlook" in room2.text
    room1 = client.get(
        f"/en/events/{workshop['slug']}/programme/",
        query_string={"day": "2027-06-11", "room": "Room 1"},
    )
    assert "Hafnium outlook" not in room1.text
    ja = client.get(f"/ja/events/{workshop['slug']}/programme/")
    assert "チタンの精錬" in ja.text and "座長：田中 健二" in ja.text


def test_draft_event_has_no_public_timetable(client, app, workshop):
    with app.app_context():
        _event(db.session, workshop).status = f.EventStatus.draft
        db.session.commit()
    assert client.get(f"/en/events/{workshop['slug']}/programme/").status_code == 404
    assert client.get(f"/en/events/{workshop['slug']}/programme/programme.json").status_code == 404


def test_frab_json(client, app, workshop):
    _build(app, workshop)
    data = client.get(f"/en/events/{workshop['slug']}/programme/programme.json").get_json()
    conference = data["schedule"]["conference"]
    assert conference["title"] == "Reactive Metal Workshop"
    assert conference["time_zone_name"] == "America/New_York"
    assert conference["daysCount"] == 2
    day1, day2 = conference["days"]
    assert day1["date"] == "2027-06-10"
    talks = day1["rooms"]["Room 1"]
    assert [(t["title"], t["start"], t["duration"]) for t in talks] == [
        ("Refining titanium", "09:00", "00:40"),
        ("Recovering rare earths", "09:40", "00:40"),
    ]
    assert talks[0]["persons"][0]["public_name"] == "Alice Chen"
    assert talks[0]["date"] == "2027-06-10T09:00:00-04:00"
    assert talks[0]["track"] == "Materials processing"
    kinds = sorted(e["type"] for r in day2["rooms"].values() for e in r)
    assert kinds == ["reception", "talk"]
    assert data["schedule"]["version"]


def test_ics(client, app, workshop):
    _build(app, workshop)
    r = client.get(f"/ja/events/{workshop['slug']}/programme/programme.ics")
    assert r.mimetype == "text/calendar"
    cal = icalendar.Calendar.from_ical(r.data)
    events = [c for c in cal.walk("VEVENT")]
    summaries = sorted(str(e["summary"]) for e in events)
    assert len(events) == 5  # three talks, the break, the reception
    assert "チタンの精錬 — Alice Chen" in summaries
    first = next(e for e in events if str(e["summary"]).startswith("チタン"))
    assert first["dtstart"].dt.tzinfo.key == "America/New_York"
    assert first["dtstart"].dt.hour == 9


@needs_poppler
def test_programme_pdf_in_both_languages(client, app, workshop, tmp_path):
    _build(app, workshop)
    r = client.get(f"/en/events/{workshop['slug']}/programme/programme.pdf")
    assert r.status_code == 200 and r.mimetype == "application/pdf"
    text = pdfcheck.text(r.data, tmp_path)
    for words in (
        "反応性金属ワークショップ",
        "Reactive Metal Workshop",
        "プログラム / Programme",
        "材料プロセス",
        "Materials processing",
        "チタンの精錬",
        "Refining titanium",
        "田中 健二 / Kenji Tanaka",
        "Alice Chen",
        "Hafnium outlook",
        "休憩 / Break",
        "会場 Room: Room 1",
        "09:00–09:40",
    ):
        assert words in text, words
    assert pdfcheck.pages(r.data, tmp_path) == 3  # cover, day 1, day 2
    assert "IPAexGothic" in pdfcheck.fonts(r.data, tmp_path)
    for page in (1, 2):
        assert pdfcheck.ink(pdfcheck.render(r.data, tmp_path, page=page)) > 0.003


# -- the study group's meeting: the same model ----------------------------------------------


def test_study_group_meeting_as_one_session(client, app):
    with app.app_context():
        s = db.session
        series = f.series(s)
        # 14:00 JST: the talks and the reception fall on one day, whatever the clock says.
        event = f.event(s, series, starts_at=f.at(2030, 3, 5, 5, 0))
        organiser = f.user(s, roles=(("organiser", series),))
        f.enable(s, event, "exchange_meeting")
        f.talk(s, event, f.person(s), title=BilingualText(ja="第一講演"), position=1)
        f.talk(s, event, f.person(s), title=BilingualText(ja="第二講演"), position=2)
        s.commit()
        slug, start = event.slug, event.starts_at
    login(client, organiser)
    assert client.post(f"/ja/organiser/events/{slug}/programme/start").status_code == 302
    with app.app_context():
        s = db.session
        items = s.scalars(sa.select(ProgrammeItem).order_by(ProgrammeItem.starts_at)).all()
        assert [i.kind for i in items] == [ItemKind.session, ItemKind.reception]
        talks = s.scalars(sa.select(Talk).order_by(Talk.position)).all()
        assert [t.starts_at for t in talks] == [start, start + timedelta(hours=1.5)]
    page = client.get(f"/ja/events/{slug}/programme/")
    assert "第一講演" in page.text and "意見交換会" in page.text
    # A second time: refused, with the message.
    r = client.post(f"/ja/organiser/events/{slug}/programme/start")
    assert r.status_code == 400


def test_timetable_queries_do_not_grow(app, workshop):
    _build(app, workshop)
    with app.app_context():
        s = db.session
        event = _event(s, workshop)
        statements = []
        engine = s.get_bind()

        def count(*args):
            statements.append(args)

        sa.event.listen(engine, "before_cursor_execute", count)
        try:
            table = services.timetable(s, event)
            [t.speaker for e in table.entries for t in e.talks]  # noqa: B018
        finally:
            sa.event.remove(engine, "before_cursor_execute", count)
        assert len(statements) == 3


def test_accepted_abstract_is_placed_like_an_invited_talk(client, app, session):
    from plugins.abstracts import services as abstracts
    from tests.test_abstracts import data, make_call

    call = make_call(session)
    abstract = abstracts.submit(session, call.event, call.submitter, data())
    abstracts.accept_oral(session, abstract, call.organiser)
    event = call.event
    session_item = item(session, event, ("口頭発表", "Oral session"), event.starts_at, 2, "Room A")
    session.commit()
    title = abstract.title.get("en")
    login(client, call.organiser)
    base = f"/en/organiser/events/{event.slug}/programme/"
    page = client.get(base)
    unplaced = page.text.split('id="unplaced"', 1)[1]
    assert title in unplaced
    talk_id = abstract.talk_id
    local = event.starts_at.astimezone(ZoneInfo(event.timezone))
    r = client.post(
        base + f"talks/{talk_id}",
        data={
            "item": session_item.id,
            "starts_at": local.strftime("%Y-%m-%dT%H:%M"),
            "ends_at": (local + timedelta(minutes=20)).strftime("%Y-%m-%dT%H:%M"),
        },
    )
    assert r.status_code == 302
    timetable = client.get(f"/en/events/{event.slug}/programme/")
    assert title in timetable.text and "Room A" in timetable.text


def test_timetable_lists_the_talks_before_the_programme_is_built(client, workshop):
    page = client.get(f"/en/events/{workshop['slug']}/programme/")
    assert 'id="talks-without-timetable"' in page.text
    assert "Refining titanium" in page.text and "Hafnium outlook" in page.text


def test_chair_must_be_a_speaker_or_participant(client, app, workshop):
    with app.app_context():
        stranger = f.person(db.session, romanized_name="Stranger Danger")
        db.session.commit()
        stranger_id = stranger.id
    login(client, workshop["organiser"])
    base = f"/en/organiser/events/{workshop['slug']}/programme/"
    for chair in (stranger_id, workshop["alice_id"]):
        client.post(
            base + "items/new",
            data={
                "kind": "session",
                "title_en": f"S{chair}",
                "chair": chair,
                "starts_at": "2027-06-10T09:00",
                "ends_at": "2027-06-10T10:00",
            },
        )
    with app.app_context():
        chairs = db.session.scalars(
            sa.select(ProgrammeItem.chair_id).order_by(ProgrammeItem.id)
        ).all()
    assert chairs == [None, workshop["alice_id"]]
