"""The pages `make bench` measures issue the same number of SQL queries as data grows.

Event page (visitor and logged in), home page, series page, timetable and registration form,
with 10 and with 200 registrations and past meetings (bench/pages.py shows 10 against 1,000 on
the benchmark's data).
"""

from __future__ import annotations

from datetime import timedelta

from portal.db import db, utcnow
from portal.events.models import EventStatus
from portal.i18n import BilingualText
from portal.registration.models import FeeCategory, Registration, RegistrationState
from tests import factories as f
from tests.conftest import recorded_statements


def _count_queries(app, client, path: str) -> int:
    with recorded_statements(app, transactions=False) as statements:
        response = client.get(path)
    assert response.status_code == 200, path
    return len(statements)


def _grow(app, world, n: int) -> None:
    """Add n registrations to the event and n past meetings to its series."""
    with app.app_context():
        session = db.session
        for _ in range(n):
            person = f.person(session)
            session.add(
                Registration(
                    event_id=world["event_id"],
                    person_id=person.id,
                    attendance_mode="onsite",
                    fee_category_id=world["fee_id"],
                    state=RegistrationState.confirmed,
                    currency="JPY",
                    privacy_accepted_at=utcnow(),
                )
            )
            start = utcnow().replace(microsecond=0) - timedelta(days=30 + next(world["days"]))
            f.event(
                session,
                world["series"],
                starts_at=start,
                status=EventStatus.closed,
            )
        session.commit()


def test_query_counts_stay_flat_on_the_benchmarked_pages(app, client):
    with app.app_context():
        session = db.session
        series = f.series(session)
        event = f.event(session, series)
        for i in range(4):
            f.talk(session, event, f.person(session), position=i + 1)
        f.enable(session, event, "calendar")
        fee = FeeCategory(
            event_id=event.id,
            code="general",
            name=BilingualText(ja="一般", en="General"),
            price_minor=0,
        )
        session.add(fee)
        member = f.user(session)
        session.commit()
        world = {
            "series": series,
            "event_id": event.id,
            "fee_id": fee.id,
            "days": iter(range(10_000)),
        }
        slug, series_slug, member_id = event.slug, series.slug, member.get_id()
    member_client = app.test_client()
    with member_client.session_transaction() as s:
        s["_user_id"] = member_id
        s["_fresh"] = True
    pages = {
        "event page": (client, f"/ja/events/{slug}/"),
        "event page, logged in": (member_client, f"/ja/events/{slug}/"),
        "home page": (client, "/ja/"),
        "series page": (client, f"/ja/series/{series_slug}/"),
        "timetable": (client, f"/ja/events/{slug}/programme/"),
        "registration form": (member_client, f"/ja/events/{slug}/register"),
    }

    _grow(app, world, 10)
    small = {name: _count_queries(app, c, path) for name, (c, path) in pages.items()}
    _grow(app, world, 190)
    large = {name: _count_queries(app, c, path) for name, (c, path) in pages.items()}
    assert small == large
