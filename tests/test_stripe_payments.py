"""Card payments with Stripe Checkout, against the Stripe-shaped fake server (tests/fakes/).

The real ``stripe`` library talks HTTP to the fake through PORTAL_STRIPE_API_BASE; webhooks are
signed with ``stripe.WebhookSignature.generate_signature_header`` and posted to the portal.
"""

from __future__ import annotations

import csv
import io
import time
from contextlib import contextmanager
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from plugins.stripe_payments import services
from portal.accounts.models import User
from portal.audit import AuditEntry
from portal.db import db
from portal.documents.models import Document
from portal.events.models import EventFormat
from portal.i18n import BilingualText
from portal.mail.models import OutboxEmail
from portal.payments import services as ledger
from portal.payments.models import (
    Payment,
    PaymentState,
    ProcessedWebhookEvent,
    Refund,
    RefundState,
)
from portal.registration import services as registrations
from portal.registration.models import FeeCategory, Registration, RegistrationState
from tests import factories as f
from tests.conftest import free_port
from tests.fakes import running_fake_stripe, stripe_settings

S = RegistrationState
P = PaymentState


# -- fixtures and helpers --------------------------------------------------------------------


@pytest.fixture
def fake():
    with running_fake_stripe() as server:
        yield server


@pytest.fixture
def app_config(app_config, fake):
    return dict(app_config, **stripe_settings(fake))


@contextmanager
def database(app):
    """A database session in its own app context (not shared with the test client)."""
    with app.app_context():
        yield db.session


def login(client, app, user_id: int) -> None:
    with database(app) as s:
        stamp = s.get(User, user_id).get_id()
    with client.session_transaction() as flask_session:
        flask_session["_user_id"] = stamp
        flask_session["_fresh"] = True


def make_world(
    app,
    *,
    kind: str = "workshop",
    price: int = 25000,
    capacity: int | None = 280,
    plugins_on: tuple = ("stripe_payments",),
    payer_language: str = "en",
    **plugin_settings,
) -> SimpleNamespace:
    """A paid event (USD $250.00 workshop by default), a payer registered and waiting to pay,
    an organiser of the series and a stranger."""
    with database(app) as s:
        series = f.series(s, kind)
        event = f.event(s, series, format=EventFormat.onsite, capacity_onsite=capacity)
        for name in plugins_on:
            f.enable(s, event, name, **plugin_settings.get(name, {}))
        category = FeeCategory(
            event_id=event.id,
            code="general",
            name=BilingualText(ja="一般", en="General"),
            price_minor=price,
        )
        s.add(category)
        s.flush()
        payer = f.user(s, preferred_language=payer_language, affiliation="Kakuu Metals")
        organiser = f.user(s, roles=(("organiser", series),))
        stranger = f.user(s)
        registration = registrations.register(
            s,
            event,
            payer.person,
            mode="onsite",
            fee_category=category,
            user=payer,
            privacy_accepted=True,
        )
        s.commit()
        assert registration.state == S.pending_payment
        return SimpleNamespace(
            event=event.id,
            slug=event.slug,
            category=category.id,
            reg=registration.id,
            payer=payer.id,
            organiser=organiser.id,
            stranger=stranger.id,
            currency=series.currency,
        )


@pytest.fixture
def world(app):
    return make_world(app)


def start_payment(client, app, world, lang="en") -> str:
    """The payer clicks "continue to card payment"; returns the Checkout Session id."""
    login(client, app, world.payer)
    response = client.post(f"/{lang}/payments/card/{world.reg}")
    assert response.status_code == 303, response.get_data(as_text=True)
    location = response.headers["Location"]
    assert location.startswith(f"{fake_url(app)}/pay/cs_test_")
    return location.rsplit("/", 1)[1]


def fake_url(app) -> str:
    return app.config["STRIPE_API_BASE"]


def post_event(client, fake, event, **sign):
    body, headers = fake.signed(event, **sign)
    return client.post("/stripe/webhook", data=body, headers=headers)


def payment_of(app, world) -> Payment:
    with database(app) as s:
        return s.scalars(
            sa.select(Payment).where(Payment.registration_id == world.reg).order_by(Payment.id)
        ).all()[-1]


def registration_state(app, world, reg_id=None) -> RegistrationState:
    with database(app) as s:
        return s.get(Registration, reg_id or world.reg).state


def count(app, model, *where) -> int:
    with database(app) as s:
        return s.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def emails(app, template: str) -> int:
    return count(app, OutboxEmail, OutboxEmail.template == template)


def pay(client, app, fake, world) -> Payment:
    """The whole happy path: session created, paid on the fake, webhook delivered once."""
    session_id = start_payment(client, app, world)
    assert post_event(client, fake, fake.complete(session_id)).status_code == 200
    payment = payment_of(app, world)
    assert payment.state == P.succeeded
    return payment


# -- creating the Checkout Session -----------------------------------------------------------


