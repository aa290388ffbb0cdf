"""Settings, read from PORTAL_* environment variables, with safe defaults for local use.

Every setting can also be given to ``create_app(config)`` directly (tests do that).
"""

from __future__ import annotations

import os
from pathlib import Path

from portal.text import truthy

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "portal"
# A checkout (or editable install) has pyproject.toml next to portal/; an installed wheel has
# migrations/ and translations/ inside the package instead (setup.py puts them there).
CHECKOUT = (ROOT / "pyproject.toml").is_file()
MIGRATIONS = ROOT / "migrations" if CHECKOUT else PACKAGE / "migrations"
TRANSLATIONS = ROOT / "translations" if CHECKOUT else PACKAGE / "translations"
# Local files of `make run` (SQLite database, uploads, broker): the checkout's instance/, or
# ./instance (or PORTAL_INSTANCE_PATH) for an installed wheel.
INSTANCE = Path(
    os.environ.get("PORTAL_INSTANCE_PATH") or (ROOT / "instance" if CHECKOUT else "instance")
).resolve()

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
    # The office (事務局) that signs the emails; replies go to OFFICE_EMAIL (Reply-To).
    "OFFICE_NAME": ("PORTAL_OFFICE_NAME", "レアメタル研究会 事務局", str),
    "OFFICE_NAME_EN": ("PORTAL_OFFICE_NAME_EN", "Rare Metal Study Group office", str),
    "OFFICE_EMAIL": ("PORTAL_OFFICE_EMAIL", "", str),  # empty: MAIL_SENDER
    "OFFICE_PHONE": ("PORTAL_OFFICE_PHONE", "", str),
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
    # The account holder (口座名義) printed on invoices, and the bank details for transfers from
    # abroad printed on English invoices (SWIFT/BIC, account, holder, the bank's address).
    "ISSUER_BANK_ACCOUNT_HOLDER": (
        "PORTAL_ISSUER_BANK_ACCOUNT_HOLDER",
        "ザイ）ミホンキンゾクシンコウザイダン",
        str,
    ),
    "ISSUER_BANK_NAME_EN": ("PORTAL_ISSUER_BANK_NAME_EN", "Sample Bank, Komaba Branch", str),
    "ISSUER_BANK_SWIFT": ("PORTAL_ISSUER_BANK_SWIFT", "SMPLJPJT", str),
    "ISSUER_BANK_ACCOUNT_EN": ("PORTAL_ISSUER_BANK_ACCOUNT_EN", "Ordinary 0000000", str),
    "ISSUER_BANK_ACCOUNT_HOLDER_EN": (
        "PORTAL_ISSUER_BANK_ACCOUNT_HOLDER_EN",
        "Sample Metals Foundation",
        str,
    ),
    "ISSUER_BANK_ADDRESS_EN": (
        "PORTAL_ISSUER_BANK_ADDRESS_EN",
        "1-1 Komaba, Meguro-ku, Tokyo, Japan (sample)",
        str,
    ),
    "TAX_RATES": ("PORTAL_TAX_RATES", "JPY:10,USD:0", str),
    "UPLOAD_FOLDER": ("PORTAL_UPLOAD_FOLDER", str(INSTANCE / "uploads"), str),
    "LOGIN_RATE_LIMIT": ("PORTAL_LOGIN_RATE_LIMIT", 5, int),
    "LOGIN_RATE_WINDOW": ("PORTAL_LOGIN_RATE_WINDOW", 300, int),
    # Public pages for visitors who are not logged in are kept in a cache shared by every
    # worker, keyed by content versions (portal/pagecache.py): never stale after a change.
    # PAGE_CACHE_SECONDS: the longest a page is kept (pages also change with time); 0 = off.
    "PAGE_CACHE_SECONDS": ("PORTAL_PAGE_CACHE_SECONDS", 300, int),
    # Costly parts of pages (the attendance statistics), kept by the same content versions
    # even where whole pages are not (organisers' pages, PAGE_CACHE_SECONDS=0); 0 = off.
    "FRAGMENT_CACHE_SECONDS": ("PORTAL_FRAGMENT_CACHE_SECONDS", 300, int),
    # redis://host:6379/0 (production, several machines), file:///folder (default:
    # instance/cache, shared by the workers of one machine), simple (one process), null.
    "CACHE_URL": ("PORTAL_CACHE_URL", "", str),
    # Security (portal/security.py, docs/security.md): reverse proxies in front of the app
    # (their X-Forwarded-* headers are trusted), the rate-limit counters' storage shared by
    # all workers (redis://… in production), and the limits per client address.
    "TRUSTED_PROXIES": ("PORTAL_TRUSTED_PROXIES", 0, int),
    # Empty: PORTAL_REDIS_URL when set, else memory:// (one process, make run).
    "RATELIMIT_STORAGE_URL": ("PORTAL_RATELIMIT_STORAGE_URL", "", str),
    "RATELIMIT_ENABLED": ("PORTAL_RATELIMIT_ENABLED", True, bool),
    "LOGIN_ADDRESS_RATE_LIMIT": ("PORTAL_LOGIN_ADDRESS_RATE_LIMIT", "30 per 5 minutes", str),
    "EMAIL_FORM_RATE_LIMIT": ("PORTAL_EMAIL_FORM_RATE_LIMIT", "10 per 15 minutes", str),
    # -- production components (docs/operations.md) --
    # One Redis for everything shared between machines (broker, rate limits, page cache);
    # empty: no Redis (make run): a SQLite-file broker and in-process limits and cache.
    "REDIS_URL": ("PORTAL_REDIS_URL", "", str),
    # Celery broker; default: REDIS_URL, else a SQLite file in instance/ (memory:// in tests).
    "BROKER_URL": ("PORTAL_BROKER_URL", "", str),
    # Ask a worker to run the announcements job right after a commit that scheduled one.
    "TASKS_KICK_OUTBOX": ("PORTAL_TASKS_KICK_OUTBOX", True, bool),
    # How often each worker looks for due email (seconds; 0: only the scheduled send-outbox).
    "OUTBOX_WATCH_SECONDS": ("PORTAL_OUTBOX_WATCH_SECONDS", 1.0, float),
    # Files: empty = the local UPLOAD_FOLDER; s3://bucket[/prefix] = S3-compatible storage.
    "STORAGE_URL": ("PORTAL_STORAGE_URL", "", str),
    "S3_ENDPOINT_URL": ("PORTAL_S3_ENDPOINT_URL", "", str),
    "S3_REGION": ("PORTAL_S3_REGION", "us-east-1", str),
    # Database timeouts (seconds; the statement timeout in milliseconds) and pool.
    "DB_CONNECT_TIMEOUT": ("PORTAL_DB_CONNECT_TIMEOUT", 5, int),
    "DB_STATEMENT_TIMEOUT_MS": ("PORTAL_DB_STATEMENT_TIMEOUT_MS", 30000, int),
    "DB_POOL_SIZE": ("PORTAL_DB_POOL_SIZE", 5, int),
    "DB_MAX_OVERFLOW": ("PORTAL_DB_MAX_OVERFLOW", 5, int),
    "DB_POOL_TIMEOUT": ("PORTAL_DB_POOL_TIMEOUT", 10, int),
    "ALLOW_SQLITE_IN_PRODUCTION": ("PORTAL_ALLOW_SQLITE_IN_PRODUCTION", False, bool),
    # Announcements (docs/announcements.md): messages per minute the mail server allows
    # (0: no limit), the longest one job run sends, and the shared secret of the bounce and
    # complaint webhook (empty: the webhook is off).
    "ANNOUNCEMENTS_RATE_PER_MINUTE": ("PORTAL_ANNOUNCEMENTS_RATE_PER_MINUTE", 600, int),
    "ANNOUNCEMENTS_RUN_SECONDS": ("PORTAL_ANNOUNCEMENTS_RUN_SECONDS", 240, int),
    "BOUNCE_WEBHOOK_SECRET": ("PORTAL_BOUNCE_WEBHOOK_SECRET", "", str),
    "SENTRY_DSN": ("PORTAL_SENTRY_DSN", "", str),
    "LOG_REQUESTS": ("PORTAL_LOG_REQUESTS", True, bool),
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
    if (
        settings.get("TESTING")
        and "FRAGMENT_CACHE_SECONDS" not in (overrides or {})
        and not os.environ.get("PORTAL_FRAGMENT_CACHE_SECONDS")  # a run of the suite with it on
    ):
        settings["FRAGMENT_CACHE_SECONDS"] = 0
    if settings.get("TESTING") and "TASKS_KICK_OUTBOX" not in (overrides or {}):
        settings["TASKS_KICK_OUTBOX"] = False  # tests send with `portal outbox send`

    _derive_shared_state(settings)

    production = settings["ENV"] == "production"
    if production:
        check_production(settings)
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
    settings.setdefault("REMEMBER_COOKIE_SAMESITE", "Lax")
    settings.setdefault("REMEMBER_COOKIE_HTTPONLY", True)
    settings.setdefault("MAX_CONTENT_LENGTH", 20 * 1024 * 1024)
    return settings


