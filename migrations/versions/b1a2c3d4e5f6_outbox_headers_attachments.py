"""outbox: stable Message-ID, Reply-To, extra headers, attachments

Revision ID: b1a2c3d4e5f6
Revises: 97fcc6645910
Create Date: 2026-12-05 09:40:00
"""

from alembic import op
import sqlalchemy as sa


revision = "b1a2c3d4e5f6"
down_revision = "97fcc6645910"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox_emails", schema=None) as batch_op:
        batch_op.add_column(sa.Column("message_id", sa.String(length=300), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("reply_to", sa.String(length=254), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("headers", sa.JSON(), nullable=False, server_default="{}"))
    op.create_table(
        "outbox_attachments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email_id", sa.Integer(), nullable=False),
        sa.Column("filename", sa.String(length=200), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["email_id"], ["outbox_emails.id"], name=op.f("fk_outbox_attachments_email_id_outbox_emails"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_attachments")),
    )
    with op.batch_alter_table("outbox_attachments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_outbox_attachments_email_id"), ["email_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("outbox_attachments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_attachments_email_id"))
    op.drop_table("outbox_attachments")
    with op.batch_alter_table("outbox_emails", schema=None) as batch_op:
        batch_op.drop_column("headers")
        batch_op.drop_column("reply_to")
        batch_op.drop_column("message_id")