def test_checkout_session_is_created_through_the_real_library(client, app, fake, world):
    session_id = start_payment(client, app, world)
    request = fake.requests[-1]
    payment = payment_of(app, world)
    assert request["method"] == "POST" and request["path"] == "/v1/checkout/sessions"
    params = request["params"]
    assert params["mode"] == "payment"
    assert params["locale"] == "en"
    assert params["client_reference_id"] == f"registration-{world.reg}"
    assert params["metadata"] == {
        "registration_id": str(world.reg),
        "payment_id": str(payment.id),
        "event": world.slug,
    }
    assert params["line_items"][0]["price_data"]["currency"] == "usd"
    assert params["line_items"][0]["price_data"]["unit_amount"] == "25000"  # $250.00 in cents
    assert params["line_items"][0]["quantity"] == "1"
    assert int(params["expires_at"]) == int(payment.expires_at.timestamp())
    assert params["success_url"].endswith(
        f"/en/payments/{payment.id}/return?session_id={{CHECKOUT_SESSION_ID}}"
    )
    assert params["cancel_url"].endswith(f"/en/payments/{payment.id}/cancelled")
    assert request["idempotency_key"] == payment.idempotency_key
    assert payment.idempotency_key.startswith("portal-checkout-")
    assert payment.state == P.pending
    assert (payment.amount_minor, payment.currency) == (25000, "USD")
    assert payment.provider_session_id == session_id
    assert payment.provider_data["id"] == session_id
    assert registration_state(app, world) == S.pending_payment


def test_yen_amounts_have_no_minor_unit_and_the_locale_follows_the_language(client, app, fake):
    world = make_world(app, kind="study_group", price=5000, payer_language="ja")
    start_payment(client, app, world, lang="ja")
    params = fake.requests[-1]["params"]
    assert params["line_items"][0]["price_data"]["currency"] == "jpy"
    assert params["line_items"][0]["price_data"]["unit_amount"] == "5000"  # ¥5,000
    assert params["locale"] == "ja"


def test_the_amount_comes_from_the_server_not_the_form(client, app, fake, world):
    login(client, app, world.payer)
    client.post(f"/en/payments/card/{world.reg}", data={"amount": "1", "unit_amount": "1"})
    assert fake.requests[-1]["params"]["line_items"][0]["price_data"]["unit_amount"] == "25000"


