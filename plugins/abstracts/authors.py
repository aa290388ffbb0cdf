"""Authors and speaker records: an author is linked to the one live person with their email
address (``portal.speakers.identity.person_by_email``) or exact name, else a new one.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from plugins.abstracts import files
from plugins.abstracts.markup import CJK
from plugins.abstracts.models import (
    Abstract,
    AbstractAuthor,
)
from plugins.abstracts.validation import AbstractInput, AuthorInput
from portal.accounts.models import Person
from portal.i18n import (
    BilingualText,
)
from portal.speakers import identity as speaker_identity
from portal.speakers import search as speaker_search
from portal.speakers import services as speakers


def split_name(name: str) -> dict:
    """A name as typed: Japanese script → family and given name; Latin → romanised name."""
    name = " ".join((name or "").split())
    if CJK.search(name):
        family, _sep, given = name.partition(" ")
        return {"family_name": family, "given_name": given}
    return {"romanized_name": name}


def _person_by_name(session: Session, name: str) -> Person | None:
    """The one speaker record with exactly this name (None when none or several)."""
    values = split_name(name)
    found = speakers.likely_duplicates_of(session, values)
    probe = Person(
        **{k: values.get(k, "") for k in ("family_name", "given_name", "romanized_name")}
    )
    exact = [
        p
        for p in found
        if p.person.anonymised_at is None
        and (
            (speaker_search.native_name(probe) and p.name_key == speaker_search.native_name(probe))
            or (
                speaker_search.roman_key(probe.romanized_name)
                and p.roman_key == speaker_search.roman_key(probe.romanized_name)
            )
        )
    ]
    return exact[0].person if len(exact) == 1 else None


def link_author(
    session: Session, author: AuthorInput, submitter: Person, actor, create: bool
) -> Person | None:
    """The speaker record for an author: by email, else by an unambiguous name, else new."""
    email = author.email.strip().lower()
    if email and email in {
        (submitter.email or "").lower(),
        (submitter.user.email if submitter.user else "").lower(),
    }:
        return submitter
    person = (
        speaker_identity.person_by_email(session, email)
        if email
        else _person_by_name(session, author.name)
    )
    if person is not None or not create:
        return person
    values = dict(split_name(author.name))
    values["email"] = email
    values["preferred_language"] = submitter.preferred_language
    profile = speakers.create_speaker(session, values, actor)
    profile.person.affiliation = author.affiliation.strip()[:200]
    return profile.person


def _set_authors(session: Session, abstract: Abstract, data: AbstractInput, actor, create: bool):
    submitter = abstract.submitter
    abstract.authors.clear()
    session.flush()
    position = 0
    for author in data.authors:
        if author.is_blank:
            continue
        position += 1
        person = link_author(session, author, submitter, actor, create)
        abstract.authors.append(
            AbstractAuthor(
                position=position,
                person_id=person.id if person is not None else None,
                name=" ".join(author.name.split())[:200],
                affiliation=author.affiliation.strip()[:200],
                email=author.email.strip().lower()[:254],
                presenting=bool(author.presenting),
            )
        )


def _apply(session: Session, abstract: Abstract, data: AbstractInput, actor, create: bool):
    abstract.title = BilingualText(ja=data.title.ja.strip(), en=data.title.en.strip())
    abstract.body = BilingualText(ja=data.body.ja.strip(), en=data.body.en.strip())
    abstract.language = data.language
    abstract.topic = data.topic or ""
    abstract.presentation_type = data.presentation_type
    _set_authors(session, abstract, data, actor, create)
    if data.pdf is not None:
        files.remove_after_commit(session, abstract.pdf_name)
        abstract.pdf_name = files.store(session, data.pdf)
        abstract.pdf_filename = data.pdf.filename
        abstract.pdf_size = len(data.pdf.data)
    elif data.remove_pdf and abstract.pdf_name:
        files.remove_after_commit(session, abstract.pdf_name)
        abstract.pdf_name = None
        abstract.pdf_filename = ""
        abstract.pdf_size = None
