"""Registration pages: the participant's flow and the organiser's pages."""

from __future__ import annotations

import csv
import io

import pytest
import sqlalchemy as sa

from portal.db import db
from portal.events.models import EventFormat, EventStatus
from portal.i18n import BilingualText
from portal.registration import services
from portal.registration.models import FeeCategory, Registration, RegistrationState
from tests import factories as f
from tests.conftest import recorded_statements

S = RegistrationState


def login(client, user) -> None:
    with client.session_transaction() as s:
        s["_user_id"] = user.get_id()
        s["_fresh"] = True


def fee(session, event, code="member", price=5000, **kw) -> FeeCategory:
    c = FeeCategory(
        event_id=event.id,
        code=code,
        name=BilingualText(ja=f"{code}区分", en=code.title()),
        price_minor=price,
        **kw,
    )
    session.add(c)
    session.flush()
    return c


def count_registrations(app) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(Registration))


@pytest.fixture
def setup(app):
    """An open hybrid event with two fee categories, a participant and an organiser."""
    with app.app_context():
        s = db.session
        series = f.series(s)
        event = f.event(s, series, capacity_onsite=2)
        member = fee(s, event, "member", 5000)
        free = fee(s, event, "student", 0)
        user = f.user(s, email="hanako@example.org", family_name="佐藤", given_name="花子")
        organiser = f.user(s, roles=(("organiser", series),))
        s.commit()
        data = dict(
            slug=event.slug,
            event_id=event.id,
            member_id=member.id,
            free_id=free.id,
            user=user,
            organiser=organiser,
            series_id=series.id,
        )
    return data


def test_event_page_shows_register_button_then_status(client, setup, app):
    r = client.get(f"/en/events/{setup['slug']}/")
    assert r.status_code == 200
    assert f'href="/en/events/{setup["slug"]}/register"' in r.text
    login(client, setup["user"])
    client.post(
        f"/en/events/{setup['slug']}/register",
        data={
            "attendance_mode": "online",
            "fee_category": setup["free_id"],
            "privacy": "y",
            "step": "confirm",
        },
    )
    r = client.get(f"/en/events/{setup['slug']}/")
    assert "You are registered for this event: Place confirmed." in r.text


def test_review_step_shows_price_lines_and_stores_nothing(client, setup, app):
    login(client, setup["user"])
    r = client.get(f"/ja/events/{setup['slug']}/register")
    assert r.status_code == 200
    assert "member区分" in r.text and "¥5,000" in r.text
    r = client.post(
        f"/en/events/{setup['slug']}/register",
        data={"attendance_mode": "onsite", "fee_category": setup["member_id"], "privacy": "y"},
    )
    assert r.status_code == 200
    assert "Member" in r.text and "¥5,000" in r.text
    assert 'name="step" value="confirm"' in r.text
    assert count_registrations(app) == 0
    r = client.post(
        f"/en/events/{setup['slug']}/register",
        data={
            "attendance_mode": "onsite",
            "fee_category": setup["member_id"],
            "privacy": "y",
            "step": "confirm",
        },
    )
    assert r.status_code == 302
    with app.app_context():
        registration = db.session.scalars(sa.select(Registration)).one()
        assert registration.state == S.pending_payment
        assert registration.total_minor == 5000
        assert r.headers["Location"] == f"/en/my/registrations/{registration.id}/"
    page = client.get(r.headers["Location"])
    assert "Awaiting payment" in page.text
    assert "¥5,000" in page.text


def test_double_submit_makes_one_registration(client, setup, app):
    login(client, setup["user"])
    data = {
        "attendance_mode": "onsite",
        "fee_category": setup["free_id"],
        "privacy": "y",
        "step": "confirm",
    }
    first = client.post(f"/en/events/{setup['slug']}/register", data=data)
    second = client.post(f"/en/events/{setup['slug']}/register", data=data)
    assert first.status_code == 302 and second.status_code == 302
    assert first.headers["Location"] == second.headers["Location"]
    assert count_registrations(app) == 1


