"""Fakes of network peers for the tests: a Stripe-shaped HTTP server (``stripe_server``)."""

from __future__ import annotations

from contextlib import contextmanager

from tests.fakes.stripe_server import FakeStripe


@contextmanager
def running_fake_stripe(**kwargs):
    """A FakeStripe on 127.0.0.1 and a free port, stopped afterwards."""
    fake = FakeStripe(**kwargs).start()
    try:
        yield fake
    finally:
        fake.stop()


def stripe_settings(fake: FakeStripe) -> dict:
    """The portal's settings that point the real ``stripe`` library at the fake."""
    return {
        "STRIPE_SECRET_KEY": fake.secret_key,
        "STRIPE_WEBHOOK_SECRET": fake.webhook_secret,
        "STRIPE_API_BASE": fake.url,
        "STRIPE_TIMEOUT": 5,
        "STRIPE_NETWORK_RETRIES": 0,
    }
