# ruff: noqa: F401
"""The old import path of the abstracts services; new code imports the named module.

``states`` (states, labels, errors), ``settings`` (the call's settings), ``markup`` (Markdown,
word count), ``timezones``, ``validation`` (what an author typed), ``authors`` (linking authors
to people), ``permissions`` (who may do what), ``emails``, ``submission``, ``review``
(assignment, conflicts, reviews), ``decisions``, ``scores``, ``queries``, ``book`` (book of
abstracts), ``export`` (CSV), ``personal`` (personal data).
"""

from __future__ import annotations

from plugins.abstracts.authors import (
    link_author,
    split_name,
)
from plugins.abstracts.book import (
    author_affiliations,
    book_abstracts,
)
from plugins.abstracts.decisions import (
    DECISIONS,
    accept_oral,
    accept_poster,
    reject,
    request_revision,
)
from plugins.abstracts.emails import (
    DECISION_KINDS,
    DEFAULT_BODIES,
    DEFAULT_SUBJECTS,
    EMAIL_KIND_LABELS,
    EMAIL_KINDS,
    PLACEHOLDERS,
    email_texts,
    email_wording,
    fill,
    save_email_text,
)
from plugins.abstracts.export import (
    export_csv,
)
from plugins.abstracts.markup import (
    ALLOWED_TAGS,
    CJK,
    plain_text,
    render_markdown,
    word_count,
)
from plugins.abstracts.permissions import (
    ORGANISERS_SEE,
    can_edit,
    edit_block,
    is_organiser,
    is_reviewer,
    is_submitter,
    new_block,
    organisers_see,
)
from plugins.abstracts.personal import (
    forget_person,
    personal_data,
)
from plugins.abstracts.queries import (
    HISTORY_LABELS,
    SORTS,
    SUBMITTER_ACTIONS,
    Progress,
    assigned_to,
    get_abstract,
    get_assignment,
    has_accepted,
    has_assignments,
    history,
    my_abstracts,
    organiser_list,
    progress,
    reviewer_may_see,
    submitter_history,
)
from plugins.abstracts.review import (
    CONFLICT_MESSAGES,
    AutoAssignResult,
    assign_reviewer,
    auto_assign,
    conflict,
    current_affiliations,
    flagged_conflict_count,
    flagged_conflicts,
    recheck_conflicts,
    reviewer_candidates,
    save_review,
    unassign,
)
from plugins.abstracts.scores import (
    ScoreSummary,
    score_summaries,
    summarise,
    summary_of,
)
from plugins.abstracts.settings import (
    CallSettings,
    Choice,
    call_settings,
    slug_key,
    update_settings,
)
from plugins.abstracts.states import (
    ACCEPTED,
    DECISION_FROM,
    EDITABLE_STATES,
    MAX_AUTHORS,
    PLUGIN,
    REVIEWER_VISIBLE,
    STATE_LABELS,
    SUBJECT,
    TITLE_MAX,
    TYPE_LABELS,
    UNDER_REVIEW,
    AbstractError,
    NotFound,
)
from plugins.abstracts.submission import (
    reopen,
    save_draft,
    submit,
    withdraw,
)
from plugins.abstracts.timezones import (
    country_zone,
    time_lines,
)
from plugins.abstracts.validation import (
    AbstractInput,
    AuthorInput,
    problems,
)