def test_tampered_fee_category_gets_translated_message_and_keeps_input(client, setup, app):
    with app.app_context():
        other = f.event(db.session)
        foreign = fee(db.session, other, "vip", 0)
        db.session.commit()
        foreign_id = foreign.id
    login(client, setup["user"])
    r = client.post(
        f"/en/events/{setup['slug']}/register",
        data={
            "attendance_mode": "online",
            "fee_category": foreign_id,
            "privacy": "y",
            "step": "confirm",
        },
    )
    assert r.status_code == 400
    assert "Please choose one of the fee categories offered for this event." in r.text
    assert 'value="online" checked' in r.text
    # The form shown again labels the modes with the seats left (counted for it alone).
    assert "(2 places left)" in r.text
    assert count_registrations(app) == 0


def test_confirmation_statements_do_not_grow_with_the_registrations(client, setup, app):
    """The rush's request (docs/performance.md): the same statements for the 4th and the 41st."""

    def others(n):
        with app.app_context():
            for _ in range(n):
                services.register(
                    db.session,
                    db.session.get(Event, setup["event_id"]),
                    f.person(db.session),
                    mode="online",
                    fee_category=setup["free_id"],
                    privacy_accepted=True,
                )
            db.session.commit()

    def confirm():
        with app.app_context():
            user = f.user(db.session)
            db.session.commit()
        login(client, user)
        counted = _count_queries(
            app,
            lambda: client.post(
                f"/en/events/{setup['slug']}/register",
                data={
                    "attendance_mode": "online",
                    "fee_category": setup["free_id"],
                    "privacy": "y",
                    "step": "confirm",
                },
            ),
        )
        return counted

    from portal.events.models import Event

    others(3)
    small = confirm()
    others(37)
    assert confirm() == small
    # Event, user, fees, plugins (one statement: the event's rows and its series'); under the
    # lock: event, then the person's row and the seats in one statement; then the rows
    # (registration, audit entry, email, ticket, the email's 2 attachments in one INSERT).
    assert small == 11
    assert count_registrations(app) == 42


def test_missing_privacy_is_shown_next_to_the_field(client, setup):
    login(client, setup["user"])
    r = client.post(
        f"/en/events/{setup['slug']}/register",
        data={"attendance_mode": "online", "fee_category": setup["free_id"]},
    )
    assert r.status_code == 400
    assert "Please accept the privacy notice to register." in r.text
    assert 'value="online" checked' in r.text


def test_visitor_is_sent_to_log_in_and_the_form_is_kept(client, setup, app):
    r = client.post(
        f"/ja/events/{setup['slug']}/register",
        data={"attendance_mode": "online", "fee_category": setup["member_id"], "privacy": "y"},
    )
    assert r.status_code == 302
    assert r.headers["Location"].startswith("/ja/account/login?next=")
    assert r.headers["Location"] == f"/ja/account/login?next=/ja/events/{setup['slug']}/register"
    login(client, setup["user"])
    r = client.get(f"/ja/events/{setup['slug']}/register")
    assert 'value="online" checked' in r.text
    assert f'value="{setup["member_id"]}" checked' in r.text
    assert count_registrations(app) == 0


@pytest.mark.parametrize(
    "status,message",
    [
        (EventStatus.closed, "Registration for this event is closed."),
        (EventStatus.cancelled, "This event has been cancelled, so registration is not possible."),
    ],
)
def test_closed_and_cancelled_events_refuse(client, setup, app, status, message):
    with app.app_context():
        from portal.events.models import Event

        db.session.get(Event, setup["event_id"]).status = status
        db.session.commit()
    login(client, setup["user"])
    r = client.get(f"/en/events/{setup['slug']}/register")
    assert r.status_code == 200
    assert message in r.text
    r = client.post(
        f"/en/events/{setup['slug']}/register",
        data={
            "attendance_mode": "online",
            "fee_category": setup["free_id"],
            "privacy": "y",
            "step": "confirm",
        },
    )
    assert r.status_code == 400
    assert message in r.text
    assert count_registrations(app) == 0


def test_draft_event_register_page_is_404(client, setup, app):
    with app.app_context():
        draft = f.event(db.session, status=EventStatus.draft)
        db.session.commit()
        slug = draft.slug
    login(client, setup["user"])
    assert client.get(f"/en/events/{slug}/register").status_code == 404


