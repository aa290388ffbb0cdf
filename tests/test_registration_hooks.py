"""The registration hooks, through a small test plugin enabled on one event only."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from portal import plugins
from portal.db import db
from portal.events.models import Event
from portal.hookspecs import hookimpl
from portal.registration import services
from portal.registration.models import Registration, RegistrationState
from portal.registration.types import PaymentMethod, PriceLine, RegistrationField
from tests import factories as f

S = RegistrationState


class DinnerPlugin:
    """Adds a dinner (¥3,000) as a checkbox, a price line, a payment method; records changes."""

    name = "dinner_test"
    label = "Dinner (test)"
    description = "A test plugin"
    default_settings: dict = {}

    def __init__(self):
        self.changes = []
        self.refusal = ""  # a test sets it: registration_changed then refuses the change

    @hookimpl
    def registration_fields(self, event):
        return [
            RegistrationField(name="dinner_test", label="Dinner after the meeting"),
            RegistrationField(
                name="dinner_test_menu",
                label="Menu",
                kind="select",
                choices=(("fish", "Fish"), ("veg", "Vegetarian")),
            ),
        ]

    @hookimpl
    def price_lines(self, registration):
        if registration.answers.get("dinner_test"):
            return [PriceLine(code="dinner", label="Dinner", amount_minor=3000, currency="JPY")]
        return []

    @hookimpl
    def payment_methods(self, event, registration):
        return [
            PaymentMethod(
                code="test_card",
                label="Pay by card (test)",
                url=f"https://pay.invalid/{registration.id}",
            )
        ]

    @hookimpl
    def registration_changed(self, registration, old, new):
        if self.refusal:
            from portal.registration.errors import RegistrationError

            raise RegistrationError(self.refusal)
        self.changes.append((registration.event_id, old, new))


@pytest.fixture
def plugin(app):
    p = DinnerPlugin()
    app.extensions["portal_plugins"].register(p, name=p.name)
    return p


@pytest.fixture
def two_events(app, plugin):
    """The plugin is on for ``with_plugin`` and not for ``without``."""
    with app.app_context():
        with_plugin = f.event(db.session)
        without = f.event(db.session)
        f.enable(db.session, with_plugin, plugin.name)
        user = f.user(db.session)
        db.session.commit()
        return with_plugin.id, without.id, user


def login(client, user):
    with client.session_transaction() as s:
        s["_user_id"] = user.get_id()
        s["_fresh"] = True


def test_hook_registration_fields(app, client, two_events):
    with_id, without_id, user = two_events
    with app.app_context():
        on = db.session.get(Event, with_id)
        off = db.session.get(Event, without_id)
        assert [f.name for f in services.registration_fields(on)] == [
            "dinner_test",
            "dinner_test_menu",
        ]
        assert services.registration_fields(off) == []
        on_slug, off_slug = on.slug, off.slug
    login(client, user)
    page = client.get(f"/en/events/{on_slug}/register")
    assert 'name="x_dinner_test"' in page.text
    assert "Dinner after the meeting" in page.text
    assert 'name="x_dinner_test"' not in client.get(f"/en/events/{off_slug}/register").text
    # A tampered select answer is refused next to its field; nothing is stored.
    r = client.post(
        f"/en/events/{on_slug}/register",
        data={
            "attendance_mode": "online",
            "privacy": "y",
            "x_dinner_test": "y",
            "x_dinner_test_menu": "steak",
            "step": "confirm",
        },
    )
    assert r.status_code == 400
    assert "Please choose one of the options offered." in r.text
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Registration)) == 0
    r = client.post(
        f"/en/events/{on_slug}/register",
        data={
            "attendance_mode": "online",
            "privacy": "y",
            "x_dinner_test": "y",
            "x_dinner_test_menu": "veg",
            "step": "confirm",
        },
    )
    assert r.status_code == 302
    with app.app_context():
        registration = db.session.scalars(sa.select(Registration)).one()
        assert registration.answers == {"dinner_test": True, "dinner_test_menu": "veg"}


def test_hook_price_lines(app, two_events):
    with_id, without_id, _user = two_events
    with app.app_context():
        s = db.session
        on = s.get(Event, with_id)
        off = s.get(Event, without_id)
        with_dinner = services.register(
            s, on, f.person(s), mode="onsite", answers={"dinner_test": "y"}, privacy_accepted=True
        )
        no_dinner = services.register(
            s, on, f.person(s), mode="onsite", answers={}, privacy_accepted=True
        )
        elsewhere = services.register(
            s, off, f.person(s), mode="onsite", answers={"dinner_test": "y"}, privacy_accepted=True
        )
        assert with_dinner.price_lines == [
            {
                "code": "dinner",
                "label": {"ja": "Dinner", "en": "Dinner"},
                "amount_minor": 3000,
                "currency": "JPY",
            }
        ]
        assert (with_dinner.total_minor, with_dinner.state) == (3000, S.pending_payment)
        assert (no_dinner.total_minor, no_dinner.state) == (0, S.confirmed)
        assert (elsewhere.total_minor, elsewhere.answers) == (0, {})


def test_hook_price_lines_in_another_currency_is_a_plugin_error(app, two_events, plugin):
    with_id, _without_id, _user = two_events

    class WrongCurrency:
        name = "wrong_currency_test"
        description = label = "test"
        default_settings: dict = {}

        @hookimpl
        def price_lines(self, registration):
            return [PriceLine(code="x", label="X", amount_minor=1, currency="USD")]

    app.extensions["portal_plugins"].register(WrongCurrency(), name="wrong_currency_test")
    with app.app_context():
        s = db.session
        event = s.get(Event, with_id)
        f.enable(s, event, "wrong_currency_test")
        with pytest.raises(ValueError, match="USD"):
            services.register(s, event, f.person(s), mode="onsite", privacy_accepted=True)


def test_hook_payment_methods(app, client, two_events):
    with_id, without_id, user = two_events
    with app.app_context():
        s = db.session
        on = s.get(Event, with_id)
        off = s.get(Event, without_id)
        person = s.merge(user).person
        mine = services.register(
            s, on, person, mode="online", answers={"dinner_test": True}, privacy_accepted=True
        )
        other = services.register(
            s, off, f.person(s), mode="online", answers={}, privacy_accepted=True
        )
        assert services.payment_methods(on, mine) == [
            PaymentMethod(
                code="test_card", label="Pay by card (test)", url=f"https://pay.invalid/{mine.id}"
            )
        ]
        assert services.payment_methods(off, other) == []
        s.commit()
        mine_id = mine.id
    login(client, user)
    page = client.get(f"/en/my/registrations/{mine_id}/")
    assert f'href="https://pay.invalid/{mine_id}"' in page.text
    assert "Pay by card (test)" in page.text


def test_hook_registration_changed(app, two_events, plugin):
    with_id, without_id, _user = two_events
    with app.app_context():
        s = db.session
        on = s.get(Event, with_id)
        off = s.get(Event, without_id)
        r = services.register(s, on, f.person(s), mode="onsite", privacy_accepted=True)
        services.cancel(s, r, actor=None)
        services.register(s, off, f.person(s), mode="onsite", privacy_accepted=True)
        assert plugin.changes == [
            (with_id, None, S.confirmed),
            (with_id, S.confirmed, S.cancelled),
        ]


def test_disabling_the_plugin_stops_its_hooks(app, two_events, plugin):
    with_id, _without_id, _user = two_events
    with app.app_context():
        s = db.session
        event = s.get(Event, with_id)
        from portal.organiser.services import set_plugin_enabled

        set_plugin_enabled(s, event, plugin.name, False, actor=None)
        plugins.forget(event)
        assert services.registration_fields(event) == []
        services.register(s, event, f.person(s), mode="onsite", privacy_accepted=True)
        assert plugin.changes == []


def test_a_hook_refusing_the_change_leaves_no_row_behind(app, client, two_events, plugin):
    """The registration, its audit entry, ticket and mail are written with plain INSERTs
    before the ``registration_changed`` hooks run: a hook that refuses the change rolls all
    of them back, the form is shown again with the message, and a second try works."""
    from portal.audit import AuditEntry
    from portal.mail.models import OutboxEmail
    from portal.tickets.models import Ticket

    plugin.refusal = "The dinner list is closed (test)."
    with_id, _without_id, user = two_events
    with app.app_context():
        slug = db.session.get(Event, with_id).slug
    login(client, user)
    form = {"attendance_mode": "onsite", "privacy": "y", "step": "confirm"}

    def rows():
        with app.app_context():
            s = db.session
            return [
                s.scalar(sa.select(sa.func.count()).select_from(model))
                for model in (Registration, Ticket, OutboxEmail)
            ] + [
                s.scalar(
                    sa.select(sa.func.count())
                    .select_from(AuditEntry)
                    .where(AuditEntry.subject_type == "registration")
                )
            ]

    r = client.post(f"/en/events/{slug}/register", data=form)
    assert r.status_code == 400
    assert "The dinner list is closed (test)." in r.text
    assert rows() == [0, 0, 0, 0]

    plugin.refusal = ""
    r = client.post(f"/en/events/{slug}/register", data=form)
    assert r.status_code == 302 and "/my/registrations/" in r.headers["Location"]
    assert rows() == [1, 1, 1, 1]
    assert plugin.changes == [(with_id, None, S.confirmed)]
