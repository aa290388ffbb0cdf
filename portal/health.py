"""GET /healthz: database, broker and storage, answered within a second whatever hangs.

Each check runs in its own thread and gets ``HEALTH_TIMEOUT`` seconds; one that has not
answered by then is reported as ``"timeout"``. The answer is 200 while the database answers
(``"status": "ok"``, or ``"degraded"`` when the broker or the storage does not), and 503 when
the database does not: then the load balancer should stop sending requests to this machine.
"""

from __future__ import annotations

import threading
import time

import sqlalchemy as sa
from flask import Blueprint, current_app, jsonify

bp = Blueprint("health", __name__)

HEALTH_TIMEOUT = 0.8  # seconds for all checks together


def _check_database(app) -> None:
    engine = app.extensions["portal_db"]["engine"]
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))


def _check_broker(app) -> None:
    url = app.config["BROKER_URL"]
    if url.startswith("memory://"):
        return
    if url.startswith(("redis://", "rediss://")):
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
        try:
            client.ping()
        finally:
            client.close()
        return
    if url.startswith("sqla+"):
        # kombu's SQLAlchemy transport keeps its queues in this database: ask it directly.
        # (Going through Celery imported Celery and kombu, about 10 MB, into every web worker
        # the load balancer probed, and opened no connection at all.)
        with _broker_engine(url.removeprefix("sqla+")).connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        return
    from portal.tasks import celery_for

    celery = celery_for(app)
    with celery.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=0.5)


_broker_engines: dict[str, sa.Engine] = {}


def _broker_engine(url: str) -> sa.Engine:
    """One engine per broker database and process; no pool: a probe holds no connection."""
    engine = _broker_engines.get(url)
    if engine is None:
        engine = _broker_engines.setdefault(url, sa.create_engine(url, poolclass=sa.NullPool))
    return engine


def _check_storage(app) -> None:
    app.extensions["portal_storage"].check()


CHECKS = {"database": _check_database, "broker": _check_broker, "storage": _check_storage}


def run_checks(app, timeout: float = HEALTH_TIMEOUT) -> dict[str, str]:
    results: dict[str, str] = {}

    def run(name, check):
        try:
            check(app)
        except Exception as exc:
            results[name] = type(exc).__name__
        else:
            results[name] = "ok"

    threads = [
        threading.Thread(target=run, args=item, daemon=True, name=f"healthz-{item[0]}")
        for item in CHECKS.items()
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return {name: results.get(name, "timeout") for name in CHECKS}


@bp.get("/healthz")
def healthz():
    results = run_checks(current_app._get_current_object())
    if results["database"] != "ok":
        status, code = "unavailable", 503
    elif any(value != "ok" for value in results.values()):
        status, code = "degraded", 200
    else:
        status, code = "ok", 200
    response = jsonify(status=status, **results)
    response.status_code = code
    response.headers["Cache-Control"] = "no-store"
    return response
