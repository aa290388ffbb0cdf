"""attendance: the mailing list is its own column; registered may be unknown

Revision ID: i15_0001
Revises: i19_0001
Create Date: 2026-12-05 10:00:00
"""

from alembic import op
import sqlalchemy as sa


revision = "i15_0001"
down_revision = "i19_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("meeting_attendance", schema=None) as batch_op:
        batch_op.add_column(sa.Column("mailing_list", sa.Integer(), nullable=True))
        batch_op.alter_column("registered", existing_type=sa.Integer(), nullable=True)


def downgrade() -> None:
    op.execute("UPDATE meeting_attendance SET registered = 0 WHERE registered IS NULL")
    with op.batch_alter_table("meeting_attendance", schema=None) as batch_op:
        batch_op.alter_column("registered", existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column("mailing_list")
