"""A few seconds' cache of busy public pages for visitors who are not logged in.

When registration opens, hundreds of people open the event page from the announcement at
once. Rendering it costs several SQL queries, the plugins' hooks and a template (about ten
times the cost of the smallest Flask answer; see docs/performance.md), and the answer is the
same for every visitor who is not logged in. ``@cached_for_visitors`` keeps that answer for
``PAGE_CACHE_SECONDS`` (default 5; 0 turns it off) in each worker process.

Nothing personal is ever shared:

- a page comes from the cache only for a GET by a visitor who is not logged in (no log-in in
  the session, no remember-me cookie) and has no flash message waiting;
- a page is stored only when it was a 200 answer that left the visitor's session untouched
  (no CSRF token made, no cookie set).

Logged-in people always get a freshly rendered page; visitors who are not logged in may see a
change (a new talk, a status) up to ``PAGE_CACHE_SECONDS`` late. Tests (``TESTING``) run with
the cache off unless they set ``PAGE_CACHE_SECONDS`` themselves.
"""

from __future__ import annotations

import threading
import time
from functools import wraps

from flask import current_app, g, make_response, request, session

MAX_ENTRIES = 1000
_EXTENSION = "portal_page_cache"
_lock = threading.Lock()


def _seconds() -> float:
    return float(current_app.config.get("PAGE_CACHE_SECONDS") or 0)


def _personal() -> bool:
    """True when the answer may differ for this visitor (logged in, or a message waiting)."""
    remember = current_app.config.get("REMEMBER_COOKIE_NAME", "remember_token")
    return "_user_id" in session or "_flashes" in session or remember in request.cookies


def _store() -> dict:
    return current_app.extensions.setdefault(_EXTENSION, {})


def clear() -> None:
    """Forget every cached page of this process."""
    with _lock:
        _store().clear()


def cached_for_visitors(view):
    """Serve the view's answer from this process's cache to visitors who are not logged in."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        seconds = _seconds()
        if seconds <= 0 or request.method != "GET" or _personal():
            return view(*args, **kwargs)
        store = _store()
        key = request.full_path
        now = time.monotonic()
        hit = store.get(key)
        if hit is not None and hit[0] > now:
            return current_app.response_class(hit[1], status=200, headers=hit[2])
        response = make_response(view(*args, **kwargs))
        csrf_field = current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token")
        if (
            response.status_code == 200
            and not response.direct_passthrough
            and not session.modified
            and csrf_field not in g
            and "Set-Cookie" not in response.headers
        ):
            headers = [(k, v) for k, v in response.headers if k.lower() != "content-length"]
            with _lock:
                if len(store) >= MAX_ENTRIES:
                    for old in [k for k, v in store.items() if v[0] <= now] or list(store)[:1]:
                        del store[old]
                store[key] = (now + seconds, response.get_data(), headers)
        return response

    return wrapper
