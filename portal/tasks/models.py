"""One row per scheduled job: a lock (so runs never overlap) and what the last run did."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from portal.db import Base, UTCDateTime


class JobRun(Base):
    __tablename__ = "job_runs"

    name: Mapped[str] = mapped_column(sa.String(80), primary_key=True)
    # Set while a run holds the lock; a run that died leaves it to expire.
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    holder: Mapped[str] = mapped_column(sa.String(200), default="")
    last_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_outcome: Mapped[str] = mapped_column(sa.Text, default="")
    runs: Mapped[int] = mapped_column(default=0)
    failures: Mapped[int] = mapped_column(default=0)
