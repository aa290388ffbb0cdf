"""Organiser pages: who gets in, the index, series, events, status, talks and roles."""

from __future__ import annotations

import re
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from portal.accounts.models import Role, User, UserRole
from portal.audit import AuditEntry
from portal.db import db, utcnow
from portal.events.models import Event, EventFormat, EventStatus, Series, SeriesKind, Talk
from portal.i18n import BilingualText
from tests import factories as f


@contextmanager
def database(app):
    """A database session in its own app context (not shared with the test client)."""
    with app.app_context():
        yield db.session


def login(client, user_id: int, app) -> None:
    with database(app) as s:
        user = s.get(User, user_id)
        stamp = user.get_id()
    with client.session_transaction() as flask_session:
        flask_session["_user_id"] = stamp
        flask_session["_fresh"] = True


@pytest.fixture
def world(app):
    """Two series; an organiser of the study group only; an admin; a member; one event each."""
    with database(app) as s:
        study = f.series(s, "study_group", slug="study")
        workshop = f.series(s, "workshop", slug="workshop")
        admin = f.user(s, email="admin@example.org", is_admin=True)
        organiser = f.user(s, email="org@example.org", roles=(("organiser", study),))
        member = f.user(s, email="member@example.org", roles=(("member", study),))
        meeting = f.event(s, study, slug="meeting-94", number=94)
        ws = f.event(s, workshop, slug="workshop-2027", number=21)
        s.commit()
        return {
            "study": study.id,
            "workshop": workshop.id,
            "admin": admin.id,
            "organiser": organiser.id,
            "member": member.id,
            "meeting": meeting.id,
            "ws": ws.id,
        }


def event_form(series_id: int, **overrides) -> dict:
    data = {
        "series_id": str(series_id),
        "number": "95",
        "slug": "meeting-95",
        "title_ja": "第95回 レアメタル研究会",
        "title_en": "Rare Metal Study Group, meeting 95",
        "description_ja": "説明",
        "description_en": "About the meeting",
        "starts_at": "2027-03-05T14:30",
        "ends_at": "2027-03-05T18:00",
        "timezone": "Asia/Tokyo",
        "venue_ja": "駒場",
        "venue_en": "Komaba",
        "format": "hybrid",
        "capacity_onsite": "270",
        "capacity_online": "",
        "status": "draft",
        "reason": "",
    }
    data.update(overrides)
    return data


# -- access ----------------------------------------------------------------------------------


def test_visitor_is_sent_to_login(client, world):
    for url in ("/en/organiser/", "/en/organiser/events/meeting-94/", "/ja/organiser/roles"):
        r = client.get(url)
        assert r.status_code == 302
        assert "/account/login" in r.headers["Location"]


def test_member_without_organiser_role_gets_403(app, client, world):
    login(client, world["member"], app)
    assert client.get("/en/organiser/").status_code == 403
    assert client.get("/en/organiser/events/meeting-94/").status_code == 403
    assert client.post("/en/organiser/events/meeting-94/plugins/calendar").status_code == 403


def test_organiser_of_one_series_gets_404_on_another_series_events(app, client, world):
    login(client, world["organiser"], app)
    assert client.get("/en/organiser/events/meeting-94/").status_code == 200
    assert client.get("/en/organiser/events/workshop-2027/").status_code == 404
    assert client.get("/en/organiser/events/workshop-2027/edit").status_code == 404
    r = client.post("/en/organiser/events/workshop-2027/plugins/calendar", data={"enabled": "1"})
    assert r.status_code == 404
    r = client.post("/en/organiser/events/workshop-2027/status", data={"status": "cancelled"})
    assert r.status_code == 404
    with database(app) as s:
        assert s.get(Event, world["ws"]).status == EventStatus.open
        assert s.scalar(sa.select(sa.func.count()).select_from(AuditEntry)) == 0


def test_organiser_cannot_create_an_event_in_another_series(app, client, world):
    login(client, world["organiser"], app)
    r = client.post("/en/organiser/events/new", data=event_form(world["workshop"]))
    assert r.status_code == 400
    assert "Not a valid choice" in r.text
    with database(app) as s:
        assert s.scalar(sa.select(Event).where(Event.slug == "meeting-95")) is None


