"""Outbox attachments rendered when the mail is sent (generator name and arguments).

Revision ID: i14b_0001
Revises: i10_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "i14b_0001"
down_revision = "i10_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox_attachments") as batch:
        batch.add_column(sa.Column("generator", sa.String(50), nullable=False, server_default=""))
        batch.add_column(
            sa.Column("generator_args", sa.JSON(), nullable=False, server_default="{}")
        )
        batch.alter_column("content", existing_type=sa.LargeBinary(), nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM outbox_attachments WHERE content IS NULL")
    with op.batch_alter_table("outbox_attachments") as batch:
        batch.alter_column("content", existing_type=sa.LargeBinary(), nullable=False)
        batch.drop_column("generator_args")
        batch.drop_column("generator")
