"""The abstracts as CSV for the office (formula-safe cells)."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from plugins.abstracts.queries import organiser_list
from plugins.abstracts.scores import score_summaries
from plugins.abstracts.settings import call_settings
from portal.csvexport import safe_cell
from portal.events.models import Event


def export_csv(session: Session, event: Event) -> str:
    """Every abstract but drafts, with scores and decisions (UTF-8 with BOM for Excel)."""
    settings = call_settings(event)
    abstracts = list(session.scalars(organiser_list(event)).unique())
    summaries = score_summaries(session, abstracts)
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    header = [
        "id", "state", "title_ja", "title_en", "topic", "requested_type", "language",
        "presenting_author", "authors", "affiliations", "submitted_at", "decided_at",
        "reviewers", "reviews", "mean", "stdev", "min", "max",
    ]  # fmt: skip
    header += [f"mean_{c.key}" for c in settings.criteria]
    writer.writerow(header)
    for abstract in abstracts:
        s = summaries[abstract.id]
        presenting = abstract.presenting_author
        affiliations = []
        for author in abstract.authors:
            if author.affiliation and author.affiliation not in affiliations:
                affiliations.append(author.affiliation)
        row = [
            abstract.id,
            abstract.state.value,
            abstract.title.ja,
            abstract.title.en,
            settings.topic_label(abstract.topic, "en") if abstract.topic else "",
            abstract.presentation_type,
            abstract.language,
            presenting.name if presenting else "",
            "; ".join(a.name for a in abstract.authors),
            "; ".join(affiliations),
            _csv_time(abstract.submitted_at, event),
            _csv_time(abstract.decided_at, event),
            s.assigned,
            s.count,
            _num(s.mean),
            _num(s.stdev),
            _num(s.low),
            _num(s.high),
        ]
        row += [_num(s.by_criterion.get(c.key)) for c in settings.criteria]
        writer.writerow([_safe_cell(v) for v in row])
    return out.getvalue()


def _num(value) -> str:
    return "" if value is None else f"{value:.2f}"


def _csv_time(value: datetime | None, event: Event) -> str:
    if value is None:
        return ""
    return value.astimezone(ZoneInfo(event.timezone)).strftime("%Y-%m-%d %H:%M")


_safe_cell = safe_cell
