"""Background work: scheduled jobs (one list, ``JOBS``), their lock, and the Celery worker.

- ``portal.tasks.jobs``: every periodic job as a plain function of a session, the lock that
  keeps two runs of one job from overlapping (or running twice in one period on two machines),
  and ``run_job`` which CLI commands and Celery tasks both call.
- ``portal.tasks.worker``: the Celery application (broker from ``PORTAL_BROKER_URL``), its
  tasks and the one beat schedule; ``celery -A portal.tasks.worker worker`` / ``beat``.
  A web process imports it only when it first publishes a task (``celery_for``): Celery and
  kombu are about 10 MB that a web worker serving pages never needs.
"""

from __future__ import annotations


def celery_for(app):
    """The Celery application set up for ``app`` (broker, beat schedule), imported and
    configured on first use; one Celery app per process follows the Flask app that uses it."""
    from portal.tasks.worker import celery_app, init_app

    if hasattr(app, "_get_current_object"):
        app = app._get_current_object()  # current_app: the app itself, not the proxy
    if celery_app.flask_app is not app:
        init_app(app)
    return celery_app
