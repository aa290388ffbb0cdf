"""Whole numbers from URLs and query strings, parsed once, the same way everywhere; the text
filters of list pages (``filter_args``).

- ``<int:...>`` in a route is ``BoundedIntConverter`` (registered app-wide by ``init_app``):
  ASCII digits only, no sign, at most ``MAX_ID``. Anything else (``²``, ``٣``, a number
  too large for the database's integer columns) does not match the route: 404.
- ``int_arg("page", 1, minimum=1)`` reads a query or form argument: missing or empty gives
  the default; anything that is not a plain whole number within the bounds is answered with
  400 and a translated message that names the argument. ``int_or_none(raw)`` is the same
  check for a value already in hand (form fields, hidden inputs) without aborting.

``str.isdigit()`` is not a check for ``int()``: ``"²".isdigit()`` is true and ``int("²")``
raises. Use these helpers instead.
"""

from __future__ import annotations

import re

from flask import Flask, Request, request
from flask_babel import gettext as _
from werkzeug.exceptions import BadRequest
from werkzeug.routing import BaseConverter, ValidationError

# Integer primary keys are 32-bit on PostgreSQL; nothing larger can exist.
MAX_ID = 2**31 - 1
_DIGITS = re.compile(r"[0-9]{1,10}")


class BadArgument(BadRequest):
    """A query or form argument that is not a whole number in range (400)."""

    def __init__(self, name: str):
        super().__init__()
        self.argument = name

    @property
    def portal_message(self) -> str:
        return _("“%(name)s” must be a whole number in the allowed range.", name=self.argument)


def int_or_none(raw, minimum: int = 0, maximum: int = MAX_ID) -> int | None:
    """``raw`` as an int when it is 1–10 ASCII digits within the bounds, else None."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        value = raw
    elif isinstance(raw, str) and _DIGITS.fullmatch(raw.strip()):
        value = int(raw.strip())
    else:
        return None
    return value if minimum <= value <= maximum else None


def int_arg(
    name: str,
    default: int | None = None,
    *,
    minimum: int = 0,
    maximum: int = MAX_ID,
    source=None,
) -> int | None:
    """The argument ``name`` of the request (query string by default) as a checked int."""
    values = request.args if source is None else source
    raw = values.get(name, "")
    if raw is None or str(raw).strip() == "":
        return default
    value = int_or_none(raw, minimum, maximum)
    if value is None:
        raise BadArgument(name)
    return value


class BoundedIntConverter(BaseConverter):
    """``<int:x>``: 1–10 ASCII digits, 0 … MAX_ID; anything else is no match (404)."""

    regex = r"[0-9]{1,10}"
    weight = 50
    part_isolating = True

    def __init__(self, map, *args, **kwargs):  # noqa: A002 - Werkzeug's signature
        super().__init__(map)

    def to_python(self, value: str) -> int:
        number = int(value)
        if number > MAX_ID:
            raise ValidationError()
        return number

    def to_url(self, value) -> str:
        return str(int(value))


class NulCharacter(BadRequest):
    """A path, query or form value holding U+0000 (400): no text column can store it
    (PostgreSQL refuses it in every text parameter), and no person types it."""

    @property
    def portal_message(self) -> str:
        return _("The address or the form contains a NUL character, which cannot be used.")


def _refuse_nul() -> None:
    if "\x00" in request.path or any("\x00" in v for _name, v in request.args.items(multi=True)):
        raise NulCharacter()


class PortalRequest(Request):
    """Flask's request; its form, when something first reads it, is refused (400) if a value
    holds NUL. Read then, not before every view: a view may first raise the size limit of
    its body (the archive's uploads)."""

    def _load_form_data(self) -> None:
        super()._load_form_data()
        if any("\x00" in v for _name, v in self.form.items(multi=True)):
            raise NulCharacter()


def init_app(app: Flask) -> None:
    """Before any route is added: ``int`` is the bounded converter everywhere; a NUL character
    anywhere in a request's text is answered with 400 before any view runs."""
    app.url_map.converters["int"] = BoundedIntConverter
    app.request_class = PortalRequest
    app.before_request(_refuse_nul)


def filter_args(*names: str, **renamed: str) -> dict[str, str]:
    """A list page's filters from the query string, "" where absent: each of ``names`` under its
    own name, each ``key="argument"`` of ``renamed`` under ``key``, and the search ``q``
    stripped and cut to 100 characters."""
    args = request.args
    found = {name: args.get(name, "") for name in names}
    found.update({key: args.get(argument, "") for key, argument in renamed.items()})
    found["q"] = args.get("q", "").strip()[:100]
    return found
