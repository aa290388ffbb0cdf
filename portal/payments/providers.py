"""The payment provider interface, in the spirit of pretix's ``BasePaymentProvider``.

A provider is a way of paying (card through Stripe, bank transfer, pay at the door …). It is
contributed by a plugin through the ``payment_providers()`` hook and answers four questions:

- ``payment_method(event, registration)``: what the participant is offered (its instructions
  page, or a description), or ``None`` when it is not offered for this registration;
- ``start(session, registration, language=…, actor=…)``: begin a payment (a card attempt);
  providers recorded by an organiser (bank transfer, pay at the door) do not start anything;
- ``check(session, payment)``: ask the provider what became of a pending payment and settle
  it through the ledger (``portal.payments.services.confirm_payment`` and friends);
- ``refund(session, refund, actor=…)``: give money back through the provider; providers
  without an online refund leave ``refund_online`` off and the ledger records the refund at
  once (the organisers pay it back themselves).

The ledger (``portal.payments``) owns the rows, the state machine, confirmation, receipts,
refunds and the payments list; a provider never changes a payment's state itself.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from markupsafe import Markup

from portal import plugins


class PaymentProvider:
    """Base class: override what the provider supports."""

    #: stored in ``payments.method``; unique among the installed providers
    code: str = ""
    #: the plugin that contributes it (its pages and offer follow that plugin's enablement)
    plugin: str = ""
    #: shown on the payments list, in the CSV and in the receipt email ("Card payment")
    label = _l("Payment")
    #: True when ``refund`` sends money back through the provider (Stripe); otherwise the
    #: organisers pay it back themselves and the ledger records the refund at once
    refund_online: bool = False
    #: True when ``check`` can settle pending payments (``reconcile`` calls it)
    checks_pending: bool = False

    def unavailable_reason(self, event) -> str | None:
        """Why the provider cannot be used (translated; shown to organisers), or None."""
        return None

    def payment_method(self, event, registration):
        """What the participant is offered (``PaymentMethod``), or None."""
        return None

    def instructions(self, registration) -> Markup | None:
        """HTML shown on the participant's registration page while payment is due."""
        return None

    def start(self, session, registration, *, language: str, actor=None):
        """Begin a payment for the registration; returns the ``Payment`` (attempt)."""
        raise NotImplementedError(f"{self.code} payments are recorded by the organisers")

    def check(self, session, payment) -> str | None:
        """Ask the provider about a pending payment and settle it; returns an outcome word
        (None: nothing to ask yet). May commit (no lock is held while the provider is asked)."""
        return None

    def refund(self, session, refund, *, actor=None):
        """Send a refund through the provider and record the answer (online providers)."""
        raise NotImplementedError(f"{self.code} refunds are recorded, not sent")

    def cancel_on_full_refund(self, event) -> bool:
        """Whether a registration whose payment is refunded in full is cancelled."""
        return True

    def housekeeping(self, session) -> int:
        """Periodic clean-up run by ``reconcile`` (e.g. attempts that never opened)."""
        return 0


class _Unknown(PaymentProvider):
    """A payment whose provider plugin is no longer installed: shown, refunds recorded."""

    def __init__(self, code: str):
        self.code = code
        self.label = code


def all_providers() -> dict[str, PaymentProvider]:
    """Every installed provider by code (app-wide: also for events that turned it off)."""
    found: dict[str, PaymentProvider] = {}
    for provider in plugins.collect(plugins.manager().hook.payment_providers()):
        found.setdefault(provider.code, provider)
    return found


def provider(code: str) -> PaymentProvider:
    """The provider of a payment's ``method`` (a stand-in when its plugin is gone)."""
    return all_providers().get(code) or _Unknown(code)


def for_event(event) -> list[PaymentProvider]:
    """The providers of the plugins enabled on the event, in plugin order."""
    return plugins.collect(plugins.event_hooks(event).payment_providers())


def labels() -> dict[str, object]:
    """Method code → label, for lists and CSV."""
    return {code: p.label for code, p in all_providers().items()}


def label(code: str):
    return labels().get(code, code)
