"""The refused registration changes: ``RegistrationError`` and its kinds (each with a translated
default message).
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from portal.errors import UserError
from portal.registration.models import (
    Registration,
)


class RegistrationError(UserError):
    """A refused registration change; ``message`` is translated, ``field`` names the form field."""


class TransitionNotAllowed(RegistrationError):
    default_message = _l("This registration cannot be changed that way in its current state.")


class RegistrationClosed(RegistrationError):
    default_message = _l("Registration for this event is closed.")


class InvalidChoice(RegistrationError):
    default_message = _l("Please choose one of the options offered.")


class NoPlaceAvailable(RegistrationError):
    default_message = _l("There are no places left for this attendance mode.")


class MembershipRequired(RegistrationError):
    default_message = _l("This fee category is for members only.")


class AlreadyRegistered(RegistrationError):
    default_message = _l("You are already registered for this event.")
    category = "info"  # no failure: the page of the registration follows

    def __init__(self, registration: Registration, message=None):
        super().__init__(message)
        self.registration = registration
