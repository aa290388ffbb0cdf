"""people: one folded search key per person (kana, romaji, full/half width alike)

Revision ID: i15_0003
Revises: i15_0002
Create Date: 2026-12-05 10:00:00

On PostgreSQL the key also gets a trigram index (pg_trgm, GIN) for LIKE '%…%'.
"""

from alembic import op
import sqlalchemy as sa


revision = "i15_0003"
down_revision = "i15_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("search_key", sa.String(length=500), nullable=False, server_default="")
        )

    # Fill the keys of the people already there.
    from types import SimpleNamespace

    from portal.accounts.search import search_key

    bind = op.get_bind()
    people = sa.table(
        "people",
        sa.column("id", sa.Integer),
        sa.column("family_name", sa.String),
        sa.column("given_name", sa.String),
        sa.column("family_name_kana", sa.String),
        sa.column("given_name_kana", sa.String),
        sa.column("romanized_name", sa.String),
        sa.column("email", sa.String),
        sa.column("search_key", sa.String),
    )
    rows = bind.execute(
        sa.select(
            people.c.id,
            people.c.family_name,
            people.c.given_name,
            people.c.family_name_kana,
            people.c.given_name_kana,
            people.c.romanized_name,
            people.c.email,
        )
    ).all()
    for row in rows:
        key = search_key(SimpleNamespace(**row._mapping))
        bind.execute(people.update().where(people.c.id == row.id).values(search_key=key))

    if bind.dialect.name == "postgresql":  # PostgreSQL only: the trigram operator class
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        # The extension may live in another schema than the tables (it is per database).
        schema = bind.scalar(
            sa.text(
                "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n "
                "ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm'"
            )
        )
        op.create_index(
            "ix_people_search_key",
            "people",
            ["search_key"],
            postgresql_using="gin",
            postgresql_ops={"search_key": f'"{schema}".gin_trgm_ops'},
        )
    else:
        with op.batch_alter_table("people", schema=None) as batch_op:
            batch_op.create_index("ix_people_search_key", ["search_key"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.drop_index("ix_people_search_key")
        batch_op.drop_column("search_key")
