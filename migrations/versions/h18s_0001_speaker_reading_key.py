"""speaker_profiles: reading_key (the name as it sounds, from any script); keys recomputed

Revision ID: h18s_0001
Revises: h17_0001
Create Date: 2026-12-05 12:45:00

The directory's search key now carries the romaji reading too, so every profile's keys are
computed again here (``portal speakers reindex`` does the same at any time).
"""

import sqlalchemy as sa
from alembic import op

revision = "h18s_0001"
down_revision = "h17_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("speaker_profiles", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("reading_key", sa.String(length=200), nullable=False, server_default="")
        )
        batch_op.create_index("ix_speaker_profiles_reading_key", ["reading_key"], unique=False)

    from types import SimpleNamespace

    from portal.i18n import BilingualText
    from portal.speakers.search import apply_keys

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
        sa.column("affiliation", sa.String),
    )
    key_names = (
        "search_key",
        "public_search_key",
        "sort_kana",
        "sort_roman",
        "name_key",
        "kana_key",
        "roman_key",
        "email_key",
        "reading_key",
    )
    profiles = sa.table(
        "speaker_profiles",
        sa.column("person_id", sa.Integer),
        sa.column("publish_consent", sa.Boolean),
        *(sa.column(name, sa.String) for name in key_names),
    )
    affiliations = sa.table(
        "speaker_affiliations",
        sa.column("person_id", sa.Integer),
        sa.column("organisation", sa.JSON),
    )
    organisations: dict[int, list] = {}
    for person_id, organisation in bind.execute(
        sa.select(affiliations.c.person_id, affiliations.c.organisation)
    ):
        text = BilingualText.of(organisation)
        organisations.setdefault(person_id, []).append(SimpleNamespace(organisation=text))
    rows = bind.execute(
        sa.select(people, profiles.c.publish_consent).join(
            profiles, profiles.c.person_id == people.c.id
        )
    ).all()
    for row in rows:
        data = dict(row._mapping)
        profile = SimpleNamespace(
            publish_consent=bool(data.pop("publish_consent")), **dict.fromkeys(key_names)
        )
        apply_keys(profile, SimpleNamespace(**data), organisations.get(row.id, []))
        bind.execute(
            profiles.update()
            .where(profiles.c.person_id == row.id)
            .values({name: getattr(profile, name) for name in key_names})
        )


def downgrade() -> None:
    with op.batch_alter_table("speaker_profiles", schema=None) as batch_op:
        batch_op.drop_index("ix_speaker_profiles_reading_key")
        batch_op.drop_column("reading_key")
