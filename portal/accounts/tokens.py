"""Signed links sent by email: verify an address, reset a password, change the address.

Each purpose has its own salt (a link of one kind never works as another) and a maximum age.
The payload names the account and the state it was issued for, so a link stops working once
that state changes: a reset link carries ``password_changed_at`` (used once, it is spent),
a verification or email-change link carries the address it was sent for.
"""

from __future__ import annotations

from datetime import timedelta

from flask import current_app
from flask_babel import lazy_gettext as _l
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from portal.errors import UserError

VERIFY_EMAIL = "verify-email"
RESET_PASSWORD = "reset-password"
CHANGE_EMAIL = "change-email"

MAX_AGE = {
    VERIFY_EMAIL: timedelta(hours=48),
    RESET_PASSWORD: timedelta(hours=1),
    CHANGE_EMAIL: timedelta(hours=48),
}


class TokenError(UserError):
    """The link is not valid; ``expired`` tells the two cases apart (and the message)."""

    def __init__(self, expired: bool = False):
        if expired:
            message = _l("This link has expired. Please ask for a new one.")
        else:
            message = _l("This link is not valid any more. Please ask for a new one.")
        super().__init__(message)
        self.expired = expired


def serializer(purpose: str, **kwargs) -> URLSafeTimedSerializer:
    if purpose not in MAX_AGE:
        raise KeyError(purpose)
    return URLSafeTimedSerializer(
        current_app.config["SECRET_KEY"], salt=f"portal.accounts.{purpose}", **kwargs
    )


def make_token(purpose: str, payload: dict) -> str:
    return serializer(purpose).dumps(payload)


def read_token(purpose: str, token: str) -> dict:
    """The payload of a valid, unexpired token; raises TokenError otherwise."""
    max_age = int(MAX_AGE[purpose].total_seconds())
    try:
        payload = serializer(purpose).loads(token, max_age=max_age)
    except SignatureExpired as exc:
        raise TokenError(expired=True) from exc
    except BadSignature as exc:
        raise TokenError() from exc
    if not isinstance(payload, dict):
        raise TokenError()
    return payload
