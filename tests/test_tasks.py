"""Scheduled jobs and the Celery worker: one schedule, a lock, a worker on a SQLite broker."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from datetime import timedelta
from email.utils import make_msgid

import pytest
import sqlalchemy as sa

from portal.db import db, utcnow
from portal.mail.models import OutboxEmail
from portal.tasks import jobs
from portal.tasks.jobs import JOBS, Job, JobSkipped, run_job
from portal.tasks.models import JobRun
from portal.tasks.worker import beat_schedule


def test_one_beat_schedule_declares_every_job_through_the_lock(app):
    with app.app_context():
        schedule = beat_schedule()
        every = {name: job.every.total_seconds() for name, job in jobs.jobs().items()}
    assert set(schedule) == {
        "send-outbox",
        "send-announcements",
        "expire-unpaid",
        "reconcile-payments",
        "webinar-reminders",
        "membership-reminders",
        "attendance-figures",
    }
    for name, entry in schedule.items():
        assert entry["task"] == "portal.run_job"
        assert entry["args"] == (name,)
        assert entry["schedule"] == every[name]


def test_hook_scheduled_jobs_plugins_declare_their_jobs_and_run_them_under_the_lock(app):
    """The webinar's and membership's reminders are the plugins' jobs (hook
    ``scheduled_jobs``), not imported by the core; ``run_job`` runs them like the core's."""
    assert "webinar-reminders" not in JOBS and "membership-reminders" not in JOBS
    with app.app_context():
        found = jobs.jobs()
        assert found["webinar-reminders"].every == timedelta(hours=1)
        assert found["membership-reminders"].every == timedelta(days=1)
        assert run_job(db.session, "webinar-reminders") == "queued 0 reminders"
        assert run_job(db.session, "membership-reminders") == "0 reminder(s) queued"
        assert db.session.get(JobRun, "webinar-reminders").runs == 1


@pytest.fixture
def slow_job(monkeypatch):
    calls = []
    gate = threading.Event()

    def work(session):
        calls.append(threading.get_ident())
        gate.wait(10)
        return "done"

    job = Job("test-slow", work, timedelta(minutes=10), timedelta(minutes=5), "a test job")
    monkeypatch.setitem(JOBS, job.name, job)
    return job, calls, gate


def test_two_runs_at_once_run_the_job_once(app, slow_job):
    job, calls, gate = slow_job
    outcomes = []

    def run():
        with app.app_context():
            try:
                outcomes.append(run_job(db.session, job.name))
            except JobSkipped:
                outcomes.append("skipped")
            finally:
                gate.set()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert sorted(outcomes) == ["done", "skipped"]
    assert len(calls) == 1
    with app.app_context():
        row = db.session.get(JobRun, job.name)
        assert (row.runs, row.failures, row.locked_until, row.last_outcome) == (1, 0, None, "done")


def test_a_scheduled_run_in_the_same_period_is_skipped_but_a_manual_run_is_not(app, slow_job):
    job, calls, gate = slow_job
    gate.set()
    with app.app_context():
        assert run_job(db.session, job.name, scheduled=True) == "done"
        with pytest.raises(JobSkipped):
            run_job(db.session, job.name, scheduled=True)  # a second scheduler's tick
        assert run_job(db.session, job.name) == "done"  # `portal jobs run` by hand
        row = db.session.get(JobRun, job.name)
        row.last_started_at = utcnow() - job.min_gap - timedelta(seconds=1)
        db.session.commit()
        assert run_job(db.session, job.name, scheduled=True) == "done"  # the next period
    assert len(calls) == 3


def test_a_lock_left_by_a_dead_run_expires(app, slow_job):
    job, calls, gate = slow_job
    gate.set()
    with app.app_context():
        db.session.add(
            JobRun(name=job.name, locked_until=utcnow() + timedelta(minutes=1), holder="dead:1")
        )
        db.session.commit()
        with pytest.raises(JobSkipped):
            run_job(db.session, job.name)
        db.session.get(JobRun, job.name).locked_until = utcnow() - timedelta(seconds=1)
        db.session.commit()
        assert run_job(db.session, job.name) == "done"


def test_a_failing_job_records_the_error_frees_the_lock_and_raises(app, runner, monkeypatch):
    def broken(session):
        raise RuntimeError("the payment provider is down")

    monkeypatch.setitem(
        JOBS,
        "test-broken",
        Job("test-broken", broken, timedelta(minutes=1), timedelta(minutes=1), ""),
    )
    result = runner.invoke(args=["jobs", "run", "test-broken"])
    assert result.exit_code == 1
    assert isinstance(result.exception, RuntimeError)
    with app.app_context():
        row = db.session.get(JobRun, "test-broken")
        assert (row.runs, row.failures, row.locked_until) == (1, 1, None)
        assert row.last_outcome == "RuntimeError: the payment provider is down"
    listing = runner.invoke(args=["jobs", "list"])
    assert "send-outbox" in listing.output and "never run" in listing.output
    assert runner.invoke(args=["jobs", "run", "nope"]).exit_code == 1


def test_the_send_outbox_job_raises_when_mail_could_not_be_delivered(app):
    with app.app_context():
        db.session.add(
            OutboxEmail(
                to_address="a@example.org",
                language="en",
                subject="s",
                body_text="t",
                body_html="h",
                message_id=make_msgid(),
            )
        )
        db.session.commit()
        with pytest.raises(Exception, match="sent 0, postponed 1"):
            run_job(db.session, "send-outbox")
        assert db.session.get(JobRun, "send-outbox").failures == 1


