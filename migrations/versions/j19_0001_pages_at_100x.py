"""pages at 100x: people by reading (the archive's speakers walk it to their page), archive items by uploader

Revision ID: j19_0001
Revises: h18s_0002
Create Date: 2026-12-05 18:50:00
"""

from alembic import op


revision = "j19_0001"
down_revision = "h18s_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.create_index(
            "ix_people_reading",
            ["family_name_kana", "given_name_kana", "romanized_name", "id"],
            unique=False,
        )
    with op.batch_alter_table("archive_items", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_archive_items_uploaded_by_id"), ["uploaded_by_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("archive_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_archive_items_uploaded_by_id"))
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.drop_index("ix_people_reading")
