"""Error pages in the reader's language (no raw 500s), and ``UserError``, the base of every
refused change.

A service refuses a change by raising a subclass of ``UserError`` with a translated
``message`` (a lazy string) and, when one input is to blame, the form ``field`` to show it on;
``category`` is the flash category when it is shown as a flash message ("error", or "info" for
a refusal that is no failure, such as "you are already registered"). Views call services inside
``portal.transactions.state_change``, which rolls back and shows the message.

When the database is unavailable (refused, restarting, timed out, pool exhausted) the answer
is a static bilingual 503 page with ``Retry-After``: it needs neither the database nor a
template (the normal layout asks the database who is logged in). A 500 whose page cannot be
rendered falls back to a static page too.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from flask import Flask, Response, g, render_template
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l


class UserError(ValueError):
    """A change the person asked for that is not possible; ``message`` is translated."""

    default_message = _l("This change is not possible.")
    default_field: str | None = None
    category = "error"

    def __init__(self, message=None, field: str | None = None):
        self.message = message if message is not None else self.default_message
        self.field = field if field is not None else self.default_field
        super().__init__(str(self.message))


STATIC_ERRORS = Path(__file__).parent / "static" / "errors"
RETRY_AFTER_SECONDS = 30

# What "the database is unavailable" looks like to SQLAlchemy.
DATABASE_UNAVAILABLE = (
    sa.exc.OperationalError,
    sa.exc.InterfaceError,
    sa.exc.TimeoutError,
    sa.exc.DisconnectionError,
)


def static_page(code: int) -> Response:
    response = Response(
        (STATIC_ERRORS / f"{code}.html").read_bytes(),
        status=code,
        mimetype="text/html",
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def _drop_session() -> None:
    session = g.pop("db_session", None)
    if session is not None:
        try:
            session.close()
        except Exception:  # the connection is gone already
            pass


def database_unavailable(error) -> Response:
    from flask import current_app

    current_app.logger.error("database unavailable: %s", type(error).__name__)
    _drop_session()
    response = static_page(503)
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def init_app(app: Flask) -> None:
    messages = {
        400: lambda: _("The request could not be understood."),
        403: lambda: _("You do not have access to this page."),
        404: lambda: _("This page does not exist."),
        405: lambda: _("This action is not allowed here."),
        413: lambda: _("The file is too large."),
        429: lambda: _("Too many attempts. Please wait a few minutes and try again."),
        500: lambda: _("Something went wrong on our side. Please try again later."),
    }

    def handler(code):
        def handle(error):
            original = getattr(error, "original_exception", None)
            if isinstance(original, DATABASE_UNAVAILABLE):
                return database_unavailable(original)
            # A message of the error itself (e.g. which argument was wrong) where it has one.
            message = getattr(error, "portal_message", None) or messages[code]()
            try:
                return render_template("errors/error.html", code=code, message=message), code
            except DATABASE_UNAVAILABLE as exc:
                return database_unavailable(exc)
            except Exception:
                if code < 500:
                    raise
                app.logger.exception("the error page itself failed")
                _drop_session()
                return static_page(500)

        return handle

    for code in messages:
        app.register_error_handler(code, handler(code))
    for exc_class in DATABASE_UNAVAILABLE:
        app.register_error_handler(exc_class, database_unavailable)
