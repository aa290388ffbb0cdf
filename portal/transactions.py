"""One state change per request, committed or rolled back in one place: ``state_change``.

Views used to repeat ``try: service(...) except AreaError: rollback; flash; else: commit;
flash``. Instead::

    with state_change(form, success=_("The affiliation has been added.")) as change:
        services.add_affiliation(db.session, ...)
    if change.ok:
        return redirect(...)
    # change.error is the refused change; change.status is 400: show the form again

- On success the session is committed and ``success`` (if given) is flashed.
- A ``UserError`` (or the classes in ``errors``) rolls the session back; its message goes on
  the form field the error names (``field``) when the form has it, else into a flash message
  of the error's ``category`` ("error" unless the error class says otherwise).
  Any other exception rolls back and propagates (a 500 the error handler shows, or an
  ``except`` around the ``with`` block, e.g. for an ``IntegrityError`` of a race).
- ``field="amount"``: the form field for a refused change that names no field of the form
  (none, or one the form does not have), instead of a flash message.
- A form with an ``add_error(name, message) -> bool`` method places the message itself (e.g.
  plugin answers whose fields carry a prefix).
- ``flash_errors=False``: a message that is not placed on a field is not flashed but kept in
  ``change.message`` for the page to show (e.g. above the form).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from flask import flash

from portal.db import db
from portal.errors import UserError


@dataclass
class Change:
    ok: bool = False
    error: Exception | None = None
    # The refused change's message when it is on no form field (with flash_errors=False).
    message: object = None

    @property
    def status(self) -> int:
        """200 after success, 400 after a refused change (for re-rendering the form)."""
        return 400 if self.error is not None else 200


def _place(form, name: str | None, message) -> bool:
    """Put ``message`` on the form field ``name``; False if the form has no such field."""
    if form is None or not name:
        return False
    add_error = getattr(form, "add_error", None)
    if callable(add_error):
        return bool(add_error(name, message))
    target = getattr(form, name, None)
    if target is None or not hasattr(target, "errors"):
        return False
    target.errors = [*(target.errors or ()), message]
    return True


@contextmanager
def state_change(
    form=None,
    *,
    success=None,
    errors: tuple[type[Exception], ...] = (UserError,),
    field: str | None = None,
    flash_errors: bool = True,
) -> Iterator[Change]:
    change = Change()
    try:
        yield change
    except errors as exc:
        db.session.rollback()
        change.error = exc
        message = getattr(exc, "message", None) or str(exc)
        if not (_place(form, getattr(exc, "field", None), message) or _place(form, field, message)):
            if flash_errors:
                flash(str(message), getattr(exc, "category", "error"))
            else:
                change.message = message
    except BaseException:
        db.session.rollback()
        raise
    else:
        db.session.commit()
        change.ok = True
        if success is not None:
            flash(str(success), "success")