def test_pay_page_shows_the_amount_and_a_button(client, app, world):
    login(client, app, world.payer)
    response = client.get(f"/en/payments/card/{world.reg}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Continue to card payment ($250.00)" in page
    assert 'id="pay-by-card"' in page


def test_someone_elses_registration_cannot_be_paid_here(client, app, fake, world):
    login(client, app, world.stranger)
    assert client.get(f"/en/payments/card/{world.reg}").status_code == 404
    assert client.post(f"/en/payments/card/{world.reg}").status_code == 404
    assert fake.requests == []


def test_going_back_to_pay_reuses_the_open_session(client, app, fake, world):
    first = start_payment(client, app, world)
    second = start_payment(client, app, world)
    assert first == second
    assert count(app, Payment) == 1
    assert len(fake.sessions) == 1


def test_a_repriced_registration_gets_a_new_attempt_and_the_old_one_is_superseded(
    client, app, fake, world
):
    first = start_payment(client, app, world)
    with database(app) as s:
        registration = s.get(Registration, world.reg)
        registration.total_minor = 30000  # e.g. a plugin's extra was added (reprice)
        registration.price_lines = [
            *registration.price_lines,
            {"code": "x", "label": {"ja": "追加", "en": "Extra"}, "amount_minor": 5000},
        ]
        s.commit()
    second = start_payment(client, app, world)
    assert second != first
    with database(app) as s:
        old, new = s.scalars(sa.select(Payment).order_by(Payment.id)).all()
        assert old.superseded_at is not None and new.superseded_at is None
        assert (new.amount_minor, old.amount_minor) == (30000, 25000)
    # The old session paid anyway: recorded, flagged, nothing confirmed.
    assert post_event(client, fake, fake.complete(first)).status_code == 200
    assert registration_state(app, world) == S.pending_payment
    with database(app) as s:
        assert s.get(Payment, old.id).flag == "amount_mismatch"


# -- Stripe unreachable or slow --------------------------------------------------------------


def test_stripe_unreachable_gives_a_clear_message_and_retry_works(client, app, fake, world):
    app.config["STRIPE_API_BASE"] = f"http://127.0.0.1:{free_port()}"  # nothing listens
    login(client, app, world.payer)
    response = client.post(f"/en/payments/card/{world.reg}")
    assert response.status_code == 503
    page = response.get_data(as_text=True)
    assert "The card payment service could not be reached. Nothing has been charged" in page
    assert 'id="pay-by-card"' in page  # the person can try again from the same page
    payment = payment_of(app, world)
    assert payment.state == P.pending and payment.provider_session_id is None
    assert payment.last_error.startswith("APIConnectionError")
    assert registration_state(app, world) == S.pending_payment

    app.config["STRIPE_API_BASE"] = fake.url
    session_id = start_payment(client, app, world)
    again = payment_of(app, world)
    assert again.id == payment.id  # the same attempt, the same idempotency key
    assert again.provider_session_id == session_id and again.last_error is None
    assert fake.requests[-1]["idempotency_key"] == payment.idempotency_key
    assert count(app, Payment) == 1


def test_stripe_too_slow_times_out_and_the_retry_gets_the_same_session(client, app, fake, world):
    app.config["STRIPE_TIMEOUT"] = 0.5
    fake.delay = 2  # Stripe creates the session but answers too late
    login(client, app, world.payer)
    started = time.monotonic()
    response = client.post(f"/en/payments/card/{world.reg}")
    assert time.monotonic() - started < 2
    assert response.status_code == 503
    assert "could not be reached" in response.get_data(as_text=True)
    assert payment_of(app, world).provider_session_id is None
    assert registration_state(app, world) == S.pending_payment
    assert len(fake.sessions) == 1

    fake.delay = 0
    session_id = start_payment(client, app, world)
    assert list(fake.sessions) == [session_id]  # idempotency key: no second session


def test_stripe_refusing_the_request_ends_the_attempt_and_a_retry_starts_anew(
    client, app, fake, world
):
    fake.fail_with = 400
    login(client, app, world.payer)
    response = client.post(f"/en/payments/card/{world.reg}")
    assert response.status_code == 503
    refused = payment_of(app, world)
    assert refused.state == P.failed and refused.provider_session_id is None
    assert registration_state(app, world) == S.pending_payment
    fake.fail_with = None
    start_payment(client, app, world)
    fresh = payment_of(app, world)
    assert fresh.id != refused.id and fresh.idempotency_key != refused.idempotency_key
    assert fresh.state == P.pending and fresh.provider_session_id is not None


# -- the webhook -----------------------------------------------------------------------------


def test_the_same_webhook_ten_times_confirms_once(client, app, fake, world):
    session_id = start_payment(client, app, world)
    event = fake.complete(session_id)
    for _ in range(10):
        response = post_event(client, fake, event)
        assert response.status_code == 200
    assert registration_state(app, world) == S.confirmed
    payment = payment_of(app, world)
    assert payment.state == P.succeeded
    assert (payment.received_minor, payment.received_currency) == (25000, "USD")
    assert payment.provider_payment_id.startswith("pi_test_")
    assert count(app, Document) == 1
    assert payment.receipt_id is not None
    assert emails(app, "payments/receipt") == 1
    assert emails(app, "registration/confirmed") == 1
    assert count(app, ProcessedWebhookEvent) == 1
    assert (
        count(
            app,
            AuditEntry,
            AuditEntry.subject_type == "registration",
            AuditEntry.action == "paid_by_card",
        )
        == 1
    )


def test_events_out_of_order_give_the_state_of_one_delivery(client, app, fake, world):
    session_id = start_payment(client, app, world)
    completed = fake.complete(session_id)
    succeeded = fake.event("checkout.session.async_payment_succeeded", completed["data"]["object"])
    expired = fake.event("checkout.session.expired", dict(completed["data"]["object"]))
    for event in (succeeded, completed, expired, completed, succeeded):
        assert post_event(client, fake, event).status_code == 200
    payment = payment_of(app, world)
    assert payment.state == P.succeeded
    assert registration_state(app, world) == S.confirmed
    assert count(app, Document) == 1
    assert emails(app, "payments/receipt") == 1


def test_concurrent_deliveries_confirm_once(live_server, fake):
    """Ten deliveries at the same moment (the same event, and another event id for the same
    session) against the threaded server: one confirmation, one receipt, one email."""
    import threading
    import urllib.error
    import urllib.request

    app = live_server.app
    world = make_world(app)
    with database(app) as s:
        payment = services.begin_card_payment(s, s.get(Registration, world.reg), language="en")
        s.commit()
        payment_id = payment.id
    with database(app) as s:
        payment = services.open_checkout(s, s.get(Payment, payment_id))
        s.commit()
        session_id = payment.provider_session_id
    completed = fake.complete(session_id)
    again = fake.event("checkout.session.async_payment_succeeded", completed["data"]["object"])
    statuses = []
    start = threading.Barrier(10)

    def deliver(event):
        body, headers = fake.signed(event)
        request = urllib.request.Request(
            live_server.url + "/stripe/webhook", data=body, headers=headers
        )
        start.wait()
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                statuses.append(response.status)
        except urllib.error.HTTPError as error:
            statuses.append(error.code)

    threads = [
        threading.Thread(target=deliver, args=(completed if i % 2 else again,)) for i in range(10)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 10
    assert payment_of(app, world).state == P.succeeded
    assert registration_state(app, world) == S.confirmed
    assert count(app, Document) == 1
    assert emails(app, "payments/receipt") == 1
    assert emails(app, "registration/confirmed") == 1
    assert count(app, ProcessedWebhookEvent) == 2


def test_completed_before_the_portal_stored_the_session_is_retried_until_it_is(
    client, app, fake, world
):
    """The webhook beat the portal's own record of the session: answered 409 (Stripe sends it
    again), nothing confirmed; once the portal stored the id, the resent event confirms."""
    with database(app) as s:
        registration = s.get(Registration, world.reg)
        payment = services.begin_card_payment(s, registration, language="en")
        s.commit()
        payment_id, params = payment.id, payment.request_params
    created = fake.create_session(params)
    completed = fake.complete(created["id"])
    assert post_event(client, fake, completed).status_code == 409
    assert payment_of(app, world).state == P.pending
    assert registration_state(app, world) == S.pending_payment
    assert count(app, ProcessedWebhookEvent) == 0  # not recorded: the resend is applied
    with database(app) as s:
        services.attach_session(s, payment_id, fake.public_session(created))
        s.commit()
    assert post_event(client, fake, completed).status_code == 200
    paid = payment_of(app, world)
    assert (paid.id, paid.state, paid.provider_session_id) == (
        payment_id,
        P.succeeded,
        created["id"],
    )
    assert registration_state(app, world) == S.confirmed
    assert count(app, Payment) == 1
    assert count(app, Document) == 1
    assert emails(app, "payments/receipt") == 1


def test_a_session_the_portal_never_created_confirms_nothing_and_is_flagged(
    client, app, fake, world
):
    """A Payment Link or another app on the same account names our registration: the money is
    recorded as unmatched and flagged to the organisers; no confirmation, no receipt."""
    created = fake.create_session(
        {
            "line_items": [{"price_data": {"currency": "usd", "unit_amount": "25000"}}],
            "metadata": {"registration_id": str(world.reg)},
            "client_reference_id": f"registration-{world.reg}",
            "success_url": "http://localhost/",
        }
    )
    response = post_event(client, fake, fake.complete(created["id"]))
    assert response.status_code == 200
    assert response.get_json()["outcome"] == "unmatched_session"
    payment = payment_of(app, world)
    assert payment.provider_session_id == created["id"]
    assert payment.flag == "unmatched_session"
    assert payment.receipt_id is None
    assert registration_state(app, world) == S.pending_payment
    assert count(app, Document) == 0
    assert emails(app, "payments/receipt") == 0
    assert emails(app, "registration/confirmed") == 0
    # The organisers see it on their dashboard and can refund it.
    login(client, app, world.organiser)
    page = client.get(f"/en/organiser/events/{world.slug}/").get_data(as_text=True)
    assert "1 payment needs your attention." in page
    listing = client.get(f"/en/organiser/events/{world.slug}/payments/?flagged=1")
    assert "did not create" in listing.get_data(as_text=True)
    # …and on the one page of payments that confirmed nothing, with a link to refund it.
    home = client.get("/en/organiser/").get_data(as_text=True)
    assert "1 payment confirmed no registration and needs your attention." in home
    page = client.get("/en/organiser/payments/unmatched").get_data(as_text=True)
    assert f'data-payment="{payment.id}"' in page and "$250.00" in page
    assert f"/payments/{payment.id}/refund" in page
    # The organiser of another series sees none of it.
    with database(app) as s:
        elsewhere = f.user(s, roles=(("organiser", f.series(s, "workshop", slug="x")),)).id
        s.commit()
    login(client, app, elsewhere)
    page = client.get("/en/organiser/payments/unmatched").get_data(as_text=True)
    assert f'data-payment="{payment.id}"' not in page and "$250.00" not in page
    assert "needs your attention" not in client.get("/en/organiser/").get_data(as_text=True)


def test_a_session_naming_nothing_of_ours_is_shown_to_administrators(client, app, fake, world):
    """Money for no registration of ours belongs to no event: it is kept as the webhook event
    and listed to administrators (to refund at Stripe); it confirms nothing."""
    created = fake.create_session(
        {
            "line_items": [{"price_data": {"currency": "usd", "unit_amount": "100"}}],
            "customer_email": "walk-in@example.com",
            "success_url": "http://localhost/",
        }
    )
    response = post_event(client, fake, fake.complete(created["id"]))
    assert (response.status_code, response.get_json()["outcome"]) == (
        200,
        "unknown_paid_session",
    )
    assert count(app, Payment) == 0
    assert registration_state(app, world) == S.pending_payment
    login(client, app, world.organiser)
    page = client.get("/en/organiser/payments/unmatched").get_data(as_text=True)
    assert created["id"] not in page and "walk-in@example.com" not in page
    with database(app) as s:
        admin = f.user(s, is_admin=True).id
        s.commit()
    login(client, app, admin)
    home = client.get("/ja/organiser/").get_data(as_text=True)
    assert "1件の支払いがどの申込みも確定しておらず、確認が必要です。" in home
    page = client.get("/en/organiser/payments/unmatched").get_data(as_text=True)
    row = page.split(f'data-session="{created["id"]}"', 1)[1].split("</tr>", 1)[0]
    assert "$1.00" in row and "walk-in@example.com" in row


def test_metadata_naming_a_payment_of_ours_does_not_confirm_it(client, app, fake, world):
    """A forged session copying an attempt's metadata: after our own session is stored, the
    forged one is unmatched; our attempt stays pending."""
    session_id = start_payment(client, app, world)
    ours = payment_of(app, world)
    forged = fake.create_session(
        {
            "line_items": [{"price_data": {"currency": "usd", "unit_amount": "25000"}}],
            "metadata": {"registration_id": str(world.reg), "payment_id": str(ours.id)},
            "success_url": "http://localhost/",
        }
    )
    assert post_event(client, fake, fake.complete(forged["id"])).status_code == 200
    with database(app) as s:
        mine = s.get(Payment, ours.id)
        assert (mine.state, mine.provider_session_id) == (P.pending, session_id)
        other = s.scalar(sa.select(Payment).where(Payment.provider_session_id == forged["id"]))
        assert other.flag == "unmatched_session"
    assert registration_state(app, world) == S.pending_payment


@pytest.mark.parametrize(
    "case",
    ["forged", "tampered", "unsigned", "stale", "future", "not json"],
)
def test_bad_signatures_get_400_and_change_nothing(client, app, fake, world, case):
    session_id = start_payment(client, app, world)
    event = fake.complete(session_id)
    body, headers = fake.signed(event)
    if case == "forged":
        body, headers = fake.signed(event, secret="whsec_someone_else")
    elif case == "tampered":
        body = body.replace(b'"amount_total": 25000', b'"amount_total": 2500')
    elif case == "unsigned":
        headers = {"Content-Type": "application/json"}
    elif case == "stale":
        body, headers = fake.signed(event, timestamp=int(time.time()) - 301)
    elif case == "future":
        body, headers = fake.signed(event, timestamp=int(time.time()) + 3600)
    elif case == "not json":
        body, headers = b"hello", dict(headers)
        headers["Stripe-Signature"] = fake.signed(event)[1]["Stripe-Signature"]
    response = client.post("/stripe/webhook", data=body, headers=headers)
    assert response.status_code == 400
    assert payment_of(app, world).state == P.pending
    assert registration_state(app, world) == S.pending_payment
    assert count(app, ProcessedWebhookEvent) == 0
    assert count(app, Document) == 0
    assert emails(app, "payments/receipt") == 0
    # The genuine delivery still works afterwards.
    assert post_event(client, fake, event).status_code == 200
    assert registration_state(app, world) == S.confirmed


def test_webhook_needs_no_csrf_token_and_no_language_prefix(app, fake, world):
    app.config["WTF_CSRF_ENABLED"] = True
    client = app.test_client()
    response = post_event(client, fake, fake.event("customer.created", {"id": "cus_1"}))
    assert response.status_code == 200
    assert response.get_json() == {"received": True, "outcome": "ignored"}


@pytest.mark.parametrize(
    "amount, currency",
    [(20000, None), (25000, "jpy")],
    ids=["wrong amount", "wrong currency"],
)
def test_a_wrong_amount_is_flagged_and_does_not_confirm(client, app, fake, world, amount, currency):
    session_id = start_payment(client, app, world)
    event = fake.complete(session_id, amount_total=amount, currency=currency)
    assert post_event(client, fake, event).status_code == 200
    payment = payment_of(app, world)
    assert payment.state == P.succeeded  # the money did arrive …
    assert payment.flag == "amount_mismatch"  # … but it is not what is owed
    assert payment.flag_detail == {
        "received_minor": amount,
        "received_currency": (currency or "usd").upper(),
        "owed_minor": 25000,
        "owed_currency": "USD",
    }
    assert registration_state(app, world) == S.pending_payment
    assert count(app, Document) == 0
    assert emails(app, "payments/receipt") == 0
    assert (
        count(
            app,
            AuditEntry,
            AuditEntry.subject_type == "payment",
            AuditEntry.subject_id == payment.id,
            AuditEntry.action == "flagged",
        )
        == 1
    )
    login(client, app, world.organiser)
    page = client.get(f"/en/organiser/events/{world.slug}/payments/").get_data(as_text=True)
    assert 'data-flag="amount_mismatch"' in page
    assert "The amount paid differs from what the registration owes." in page
    flagged = client.get(f"/en/organiser/events/{world.slug}/payments/?flagged=1")
    assert f'data-payment="{payment.id}"' in flagged.get_data(as_text=True)


def test_an_expired_session_releases_the_seat_to_the_waiting_list(client, app, fake):
    world = make_world(app, capacity=1)
    with database(app) as s:
        waiting = f.user(s)
        registration = registrations.register(
            s,
            s.get(Registration, world.reg).event,
            waiting.person,
            mode="onsite",
            fee_category=world.category,
            user=waiting,
            privacy_accepted=True,
        )
        s.commit()
        waiting_reg = registration.id
    assert registration_state(app, world, waiting_reg) == S.waitlisted
    session_id = start_payment(client, app, world)
    expired = fake.expire(session_id)
    for _ in range(2):
        assert post_event(client, fake, expired).status_code == 200
    assert payment_of(app, world).state == P.expired
    assert registration_state(app, world) == S.cancelled
    assert registration_state(app, world, waiting_reg) == S.pending_payment
    assert emails(app, "registration/expired") == 1
    assert emails(app, "registration/promoted") == 1


def test_async_payment_failed_keeps_the_registration_waiting(client, app, fake, world):
    session_id = start_payment(client, app, world)
    obj = fake.public_session(fake.sessions[session_id])
    event = fake.event("checkout.session.async_payment_failed", obj)
    assert post_event(client, fake, event).status_code == 200
    assert payment_of(app, world).state == P.failed
    assert registration_state(app, world) == S.pending_payment
    assert emails(app, "payments/payment_failed") == 1
    # A new attempt can be made.
    assert start_payment(client, app, world) != session_id


def test_delayed_payment_methods_wait_for_async_success(client, app, fake, world):
    """Completed but not yet paid (e.g. konbini): nothing is confirmed until Stripe says so;
    a refund event for a payment not confirmed yet is refused (409), so Stripe retries it."""
    session_id = start_payment(client, app, world)
    obj = dict(
        fake.public_session(fake.sessions[session_id]),
        status="complete",
        payment_status="unpaid",
        payment_intent="pi_test_async",
    )
    response = post_event(client, fake, fake.event("checkout.session.completed", obj))
    assert response.get_json() == {"received": True, "outcome": "awaiting_payment"}
    waiting = payment_of(app, world)
    assert waiting.state == P.pending and waiting.provider_payment_id == "pi_test_async"
    assert registration_state(app, world) == S.pending_payment
    charge = {"object": "charge", "payment_intent": "pi_test_async", "amount_refunded": 100}
    early = fake.event("charge.refunded", charge)
    assert post_event(client, fake, early).status_code == 409
    assert count(app, ProcessedWebhookEvent, ProcessedWebhookEvent.id == early["id"]) == 0
    paid = dict(obj, payment_status="paid")
    event = fake.event("checkout.session.async_payment_succeeded", paid)
    assert post_event(client, fake, event).status_code == 200
    assert payment_of(app, world).state == P.succeeded
    assert registration_state(app, world) == S.confirmed


# -- return and cancel pages -----------------------------------------------------------------


def test_return_page_confirms_through_a_server_side_check(client, app, fake, world):
    session_id = start_payment(client, app, world)
    payment = payment_of(app, world)
    page = client.get(f"/en/payments/{payment.id}/return?session_id={session_id}")
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'data-state="pending"' in text
    assert '<meta http-equiv="refresh" content="3">' in text
    fake.complete(session_id)  # paid, but the webhook has not come
    page = client.get(f"/en/payments/{payment.id}/return?session_id={session_id}")
    text = page.get_data(as_text=True)
    assert 'data-state="received"' in text
    assert "Payment received: $250.00. Thank you." in text
    assert 'http-equiv="refresh"' not in text
    paid = payment_of(app, world)
    assert paid.state == P.succeeded
    assert f'href="/en/payments/receipts/{paid.receipt_id}.pdf"' in text
    assert registration_state(app, world) == S.confirmed
    # The webhook arriving later changes nothing.
    assert (
        post_event(client, fake, fake.last_event("checkout.session.completed")).status_code == 200
    )
    assert count(app, Document) == 1
    assert emails(app, "payments/receipt") == 1


def test_return_and_cancel_pages_are_the_payers_only(client, app, fake, world):
    start_payment(client, app, world)
    payment = payment_of(app, world)
    login(client, app, world.stranger)
    assert client.get(f"/en/payments/{payment.id}/return").status_code == 404
    assert client.get(f"/en/payments/{payment.id}/cancelled").status_code == 404


def test_cancel_page_offers_to_try_again_or_another_method(client, app, fake):
    world = make_world(app, plugins_on=("stripe_payments", "bank_transfer"))
    start_payment(client, app, world)
    payment = payment_of(app, world)
    page = client.get(f"/en/payments/{payment.id}/cancelled").get_data(as_text=True)
    assert "Nothing has been charged." in page
    assert f'id="try-again" href="/en/payments/card/{world.reg}"' in page
    assert f'href="/en/payments/bank-transfer/{world.reg}" data-method="bank_transfer"' in page


# -- receipts --------------------------------------------------------------------------------


def test_the_receipt_is_issued_once_in_the_payers_language(client, app, fake):
    world = make_world(app, kind="study_group", price=5000, payer_language="ja")
    session_id = start_payment(client, app, world, lang="ja")
    post_event(client, fake, fake.complete(session_id))
    with database(app) as s:
        receipt = s.scalars(sa.select(Document)).one()
        assert receipt.language == "ja"
        assert receipt.total_minor == 5000 and receipt.currency == "JPY"
        assert receipt.lines == [{"label": "一般", "amount_minor": 5000}]
        assert receipt.subject_type == "payment"
        assert receipt.owner_person_id == s.get(User, world.payer).person_id
        assert receipt.recipient_company == "Kakuu Metals"
        assert receipt.paid_at is not None
        mail = s.scalars(
            sa.select(OutboxEmail).where(OutboxEmail.template == "payments/receipt")
        ).one()
        assert mail.language == "ja"
        assert f"/ja/payments/receipts/{receipt.id}.pdf" in mail.body_text


def test_only_the_payer_downloads_the_receipt(client, app, fake, world):
    payment = pay(client, app, fake, world)
    url = f"/en/payments/receipts/{payment.receipt_id}.pdf"
    response = client.get(url)
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert response.data.startswith(b"%PDF")
    for someone in (world.stranger, world.organiser):
        login(client, app, someone)
        assert client.get(url).status_code == 404
    anonymous = app.test_client()
    assert anonymous.get(url).status_code == 302
    assert client.get("/en/payments/receipts/999999.pdf").status_code == 404


def test_receipts_are_listed_for_the_owner_on_their_registration(client, app, fake, world):
    payment = pay(client, app, fake, world)
    page = client.get(f"/en/my/registrations/{world.reg}/")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert 'id="receipts"' in text
    assert f'href="/en/payments/receipts/{payment.receipt_id}.pdf"' in text


# -- refunds ---------------------------------------------------------------------------------


def refund(client, world, payment_id, amount, reason="Requested by the participant"):
    return client.post(
        f"/en/organiser/events/{world.slug}/payments/{payment_id}/refund",
        data={"amount": amount, "reason": reason},
    )


def test_partial_then_full_refund_through_stripe(client, app, fake, world):
    payment = pay(client, app, fake, world)
    login(client, app, world.organiser)
    page = client.get(f"/en/organiser/events/{world.slug}/payments/{payment.id}/refund")
    assert page.status_code == 200
    assert 'value="250.00"' in page.get_data(as_text=True)

    response = refund(client, world, payment.id, "100.00")
    assert response.status_code == 302
    partial = payment_of(app, world)
    assert partial.state == P.partially_refunded
    assert partial.refunded_minor == 10000
    request = fake.requests[-1]
    assert request["path"] == "/v1/refunds"
    assert request["params"]["amount"] == "10000"
    assert request["params"]["payment_intent"] == payment.provider_payment_id
    with database(app) as s:
        row = s.scalars(sa.select(Refund)).one()
        assert (row.state, row.amount_minor, row.source) == (RefundState.succeeded, 10000, "portal")
        assert request["idempotency_key"] == row.idempotency_key
        corrected = s.get(Document, partial.receipt_id)
        assert corrected.replaces_id == payment.receipt_id
        assert corrected.total_minor == 15000
    assert registration_state(app, world) == S.confirmed
    assert emails(app, "payments/refunded") == 1
    # Stripe's charge.refunded for the same refund changes nothing.
    assert post_event(client, fake, fake.last_event("charge.refunded")).status_code == 200
    assert payment_of(app, world).refunded_minor == 10000
    assert count(app, Refund) == 1

    too_much = refund(client, world, payment.id, "200.00")
    assert too_much.status_code == 400
    text = too_much.get_data(as_text=True)
    assert "At most $150.00 can be refunded." in text
    assert 'value="200.00"' in text  # what the organiser typed is kept
    not_a_number = refund(client, world, payment.id, "a lot")
    assert not_a_number.status_code == 400
    assert "Enter the amount as a number" in not_a_number.get_data(as_text=True)

    assert refund(client, world, payment.id, "150").status_code == 302
    full = payment_of(app, world)
    assert full.state == P.refunded
    assert full.refunded_minor == 25000
    assert registration_state(app, world) == S.cancelled  # the default policy
    with database(app) as s:
        cancellation = s.get(Document, full.receipt_id)
        assert cancellation.is_cancellation and cancellation.total_minor == -15000
    assert count(app, Document) == 3
    assert len(fake.refunds) == 2


def test_a_refund_made_in_stripes_dashboard_is_recorded(client, app, fake):
    world = make_world(app, stripe_payments={"cancel_on_full_refund": False})
    payment = pay(client, app, fake, world)
    fake.refund({"payment_intent": payment.provider_payment_id, "amount": "5000"})
    assert post_event(client, fake, fake.last_event("charge.refunded")).status_code == 200
    partial = payment_of(app, world)
    assert (partial.state, partial.refunded_minor) == (P.partially_refunded, 5000)
    fake.refund({"payment_intent": payment.provider_payment_id})
    assert post_event(client, fake, fake.last_event("charge.refunded")).status_code == 200
    full = payment_of(app, world)
    assert (full.state, full.refunded_minor) == (P.refunded, 25000)
    with database(app) as s:
        rows = s.scalars(sa.select(Refund).order_by(Refund.id)).all()
        assert [(r.amount_minor, r.source) for r in rows] == [
            (5000, "provider"),
            (20000, "provider"),
        ]
    assert registration_state(app, world) == S.confirmed  # the event's policy keeps it


def test_a_refund_while_stripe_is_down_waits_and_is_sent_again(client, app, fake, world):
    payment = pay(client, app, fake, world)
    login(client, app, world.organiser)
    fake.fail_with = 503
    app.config["STRIPE_NETWORK_RETRIES"] = 0
    response = refund(client, world, payment.id, "250")
    assert response.status_code == 302
    with database(app) as s:
        row = s.scalars(sa.select(Refund)).one()
        assert row.state == RefundState.pending
        refund_id = row.id
    assert payment_of(app, world).state == P.succeeded
    fake.fail_with = None
    again = client.post(
        f"/en/organiser/events/{world.slug}/payments/{payment.id}/refunds/{refund_id}"
    )
    assert again.status_code == 302
    assert payment_of(app, world).state == P.refunded
    assert len(fake.refunds) == 1


def test_refund_pages_are_for_the_events_organisers(client, app, fake, world):
    payment = pay(client, app, fake, world)
    for someone in (world.payer, world.stranger):
        login(client, app, someone)
        assert client.get(f"/en/organiser/events/{world.slug}/payments/").status_code == 404
        assert refund(client, world, payment.id, "250").status_code == 404
    assert payment_of(app, world).state == P.succeeded


# -- the organisers' payments list -----------------------------------------------------------


def test_payments_list_totals_and_csv_with_bom(client, app, fake, world):
    payment = pay(client, app, fake, world)
    login(client, app, world.organiser)
    page = client.get(f"/en/organiser/events/{world.slug}/payments/")
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert (
        '<tr data-method="card" data-currency="USD"><td>Card payment</td><td>USD</td><td>1</td>'
        in text
    )
    assert f'data-payment="{payment.id}"' in text
    assert "Taro Yamada" in text
    response = client.get(f"/en/organiser/events/{world.slug}/payments/export.csv?method=card")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(response.data.decode("utf-8-sig"))))
    assert rows[0][:3] == ["Payment", "Created", "Paid on"]
    assert len(rows) == 2
    row = dict(zip(rows[0], rows[1], strict=True))
    assert row["Method"] == "Card payment"
    assert row["State"] == "Paid"
    assert (row["Currency"], row["Amount received"], row["Net"]) == ("USD", "250.00", "250.00")
    assert row["Receipt"].startswith("R-")
    none = client.get(f"/en/organiser/events/{world.slug}/payments/export.csv?method=bank_transfer")
    assert len(list(csv.reader(io.StringIO(none.data.decode("utf-8-sig"))))) == 1


