"""The payments core: providers registered through hooks (card, bank transfer, at the door),
the registration page's sections, the receipt's 宛名, receipts mailed as PDF attachments."""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import g
from markupsafe import Markup

from portal.db import db
from portal.documents.models import Document
from portal.hookspecs import hookimpl
from portal.mail.models import OutboxEmail
from portal.payments import providers
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

ROOT = Path(__file__).resolve().parent.parent
S = RegistrationState
P = PaymentState


@pytest.fixture
def fake():
    with running_fake_stripe() as server:
        yield server


@pytest.fixture
def app_config(app_config, fake):
    return dict(app_config, **stripe_settings(fake))


def _imports(folder: Path) -> set[str]:
    names = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
            elif isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
    return names


@pytest.mark.parametrize(
    "plugin, others",
    [
        ("stripe_payments", ("bank_transfer", "pay_at_door")),
        ("bank_transfer", ("stripe_payments", "pay_at_door")),
        ("pay_at_door", ("stripe_payments", "bank_transfer")),
    ],
)
def test_providers_import_only_the_core_never_each_other(plugin, others):
    imported = _imports(ROOT / "plugins" / plugin)
    for other in others:
        assert not any(name.startswith(f"plugins.{other}") for name in imported), other
    assert not any(name == "stripe" for name in _imports(ROOT / "plugins" / "bank_transfer"))


def test_core_has_no_stripe_and_its_template_no_stripe_include():
    assert not any("stripe" in name for name in _imports(ROOT / "portal" / "payments"))
    detail = (ROOT / "portal/templates/registration/my_detail.html").read_text()
    assert "stripe" not in detail
    assert "registration_sections(registration)" in detail


def test_hook_payment_providers_gives_three_providers_each_offered_where_enabled(app):
    world = make_world(app, plugins_on=("stripe_payments", "bank_transfer", "pay_at_door"))
    with app.test_request_context("/en/"):
        g.lang_code = "en"
        found = providers.all_providers()
        assert sorted(found) == ["at_door", "bank_transfer", "card"]
        assert {code: p.plugin for code, p in found.items()} == {
            "card": "stripe_payments",
            "bank_transfer": "bank_transfer",
            "at_door": "pay_at_door",
        }
        assert (found["card"].refund_online, found["bank_transfer"].refund_online) == (True, False)
        registration = db.session.get(Registration, world.reg)
        methods = registrations.payment_methods(registration.event, registration)
        assert [m.code for m in methods] == ["card", "at_door", "bank_transfer"]
        at_door = methods[1]
        assert (str(at_door.label), at_door.url) == ("Pay at the door", "")
    # Turned off for the event: no longer offered, still known (its payments can be refunded).
    with database(app) as s:
        from portal.events.models import EventPlugin

        s.execute(
            sa.update(EventPlugin).where(EventPlugin.plugin == "pay_at_door").values(enabled=False)
        )
        s.commit()
    with app.test_request_context("/en/"):
        g.lang_code = "en"
        registration = db.session.get(Registration, world.reg)
        methods = registrations.payment_methods(registration.event, registration)
        assert [m.code for m in methods] == ["card", "bank_transfer"]
        assert providers.provider("at_door").plugin == "pay_at_door"
        assert str(providers.label("at_door")) == "Paid at the door"


def test_the_registration_page_shows_the_at_door_instructions(client, app):
    world = make_world(app, plugins_on=("pay_at_door",), pay_at_door={"note": "Cash only"})
    login(client, app, world.payer)
    page = client.get(f"/en/my/registrations/{world.reg}/").get_data(as_text=True)
    assert 'id="pay-at-door"' in page
    assert "You can pay $250.00 at the reception on the day." in page
    assert "Cash only" in page


def collect(client, world, amount):
    return client.post(
        f"/en/organiser/events/{world.slug}/at-the-door/{world.reg}",
        data={f"r{world.reg}-amount": amount},
    )


def test_at_the_door_the_organiser_records_payment_and_checks_in(client, app):
    world = make_world(app, plugins_on=("pay_at_door",))
    login(client, app, world.organiser)
    page = client.get(f"/en/organiser/events/{world.slug}/at-the-door/")
    assert page.status_code == 200
    assert f'data-registration="{world.reg}"' in page.get_data(as_text=True)
    response = collect(client, world, "250.00")
    assert response.status_code == 302
    payment = payment_of(app, world)
    assert (payment.method, payment.state, payment.received_minor) == (
        "at_door",
        P.succeeded,
        25000,
    )
    assert registration_state(app, world) == S.attended
    assert count(app, Document) == 1
    assert emails(app, "payments/receipt") == 1
    # The reception page no longer lists them; a second press is refused with a message.
    page = client.get(f"/en/organiser/events/{world.slug}/at-the-door/").get_data(as_text=True)
    assert f'data-registration="{world.reg}"' not in page
    again = collect(client, world, "250.00")
    assert again.status_code == 400
    assert "This registration is not waiting for a payment." in again.get_data(as_text=True)
    assert count(app, Payment) == 1


