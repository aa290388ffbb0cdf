"""exchange_meeting: the field, the price line, places and its own waiting list, join and leave."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask_babel import force_locale

from plugins.exchange_meeting import services as em
from plugins.exchange_meeting.models import ExchangeMeetingSignup, SignupState
from portal import plugins
from portal.audit import AuditEntry
from portal.db import utcnow
from portal.events.models import EventFormat, EventPlugin
from portal.i18n import BilingualText
from portal.mail.models import OutboxEmail
from portal.registration import services
from portal.registration.models import FeeCategory, Registration, RegistrationState
from portal.registration.types import PriceLine, RegistrationField
from tests import factories as f

S = RegistrationState
E = SignupState
JOIN = {"exchange_meeting": True}


def fee(session, event, code="member", price=0) -> FeeCategory:
    category = FeeCategory(
        event_id=event.id, code=code, name=BilingualText(ja="会員", en="Member"), price_minor=price
    )
    session.add(category)
    session.flush()
    return category


def register(session, event, person=None, mode="onsite", answers=JOIN, **kw) -> Registration:
    person = person or f.person(session)
    return services.register(
        session, event, person, mode=mode, answers=answers, privacy_accepted=True, **kw
    )


def signup_state(session, registration) -> SignupState | None:
    signup = em.signup_for(session, registration.id)
    return signup.state if signup else None


def emails(session, template) -> list[OutboxEmail]:
    return list(
        session.scalars(
            sa.select(OutboxEmail).where(OutboxEmail.template == template).order_by(OutboxEmail.id)
        )
    )


@pytest.fixture
def event(session):
    """An open hybrid meeting with the exchange meeting on: 2 places, ¥3,000."""
    e = f.event(session)
    f.enable(session, e, "exchange_meeting", capacity=2, price=3000)
    session.commit()
    return e


# -- reception_places --------------------------------------------------------------------------


def test_hook_reception_places_exchange_meeting(app, session, event):
    """Two places: the first two who join have one, the third waits; someone who did not join
    has none. With the plugin off, no plugin answers (None)."""
    first, second, third = (register(session, event) for _ in range(3))
    not_joining = register(session, event, answers={})
    session.commit()
    assert signup_state(session, third) == E.waitlisted
    ids = [first.id, second.id, third.id, not_joining.id]
    with app.test_request_context():
        hooks = plugins.event_hooks(event)
        assert hooks.reception_places(event=event, registration_ids=ids) == {
            first.id: True,
            second.id: True,
            third.id: False,
            not_joining.id: False,
        }
        assert hooks.reception_places(event=event, registration_ids=None) == {
            first.id: True,
            second.id: True,
        }
        assert hooks.reception_places(event=event, registration_ids=[]) == {}
    other = f.event(session)
    session.commit()
    with app.test_request_context():
        assert (
            plugins.event_hooks(other).reception_places(event=other, registration_ids=ids) is None
        )


# -- registration_fields ---------------------------------------------------------------------


def test_hook_registration_fields_exchange_meeting(app, session, event):
    with app.test_request_context(), force_locale("en"):
        fields = services.registration_fields(event)
        assert len(fields) == 1
        field = fields[0]
        assert (field.name, str(field.label), field.kind, field.required) == (
            "exchange_meeting",
            "Join the exchange meeting",
            "checkbox",
            False,
        )
        assert field.help == "Fee: ¥3,000. 2 places left. For participants on site."
        assert isinstance(field, RegistrationField)

        register(session, event)
        register(session, event)
        session.commit()
        help_full = services.registration_fields(event)[0].help
        assert help_full == (
            "Fee: ¥3,000. Full: you will join its waiting list, and pay its fee only if you "
            "get a place. For participants on site."
        )


def test_registration_field_without_limit_and_free_and_open_to_online(app, session):
    e = f.event(session)
    f.enable(session, e, "exchange_meeting", capacity=0, price=0, online_may_join=True)
    session.commit()
    with app.test_request_context(), force_locale("en"):
        assert services.registration_fields(e)[0].help == "Free of charge."


def test_registration_field_vanishes_when_off_or_nobody_may_join(app, session):
    off = f.event(session)
    online_only = f.event(session, format=EventFormat.online)
    f.enable(session, online_only, "exchange_meeting", capacity=10)
    session.commit()
    with app.test_request_context():
        assert services.registration_fields(off) == []
        assert services.registration_fields(online_only) == []


# -- price_lines -----------------------------------------------------------------------------


def test_hook_price_lines_exchange_meeting(app, session, event):
    member = fee(session, event, price=5000)
    person = f.person(session)
    session.commit()

    def preview(mode="onsite", answers=JOIN):
        return services.build_registration(
            session, event, person, mode=mode, fee_category=member.id, answers=answers
        )

    chosen = preview()
    assert [(line.code, line.amount_minor) for line in services.compute_price_lines(chosen)] == [
        ("fee:member", 5000),
        ("exchange_meeting", 3000),
    ]
    assert chosen.total_minor == 8000
    assert chosen.price_lines[1]["label"]["en"] == "Exchange meeting"
    lines = plugins.collect(plugins.event_hooks(event).price_lines(registration=chosen))
    assert lines == [
        PriceLine(code="exchange_meeting", label=lines[0].label, amount_minor=3000, currency="JPY")
    ]
    # Not chosen, or online (online participants may not join here): no line.
    assert preview(answers={}).total_minor == 5000
    assert preview(mode="online").total_minor == 5000


def test_price_line_in_the_series_currency_and_not_when_free(app, session):
    workshop = f.series(session, "workshop")
    e = f.event(session, workshop)
    f.enable(session, e, "exchange_meeting", price=250)
    free = f.event(session)
    f.enable(session, free, "exchange_meeting", price=0)
    person = f.person(session)
    session.commit()
    paid = services.build_registration(session, e, person, mode="onsite", answers=JOIN)
    assert [
        (line["code"], line["amount_minor"], line["currency"]) for line in paid.price_lines
    ] == [("exchange_meeting", 25000, "USD")]
    nothing = services.build_registration(session, free, person, mode="onsite", answers=JOIN)
    assert nothing.price_lines == []


def test_price_line_vanishes_when_the_plugin_is_off(app, session):
    e = f.event(session)
    person = f.person(session)
    session.commit()
    preview = services.build_registration(session, e, person, mode="onsite", answers=JOIN)
    assert preview.price_lines == []
    assert preview.answers == {}  # the answer to a field that is not offered is dropped


# -- registration_changed: places, waiting list, promotion ------------------------------------


def test_hook_registration_changed_exchange_meeting(app, session, event):
    first = register(session, event)
    second = register(session, event)
    english = f.person(session, preferred_language="en", email="third@example.org")
    third = register(session, event, english)
    session.commit()

    assert [signup_state(session, r) for r in (first, second, third)] == [E.confirmed] * 2 + [
        E.waitlisted
    ]
    # Places are paid with the registration; the waiting person pays nothing yet.
    assert [(r.state, r.total_minor) for r in (first, second, third)] == [
        (S.pending_payment, 3000),
        (S.pending_payment, 3000),
        (S.confirmed, 0),
    ]
    waiting_mail = emails(session, "exchange_meeting/waitlisted")
    assert [(m.to_address, m.language) for m in waiting_mail] == [("third@example.org", "en")]
    assert waiting_mail[0].subject == (
        f"You are on the waiting list of the exchange meeting: {event.title.en}"
    )
    assert "you are number 1 on its waiting list" in waiting_mail[0].body_text

    services.cancel(session, first, actor=None)
    session.commit()

    assert [signup_state(session, r) for r in (first, second, third)] == [
        E.cancelled,
        E.confirmed,
        E.confirmed,
    ]
    promoted = emails(session, "exchange_meeting/promoted")
    assert [(m.to_address, m.language) for m in promoted] == [("third@example.org", "en")]
    assert promoted[0].subject == f"A place at the exchange meeting is yours: {event.title.en}"
    # The third registration was confirmed (nothing to pay) before: its fee is due on the day.
    assert "Please pay its fee of ¥3,000 at the reception." in promoted[0].body_text
    assert em.fee_at_reception(third, em.meeting_settings(event)) == 3000
    assert (third.state, third.total_minor) == (S.confirmed, 0)
    assert em.counts(session, event) == {E.confirmed: 2, E.waitlisted: 0, E.cancelled: 1}


def test_promotion_adds_the_fee_to_an_unpaid_registration(app, session, event):
    member = fee(session, event, price=5000)
    register(session, event, fee_category=member.id)
    holder = register(session, event, fee_category=member.id)
    waiting = register(session, event, fee_category=member.id)
    session.commit()
    assert (waiting.state, waiting.total_minor, signup_state(session, waiting)) == (
        S.pending_payment,
        5000,
        E.waitlisted,
    )

    services.cancel(session, holder, actor=None)
    session.commit()

    assert (waiting.state, waiting.total_minor, signup_state(session, waiting)) == (
        S.pending_payment,
        8000,
        E.confirmed,
    )
    assert [line["code"] for line in waiting.price_lines] == ["fee:member", "exchange_meeting"]
    history = [entry.action for entry, _user in services.history(session, waiting)]
    assert history == ["registered", "repriced"]
    body = emails(session, "exchange_meeting/promoted")[0].body_text
    assert "¥8,000" in body
    assert em.fee_at_reception(waiting, em.meeting_settings(event)) == 0


def test_online_participants_only_when_allowed_and_mode_switches(app, session, event):
    online = register(session, event, mode="online")
    session.commit()
    assert signup_state(session, online) is None

    services.switch_mode(session, online, "onsite", actor=None)
    session.commit()
    assert signup_state(session, online) == E.confirmed

    other = register(session, event)
    waiting = register(session, event)
    session.commit()
    assert signup_state(session, waiting) == E.waitlisted

    services.switch_mode(session, online, "online", actor=None)
    session.commit()
    assert [signup_state(session, r) for r in (online, other, waiting)] == [
        E.cancelled,
        E.confirmed,
        E.confirmed,
    ]


def test_online_participants_join_when_the_setting_allows(app, session):
    e = f.event(session)
    f.enable(session, e, "exchange_meeting", capacity=5, online_may_join=True)
    session.commit()
    online = register(session, e, mode="online")
    session.commit()
    assert signup_state(session, online) == E.confirmed


def test_main_waiting_list_has_no_place_until_it_gets_a_seat(app, session):
    e = f.event(session, format=EventFormat.onsite, capacity_onsite=1)
    f.enable(session, e, "exchange_meeting", capacity=5)
    session.commit()
    seated = register(session, e)
    waiting = register(session, e)
    session.commit()
    assert (waiting.state, signup_state(session, waiting)) == (S.waitlisted, None)

    services.cancel(session, seated, actor=None)
    session.commit()
    assert (waiting.state, signup_state(session, waiting)) == (S.confirmed, E.confirmed)

    # Moved back to the meeting's waiting list by an organiser: the place is freed.
    services.waitlist(session, waiting, actor=None, reason="capacity cut")
    session.commit()
    assert signup_state(session, waiting) == E.cancelled


def test_reregistering_after_cancelling_signs_up_again(app, session, event):
    person = f.person(session)
    registration = register(session, event, person)
    services.cancel(session, registration, actor=None)
    session.commit()
    again = register(session, event, person)
    session.commit()
    assert again.id == registration.id
    assert signup_state(session, again) == E.confirmed
    assert session.scalar(sa.select(sa.func.count()).select_from(ExchangeMeetingSignup)) == 1


def test_a_predicted_place_that_went_to_someone_else_is_not_charged(app, session):
    """The race the lock cannot rule out on PostgreSQL (prices are computed before the lock):
    a registration priced with a place that is waitlisted gets the line taken off, and a
    pending payment left with nothing to pay is confirmed."""
    e = f.event(session)
    f.enable(session, e, "exchange_meeting", capacity=0, price=3000)
    session.commit()
    registration = register(session, e)
    session.commit()
    assert (registration.state, registration.total_minor) == (S.pending_payment, 3000)
    signup = em.signup_for(session, registration.id)
    signup.state = E.waitlisted  # as if the last place had gone meanwhile
    signup.waitlisted_at = utcnow()
    session.flush()

    em.sync(session, registration)
    session.commit()

    assert (registration.state, registration.total_minor, registration.price_lines) == (
        S.confirmed,
        0,
        [],
    )
    actions = [entry.action for entry, _user in services.history(session, registration)]
    assert actions == ["registered", "repriced", "confirmed"]


# -- join and leave --------------------------------------------------------------------------


def test_join_and_leave_promote_the_next_person(app, session, event):
    a = register(session, event, answers={})
    b = register(session, event)
    c = register(session, event)
    d = register(session, event)
    session.commit()
    assert [signup_state(session, r) for r in (a, b, c, d)] == [
        None,
        E.confirmed,
        E.confirmed,
        E.waitlisted,
    ]

    em.join(session, a, actor=None)
    session.commit()
    assert (signup_state(session, a), a.answers) == (E.waitlisted, JOIN)
    positions = em.positions(session, event, [em.signup_for(session, r.id).id for r in (a, d)])
    assert sorted(positions.values()) == [1, 2]
    assert positions[em.signup_for(session, d.id).id] == 1

    em.leave(session, b, actor=None)
    session.commit()
    assert [signup_state(session, r) for r in (a, b, c, d)] == [
        E.waitlisted,
        E.cancelled,
        E.confirmed,
        E.confirmed,
    ]
    assert b.answers == {"exchange_meeting": False}
    # b was waiting for payment of the exchange meeting only: nothing left to pay, confirmed.
    assert (b.state, b.total_minor) == (S.confirmed, 0)
    # d was confirmed (nothing to pay) while waiting: its fee is due at the reception.
    assert (d.state, d.total_minor) == (S.confirmed, 0)

    with pytest.raises(em.ExchangeMeetingError):
        em.join(session, c, actor=None)  # already has a place
    with pytest.raises(em.ExchangeMeetingError):
        em.leave(session, b, actor=None)  # not signed up


def test_join_refused_online_after_the_start_and_when_cancelled(app, session, event):
    online = register(session, event, mode="online", answers={})
    gone = register(session, event, answers={})
    services.cancel(session, gone, actor=None)
    session.commit()
    with pytest.raises(em.ExchangeMeetingError) as refused:
        em.join(session, online, actor=None)
    with force_locale("en"):
        assert str(refused.value.message) == "The exchange meeting is for participants on site."
    with pytest.raises(em.ExchangeMeetingError):
        em.join(session, gone, actor=None)
    later = register(session, event, answers={})
    session.commit()
    with pytest.raises(em.ExchangeMeetingError):
        em.join(session, later, actor=None, now=event.starts_at + timedelta(minutes=1))
    session.rollback()
    assert em.counts(session, event)[E.confirmed] == 0


def test_promote_waiting_after_the_capacity_was_raised(app, session, event):
    regs = [register(session, event) for _ in range(4)]
    session.commit()
    assert em.counts(session, event)[E.waitlisted] == 2
    row = session.scalar(sa.select(EventPlugin).where(EventPlugin.event_id == event.id))
    row.settings = {**row.settings, "capacity": 3}
    session.commit()
    plugins.forget(event)

    promoted = em.promote_waiting(session, event, actor=None)
    session.commit()

    assert [s.registration_id for s in promoted] == [regs[2].id]
    assert em.counts(session, event) == {E.confirmed: 3, E.waitlisted: 1, E.cancelled: 0}
    entries = session.scalars(
        sa.select(AuditEntry.action).where(AuditEntry.subject_type == "exchange_meeting_signup")
    ).all()
    assert sorted(entries) == ["joined", "joined", "promoted", "waitlisted", "waitlisted"]


def test_hook_personal_data_exchange_meeting(app, session, event):
    person = f.person(session)
    register(session, event, person)
    nobody = f.person(session)
    session.commit()
    plugin = plugins.manager().get_plugin("exchange_meeting")
    data = plugin.personal_data(person=person)
    signup = em.signup_for(session, session.scalar(sa.select(Registration.id)))
    assert data == {
        "signups": [
            {
                "event": event.slug,
                "state": "confirmed",
                "created_at": signup.created_at.isoformat(),
            }
        ]
    }
    assert plugin.personal_data(person=nobody) == {}
    everything = plugins.collect(plugins.manager().hook.personal_data(person=person))
    assert data in everything
