"""Registration services: every transition, forbidden moves, capacity, waiting list, emails."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from portal.audit import AuditEntry
from portal.db import utcnow
from portal.events.models import AttendanceMode, EventFormat, EventStatus
from portal.i18n import BilingualText
from portal.mail.models import OutboxEmail
from portal.registration import services
from portal.registration.models import FeeCategory, Registration, RegistrationState
from tests import factories as f

S = RegistrationState
ONSITE = AttendanceMode.onsite
ONLINE = AttendanceMode.online


def fee(session, event, code="member", price=5000, **kw) -> FeeCategory:
    values = dict(
        event_id=event.id,
        code=code,
        name=BilingualText(ja=f"{code}(日本語)", en=code.title()),
        price_minor=price,
    )
    values.update(kw)
    c = FeeCategory(**values)
    session.add(c)
    session.flush()
    return c


def reg(session, event, person=None, mode=ONSITE, category=None, **kw):
    person = person or f.person(session)
    return services.register(
        session,
        event,
        person,
        mode=mode,
        fee_category=category,
        privacy_accepted=True,
        **kw,
    )


def states(session, event):
    return list(
        session.execute(
            sa.select(Registration.person_id, Registration.state)
            .where(Registration.event_id == event.id)
            .order_by(Registration.id)
        )
    )


def history_actions(session, registration):
    return [
        (e.action, e.data.get("old"), e.data.get("new"))
        for e in session.scalars(
            sa.select(AuditEntry)
            .where(AuditEntry.subject_type == "registration")
            .where(AuditEntry.subject_id == registration.id)
            .order_by(AuditEntry.id)
        )
    ]


def outbox(session, to=None):
    stmt = sa.select(OutboxEmail).order_by(OutboxEmail.id)
    if to:
        stmt = stmt.where(OutboxEmail.to_address == to)
    return list(session.scalars(stmt))


# -- register ------------------------------------------------------------------------------


def test_free_registration_is_confirmed_at_once_with_audit_and_email(session):
    event = f.event(session)
    person = f.person(session, email="hanako@example.org", preferred_language="ja")
    r = reg(session, event, person)
    session.commit()
    assert r.state == S.confirmed
    assert r.total_minor == 0
    assert r.currency == "JPY"
    assert r.price_lines == []
    assert r.privacy_accepted_at is not None
    assert history_actions(session, r) == [("registered", None, "confirmed")]
    mails = outbox(session, "hanako@example.org")
    assert [m.template for m in mails] == ["registration/confirmed"]
    assert mails[0].language == "ja"
    assert mails[0].subject.endswith(event.title.ja)
    assert f"/ja/my/registrations/{r.id}/" in mails[0].body_text


def test_the_emails_are_compiled_before_the_event_lock_is_taken(app, session, monkeypatch):
    """Compiling the confirmation email (about 40 ms, once per worker) must not happen while
    the registration holds the event's lock: every other registration would wait for it."""
    from portal.db import db

    env = app.jinja_env
    compile_template = env.compile
    holding, compiled_under_lock, compiled = [False], [], []

    def compile_(source, name=None, *args, **kwargs):
        (compiled_under_lock if holding[0] else compiled).append(name)
        return compile_template(source, name, *args, **kwargs)

    take_write_lock = db.take_write_lock

    def take(session):
        take_write_lock(session)
        holding[0] = True

    monkeypatch.setattr(env, "bytecode_cache", None)  # the suite's shared compiled code
    monkeypatch.setattr(env, "compile", compile_)
    monkeypatch.setattr(db, "take_write_lock", take)
    event = f.event(session, capacity_onsite=10)
    registration = reg(session, event)
    session.commit()
    assert registration.state == S.confirmed
    assert session.scalar(sa.select(sa.func.count()).select_from(OutboxEmail)) == 1
    assert compiled_under_lock == []
    assert "mail/registration/confirmed.html" in compiled
    assert "mail/registration/_layout.html" in compiled


def test_paid_registration_waits_for_payment_with_deadline(session):
    event = f.event(session)
    category = fee(session, event, price=5000)
    person = f.person(session, preferred_language="en")
    before = f.utcnow()
    r = reg(session, event, person, category=category)
    session.commit()
    assert r.state == S.pending_payment
    assert r.total_minor == 5000
    assert r.price_lines == [
        {
            "code": "fee:member",
            "label": {"ja": "member(日本語)", "en": "Member"},
            "amount_minor": 5000,
            "currency": "JPY",
        }
    ]
    assert timedelta(days=3) - timedelta(seconds=5) < r.payment_deadline - before
    assert r.payment_deadline - before <= timedelta(days=3, seconds=5)
    assert [m.template for m in outbox(session)] == ["registration/pending_payment"]
    assert outbox(session)[0].language == "en"


