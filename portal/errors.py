"""Error pages in the reader's language (no raw 500s), and ``UserError``, the base of every
refused change.

A service refuses a change by raising a subclass of ``UserError`` with a translated
``message`` (a lazy string) and, when one input is to blame, the form ``field`` to show it on.
Views catch the area's subclass and show ``str(error.message)``.
"""

from flask import Flask, render_template
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l


class UserError(ValueError):
    """A change the person asked for that is not possible; ``message`` is translated."""

    default_message = _l("This change is not possible.")

    def __init__(self, message=None, field: str | None = None):
        self.message = message if message is not None else self.default_message
        self.field = field
        super().__init__(str(self.message))


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
            return render_template("errors/error.html", code=code, message=messages[code]()), code

        return handle

    for code in messages:
        app.register_error_handler(code, handler(code))
