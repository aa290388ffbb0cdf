"""Logs: one JSON line per request, with a request id; optional Sentry.

The request id is the proxy's ``X-Request-ID`` when it sends a sane one, otherwise a new
one; it is sent back in ``X-Request-ID`` and written on the request's line. The line holds no
personal data: no query string, no form fields, no address, no user. SQL parameters never
reach the logs either (the engine is made with ``hide_parameters=True``, ``portal/db.py``).
Sentry is switched on by ``PORTAL_SENTRY_DSN`` (without personal data: ``send_default_pii``
off).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from datetime import UTC, datetime

from flask import Flask, g, request

request_log = logging.getLogger("portal.request")
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        line.update(getattr(record, "fields", {}))
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def _setup_handler() -> None:
    if any(getattr(h, "_portal_json", False) for h in request_log.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JSONFormatter())
    handler._portal_json = True
    request_log.addHandler(handler)
    request_log.setLevel(logging.INFO)
    request_log.propagate = False


def request_id() -> str:
    return g.get("request_id", "")


def init_app(app: Flask) -> None:
    if app.config.get("LOG_REQUESTS"):
        _setup_handler()

    @app.before_request
    def _start():
        sent = request.headers.get("X-Request-ID", "")
        g.request_id = sent if _SANE_ID.match(sent) else uuid.uuid4().hex
        g.request_started = time.perf_counter()

    @app.after_request
    def _finish(response):
        rid = g.get("request_id") or uuid.uuid4().hex
        response.headers["X-Request-ID"] = rid
        if app.config.get("LOG_REQUESTS"):
            started = g.get("request_started")
            request_log.info(
                "request",
                extra={
                    "fields": {
                        "request_id": rid,
                        "method": request.method,
                        "path": request.path,
                        "endpoint": request.endpoint or "",
                        "status": response.status_code,
                        "bytes": response.content_length,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 1)
                        if started
                        else None,
                    }
                },
            )
        return response

    dsn = app.config.get("SENTRY_DSN")
    if dsn:
        init_sentry(dsn, app.config.get("ENV", "development"))


def init_sentry(dsn: str, environment: str) -> None:
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.flask import FlaskIntegration

    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        integrations=[FlaskIntegration(), CeleryIntegration()],
        send_default_pii=False,
        traces_sample_rate=0.0,
    )
