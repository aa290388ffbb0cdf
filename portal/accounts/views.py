"""Accounts pages: sign up, verify, log in and out, reset password, profile, personal data.

Views parse the form, call one service function, commit once and render.
"""

from __future__ import annotations

import json

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy.exc import IntegrityError

from portal import security
from portal.accounts import forms, services
from portal.accounts.tokens import TokenError
from portal.db import db
from portal.security import limit_email_form
from portal.transactions import state_change

bp = Blueprint("accounts", __name__, url_prefix="/<lang_code>/account")

SIGNUP_SENT_TEMPLATE = "accounts/check_email.html"


@bp.context_processor
def _accounts_globals():
    return {"min_password_length": services.MIN_PASSWORD_LENGTH}


# -- sign up and verification ----------------------------------------------------------------


@bp.route("/signup", methods=["GET", "POST"])
@limit_email_form
def signup():
    if current_user.is_authenticated:
        return redirect(url_for("accounts.profile"))
    form = forms.SignupForm()
    if form.validate_on_submit():
        email = services.normalise_email(form.email.data)
        try:
            with state_change(errors=()):
                user = services.sign_up(
                    db.session, email=email, password=form.password.data, **form.person_data()
                )
                if user is not None and form.announcement_lists.data:
                    _join_lists(user, form.announcement_lists.data)
        except IntegrityError:
            # Someone signed up with the same address at the same moment (rolled back above):
            # say the same thing.
            pass
        return render_template(SIGNUP_SENT_TEMPLATE, email=email)
    return render_template("accounts/signup.html", form=form), 400 if form.errors else 200


def _join_lists(user, series_ids) -> None:
    """The unticked boxes at sign-up: each list asks for its own confirmation by email."""
    from portal.announcements.subscriptions import request_joins

    request_joins(
        db.session,
        series_ids,
        person=user.person,
        language=user.person.preferred_language,
        source="signup",
    )


@bp.get("/verify/<token>")
def verify_email(token: str):
    confirmed = _("Thank you. Your email address is confirmed.")
    with state_change(errors=(TokenError,), success=confirmed, flash_errors=False) as change:
        services.verify_email(db.session, token)
    if not change.ok:
        return render_template("accounts/link_problem.html", message=change.message), 400
    if current_user.is_authenticated:
        return redirect(url_for("accounts.profile"))
    return redirect(url_for("accounts.login"))


@bp.post("/verify/resend")
@login_required
@limit_email_form
def resend_verification():
    form = forms.EmptyForm()
    if form.validate_on_submit():
        try:
            services.send_verification(db.session, current_user)
        except services.AccountError:
            flash(_("Your email address is already confirmed."), "info")
        else:
            db.session.commit()
            flash(
                _("We sent a new confirmation email to %(email)s.", email=current_user.email),
                "success",
            )
    target = request.form.get("next")
    return redirect(target if services.is_safe_next(target) else url_for("accounts.profile"))


# -- log in and out --------------------------------------------------------------------------


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = forms.LoginForm()
    if request.method == "GET":
        form.next.data = request.args.get("next", "")
    if current_user.is_authenticated and request.method == "GET":
        return redirect(_next_or_home(form.next.data))
    if form.validate_on_submit():
        # A failed attempt is recorded (committed) too; too many refuse (RateLimited, flashed).
        with state_change(errors=(services.RateLimited,)) as change:
            user = services.authenticate(
                db.session, form.email.data, form.password.data, request.remote_addr or ""
            )
        if not change.ok:
            return render_template("accounts/login.html", form=form), 429
        if user is None:
            form.password.errors = [_("The email address or the password is not correct.")]
            return render_template("accounts/login.html", form=form), 400
        login_user(user, remember=bool(form.remember.data))
        if not user.is_verified:
            flash(
                _(
                    "Please confirm your email address with the link we sent to %(email)s.",
                    email=user.email,
                ),
                "info",
            )
        return redirect(_next_or_home(form.next.data))
    return render_template("accounts/login.html", form=form), 400 if form.errors else 200


def _next_or_home(target: str | None) -> str:
    return target if services.is_safe_next(target) else url_for("events.home")


@bp.post("/logout")
def logout():
    logout_user()
    flash(_("You have logged out."), "info")
    return redirect(url_for("events.home"))


# -- password reset --------------------------------------------------------------------------


