"""The rules the payments core enforces, against the Stripe-shaped fake driven by the real
``stripe`` library: one card attempt per registration however many presses, refunds that
arrive first are not lost, a second payment is flagged for refund and explained."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from portal.payments.models import Payment, PaymentState, ProcessedWebhookEvent, RefundState
from portal.registration.models import RegistrationState
from tests.fakes import running_fake_stripe, stripe_settings
from tests.test_stripe_payments import (
    count,
    database,
    emails,
    login,
    make_world,
    payment_of,
    post_event,
    registration_state,
    start_payment,
)

S = RegistrationState
P = PaymentState


@pytest.fixture
def fake():
    with running_fake_stripe() as server:
        yield server


@pytest.fixture
def app_config(app_config, fake):
    return dict(app_config, **stripe_settings(fake))


def test_six_concurrent_presses_give_one_attempt_and_one_session(live_server, fake):
    """Six presses of "Continue to card payment" at the same moment (tabs, double clicks)
    against the threaded server: one attempt, one Checkout Session, every press sent to it."""
    import http.cookiejar
    import re
    import urllib.error
    import urllib.request

    app = live_server.app
    world = make_world(app)
    with database(app) as s:
        from portal.accounts.models import User

        email = s.get(User, world.payer).email

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    def browser():
        jar = http.cookiejar.CookieJar()
        return urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirect())

    def csrf(opener, path):
        page = opener.open(live_server.url + path).read().decode()
        return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)

    from tests.factories import PASSWORD

    opener = browser()
    token = csrf(opener, "/en/account/login")
    data = f"csrf_token={token}&email={email}&password={PASSWORD}".encode()
    try:
        opener.open(live_server.url + "/en/account/login", data=data)
    except urllib.error.HTTPError as answer:
        assert answer.code in (302, 303)
    pay_path = f"/en/payments/card/{world.reg}"
    tokens = [csrf(opener, pay_path) for _ in range(6)]
    start = threading.Barrier(6)
    locations: list[str] = []
    statuses: list[int] = []

    def press(token):
        start.wait()
        try:
            opener.open(live_server.url + pay_path, data=f"csrf_token={token}".encode())
            statuses.append(200)
        except urllib.error.HTTPError as answer:
            statuses.append(answer.code)
            locations.append(answer.headers.get("Location", ""))

    threads = [threading.Thread(target=press, args=(t,)) for t in tokens]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [303] * 6, statuses
    assert len(set(locations)) == 1, locations
    assert locations[0].startswith(f"{fake.url}/pay/cs_test_")
    assert len(fake.sessions) == 1
    assert count(app, Payment) == 1
    # Paying it charges once and confirms.
    session_id = locations[0].rsplit("/", 1)[1]
    with app.test_client() as client:
        assert post_event(client, fake, fake.complete(session_id)).status_code == 200
    assert registration_state(app, world) == S.confirmed
    assert len(fake.charges) == 1


def test_two_languages_share_the_one_live_attempt(client, app, fake):
    world = make_world(app)
    first = start_payment(client, app, world, lang="en")
    second = start_payment(client, app, world, lang="ja")
    assert first == second
    assert len(fake.sessions) == 1
    assert count(app, Payment) == 1


def test_a_refund_that_arrives_before_the_payment_is_retried_not_lost(client, app, fake):
    """Stripe sends ``charge.refunded`` before ``checkout.session.completed`` (the dashboard
    refund raced the webhook): the first answer is 409, so Stripe sends it again; after the
    payment is confirmed the resent event records the refund."""
    world = make_world(app)
    session_id = start_payment(client, app, world)
    completed = fake.complete(session_id)
    payment_intent = completed["data"]["object"]["payment_intent"]
    fake.refund({"payment_intent": payment_intent, "amount": "25000"})
    refunded = fake.last_event("charge.refunded")
    charge = refunded["data"]["object"]
    # The charge names the portal's payment in its metadata (payment_intent_data.metadata).
    assert charge["metadata"]["payment_id"] == str(payment_of(app, world).id)
    answer = post_event(client, fake, refunded)
    assert answer.status_code == 409
    assert count(app, ProcessedWebhookEvent) == 0
    assert payment_of(app, world).state == P.pending
    assert post_event(client, fake, completed).status_code == 200
    assert payment_of(app, world).state == P.succeeded
    assert post_event(client, fake, refunded).status_code == 200  # Stripe's retry
    with database(app) as s:
        payment = s.scalars(sa.select(Payment)).one()
        assert (payment.state, payment.refunded_minor) == (P.refunded, 25000)
        assert [r.state for r in payment.refunds] == [RefundState.succeeded]
    assert registration_state(app, world) == S.cancelled  # cancel_on_full_refund
    assert emails(app, "payments/refunded") == 1


def test_a_refund_is_matched_by_the_payment_id_in_the_charge_metadata(client, app, fake):
    """The portal confirmed the payment through the return page, which did not store the
    payment intent (say, an older Stripe answer): the refund still finds its payment."""
    world = make_world(app)
    session_id = start_payment(client, app, world)
    completed = fake.complete(session_id)
    assert post_event(client, fake, completed).status_code == 200
    with database(app) as s:
        payment = s.scalars(sa.select(Payment)).one()
        payment.provider_payment_id = None
        s.commit()
    fake.refund({"payment_intent": completed["data"]["object"]["payment_intent"]})
    assert post_event(client, fake, fake.last_event("charge.refunded")).status_code == 200
    assert payment_of(app, world).state == P.refunded


def test_a_refund_of_a_charge_that_is_not_ours_is_acknowledged_and_ignored(client, app, fake):
    world = make_world(app)
    created = fake.create_session(
        {"line_items": [{"price_data": {"currency": "usd", "unit_amount": "500"}}]}
    )
    completed = fake.complete(created["id"])
    fake.refund({"payment_intent": completed["data"]["object"]["payment_intent"]})
    answer = post_event(client, fake, fake.last_event("charge.refunded"))
    assert (answer.status_code, answer.get_json()["outcome"]) == (200, "unknown_payment")
    assert count(app, Payment) == 0
    assert registration_state(app, world) == S.pending_payment


def test_a_second_payment_is_flagged_for_refund_and_the_participant_told_so(client, app, fake):
    """Two sessions were paid for one registration (an older attempt, then a new one after a
    reprice): the first confirms; the second is kept, flagged ``already_paid`` for refund,
    and the participant's return page says their registration is confirmed and the second
    payment will be refunded (not that it "needs checking")."""
    world = make_world(app)
    first = start_payment(client, app, world)
    with database(app) as s:
        older = s.scalars(sa.select(Payment)).one()
        older.superseded_at = older.created_at  # a reprice superseded it; its tab stays open
        s.commit()
        older_id = older.id
    second = start_payment(client, app, world)
    assert first != second
    assert post_event(client, fake, fake.complete(second)).status_code == 200
    assert registration_state(app, world) == S.confirmed
    assert post_event(client, fake, fake.complete(first)).status_code == 200
    with database(app) as s:
        late = s.get(Payment, older_id)
        assert (late.state, late.flag, late.receipt_id) == (P.succeeded, "already_paid", None)
        assert late.refundable_minor == 25000
    assert registration_state(app, world) == S.confirmed
    assert emails(app, "payments/receipt") == 1
    page = client.get(f"/en/payments/{older_id}/return")
    body = page.get_data(as_text=True)
    assert 'data-state="duplicate"' in body
    assert "your registration had already been paid" in body
    assert "This second payment will be refunded to you" in body
    assert "need to check it before your registration is confirmed" not in body
    # The organisers see it flagged and refund it.
    login(client, app, world.organiser)
    listing = client.get(f"/en/organiser/events/{world.slug}/payments/?flagged=1")
    assert "this is a second payment, to be refunded" in listing.get_data(as_text=True)


def test_a_wrong_currency_confirms_nothing(client, app, fake):
    world = make_world(app)
    session_id = start_payment(client, app, world)
    event = fake.complete(session_id, amount_total=25000, currency="jpy")
    assert post_event(client, fake, event).status_code == 200
    payment = payment_of(app, world)
    assert payment.flag == "amount_mismatch"
    assert payment.flag_detail["received_currency"] == "JPY"
    assert registration_state(app, world) == S.pending_payment
    assert emails(app, "payments/receipt") == 0


def test_the_return_page_never_asks_about_a_session_from_the_address(client, app, fake):
    """``?session_id=`` of a foreign (paid) session must not attach or confirm anything."""
    world = make_world(app)
    start_payment(client, app, world)
    ours = payment_of(app, world)
    foreign = fake.create_session(
        {
            "line_items": [{"price_data": {"currency": "usd", "unit_amount": "25000"}}],
            "metadata": {"registration_id": str(world.reg), "payment_id": str(ours.id)},
        }
    )
    fake.complete(foreign["id"])
    with database(app) as s:
        s.get(Payment, ours.id).provider_session_id = None  # as if not stored yet
        s.commit()
    page = client.get(f"/en/payments/{ours.id}/return?session_id={foreign['id']}")
    assert page.status_code == 200
    assert payment_of(app, world).state == P.pending
    assert registration_state(app, world) == S.pending_payment
