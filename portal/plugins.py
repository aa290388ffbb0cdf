"""The plugin host: pluggy's manager, which plugins are on for an event, and their settings.

A plugin is a module (built-in ones live in ``plugins/``; third-party ones are found through
the entry-point group ``portal.plugins``) with hook implementations and four attributes:
``name``, ``label`` and ``description`` (lazy-translated) and ``default_settings`` (a dict).
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from types import ModuleType

import pluggy
import sqlalchemy as sa
from flask import abort, current_app, g
from markupsafe import Markup

from portal import hookspecs


def builtin_plugins() -> tuple[str, ...]:
    """Every package in ``plugins/`` is a built-in plugin, registered in name order."""
    import plugins as builtin

    found = sorted(m.name for m in pkgutil.iter_modules(builtin.__path__) if m.ispkg)
    return tuple(f"plugins.{name}" for name in found)


@dataclass(frozen=True)
class Tab:
    """A link on the event page."""

    label: str
    url: str
    plugin: str = ""


# The core's own areas that answer app-wide hooks (personal data download and erasure), so
# that the accounts area reaches them the way it reaches plugins. They have ``core = True`` and
# are not plugins: ``installed()`` leaves them out. They run before the plugins, in this order
# (registrations give back their seats before payments and speaker records are forgotten).
CORE_HOOKS = (
    "portal.registration.hooks",
    "portal.speakers.hooks",
    "portal.payments.hooks",
    "portal.announcements.hooks",
)


def make_plugin_manager(extra: tuple[str, ...] = ()) -> pluggy.PluginManager:
    pm = pluggy.PluginManager("portal")
    pm.add_hookspecs(hookspecs)
    for dotted in reversed(CORE_HOOKS):  # pluggy calls the last registered first
        module = importlib.import_module(dotted)
        pm.register(module, name=f"core.{module.name}")
    for dotted in (*builtin_plugins(), *extra):
        module = importlib.import_module(dotted)
        pm.register(module, name=module.name)
    pm.load_setuptools_entrypoints("portal.plugins")
    return pm


def manager() -> pluggy.PluginManager:
    return current_app.extensions["portal_plugins"]


def installed() -> dict[str, ModuleType]:
    """Installed plugins by name, in registration order (computed once per set of plugins)."""
    pm = manager()
    plugins = pm.get_plugins()
    cached = getattr(pm, "_portal_installed", None)
    if cached is None or cached[0] != len(plugins):
        names = {
            pm.get_name(p): p for p in plugins if pm.get_name(p) and not getattr(p, "core", False)
        }
        cached = (len(plugins), names)
        pm._portal_installed = cached
    return cached[1]


def _rows(event) -> dict:
    from portal.db import db
    from portal.events.models import EventPlugin

    cache = g.setdefault("_event_plugins", {})
    if event.id not in cache:
        rows = db.session.scalars(sa.select(EventPlugin).where(EventPlugin.event_id == event.id))
        cache[event.id] = {row.plugin: row for row in rows}
    return cache[event.id]


def preload(events) -> None:
    """Load the plugin rows of many events in one query (pages calling hooks per list row)."""
    from portal.db import db
    from portal.events.models import EventPlugin

    cache = g.setdefault("_event_plugins", {})
    ids = {e.id for e in events if e.id not in cache}
    if not ids:
        return
    for event_id in ids:
        cache[event_id] = {}
    rows = db.session.scalars(sa.select(EventPlugin).where(EventPlugin.event_id.in_(ids)))
    for row in rows:
        cache[row.event_id][row.plugin] = row


def forget(event) -> None:
    """Drop the per-request cache after enabling or disabling a plugin."""
    g.setdefault("_event_plugins", {}).pop(event.id, None)
    g.setdefault("_event_hooks", {}).pop(event.id, None)


def enabled_names(event) -> set[str]:
    names = installed()
    return {name for name, row in _rows(event).items() if row.enabled and name in names}


def is_enabled(event, name: str) -> bool:
    return name in enabled_names(event)


def require_enabled(event, name: str) -> None:
    """A disabled plugin's pages answer 404 for that event."""
    if not is_enabled(event, name):
        abort(404)