def test_payments_list_issues_a_constant_number_of_queries(client, app, fake, world):
    def add_payments(n):
        with database(app) as s:
            registration = s.get(Registration, world.reg)
            for _ in range(n):
                person = f.person(s)
                s.add(
                    Payment(
                        registration_id=registration.id,
                        event_id=registration.event_id,
                        person_id=person.id,
                        method="card",
                        state=P.succeeded,
                        amount_minor=25000,
                        received_minor=25000,
                        currency="USD",
                    )
                )
            s.commit()

    def queries() -> int:
        seen = []
        engine = app.extensions["portal_db"]["engine"]

        def count_it(*_args):
            seen.append(1)

        sa.event.listen(engine, "before_cursor_execute", count_it)
        try:
            assert client.get(f"/en/organiser/events/{world.slug}/payments/").status_code == 200
        finally:
            sa.event.remove(engine, "before_cursor_execute", count_it)
        return len(seen)

    login(client, app, world.organiser)
    add_payments(2)
    few = queries()
    add_payments(30)
    assert queries() == few


# -- reconcile -------------------------------------------------------------------------------


def test_hook_cli_commands_reconcile_settles_sessions_without_webhook(client, app, fake, runner):
    world = make_world(app)
    session_id = start_payment(client, app, world)
    fake.complete(session_id)  # paid; the webhook never arrives
    result = runner.invoke(args=["payments", "reconcile"])
    assert result.exit_code == 0, result.output
    payment = payment_of(app, world)
    assert f"payment {payment.id}: confirmed" in result.output
    assert payment.state == P.succeeded
    assert registration_state(app, world) == S.confirmed
    again = runner.invoke(args=["payments", "reconcile"])
    assert "Reconciled: nothing to do." in again.output
    assert count(app, Document) == 1


