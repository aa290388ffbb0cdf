"""Background work: scheduled jobs (one list, ``JOBS``), their lock, and the Celery worker.

- ``portal.tasks.jobs``: every periodic job as a plain function of a session, the lock that
  keeps two runs of one job from overlapping (or running twice in one period on two machines),
  and ``run_job`` which CLI commands and Celery tasks both call.
- ``portal.tasks.worker``: the Celery application (broker from ``PORTAL_BROKER_URL``), its
  tasks and the one beat schedule; ``celery -A portal.tasks.worker worker`` / ``beat``.
"""
