"""Accounts: sign up, verify, log in, reset and change passwords and addresses, personal data.

Every state change is one function here. It checks what it must, changes rows, writes an
audit entry (without personal details), queues emails in the person's preferred language and
does not commit: the view commits once, so the change and its emails land together.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
from datetime import date, datetime, timedelta
from decimal import Decimal
from urllib.parse import unquote, urlsplit

import sqlalchemy as sa
from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from portal import audit, plugins, security
from portal.accounts import tokens
from portal.accounts.models import NAME_FIELDS, LoginAttempt, Person, Sector, User
from portal.accounts.passwords import hash_password, needs_rehash, verify_password
from portal.audit import AuditEntry
from portal.db import utcnow
from portal.errors import UserError
from portal.i18n import LANGUAGES, BilingualText
from portal.links import external_url
from portal.mail.services import queue_email
from portal.scrub import forget_in_outbox

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1000

# The person's own details that the profile page edits (and the sign-up form fills in).
PERSON_FIELDS = (*NAME_FIELDS, "affiliation", "sector", "country", "preferred_language")


ERROR_MESSAGES = {
    "wrong_password": _l("The password is not correct."),
    "same_email": _l("This is already your email address."),
    "email_taken": _l("This email address already belongs to another account."),
    "password_length": _l(
        "The password must be at least %(min)d characters long.", min=MIN_PASSWORD_LENGTH
    ),
    "already_verified": _l("Your email address is already confirmed."),
}


class AccountError(UserError):
    """A state change that is not allowed: ``code`` names the reason (``"wrong_password"``,
    ...), ``message`` says it in the reader's language, ``field`` is the form field to show it
    on."""

    def __init__(self, code: str, field: str | None = None):
        self.code = code
        message = ERROR_MESSAGES.get(code, _l("The request could not be understood."))
        super().__init__(message, field)


class RateLimited(UserError):
    """Too many log-in attempts: from this client address (``reason="address"``: slow down)
    or for this account (``reason="account"``: its password alone does not log in for now;
    the emailed password-reset link does, see ``portal/security.py``)."""

    def __init__(self, reason: str = "address"):
        self.reason = reason
        if reason == "account":
            # Never a lock-out by strangers: the emailed reset link always logs in.
            message = _l(
                "This account had too many failed log-in attempts, so its password alone does not log in for now. Use “Forgot your password?” to get a link by email: it works at once."
            )
        else:
            message = _l("Too many attempts from your network. Please wait a minute and try again.")
        super().__init__(message)


def normalise_email(email: str | None) -> str:
    return (email or "").strip().lower()


# -- links -----------------------------------------------------------------------------------


def is_safe_next(url: str | None) -> bool:
    """True only for a path on this site ("/ja/account/profile?x=1"); never another host.

    Rejects absolute URLs, scheme-relative ones (//host), backslashes (browsers read
    "/\\host" as "//host"), schemes (javascript:), control characters and whitespace
    (browsers drop tabs and newlines, so "/\\t/host" becomes "//host"), also when
    percent-encoded.
    """
    if not isinstance(url, str) or not url or len(url) > 2048:
        return False
    if any(ord(c) < 0x21 or ord(c) > 0x7E for c in url):
        return False
    decoded = unquote(url)
    if any(c.isspace() or not c.isprintable() for c in decoded):
        return False
    for candidate in (url, decoded):
        if "\\" in candidate:
            return False
        if not candidate.startswith("/") or candidate.startswith("//"):
            return False
        parts = urlsplit(candidate)
        if parts.scheme or parts.netloc:
            return False
    return True


def _fingerprint(email: str) -> str:
    """A short digest of an address: links name it without showing it in server logs."""
    return hashlib.sha256(email.encode()).hexdigest()[:20]


def _language(person: Person) -> str:
    return person.preferred_language if person.preferred_language in LANGUAGES else "ja"


# -- sign up and verification ----------------------------------------------------------------


def sign_up(session: Session, email: str, password: str, **person_fields) -> User | None:
    """Create a Person and an unverified User and send the verification link.

    If the address already has an account, nothing is created (the page says the same thing)
    and the owner gets a "you already have an account" email instead. Returns the new user,
    or None in that case.
    """
    email = normalise_email(email)
    _check_new_password(password)
    existing = session.scalar(sa.select(User).where(User.email == email))
    if existing is not None:
        person = existing.person
        queue_email(
            session,
            existing.email,
            "accounts/already_registered",
            _language(person),
            person=person,
            login_url=external_url("accounts.login", lang_code=_language(person)),
            reset_url=external_url("accounts.forgot_password", lang_code=_language(person)),
        )
        audit.record(session, None, "user", existing.id, "account.signup_repeated")
        return None
    person = Person(email=email, **_person_values(person_fields))
    session.add(person)
    session.flush()
    user = User(person_id=person.id, email=email, password_hash=hash_password(password))
    user.person = person
    session.add(user)
    session.flush()
    audit.record(session, user, "user", user.id, "account.created")
    send_verification(session, user)
    return user


def send_verification(session: Session, user: User) -> None:
    """Queue the verification email (again) with a fresh signed link."""
    if user.is_verified:
        raise AccountError("already_verified")
    lang = _language(user.person)
    token = tokens.make_token(tokens.VERIFY_EMAIL, {"u": user.id, "e": _fingerprint(user.email)})
    queue_email(
        session,
        user.email,
        "accounts/verify_email",
        lang,
        person=user.person,
        link=external_url("accounts.verify_email", lang_code=lang, token=token),
        hours=int(tokens.MAX_AGE[tokens.VERIFY_EMAIL].total_seconds() // 3600),
    )


def verify_email(session: Session, token: str) -> User:
    """Mark the address verified. Raises TokenError for a bad, expired or outdated link."""
    payload = tokens.read_token(tokens.VERIFY_EMAIL, token)
    user = _user_from_payload(session, payload)
    if user is None or _fingerprint(user.email) != payload.get("e"):
        raise tokens.TokenError()
    if not user.is_verified:
        user.email_verified_at = utcnow()
        audit.record(session, user, "user", user.id, "email.verified")
    return user


# -- log in ----------------------------------------------------------------------------------


_dummy_hash: str | None = None


def _equalise_timing(password: str) -> None:
    # Unknown addresses take as long as known ones, so timing does not reveal accounts.
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = hash_password("not-a-real-password")
    verify_password(_dummy_hash, password)


def _rate_window() -> tuple[int, datetime]:
    cfg = current_app.config
    limit = int(cfg.get("LOGIN_RATE_LIMIT") or 5)
    window = int(cfg.get("LOGIN_RATE_WINDOW") or 300)
    return limit, utcnow() - timedelta(seconds=window)


def authenticate(session: Session, email: str, password: str, remote_addr: str) -> User | None:
    """The user if the password is right; None (and a failed attempt recorded) if not.

    Raises RateLimited when the address or the account made too many attempts recently
    (``portal/security.py``: atomic counters, counted before the password is checked, so
    parallel guesses cannot slip past). A success clears the account's count and its failed
    attempts, rehashes the password when the hash parameters changed and records the time of
    the log-in. Failed attempts are also kept (``LoginAttempt``) for the window, as a log.
    """
    email = normalise_email(email)
    remote_addr = (remote_addr or "")[:64]
    if not security.hit_login_address(remote_addr):
        raise RateLimited("address")
    if not security.hit_login_account(email):
        raise RateLimited("account")
    # Argon2 costs about 0.1 s of CPU on purpose. Check the limit and the password on a
    # reading connection first: the writing transaction (on SQLite it holds the database's
    # write lock from BEGIN IMMEDIATE) then only records the outcome, so log-ins do not queue
    # every other writer behind their hashing (bench/rush.py, docs/performance.md).
    with session.get_bind().connect() as reading:
        reading.execution_options(read_only=True)
        stored = (
            reading.scalar(sa.select(User.password_hash).where(User.email == email))
            if email
            else None
        )
    if stored is None:
        _equalise_timing(password)
        ok = False
    else:
        ok = verify_password(stored, password)
    new_hash = hash_password(password) if ok and needs_rehash(stored) else None
    user = session.scalar(sa.select(User).where(User.email == email)) if ok else None
    if user is None or user.password_hash != stored:  # also: changed meanwhile
        _, since = _rate_window()
        session.execute(sa.delete(LoginAttempt).where(LoginAttempt.attempted_at <= since))
        session.add(LoginAttempt(email=email[:254], remote_addr=remote_addr))
        return None
    session.execute(sa.delete(LoginAttempt).where(LoginAttempt.email == email))
    security.clear_login_account(email)
    if new_hash is not None:
        user.password_hash = new_hash
    user.last_login_at = utcnow()
    return user


# -- passwords -------------------------------------------------------------------------------


def _check_new_password(password: str) -> None:
    if not MIN_PASSWORD_LENGTH <= len(password or "") <= MAX_PASSWORD_LENGTH:
        raise AccountError("password_length", "password")


def _set_password(user: User, password: str) -> None:
    _check_new_password(password)
    user.password_hash = hash_password(password)
    # Sessions remember the password version to the second (User.get_id), so make sure the
    # new version differs from the old one even when both fall in the same second.
    now = utcnow()
    old = user.password_changed_at
    if old is not None and int(now.timestamp()) <= int(old.timestamp()):
        now = old.replace(microsecond=0) + timedelta(seconds=1)
    user.password_changed_at = now


def _password_stamp(user: User) -> str:
    return user.password_changed_at.isoformat()


def request_password_reset(session: Session, email: str) -> None:
    """Email a reset link if the address has an account; do nothing otherwise (same page)."""
    user = session.scalar(sa.select(User).where(User.email == normalise_email(email)))
    if user is None:
        return
    lang = _language(user.person)
    token = tokens.make_token(tokens.RESET_PASSWORD, {"u": user.id, "p": _password_stamp(user)})
    queue_email(
        session,
        user.email,
        "accounts/reset_password",
        lang,
        person=user.person,
        link=external_url("accounts.reset_password", lang_code=lang, token=token),
        minutes=int(tokens.MAX_AGE[tokens.RESET_PASSWORD].total_seconds() // 60),
    )
    audit.record(session, None, "user", user.id, "password.reset_requested")


def user_for_reset(session: Session, token: str) -> User:
    """The account a reset link is for; TokenError if it expired, was used or is outdated."""
    payload = tokens.read_token(tokens.RESET_PASSWORD, token)
    user = _user_from_payload(session, payload)
    if user is None or payload.get("p") != _password_stamp(user):
        raise tokens.TokenError()
    return user


def reset_password(session: Session, token: str, new_password: str) -> User:
    """Set a new password from a reset link; the link (and every session) stops working."""
    user = user_for_reset(session, token)
    _set_password(user, new_password)
    if not user.is_verified:
        # Following a link sent to the address proves the person reads it.
        user.email_verified_at = utcnow()
    audit.record(session, user, "user", user.id, "password.reset")
    security.clear_login_account(user.email)  # the reset link proves the owner: log in again
    _notify_password_changed(session, user)
    return user


def change_password(session: Session, user: User, current: str, new_password: str) -> None:
    """Change the password (the current one is needed); other sessions are logged out."""
    if not verify_password(user.password_hash, current or ""):
        raise AccountError("wrong_password", "current_password")
    _set_password(user, new_password)
    audit.record(session, user, "user", user.id, "password.changed")
    _notify_password_changed(session, user)


def _notify_password_changed(session: Session, user: User) -> None:
    lang = _language(user.person)
    queue_email(
        session,
        user.email,
        "accounts/password_changed",
        lang,
        person=user.person,
        reset_url=external_url("accounts.forgot_password", lang_code=lang),
    )


# -- profile ---------------------------------------------------------------------------------


def _person_values(fields: dict) -> dict:
    values = {}
    for name in PERSON_FIELDS:
        if name not in fields:
            continue
        value = fields[name]
        if name == "sector":
            value = Sector(value) if value else None
        elif name == "preferred_language":
            value = value if value in LANGUAGES else "ja"
        elif name == "country":
            value = (value or "").upper()[:2]
        else:
            value = (value or "").strip()
        values[name] = value
    return values


def update_profile(session: Session, user: User, **fields) -> list[str]:
    """Change the person's names, affiliation, sector, country and language; returns what changed."""
    person = user.person
    changed = []
    for name, value in _person_values(fields).items():
        if getattr(person, name) != value:
            setattr(person, name, value)
            changed.append(name)
    if changed:
        # Field names only: the audit log keeps no personal details.
        audit.record(session, user, "person", person.id, "profile.updated", fields=changed)
    return changed