def test_reconcile_expires_sessions_the_registration_no_longer_waits_for(client, app, fake):
    world = make_world(app)
    session_id = start_payment(client, app, world)
    with database(app) as s:
        organiser = s.get(User, world.organiser)
        registrations.mark_paid(s, s.get(Registration, world.reg), actor=organiser, reason="cash")
        s.commit()
    result = app.test_cli_runner().invoke(args=["payments", "reconcile"])
    assert result.exit_code == 0, result.output
    assert fake.sessions[session_id]["status"] == "expired"
    assert payment_of(app, world).state == P.expired
    assert registration_state(app, world) == S.confirmed


def test_reconcile_expires_attempts_that_never_got_a_session(client, app, fake, runner, world):
    app.config["STRIPE_API_BASE"] = f"http://127.0.0.1:{free_port()}"
    login(client, app, world.payer)
    assert client.post(f"/en/payments/card/{world.reg}").status_code == 503
    with database(app) as s:
        attempt = s.scalars(sa.select(Payment)).one()
        attempt.expires_at = attempt.created_at  # its time is up
        s.commit()
    app.config["STRIPE_API_BASE"] = fake.url
    result = runner.invoke(args=["payments", "reconcile"])
    assert result.exit_code == 0, result.output
    assert "Reconciled: never_opened 1." in result.output
    assert payment_of(app, world).state == P.expired
    assert registration_state(app, world) == S.pending_payment