def test_early_bird_price_until_its_date(session):
    event = f.event(session)
    now = f.utcnow()
    category = fee(
        session,
        event,
        price=6000,
        early_bird_price_minor=4000,
        early_bird_until=now + timedelta(days=1),
    )
    early = reg(session, event, category=category, now=now)
    late = reg(session, event, category=category, now=now + timedelta(days=2))
    assert early.total_minor == 4000
    assert early.price_lines[0]["label"]["en"] == "Member (early-bird price)"
    assert late.total_minor == 6000
    assert late.price_lines[0]["label"]["en"] == "Member"


def test_payment_deadline_setting_per_event(session):
    event = f.event(session)
    services.update_settings(session, event, payment_days=7, actor=None)
    category = fee(session, event)
    now = f.utcnow()
    r = reg(session, event, category=category, now=now)
    assert r.payment_deadline == now + timedelta(days=7)
    with pytest.raises(services.RegistrationError) as info:
        services.update_settings(session, event, payment_days=0, actor=None)
    assert info.value.field == "payment_days"


def test_second_registration_of_same_person_is_refused_with_the_existing_one(session):
    event = f.event(session)
    person = f.person(session)
    first = reg(session, event, person)
    with pytest.raises(services.AlreadyRegistered) as info:
        reg(session, event, person)
    assert info.value.registration.id == first.id
    assert session.scalar(sa.select(sa.func.count()).select_from(Registration)) == 1


def test_tampered_fee_category_of_another_event_is_refused(session):
    event = f.event(session)
    other = f.event(session)
    fee(session, event)
    foreign = fee(session, other, code="student", price=0)
    with pytest.raises(services.InvalidChoice) as info:
        reg(session, event, category=foreign.id)
    assert info.value.field == "fee_category"
    with pytest.raises(services.InvalidChoice):
        reg(session, event, category="abc")
    with pytest.raises(services.InvalidChoice):
        reg(session, event, category="")  # the event has categories: one must be chosen
    assert session.scalar(sa.select(sa.func.count()).select_from(Registration)) == 0


def test_inactive_category_and_wrong_mode_are_refused(session):
    event = f.event(session, format=EventFormat.onsite)
    inactive = fee(session, event, is_active=False)
    with pytest.raises(services.InvalidChoice):
        reg(session, event, category=inactive)
    fee(session, event, code="student", price=0)
    with pytest.raises(services.InvalidChoice) as info:
        reg(session, event, mode="online")
    assert info.value.field == "attendance_mode"


def test_members_only_category_uses_member_status(session):
    series = f.series(session)
    event = f.event(session, series)
    members = fee(session, event, requires_membership=True, price=3000)
    outsider = f.user(session)
    with pytest.raises(services.MembershipRequired):
        reg(session, event, outsider.person, category=members, user=outsider)
    member = f.user(session, roles=(("member", series),))
    r = reg(session, event, member.person, category=members, user=member)
    assert r.total_minor == 3000


@pytest.mark.parametrize("status", [EventStatus.closed, EventStatus.cancelled, EventStatus.draft])
def test_closed_cancelled_and_draft_events_refuse_registration(session, status):
    event = f.event(session, status=status)
    with pytest.raises(services.RegistrationClosed):
        reg(session, event)
    assert session.scalar(sa.select(sa.func.count()).select_from(Registration)) == 0


def test_privacy_notice_must_be_accepted(session):
    event = f.event(session)
    with pytest.raises(services.RegistrationError) as info:
        services.register(session, event, f.person(session), mode="onsite")
    assert info.value.field == "privacy"


# -- capacity and waiting list ---------------------------------------------------------------


