"""What registration hooks return: plain frozen dataclasses, no app access.

- ``registration_fields(event)`` returns a list of :class:`RegistrationField`;
  the answers are stored in ``Registration.answers[field.name]``.
- ``price_lines(registration)`` returns a list of :class:`PriceLine`; the registration may be
  a preview (not yet stored) with ``event``, ``person``, ``fee_category``,
  ``attendance_mode`` and ``answers`` set.
- ``payment_methods(event, registration)`` returns a list of :class:`PaymentMethod`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

FieldKind = Literal["checkbox", "text", "select"]


@dataclass(frozen=True)
class RegistrationField:
    """An extra field on the registration form, added by a plugin.

    ``name`` is the key in ``Registration.answers`` (letters, digits and underscores; prefix it
    with the plugin's name, e.g. ``exchange_meeting``). ``choices`` is a tuple of
    ``(value, label)`` pairs for ``kind="select"``. A checkbox answer is stored as a bool, a
    text or select answer as a str.
    """

    name: str
    label: Any  # str or lazy string
    kind: FieldKind = "checkbox"
    choices: tuple = ()
    required: bool = False
    help: Any = ""


@dataclass(frozen=True)
class PriceLine:
    """One fee line: ``amount_minor`` in integer minor units (JPY has none) of ``currency``.

    ``label`` may be a str, a lazy string (stored in both languages) or a BilingualText.
    """

    code: str
    label: Any
    amount_minor: int
    currency: str


@dataclass(frozen=True)
class PaymentMethod:
    """A way to pay for a registration; ``url`` is where the participant goes to pay (if any)."""

    code: str
    label: Any
    description: Any = ""
    url: str = ""
