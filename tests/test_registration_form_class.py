"""The registration form's class is built once per set of plugin fields, and each form still
shows exactly its own fields, in the reader's language."""

from __future__ import annotations

from flask_babel import force_locale
from flask_babel import lazy_gettext as _l

from portal.registration.forms import ANSWER_PREFIX, registration_form
from portal.registration.types import RegistrationField

DINNER = RegistrationField(name="x_dinner", label=_l("Fee category"), kind="checkbox")
SIZE = RegistrationField(
    name="x_size", label="Size", kind="select", choices=(("s", "S"), ("m", "M")), required=True
)


def _answer_names(form) -> list[str]:
    return [f.name for f in form.answer_form_fields()]


def test_the_same_fields_share_one_class_and_other_fields_get_theirs(app):
    with app.test_request_context("/en/"), force_locale("en"):
        first = registration_form([DINNER], meta={"csrf": False})
        again = registration_form([RegistrationField(**DINNER.__dict__)], meta={"csrf": False})
        both = registration_form([DINNER, SIZE], meta={"csrf": False})
        none = registration_form([], meta={"csrf": False})

    assert type(first) is type(again)
    assert type(both) is not type(first) and type(none) is not type(first)
    assert _answer_names(first) == [ANSWER_PREFIX + "x_dinner"]
    assert _answer_names(both) == [ANSWER_PREFIX + "x_dinner", ANSWER_PREFIX + "x_size"]
    assert _answer_names(none) == []
    assert both[ANSWER_PREFIX + "x_size"].choices == [("", "Please choose"), ("s", "S"), ("m", "M")]


def test_a_cached_class_labels_its_fields_in_each_readers_language(app):
    with app.test_request_context("/en/"):
        with force_locale("en"):
            english = registration_form([DINNER], meta={"csrf": False})
            assert str(english[ANSWER_PREFIX + "x_dinner"].label.text) == "Fee category"
        with force_locale("ja"):
            japanese = registration_form([DINNER], meta={"csrf": False})
            assert str(japanese[ANSWER_PREFIX + "x_dinner"].label.text) == "参加区分"
            # A lazy label is keyed by its text in the language: one class per language.
            assert type(registration_form([DINNER], meta={"csrf": False})) is type(japanese)
        with force_locale("en"):
            again = registration_form([DINNER], meta={"csrf": False})
            assert type(again) is type(english)
            assert str(again[ANSWER_PREFIX + "x_dinner"].label.text) == "Fee category"


def test_a_field_that_cannot_be_a_key_still_gets_its_form(app):
    odd = RegistrationField(name="x_odd", label="Odd", kind="select", choices=[("a", "A")])
    with app.test_request_context("/en/"), force_locale("en"):
        one = registration_form([odd], meta={"csrf": False})
        two = registration_form([odd], meta={"csrf": False})
    assert type(one) is not type(two)  # built each time, as before
    assert _answer_names(one) == [ANSWER_PREFIX + "x_odd"]
    assert one[ANSWER_PREFIX + "x_odd"].choices == [("", "Please choose"), ("a", "A")]
