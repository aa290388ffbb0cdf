"""GET /healthz: 200 with the database reachable, 503 otherwise."""

import sqlalchemy as sa
from flask import Blueprint, jsonify

from portal.db import db

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    try:
        with db.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:  # any failure to reach the database means "not healthy"
        return jsonify(status="unavailable", database=type(exc).__name__), 503
    return jsonify(status="ok", database="ok")
