"""Institutions: one record per university, company or institute, whatever language or
spelling it was typed in.

An ``Institution`` has a name in both languages, aliases and optionally a ROR identifier.
Every name and alias is kept folded (``institution_key``: ``portal.text.fold``, without spaces
or punctuation) in ``institution_names``, so "Tohoku University", "TOHOKU UNIV" (if an alias)
and 東北大学 find the same record.

People keep their affiliation as typed (``people.affiliation``, ``speaker_affiliations.
organisation``) and point to the institution it names (``institution_id``). A session
listener (``install``) matches the typed text whenever it changes, and after the flush tells
the plugins which people's institution changed (hook ``affiliation_changed``: the abstracts
plugin re-checks review assignments for new conflicts of interest). Creating or editing an
institution links the people whose typed affiliation it now names; merging two moves every
reference to the survivor.
"""

from __future__ import annotations

import re
from itertools import chain

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session, selectinload

from portal import audit
from portal.accounts.models import Person
from portal.db import follow_merges, utcnow
from portal.i18n import BilingualText
from portal.speakers.models import Affiliation, Institution, InstitutionName
from portal.speakers.records import SpeakerError
from portal.text import fold, like_pattern

ROR_PATTERN = re.compile(r"^(?:https?://ror\.org/)?(0[a-z0-9]{6}[0-9]{2})/?$")


class InstitutionError(SpeakerError):
    pass


def institution_key(text: str | None) -> str:
    """A name folded for matching: 「東北大学」, "Tohoku University", "tohoku-university" and
    "ＴＯＨＯＫＵ　ＵＮＩＶＥＲＳＩＴＹ" each give one key per spelling."""
    return re.sub(r"[\W_]+", "", fold(text))[:200]


def normalise_ror(value: str | None) -> str | None:
    """A ROR identifier (9 characters) from an identifier or its https://ror.org/ address."""
    value = (value or "").strip().lower()
    if not value:
        return None
    match = ROR_PATTERN.match(value)
    if match is None:
        raise InstitutionError(
            _l("Please enter a ROR identifier such as https://ror.org/01dq60k83."), field="ror_id"
        )
    return match.group(1)


# -- matching typed text ------------------------------------------------------------------------


def institution_index(session: Session) -> dict[str, int]:
    """Every live institution's folded names and aliases → its id (a key that names two
    institutions names neither)."""
    index: dict[str, int] = {}
    ambiguous: set[str] = set()
    rows = session.execute(
        sa.select(InstitutionName.key, InstitutionName.institution_id)
        .join(Institution, Institution.id == InstitutionName.institution_id)
        .where(Institution.merged_into_id.is_(None))
    )
    for key, institution_id in rows:
        if index.get(key, institution_id) != institution_id:
            ambiguous.add(key)
        index[key] = institution_id
    for key in ambiguous:
        del index[key]
    return index


def match_institution(session: Session, *texts: str | None) -> int | None:
    """The institution a typed affiliation names (the first text that names one), or None."""
    keys = [k for k in (institution_key(t) for t in texts) if k]
    if not keys:
        return None
    rows = session.execute(
        sa.select(InstitutionName.key, InstitutionName.institution_id)
        .join(Institution, Institution.id == InstitutionName.institution_id)
        .where(InstitutionName.key.in_(keys), Institution.merged_into_id.is_(None))
    ).all()
    found: dict[str, set[int]] = {}
    for key, institution_id in rows:
        found.setdefault(key, set()).add(institution_id)
    for key in keys:
        ids = found.get(key, set())
        if len(ids) == 1:
            return next(iter(ids))
    return None


# -- records ----------------------------------------------------------------------------------


def _clean_aliases(aliases) -> list[str]:
    seen, out = set(), []
    for alias in aliases or []:
        text = " ".join((alias or "").split())[:200]
        if text and institution_key(text) and institution_key(text) not in seen:
            seen.add(institution_key(text))
            out.append(text)
    return out


def _set_names(institution: Institution, name: BilingualText, aliases) -> None:
    """Rebuild the institution's names: its two names first, then the aliases."""
    wanted: list[tuple[str, bool]] = [(t, False) for t in (name.ja, name.en) if t.strip()]
    wanted += [(t, True) for t in _clean_aliases(aliases)]
    by_key: dict[str, tuple[str, bool]] = {}
    for text, alias in wanted:
        by_key.setdefault(institution_key(text), (text.strip(), alias))
    by_key.pop("", None)
    existing = {n.key: n for n in institution.names}
    for key, row in existing.items():
        if key not in by_key:
            institution.names.remove(row)
    for key, (text, alias) in by_key.items():
        row = existing.get(key)
        if row is None:
            institution.names.append(InstitutionName(text=text, key=key, alias=alias))
        else:
            row.text, row.alias = text, alias


