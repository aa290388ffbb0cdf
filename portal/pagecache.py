"""Public pages shared by every worker and machine, and never stale.

When registration opens, hundreds of people open the event page from the announcement at
once. Rendering it costs SQL queries, the plugins' hooks and a template (about twenty times the
smallest Flask answer; docs/performance.md), and the answer is the same for every visitor who
is not logged in. ``@cached_for_visitors`` keeps that answer in a cache shared by all workers
(Flask-Caching: Redis in production through ``PORTAL_CACHE_URL``, a folder of files shared by
the workers of one machine by default, one process's memory in tests).

**Never stale.** A kept page carries the *content versions* it was rendered from: the global
version (any change anywhere) and, for an event page, the event's own version. A version is a
random token in the same cache; it is replaced after every committed transaction that changed
rows, by SQLAlchemy session listeners (``after_flush`` notes what changed, ``after_commit``
replaces the tokens), so no view has to remember anything. The next request on any worker
compares the tokens and renders again when one changed. Which version a change replaces:

- rows with an ``event_id`` that only the event's own page shows (registrations, sign-ups,
  attendance…): that event's version;
- everything else (events, talks, plugins enabled or disabled and their settings, series,
  people, speakers…), bulk ``UPDATE``/``DELETE`` statements and raw SQL: the global version,
  which every kept page depends on; a plain ``INSERT``/``UPDATE`` that names the one event it
  writes with the execution option ``SCOPE_OPTION`` (a new registration's row) replaces only
  that event's version;
- ``IGNORED_TABLES`` (the outbox, the audit log, log-in attempts…), which no public page shows:
  none.

Versions are read *before* a page is rendered and stored with it, so a page rendered from data
that changed meanwhile is kept under the old versions and never served. Each app replaces the
global version when it starts, so changes made outside the portal (SQL by hand, a restored
backup) are seen after a restart. Time also changes pages (an event becomes past): a view
may call ``fresh_until(when)``; no page is kept longer than ``PAGE_CACHE_SECONDS``
(default 300; 0 turns the cache off, as in tests unless a test sets it).

Nothing personal is ever shared: a page comes from the cache only for a GET by a visitor who is
not logged in (no log-in in the session, no remember-me cookie) without a flash message
waiting, and is stored only from a 200 answer that left the session untouched (no CSRF token
made, no cookie set). A cache that does not answer (Redis down) means pages are rendered.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from datetime import datetime
from functools import wraps
from itertools import chain
from typing import NamedTuple

import sqlalchemy as sa
from flask import Flask, current_app, g, has_app_context, make_response, request, session
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

_EXTENSION = "portal_page_cache"
GLOBAL = "global"
# Replaced with any event's own version: parts of pages that sum over many events (the
# attendance statistics of a series) depend on it.
EVENTS = "events"

# Tables no public page shows: writing them does not change any kept page.
IGNORED_TABLES = frozenset(
    {
        "outbox_emails",
        "outbox_attachments",
        "audit_log",
        "audit_entries",
        "login_attempts",
        "archive_access_log",
        "processed_webhook_events",
        "webinar_reminders",
        "membership_renewal_reminders",
        "tickets",
    }
)
# Tables with an ``event_id`` whose rows other public pages show (the home page, the series
# page, the speaker directory): a change replaces the global version.
GLOBAL_TABLES = frozenset({"events", "talks", "event_plugins", "series"})


def _cache_config(url: str, app: Flask) -> dict:
    """Flask-Caching settings from ``CACHE_URL`` (redis://…, file:///folder, simple, null)."""
    prefix = app.config.get("CACHE_KEY_PREFIX") or "portal:"
    if url.startswith(("redis://", "rediss://", "unix://")):
        return {
            "CACHE_TYPE": "RedisCache",
            "CACHE_REDIS_URL": url,
            "CACHE_KEY_PREFIX": prefix,
            "CACHE_OPTIONS": {"socket_timeout": 0.5, "socket_connect_timeout": 0.5},
        }
    if url in ("simple", "memory"):
        return {"CACHE_TYPE": "SimpleCache", "CACHE_THRESHOLD": 2000}
    if url in ("null", "none", "off"):
        return {"CACHE_TYPE": "NullCache"}
    folder = url.removeprefix("file://")
    return {"CACHE_TYPE": "FileSystemCache", "CACHE_DIR": folder, "CACHE_THRESHOLD": 5000}


class PageCache:
    """The shared cache of one app: content versions and kept pages."""

    def __init__(self, app: Flask):
        from flask_caching import Cache

        # PORTAL_CACHE_URL, else the one Redis of PORTAL_REDIS_URL (config: CACHE_REDIS_URL).
        url = app.config.get("CACHE_URL") or app.config.get("CACHE_REDIS_URL") or ""
        if not url:
            url = (
                "simple"
                if app.config.get("TESTING")
                else "file://" + os.path.join(app.instance_path, "cache")
            )
        self.url = url
        self.cache = Cache(app, config=_cache_config(url, app))
        self.backend = self.cache.cache
        self.max_seconds = int(app.config.get("PAGE_CACHE_SECONDS") or 0)
        # Parts of pages kept by ``kept_part`` (organisers' pages too), whatever the page
        # cache says; 0 turns them off (tests, unless a test sets it).
        self.part_seconds = int(app.config.get("FRAGMENT_CACHE_SECONDS") or 0)

    # -- content versions ----------------------------------------------------------------

    @staticmethod
    def version_key(scope: str) -> str:
        return f"v:{scope}"

    def bump(self, scopes) -> None:
        """Replace the versions of ``scopes``: pages rendered from them are not served again."""
        tokens = {self.version_key(s): os.urandom(8).hex() for s in scopes}
        try:
            client = getattr(self.backend, "_write_client", None)  # cachelib's Redis caches
            if client is not None and hasattr(self.backend, "_get_prefix"):
                # One MSET, values serialized as the cache reads them (``versions``): a
                # registration bumps its event this way, a pipeline cost it twice the calls.
                prefix, dumps = self.backend._get_prefix(), self.backend.serializer.dumps
                client.mset({prefix + key: dumps(token) for key, token in tokens.items()})
            else:
                self.backend.set_many(tokens, timeout=0)
        except Exception:  # the cache is down: pages are rendered until it answers
            log.exception("could not replace the content versions %s", sorted(scopes))

    def versions(self, scopes) -> dict[str, str]:
        """The current token of each scope (a new one for a scope the cache has forgotten)."""
        keys = [self.version_key(s) for s in scopes]
        values = self.backend.get_many(*keys)
        out = {}
        for scope, key, value in zip(scopes, keys, values, strict=True):
            if value is None:
                self.backend.add(key, os.urandom(8).hex(), timeout=0)
                value = self.backend.get(key)
            out[scope] = value
        return out


# Page caches by database address, for commits made outside an app context.
_by_database: dict[str, weakref.WeakSet] = {}
_registry_lock = threading.Lock()


def _database_key(url) -> str:
    return url.render_as_string(hide_password=True) if hasattr(url, "render_as_string") else url


def init_app(app: Flask) -> None:
    store = PageCache(app)
    app.extensions[_EXTENSION] = store
    with _registry_lock:
        key = _database_key(app.extensions["portal_db"]["engine"].url)
        _by_database.setdefault(key, weakref.WeakSet()).add(store)
    store.bump([GLOBAL])  # whatever was kept before this start is not trusted


def page_cache(app: Flask | None = None) -> PageCache:
    return (app or current_app).extensions[_EXTENSION]


# -- what changed: SQLAlchemy session listeners ----------------------------------------------

_CHANGED = "portal_changed_scopes"


def scopes_of(obj) -> set[str]:
    table = getattr(getattr(obj, "__table__", None), "name", None)
    if table in IGNORED_TABLES:
        return set()
    event_id = getattr(obj, "event_id", None)
    if table in GLOBAL_TABLES or event_id is None:
        return {GLOBAL}
    state = sa.inspect(obj)
    history = state.attrs.event_id.history if "event_id" in state.attrs else None
    if history is not None and history.deleted:  # moved to another event
        return {GLOBAL}
    return {f"event:{event_id}"}


@sa.event.listens_for(Session, "after_flush")
def _note_flushed_changes(session: Session, _context) -> None:
    changed = session.info.setdefault(_CHANGED, set())
    for obj in chain(session.new, session.deleted):
        changed |= scopes_of(obj)
    for obj in session.dirty:
        if session.is_modified(obj, include_collections=False):
            changed |= scopes_of(obj)


SCOPE_OPTION = "portal_scope"


@sa.event.listens_for(Session, "do_orm_execute")
def _note_statements(state) -> None:
    statement = state.statement
    if state.is_insert or state.is_update or state.is_delete:
        table = getattr(getattr(statement, "table", None), "name", None)
        if table not in IGNORED_TABLES:
            # A statement that names the one event it writes (``SCOPE_OPTION``, e.g. a new
            # registration's INSERT) changes that event's pages only; any other, all pages.
            scope = state.execution_options.get(SCOPE_OPTION)
            scope = scope if scope and scope.startswith("event:") else GLOBAL
            state.session.info.setdefault(_CHANGED, set()).add(scope)
    elif isinstance(statement, sa.TextClause):
        if statement.text.lstrip()[:6].lower() in ("insert", "update", "delete"):
            state.session.info.setdefault(_CHANGED, set()).add(GLOBAL)


@sa.event.listens_for(Session, "after_soft_rollback")
def _forget_rolled_back(session: Session, previous_transaction) -> None:
    if previous_transaction.parent is None:
        session.info.pop(_CHANGED, None)


@sa.event.listens_for(Session, "after_commit")
def _replace_versions(session: Session) -> None:
    changed = session.info.pop(_CHANGED, None)
    if not changed:
        return
    if GLOBAL in changed:
        changed = {GLOBAL}
    else:
        changed = {*changed, EVENTS}  # only event scopes are left: each is an event's
    stores: list[PageCache] = []
    if has_app_context() and _EXTENSION in current_app.extensions:
        stores.append(current_app.extensions[_EXTENSION])
    else:
        bind = session.get_bind()
        with _registry_lock:
            stores.extend(_by_database.get(_database_key(bind.url), ()))
    for store in stores:
        store.bump(changed)


def bump(*scopes: str) -> None:
    """Replace versions by hand (a change the listeners cannot see, e.g. a file on disk)."""
    page_cache().bump(scopes or (GLOBAL,))


# -- the views' side ---------------------------------------------------------------------------


def depends_on(scope: str) -> None:
    """The page being rendered shows rows of ``scope`` (e.g. ``f"event:{event.id}"``)."""
    g.setdefault("_page_scopes", set()).add(scope)


def fresh_until(when: datetime | None) -> None:
    """The page being rendered changes by itself at ``when`` (an event becomes past)."""
    if when is None:
        return
    ts = when.timestamp()
    if ts > time.time():
        g._page_until = min(g.get("_page_until", ts), ts)


def _personal() -> bool:
    """True when the answer may differ for this visitor (logged in, or a message waiting)."""
    remember = current_app.config.get("REMEMBER_COOKIE_NAME", "remember_token")
    return "_user_id" in session or "_flashes" in session or remember in request.cookies


def _shareable(response, per_person: bool) -> bool:
    csrf_field = current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token")
    return (
        response.status_code == 200
        and not response.direct_passthrough
        and not session.modified
        # A CSRF token is valid only with its session's secret, which a personal key names.
        and (per_person or csrf_field not in g)
        and "Set-Cookie" not in response.headers
    )


def csrf_secret_digest() -> str:
    """Which CSRF secret the session holds (kept HTML may hold tokens made from it)."""
    secret = session.get(current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token"))
    return hashlib.sha256(secret.encode()).hexdigest()[:16] if secret else "-"


def cached_for_visitors(view=None, *, per_person: bool = False):
    """Serve the view's answer from the shared cache to visitors who are not logged in.

    ``per_person=True``: a logged-in person's own copy is kept too, under their log-in (which
    names the password version) and their session's CSRF secret. Served without loading the
    person: any change to their rows (password, roles, registrations) replaces a version the
    copy depends on. Never with a flash message waiting.
    """
    if view is None:
        return lambda v: cached_for_visitors(v, per_person=per_person)

    @wraps(view)
    def wrapper(*args, **kwargs):
        store = current_app.extensions.get(_EXTENSION)
        if store is None or store.max_seconds <= 0 or request.method != "GET":
            return view(*args, **kwargs)
        key = f"page:{request.host}{request.full_path}"
        mine = per_person and "_user_id" in session and "_flashes" not in session
        if mine:
            key += f"|u:{session['_user_id']}|{csrf_secret_digest()}"
        elif _personal():
            return view(*args, **kwargs)
        try:
            entry = store.backend.get(key)
            scopes = [GLOBAL, *(entry["scopes"] if entry else ())]
            now_versions = store.versions(scopes)
        except Exception:
            log.exception("the page cache did not answer")
            return view(*args, **kwargs)
        if entry is not None and entry["versions"] == now_versions and entry["until"] > time.time():
            return current_app.response_class(entry["body"], status=200, headers=entry["headers"])

        response = make_response(view(*args, **kwargs))
        if not _shareable(response, mine):
            return response
        scopes_now = {GLOBAL, *g.get("_page_scopes", ())}
        # Versions read before rendering prove the page; a scope first seen in this rendering
        # was not read before, so the page is only noted and kept from the next rendering on.
        proven = scopes_now <= set(now_versions)
        until = time.time() + store.max_seconds
        until = min(until, g.get("_page_until", until))
        headers = [(k, v) for k, v in response.headers if k.lower() != "content-length"]
        entry = {
            "scopes": sorted(scopes_now - {GLOBAL}),
            "versions": {s: now_versions[s] for s in scopes_now} if proven else None,
            "until": until,
            "body": response.get_data(),
            "headers": headers,
        }
        try:
            store.backend.set(key, entry, timeout=max(1, int(until - time.time()) + 1))
        except Exception:
            log.exception("the page cache did not keep a page")
        return response

    return wrapper


def cached_fragment(key, scopes, render):
    """A part of a page kept in the shared cache under the content versions of ``scopes``
    (plus the global version): ``render()`` runs only when one of them changed.

    ``key()`` names the part (include everything it depends on besides the data: the
    language, the person); it is asked again after rendering, since rendering may change it
    (a CSRF secret put into the session). ``render()`` returns any picklable value.
    """
    store = current_app.extensions.get(_EXTENSION)
    if store is None or store.max_seconds <= 0:
        return render()
    return _fragment(store, store.max_seconds, key, scopes, render)


def kept_part(key, scopes, render):
    """``cached_fragment`` for parts that are worth keeping even when whole pages are not
    (``FRAGMENT_CACHE_SECONDS``, default 300, instead of ``PAGE_CACHE_SECONDS``): a part that
    costs much more than reading two versions, the same for many requests (the attendance
    statistics' tables and chart). Never stale for the same reasons: the versions of
    ``scopes`` (and the global one) are read before rendering, ``fresh_until`` bounds it."""
    store = current_app.extensions.get(_EXTENSION)
    if store is None or store.part_seconds <= 0:
        return render()
    return _fragment(store, store.part_seconds, key, scopes, render)


def kept_for_person(name: str, scopes, render):
    """``kept_part`` of a page for the person logged in: keyed by the page's address (its
    language and query), the log-in (which names the password version) and the session's
    CSRF secret (the HTML may hold CSRF tokens). For organisers' pages, which are never shared;
    changes to the person's rows or roles replace the global version."""

    def key() -> str:
        user = session.get("_user_id", "-")
        return f"{name}|{request.host}{request.full_path}|u:{user}|{csrf_secret_digest()}"

    return kept_part(key, scopes, render)


def _render_bounded(render, now: float, max_seconds: int):
    """``render()`` and until when its value may be kept (``fresh_until`` calls made while
    rendering, at most ``max_seconds``); they still bound the page around it."""
    outer = g.pop("_page_until", None)
    value = render()
    until = min(now + max_seconds, g.get("_page_until", now + max_seconds))
    if outer is not None:
        g._page_until = min(outer, until)
    return value, until


def _fragment(store: PageCache, max_seconds: int, key, scopes, render):
    scopes = [GLOBAL, *scopes]
    try:
        versions = store.versions(scopes)  # read before rendering: they prove the part
        entry = store.backend.get(f"frag:{key()}")
    except Exception:
        log.exception("the page cache did not answer")
        return render()
    now = time.time()
    if entry is not None and entry["versions"] == versions and entry["until"] > now:
        if entry["until"] < now + max_seconds:
            fresh_until(datetime.fromtimestamp(entry["until"]).astimezone())
        return entry["value"]
    value, until = _render_bounded(render, now, max_seconds)
    try:
        store.backend.set(
            f"frag:{key()}",
            {"versions": versions, "until": until, "value": value},
            timeout=max(1, int(until - now) + 1),
        )
    except Exception:
        log.exception("the page cache did not keep a part of a page")
    return value


class Part(NamedTuple):
    """One part of ``kept_parts``: ``key()`` names it (as for ``cached_fragment``: everything
    it depends on besides the data); ``personal``: the key names the person and the session's
    CSRF secret, so a part whose rendering made a CSRF token may be kept (a part shared between
    visitors is then rendered each time: the token would be another session's)."""

    key: Callable[[], str]
    render: Callable[[], object]
    personal: bool = False


def kept_parts(scopes, parts: list[Part]) -> list:
    """Several ``kept_part``s of one page under the same ``scopes``, read in one round trip
    (the versions and every part: one ``get_many``). The values come back in the order of
    ``parts``; a part missing or proven by older versions is rendered (with its own
    ``fresh_until``) and kept, the others are not rendered at all."""
    store = current_app.extensions.get(_EXTENSION)
    if store is None or store.part_seconds <= 0:
        return [part.render() for part in parts]
    scopes = [GLOBAL, *scopes]
    csrf_field = current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token")
    try:
        got = store.backend.get_many(
            *(store.version_key(s) for s in scopes), *(f"frag:{p.key()}" for p in parts)
        )
        versions = dict(zip(scopes, got[: len(scopes)], strict=True))
        if None in versions.values():  # a version the cache forgot: a new one
            versions = store.versions(scopes)
        entries = got[len(scopes) :]
    except Exception:
        log.exception("the page cache did not answer")
        return [part.render() for part in parts]
    now = time.time()
    values: list = []
    keep: dict = {}
    longest = 0.0
    for part, entry in zip(parts, entries, strict=True):
        if entry is not None and entry["versions"] == versions and entry["until"] > now:
            if entry["until"] < now + store.part_seconds:
                fresh_until(datetime.fromtimestamp(entry["until"]).astimezone())
            values.append(entry["value"])
            continue
        token = None if part.personal else g.pop(csrf_field, None)
        value, until = _render_bounded(part.render, now, store.part_seconds)
        values.append(value)
        made_token = not part.personal and csrf_field in g
        if token is not None:
            setattr(g, csrf_field, token)
        if not made_token:
            keep[f"frag:{part.key()}"] = {"versions": versions, "until": until, "value": value}
            longest = max(longest, until - now)
    if keep:
        try:
            store.backend.set_many(keep, timeout=max(1, int(longest) + 1))
        except Exception:
            log.exception("the page cache did not keep parts of a page")
    return values