def test_other_peoples_registrations_answer_404(client, setup, app):
    with app.app_context():
        from portal.events.models import Event

        event = db.session.get(Event, setup["event_id"])
        other = f.user(db.session)
        theirs = services.register(
            db.session,
            event,
            other.person,
            mode="online",
            fee_category=setup["free_id"],
            privacy_accepted=True,
        )
        db.session.commit()
        theirs_id = theirs.id
    login(client, setup["user"])
    assert client.get(f"/en/my/registrations/{theirs_id}/").status_code == 404
    assert client.get(f"/en/my/registrations/{theirs_id}/cancel").status_code == 404
    assert client.post(f"/en/my/registrations/{theirs_id}/cancel").status_code == 404
    assert (
        client.post(
            f"/en/my/registrations/{theirs_id}/mode", data={"attendance_mode": "onsite"}
        ).status_code
        == 404
    )
    with app.app_context():
        assert db.session.get(Registration, theirs_id).state == S.confirmed


def test_my_registrations_switch_mode_and_cancel(client, setup, app):
    login(client, setup["user"])
    r = client.post(
        f"/en/events/{setup['slug']}/register",
        data={
            "attendance_mode": "online",
            "fee_category": setup["free_id"],
            "privacy": "y",
            "step": "confirm",
        },
    )
    detail = r.headers["Location"]
    reg_id = int(detail.rstrip("/").split("/")[-1])
    page = client.get("/en/my/registrations/")
    assert page.status_code == 200
    assert detail in page.text
    r = client.post(f"/en/my/registrations/{reg_id}/mode", data={"attendance_mode": "onsite"})
    assert r.status_code == 302
    r = client.post(f"/en/my/registrations/{reg_id}/mode", data={"attendance_mode": "bogus"})
    assert r.status_code == 400
    assert "Please choose how you will attend this event." in r.text
    confirm_page = client.get(f"/en/my/registrations/{reg_id}/cancel")
    assert "Yes, cancel my registration" in confirm_page.text
    r = client.post(f"/en/my/registrations/{reg_id}/cancel")
    assert r.status_code == 302
    with app.app_context():
        registration = db.session.get(Registration, reg_id)
        assert registration.state == S.cancelled
        assert registration.attendance_mode.value == "onsite"


def test_waiting_list_position_is_shown(client, setup, app):
    with app.app_context():
        from portal.events.models import Event

        event = db.session.get(Event, setup["event_id"])
        for _ in range(2):
            services.register(
                db.session,
                event,
                f.person(db.session),
                mode="onsite",
                fee_category=setup["free_id"],
                privacy_accepted=True,
            )
        db.session.commit()
    login(client, setup["user"])
    r = client.post(
        f"/en/events/{setup['slug']}/register",
        data={
            "attendance_mode": "onsite",
            "fee_category": setup["free_id"],
            "privacy": "y",
            "step": "confirm",
        },
    )
    page = client.get(r.headers["Location"])
    assert "You are number 1 on the waiting list." in page.text


# -- organiser ------------------------------------------------------------------------------


def _fill(app, setup, n: int) -> None:
    with app.app_context():
        from portal.events.models import Event

        event = db.session.get(Event, setup["event_id"])
        event.capacity_onsite = None
        for i in range(n):
            person = f.person(
                db.session,
                family_name="山田",
                given_name=f"花子{i}",
                romanized_name=f"Hanako Yamada {i}",
                sector=["company", "university", "government_other"][i % 3],
            )
            services.register(
                db.session,
                event,
                person,
                mode=["onsite", "online"][i % 2],
                fee_category=setup["member_id"] if i % 2 else setup["free_id"],
                privacy_accepted=True,
            )
        db.session.commit()


def _count_queries(app, fn) -> int:
    with recorded_statements(app, transactions=False) as statements:
        fn()
    return len(statements)


def test_organiser_pages_need_organiser_of_the_series(client, setup, app):
    base = f"/en/organiser/events/{setup['slug']}/registrations/"
    login(client, setup["user"])
    for path in ("", "export.csv", "add", "check-in", "print", "fees/"):
        assert client.get(base + path).status_code == 404, path
    with app.app_context():
        other_organiser = f.user(db.session, roles=(("organiser", f.series(db.session)),))
        db.session.commit()
    login(client, other_organiser)
    assert client.get(base).status_code == 404
    login(client, setup["organiser"])
    for path in ("", "export.csv", "add", "check-in", "print", "fees/", "fees/new"):
        assert client.get(base + path).status_code == 200, path