# -- hooks -----------------------------------------------------------------------------------


def test_hook_payment_methods_offers_card_while_payment_is_due(app, world):
    with app.test_request_context("/en/"):
        from flask import g

        from portal import plugins

        g.lang_code = "en"
        registration = db.session.get(Registration, world.reg)
        methods = registrations.payment_methods(registration.event, registration)
        assert [(m.code, str(m.label), m.url) for m in methods] == [
            ("card", "Pay by card", f"/en/payments/card/{world.reg}")
        ]
        registration.state = S.confirmed
        assert registrations.payment_methods(registration.event, registration) == []
        registration.state = S.pending_payment
        row = next(r for r in registration.event.plugin_settings if r.plugin == "stripe_payments")
        row.enabled = False
        plugins.forget(registration.event)
        assert registrations.payment_methods(registration.event, registration) == []


def test_hook_payment_methods_without_keys_no_card_and_the_organiser_sees_why(client, app, world):
    app.config["STRIPE_SECRET_KEY"] = None
    with app.test_request_context("/en/"):
        registration = db.session.get(Registration, world.reg)
        assert registrations.payment_methods(registration.event, registration) == []
    login(client, app, world.payer)
    assert client.get(f"/en/payments/card/{world.reg}").status_code == 404
    login(client, app, world.organiser)
    page = client.get(f"/en/organiser/events/{world.slug}/")
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'id="card-unavailable"' in text
    assert "Card payment is not offered: the setting PORTAL_STRIPE_SECRET_KEY" in text


