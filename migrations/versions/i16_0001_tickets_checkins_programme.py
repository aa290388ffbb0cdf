"""tickets, check-ins and the programme (sessions, breaks, talks placed in sessions)

Revision ID: i16_0001
Revises: i15_0003
Create Date: 2026-12-05 10:00:00
"""

import secrets

import sqlalchemy as sa
from alembic import op

import portal.i18n

revision = "i16_0001"
down_revision = "i15_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tickets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("registration_id", sa.Integer(), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["registration_id"],
            ["registrations.id"],
            name=op.f("fk_tickets_registration_id_registrations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tickets")),
        sa.UniqueConstraint("token", name=op.f("uq_tickets_token")),
    )
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_tickets_registration_id"), ["registration_id"], unique=False
        )
    op.create_table(
        "checkins",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("registration_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("point", sa.String(length=20), nullable=False),
        sa.Column("checked_in_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("checked_in_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["checked_in_by_id"],
            ["users.id"],
            name=op.f("fk_checkins_checked_in_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["events.id"],
            name=op.f("fk_checkins_event_id_events"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["registration_id"],
            ["registrations.id"],
            name=op.f("fk_checkins_registration_id_registrations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checkins")),
        sa.UniqueConstraint(
            "registration_id", "point", name=op.f("uq_checkins_registration_id_point")
        ),
    )
    with op.batch_alter_table("checkins", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_checkins_event_id"), ["event_id"], unique=False)
    op.create_table(
        "programme_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "session",
                "break",
                "reception",
                "other",
                name="itemkind",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("title", portal.i18n.Bilingual(), nullable=False),
        sa.Column("room", sa.String(length=100), nullable=False),
        sa.Column("chair_id", sa.Integer(), nullable=True),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["chair_id"],
            ["people.id"],
            name=op.f("fk_programme_items_chair_id_people"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["events.id"],
            name=op.f("fk_programme_items_event_id_events"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_programme_items")),
    )
    with op.batch_alter_table("programme_items", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_programme_items_chair_id"), ["chair_id"], unique=False)
        batch_op.create_index(
            "ix_programme_items_event_start", ["event_id", "starts_at"], unique=False
        )
    op.create_table(
        "programme_talk_placements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("talk_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["programme_items.id"],
            name=op.f("fk_programme_talk_placements_item_id_programme_items"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["talk_id"],
            ["talks.id"],
            name=op.f("fk_programme_talk_placements_talk_id_talks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_programme_talk_placements")),
        sa.UniqueConstraint("talk_id", name=op.f("uq_programme_talk_placements_talk_id")),
    )
    with op.batch_alter_table("programme_talk_placements", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_programme_talk_placements_item_id"), ["item_id"], unique=False
        )

    # Every confirmed registration has a ticket: issue one for those that exist already.
    bind = op.get_bind()
    ids = bind.execute(
        sa.text("SELECT id FROM registrations WHERE state IN ('confirmed', 'attended')")
    ).scalars()
    tickets = sa.table(
        "tickets",
        sa.column("registration_id", sa.Integer),
        sa.column("token", sa.String),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    if bind.dialect.name == "sqlite":
        now = now.replace(tzinfo=None)
    rows = [
        {"registration_id": i, "token": secrets.token_urlsafe(24), "created_at": now} for i in ids
    ]
    if rows:
        op.bulk_insert(tickets, rows)


def downgrade() -> None:
    with op.batch_alter_table("programme_talk_placements", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_programme_talk_placements_item_id"))
    op.drop_table("programme_talk_placements")
    with op.batch_alter_table("programme_items", schema=None) as batch_op:
        batch_op.drop_index("ix_programme_items_event_start")
        batch_op.drop_index(batch_op.f("ix_programme_items_chair_id"))
    op.drop_table("programme_items")
    with op.batch_alter_table("checkins", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_checkins_event_id"))
    op.drop_table("checkins")
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tickets_registration_id"))
    op.drop_table("tickets")