def test_series_pages_and_roles_are_for_administrators_only(app, client, world):
    login(client, world["organiser"], app)
    assert client.get("/en/organiser/series/new").status_code == 403
    assert client.get("/en/organiser/series/study/edit").status_code == 403
    assert client.get("/en/organiser/roles").status_code == 403
    r = client.post(
        f"/en/organiser/roles/{world['member']}/grant",
        data={"role": "organiser", "series_id": str(world["study"])},
    )
    assert r.status_code == 403


# -- index -----------------------------------------------------------------------------------


def test_index_lists_only_the_organisers_series_upcoming_first(app, client, world):
    with database(app) as s:
        study = s.get(Series, world["study"])
        past = f.event(s, study, slug="meeting-90", starts_at=utcnow() - timedelta(days=400))
        later = f.event(s, study, slug="meeting-96", starts_at=utcnow() + timedelta(days=90))
        draft = f.event(
            s,
            study,
            slug="meeting-97",
            starts_at=utcnow() + timedelta(days=200),
            status=EventStatus.draft,
        )
        s.commit()
        assert past.id and later.id and draft.id
    login(client, world["organiser"], app)
    r = client.get("/en/organiser/")
    assert r.status_code == 200
    rows = [line.split('"')[1] for line in r.text.splitlines() if "data-event=" in line]
    assert rows == ["meeting-94", "meeting-96", "meeting-97", "meeting-90"]
    assert "workshop-2027" not in r.text
    assert 'id="series-workshop"' not in r.text
    assert 'id="series-study"' in r.text
    assert "Draft" in r.text and "Open for registration" in r.text
    assert client.get("/ja/organiser/").status_code == 200


def test_index_for_admin_shows_every_series(app, client, world):
    login(client, world["admin"], app)
    r = client.get("/en/organiser/")
    rows = [line.split('"')[1] for line in r.text.splitlines() if "data-event=" in line]
    assert sorted(rows) == ["meeting-94", "workshop-2027"]
    assert "/en/organiser/series/new" in r.text
    assert "/en/organiser/series/workshop/edit" in r.text


def test_index_is_paginated_with_a_constant_number_of_queries(app, client, world):
    with database(app) as s:
        study = s.get(Series, world["study"])
        for i in range(24):
            f.event(
                s,
                study,
                slug=f"extra-{i}",
                number=5000 + i,  # not the fixture's 94, whatever the factory's counter
                starts_at=utcnow() + timedelta(days=40 + i),
            )
        s.commit()
    login(client, world["organiser"], app)

    statements = []

    def count(*_args, **_kw):
        statements.append(1)

    engine = app.extensions["portal_db"]["engine"]
    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        first = client.get("/en/organiser/")
        queries_first = len(statements)
        statements.clear()
        second = client.get("/en/organiser/?page=2")
        queries_second = len(statements)
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    rows1 = [ln for ln in first.text.splitlines() if "data-event=" in ln]
    rows2 = [ln for ln in second.text.splitlines() if "data-event=" in ln]
    assert len(rows1) == 20
    assert len(rows2) == 5
    assert "Page 1 of 2" in first.text
    assert queries_first == queries_second


# -- series ----------------------------------------------------------------------------------


def series_form(**overrides) -> dict:
    data = {
        "slug": "summer-school",
        "kind": "workshop",
        "name_ja": "サマースクール",
        "name_en": "Summer School",
        "description_ja": "",
        "description_en": "A school.",
        "default_language": "en",
        "currency": "usd",
        "timezone": "America/New_York",
    }
    data.update(overrides)
    return data


def test_admin_creates_a_series(app, client, world):
    login(client, world["admin"], app)
    r = client.post("/en/organiser/series/new", data=series_form())
    assert r.status_code == 302
    with database(app) as s:
        series = s.scalar(sa.select(Series).where(Series.slug == "summer-school"))
        assert series.kind == SeriesKind.workshop
        assert series.name == BilingualText(ja="サマースクール", en="Summer School")
        assert series.currency == "USD"
        assert series.timezone == "America/New_York"
        entry = s.scalar(sa.select(AuditEntry).where(AuditEntry.subject_type == "series"))
        assert (entry.action, entry.actor_id, entry.subject_id) == (
            "created",
            world["admin"],
            series.id,
        )


