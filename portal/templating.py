"""Jinja filters and globals: bilingual text, dates, money, names, plugin hooks, languages."""

from __future__ import annotations

from flask import Flask, g, request, url_for

from portal import i18n, plugins


def lang_switch_url(lang: str) -> str:
    """The current page in another language (same endpoint, same arguments)."""
    if request.endpoint and request.url_rule and "lang_code" in request.url_rule.arguments:
        # The path's own values win over query arguments of the same name (?person_id=…).
        args = request.args.to_dict(flat=True)
        args.update(request.view_args or {})
        args["lang_code"] = lang
        return url_for(request.endpoint, **args)
    return url_for("events.home", lang_code=lang)


def tr(value, default: str | None = None) -> str:
    """Bilingual text in the reader's language, with the written fallback order."""
    if value is None:
        return ""
    return i18n.BilingualText.of(value).get(i18n.current_language(), default)


def talk_links(talk, event=None) -> list:
    """Links beside a talk (the event-scoped hook ``talk_links(talk, user)``, which takes no
    ``event`` argument): only the plugins enabled on the talk's event answer."""
    from flask_login import current_user

    event = event if event is not None else talk.event
    return plugins.collect(plugins.event_hooks(event).talk_links(talk=talk, user=current_user))


def _translations():
    """The catalogue of the current locale, looked up once per request and locale.

    flask-babel's own lookup walks its context three times per ``_()`` (about 60 per page);
    this one remembers the catalogue beside the locale object flask-babel keeps for the
    request, so ``force_locale`` (emails in the recipient's language) still switches it.
    """
    import flask_babel
    from flask.globals import _cv_app

    ctx = _cv_app.get(None)
    if ctx is None:
        return flask_babel.get_translations()
    store = ctx.g.__dict__
    babel_ctx = store.get("_flask_babel")
    locale = getattr(babel_ctx, "babel_locale", None)
    hit = store.get("_portal_translations")
    if hit is not None and locale is not None and hit[0] is locale:
        return hit[1]
    translations = flask_babel.get_translations()
    store["_portal_translations"] = (flask_babel.get_locale(), translations)
    return translations


def init_app(app: Flask) -> None:
    app.jinja_env.install_gettext_callables(
        gettext=lambda s: _translations().ugettext(s),
        ngettext=lambda s, p, n: _translations().ungettext(s, p, n),
        newstyle=True,
        pgettext=lambda c, s: _translations().upgettext(c, s),
        npgettext=lambda c, s, p, n: _translations().unpgettext(c, s, p, n),
    )
    app.jinja_env.filters.update(
        tr=tr,
        date=i18n.format_date,
        short_date=i18n.format_short_date,
        time=i18n.format_time,
        datetime=i18n.format_datetime,
        deadline=i18n.format_deadline,
        zone=i18n.format_zone,
        zone_suffix=i18n.zone_suffix,
        label=i18n.label,
        money=i18n.format_money,
        person_name=i18n.format_person_name,
    )

    @app.context_processor
    def portal_globals():
        return {
            "lang": i18n.current_language(),
            "other_lang": i18n.other_language(i18n.current_language()),
            "lang_switch_url": lang_switch_url,
            "event_hook": plugins.call_event_hook,
            "render_blocks": plugins.render_blocks,
            "talk_links": talk_links,
            "LANGUAGES": i18n.LANGUAGES,
            "in_lang_prefix": "lang_code" in g,
        }