def request_email_change(session: Session, user: User, new_email: str, password: str) -> None:
    """Send a confirmation link to the new address; the account keeps the old one until then."""
    if not verify_password(user.password_hash, password or ""):
        raise AccountError("wrong_password", "password")
    new_email = normalise_email(new_email)
    if new_email == user.email:
        raise AccountError("same_email", "email")
    lang = _language(user.person)
    token = tokens.make_token(
        tokens.CHANGE_EMAIL, {"u": user.id, "old": _fingerprint(user.email), "new": new_email}
    )
    queue_email(
        session,
        new_email,
        "accounts/change_email",
        lang,
        person=user.person,
        link=external_url("accounts.confirm_email_change", lang_code=lang, token=token),
        hours=int(tokens.MAX_AGE[tokens.CHANGE_EMAIL].total_seconds() // 3600),
    )
    audit.record(session, user, "user", user.id, "email.change_requested")


def confirm_email_change(session: Session, user: User, token: str) -> None:
    """Switch to the new, now proven, address. The link only works for the account it names.

    Raises TokenError for a bad, expired or outdated link (or another account's link) and
    AccountError("email_taken") if another account took the address meanwhile.
    """
    payload = tokens.read_token(tokens.CHANGE_EMAIL, token)
    if payload.get("u") != user.id or payload.get("old") != _fingerprint(user.email):
        raise tokens.TokenError()
    new_email = normalise_email(payload.get("new"))
    taken = session.scalar(sa.select(User.id).where(User.email == new_email, User.id != user.id))
    if taken is not None:
        raise AccountError("email_taken", "email")
    old_email = user.email
    user.email = new_email
    user.person.email = new_email
    user.email_verified_at = utcnow()
    audit.record(session, user, "user", user.id, "email.changed")
    queue_email(
        session,
        old_email,
        "accounts/email_changed",
        _language(user.person),
        person=user.person,
        new_email=new_email,
    )


# -- personal data ---------------------------------------------------------------------------


def _jsonable(value):
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, BilingualText):
        return value.as_dict()
    if isinstance(value, Decimal):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _jsonable(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def personal_data(session: Session, user: User) -> dict:
    """Everything stored about the user's person, as JSON-ready data (the "download" button).

    Plugins add theirs through the app-wide ``personal_data`` hook; each plugin's dict is
    placed under its name in ``plugins``.
    """
    person = user.person
    entries = session.scalars(
        sa.select(AuditEntry)
        .where(
            sa.or_(
                sa.and_(AuditEntry.subject_type == "person", AuditEntry.subject_id == person.id),
                sa.and_(AuditEntry.subject_type == "user", AuditEntry.subject_id == user.id),
            )
        )
        .order_by(AuditEntry.at, AuditEntry.id)
    )
    from_core, from_plugins = {}, {}
    for impl in plugins.manager().hook.personal_data.get_hookimpls():
        kwargs = {"person": person} if "person" in impl.argnames else {}
        result = impl.function(**kwargs)
        if getattr(impl.plugin, "core", False):
            from_core[impl.plugin.name] = result
        elif result is not None:
            from_plugins[impl.plugin_name] = result
    data = {
        "person": {
            "id": person.id,
            **{name: getattr(person, name) for name in PERSON_FIELDS},
            "email": person.email,
            "created_at": person.created_at,
        },
        "user": {
            "id": user.id,
            "email": user.email,
            "email_verified_at": user.email_verified_at,
            "is_admin": user.is_admin,
            "created_at": user.created_at,
            "password_changed_at": user.password_changed_at,
            "last_login_at": user.last_login_at,
        },
        "roles": [{"role": r.role, "series_id": r.series_id} for r in user.roles],
        "audit": [
            {
                "at": e.at,
                "subject": f"{e.subject_type}:{e.subject_id}",
                "action": e.action,
                "by_self": e.actor_id == user.id,
                "data": e.data,
            }
            for e in entries
        ],
        **from_core,  # "registrations", "speaker", "payments": the core areas, through the hook
        "plugins": dict(sorted(from_plugins.items())),
    }
    return _jsonable(data)


def check_password(user: User, password: str) -> bool:
    return verify_password(user.password_hash, password or "")


def delete_account(session: Session, user: User) -> None:
    """Delete the account and anonymise the person.

    The core's areas (registrations, speaker records) and every plugin forget the person first
    (``forget_person`` hook); then the User and its roles are deleted, the person's names,
    address and affiliation are blanked (sector and country stay, so statistics still count
    them), emails to the address are dropped and an audit entry without personal details is
    written. The view logs the person out.
    """
    person = user.person
    email = user.email
    # The core's areas (registrations give back their seats, speaker records, payments) first.
    plugins.manager().hook.forget_person(person=person)
    session.execute(sa.delete(LoginAttempt).where(LoginAttempt.email == email))
    # Emails to the person (also to earlier addresses) go; others lose the address.
    forget_in_outbox(session, {email, person.email or email})
    session.delete(user)
    for name in (*NAME_FIELDS, "affiliation"):
        setattr(person, name, "")
    person.email = None
    person.anonymised_at = utcnow()
    session.flush()
    audit.record(session, None, "person", person.id, "account.deleted")


def _user_from_payload(session: Session, payload: dict) -> User | None:
    uid = payload.get("u")
    if not isinstance(uid, int):
        return None
    return session.get(User, uid)


# -- the first administrator -----------------------------------------------------------------


def create_administrator(
    session: Session, email: str, password: str | None = None, language: str = "ja"
) -> tuple[User, bool]:
    """Make ``email`` an administrator: a new, verified account, or an existing one promoted.

    With a password, the account can log in at once. Without one, a new account gets an
    unusable random password and the owner an email with a link to set one (the reset link).
    Returns the user and whether the account was created. Does not commit.
    """
    import secrets

    email = normalise_email(email)
    if not email or "@" not in email:
        raise AccountError("email_invalid", "email")
    if password is not None:
        _check_new_password(password)
    user = session.scalar(sa.select(User).where(User.email == email))
    created = user is None
    if created:
        person = Person(email=email, preferred_language=language if language in LANGUAGES else "ja")
        session.add(person)
        session.flush()
        user = User(
            person_id=person.id,
            email=email,
            password_hash=hash_password(password or secrets.token_urlsafe(32)),
            email_verified_at=utcnow(),
        )
        user.person = person
        session.add(user)
    elif password is not None:
        _set_password(user, password)
    user.is_admin = True
    if user.email_verified_at is None:
        user.email_verified_at = utcnow()
    session.flush()
    audit.record(session, None, "user", user.id, "account.made_administrator")
    if password is None:
        request_password_reset(session, email)
    return user, created
