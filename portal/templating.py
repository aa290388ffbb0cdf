"""Jinja filters and globals: bilingual text, dates, money, names, plugin hooks, languages."""

from __future__ import annotations

from flask import Flask, g, request, url_for
from flask_babel import gettext
from jinja2 import pass_context
from markupsafe import Markup, escape
from wtforms import Form
from wtforms.widgets import ListWidget

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


def tr_lang(value, default: str | None = None) -> Markup:
    """Like ``tr``, for element content: text shown in the other language than the page (a
    Japanese-only title on an English page) is wrapped in ``<span lang="ja">`` so that screen
    readers and fonts switch language. Not for attributes, ``<title>`` or ``<option>``."""
    if value is None:
        return Markup("")
    page = i18n.current_language()
    shown, text = i18n.BilingualText.of(value).resolve(page, default)
    if text and shown != page:
        return Markup('<span lang="%s">%s</span>') % (shown, text)
    return escape(text)


def _error_target(field) -> str | None:
    """The id a summary link points at: the input itself (the first choice of a radio list)."""
    if field.type in ("HiddenField", "CSRFTokenField"):
        return None
    if field.type == "RadioField" or isinstance(field.widget, ListWidget):
        return f"{field.id}-0"
    return field.id


def _field_errors(form, out: list) -> None:
    for field in form._fields.values():
        if getattr(field, "type", "") == "FormField":
            _field_errors(field.form, out)
            continue
        if getattr(field, "type", "") == "FieldList":
            for entry in field.entries:
                if hasattr(entry, "form"):
                    _field_errors(entry.form, out)
                elif _flat(entry.errors):
                    out.append((_error_target(entry), entry.label.text, None))
            continue
        if field.type == "CSRFTokenField" and field.errors:
            expired = gettext("The form had expired. Please check your entries and send it again.")
            out.append((None, None, expired))
            continue
        messages = _flat(field.errors)
        if not messages:
            continue
        target = _error_target(field)
        if target is None:  # a hidden field: its message is shown nowhere else
            out.extend((None, None, message) for message in messages)
        else:  # the message stands beside the field; the summary links to it once
            out.append((target, field.label.text, None))
    for message in getattr(form, "form_errors", None) or ():
        out.append((None, None, message))


def _flat(errors) -> list[str]:
    if isinstance(errors, dict):
        return [m for v in errors.values() for m in _flat(v)]
    result = []
    for error in errors or ():
        result.extend(_flat(error) if isinstance(error, list | dict) else [error])
    return result


@pass_context
def form_error_summary(context) -> list[tuple[str | None, str | None, str | None]]:
    """The errors of the forms handed to the page, for the one error summary
    (``role="alert"``) that ``base.html`` shows above the content: ``(field id, label, None)``
    for an invalid field (its message stands beside it) and ``(None, None, message)`` for an
    error no field shows (an expired form, a form-wide error)."""
    out: list = []
    seen: set[int] = set()
    for value in context.get_all().values():
        if isinstance(value, Form) and id(value) not in seen and value.errors:
            seen.add(id(value))
            _field_errors(value, out)
    return out


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


@pass_context
def _template_gettext(context, string: str, **variables):
    """Jinja's newstyle ``gettext``: the translation (Markup when autoescaping) formatted with
    ``variables`` (always as a format string, so ``%%`` is ``%``), in one call."""
    rv = _translations().ugettext(string)
    if context.eval_ctx.autoescape:
        rv = Markup(rv)
    return rv % variables if variables or "%" in rv else rv


def init_app(app: Flask) -> None:
    app.jinja_env.install_gettext_callables(
        gettext=lambda s: _translations().ugettext(s),
        ngettext=lambda s, p, n: _translations().ungettext(s, p, n),
        newstyle=True,
        pgettext=lambda c, s: _translations().upgettext(c, s),
        npgettext=lambda c, s, p, n: _translations().unpgettext(c, s, p, n),
    )
    # ``_()`` and ``gettext()`` without Jinja's two extra context calls per string (about a
    # hundred strings per page): the same result as the newstyle callables installed above.
    app.jinja_env.globals["_"] = app.jinja_env.globals["gettext"] = _template_gettext
    app.jinja_env.filters.update(
        tr=tr,
        tr_lang=tr_lang,
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

    app.jinja_env.globals["form_error_summary"] = form_error_summary

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
