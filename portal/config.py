"""Settings, read from PORTAL_* environment variables, with safe defaults for local use.

Every setting can also be given to ``create_app(config)`` directly (tests do that).
"""

from __future__ import annotations

import os
from pathlib import Path

from portal.text import truthy

ROOT = Path(__file__).resolve().parent.parent
INSTANCE = ROOT / "instance"

# setting name -> (environment variable, default, parser)
_SETTINGS: dict[str, tuple[str, object, type | None]] = {
    "ENV": ("PORTAL_ENV", "development", str),
    "SECRET_KEY": ("PORTAL_SECRET_KEY", None, str),
    "DATABASE_URL": ("PORTAL_DATABASE_URL", f"sqlite:///{INSTANCE / 'portal.db'}", str),
    "BASE_URL": ("PORTAL_BASE_URL", "http://127.0.0.1:5000", str),
    "MAIL_SERVER": ("PORTAL_MAIL_SERVER", "localhost", str),
    "MAIL_PORT": ("PORTAL_MAIL_PORT", 25, int),
    "MAIL_USERNAME": ("PORTAL_MAIL_USERNAME", None, str),
    "MAIL_PASSWORD": ("PORTAL_MAIL_PASSWORD", None, str),
    "MAIL_USE_TLS": ("PORTAL_MAIL_USE_TLS", False, bool),
    "MAIL_SENDER": ("PORTAL_MAIL_SENDER", "portal@localhost", str),
    "STRIPE_SECRET_KEY": ("PORTAL_STRIPE_SECRET_KEY", None, str),
    "STRIPE_WEBHOOK_SECRET": ("PORTAL_STRIPE_WEBHOOK_SECRET", None, str),
    "STRIPE_API_BASE": ("PORTAL_STRIPE_API_BASE", None, str),
    "ISSUER_NAME": ("PORTAL_ISSUER_NAME", "一般財団法人 見本金属振興財団", str),
    "ISSUER_NAME_EN": ("PORTAL_ISSUER_NAME_EN", "Sample Metals Foundation", str),
    "ISSUER_ADDRESS": ("PORTAL_ISSUER_ADDRESS", "東京都目黒区駒場4-6-1(見本)", str),
    "ISSUER_ADDRESS_EN": (
        "PORTAL_ISSUER_ADDRESS_EN",
        "4-6-1 Komaba, Meguro-ku, Tokyo (sample)",
        str,
    ),
    "ISSUER_REGISTRATION_NUMBER": ("PORTAL_ISSUER_REGISTRATION_NUMBER", "T0000000000000", str),
    "ISSUER_BANK_ACCOUNT": ("PORTAL_ISSUER_BANK_ACCOUNT", "見本銀行 駒場支店 普通 0000000", str),
    "TAX_RATES": ("PORTAL_TAX_RATES", "JPY:10,USD:0", str),
    "UPLOAD_FOLDER": ("PORTAL_UPLOAD_FOLDER", str(INSTANCE / "uploads"), str),
    "LOGIN_RATE_LIMIT": ("PORTAL_LOGIN_RATE_LIMIT", 5, int),
    "LOGIN_RATE_WINDOW": ("PORTAL_LOGIN_RATE_WINDOW", 300, int),
    # Seconds a public page is reused for visitors who are not logged in (portal/pagecache.py).
    "PAGE_CACHE_SECONDS": ("PORTAL_PAGE_CACHE_SECONDS", 5, int),
}

DEV_SECRET_KEY = "dev-only-not-for-production"


class ConfigError(RuntimeError):
    """The settings cannot run the portal safely."""


def _parse(raw: str, kind: type | None):
    if kind is bool:
        return truthy(raw)
    if kind is int:
        return int(raw)
    return raw


def load(overrides: dict | None = None) -> dict:
    """Settings from the environment, then ``overrides``; checked for production."""
    settings: dict = {}
    for name, (env, default, kind) in _SETTINGS.items():
        raw = os.environ.get(env)
        settings[name] = _parse(raw, kind) if raw not in (None, "") else default
    settings.update(overrides or {})
    if settings.get("TESTING") and "PAGE_CACHE_SECONDS" not in (overrides or {}):
        settings["PAGE_CACHE_SECONDS"] = 0  # a test sees its own changes at once

    production = settings["ENV"] == "production"
    if production and not settings.get("SECRET_KEY"):
        raise ConfigError("PORTAL_SECRET_KEY must be set when PORTAL_ENV=production.")
    if not settings.get("SECRET_KEY"):
        settings["SECRET_KEY"] = DEV_SECRET_KEY
    if production:
        settings.update(
            SESSION_COOKIE_SECURE=True,
            REMEMBER_COOKIE_SECURE=True,
            SESSION_COOKIE_HTTPONLY=True,
            PREFERRED_URL_SCHEME="https",
        )
    settings.setdefault("SESSION_COOKIE_SAMESITE", "Lax")
    settings.setdefault("MAX_CONTENT_LENGTH", 20 * 1024 * 1024)
    return settings
