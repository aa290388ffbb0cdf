"""Signed links in announcements and list emails (no log-in needed, nothing stored).

- ``leave``: one-click leave (and the language choice) for a person and a series; it never
  expires, as RFC 8058 expects of a List-Unsubscribe link.
- ``view``: an announcement as one recipient received it, in the browser; never expires.
- ``confirm``: the double opt-in link for a subscription, valid for seven days.
"""

from __future__ import annotations

from datetime import timedelta

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeSerializer, URLSafeTimedSerializer

from portal.errors import UserError

CONFIRM_MAX_AGE = timedelta(days=7)


class LinkError(UserError):
    """The link is not valid (or has expired)."""

    def __init__(self, expired: bool = False):
        super().__init__("expired" if expired else "invalid")
        self.expired = expired


def _salt(purpose: str) -> str:
    return f"portal.announcements.{purpose}"


def _plain(purpose: str) -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=_salt(purpose))


def leave_token(series_id: int, person_id: int, announcement_id: int = 0) -> str:
    return _plain("leave").dumps([series_id, person_id, announcement_id])


def view_token(announcement_id: int, person_id: int) -> str:
    return _plain("view").dumps([announcement_id, person_id])


def confirm_token(subscription_id: int, email: str) -> str:
    serializer = URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=_salt("confirm"))
    return serializer.dumps([subscription_id, (email or "").lower()])


def _pair(value) -> tuple:
    if not isinstance(value, list) or len(value) != 2:
        raise LinkError()
    return tuple(value)


def read_leave(token: str) -> tuple[int, int, int]:
    """(series id, person id, id of the announcement the link came in, or 0)."""
    try:
        value = _plain("leave").loads(token)
    except BadSignature as exc:
        raise LinkError() from exc
    if not isinstance(value, list) or len(value) != 3 or not all(isinstance(v, int) for v in value):
        raise LinkError()
    return value[0], value[1], value[2]


def read_view(token: str) -> tuple[int, int]:
    try:
        announcement_id, person_id = _pair(_plain("view").loads(token))
    except BadSignature as exc:
        raise LinkError() from exc
    if not isinstance(announcement_id, int) or not isinstance(person_id, int):
        raise LinkError()
    return announcement_id, person_id


def read_confirm(token: str) -> tuple[int, str]:
    serializer = URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=_salt("confirm"))
    try:
        subscription_id, email = _pair(
            serializer.loads(token, max_age=int(CONFIRM_MAX_AGE.total_seconds()))
        )
    except SignatureExpired as exc:
        raise LinkError(expired=True) from exc
    except BadSignature as exc:
        raise LinkError() from exc
    if not isinstance(subscription_id, int) or not isinstance(email, str):
        raise LinkError()
    return subscription_id, email
