"""The Celery application: the broker from ``PORTAL_BROKER_URL``, one beat schedule.

- The broker is Redis in production (``redis://…``); without a setting it is a SQLite file in
  ``instance/`` (kombu's SQLAlchemy transport), so ``make run`` needs no server.
- ``BEAT_SCHEDULE`` comes from ``portal.tasks.jobs.jobs()`` (the core's and plugins' jobs): one entry per job, run by one
  scheduler process (``portal tasks scheduler``); every run goes through ``run_job``'s lock.
- Every worker watches the outbox (``OutboxWatcher``): every ``OUTBOX_WATCH_SECONDS`` (1 s) a
  thread looks for due mail with one indexed query and, when there is some, publishes
  ``send_outbox_now``; so mail leaves within about a second while the web processes never
  publish anything for it (no Celery in a web worker, nothing on a registration's path). The
  scheduled ``send-outbox`` run catches anything else (no worker watching).
- Tasks run inside a Flask app context (``AppTask``).

Start with ``portal tasks worker`` and ``portal tasks scheduler`` (``make run`` starts both
inside ``portal tasks dev``).
"""

from __future__ import annotations

import logging
import threading

from celery import Celery, Task, bootsteps
from celery.signals import worker_process_init
from flask import Flask

from portal.tasks.jobs import JobSkipped, jobs

log = logging.getLogger("portal.tasks")


class AppTask(Task):
    def __call__(self, *args, **kwargs):
        with flask_app().app_context():
            return super().__call__(*args, **kwargs)


celery_app = Celery("portal", task_cls=AppTask, set_as_current=False)
celery_app.flask_app = None


def flask_app() -> Flask:
    if celery_app.flask_app is None:
        from portal.app import create_app

        init_app(create_app())
    return celery_app.flask_app


def beat_schedule() -> dict:
    """One entry per job of ``jobs()`` (the core's and the plugins'); needs the app context."""
    return {
        name: {
            "task": "portal.run_job",
            "schedule": job.every.total_seconds(),
            "args": (name,),
            # A tick that waited longer than its period (no worker) is dropped, not piled up.
            "options": {"expires": job.every.total_seconds()},
        }
        for name, job in jobs().items()
    }


def _schedule_of(app: Flask) -> dict:
    with app.app_context():
        return beat_schedule()


def init_app(app: Flask) -> None:
    cfg = app.config
    broker = cfg["BROKER_URL"]
    options: dict = {}
    if broker.startswith(("redis://", "rediss://")):
        options = {"socket_connect_timeout": 2, "socket_timeout": 5, "visibility_timeout": 3600}
    if celery_app._pool is not None and celery_app.conf.broker_url != broker:
        _forget_connections()  # another app in this process (tests) pointed elsewhere
    celery_app.conf.update(
        broker_url=broker,
        broker_transport_options=options,
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=2,
        task_ignore_result=True,
        result_backend=None,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        task_publish_retry=False,
        task_always_eager=bool(cfg.get("TASKS_EAGER")),
        beat_schedule=_schedule_of(app),
        timezone="UTC",
    )
    celery_app.flask_app = app
    app.extensions["celery"] = celery_app


def _forget_connections() -> None:
    pool, celery_app._pool = celery_app._pool, None
    if "amqp" in celery_app.__dict__:
        celery_app.amqp._producer_pool = None
    if pool is not None:
        pool.force_close_all()


@celery_app.task(name="portal.run_job")
def run_job_task(name: str) -> str:
    from portal.db import db
    from portal.tasks.jobs import run_job

    try:
        outcome = run_job(db.session, name, scheduled=True)
    except JobSkipped as exc:
        log.info("job skipped: %s", exc)
        return "skipped"
    log.info("job %s: %s", name, outcome)
    return outcome


@celery_app.task(name="portal.send_outbox_now")
def send_outbox_now() -> str:
    """Deliver what is due now (claims make it safe next to the scheduled run)."""
    from portal.db import db
    from portal.mail.services import OutboxDeliveryError, send_due

    sent, failed = send_due(db.session, limit=500)
    if failed:
        raise OutboxDeliveryError(f"sent {sent}, postponed {failed}")
    return f"sent {sent}"


def watch_outbox_once() -> bool:
    """Publish ``send_outbox_now`` when mail is due; True when it did. Never raises."""
    from portal.mail.services import has_due

    try:
        app = flask_app()
        with app.app_context():
            # A reading session: on SQLite the look takes no write lock.
            with app.extensions["portal_db"]["reader"]() as session:
                due = has_due(session)
            if not due:
                return False
            send_outbox_now.apply_async()
            return True
    except Exception:  # the database or the broker is away: the next look tries again
        log.warning("the outbox watcher could not look for due mail", exc_info=True)
        return False


class OutboxWatcher(bootsteps.StartStopStep):
    """A worker's thread that looks for due mail every ``OUTBOX_WATCH_SECONDS``.

    Several workers (several machines) may each publish a send: claims make every mail go
    out once, and a send that finds nothing claimed costs one query."""

    def __init__(self, worker, **kwargs):
        super().__init__(worker, **kwargs)
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self, worker):
        seconds = float(flask_app().config.get("OUTBOX_WATCH_SECONDS") or 0)
        if seconds <= 0:
            return
        self.stopping.clear()
        self.thread = threading.Thread(
            target=self._watch, args=(seconds,), name="portal-outbox-watch", daemon=True
        )
        self.thread.start()

    def _watch(self, seconds: float) -> None:
        while not self.stopping.wait(seconds):
            watch_outbox_once()

    def stop(self, worker):
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(timeout=5)


celery_app.steps["worker"].add(OutboxWatcher)


@worker_process_init.connect
def _own_connections(**_kwargs) -> None:
    """A forked pool process opens its own database connections (the watcher's stay in the
    parent)."""
    app = celery_app.flask_app
    if app is not None:
        app.extensions["portal_db"]["engine"].dispose(close=False)
