"""institutions with names in both languages and aliases; affiliations point to them;
review assignments keep a conflict of interest found later; talks know if they are posters

Revision ID: h18s_0002
Revises: h18s_0001
Create Date: 2026-12-05 13:00:00
"""

import sqlalchemy as sa
from alembic import op

from portal.i18n import Bilingual

revision = "h18s_0002"
down_revision = "h18s_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "institutions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", Bilingual(), nullable=False),
        sa.Column("ror_id", sa.String(length=9), nullable=True),
        sa.Column("merged_into_id", sa.Integer(), nullable=True),
        sa.Column("merged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["merged_into_id"],
            ["institutions.id"],
            name=op.f("fk_institutions_merged_into_id_institutions"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_institutions")),
        sa.UniqueConstraint("ror_id", name=op.f("uq_institutions_ror_id")),
    )
    op.create_index(
        "ix_institutions_merged_into_id", "institutions", ["merged_into_id"], unique=False
    )
    op.create_table(
        "institution_names",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("institution_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.String(length=200), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("alias", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["institution_id"],
            ["institutions.id"],
            name=op.f("fk_institution_names_institution_id_institutions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_institution_names")),
        sa.UniqueConstraint(
            "institution_id", "key", name=op.f("uq_institution_names_institution_id_key")
        ),
    )
    op.create_index("ix_institution_names_institution_id", "institution_names", ["institution_id"])
    op.create_index("ix_institution_names_key", "institution_names", ["key"])
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.add_column(sa.Column("institution_id", sa.Integer(), nullable=True))
        batch_op.create_index("ix_people_institution_id", ["institution_id"], unique=False)
        batch_op.create_foreign_key(
            "fk_people_institution_id_institutions",
            "institutions",
            ["institution_id"],
            ["id"],
            ondelete="SET NULL",
        )
    with op.batch_alter_table("speaker_affiliations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("institution_id", sa.Integer(), nullable=True))
        batch_op.create_index(
            "ix_speaker_affiliations_institution_id", ["institution_id"], unique=False
        )
        batch_op.create_foreign_key(
            "fk_speaker_affiliations_institution_id_institutions",
            "institutions",
            ["institution_id"],
            ["id"],
            ondelete="SET NULL",
        )
    with op.batch_alter_table("abstract_review_assignments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("conflict", sa.String(length=20), nullable=True))
        batch_op.add_column(
            sa.Column("conflict_found_at", sa.DateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table("talks", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "presentation_type", sa.String(length=20), nullable=False, server_default="oral"
            )
        )
    # Talks made from abstracts accepted as posters (when the abstracts plugin is installed).
    bind = op.get_bind()
    if sa.inspect(bind).has_table("abstracts"):
        op.execute(
            "UPDATE talks SET presentation_type = 'poster' WHERE id IN "
            "(SELECT talk_id FROM abstracts WHERE state = 'accepted_poster' "
            "AND talk_id IS NOT NULL)"
        )


def downgrade() -> None:
    with op.batch_alter_table("talks", schema=None) as batch_op:
        batch_op.drop_column("presentation_type")
    with op.batch_alter_table("abstract_review_assignments", schema=None) as batch_op:
        batch_op.drop_column("conflict_found_at")
        batch_op.drop_column("conflict")
    with op.batch_alter_table("speaker_affiliations", schema=None) as batch_op:
        batch_op.drop_constraint(
            "fk_speaker_affiliations_institution_id_institutions", type_="foreignkey"
        )
        batch_op.drop_index("ix_speaker_affiliations_institution_id")
        batch_op.drop_column("institution_id")
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.drop_constraint("fk_people_institution_id_institutions", type_="foreignkey")
        batch_op.drop_index("ix_people_institution_id")
        batch_op.drop_column("institution_id")
    op.drop_table("institution_names")
    op.drop_table("institutions")
