"""Organiser state changes: plugins per event."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal import audit, plugins
from portal.events.models import Event, EventPlugin


def set_plugin_enabled(
    session: Session, event: Event, name: str, enabled: bool, actor
) -> EventPlugin:
    """Switch a plugin on or off for an event (KeyError for an unknown plugin)."""
    if name not in plugins.installed():
        raise KeyError(name)
    row = session.scalar(
        sa.select(EventPlugin).where(EventPlugin.event_id == event.id, EventPlugin.plugin == name)
    )
    if row is None:
        row = EventPlugin(event_id=event.id, plugin=name, enabled=enabled, settings={})
        session.add(row)
    elif row.enabled == enabled:
        return row
    row.enabled = enabled
    session.flush()
    audit.record(
        session,
        actor,
        "event",
        event.id,
        "plugin_enabled" if enabled else "plugin_disabled",
        plugin=name,
    )
    plugins.forget(event)
    return row


def update_plugin_settings(
    session: Session, event: Event, name: str, values: dict, actor
) -> EventPlugin:
    """Store a plugin's settings for an event (only keys the plugin declares)."""
    module = plugins.installed().get(name)
    if module is None:
        raise KeyError(name)
    allowed = set((getattr(module, "default_settings", {}) or {}).keys())
    clean = {k: v for k, v in values.items() if k in allowed}
    row = session.scalar(
        sa.select(EventPlugin).where(EventPlugin.event_id == event.id, EventPlugin.plugin == name)
    )
    if row is None:
        row = EventPlugin(event_id=event.id, plugin=name, enabled=False, settings={})
        session.add(row)
    row.settings = {**(row.settings or {}), **clean}
    session.flush()
    audit.record(session, actor, "event", event.id, "plugin_settings", plugin=name, settings=clean)
    plugins.forget(event)
    return row