def _check(session: Session, institution: Institution | None, name: BilingualText, ror_id):
    if not (name.ja.strip() or name.en.strip()):
        raise InstitutionError(_l("Please enter the institution's name."), field="name_ja")
    if ror_id:
        other = session.scalar(
            sa.select(Institution).where(
                Institution.ror_id == ror_id,
                Institution.id != (institution.id if institution and institution.id else 0),
            )
        )
        if other is not None:
            raise InstitutionError(
                _l("Another institution already has this ROR identifier."), field="ror_id"
            )


def _link_people(session: Session, institution: Institution) -> int:
    """Point the typed affiliations that name this institution (and point nowhere) at it."""
    session.flush()
    keys = {n.key for n in institution.names}
    count = 0
    people = session.scalars(
        sa.select(Person).where(
            Person.institution_id.is_(None),
            Person.affiliation != "",
            Person.anonymised_at.is_(None),
        )
    )
    for person in people:
        if institution_key(person.affiliation) in keys:
            person.institution_id = institution.id
            count += 1
    for affiliation in session.scalars(
        sa.select(Affiliation).where(Affiliation.institution_id.is_(None))
    ):
        organisation = affiliation.organisation
        if {institution_key(organisation.ja), institution_key(organisation.en)} & keys:
            affiliation.institution_id = institution.id
            count += 1
    return count


def create_institution(
    session: Session, name: BilingualText, aliases, ror_id: str | None, actor
) -> Institution:
    ror_id = normalise_ror(ror_id)
    name = BilingualText(ja=name.ja.strip(), en=name.en.strip())
    _check(session, None, name, ror_id)
    institution = Institution(name=name, ror_id=ror_id)
    session.add(institution)
    _set_names(institution, name, aliases)
    session.flush()
    linked = _link_people(session, institution)
    audit.record(
        session, actor, "institution", institution.id, "created", name=name.as_dict(),
        aliases=institution.aliases, ror_id=ror_id, linked=linked,
    )  # fmt: skip
    return institution


def update_institution(
    session: Session, institution: Institution, name: BilingualText, aliases, ror_id, actor
) -> Institution:
    if institution.is_merged:
        raise InstitutionError(_l("This institution has been merged into another one."))
    ror_id = normalise_ror(ror_id)
    name = BilingualText(ja=name.ja.strip(), en=name.en.strip())
    _check(session, institution, name, ror_id)
    old = {"name": institution.name.as_dict(), "aliases": institution.aliases}
    institution.name, institution.ror_id = name, ror_id
    _set_names(institution, name, aliases)
    linked = _link_people(session, institution)
    audit.record(
        session, actor, "institution", institution.id, "changed", old=old,
        name=name.as_dict(), aliases=institution.aliases, ror_id=ror_id, linked=linked,
    )  # fmt: skip
    return institution


def merge_institutions(
    session: Session, survivor: Institution, merged: Institution, actor
) -> Institution:
    """Merge ``merged`` into ``survivor``: its names become aliases of the survivor, every
    person and affiliation pointing to it points to the survivor, an empty name or ROR
    identifier of the survivor is filled, and the other record is marked merged."""
    if survivor.id == merged.id:
        raise InstitutionError(_l("A record cannot be merged into itself."))
    if survivor.is_merged or merged.is_merged:
        raise InstitutionError(_l("One of these records has already been merged."))
    name = BilingualText(
        ja=survivor.name.ja or merged.name.ja, en=survivor.name.en or merged.name.en
    )
    aliases = [*survivor.aliases, *(n.text for n in merged.names)]
    ror_id = survivor.ror_id or merged.ror_id
    merged.ror_id = None
    session.flush()
    people = session.execute(
        sa.update(Person)
        .where(Person.institution_id == merged.id)
        .values(institution_id=survivor.id)
    ).rowcount
    affiliations = session.execute(
        sa.update(Affiliation)
        .where(Affiliation.institution_id == merged.id)
        .values(institution_id=survivor.id)
    ).rowcount
    merged.merged_into_id = survivor.id
    merged.merged_at = utcnow()
    survivor.name, survivor.ror_id = name, ror_id
    _set_names(survivor, name, aliases)
    session.flush()
    linked = _link_people(session, survivor)
    audit.record(
        session, actor, "institution", survivor.id, "merged", merged_id=merged.id,
        people=people, affiliations=affiliations, linked=linked,
    )  # fmt: skip
    audit.record(session, actor, "institution", merged.id, "merged_into", into=survivor.id)
    # Two institutions became one: colleagues of both may now have conflicts of interest.
    ids = set(
        session.scalars(sa.select(Person.id).where(Person.institution_id == survivor.id))
    ) | set(
        session.scalars(
            sa.select(Affiliation.person_id).where(Affiliation.institution_id == survivor.id)
        )
    )
    notify_changed(session, ids)
    return survivor


