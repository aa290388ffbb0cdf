"""Request-level protection: the client's address behind proxies, rate limits, and the
security headers of every response. ``docs/security.md`` explains the choices.

- **Client address**: Werkzeug's ``ProxyFix`` trusts exactly ``PORTAL_TRUSTED_PROXIES``
  reverse proxies (0 = none, the default; 1 behind the nginx of ``docs/operations.md``), so
  ``request.remote_addr`` is the visitor's address and cannot be forged with a header.
- **Rate limits** (``portal/ratelimit.py``): counters live in ``PORTAL_RATELIMIT_STORAGE_URL``
  (``memory://`` for one process, ``redis://…`` shared by every worker and machine in
  production). Counting is one atomic increment that also answers whether the limit is
  passed, so parallel requests cannot slip past it.
- **Log-ins**: every attempt counts against the client's address (a slow-down for that
  address only), and every attempt for an account counts against the account until it
  succeeds. When an account has had too many failed attempts, its password alone no longer
  logs in for the window: the page points to the emailed password-reset link, which always
  works and clears the count, so strangers can never lock the owner out.
- **Email-sending forms** (sign-up, password reset, confirmation and invitation emails) are
  limited per address; a limited request gets the translated 429 page.
"""

from __future__ import annotations

import logging

from flask import Flask, abort, current_app, request
from werkzeug.middleware.proxy_fix import ProxyFix

from portal.ratelimit import RateLimits, parse

logger = logging.getLogger("portal.security")

# Settings (PORTAL_*) of the limits; strings as in "5 per 15 minutes".
EMAIL_FORM_LIMIT = "EMAIL_FORM_RATE_LIMIT"
_EMAIL_FORM_MARK = "portal_email_form_limit"


def email_form_limit() -> str:
    """How many email-sending form posts one address may make (sign-up, reset, invite)."""
    return current_app.config.get(EMAIL_FORM_LIMIT) or "10 per 15 minutes"


def limit_email_form(view):
    """Decorator for a view whose POST sends email: limited per client address (each form
    has its own count). Counted before the view and its other decorators run (a
    ``before_request`` of the app); over the limit, the translated 429 page."""
    setattr(view, _EMAIL_FORM_MARK, True)  # copied by functools.wraps of outer decorators
    return view


def _rate_limits() -> RateLimits:
    return current_app.extensions["portal_rate_limits"]


def _remote_address() -> str:
    return request.remote_addr or "127.0.0.1"


def _check_email_form() -> None:
    if request.method != "POST" or request.endpoint is None or not _enabled():
        return
    view = current_app.view_functions.get(request.endpoint)
    if not getattr(view, _EMAIL_FORM_MARK, False):
        return
    # Redis down: this worker counts in memory meanwhile instead of failing.
    item = parse(email_form_limit())
    if not _rate_limits().hit(
        item, "email-form", request.endpoint, _remote_address(), fallback=True
    ):
        logger.info("rate limit %s passed at %s", email_form_limit(), request.endpoint)
        abort(429)


# -- log-in counters -------------------------------------------------------------------------


def _account_item():
    cfg = current_app.config
    count = int(cfg.get("LOGIN_RATE_LIMIT") or 5)
    seconds = int(cfg.get("LOGIN_RATE_WINDOW") or 300)
    return parse(f"{count} per {seconds} seconds")


def _address_item():
    return parse(current_app.config.get("LOGIN_ADDRESS_RATE_LIMIT") or "30 per 5 minutes")


def _hit(item, *keys: str) -> bool:
    """One atomic increment-and-compare; when the storage (Redis) is down, log and let the
    request through rather than lock everybody out (Argon2 still slows guessing)."""
    try:
        return _rate_limits().hit(item, *keys)
    except Exception:
        logger.warning("rate-limit storage unavailable; request not counted")
        return True


def _enabled() -> bool:
    return bool(current_app.config.get("RATELIMIT_ENABLED", True))


def hit_login_address(address: str) -> bool:
    """Count a log-in attempt from the address; False when the address must slow down."""
    if not _enabled():
        return True
    return _hit(_address_item(), "login-address", address or "-")


def hit_login_account(email: str) -> bool:
    """Count an attempt for the account; False when its password alone may not log in now."""
    if not _enabled():
        return True
    return _hit(_account_item(), "login-account", email or "-")


def hit_reset_request(email: str) -> bool:
    """Count a password-reset request for the address; False: do not send another now."""
    if not _enabled():
        return True
    item = parse(current_app.config.get("RESET_EMAIL_RATE_LIMIT") or "3 per 15 minutes")
    return _hit(item, "reset-email", email or "-")


def clear_login_account(email: str) -> None:
    """A successful log-in or password reset: the account's count starts again."""
    if _enabled():
        try:
            _rate_limits().clear(_account_item(), "login-account", email or "-")
        except Exception:  # the storage is down: the count expires by itself
            logger.warning("rate-limit storage unavailable; count not cleared")


# -- headers ---------------------------------------------------------------------------------

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        # Inline style attributes and <style> blocks are used by the templates; no scripts.
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "frame-ancestors 'none'",
    )
)


def _security_headers(response):
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
    if current_app.config.get("ENV") == "production":
        headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    return response


def _file_field_names(fields) -> set[str]:
    from wtforms.fields import FieldList, FileField, FormField, MultipleFileField

    names: set[str] = set()
    for field in fields:
        if isinstance(field, FileField | MultipleFileField):
            names.add(field.name)
        elif isinstance(field, FormField | FieldList):
            # Not processed yet (no entries): files under its rows' names may pass.
            names.add(field.name + "-*")
    return names


def _only_files_for_file_fields() -> None:
    """A file posted under a text field's name reaches that field as a ``FileStorage`` (and
    ``len()`` of it fails). Flask-WTF's form data keeps files only under file fields' names."""
    from flask_wtf import FlaskForm
    from werkzeug.datastructures import CombinedMultiDict, MultiDict

    meta = FlaskForm.Meta
    if getattr(meta.wrap_formdata, "portal_checked", False):
        return
    original = meta.wrap_formdata

    def wrap_formdata(self, form, formdata):
        data = original(self, form, formdata)
        if isinstance(data, CombinedMultiDict):
            allowed = _file_field_names(form)
            rows = tuple(name[:-1] for name in allowed if name.endswith("-*"))
            files = MultiDict(
                [
                    (k, v)
                    for k, v in request.files.items(multi=True)
                    if k in allowed or (rows and k.startswith(rows))
                ]
            )
            data = CombinedMultiDict((files, request.form))
        return data

    wrap_formdata.portal_checked = True
    meta.wrap_formdata = wrap_formdata


def init_app(app: Flask) -> None:
    _only_files_for_file_fields()
    proxies = int(app.config.get("TRUSTED_PROXIES") or 0)
    if proxies > 0:
        app.wsgi_app = ProxyFix(
            app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies, x_port=proxies
        )
    cfg = app.config
    storage = cfg.get("RATELIMIT_STORAGE_URL") or cfg.get("REDIS_URL") or "memory://"
    app.extensions["portal_rate_limits"] = RateLimits(storage)
    for key in ("LOGIN_ADDRESS_RATE_LIMIT", EMAIL_FORM_LIMIT, "RESET_EMAIL_RATE_LIMIT"):
        if cfg.get(key):
            try:
                parse(cfg[key])
            except ValueError as exc:  # a mistyped setting stops the start, not a request
                raise ValueError(f"PORTAL_{key}: {exc}") from None
    app.before_request(_check_email_form)
    app.after_request(_security_headers)


def client_address() -> str:
    return request.remote_addr or ""
