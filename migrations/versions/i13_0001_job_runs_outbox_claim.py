"""scheduled job locks (job_runs); outbox claim lease (outbox_emails.claimed_until)

Revision ID: i13_0001
Revises: b1a2c3d4e5f6
Create Date: 2026-12-05 09:45:00
"""

from alembic import op
import sqlalchemy as sa

from portal.db import UTCDateTime


revision = "i13_0001"
down_revision = "b1a2c3d4e5f6"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_runs",
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("locked_until", UTCDateTime(), nullable=True),
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.Column("last_started_at", UTCDateTime(), nullable=True),
        sa.Column("last_finished_at", UTCDateTime(), nullable=True),
        sa.Column("last_outcome", sa.Text(), nullable=False),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_job_runs")),
    )
    with op.batch_alter_table("outbox_emails", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_until", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox_emails", schema=None) as batch_op:
        batch_op.drop_column("claimed_until")
    op.drop_table("job_runs")
