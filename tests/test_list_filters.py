"""``params.filter_args``: the one reader of a list page's filters (payments, registrations)."""

from __future__ import annotations

from portal.params import filter_args


def test_filter_args_reads_names_renames_and_trims_the_search(app):
    query = "/?state=confirmed&fee_category=3&q=%20%20Yamada%20&other=x"
    with app.test_request_context(query):
        found = filter_args("state", "mode", fee_category_id="fee_category")
    assert found == {"state": "confirmed", "mode": "", "fee_category_id": "3", "q": "Yamada"}


def test_filter_args_cuts_the_search_to_100_characters_and_defaults_to_empty(app):
    with app.test_request_context("/?q=" + "あ" * 150):
        assert filter_args() == {"q": "あ" * 100}
    with app.test_request_context("/"):
        assert filter_args("state", "method", "flagged") == {
            "state": "",
            "method": "",
            "flagged": "",
            "q": "",
        }
