"""create_app(): config → database → babel → login → CSRF → plugins → blueprints."""

from __future__ import annotations

from inspect import CO_COROUTINE
from types import FunctionType

from flask import Flask, abort, g, redirect, request, url_for
from flask_wtf.csrf import CSRFError

from portal import config as portal_config
from portal.db import db
from portal.extensions import babel, csrf, login_manager
from portal.i18n import LANGUAGES, select_locale
from portal.params import int_or_none

__all__ = ["babel", "create_app", "csrf", "login_manager"]  # old import path of the extensions


class Portal(Flask):
    """Flask that sees at once that a plain function is not ``async def``: Flask asks for the
    view and every request hook, context processor and teardown on each request (about 25
    times, ~150 Python calls a page); a plain function's code flags say it in one look."""

    def ensure_sync(self, func):
        if (
            type(func) is FunctionType
            and not func.__code__.co_flags & CO_COROUTINE
            and not hasattr(func, "_is_coroutine_marker")  # inspect.markcoroutinefunction
        ):
            return func
        return super().ensure_sync(func)


def create_app(overrides: dict | None = None) -> Flask:
    app = Portal(__name__, instance_path=str(portal_config.INSTANCE))
    app.config.update(portal_config.load(overrides))
    from portal import params, security

    params.init_app(app)  # <int:...> is bounded everywhere: before any route is added
    security.init_app(app)  # ProxyFix, rate limits, security headers
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(portal_config.TRANSLATIONS))
    app.config.setdefault("BABEL_DEFAULT_LOCALE", "ja")
    app.config.setdefault("WTF_I18N_ENABLED", True)
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)

    db.init_app(app)
    from portal import storage

    storage.init_app(app)  # files: local folder or S3 (portal/storage.py)
    from portal import logs

    logs.init_app(app)  # one JSON line per request, request id, Sentry (portal/logs.py)
    babel.init_app(app, locale_selector=select_locale)
    _init_login(app)
    csrf.init_app(app)
    _init_languages(app)

    from portal import plugins

    pm = plugins.make_plugin_manager(tuple(app.config.get("EXTRA_PLUGINS", ())))
    app.extensions["portal_plugins"] = pm
    # Celery (portal/tasks) is set up on first use: portal.tasks.celery_for(app).

    from portal import templating
    from portal.accounts.views import bp as accounts_bp
    from portal.events.views import bp as events_bp
    from portal.health import bp as health_bp
    from portal.organiser.views import bp as organiser_bp

    templating.init_app(app)
    for blueprint in (health_bp, events_bp, accounts_bp, organiser_bp):
        app.register_blueprint(blueprint)
    from portal.registration.views import init_app as init_registration

    init_registration(app)
    from portal.tickets.views import init_app as init_tickets

    init_tickets(app)
    from portal.programme.views import init_app as init_programme

    init_programme(app)
    from portal.speakers.views import admin as speaker_admin_bp
    from portal.speakers.views import bp as speakers_bp

    app.register_blueprint(speakers_bp)
    app.register_blueprint(speaker_admin_bp)
    from portal.mail.views import bp as mail_admin_bp

    app.register_blueprint(mail_admin_bp)
    from portal.payments.views import init_app as init_payments

    init_payments(app)
    from portal.announcements.views import init_app as init_announcements

    init_announcements(app)  # the list of a series and its announcements
    for blueprint in plugins.collect(pm.hook.blueprints()):
        app.register_blueprint(blueprint)

    from portal import cli

    cli.register(app)
    for command in plugins.collect(pm.hook.cli_commands()):
        app.cli.add_command(command)

    from portal import pagecache

    pagecache.init_app(app)

    from portal.errors import init_app as init_errors

    init_errors(app)
    return app


def _init_login(app: Flask) -> None:
    from flask_babel import lazy_gettext as _l

    from portal.accounts.models import User

    login_manager.init_app(app)
    login_manager.login_view = "accounts.login"
    login_manager.login_message = _l("Please log in to see this page.")
    login_manager.login_message_category = "info"

    @login_manager.user_loader
    def load_user(user_id: str):
        # The session stores "id:password-version" so a password change logs out everywhere.
        uid, _, stamp = user_id.partition(":")
        if int_or_none(uid) is None:
            return None
        user = db.session.get(User, int(uid))
        if user is None or user.get_id() != user_id:
            return None
        return user


def _init_languages(app: Flask) -> None:
    """Every public page lives under /ja/ or /en/; url_for fills the prefix in."""

    @app.url_value_preprocessor
    def pull_lang_code(endpoint, values):
        if values and "lang_code" in values:
            lang = values.pop("lang_code")
            if lang not in LANGUAGES:
                abort(404)
            g.lang_code = lang

    @app.url_defaults
    def add_lang_code(endpoint, values):
        if "lang_code" in values:
            return
        if app.url_map.is_endpoint_expecting(endpoint, "lang_code"):
            values["lang_code"] = g.get("lang_code") or select_locale()

    @app.route("/")
    def root():
        lang = request.accept_languages.best_match(LANGUAGES) or "ja"
        return redirect(url_for("events.home", lang_code=lang))

    @app.errorhandler(CSRFError)
    def csrf_error(error):
        from flask import flash, render_template
        from flask_babel import gettext as _

        flash(_("The form had expired. Please check your entries and send it again."), "error")
        return render_template("errors/error.html", code=400, message=error.description), 400
