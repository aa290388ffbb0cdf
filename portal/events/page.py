"""The event page's content: a frame rendered each time around parts kept by content version.

The parts that cost queries and plugin hooks (issue 14: "fragments of plugin sections and the
programme cached by version") are kept in the shared cache (``pagecache.kept_parts``,
``FRAGMENT_CACHE_SECONDS``), under the event's version and the global one, so a part is
never stale: talks, speakers, fee categories, plugin rows and settings, seats and sign-ups,
archive items are all rows whose change replaces one of the two (``portal/pagecache.py``), and
each part is kept at most until the event starts or ends (its sections change then) or the
moment a plugin names with ``fresh_until`` (the webinar's link). The parts:

- ``tabs``: every enabled plugin's ``event_tabs``;
- ``programme``: the talks with their speakers and the plugins' ``talk_links``;
- ``fees``: the fee table (the same for everyone);
- one part per plugin with an ``event_sections`` hook (``section:<plugin>``).

Tabs, programme and sections are given the visitor (``user``): for a logged-in person they
are kept under their log-in and their session's CSRF secret (a section may hold a form), never
shared, and only with the page cache off (with it on, their whole content is kept for them
under the same versions: ``events.views.event_page``); for visitors who are not logged in they are shared (a part whose rendering made a CSRF
token is then rendered each time). Only the title, the facts, the description and the
registration box are rendered on every request. Drafts (organisers only) are rendered whole.
A plugin whose hooks show anything else (a file, another service) sets ``event_parts_kept =
False``: its section, and the tabs and programme if it has such hooks, are then rendered on
every request.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from flask import current_app, render_template, request
from flask_login import current_user
from markupsafe import Markup

from portal import plugins
from portal.events.models import Event, EventStatus
from portal.i18n import current_language
from portal.pagecache import Part, csrf_secret_digest, fresh_until, kept_parts, page_cache


@dataclass(frozen=True)
class EventParts:
    tabs: Markup
    programme: Markup
    fees: Markup
    sections: Markup


def event_parts(event: Event) -> EventParts:
    """The event page's kept parts for the current visitor (rendered when not kept)."""
    user = current_user._get_current_object()
    personal = bool(getattr(user, "is_authenticated", False))
    # With the page cache on, a logged-in person's whole content is kept for them
    # (events.views.event_page) under the same versions: their parts are not kept twice.
    mine_kept = personal and page_cache().max_seconds > 0
    sections = plugins.implementations("event_sections", event)
    enabled = sorted(plugins.enabled_names(event))
    live = {name for name in enabled if not _kept(name)}
    base = f"event:{event.id}|{request.host}|{current_language()}"
    # The aggregated parts name the plugins that made them (two apps with other plugins
    # sharing a cache do not mix them up).
    signature = hashlib.sha256(",".join(enabled).encode()).hexdigest()[:12]

    def who() -> str:
        return f"u:{user.get_id()}|{csrf_secret_digest()}" if personal else "-"

    def bounded(render):
        def run():
            fresh_until(event.starts_at)  # sections change when the event starts or ends
            fresh_until(event.ends_at)
            return render()

        return run

    def tabs() -> Markup:
        found = plugins.call_event_hook("event_tabs", event, user=user)
        return Markup(render_template("events/_tabs.html", tabs=found)) if found else Markup()

    def programme() -> Markup:
        return Markup(render_template("events/_programme.html", event=event))

    def fees() -> Markup:
        if "fee_table" not in current_app.jinja_env.globals:  # no registration area
            return Markup()
        return Markup(render_template("registration/_fee_table.html", event=event))

    def section(call):
        return lambda: [str(b) for b in plugins.collect([call(event=event, user=user)])]

    hook_live = _hooks_of(live, ("event_tabs", "talk_links"))
    slots: list = [  # a Part is kept; a plain function is rendered each time
        bounded(tabs)
        if "event_tabs" in hook_live
        else Part(lambda: f"{base}|tabs|{signature}|{who()}", bounded(tabs), personal),
        bounded(programme)
        if "talk_links" in hook_live
        else Part(lambda: f"{base}|programme|{signature}|{who()}", bounded(programme), personal),
        Part(lambda: f"{base}|fees", bounded(fees)),
    ]
    if sections is None:  # a hook wrapper takes part: every section in one call, each time
        slots.append(
            lambda: [str(b) for b in plugins.call_event_hook("event_sections", event, user=user)]
        )
    for name, call in sections or ():
        if name in live:
            slots.append(section(call))
        else:
            slots.append(
                Part(
                    lambda name=name: f"{base}|section:{name}|{who()}",
                    bounded(section(call)),
                    personal,
                )
            )
    if mine_kept:
        slots = [s.render if isinstance(s, Part) and s.personal else s for s in slots]
    keep = [slot for slot in slots if isinstance(slot, Part)]
    if event.status == EventStatus.draft:  # organisers only, while it is prepared
        kept = iter([part.render() for part in keep])
    else:
        kept = iter(kept_parts([f"event:{event.id}"], keep))
    values = [next(kept) if isinstance(slot, Part) else slot() for slot in slots]
    blocks = [Markup(b) for value in values[3:] for b in value]
    return EventParts(
        tabs=values[0],
        programme=values[1],
        fees=values[2],
        sections=Markup("\n").join(blocks),
    )


def _kept(name: str) -> bool:
    module = plugins.installed().get(name)
    return getattr(module, "event_parts_kept", True) is not False


def _hooks_of(names: set[str], hooks: tuple[str, ...]) -> set[str]:
    """Which of ``hooks`` the plugins ``names`` implement."""
    if not names:
        return set()
    pm = plugins.manager()
    return {
        hook
        for hook in hooks
        if any(impl.plugin_name in names for impl in getattr(pm.hook, hook).get_hookimpls())
    }
