"""payments core: receipt addressees; documents numbered per kind and year (R-2026-000123)

Revision ID: i11_0001
Revises: i16_0001
Create Date: 2026-12-05 10:00:00

Documents issued before this revision are renumbered per kind and calendar year of issue
(Japan time), oldest first, since their old numbers were per series (R-<series>-000001) and
would collide in the one sequence. Run it before any document goes to a customer.
"""

from alembic import op
import sqlalchemy as sa


revision = "i11_0001"
down_revision = "i16_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "payment_receipt_addressees",
        sa.Column("registration_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["registration_id"],
            ["registrations.id"],
            name=op.f("fk_payment_receipt_addressees_registration_id_registrations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("registration_id", name=op.f("pk_payment_receipt_addressees")),
    )
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("year", sa.Integer(), nullable=False, server_default="2026"))
    documents = sa.table(
        "documents",
        sa.column("id", sa.Integer),
        sa.column("kind", sa.String),
        sa.column("year", sa.Integer),
        sa.column("number", sa.Integer),
        sa.column("issued_at", sa.DateTime),
    )
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(documents.c.id, documents.c.kind, documents.c.issued_at).order_by(
            documents.c.issued_at, documents.c.id
        )
    ).all()
    from datetime import timedelta

    counters: dict = {}
    for row in rows:
        year = (row.issued_at + timedelta(hours=9)).year  # stored UTC, numbered in Japan time
        counters[(row.kind, year)] = counters.get((row.kind, year), 0) + 1
        # Negative first, so that the old unique constraint never sees a duplicate.
        bind.execute(
            documents.update()
            .where(documents.c.id == row.id)
            .values(year=year, number=-counters[(row.kind, year)])
        )
    bind.execute(documents.update().values(number=-documents.c.number))
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.drop_constraint("uq_documents_series_id_kind_number", type_="unique")
        batch_op.create_unique_constraint(
            batch_op.f("uq_documents_kind_year_number"), ["kind", "year", "number"]
        )
        batch_op.alter_column("year", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.drop_constraint("uq_documents_kind_year_number", type_="unique")
        batch_op.drop_column("year")
        batch_op.create_unique_constraint(
            batch_op.f("uq_documents_series_id_kind_number"), ["series_id", "kind", "number"]
        )
    op.drop_table("payment_receipt_addressees")