def test_one_waiting_place_counts_as_the_whole_list_orders_it(session):
    """``waitlist_position`` (a count on the index) agrees with ``waitlist_positions`` (the
    window over the list): per mode, by the time of waiting, then by id for the same time."""
    event = f.event(session, format=EventFormat.hybrid, capacity_onsite=1, capacity_online=1)
    now = utcnow()
    regs = []
    for i in range(8):
        mode = ONSITE if i % 3 else ONLINE
        # Two by two at the same moment: the id decides between them.
        regs.append(
            reg(session, event, f.person(session), mode=mode, now=now + timedelta(seconds=i // 2))
        )
    session.commit()
    waiting = [r for r in regs if r.state == S.waitlisted]
    assert len(waiting) == 6
    expected = services.waitlist_positions(session, regs)
    assert sorted(expected.values()) == [1, 1, 2, 2, 3, 4]
    assert {r.id: services.waitlist_position(session, r) for r in waiting} == expected
    assert services.waitlist_position(session, regs[0]) is None  # confirmed: no place


def test_capacity_three_five_registrations_then_cancel_promotes_first_waiting(session):
    event = f.event(session, format=EventFormat.onsite, capacity_onsite=3)
    people = [f.person(session, email=f"p{i}@example.org") for i in range(5)]
    regs = [reg(session, event, p) for p in people]
    session.commit()
    assert [r.state for r in regs] == [S.confirmed] * 3 + [S.waitlisted] * 2
    assert services.waitlist_positions(session, regs) == {regs[3].id: 1, regs[4].id: 2}
    assert services.waitlist_position(session, regs[4]) == 2
    assert [m.template for m in outbox(session, "p3@example.org")] == ["registration/waitlisted"]

    services.cancel(session, regs[1], actor=None)
    session.commit()
    assert regs[1].state == S.cancelled
    assert regs[3].state == S.confirmed
    assert regs[4].state == S.waitlisted
    assert services.waitlist_position(session, regs[4]) == 1
    promoted_mail = outbox(session, "p3@example.org")[-1]
    assert promoted_mail.template == "registration/promoted"
    assert [m.template for m in outbox(session, "p1@example.org")] == [
        "registration/confirmed",
        "registration/cancelled",
    ]
    assert history_actions(session, regs[3]) == [
        ("registered", None, "waitlisted"),
        ("promoted", "waitlisted", "confirmed"),
    ]


def test_paid_promotion_goes_to_pending_payment(session):
    event = f.event(session, format=EventFormat.onsite, capacity_onsite=1)
    category = fee(session, event, price=2000)
    first = reg(session, event, category=category)
    second = reg(session, event, category=category)
    assert (first.state, second.state) == (S.pending_payment, S.waitlisted)
    services.cancel(session, first, actor=None)
    assert second.state == S.pending_payment
    assert second.payment_deadline is not None


def test_capacity_per_mode_is_separate_and_none_is_unlimited(session):
    event = f.event(session, capacity_onsite=1, capacity_online=None)
    a = reg(session, event, mode="onsite")
    b = reg(session, event, mode="onsite")
    online = [reg(session, event, mode="online") for _ in range(5)]
    assert (a.state, b.state) == (S.confirmed, S.waitlisted)
    assert {r.state for r in online} == {S.confirmed}
    assert services.seats_left(session, event) == {ONSITE: 0, ONLINE: None}


def test_pending_payment_holds_seat_until_deadline_then_expires(session):
    event = f.event(session, format=EventFormat.onsite, capacity_onsite=1)
    category = fee(session, event, price=1000)
    now = f.utcnow()
    first = reg(session, event, f.person(session, email="late@example.org"), category=category)
    second = reg(session, event, category=category)
    assert second.state == S.waitlisted
    # Before the deadline nothing expires.
    assert services.expire_unpaid(session, now=now) == []
    expired = services.expire_unpaid(session, now=first.payment_deadline + timedelta(seconds=1))
    session.commit()
    assert expired == [first]
    assert first.state == S.cancelled
    assert second.state == S.pending_payment
    assert outbox(session, "late@example.org")[-1].template == "registration/expired"
    assert history_actions(session, first)[-1] == ("expired", "pending_payment", "cancelled")


def test_expire_command(app, session, runner):
    event = f.event(session, format=EventFormat.onsite, capacity_onsite=1)
    category = fee(session, event, price=1000)
    r = reg(session, event, category=category)
    r.payment_deadline = f.utcnow() - timedelta(minutes=1)
    session.commit()
    result = runner.invoke(args=["registrations", "expire"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "expired 1"
    session.expire_all()
    assert session.get(Registration, r.id).state == S.cancelled


def test_overdue_pending_seat_goes_to_waiting_person_before_newcomer(session):
    event = f.event(session, format=EventFormat.onsite, capacity_onsite=1)
    category = fee(session, event, price=1000)
    now = f.utcnow()
    first = reg(session, event, category=category, now=now)
    waiting = reg(session, event, category=category, now=now)
    later = first.payment_deadline + timedelta(minutes=1)
    newcomer = reg(session, event, category=category, now=later)
    assert waiting.state == S.pending_payment
    assert newcomer.state == S.waitlisted
    # The late payer's seat is gone: confirming now is refused.
    with pytest.raises(services.NoPlaceAvailable):
        services.confirm(session, first, now=later)


# -- other transitions -----------------------------------------------------------------------


def test_mark_paid_confirms_and_twice_is_refused(session):
    event = f.event(session)
    organiser = f.user(session, is_admin=True)
    r = reg(session, event, category=fee(session, event))
    services.mark_paid(session, r, actor=organiser, reason="bank transfer 2020-10-01")
    assert r.state == S.confirmed
    assert r.payment_deadline is None
    entry = session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "marked_paid")).one()
    assert entry.actor_id == organiser.id
    assert entry.data == {
        "old": "pending_payment",
        "new": "confirmed",
        "reason": "bank transfer 2020-10-01",
    }
    with pytest.raises(services.TransitionNotAllowed):
        services.mark_paid(session, r, actor=organiser)


def test_check_in_and_forbidden_moves(session):
    event = f.event(session)
    confirmed = reg(session, event)
    pending = reg(session, event, category=fee(session, event))
    with pytest.raises(services.TransitionNotAllowed):
        services.check_in(session, pending, actor=None)
    services.check_in(session, confirmed, actor=None)
    assert confirmed.state == S.attended
    assert confirmed.checked_in_at is not None
    with pytest.raises(services.TransitionNotAllowed):
        services.check_in(session, confirmed, actor=None)
    with pytest.raises(services.TransitionNotAllowed):
        services.cancel(session, confirmed, actor=None)
    services.cancel(session, pending, actor=None)
    with pytest.raises(services.TransitionNotAllowed):
        services.cancel(session, pending, actor=None)
    with pytest.raises(services.TransitionNotAllowed):
        services.mark_paid(session, pending, actor=None)
    with pytest.raises(services.TransitionNotAllowed):
        services.switch_mode(session, pending, "online", actor=None)


def test_allowed_moves_table():
    assert services.ALLOWED_MOVES == {
        None: {S.confirmed, S.pending_payment, S.waitlisted},
        S.cancelled: {S.confirmed, S.pending_payment, S.waitlisted},
        S.pending_payment: {S.confirmed, S.cancelled, S.waitlisted},
        S.confirmed: {S.cancelled, S.attended, S.waitlisted},
        S.waitlisted: {S.confirmed, S.pending_payment, S.cancelled},
        S.attended: {S.confirmed},
    }


def test_register_again_after_cancelling_reuses_the_row(session):
    event = f.event(session)
    person = f.person(session)
    first = reg(session, event, person)
    services.cancel(session, first, actor=None)
    again = reg(session, event, person, mode="online")
    assert again.id == first.id
    assert again.state == S.confirmed
    assert again.attendance_mode == ONLINE
    assert history_actions(session, again) == [
        ("registered", None, "confirmed"),
        ("cancelled", "confirmed", "cancelled"),
        ("reregistered", "cancelled", "confirmed"),
    ]


def test_switch_mode_while_places_allow(session):
    event = f.event(session, capacity_onsite=1, capacity_online=1)
    onsite = reg(session, event, f.person(session, email="a@example.org"), mode="onsite")
    waiting = reg(session, event, mode="onsite")
    online = reg(session, event, mode="online")
    # Online is full: switching there is refused.
    with pytest.raises(services.NoPlaceAvailable):
        services.switch_mode(session, onsite, "online", actor=None)
    services.cancel(session, online, actor=None)
    services.switch_mode(session, onsite, "online", actor=None)
    assert onsite.attendance_mode == ONLINE
    assert onsite.state == S.confirmed
    # Its on-site seat went to the person waiting.
    assert waiting.state == S.confirmed
    assert outbox(session, "a@example.org")[-1].template == "registration/mode_switched"
    entry = history_actions(session, onsite)[-1]
    assert entry == ("mode_switched", "confirmed", "confirmed")


def test_waitlist_by_organiser_and_organiser_state_changes(session):
    event = f.event(session, format=EventFormat.onsite, capacity_onsite=1)
    organiser = f.user(session, is_admin=True)
    a = reg(session, event)
    b = reg(session, event)
    with pytest.raises(services.RegistrationError) as info:
        services.change_state_by_organiser(session, b, "confirmed", actor=organiser, reason="")
    assert info.value.field == "reason"
    with pytest.raises(services.NoPlaceAvailable):
        services.change_state_by_organiser(
            session, b, "confirmed", actor=organiser, reason="speaker"
        )
    services.change_state_by_organiser(
        session, b, "confirmed", actor=organiser, reason="speaker", force=True
    )
    assert (a.state, b.state) == (S.confirmed, S.confirmed)
    services.change_state_by_organiser(
        session, a, "waitlisted", actor=organiser, reason="capacity reduced"
    )
    assert a.state == S.waitlisted
    services.change_state_by_organiser(session, b, "attended", actor=organiser, reason="at desk")
    services.change_state_by_organiser(session, b, "confirmed", actor=organiser, reason="mistake")
    assert b.state == S.confirmed
    assert b.checked_in_at is None
    services.change_state_by_organiser(session, b, "cancelled", actor=organiser, reason="ill")
    # b's seat goes to a, who waited.
    assert a.state == S.confirmed
    assert history_actions(session, b) == [
        ("registered", None, "waitlisted"),
        ("state_changed_by_organiser", "waitlisted", "confirmed"),
        ("checked_in", "confirmed", "attended"),
        ("check_in_undone", "attended", "confirmed"),
        ("cancelled", "confirmed", "cancelled"),
    ]
    reasons = [
        e.data["reason"]
        for e in session.scalars(
            sa.select(AuditEntry).where(AuditEntry.subject_id == b.id).order_by(AuditEntry.id)
        )
    ]
    assert reasons == ["", "speaker", "at desk", "mistake", "ill"]


def test_organiser_add_with_new_person_and_inactive_category(session):
    event = f.event(session, status=EventStatus.closed)
    organiser = f.user(session, is_admin=True)
    speaker_fee = fee(session, event, code="speaker", price=0, is_active=False)
    person = services.create_guest_person(
        session, family_name="鈴木", given_name="一郎", romanized_name="Ichiro Suzuki"
    )
    r = services.organiser_add(
        session,
        event,
        person,
        mode="onsite",
        fee_category=speaker_fee.id,
        actor=organiser,
        reason="invited speaker",
    )
    assert r.state == S.confirmed
    assert r.user_id is None
    assert history_actions(session, r) == [("added_by_organiser", None, "confirmed")]
    with pytest.raises(services.AlreadyRegistered):
        services.organiser_add(
            session, event, person, mode="onsite", fee_category=speaker_fee, actor=organiser
        )
    # No email address: no email.
    assert outbox(session) == []


def test_registration_counts_in_one_grouped_query(app, session):
    event = f.event(session, capacity_onsite=2)
    reg(session, event, f.person(session, sector="company"))
    reg(session, event, f.person(session, sector="university"))
    reg(session, event, f.person(session, sector="company"))  # waitlisted
    reg(session, event, f.person(session, sector="government_other"), mode="online")
    cancelled = reg(session, event, f.person(session, sector=None), mode="online")
    services.cancel(session, cancelled, actor=None)
    session.commit()
    queries = []
    engine = app.extensions["portal_db"]["engine"]

    def count(conn, cursor, statement, *args):
        if not statement.startswith("BEGIN"):
            queries.append(statement)

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        counts = services.registration_counts(session, event)
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    assert len(queries) == 1
    assert counts.get(state="confirmed") == 3
    assert counts.get(state="confirmed", mode="onsite") == 2
    assert counts.get(state="waitlisted", mode="onsite", sector="company") == 1
    assert counts.get(state="cancelled", sector=None) == 1
    assert counts.get(state="confirmed", sector="company") == 1
    assert counts.get() == 5
    assert counts.sectors == ["company", "university", "government_other", None]


def test_the_plain_insert_of_a_registration_copies_every_foreign_key():
    """``transitions._insert`` sets the foreign keys the ORM would copy from the many-to-one
    relationships: a relationship added to Registration must be added there too."""
    from sqlalchemy.orm import MANYTOONE

    from portal.registration.transitions import _RELATED

    mapper = sa.inspect(Registration)
    expected = {
        (rel.key, next(iter(rel.local_columns)).key)
        for rel in mapper.relationships
        if rel.direction is MANYTOONE
    }
    assert set(_RELATED) == expected