def test_organiser_list_query_count_is_constant(client, setup, app):
    login(client, setup["organiser"])
    url = f"/en/organiser/events/{setup['slug']}/registrations/"
    _fill(app, setup, 10)
    r = client.get(url)
    assert r.status_code == 200
    small = _count_queries(app, lambda: client.get(url))
    _fill(app, setup, 90)
    large = _count_queries(app, lambda: client.get(url))
    assert small == large
    # Filters and search keep it constant too.
    filtered = url + "?state=confirmed&mode=onsite&sector=company&q=yamada"
    assert _count_queries(app, lambda: client.get(filtered)) == small


def test_organiser_search_in_either_script(client, setup, app):
    _fill(app, setup, 3)
    login(client, setup["organiser"])
    url = f"/en/organiser/events/{setup['slug']}/registrations/"
    for q in ("山田花子1", "山田 花子1", "hanako yamada 1", "やまだ"):
        r = client.get(url, query_string={"q": q})
        assert r.status_code == 200
        assert "Hanako Yamada 1" in r.text, q
    r = client.get(url, query_string={"q": "花子2"})
    assert "Hanako Yamada 2" in r.text and "Hanako Yamada 1" not in r.text
    r = client.get(url, query_string={"q": "100%_"})
    assert "1 registrations" not in r.text and "0 registrations" in r.text


def test_csv_export_has_bom_and_japanese(client, setup, app):
    _fill(app, setup, 2)
    login(client, setup["organiser"])
    r = client.get(f"/ja/organiser/events/{setup['slug']}/registrations/export.csv")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert r.data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(r.data.decode("utf-8-sig"))))
    assert len(rows) == 3
    assert rows[1][1:3] == ["山田", "花子0"]
    assert rows[2][10] == "member区分"
    english = client.get(f"/en/organiser/events/{setup['slug']}/registrations/export.csv")
    header = next(csv.reader(io.StringIO(english.data.decode("utf-8-sig"))))
    assert header[:3] == ["ID", "Family name", "Given name"]


def test_organiser_adds_person_without_account_changes_state_and_sees_history(client, setup, app):
    login(client, setup["organiser"])
    base = f"/en/organiser/events/{setup['slug']}/registrations/"
    r = client.post(
        base + "add",
        data={"attendance_mode": "onsite", "fee_category": setup["free_id"]},
    )
    assert r.status_code == 400
    assert "Please enter a name." in r.text
    r = client.post(
        base + "add",
        data={
            "family_name": "鈴木",
            "given_name": "一郎",
            "romanized_name": "Ichiro Suzuki",
            "preferred_language": "ja",
            "attendance_mode": "onsite",
            "fee_category": setup["member_id"],
            "reason": "invited speaker",
        },
    )
    assert r.status_code == 302
    with app.app_context():
        registration = db.session.scalars(sa.select(Registration)).one()
        reg_id = registration.id
        assert registration.state == S.pending_payment
        assert registration.person.user is None
    detail = client.get(base + f"{reg_id}/")
    assert "Ichiro Suzuki" in detail.text
    assert "Added by an organiser" in detail.text
    r = client.post(base + f"{reg_id}/state", data={"state": "confirmed", "reason": ""})
    assert r.status_code == 400
    assert "Please give a reason for this change." in r.text
    r = client.post(base + f"{reg_id}/paid")
    assert r.status_code == 302
    r = client.post(base + f"{reg_id}/state", data={"state": "cancelled", "reason": "cannot come"})
    assert r.status_code == 302
    detail = client.get(base + f"{reg_id}/")
    assert "Marked as paid" in detail.text
    assert "cannot come" in detail.text
    with app.app_context():
        assert db.session.get(Registration, reg_id).state == S.cancelled
    # The same registration through another event's URL: 404.
    with app.app_context():
        series = db.session.get(
            __import__("portal.events.models").events.models.Series, setup["series_id"]
        )
        other = f.event(db.session, series)
        db.session.commit()
        other_slug = other.slug
    assert (
        client.get(f"/en/organiser/events/{other_slug}/registrations/{reg_id}/").status_code == 404
    )


