"""Two tabs pay one registration in Chromium: both reach the same Checkout Session, the
participant is charged once and both tabs end on "payment received"."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from portal.db import db
from portal.payments.models import Payment, PaymentState
from portal.registration.models import Registration, RegistrationState
from tests.fakes import running_fake_stripe, stripe_settings
from tests.test_stripe_payments import make_world

pytestmark = pytest.mark.browser


@pytest.fixture
def fake():
    with running_fake_stripe() as server:
        yield server


@pytest.fixture
def app_config(app_config, fake):
    return dict(app_config, **stripe_settings(fake))


def test_two_tabs_pay_one_registration_and_are_charged_once(browser, live_server, fake):
    from portal.accounts.models import User
    from tests import factories as f

    fake.webhook_url = live_server.url + "/stripe/webhook"
    world = make_world(live_server.app)
    with live_server.app.app_context():
        email = db.session.get(User, world.payer).email
    context = browser.new_context(locale="en-US")
    first = context.new_page()
    first.set_default_timeout(15_000)
    first.goto(live_server.url + "/en/account/login")
    first.get_by_label("Email").fill(email)
    first.get_by_label("Password").fill(f.PASSWORD)
    first.get_by_role("button", name="Log in").click()
    first.wait_for_load_state()
    second = context.new_page()  # a second tab of the same browser (same log-in)
    second.set_default_timeout(15_000)
    for tab in (first, second):
        tab.goto(f"{live_server.url}/en/my/registrations/{world.reg}/")
        tab.locator('a[data-method="card"]').click()
        tab.locator("#pay-by-card").click()
        tab.wait_for_url(re.compile(r"/pay/cs_test_"))
    assert first.url == second.url  # the same Checkout Session in both tabs
    first.locator("#pay").click()
    first.wait_for_url(re.compile(r"/en/payments/\d+/return"))
    second.locator("#pay").click()  # the session is complete: Stripe takes nothing more
    second.wait_for_url(re.compile(r"/en/payments/\d+/return"))
    for tab in (first, second):
        assert tab.locator("#payment-status").get_attribute("data-state") == "received"
    context.close()
    assert len(fake.sessions) == 1
    assert len(fake.charges) == 1
    with live_server.app.app_context():
        payments = db.session.scalars(sa.select(Payment)).all()
        assert [(p.state, p.received_minor) for p in payments] == [(PaymentState.succeeded, 25000)]
        registration = db.session.get(Registration, world.reg)
        assert registration.state == RegistrationState.confirmed