@bp.route("/password/forgot", methods=["GET", "POST"])
@limit_email_form
def forgot_password():
    form = forms.ForgotPasswordForm()
    if form.validate_on_submit():
        # Per address too (limit_email_form); per account a few links per window are sent,
        # further requests answer the same without sending (no mail bombing, no hint).
        if security.hit_reset_request(services.normalise_email(form.email.data)):
            services.request_password_reset(db.session, form.email.data)
            db.session.commit()
        return render_template(
            "accounts/check_email.html",
            email=services.normalise_email(form.email.data),
            reset=True,
        )
    return render_template("accounts/forgot_password.html", form=form), (
        400 if form.errors else 200
    )


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
def reset_password(token: str):
    form = forms.ResetPasswordForm()
    try:
        services.user_for_reset(db.session, token)
    except TokenError as error:
        return render_template("accounts/link_problem.html", message=error.message, reset=True), 400
    if form.validate_on_submit():
        with state_change(errors=(TokenError,), flash_errors=False) as change:
            services.reset_password(db.session, token, form.password.data)
        if not change.ok:
            return render_template(
                "accounts/link_problem.html", message=change.message, reset=True
            ), 400
        logout_user()
        flash(_("Your password has been changed. Please log in with the new one."), "success")
        return redirect(url_for("accounts.login"))
    return render_template("accounts/reset_password.html", form=form), (400 if form.errors else 200)


# -- profile ---------------------------------------------------------------------------------


def _profile_page(status: int = 200, **forms_given):
    user = current_user
    page_forms = {
        "profile_form": forms.ProfileForm(obj=user.person, prefix="profile", formdata=None),
        "email_form": forms.ChangeEmailForm(prefix="email", formdata=None),
        "password_form": forms.ChangePasswordForm(prefix="password", formdata=None),
        "delete_form": forms.DeleteAccountForm(prefix="delete", formdata=None),
    }
    page_forms.update(forms_given)
    return render_template(
        "accounts/profile.html",
        user=user,
        person=user.person,
        sector_labels=forms.SECTOR_LABELS,
        language_labels=forms.LANGUAGE_LABELS,
        country_name=forms.country_name,
        **page_forms,
    ), status


@bp.get("/profile")
@login_required
def profile():
    return _profile_page()


@bp.post("/profile")
@login_required
def update_profile():
    form = forms.ProfileForm(prefix="profile")
    if not form.validate_on_submit():
        return _profile_page(400, profile_form=form)
    services.update_profile(db.session, current_user, **form.person_data())
    db.session.commit()
    flash(_("Your profile has been saved."), "success")
    return redirect(url_for("accounts.profile"))


@bp.post("/profile/email")
@login_required
@limit_email_form
def change_email():
    form = forms.ChangeEmailForm(prefix="email")
    if form.validate_on_submit():
        with state_change(form, errors=(services.AccountError,)) as change:
            services.request_email_change(
                db.session, current_user, form.email.data, form.password.data
            )
        if change.ok:
            flash(
                _(
                    "We sent a link to %(email)s. Your address changes when you follow it.",
                    email=services.normalise_email(form.email.data),
                ),
                "success",
            )
            return redirect(url_for("accounts.profile"))
    return _profile_page(400, email_form=form)


@bp.get("/profile/email/<token>")
@login_required
def confirm_email_change(token: str):
    changed = _("Your email address has been changed.")
    try:
        # AccountError("email_taken"): another account took the address meanwhile (flashed).
        with state_change(errors=(services.AccountError,), success=changed):
            services.confirm_email_change(db.session, current_user, token)
    except TokenError as error:  # rolled back above
        if not error.expired:
            # Another account's link, or a used one: nothing to see here.
            abort(404)
        return render_template("accounts/link_problem.html", message=error.message), 400
    return redirect(url_for("accounts.profile"))


@bp.post("/profile/password")
@login_required
def change_password():
    form = forms.ChangePasswordForm(prefix="password")
    if form.validate_on_submit():
        user = current_user._get_current_object()
        with state_change(form, errors=(services.AccountError,)) as change:
            services.change_password(
                db.session, user, form.current_password.data, form.password.data
            )
        if change.ok:
            # This session stays logged in under the new password version; others end.
            remembered = request.cookies.get(
                current_app.config.get("REMEMBER_COOKIE_NAME", "remember_token")
            )
            login_user(user, remember=bool(remembered))
            flash(_("Your password has been changed."), "success")
            return redirect(url_for("accounts.profile"))
    return _profile_page(400, password_form=form)


# -- personal data ---------------------------------------------------------------------------


@bp.get("/profile/data.json")
@login_required
def download_data():
    data = services.personal_data(db.session, current_user)
    body = json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True)
    return Response(
        body,
        mimetype="application/json",
        headers={"Content-Disposition": 'attachment; filename="my-data.json"'},
    )


@bp.post("/profile/delete")
@login_required
def delete_account():
    form = forms.DeleteAccountForm(prefix="delete")
    if form.validate_on_submit():
        user = current_user._get_current_object()
        if services.check_password(user, form.password.data):
            services.delete_account(db.session, user)
            db.session.commit()
            logout_user()
            flash(_("Your account has been deleted."), "success")
            return redirect(url_for("events.home"))
        form.password.errors = [_("The password is not correct.")]
    return _profile_page(400, delete_form=form)
