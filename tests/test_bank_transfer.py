"""Bank transfer: a second payment method through the same hook, ledger and confirming function."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask import g

from portal.db import db
from portal.documents.models import Document
from portal.payments.models import Payment, PaymentState
from portal.registration import services as registrations
from portal.registration.models import Registration, RegistrationState
from tests.fakes import running_fake_stripe, stripe_settings
from tests.test_stripe_payments import (
    count,
    database,
    emails,
    login,
    make_world,
    pay,
    payment_of,
    registration_state,
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


def mark_paid(client, world, amount, note="Transfer seen on 1 Dec, ヤマダ タロウ"):
    return client.post(
        f"/en/organiser/events/{world.slug}/bank-transfers/{world.reg}",
        data={f"r{world.reg}-amount": amount, f"r{world.reg}-note": note},
    )


def test_hook_payment_methods_offers_bank_transfer_with_its_reference(app):
    world = make_world(app, plugins_on=("bank_transfer",))
    with app.test_request_context("/en/"):
        g.lang_code = "en"
        registration = db.session.get(Registration, world.reg)
        methods = registrations.payment_methods(registration.event, registration)
        assert [(m.code, str(m.label), m.url) for m in methods] == [
            ("bank_transfer", "Pay by bank transfer", f"/en/payments/bank-transfer/{world.reg}")
        ]
        assert f"R{world.reg:06d}" in str(methods[0].description)


def test_hook_payment_methods_lists_both_methods_when_both_are_on(app):
    world = make_world(app, plugins_on=("stripe_payments", "bank_transfer"))
    with app.test_request_context("/en/"):
        g.lang_code = "en"
        registration = db.session.get(Registration, world.reg)
        codes = [m.code for m in registrations.payment_methods(registration.event, registration)]
    assert sorted(codes) == ["bank_transfer", "card"]


def test_hook_payment_methods_without_an_account_offers_no_bank_transfer(app):
    world = make_world(app, plugins_on=("bank_transfer",))
    app.config["ISSUER_BANK_ACCOUNT"] = ""
    with app.test_request_context("/en/"):
        registration = db.session.get(Registration, world.reg)
        assert registrations.payment_methods(registration.event, registration) == []


def test_instructions_show_account_amount_and_reference_to_the_payer_only(client, app):
    world = make_world(
        app, plugins_on=("bank_transfer",), bank_transfer={"bank_account": "Sample Bank 1234567"}
    )
    login(client, app, world.payer)
    page = client.get(f"/en/payments/bank-transfer/{world.reg}")
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Sample Bank 1234567" in text
    assert f"<code>R{world.reg:06d}</code>" in text
    assert "$250.00" in text
    login(client, app, world.stranger)
    assert client.get(f"/en/payments/bank-transfer/{world.reg}").status_code == 404


def test_instructions_answer_404_when_the_plugin_is_off(client, app):
    world = make_world(app, plugins_on=())
    login(client, app, world.payer)
    assert client.get(f"/en/payments/bank-transfer/{world.reg}").status_code == 404


def test_marking_paid_confirms_issues_the_receipt_and_emails_it(client, app):
    world = make_world(app, plugins_on=("bank_transfer",))
    login(client, app, world.organiser)
    page = client.get(f"/en/organiser/events/{world.slug}/bank-transfers/")
    assert page.status_code == 200
    assert f'data-registration="{world.reg}"' in page.get_data(as_text=True)
    response = mark_paid(client, world, "250.00")
    assert response.status_code == 302
    payment = payment_of(app, world)
    assert payment.method == "bank_transfer"
    assert payment.state == P.succeeded
    assert (payment.received_minor, payment.currency) == (25000, "USD")
    assert payment.note == "Transfer seen on 1 Dec, ヤマダ タロウ"
    assert registration_state(app, world) == S.confirmed
    assert count(app, Document) == 1
    assert emails(app, "payments/receipt") == 1
    assert emails(app, "registration/confirmed") == 1
    after = client.get(f"/en/organiser/events/{world.slug}/bank-transfers/")
    assert f'data-registration="{world.reg}"' not in after.get_data(as_text=True)
    # Marking it again is refused: the registration is not waiting any more.
    again = mark_paid(client, world, "250.00")
    assert again.status_code == 400
    assert "This registration is not waiting for a payment." in again.get_data(as_text=True)
    assert count(app, Payment) == 1


def test_a_different_amount_is_recorded_and_flagged(client, app):
    world = make_world(app, plugins_on=("bank_transfer",))
    login(client, app, world.organiser)
    assert mark_paid(client, world, "200").status_code == 302
    payment = payment_of(app, world)
    assert payment.flag == "amount_mismatch"
    assert registration_state(app, world) == S.pending_payment
    assert count(app, Document) == 0


def test_bad_amount_is_explained_and_kept(client, app):
    world = make_world(app, plugins_on=("bank_transfer",))
    login(client, app, world.organiser)
    response = mark_paid(client, world, "two hundred")
    assert response.status_code == 400
    text = response.get_data(as_text=True)
    assert "Enter the amount as a number, for example 5000 or 12.50." in text
    assert 'value="two hundred"' in text
    assert count(app, Payment) == 0
    assert registration_state(app, world) == S.pending_payment


def test_organiser_pages_are_for_the_series_organisers(client, app):
    world = make_world(app, plugins_on=("bank_transfer",))
    for someone in (world.payer, world.stranger):
        login(client, app, someone)
        assert client.get(f"/en/organiser/events/{world.slug}/bank-transfers/").status_code == 404
        assert mark_paid(client, world, "250").status_code == 404
    assert registration_state(app, world) == S.pending_payment


def test_totals_per_method_and_currency_cover_both_methods(client, app, fake):
    world = make_world(app, plugins_on=("stripe_payments", "bank_transfer"))
    pay(client, app, fake, world)
    with database(app) as s:
        event = s.get(Registration, world.reg).event
        from tests import factories as f

        other = f.user(s)
        second = registrations.register(
            s,
            event,
            other.person,
            mode="onsite",
            fee_category=world.category,
            user=other,
            privacy_accepted=True,
        )
        s.commit()
        second_id = second.id
    login(client, app, world.organiser)
    response = client.post(
        f"/en/organiser/events/{world.slug}/bank-transfers/{second_id}",
        data={f"r{second_id}-amount": "250", f"r{second_id}-note": ""},
    )
    assert response.status_code == 302
    text = client.get(f"/en/organiser/events/{world.slug}/payments/").get_data(as_text=True)
    assert (
        '<tr data-method="card" data-currency="USD"><td>Card payment</td><td>USD</td><td>1</td>'
        in text
    )
    assert (
        '<tr data-method="bank_transfer" data-currency="USD"><td>Bank transfer</td><td>USD</td><td>1</td>'
        in text
    )
    only_bank = client.get(f"/en/organiser/events/{world.slug}/payments/?method=bank_transfer")
    assert only_bank.get_data(as_text=True).count("data-payment=") == 1


def test_a_bank_transfer_refund_is_recorded_without_stripe(client, app, fake):
    world = make_world(app, plugins_on=("bank_transfer",))
    login(client, app, world.organiser)
    mark_paid(client, world, "250")
    payment = payment_of(app, world)
    response = client.post(
        f"/en/organiser/events/{world.slug}/payments/{payment.id}/refund",
        data={"amount": "250", "reason": "Paid back by transfer"},
    )
    assert response.status_code == 302
    assert payment_of(app, world).state == P.refunded
    assert registration_state(app, world) == S.cancelled
    assert fake.requests == []
    with database(app) as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Document)) == 2
