"""``portal jobs`` (run a scheduled job by hand, under its lock) and ``portal tasks`` (the
Celery worker and scheduler)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import click
from flask import current_app
from flask.cli import with_appcontext

from portal.config import INSTANCE
from portal.db import db


@click.group("jobs")
def jobs_group():
    """Scheduled jobs (the worker runs them; these commands run one by hand)."""


@jobs_group.command("list")
@with_appcontext
def jobs_list():
    """Every scheduled job, its interval and its last run."""
    import sqlalchemy as sa

    from portal.tasks.jobs import jobs
    from portal.tasks.models import JobRun

    runs = {r.name: r for r in db.session.scalars(sa.select(JobRun))}
    for name, job in jobs().items():
        run = runs.get(name)
        last = (
            f"last {run.last_started_at:%Y-%m-%d %H:%M:%S} UTC: {run.last_outcome}"
            if run and run.last_started_at
            else "never run"
        )
        click.echo(f"{name:22} every {int(job.every.total_seconds()):>6}s  {last}")


@jobs_group.command("run")
@click.argument("name")
@with_appcontext
def jobs_run(name):
    """Run one job now (skipped with exit 1 while another run holds its lock)."""
    from portal.tasks.jobs import JobSkipped, jobs, run_job

    if name not in jobs():
        raise click.ClickException(f"No job named {name!r} (see `portal jobs list`).")
    try:
        click.echo(run_job(db.session, name))
    except JobSkipped as exc:
        raise click.ClickException(str(exc)) from exc


@click.group("tasks")
def tasks_group():
    """The Celery worker and scheduler (broker: PORTAL_BROKER_URL)."""


def _celery():
    from portal.tasks import celery_for

    return celery_for(current_app)


@tasks_group.command(
    "worker", context_settings={"ignore_unknown_options": True, "allow_extra_args": True}
)
@click.option("--concurrency", default=2, show_default=True)
@click.pass_context
@with_appcontext
def tasks_worker(ctx, concurrency):
    """Run a worker (extra arguments go to `celery worker`)."""
    _celery().worker_main(["worker", "--loglevel=INFO", f"--concurrency={concurrency}", *ctx.args])


@tasks_group.command(
    "scheduler", context_settings={"ignore_unknown_options": True, "allow_extra_args": True}
)
@click.option(
    "--schedule-file",
    default=str(INSTANCE / "celerybeat-schedule"),
    show_default=True,
    help="Where the scheduler remembers the last run of each entry.",
)
@click.pass_context
@with_appcontext
def tasks_scheduler(ctx, schedule_file):
    """Run the one scheduler (celery beat): start it on ONE machine only."""
    os.makedirs(os.path.dirname(schedule_file) or ".", exist_ok=True)
    _celery().start(["beat", "--loglevel=INFO", f"--schedule={schedule_file}", *ctx.args])


@tasks_group.command("dev")
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=5000)
@with_appcontext
def tasks_dev(host, port):
    """Everything `make run` needs in one terminal: web server, worker and scheduler."""
    portal = [sys.executable, "-m", "portal.cli"]
    children = [
        subprocess.Popen([*portal, "tasks", "worker", "--concurrency=1", "--pool=solo"]),
        subprocess.Popen([*portal, "tasks", "scheduler"]),
        subprocess.Popen([*portal, "run", "--host", host, "--port", str(port)]),
    ]

    def stop(signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