def test_series_form_rejects_bad_zone_currency_and_slug_keeping_input(app, client, world):
    login(client, world["admin"], app)
    r = client.post(
        "/en/organiser/series/new",
        data=series_form(slug="Bad Slug", currency="XYZ", timezone="Mars/Olympus", name_ja=""),
    )
    assert r.status_code == 400
    assert "Use only lowercase letters, digits and hyphens" in r.text
    assert "Unknown currency" in r.text
    assert "Unknown time zone" in r.text
    assert 'value="Mars/Olympus"' in r.text
    assert 'value="Summer School"' in r.text
    r = client.post("/en/organiser/series/new", data=series_form(slug="study"))
    assert "Another series already uses this slug." in r.text
    with database(app) as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Series)) == 2


def test_admin_edits_a_series(app, client, world):
    login(client, world["admin"], app)
    page = client.get("/en/organiser/series/study/edit")
    assert 'value="Asia/Tokyo"' in page.text
    r = client.post(
        "/en/organiser/series/study/edit",
        data=series_form(
            slug="study",
            kind="study_group",
            name_ja="レアメタル研究会",
            name_en="Rare Metal Study Group",
            default_language="ja",
            currency="JPY",
            timezone="Asia/Tokyo",
            description_en="Since 2002.",
        ),
    )
    assert r.status_code == 302
    with database(app) as s:
        series = s.get(Series, world["study"])
        assert series.description == BilingualText(ja="", en="Since 2002.")
        entry = s.scalar(sa.select(AuditEntry).where(AuditEntry.action == "updated"))
        assert entry.data["changes"]["description"][1] == {"ja": "", "en": "Since 2002."}


# -- events ----------------------------------------------------------------------------------


def test_organiser_creates_an_event_in_local_time(app, client, world):
    login(client, world["organiser"], app)
    page = client.get("/en/organiser/events/new?series=study")
    assert page.status_code == 200
    assert 'type="datetime-local"' in page.text
    r = client.post("/en/organiser/events/new", data=event_form(world["study"]))
    assert r.status_code == 302
    assert r.headers["Location"].endswith("/en/organiser/events/meeting-95/")
    with database(app) as s:
        event = s.scalar(sa.select(Event).where(Event.slug == "meeting-95"))
        # 14:30 in Tokyo (UTC+9) is 05:30 UTC.
        assert event.starts_at == datetime(2027, 3, 5, 5, 30, tzinfo=UTC)
        assert event.ends_at == datetime(2027, 3, 5, 9, 0, tzinfo=UTC)
        assert event.timezone == "Asia/Tokyo"
        assert event.title == BilingualText(
            ja="第95回 レアメタル研究会", en="Rare Metal Study Group, meeting 95"
        )
        assert event.venue == BilingualText(ja="駒場", en="Komaba")
        assert event.format == EventFormat.hybrid
        assert (event.capacity_onsite, event.capacity_online) == (270, None)
        assert event.status == EventStatus.draft
        assert event.number == 95
        entries = s.scalars(
            sa.select(AuditEntry).where(AuditEntry.subject_id == event.id).order_by(AuditEntry.id)
        ).all()
        assert [(e.action, e.actor_id) for e in entries] == [("created", world["organiser"])]


def test_event_in_new_york_is_read_in_new_york_time(app, client, world):
    login(client, world["admin"], app)
    data = event_form(
        world["workshop"],
        slug="workshop-2028",
        number="22",
        starts_at="2028-07-10T09:00",
        ends_at="2028-07-10T17:30",
        timezone="",
        status="open",
    )
    r = client.post("/en/organiser/events/new", data=data)
    assert r.status_code == 302
    with database(app) as s:
        event = s.scalar(sa.select(Event).where(Event.slug == "workshop-2028"))
        assert event.timezone == "America/New_York"  # empty: the series' zone
        assert event.starts_at == datetime(2028, 7, 10, 13, 0, tzinfo=UTC)  # EDT is UTC-4
        assert event.status == EventStatus.open
        actions = [
            e.action
            for e in s.scalars(
                sa.select(AuditEntry)
                .where(AuditEntry.subject_id == event.id)
                .order_by(AuditEntry.id)
            )
        ]
        assert actions == ["created", "status"]
    page = client.get("/en/organiser/events/workshop-2028/edit")
    assert 'value="2028-07-10T09:00"' in page.text


