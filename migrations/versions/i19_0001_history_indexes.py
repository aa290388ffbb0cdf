"""history at scale: users.email_domain (indexed), partial indexes for unsent mails and pending payments

Revision ID: i19_0001
Revises: i13_0001
Create Date: 2026-12-05 10:00:00
"""

from alembic import op
import sqlalchemy as sa


revision = "i19_0001"
down_revision = "i13_0001"
branch_labels = None
depends_on = None

UNSENT = "sent_at IS NULL AND failed_at IS NULL"
PENDING = "state = 'pending'"


def email_domain(email):
    _, at, domain = (email or "").strip().lower().rpartition("@")
    domain = domain.lstrip("@").rstrip(".") if at else ""
    try:
        return domain.encode("idna").decode("ascii") if domain else ""
    except UnicodeError:
        return domain


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("email_domain", sa.String(length=253), nullable=False, server_default="")
        )
        batch_op.create_index(batch_op.f("ix_users_email_domain"), ["email_domain"], unique=False)
    # Fill it as portal.accounts.models.email_domain does (lower case, IDNA), in batches.
    conn = op.get_bind()
    users = sa.table("users", sa.column("id", sa.Integer), sa.column("email", sa.String))
    users_domain = sa.table(
        "users", sa.column("id", sa.Integer), sa.column("email_domain", sa.String)
    )
    update = (
        sa.update(users_domain)
        .where(users_domain.c.id == sa.bindparam("user_id"))
        .values(email_domain=sa.bindparam("domain"))
    )
    last = 0
    while True:
        rows = conn.execute(
            sa.select(users.c.id, users.c.email)
            .where(users.c.id > last)
            .order_by(users.c.id)
            .limit(5000)
        ).all()
        if not rows:
            break
        conn.execute(update, [{"user_id": i, "domain": email_domain(e)} for i, e in rows])
        last = rows[-1][0]
    op.create_index(
        "ix_outbox_emails_unsent",
        "outbox_emails",
        ["sent_at", "failed_at", "next_attempt_at"],
        unique=False,
        sqlite_where=sa.text(UNSENT),
        postgresql_where=sa.text(UNSENT),
    )
    op.create_index(
        "ix_payments_pending",
        "payments",
        ["id"],
        unique=False,
        sqlite_where=sa.text(PENDING),
        postgresql_where=sa.text(PENDING),
    )


def downgrade() -> None:
    op.drop_index("ix_payments_pending", table_name="payments")
    op.drop_index("ix_outbox_emails_unsent", table_name="outbox_emails")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_users_email_domain"))
        batch_op.drop_column("email_domain")
