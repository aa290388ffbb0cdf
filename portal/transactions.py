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
  the form field the error names (``field``) when the form has it, else into a flash message.
  Any other exception rolls back and propagates (a 500 the error handler shows).
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
    error: UserError | None = None

    @property
    def status(self) -> int:
        """200 after success, 400 after a refused change (for re-rendering the form)."""
        return 400 if self.error is not None else 200


@contextmanager
def state_change(
    form=None, *, success=None, errors: tuple[type[Exception], ...] = (UserError,)
) -> Iterator[Change]:
    change = Change()
    try:
        yield change
    except errors as exc:
        db.session.rollback()
        change.error = exc
        message = getattr(exc, "message", None) or str(exc)
        field = getattr(exc, "field", None)
        target = getattr(form, field, None) if form is not None and field else None
        if target is not None and hasattr(target, "errors"):
            target.errors = [*target.errors, message]
        else:
            flash(str(message), "error")
    except BaseException:
        db.session.rollback()
        raise
    else:
        db.session.commit()
        change.ok = True
        if success is not None:
            flash(str(success), "success")
