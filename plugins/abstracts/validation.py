"""What an author typed (``AbstractInput``, ``AuthorInput``) and the problems with it, per field."""

from __future__ import annotations

from dataclasses import dataclass, field

from flask_babel import lazy_gettext as _l

from plugins.abstracts import files
from plugins.abstracts.markup import word_count
from plugins.abstracts.settings import CallSettings
from plugins.abstracts.states import MAX_AUTHORS, TITLE_MAX, AbstractError
from portal.i18n import (
    LANGUAGES,
    BilingualText,
)


@dataclass
class AuthorInput:
    name: str = ""
    affiliation: str = ""
    email: str = ""
    presenting: bool = False

    @property
    def is_blank(self) -> bool:
        return not (self.name.strip() or self.affiliation.strip() or self.email.strip())


@dataclass
class AbstractInput:
    title: BilingualText = field(default_factory=BilingualText)
    body: BilingualText = field(default_factory=BilingualText)
    language: str = "en"
    topic: str = ""
    presentation_type: str = "oral"
    authors: list[AuthorInput] = field(default_factory=list)
    pdf: files.PdfUpload | None = None
    remove_pdf: bool = False


def problems(data: AbstractInput, settings: CallSettings, submitting: bool) -> dict[str, list]:
    """What is wrong with the input, by field name (empty when all is well).

    A draft needs a title; a submission needs everything, within the word limit.
    """
    found: dict[str, list] = {}

    def add(name: str, message) -> None:
        found.setdefault(name, []).append(message)

    if not (data.title.ja.strip() or data.title.en.strip()):
        add("title_en", _l("Please enter the title in Japanese or in English."))
    for lang in LANGUAGES:
        if len(getattr(data.title, lang)) > TITLE_MAX:
            add(
                f"title_{lang}",
                _l("The title is too long (at most %(max)d characters).", max=TITLE_MAX),
            )
    if data.language not in LANGUAGES:
        add("language", _l("Please choose the language of the presentation."))
    if settings.topics and data.topic and data.topic not in {t.key for t in settings.topics}:
        add("topic", _l("Please choose one of the topics."))
    if data.presentation_type not in settings.presentation_types:
        add("presentation_type", _l("Please choose one of the presentation types."))
    if data.pdf is not None and not settings.allow_pdf:
        add("pdf", _l("This call does not accept attached files."))
    authors = [a for a in data.authors if not a.is_blank]
    if len(authors) > MAX_AUTHORS:
        add("authors", _l("At most %(max)d authors.", max=MAX_AUTHORS))
    for index, author in enumerate(data.authors):
        if not author.is_blank and not author.name.strip():
            add(f"authors-{index}-name", _l("Please enter the author's name."))
    if settings.word_limit:
        for lang in LANGUAGES:
            count = word_count(getattr(data.body, lang))
            if count > settings.word_limit:
                add(
                    f"body_{lang}",
                    _l(
                        "The abstract has %(count)d words; the limit is %(limit)d words.",
                        count=count,
                        limit=settings.word_limit,
                    ),
                )
    if submitting:
        if not (data.body.ja.strip() or data.body.en.strip()):
            add("body_en", _l("Please write the abstract in Japanese or in English."))
        if settings.topics and not data.topic:
            add("topic", _l("Please choose one of the topics."))
        if not authors:
            add("authors", _l("Please enter at least one author."))
        elif sum(1 for a in authors if a.presenting) != 1:
            add("presenting", _l("Please mark exactly one presenting author."))
    return found


def _raise_first(found: dict[str, list]) -> None:
    if found:
        name, messages = next(iter(found.items()))
        raise AbstractError(messages[0], field=name)
