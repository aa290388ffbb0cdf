"""The card payment flow in Chromium: log in, register for a paid workshop, pay on the fake
Stripe Checkout page, come back to "payment received" and open the receipt."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from portal.db import db
from portal.events.models import EventFormat
from portal.i18n import BilingualText
from portal.payments.models import Payment, PaymentState
from portal.registration.models import FeeCategory, Registration, RegistrationState
from tests import factories as f
from tests.fakes import running_fake_stripe, stripe_settings

pytestmark = pytest.mark.browser


@pytest.fixture
def fake():
    with running_fake_stripe() as server:
        yield server


@pytest.fixture
def app_config(app_config, fake):
    return dict(app_config, **stripe_settings(fake))


def _paid_workshop(app):
    with app.app_context():
        s = db.session
        series = f.series(s, "workshop")
        event = f.event(
            s,
            series,
            format=EventFormat.onsite,
            title=BilingualText(ja="反応性金属ワークショップ", en="Reactive Metal Workshop 2027"),
        )
        f.enable(s, event, "stripe_payments")
        s.add(
            FeeCategory(
                event_id=event.id,
                code="general",
                name=BilingualText(ja="一般", en="General"),
                price_minor=25000,
            )
        )
        user = f.user(s, email="overseas@example.org", preferred_language="en")
        s.commit()
        return event.slug, user.email


def test_pay_by_card_and_get_the_receipt(page, live_server, fake):
    fake.webhook_url = live_server.url + "/stripe/webhook"
    slug, email = _paid_workshop(live_server.app)

    page.goto(live_server.url + "/en/account/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(f.PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()

    page.goto(f"{live_server.url}/en/events/{slug}/")
    page.get_by_role("link", name="Register for this event").click()
    page.get_by_label("General").check()
    page.locator("input[name=privacy]").check()
    page.get_by_role("button", name="Next: check the price").click()
    assert "$250.00" in page.locator("table.price-lines").inner_text()
    page.get_by_role("button", name="Confirm registration").click()
    assert re.search(r"/en/my/registrations/\d+/$", page.url)

    page.locator('a[data-method="card"]').click()
    page.locator("#pay-by-card").click()
    assert page.url.startswith(fake.url + "/pay/cs_test_")
    assert page.locator("#amount").inner_text() == "USD 250.00"
    page.locator("#pay").click()

    page.wait_for_url(re.compile(r"/en/payments/\d+/return"))
    status = page.locator("#payment-status")
    assert status.get_attribute("data-state") == "received"
    assert status.inner_text() == "Payment received: $250.00. Thank you."

    link = page.locator("#receipt-link")
    href = link.get_attribute("href")
    assert re.fullmatch(r"/en/payments/receipts/\d+\.pdf", href)
    pdf = page.request.get(live_server.url + href)
    assert pdf.status == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.body().startswith(b"%PDF")

    # "My registrations" → the registration: the receipt is listed for its owner.
    with page.expect_navigation():  # count() does not wait for the next page
        page.get_by_role("link", name="See your registration").click()
    assert page.locator(f'#receipts a[href="{href}"]').count() == 1
    with live_server.app.app_context():
        registration = db.session.scalars(sa.select(Registration)).one()
        payment = db.session.scalars(sa.select(Payment)).one()
        assert registration.state == RegistrationState.confirmed
        assert payment.state == PaymentState.succeeded
    assert fake.deliveries and all(code == 200 for _id, code in fake.deliveries)
