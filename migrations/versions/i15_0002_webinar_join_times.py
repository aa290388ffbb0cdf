"""webinar attendance: first join and last leave from the report

Revision ID: i15_0002
Revises: i15_0001
Create Date: 2026-12-05 10:00:00
"""

from alembic import op
import sqlalchemy as sa

from portal.db import UTCDateTime


revision = "i15_0002"
down_revision = "i15_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("webinar_attendance", schema=None) as batch_op:
        batch_op.add_column(sa.Column("first_joined_at", UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("last_left_at", UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("webinar_attendance", schema=None) as batch_op:
        batch_op.drop_column("last_left_at")
        batch_op.drop_column("first_joined_at")
