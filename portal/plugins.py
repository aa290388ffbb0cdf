"""The plugin host: pluggy's manager, which plugins are on for an event, and their settings.

A plugin is a module (built-in ones live in ``plugins/``; third-party ones are found through
the entry-point group ``portal.plugins``) with hook implementations and four attributes:
``name``, ``label`` and ``description`` (lazy-translated) and ``default_settings`` (a dict),
and optionally ``scope``: ``"event"`` (the default: switched on per event, ``EventPlugin``)
or ``"series"`` (switched on for a whole series, ``SeriesPlugin``: membership, the archive,
attendance statistics). A series plugin that is on for a series is on for each of its events,
so event-scoped hooks and ``is_enabled(event, …)`` work the same for both scopes.
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


EVENT, SERIES = "event", "series"


def scope(name: str) -> str:
    """``"series"`` for a plugin switched on per series, else ``"event"``."""
    module = installed().get(name)
    return SERIES if getattr(module, "scope", EVENT) == SERIES else EVENT


def series_plugin_names() -> list[str]:
    return [name for name in installed() if scope(name) == SERIES]


def _series_rows(series_id: int) -> dict:
    from portal.db import db
    from portal.events.models import SeriesPlugin

    cache = g.setdefault("_series_plugins", {})
    if series_id not in cache:
        rows = db.session.scalars(
            sa.select(SeriesPlugin).where(SeriesPlugin.series_id == series_id)
        )
        cache[series_id] = {row.plugin: row for row in rows}
    return cache[series_id]


_ROWS_OF_EVENT: list = []


def _rows_statement():
    """The event's plugin rows and its series', as plain rows (``plugin``, ``enabled``,
    ``settings``): one statement, built once with bound parameters."""
    if not _ROWS_OF_EVENT:
        from portal.events.models import EventPlugin, SeriesPlugin

        columns = ("plugin", "enabled", "settings")
        own = sa.select(
            sa.literal(EVENT).label("scope"), *(getattr(EventPlugin, c) for c in columns)
        ).where(EventPlugin.event_id == sa.bindparam("event_id"))
        series = sa.select(
            sa.literal(SERIES).label("scope"), *(getattr(SeriesPlugin, c) for c in columns)
        ).where(SeriesPlugin.series_id == sa.bindparam("series_id"))
        _ROWS_OF_EVENT.append(sa.union_all(own, series))
    return _ROWS_OF_EVENT[0]


def _rows(event) -> dict:
    """The event's plugin rows by name: its own (event plugins) and its series' (series
    plugins); computed once per request and event (``forget`` drops it)."""
    from portal.db import db

    merged = g.setdefault("_event_plugins_merged", {})
    if event.id in merged:
        return merged[event.id]
    cache = g.setdefault("_event_plugins", {})
    series_cache = g.setdefault("_series_plugins", {})
    if event.id not in cache and event.series_id not in series_cache:
        # Display-only: plain rows (what the plugin host reads of them), in one statement.
        own: dict = {}
        of_series: dict = {}
        result = db.session.execute(
            _rows_statement(), {"event_id": event.id, "series_id": event.series_id}
        )
        for row in result:
            (own if row.scope == EVENT else of_series)[row.plugin] = row
        cache[event.id] = own
        series_cache[event.series_id] = of_series
    elif event.id not in cache:
        from portal.events.models import EventPlugin

        rows = db.session.scalars(sa.select(EventPlugin).where(EventPlugin.event_id == event.id))
        cache[event.id] = {row.plugin: row for row in rows}
    series = {k: v for k, v in _series_rows(event.series_id).items() if scope(k) == SERIES}
    own = {k: v for k, v in cache[event.id].items() if scope(k) == EVENT}
    merged[event.id] = {**own, **series}
    return merged[event.id]


def preload(events) -> None:
    """Load the plugin rows of many events (and their series) in two queries (pages calling
    hooks per list row)."""
    from portal.db import db
    from portal.events.models import EventPlugin, SeriesPlugin

    cache = g.setdefault("_event_plugins", {})
    ids = {e.id for e in events if e.id not in cache}
    if ids:
        for event_id in ids:
            cache[event_id] = {}
        rows = db.session.scalars(sa.select(EventPlugin).where(EventPlugin.event_id.in_(ids)))
        for row in rows:
            cache[row.event_id][row.plugin] = row
    series_cache = g.setdefault("_series_plugins", {})
    series_ids = {e.series_id for e in events if e.series_id not in series_cache}
    if series_ids:
        for series_id in series_ids:
            series_cache[series_id] = {}
        rows = db.session.scalars(
            sa.select(SeriesPlugin).where(SeriesPlugin.series_id.in_(series_ids))
        )
        for row in rows:
            series_cache[row.series_id][row.plugin] = row


def forget(event) -> None:
    """Drop the per-request cache after enabling or disabling a plugin (the event's own and
    its series')."""
    g.setdefault("_event_plugins", {}).pop(event.id, None)
    g.setdefault("_event_hooks", {}).pop(event.id, None)
    g.setdefault("_series_plugins", {}).pop(event.series_id, None)
    g.pop("_event_plugins_merged", None)


def forget_series(series) -> None:
    """Drop the per-request cache of a series and of its events' hooks."""
    g.setdefault("_series_plugins", {}).pop(series.id, None)
    g.pop("_event_hooks", None)
    g.pop("_event_plugins_merged", None)


def enabled_names(event) -> set[str]:
    names = installed()
    return {name for name, row in _rows(event).items() if row.enabled and name in names}


def is_enabled(event, name: str) -> bool:
    return name in enabled_names(event)


def require_enabled(event, name: str) -> None:
    """A disabled plugin's pages answer 404 for that event."""
    if not is_enabled(event, name):
        abort(404)


def organiser_event(slug: str, name: str):
    """For a plugin's organiser pages: the event with this slug, of a series the current user
    organises, with the plugin on; else 404."""
    from portal.events.access import organised_event_or_404

    event = organised_event_or_404(slug)
    require_enabled(event, name)
    return event


def _with_defaults(name: str, row) -> dict:
    plugin = installed().get(name)
    values = dict(getattr(plugin, "default_settings", {}) or {})
    if row is not None and row.settings:
        values.update(row.settings)
    return values


def settings(event, name: str) -> dict:
    """The plugin's settings for the event (for a series plugin: its series' settings):
    stored values over its declared defaults."""
    return _with_defaults(name, _rows(event).get(name))


def series_enabled(series, name: str) -> bool:
    """Whether a series plugin is on for the series."""
    row = _series_rows(series.id).get(name)
    return bool(row is not None and row.enabled and name in installed())


def require_series_enabled(series, name: str) -> None:
    """A series plugin's pages answer 404 for a series that does not have it on."""
    if not series_enabled(series, name):
        abort(404)


def series_settings(series, name: str) -> dict:
    """A series plugin's settings for the series: stored values over its declared defaults."""
    return _with_defaults(name, _series_rows(series.id).get(name))


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


def implementations(hook_name: str, event) -> list[tuple[str, object]] | None:
    """The implementations of an event-scoped hook that ``event_hooks(event).<hook>`` would
    call, one by one and in the same order: ``(plugin name, caller)`` where ``caller(**kwargs)``
    calls that plugin's implementation alone (the event page keeps each plugin's section on
    its own). None when a hook wrapper takes part (then call them together)."""
    enabled = enabled_names(event)
    names = installed()
    out = []
    for impl in reversed(getattr(manager().hook, hook_name).get_hookimpls()):
        if impl.hookwrapper or impl.wrapper:
            return None
        if impl.plugin_name in names and impl.plugin_name not in enabled:
            continue
        out.append((impl.plugin_name, _one_implementation(impl)))
    return out


def _one_implementation(impl):
    def call(**kwargs):
        args = [kwargs[name] for name in impl.argnames]
        extra = {k: kwargs[k] for k in impl.kwargnames if k in kwargs}
        return impl.function(*args, **extra)

    return call


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


class ScopeError(ValueError):
    """An event plugin switched for a series (it belongs to single events)."""


def _target(name: str, where):
    """(model, owner column, owner, audit subject) where the plugin's switch is kept:
    the series for a series plugin (also when given one of its events), else the event."""
    from portal.events.models import Event, EventPlugin, SeriesPlugin

    if name not in installed():
        raise KeyError(name)
    if scope(name) == SERIES:
        series = where.series if isinstance(where, Event) else where
        return SeriesPlugin, "series_id", series, "series"
    if not isinstance(where, Event):
        raise ScopeError(name)
    return EventPlugin, "event_id", where, "event"


def _row(session, name: str, where):
    model, column, owner, subject = _target(name, where)
    row = session.scalar(
        sa.select(model).where(getattr(model, column) == owner.id, model.plugin == name)
    )
    if row is None:
        row = model(**{column: owner.id}, plugin=name, enabled=False, settings={})
        session.add(row)
    return row, owner, subject


def _forget(owner, subject: str) -> None:
    if subject == "series":
        forget_series(owner)
    else:
        forget(owner)


def set_enabled(session, where, name: str, enabled: bool, actor):
    """Switch a plugin on or off: an event plugin for an event, a series plugin for a series
    (given the series or one of its events). KeyError for an unknown plugin, ScopeError for
    an event plugin given a series; audited on the event or series."""
    from portal import audit

    row, owner, subject = _row(session, name, where)
    if row.id is not None and row.enabled == enabled:
        return row
    row.enabled = enabled
    session.flush()
    action = "plugin_enabled" if enabled else "plugin_disabled"
    audit.record(session, actor, subject, owner.id, action, plugin=name)
    _forget(owner, subject)
    return row


def save_settings(session, where, name: str, values: dict, actor):
    """Store a plugin's settings (for its event or series, as ``set_enabled``): only the keys
    it declares in ``default_settings`` (others are dropped), over what is stored; audited."""
    from portal import audit

    row, owner, subject = _row(session, name, where)
    module = installed()[name]
    allowed = set((getattr(module, "default_settings", {}) or {}).keys())
    clean = {k: v for k, v in values.items() if k in allowed}
    row.settings = {**(row.settings or {}), **clean}
    session.flush()
    audit.record(session, actor, subject, owner.id, "plugin_settings", plugin=name, settings=clean)
    _forget(owner, subject)
    return row


def enabled_events(name: str) -> sa.Select:
    """A SELECT of the ids of the events that have the plugin on (for a plugin's queries):
    for a series plugin, every event of the series that have it on."""
    from portal.events.models import Event, EventPlugin, SeriesPlugin

    if scope(name) == SERIES:
        on = sa.select(SeriesPlugin.series_id).where(
            SeriesPlugin.plugin == name, SeriesPlugin.enabled.is_(True)
        )
        return sa.select(Event.id).where(Event.series_id.in_(on))
    return sa.select(EventPlugin.event_id).where(
        EventPlugin.plugin == name, EventPlugin.enabled.is_(True)
    )


def enabled_series(name: str) -> sa.Select:
    """A SELECT of the ids of the series that have a series plugin on."""
    from portal.events.models import SeriesPlugin

    return sa.select(SeriesPlugin.series_id).where(
        SeriesPlugin.plugin == name, SeriesPlugin.enabled.is_(True)
    )