def test_expire_unpaid_job_runs_through_the_lock(app, runner):
    result = runner.invoke(args=["jobs", "run", "expire-unpaid"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "expired 0"
    assert jobs.JOBS["expire-unpaid"].min_gap == timedelta(minutes=5) / 2


def test_a_worker_on_a_sqlite_file_broker_finds_committed_mail_and_sends_it(
    app, database_url, smtp_server, tmp_path
):
    """What `make run` starts: a Celery worker on kombu's SQLAlchemy transport, no server.
    Nobody publishes anything: the worker's outbox watcher finds the mail within a second."""
    broker = f"sqla+sqlite:///{tmp_path / 'broker.sqlite'}"
    env = dict(
        os.environ,
        PORTAL_DATABASE_URL=database_url,
        PORTAL_BROKER_URL=broker,
        PORTAL_MAIL_SERVER="127.0.0.1",
        PORTAL_MAIL_PORT=str(smtp_server.port),
        PORTAL_SECRET_KEY="test-secret",
        PORTAL_OUTBOX_WATCH_SECONDS="0.5",
    )
    worker = subprocess.Popen(
        [sys.executable, "-m", "portal.cli", "tasks", "worker", "--concurrency=1", "--pool=solo"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "worker.log", "w"),  # noqa: SIM115
    )
    try:
        # The web side only commits the mail; the worker's watcher finds it and sends it.
        with app.app_context():
            db.session.add(
                OutboxEmail(
                    to_address="worker@example.org",
                    language="en",
                    subject="From the worker",
                    body_text="t",
                    body_html="h",
                    message_id=make_msgid(),
                )
            )
            db.session.commit()
        deadline = time.monotonic() + 30
        while not smtp_server.messages and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(smtp_server.messages) == 1, (tmp_path / "worker.log").read_text()[-3000:]
        assert smtp_server.messages[0]["Subject"] == "From the worker"
        # The SMTP server has the message before the worker commits `sent_at`: wait for it.
        sent_at = None
        while sent_at is None and time.monotonic() < deadline:
            with app.app_context():
                sent_at = db.session.scalar(sa.select(OutboxEmail.sent_at))
            if sent_at is None:
                time.sleep(0.1)
        assert sent_at is not None
        assert len(smtp_server.messages) == 1
    finally:
        worker.terminate()
        worker.wait(15)


def test_reconcile_payments_job_runs_the_payments_reconciliation(app, runner):
    result = runner.invoke(args=["jobs", "run", "reconcile-payments"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "nothing to do"


def test_a_web_process_imports_celery_only_when_it_publishes(tmp_path):
    """create_app leaves Celery and kombu unloaded (about 10 MB a web worker serving pages
    does not need); the first publish sets the shared Celery app up for that Flask app."""
    code = """
import sys
from portal.app import create_app
app = create_app({"DATABASE_URL": "sqlite:///%s", "SECRET_KEY": "s" * 40})
assert "celery" not in sys.modules and "kombu" not in sys.modules, "loaded at start"
from portal.tasks import celery_for
celery = celery_for(app)
assert celery.flask_app is app and celery.conf.broker_url == app.config["BROKER_URL"]
assert "portal.run_job" in celery.tasks and "portal.send_outbox_now" in celery.tasks
assert celery_for(app) is celery
other = create_app({"DATABASE_URL": "sqlite:///%s", "SECRET_KEY": "t" * 40, "TASKS_EAGER": True})
from flask import current_app
with other.app_context():  # current_app is a proxy: the app behind it is the one set up
    assert celery_for(current_app).flask_app is other and celery.conf.task_always_eager
print("ok")
""" % ((tmp_path / "db.sqlite",) * 2)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "ok"


REGISTER_IN_A_WEB_PROCESS = """
import sys
from portal.app import create_app
from portal.db import db
from portal.accounts.models import Person
from portal.events.models import Event
from portal.mail.models import OutboxEmail
from portal.registration import services
from portal.registration.models import FeeCategory

app = create_app()
with app.app_context():
    event = db.session.get(Event, int(sys.argv[1]))
    person = db.session.get(Person, int(sys.argv[2]))
    category = db.session.query(FeeCategory).filter_by(event_id=event.id).one()
    registration = services.register(
        db.session, event, person, mode="onsite", fee_category=category, privacy_accepted=True
    )
    db.session.commit()
    queued = db.session.query(OutboxEmail).count()
    print(registration.state.value, queued, "celery" in sys.modules, "kombu" in sys.modules)
"""


def test_a_registration_in_a_web_process_queues_its_mail_and_publishes_nothing(tmp_path):
    """The confirmation is queued in the registration's transaction; the web process neither
    loads Celery nor publishes (the workers' watchers find the mail)."""
    from bench.common import portal_env
    from bench.seed import create_schema, seed_rush

    url = f"sqlite:///{tmp_path / 'web.db'}"
    engine = create_schema(url)
    try:
        data = seed_rush(engine, seats=1, people=1)
    finally:
        engine.dispose()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    env.update(portal_env(url, tmp_path))
    env["PORTAL_BROKER_URL"] = f"sqla+sqlite:///{tmp_path / 'broker.sqlite'}"
    [(person_id, _email)] = data.people
    result = subprocess.run(
        [sys.executable, "-c", REGISTER_IN_A_WEB_PROCESS, str(data.event_id), str(person_id)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["confirmed", "1", "False", "False"]
    assert not (tmp_path / "broker.sqlite").exists()  # nothing was published
