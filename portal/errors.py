"""Error pages in the reader's language; no raw 500s."""

from flask import Flask, render_template
from flask_babel import gettext as _


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
            # A message of the error itself (e.g. which argument was wrong) where it has one.
            message = getattr(error, "portal_message", None) or messages[code]()
            return render_template("errors/error.html", code=code, message=message), code

        return handle

    for code in messages:
        app.register_error_handler(code, handler(code))