def test_event_form_errors_are_translated_and_input_kept(app, client, world):
    login(client, world["organiser"], app)
    bad = event_form(
        world["study"],
        slug="Meeting 95!",
        title_ja="",
        title_en="",
        starts_at="2027-03-05T18:00",
        ends_at="2027-03-05T14:30",
        capacity_onsite="-3",
        capacity_online="many",
        venue_en="Convention Hall",
        timezone="Asia/Nowhere",
    )
    r = client.post("/en/organiser/events/new", data=bad)
    assert r.status_code == 400
    assert "Use only lowercase letters, digits and hyphens" in r.text
    assert "Enter the title in Japanese or English (or both)." in r.text
    assert "The end must be after the start." in r.text
    # -3 on site: one message; "many" online: only the message that it is not a number.
    assert r.text.count("Enter a whole number of 0 or more, or leave it empty for no limit.") == 1
    assert r.text.count("Not a valid integer value.") == 1
    assert "Unknown time zone" in r.text
    assert 'value="Convention Hall"' in r.text
    assert 'value="many"' in r.text
    assert 'value="2027-03-05T18:00"' in r.text
    ja = client.post("/ja/organiser/events/new", data=bad)
    assert ja.status_code == 400
    assert 'value="Convention Hall"' in ja.text
    with database(app) as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Event)) == 2


def test_event_slug_and_number_must_be_unique(app, client, world):
    login(client, world["organiser"], app)
    r = client.post("/en/organiser/events/new", data=event_form(world["study"], slug="meeting-94"))
    assert r.status_code == 400
    assert "Another event already uses this slug." in r.text
    r = client.post("/en/organiser/events/new", data=event_form(world["study"], number="94"))
    assert "This series already has an event with this number." in r.text


def test_creating_an_event_as_closed_is_a_forbidden_move(app, client, world):
    login(client, world["organiser"], app)
    r = client.post("/en/organiser/events/new", data=event_form(world["study"], status="closed"))
    assert r.status_code == 400
    assert "An event cannot move from “Draft” to “Registration closed”." in r.text
    with database(app) as s:
        assert s.scalar(sa.select(Event).where(Event.slug == "meeting-95")) is None


def test_edit_event_changes_facts_and_status_with_audit(app, client, world):
    login(client, world["organiser"], app)
    data = event_form(
        world["study"],
        slug="meeting-94",
        number="94",
        title_en="Meeting 94 (renamed)",
        status="closed",
        reason="Hall is full",
    )
    r = client.post("/en/organiser/events/meeting-94/edit", data=data)
    assert r.status_code == 302
    with database(app) as s:
        event = s.get(Event, world["meeting"])
        assert event.title.en == "Meeting 94 (renamed)"
        assert event.status == EventStatus.closed
        entries = s.scalars(
            sa.select(AuditEntry).where(AuditEntry.subject_id == event.id).order_by(AuditEntry.id)
        ).all()
        assert [e.action for e in entries] == ["updated", "status"]
        assert entries[1].data == {"old": "open", "new": "closed", "reason": "Hall is full"}
        assert entries[0].data["changes"]["title"][1]["en"] == "Meeting 94 (renamed)"


def test_edit_event_forbidden_status_keeps_everything(app, client, world):
    login(client, world["organiser"], app)
    data = event_form(
        world["study"], slug="meeting-94", number="94", title_en="Changed", status="draft"
    )
    r = client.post("/en/organiser/events/meeting-94/edit", data=data)
    assert r.status_code == 400
    assert "An event cannot move from “Open for registration” to “Draft”." in r.text
    assert 'value="Changed"' in r.text
    with database(app) as s:
        event = s.get(Event, world["meeting"])
        assert event.status == EventStatus.open
        assert event.title.en != "Changed"
        assert s.scalar(sa.select(sa.func.count()).select_from(AuditEntry)) == 0


def test_status_form_on_dashboard(app, client, world):
    login(client, world["organiser"], app)
    page = client.get("/en/organiser/events/meeting-94/")
    assert '<option value="closed">Registration closed</option>' in page.text
    assert '<option value="draft">' not in page.text
    r = client.post(
        "/en/organiser/events/meeting-94/status",
        data={"status": "cancelled", "reason": "Typhoon"},
    )
    assert r.status_code == 302
    with database(app) as s:
        assert s.get(Event, world["meeting"]).status == EventStatus.cancelled
        entry = s.scalar(sa.select(AuditEntry).where(AuditEntry.action == "status"))
        assert entry.data == {"old": "open", "new": "cancelled", "reason": "Typhoon"}
    r = client.post("/en/organiser/events/meeting-94/status", data={"status": "open"})
    assert r.status_code == 400
    assert "An event cannot move from “Cancelled” to “Open for registration”." in r.text
    with database(app) as s:
        assert s.get(Event, world["meeting"]).status == EventStatus.cancelled