def test_check_in_page_one_click(client, setup, app):
    _fill(app, setup, 3)
    login(client, setup["organiser"])
    base = f"/en/organiser/events/{setup['slug']}/registrations/"
    r = client.get(base + "check-in", query_string={"q": "花子0"})
    assert r.status_code == 200
    with app.app_context():
        reg_id = db.session.scalar(
            sa.select(Registration.id)
            .join(Registration.person)
            .where(Registration.state == S.confirmed)
            .order_by(Registration.id)
        )
    assert f"/registrations/{reg_id}/check-in" in r.text
    r = client.post(base + f"{reg_id}/check-in", data={"q": "花子0"})
    assert r.status_code == 302
    assert "check-in?q=" in r.headers["Location"]
    with app.app_context():
        assert db.session.get(Registration, reg_id).state == S.attended
    r = client.post(base + f"{reg_id}/check-in", data={"q": "花子0"}, follow_redirects=True)
    assert "is already checked in" in r.text
    printable = client.get(base + "print")
    assert printable.status_code == 200
    assert "@media print" in printable.text or 'media="print"' in printable.text
    assert "山田 花子0" in printable.text


def test_fee_categories_management(client, setup, app):
    login(client, setup["organiser"])
    base = f"/en/organiser/events/{setup['slug']}/registrations/fees/"
    r = client.post(base + "new", data={"code": "x", "name_en": "Bad", "price": "12.5"})
    assert r.status_code == 400
    assert "This currency has no decimal places." in r.text
    assert 'value="12.5"' in r.text
    r = client.post(
        base + "new",
        data={
            "code": "overseas",
            "name_ja": "海外参加",
            "name_en": "Overseas",
            "price": "8,000",
            "early_bird_price": "6000",
            "early_bird_until": "2099-01-31T23:59",
            "position": "3",
        },
    )
    assert r.status_code == 302
    r = client.post(base + "new", data={"code": "overseas", "name_en": "Again", "price": "1"})
    assert r.status_code == 400
    assert "This code is already used for this event." in r.text
    with app.app_context():
        c = db.session.scalar(sa.select(FeeCategory).where(FeeCategory.code == "overseas"))
        assert (c.price_minor, c.early_bird_price_minor) == (8000, 6000)
        assert c.early_bird_until.isoformat() == "2099-01-31T14:59:00+00:00"  # Tokyo time
        cat_id = c.id
    edit = client.get(base + f"{cat_id}/edit")
    assert 'value="8000"' in edit.text
    r = client.post(base + f"{cat_id}/active", data={"active": "0"})
    assert r.status_code == 302
    with app.app_context():
        assert db.session.get(FeeCategory, cat_id).is_active is False
    r = client.post(base, data={"payment_days": "5"})
    assert r.status_code == 302
    with app.app_context():
        from portal.events.models import Event

        event = db.session.get(Event, setup["event_id"])
        assert services.settings_for(db.session, event).payment_days == 5


def test_usd_prices_in_major_units(client, app):
    with app.app_context():
        series = f.series(db.session, "workshop")
        event = f.event(db.session, series, format=EventFormat.onsite)
        admin = f.user(db.session, is_admin=True)
        db.session.commit()
        slug = event.slug
    login(client, admin)
    r = client.post(
        f"/en/organiser/events/{slug}/registrations/fees/new",
        data={"code": "regular", "name_en": "Regular", "price": "250.00"},
    )
    assert r.status_code == 302
    with app.app_context():
        assert db.session.scalar(sa.select(FeeCategory.price_minor)) == 25000


def test_dashboard_template_renders_counts(app, setup):
    _fill(app, setup, 4)
    with app.test_request_context("/en/"):
        from flask import g, render_template

        from portal.events.models import Event

        g.lang_code = "en"
        event = db.session.get(Event, setup["event_id"])
        html = render_template("registration/_dashboard.html", event=event)
    assert '<tr data-state="confirmed"><th>Place confirmed</th>' in html
    rows = {
        state: html.split(f'<tr data-state="{state}">')[1].split("</tr>")[0]
        for state in ("confirmed", "pending_payment", "waitlisted")
    }
    # Two free on site (confirmed), two paid online (awaiting payment).
    assert rows["confirmed"] == (
        '<th>Place confirmed</th>\n        <td data-mode="onsite">2</td><td data-mode="online">0</td>'
        '\n        <td data-mode="all">2</td>'
    )
    assert '<td data-mode="online">2</td>' in rows["pending_payment"]
    assert '<td data-mode="all">0</td>' in rows["waitlisted"]