def settings(event, name: str) -> dict:
    """The plugin's settings for the event: stored values over its declared defaults."""
    plugin = installed().get(name)
    defaults = dict(getattr(plugin, "default_settings", {}) or {})
    row = _rows(event).get(name)
    if row is not None and row.settings:
        defaults.update(row.settings)
    return defaults


class EventHooks:
    """Event-scoped hook callers: only the plugins enabled on the event take part."""

    def __init__(self, event):
        pm = manager()
        enabled = enabled_names(event)
        self._pm = pm
        self._removed = [p for name, p in installed().items() if name not in enabled]
        self._callers: dict = {}

    def __getattr__(self, hook_name: str):
        if hook_name.startswith("_"):
            raise AttributeError(hook_name)
        caller = self._callers.get(hook_name)
        if caller is None:
            caller = self._pm.subset_hook_caller(hook_name, remove_plugins=self._removed)
            self._callers[hook_name] = caller
        return caller


def event_hooks(event) -> EventHooks:
    cache = g.setdefault("_event_hooks", {})
    if event.id not in cache:
        cache[event.id] = EventHooks(event)
    return cache[event.id]


def collect(results) -> list:
    """Flatten the per-plugin lists a hook returns (None results are skipped)."""
    flat: list = []
    for result in results or []:
        if result is None:
            continue
        if isinstance(result, list | tuple):
            flat.extend(r for r in result if r is not None)
        else:
            flat.append(result)
    return flat


def call_event_hook(hook_name: str, event, **kwargs) -> list:
    """Call an event-scoped hook and flatten its results: the Jinja helper ``event_hook``."""
    return collect(getattr(event_hooks(event), hook_name)(event=event, **kwargs))


def render_blocks(blocks) -> Markup:
    return Markup("\n").join(Markup(b) for b in blocks)


# -- the one writer of enablement and settings ---------------------------------------------------


def _row(session, event, name: str):
    from portal.events.models import EventPlugin

    row = session.scalar(
        sa.select(EventPlugin).where(EventPlugin.event_id == event.id, EventPlugin.plugin == name)
    )
    if row is None:
        row = EventPlugin(event_id=event.id, plugin=name, enabled=False, settings={})
        session.add(row)
    return row


def set_enabled(session, event, name: str, enabled: bool, actor):
    """Switch a plugin on or off for an event (KeyError for an unknown plugin); audited."""
    from portal import audit

    if name not in installed():
        raise KeyError(name)
    row = _row(session, event, name)
    if row.id is not None and row.enabled == enabled:
        return row
    row.enabled = enabled
    session.flush()
    action = "plugin_enabled" if enabled else "plugin_disabled"
    audit.record(session, actor, "event", event.id, action, plugin=name)
    forget(event)
    return row


def save_settings(session, event, name: str, values: dict, actor):
    """Store a plugin's settings for an event: only the keys it declares in
    ``default_settings`` (others are dropped), over what is stored; audited."""
    from portal import audit

    module = installed().get(name)
    if module is None:
        raise KeyError(name)
    allowed = set((getattr(module, "default_settings", {}) or {}).keys())
    clean = {k: v for k, v in values.items() if k in allowed}
    row = _row(session, event, name)
    row.settings = {**(row.settings or {}), **clean}
    session.flush()
    audit.record(session, actor, "event", event.id, "plugin_settings", plugin=name, settings=clean)
    forget(event)
    return row


def enabled_events(name: str) -> sa.Select:
    """A SELECT of the ids of the events that have the plugin on (for a plugin's queries)."""
    from portal.events.models import EventPlugin

    return sa.select(EventPlugin.event_id).where(
        EventPlugin.plugin == name, EventPlugin.enabled.is_(True)
    )


def latest_series_settings(session, series, name: str) -> dict | None:
    """The stored settings of the series' latest event with the plugin on (None if no event
    has it on): how a plugin whose settings belong to the whole series reads them until
    series-wide settings exist."""
    from portal.events.models import Event, EventPlugin

    settings = session.scalar(
        sa.select(EventPlugin.settings)
        .join(Event, Event.id == EventPlugin.event_id)
        .where(
            Event.series_id == series.id,
            EventPlugin.plugin == name,
            EventPlugin.enabled.is_(True),
        )
        .order_by(Event.starts_at.desc())
        .limit(1)
    )
    return None if settings is None else dict(settings or {})