def test_dashboard_shows_facts_in_both_languages(app, client, world):
    login(client, world["organiser"], app)
    en = client.get("/en/organiser/events/meeting-94/")
    ja = client.get("/ja/organiser/events/meeting-94/")
    assert en.status_code == 200 and ja.status_code == 200
    assert "Meeting" in en.text
    assert "研究会" in ja.text
    # Times in the event's zone, named by its abbreviation (not "Asia/Tokyo").
    assert re.search(r"Time</dt><dd>\d\d:\d\d–\d\d:\d\d \(JST\)</dd>", en.text)
    assert 'id="plugins"' in en.text


# -- talks -----------------------------------------------------------------------------------


def test_add_talk_with_speaker_found_by_search(app, client, world):
    with database(app) as s:
        speaker = f.person(
            s,
            family_name="見本",
            given_name="太郎",
            romanized_name="Taro Mihon",
            affiliation="架空金属",
        )
        f.person(s, family_name="試験", given_name="美咲", romanized_name="Misaki Shiken")
        s.commit()
        speaker_id = speaker.id
    login(client, world["organiser"], app)
    base = {
        "title_ja": "チタン製錬",
        "title_en": "Titanium smelting",
        "speaker_query": "mihon",
        "speaker_id": "0",
        "language": "ja",
        "position": "1",
        "starts_at": "",
    }
    r = client.post("/en/organiser/events/meeting-94/talks/new", data={**base, "action": "search"})
    assert r.status_code == 200
    assert f'<option value="{speaker_id}">' in r.text
    assert "Shiken" not in r.text
    assert 'value="Titanium smelting"' in r.text
    r = client.post(
        "/en/organiser/events/meeting-94/talks/new",
        data={
            **base,
            "speaker_id": str(speaker_id),
            "starts_at": "2027-03-05T14:40",
            "action": "save",
        },
    )
    assert r.status_code == 302
    with database(app) as s:
        talk = s.scalar(sa.select(Talk).where(Talk.event_id == world["meeting"]))
        assert talk.speaker_id == speaker_id
        assert talk.title == BilingualText(ja="チタン製錬", en="Titanium smelting")
        assert talk.starts_at == datetime(2027, 3, 5, 5, 40, tzinfo=UTC)
        entry = s.scalar(sa.select(AuditEntry).where(AuditEntry.action == "talk_added"))
        assert entry.data["talk_id"] == talk.id
        talk_id = talk.id
    page = client.get("/en/organiser/events/meeting-94/")
    assert "Titanium smelting" in page.text
    assert f"/talks/{talk_id}/edit" in page.text


def test_talk_needs_a_title_and_a_real_speaker(app, client, world):
    login(client, world["organiser"], app)
    r = client.post(
        "/en/organiser/events/meeting-94/talks/new",
        data={
            "title_ja": "",
            "title_en": "",
            "speaker_id": "0",
            "language": "ja",
            "position": "1",
            "action": "save",
        },
    )
    assert r.status_code == 400
    assert "Enter the title in Japanese or English (or both)." in r.text
    r = client.post(
        "/en/organiser/events/meeting-94/talks/new",
        data={
            "title_en": "X",
            "speaker_id": "999999",
            "language": "ja",
            "position": "1",
            "action": "save",
        },
    )
    assert r.status_code == 400
    assert "Choose a speaker from the search results." in r.text
    with database(app) as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Talk)) == 0


def test_edit_and_remove_talk(app, client, world):
    with database(app) as s:
        event = s.get(Event, world["meeting"])
        talk = f.talk(s, event, title=BilingualText(ja="旧", en="Old"))
        s.commit()
        talk_id = talk.id
    login(client, world["organiser"], app)
    page = client.get(f"/en/organiser/events/meeting-94/talks/{talk_id}/edit")
    assert 'value="Old"' in page.text
    r = client.post(
        f"/en/organiser/events/meeting-94/talks/{talk_id}/edit",
        data={
            "title_ja": "新",
            "title_en": "New",
            "speaker_id": "0",
            "language": "en",
            "position": "2",
            "action": "save",
        },
    )
    assert r.status_code == 302
    with database(app) as s:
        talk = s.get(Talk, talk_id)
        assert (talk.title.en, talk.language, talk.position) == ("New", "en", 2)
    # The talk of another event cannot be reached through this event.
    assert (
        client.post(f"/en/organiser/events/workshop-2027/talks/{talk_id}/delete").status_code == 404
    )
    r = client.post(f"/en/organiser/events/meeting-94/talks/{talk_id}/delete")
    assert r.status_code == 302
    with database(app) as s:
        assert s.get(Talk, talk_id) is None
        actions = [
            e.action
            for e in s.scalars(
                sa.select(AuditEntry)
                .where(AuditEntry.subject_type == "event")
                .order_by(AuditEntry.id)
            )
        ]
        assert actions == ["talk_updated", "talk_removed"]


