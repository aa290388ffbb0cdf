"""The ceiling for the page benchmark: the whole portal app plus one minimal endpoint.

``gunicorn 'bench.ceiling:create_app()'`` serves every portal page *and* ``/bench/ceiling``, a
short text answer that touches neither the database nor a template. It pays the same WSGI,
Flask, extension and gunicorn cost as a page, so a page's requests per second divided by the
ceiling's is the share of the server's capacity left after the page's own work.
"""

from __future__ import annotations

from flask import Flask

from portal.app import create_app as create_portal_app


def create_app(overrides: dict | None = None) -> Flask:
    app = create_portal_app(overrides)

    @app.get("/bench/ceiling")
    def ceiling() -> str:
        return "ok"

    return app