def test_at_the_door_a_wrong_amount_is_flagged_and_not_checked_in(client, app):
    world = make_world(app, plugins_on=("pay_at_door",))
    login(client, app, world.organiser)
    assert collect(client, world, "200").status_code == 302
    payment = payment_of(app, world)
    assert payment.flag == "amount_mismatch"
    assert registration_state(app, world) == S.pending_payment
    assert count(app, Document) == 0


def test_at_the_door_pages_are_for_the_organisers_of_events_that_turn_it_on(client, app):
    world = make_world(app, plugins_on=("pay_at_door",))
    login(client, app, world.payer)
    assert client.get(f"/en/organiser/events/{world.slug}/at-the-door/").status_code == 404
    assert collect(client, world, "250").status_code == 404
    other = make_world(app, plugins_on=("bank_transfer",))
    login(client, app, other.organiser)
    assert client.get(f"/en/organiser/events/{other.slug}/at-the-door/").status_code == 404


def test_at_the_door_bad_amount_shows_the_form_again(client, app):
    world = make_world(app, plugins_on=("pay_at_door",))
    login(client, app, world.organiser)
    response = collect(client, world, "a lot")
    assert response.status_code == 400
    assert "Enter the amount as a number" in response.get_data(as_text=True)
    assert count(app, Payment) == 0


class SectionPlugin:
    @hookimpl
    def registration_sections(self, registration, user):
        return [Markup('<section id="extra">For {}</section>').format(user.email)]


def test_hook_registration_sections_blocks_appear_on_the_participants_page(client, app):
    world = make_world(app, plugins_on=("bank_transfer", "section_test"))
    app.extensions["portal_plugins"].register(SectionPlugin(), name="section_test")
    login(client, app, world.payer)
    page = client.get(f"/en/my/registrations/{world.reg}/").get_data(as_text=True)
    with database(app) as s:
        from portal.accounts.models import User

        email = s.get(User, world.payer).email
    assert f'<section id="extra">For {email}</section>' in page
    assert 'id="receipt-name"' in page  # the ledger's own block comes first
    assert page.index('id="receipt-name"') < page.index('id="extra"')


def test_the_participant_names_a_company_for_the_receipt_before_paying(client, app, fake):
    world = make_world(app, payer_language="ja")
    login(client, app, world.payer)
    response = client.post(
        f"/en/payments/registrations/{world.reg}/receipt-name",
        data={"kind": "company", "name": "架空レアメタル工業株式会社 経理部"},
    )
    assert response.status_code == 302
    pay(client, app, fake, world)
    with database(app) as s:
        document = s.scalars(sa.select(Document)).one()
        assert document.recipient_company == "架空レアメタル工業株式会社 経理部"
        assert document.recipient_name == ""
        pdf = _pdf(app, document)
    assert "架空レアメタル工業株式会社 経理部" in _text(pdf)
    # Once issued it cannot be changed here.
    response = client.post(
        f"/en/payments/registrations/{world.reg}/receipt-name",
        data={"kind": "person", "name": "Someone Else"},
        follow_redirects=True,
    )
    assert "Your receipt has already been issued" in response.get_data(as_text=True)


def test_receipt_name_needs_a_name_and_is_the_owners_only(client, app):
    world = make_world(app)
    login(client, app, world.payer)
    response = client.post(
        f"/en/payments/registrations/{world.reg}/receipt-name",
        data={"kind": "company", "name": "  "},
        follow_redirects=True,
    )
    assert "Enter the name to print on the receipt." in response.get_data(as_text=True)
    login(client, app, world.stranger)
    response = client.post(
        f"/en/payments/registrations/{world.reg}/receipt-name",
        data={"kind": "company", "name": "Hijack Ltd."},
    )
    assert response.status_code == 404


def test_the_receipt_email_carries_the_pdf(client, app, fake):
    world = make_world(app)
    pay(client, app, fake, world)
    with database(app) as s:
        email = s.scalars(
            sa.select(OutboxEmail).where(OutboxEmail.template == "payments/receipt")
        ).one()
        document = s.scalars(sa.select(Document)).one()
        assert [(a.filename, a.content_type) for a in email.attachments] == [
            (f"{document.reference}.pdf", "application/pdf")
        ]
        content = email.attachments[0].content
    assert content.startswith(b"%PDF")
    assert document.reference in _text(content)


def _pdf(app, document) -> bytes:
    from portal.documents.pdf import render_pdf

    with app.test_request_context("/en/"):
        return render_pdf(db.session.merge(document))


def _text(pdf: bytes) -> str:
    return subprocess.run(
        ["pdftotext", "-layout", "-", "-"], input=pdf, capture_output=True, check=True
    ).stdout.decode("utf-8")
