"""The ``stripe`` library, imported on first use rather than in every web worker (it is
about 6 MB of memory; docs/performance.md: memory). ``from plugins.stripe_payments import sdk
as stripe`` and then ``stripe.StripeClient``, ``stripe.StripeError``… as usual (PEP 562)."""

from __future__ import annotations


def __getattr__(name: str):
    import stripe

    return getattr(stripe, name)