def institutions_page(session: Session, query: str = "") -> sa.Select:
    """Live institutions matching the query (any name or alias), by name."""
    stmt = (
        sa.select(Institution)
        .where(Institution.merged_into_id.is_(None))
        .options(selectinload(Institution.names))
        .order_by(Institution.id)
    )
    key = institution_key(query)
    if key:
        stmt = stmt.where(
            Institution.id.in_(
                sa.select(InstitutionName.institution_id).where(
                    InstitutionName.key.like(like_pattern(key), escape="\\")
                )
            )
        )
    return stmt


def people_counts(session: Session, institution_ids) -> dict[int, int]:
    """How many live people point to each of these institutions, through their affiliation or
    an entry of their affiliation history (one query)."""
    ids = list(institution_ids)
    if not ids:
        return {}
    links = sa.union(
        sa.select(Person.institution_id.label("iid"), Person.id.label("pid")).where(
            Person.institution_id.in_(ids)
        ),
        sa.select(Affiliation.institution_id, Affiliation.person_id).where(
            Affiliation.institution_id.in_(ids)
        ),
    ).subquery()
    rows = session.execute(
        sa.select(links.c.iid, sa.func.count(sa.distinct(links.c.pid)))
        .join(Person, Person.id == links.c.pid)
        .where(Person.anonymised_at.is_(None))
        .group_by(links.c.iid)
    )
    return dict(rows.all())


def institutions_by_id(session: Session, ids) -> dict[int, Institution]:
    """These institutions by id (one query; unknown and None ids are left out)."""
    wanted = {i for i in ids if i}
    if not wanted:
        return {}
    found = session.scalars(sa.select(Institution).where(Institution.id.in_(wanted)))
    return {i.id: i for i in found}


def resolve_institution(session: Session, institution_id: int) -> int:
    return follow_merges(session, Institution.id, Institution.merged_into_id, institution_id)


# -- keeping the links current ----------------------------------------------------------------

_CHANGED = "institutions_changed"  # person ids whose institution (or affiliation) changed


def _before_flush(session: Session, flush_context, instances) -> None:
    for obj in list(chain(session.new, session.dirty)):
        if isinstance(obj, Person):
            state = sa.inspect(obj)
            typed = state.attrs["affiliation"].history.has_changes()
            chosen = state.attrs["institution_id"].history.has_changes()
            if (typed or obj in session.new) and not chosen:
                with session.no_autoflush:
                    found = match_institution(session, obj.affiliation)
                if obj.institution_id != found:
                    obj.institution_id = found
        elif isinstance(obj, Affiliation):
            state = sa.inspect(obj)
            typed = state.attrs["organisation"].history.has_changes()
            chosen = state.attrs["institution_id"].history.has_changes()
            if (typed or obj in session.new) and not chosen:
                with session.no_autoflush:
                    found = match_institution(session, obj.organisation.ja, obj.organisation.en)
                if obj.institution_id != found:
                    obj.institution_id = found


def _after_flush(session: Session, _flush_context) -> None:
    changed = session.info.setdefault(_CHANGED, set())
    for obj in chain(session.new, session.dirty):
        if isinstance(obj, Person):
            state = sa.inspect(obj)
            if obj not in session.new and (
                state.attrs["institution_id"].history.has_changes()
                or state.attrs["affiliation"].history.has_changes()
            ):
                changed.add(obj.id)
        elif isinstance(obj, Affiliation):
            state = sa.inspect(obj)
            if obj in session.new or any(
                state.attrs[n].history.has_changes()
                for n in ("institution_id", "organisation", "ended_on", "started_on")
            ):
                changed.add(obj.person_id)
    for obj in session.deleted:
        if isinstance(obj, Affiliation):
            changed.add(obj.person_id)
    changed.discard(None)


def _after_flush_postexec(session: Session, _flush_context) -> None:
    changed = session.info.pop(_CHANGED, set())
    if changed:
        with session.no_autoflush:
            notify_changed(session, changed)


def notify_changed(session: Session, person_ids) -> None:
    """Tell the plugins (hook ``affiliation_changed``) whose affiliation changed."""
    ids = sorted(set(person_ids))
    if not ids:
        return
    _plugin_manager().hook.affiliation_changed(session=session, person_ids=ids)


_FALLBACK = []


def _plugin_manager():
    """The app's plugin manager; outside a request (scripts, tests) the built-in plugins."""
    from flask import current_app, has_app_context

    from portal import plugins

    if has_app_context() and "portal_plugins" in current_app.extensions:
        return current_app.extensions["portal_plugins"]
    if not _FALLBACK:
        _FALLBACK.append(plugins.make_plugin_manager())
    return _FALLBACK[0]


def install() -> None:
    """Listen to every ORM session (once)."""
    if not sa_event.contains(Session, "before_flush", _before_flush):
        sa_event.listen(Session, "before_flush", _before_flush)
        sa_event.listen(Session, "after_flush", _after_flush)
        sa_event.listen(Session, "after_flush_postexec", _after_flush_postexec)