# -- roles -----------------------------------------------------------------------------------


def test_admin_grants_and_revokes_roles(app, client, world):
    login(client, world["admin"], app)
    r = client.get("/en/organiser/roles?email=MEMBER@example.org")
    assert r.status_code == 200
    assert "member@example.org" in r.text
    r = client.post(
        f"/en/organiser/roles/{world['member']}/grant",
        data={"role": "organiser", "series_id": str(world["workshop"])},
    )
    assert r.status_code == 302
    with database(app) as s:
        roles = s.scalars(
            sa.select(UserRole).where(UserRole.user_id == world["member"]).order_by(UserRole.id)
        ).all()
        assert [(r.role, r.series_id) for r in roles] == [
            (Role.member, world["study"]),
            (Role.organiser, world["workshop"]),
        ]
        granted = s.scalar(sa.select(AuditEntry).where(AuditEntry.action == "role_granted"))
        assert granted.data == {"role": "organiser", "series_id": world["workshop"]}
        assert (granted.subject_type, granted.subject_id) == ("user", world["member"])
        new_role_id = roles[1].id
    # Now the member organises the workshop.
    login(client, world["member"], app)
    assert client.get("/en/organiser/events/workshop-2027/").status_code == 200
    assert client.get("/en/organiser/events/meeting-94/").status_code == 404
    login(client, world["admin"], app)
    r = client.post(f"/en/organiser/roles/{world['member']}/revoke/{new_role_id}")
    assert r.status_code == 302
    with database(app) as s:
        assert s.get(UserRole, new_role_id) is None
        revoked = s.scalar(sa.select(AuditEntry).where(AuditEntry.action == "role_revoked"))
        assert revoked.data == {"role": "organiser", "series_id": world["workshop"]}
    login(client, world["member"], app)
    assert client.get("/en/organiser/events/workshop-2027/").status_code == 403


def test_roles_page_messages(app, client, world):
    login(client, world["admin"], app)
    r = client.get("/en/organiser/roles?email=nobody@example.org")
    assert "Nobody has an account with this email." in r.text
    r = client.post(
        f"/en/organiser/roles/{world['member']}/grant", data={"role": "reviewer", "series_id": "0"}
    )
    assert r.status_code == 400
    assert "Organisers and reviewers belong to one series: choose it." in r.text
    assert client.get("/ja/organiser/roles?email=member@example.org").status_code == 200


def test_index_counts_registrations_that_are_not_cancelled(app, client, world):
    from portal.events.models import AttendanceMode
    from portal.registration.models import Registration, RegistrationState

    with database(app) as s:
        states = [
            RegistrationState.confirmed,
            RegistrationState.confirmed,
            RegistrationState.waitlisted,
            RegistrationState.cancelled,
        ]
        for state in states:
            s.add(
                Registration(
                    event_id=world["meeting"],
                    person_id=f.person(s).id,
                    attendance_mode=AttendanceMode.onsite,
                    state=state,
                    currency="JPY",
                )
            )
        s.commit()
    login(client, world["admin"], app)
    r = client.get("/en/organiser/")
    assert '<th scope="col">Registrations</th>' in r.text
    cells = {}
    for block in r.text.split("<tr data-event=")[1:]:
        slug = block.split('"')[1]
        cells[slug] = block.split('<td class="count">')[1].split("</td>")[0]
    assert cells == {"meeting-94": "3", "workshop-2027": "0"}


def test_event_form_refuses_numbers_and_slugs_the_database_cannot_hold(app, client, world):
    login(client, world["organiser"], app)
    r = client.post(
        "/en/organiser/events/new",
        data=event_form(
            world["study"], number="99999999999", capacity_online="12345678901", slug="a" * 81
        ),
    )
    assert r.status_code == 400
    assert r.text.count("Enter a number no larger than 1000000.") == 2
    assert "Use at most 80 characters." in r.text
    with database(app) as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Event)) == 2
