"""Jinja filters and globals: bilingual text, dates, money, names, plugin hooks, languages."""

from __future__ import annotations

from flask import Flask, g, request, url_for

from portal import i18n, plugins


def lang_switch_url(lang: str) -> str:
    """The current page in another language (same endpoint, same arguments)."""
    if request.endpoint and request.url_rule and "lang_code" in request.url_rule.arguments:
        args = dict(request.view_args or {})
        args.update(request.args.to_dict(flat=True))
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


def init_app(app: Flask) -> None:
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
