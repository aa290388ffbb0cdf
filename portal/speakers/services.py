# ruff: noqa: F401
"""The old import path of the speaker services; new code imports the named module.

- ``portal.speakers.records``: reading, searching and changing a record.
- ``portal.speakers.identity``: ``resolve`` (follows merges), ``person_by_email``.
- ``portal.speakers.invitations``: invitation links and emails.
- ``portal.speakers.merge``: merging two records; likely duplicates.
- ``portal.speakers.export``: the CSV export.
- ``portal.speakers.personal_data``: data download and erasure.
"""

from __future__ import annotations

from portal.speakers.export import (
    CSV_COLUMNS,
    speakers_csv_rows,
)
from portal.speakers.identity import person_by_email, resolve
from portal.speakers.invitations import (
    INVITATION_MAX_AGE,
    INVITATION_SALT,
    InvitationError,
    LinkError,
    invitation_token,
    invitation_url,
    invite_speaker,
    link_speaker_to_account,
    load_invitation,
)
from portal.speakers.merge import (
    DUPLICATE_REASONS,
    MERGE_SKIP,
    PERSON_MERGE_FIELDS,
    TABLE_LABELS,
    DuplicatePair,
    field_label,
    find_duplicates,
    merge_conflicts,
    merge_speakers,
    merges,
    merges_of,
    moved_label,
    people_references,
    registration_clashes,
)
from portal.speakers.personal_data import (
    forget_speaker,
    speaker_personal_data,
)
from portal.speakers.records import (
    ORGANISER_PERSON_FIELDS,
    PERSON_FIELDS,
    PHOTO_FIELDS,
    PROFILE_TEXT_FIELDS,
    MergeError,
    SpeakerError,
    TalkEntry,
    add_affiliation,
    affiliation_label,
    attach_speaker,
    create_speaker,
    create_speaker_for_talk,
    current_affiliations,
    ensure_profile,
    get_profile,
    has_speaker_data,
    is_editor,
    likely_duplicates_of,
    likely_duplicates_of_record,
    photos_after_commit,
    reindex,
    remove_photo,
    search_speakers,
    set_talk_self_introduction,
    speaker_talks,
    speakers_page,
    talk_entries,
    talk_self_introduction,
    upcoming_talks,
    update_speaker,
)
