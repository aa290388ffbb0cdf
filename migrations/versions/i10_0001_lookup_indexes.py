"""indexes on the foreign keys that are looked up: archive_access_log.talk_id,
user_roles.series_id, payments.receipt_id, documents.replaces_id; abstract deadlines stored as
UTC instants (the local-time strings in the abstracts plugin's settings are converted with the
event's zone)

Revision ID: i10_0001
Revises: i11_0001
Create Date: 2026-12-05 11:00:00
"""

import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op

revision = "i10_0001"
down_revision = "i11_0001"
branch_labels = None
depends_on = None

INDEXES = (
    ("archive_access_log", "talk_id"),
    ("user_roles", "series_id"),
    ("payments", "receipt_id"),
    ("documents", "replaces_id"),
)


DEADLINES = ("opens_at", "closes_at")
EVENT_PLUGINS = sa.table(
    "event_plugins", sa.column("id", sa.Integer), sa.column("settings", sa.JSON)
)


def _convert(to_utc: bool) -> None:
    conn = op.get_bind()
    rows = conn.execute(
        sa.text(
            "SELECT event_plugins.id, event_plugins.settings, events.timezone FROM event_plugins"
            " JOIN events ON events.id = event_plugins.event_id"
            " WHERE event_plugins.plugin = 'abstracts'"
        )
    ).all()
    for row_id, raw, zone in rows:
        settings = json.loads(raw) if isinstance(raw, str) else dict(raw or {})
        changed = False
        for key in DEADLINES:
            text = settings.get(key)
            if not text:
                continue
            try:
                value = datetime.fromisoformat(str(text))
            except ValueError:
                continue
            if to_utc and value.tzinfo is None:
                value = value.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)
                settings[key] = value.isoformat()
                changed = True
            elif not to_utc and value.tzinfo is not None:
                local = value.astimezone(ZoneInfo(zone)).replace(tzinfo=None)
                settings[key] = local.strftime("%Y-%m-%dT%H:%M")
                changed = True
        if changed:
            conn.execute(
                sa.update(EVENT_PLUGINS)
                .where(EVENT_PLUGINS.c.id == row_id)
                .values(settings=settings)
            )


def upgrade() -> None:
    for table, column in INDEXES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(batch_op.f(f"ix_{table}_{column}"), [column], unique=False)
    _convert(to_utc=True)


def downgrade() -> None:
    _convert(to_utc=False)
    for table, column in reversed(INDEXES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(batch_op.f(f"ix_{table}_{column}"))
