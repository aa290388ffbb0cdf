"""Accounts (minimal: log in and out; the accounts area completes this)."""

import sqlalchemy as sa
from flask import Blueprint, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user

from portal.accounts.models import User
from portal.accounts.passwords import verify_password
from portal.db import db

bp = Blueprint("accounts", __name__, url_prefix="/<lang_code>/account")


@bp.route("/login", methods=["GET", "POST"])
def login():
    if request.method == "POST":
        email = request.form.get("email", "").strip().lower()
        user = db.session.scalar(sa.select(User).where(User.email == email))
        if user and verify_password(user.password_hash, request.form.get("password", "")):
            login_user(user)
            return redirect(url_for("events.home"))
    return render_template("accounts/login.html")


@bp.post("/logout")
def logout():
    logout_user()
    return redirect(url_for("events.home"))


@bp.get("/signup")
def signup():
    return render_template("accounts/login.html")


@bp.get("/profile")
@login_required
def profile():
    return render_template("accounts/login.html", user=current_user)
