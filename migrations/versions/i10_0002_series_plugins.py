"""series plugins: membership, archive and attendance are switched on for a whole series
(series_plugins); each series gets the plugins some of its events had on, with the settings
of the latest such event (how the plugins read them until now)

Revision ID: i10_0002
Revises: i14b_0001
Create Date: 2026-12-05 13:10:00
"""

import json
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import portal.db

revision = "i10_0002"
down_revision = "i14b_0001"
branch_labels = None
depends_on = None

SERIES_PLUGINS = ("membership", "archive", "attendance")


def upgrade() -> None:
    op.create_table(
        "series_plugins",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("series_id", sa.Integer(), nullable=False),
        sa.Column("plugin", sa.String(length=60), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("updated_at", portal.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["series_id"], ["series.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("series_id", "plugin"),
    )
    conn = op.get_bind()
    rows = conn.execute(
        sa.text(
            "SELECT e.series_id, p.plugin, p.settings FROM event_plugins p "
            "JOIN events e ON e.id = p.event_id "
            "WHERE p.enabled = :on AND p.plugin IN ('membership', 'archive', 'attendance') "
            "ORDER BY e.starts_at, e.id"
        ),
        {"on": True},
    ).all()
    latest: dict[tuple[int, str], dict] = {}
    for series_id, plugin, settings in rows:  # oldest first: the latest event's settings win
        if isinstance(settings, str):
            settings = json.loads(settings or "{}")
        latest[(series_id, plugin)] = settings or {}
    table = sa.table(
        "series_plugins",
        sa.column("series_id", sa.Integer),
        sa.column("plugin", sa.String),
        sa.column("enabled", sa.Boolean),
        sa.column("settings", sa.JSON),
        sa.column("updated_at", portal.db.UTCDateTime(timezone=True)),
    )
    now = datetime.now(UTC)
    if latest:
        op.bulk_insert(
            table,
            [
                {
                    "series_id": series_id,
                    "plugin": plugin,
                    "enabled": True,
                    "settings": settings,
                    "updated_at": now,
                }
                for (series_id, plugin), settings in sorted(latest.items())
            ],
        )


def downgrade() -> None:
    op.drop_table("series_plugins")
