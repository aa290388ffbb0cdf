"""The office's view of undelivered email (administrators): what failed and "send again"."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user
from flask_wtf import FlaskForm

from portal.db import db
from portal.mail import services
from portal.mail.models import OutboxEmail

bp = Blueprint("mail_admin", __name__, url_prefix="/<lang_code>/organiser/outbox")


class ResendForm(FlaskForm):
    """A button: CSRF only."""


@bp.before_request
def require_admin():
    if not current_user.is_authenticated:
        return current_app.login_manager.unauthorized()
    if not current_user.is_admin:
        abort(403)
    return None


@bp.get("/")
def undelivered():
    emails = services.undelivered(db.session)
    counts = services.outbox_counts(db.session)
    return render_template(
        "mail_admin/undelivered.html", emails=emails, counts=counts, form=ResendForm()
    )


@bp.post("/<int:email_id>/resend")
def resend(email_id: int):
    email = db.session.get(OutboxEmail, email_id)
    if email is None or email.sent_at is not None:
        abort(404)
    if ResendForm().validate():
        if services.requeue(db.session, [email_id], actor=current_user):
            db.session.commit()
            flash(
                _("The email to %(address)s will be sent again.", address=email.to_address),
                "success",
            )
        else:
            flash(_("This email is already waiting to be sent."), "info")
    return redirect(url_for(".undelivered"))


@bp.post("/resend-all")
def resend_all():
    if ResendForm().validate():
        count = services.requeue(db.session, None, actor=current_user)
        db.session.commit()
        flash(
            ngettext(
                "%(num)d email will be sent again.", "%(num)d emails will be sent again.", count
            ),
            "success",
        )
    return redirect(url_for(".undelivered"))
