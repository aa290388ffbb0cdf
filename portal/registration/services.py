# ruff: noqa: F401
"""The old import path of the registration services; new code imports the named module.

States: pending_payment (支払い待ち), confirmed (確定), waitlisted (キャンセル待ち),
cancelled (取消) and attended (出席). Every public function that changes a registration
serialises on the event, checks the move, writes an audit entry, queues the email and calls
the ``registration_changed`` hook; none commits (the caller commits once).

- ``labels``: display labels of states, actions, modes, sectors.
- ``errors``: ``RegistrationError`` and its kinds.
- ``fees``: settings, fee categories, prices, plugin fields and payment methods.
- ``choices``: checking the mode, category and answers a person chose.
- ``seats``: seats held and left, places on the waiting list; ``lock_event``.
- ``transitions``: the one place a state changes (``ALLOWED_MOVES``).
- ``waitlist``: when a waitlisted person moves up.
- ``signup``: ``register``, ``organiser_add``.
- ``changes``: confirm, mark_paid, reprice, cancel, check_in, switch_mode, expire_unpaid,
  change_state_by_organiser.
- ``people``: person search and guest people.
- ``queries``: reading registrations.
"""

from __future__ import annotations

from portal.links import external_url
from portal.registration.changes import (
    cancel,
    change_state_by_organiser,
    check_in,
    confirm,
    expire_unpaid,
    mark_paid,
    reprice,
    switch_mode,
    waitlist,
)
from portal.registration.choices import (
    clean_answers,
)
from portal.registration.errors import (
    AlreadyRegistered,
    InvalidChoice,
    MembershipRequired,
    NoPlaceAvailable,
    RegistrationClosed,
    RegistrationError,
    TransitionNotAllowed,
)
from portal.registration.fees import (
    DEFAULT_PAYMENT_DAYS,
    compute_price_lines,
    fee_categories,
    is_member,
    payment_methods,
    registration_fields,
    save_fee_category,
    set_fee_category_active,
    settings_for,
    update_settings,
)
from portal.registration.labels import (
    ACTION_LABELS,
    MODE_LABELS,
    SECTOR_LABELS,
    STATE_LABELS,
)
from portal.registration.people import (
    create_guest_person,
    person_search,
)
from portal.registration.queries import (
    RegistrationCounts,
    checkin_matches,
    get_for_event,
    get_for_person,
    history,
    my_registration,
    my_registrations,
    online_count,
    organiser_list,
    people_to_add,
    registration_counts,
    roster,
    roster_rows,
    rows_of,
)
from portal.registration.seats import (
    SEAT_STATES,
    S,
    lock_event,
    seats_left,
    taken_seats,
    waitlist_position,
    waitlist_positions,
)
from portal.registration.signup import (
    build_registration,
    organiser_add,
    register,
)
from portal.registration.transitions import (
    ALLOWED_MOVES,
)
from portal.registration.waitlist import (
    promote_from_waitlist,
)