def _derive_shared_state(settings: dict) -> None:
    """Fill the broker, rate-limit and cache URLs from ``REDIS_URL`` unless set on their own."""
    redis_url = settings.get("REDIS_URL") or ""
    if not settings.get("BROKER_URL"):
        if settings.get("TESTING"):
            settings["BROKER_URL"] = "memory://"
        elif redis_url:
            settings["BROKER_URL"] = redis_url
        else:
            settings["BROKER_URL"] = f"sqla+sqlite:///{INSTANCE / 'broker.sqlite'}"
    if redis_url:
        # Rate limits (portal/security.py) and the page cache (portal/pagecache.py).
        for key in ("RATELIMIT_STORAGE_URL", "CACHE_REDIS_URL"):
            if not settings.get(key):
                settings[key] = redis_url


MIN_SECRET_BYTES = 32
_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0", ""}


def production_problems(settings: dict) -> list[str]:
    """Everything that makes these settings unsafe for production (one message each).

    Other checks (e.g. the sample invoice issuer) belong in this list too.
    """
    from urllib.parse import urlsplit

    problems = []
    secret = settings.get("SECRET_KEY") or ""
    if not secret:
        problems.append("PORTAL_SECRET_KEY must be set when PORTAL_ENV=production.")
    elif len(secret.encode()) < MIN_SECRET_BYTES:
        problems.append(
            f"PORTAL_SECRET_KEY must be at least {MIN_SECRET_BYTES} bytes long in production."
        )
    url = str(settings.get("DATABASE_URL") or "")
    if url.startswith("sqlite") and not settings.get("ALLOW_SQLITE_IN_PRODUCTION"):
        problems.append(
            "PORTAL_DATABASE_URL is SQLite; production needs PostgreSQL "
            "(set PORTAL_ALLOW_SQLITE_IN_PRODUCTION=1 if you mean it)."
        )
    host = (urlsplit(str(settings.get("BASE_URL") or "")).hostname or "").lower()
    if host in _LOCAL_HOSTS or host.endswith(".localhost"):
        problems.append("PORTAL_BASE_URL must be the public address, not a local one.")
    problems += _issuer_problems(settings)
    return problems


# The sample issuer the portal ships with: receipts and invoices must never carry it.
SAMPLE_ISSUER = {
    "ISSUER_NAME": "一般財団法人 見本金属振興財団",
    "ISSUER_NAME_EN": "Sample Metals Foundation",
    "ISSUER_REGISTRATION_NUMBER": "T0000000000000",
}


def _issuer_problems(settings: dict) -> list[str]:
    """Receipts and invoices are legal documents: the issuer must be the real one."""
    import re

    problems = []
    for key, sample in SAMPLE_ISSUER.items():
        value = str(settings.get(key) or "").strip()
        if not value or value == sample:
            problems.append(f"PORTAL_{key} is still the sample issuer's; set the real one.")
    number = str(settings.get("ISSUER_REGISTRATION_NUMBER") or "")
    if number and number != SAMPLE_ISSUER["ISSUER_REGISTRATION_NUMBER"]:
        if not re.fullmatch(r"T\d{13}", number):
            problems.append("PORTAL_ISSUER_REGISTRATION_NUMBER must be T followed by 13 digits.")
    return problems


def check_production(settings: dict) -> None:
    problems = production_problems(settings)
    if problems:
        raise ConfigError(" ".join(problems))
