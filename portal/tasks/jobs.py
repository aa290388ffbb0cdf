"""Scheduled jobs: the core's declared once in ``JOBS``, the plugins' through the
``scheduled_jobs`` hook (``jobs()`` has both), run under a lock held in the database.

A job is a function ``fn(session) -> str`` (a one-line summary) that commits its own work.
``run_job(name)`` claims the job's row in ``job_runs`` with one atomic UPDATE (on PostgreSQL
and SQLite alike): the claim fails while another run holds the lock (``locked_until`` in the
future) and, for scheduled runs, when the job already started less than ``min_gap`` ago, so a
scheduler started on two machines by mistake still runs each job once per period. A failing
job records its error and raises, so the worker (and Sentry, when enabled) report it.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from portal.db import utcnow
from portal.tasks.models import JobRun


@dataclass(frozen=True)
class Job:
    name: str
    fn: Callable[[Session], str]
    every: timedelta  # the beat schedule's interval
    timeout: timedelta  # how long the lock is held at most (a crashed run frees it then)
    description: str

    @property
    def min_gap(self) -> timedelta:
        """Two scheduled runs closer than this are one run twice: the second is skipped."""
        return self.every / 2


class JobSkipped(Exception):
    """Another run holds the lock, or the job ran in this period already."""


# -- the jobs ---------------------------------------------------------------------------------


def send_outbox(session: Session) -> str:
    from portal.mail.services import OutboxDeliveryError, send_due

    sent, failed = send_due(session, limit=500)
    summary = f"sent {sent}, postponed {failed}"
    if failed:
        raise OutboxDeliveryError(summary)
    return summary


def expire_unpaid(session: Session) -> str:
    from portal.registration.services import expire_unpaid as expire

    expired = expire(session)
    session.commit()
    return f"expired {len(expired)}"


def reconcile_payments(session: Session) -> str:
    from portal.payments.reconcile import reconcile

    counts = reconcile(session)
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "nothing to do"


def send_announcements(session: Session) -> str:
    from portal.announcements.sending import run

    return run(session)


MINUTE = timedelta(minutes=1)

JOBS: dict[str, Job] = {
    job.name: job
    for job in (
        Job("send-outbox", send_outbox, timedelta(seconds=30), 10 * MINUTE, "deliver due email"),
        Job(
            "send-announcements",
            send_announcements,
            timedelta(seconds=30),
            10 * MINUTE,
            "create and send the deliveries of announcements whose time has come",
        ),
        Job(
            "expire-unpaid",
            expire_unpaid,
            5 * MINUTE,
            10 * MINUTE,
            "cancel registrations whose payment deadline passed; promote the waiting list",
        ),
        Job(
            "reconcile-payments",
            reconcile_payments,
            15 * MINUTE,
            15 * MINUTE,
            "settle card payments whose webhook never came",
        ),
    )
}


def jobs() -> dict[str, Job]:
    """Every scheduled job by name: the core's (``JOBS``) and the plugins' (hook
    ``scheduled_jobs``, e.g. the webinar's reminders and membership's renewal reminders).
    Needs the app context (the plugin manager)."""
    from portal import plugins

    found = dict(JOBS)
    for job in plugins.collect(plugins.manager().hook.scheduled_jobs()):
        found.setdefault(job.name, job)
    return found


# -- the lock ---------------------------------------------------------------------------------


def holder_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def claim(session: Session, job: Job, *, scheduled: bool) -> bool:
    """Take the job's lock in one atomic statement; commits. False when someone else has it."""
    now = utcnow()
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(
        insert(JobRun)
        .values(name=job.name, holder="", last_outcome="", runs=0, failures=0)
        .on_conflict_do_nothing(index_elements=["name"])
    )
    free = sa.or_(JobRun.locked_until.is_(None), JobRun.locked_until < now)
    if scheduled:
        free = sa.and_(
            free,
            sa.or_(JobRun.last_started_at.is_(None), JobRun.last_started_at <= now - job.min_gap),
        )
    result = session.execute(
        sa.update(JobRun)
        .where(JobRun.name == job.name, free)
        .values(
            locked_until=now + job.timeout,
            holder=holder_name(),
            last_started_at=now,
            runs=JobRun.runs + 1,
        )
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return result.rowcount == 1


def _release(session: Session, job: Job, outcome: str, failed: bool) -> None:
    session.execute(
        sa.update(JobRun)
        .where(JobRun.name == job.name)
        .values(
            locked_until=None,
            last_finished_at=utcnow(),
            last_outcome=outcome[:2000],
            failures=JobRun.failures + (1 if failed else 0),
        )
        .execution_options(synchronize_session=False)
    )
    session.commit()


def run_job(session: Session, name: str, *, scheduled: bool = False) -> str:
    """Run one job under its lock; returns its summary. Raises JobSkipped when not claimed,
    and re-raises the job's own error after recording it."""
    job = jobs()[name]
    if not claim(session, job, scheduled=scheduled):
        raise JobSkipped(f"{name}: another run holds the lock or it ran in this period")
    try:
        outcome = job.fn(session)
    except Exception as exc:
        session.rollback()
        _release(session, job, f"{type(exc).__name__}: {exc}", failed=True)
        raise
    _release(session, job, outcome, failed=False)
    return outcome
