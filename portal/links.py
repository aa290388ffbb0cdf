"""Absolute links for emails and payment providers, built from ``BASE_URL``.

``external_url(endpoint, **values)`` works outside a request too (the outbox worker, the CLI):
the path comes from the app's URL map, the scheme and host from the ``BASE_URL`` setting, never
from the request's Host header.
"""

from __future__ import annotations

from flask import current_app


def external_url(endpoint: str, **values) -> str:
    """BASE_URL plus the path of ``endpoint`` (give ``lang_code`` for pages under a language)."""
    path = current_app.url_map.bind("localhost").build(endpoint, values)
    return (current_app.config.get("BASE_URL") or "").rstrip("/") + path
