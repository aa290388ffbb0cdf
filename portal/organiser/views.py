"""Organiser pages (placeholder index until the organiser area is built)."""

from flask import Blueprint, abort, render_template
from flask_login import current_user, login_required

bp = Blueprint("organiser", __name__, url_prefix="/<lang_code>/organiser")


@bp.get("/")
@login_required
def index():
    if not current_user.is_organiser:
        abort(403)
    return render_template("organiser/index.html")