def test_hook_dashboard_panels_shows_payments_and_attention(client, app, fake, world):
    session_id = start_payment(client, app, world)
    post_event(client, fake, fake.complete(session_id, amount_total=100))
    login(client, app, world.organiser)
    text = client.get(f"/en/organiser/events/{world.slug}/").get_data(as_text=True)
    assert 'id="payments-panel"' in text
    assert "1 payment needs your attention." in text
    assert f'href="/en/organiser/events/{world.slug}/payments/"' in text


def test_hook_registration_changed_supersedes_open_card_attempts(client, app, fake, world):
    session_id = start_payment(client, app, world)
    with database(app) as s:
        organiser = s.get(User, world.organiser)
        registrations.mark_paid(s, s.get(Registration, world.reg), actor=organiser, reason="cash")
        s.commit()
    attempt = payment_of(app, world)
    assert attempt.superseded_at is not None
    # The payer pays the old session anyway: recorded, flagged as a second payment.
    assert post_event(client, fake, fake.complete(session_id)).status_code == 200
    paid = payment_of(app, world)
    assert paid.state == P.succeeded and paid.flag == "already_paid"
    assert count(app, Document) == 0


def test_hook_blueprints_mounts_the_webhook_outside_the_language_prefix(app):
    rules = {r.rule: r.endpoint for r in app.url_map.iter_rules()}
    assert rules["/stripe/webhook"] == "stripe_payments.webhook"
    assert rules["/<lang_code>/payments/card/<int:reg_id>"] == "stripe_payments.card_pay"


def test_hook_personal_data_and_forget_person_keep_the_accounts(client, app, fake, world):
    payment = pay(client, app, fake, world)
    with database(app) as s:
        person = s.get(User, world.payer).person
        data = ledger.personal_data(s, person)
        assert [(p["id"], p["state"], p["amount_minor"]) for p in data["payments"]] == [
            (payment.id, "succeeded", 25000)
        ]
        ledger.forget_person(s, person)
        s.commit()
    forgotten = payment_of(app, world)
    assert "customer_email" not in forgotten.provider_data
    assert "customer_email" not in forgotten.request_params
    assert forgotten.state == P.succeeded and forgotten.received_minor == 25000
