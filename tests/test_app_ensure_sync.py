"""Portal sees at once that a plain view or hook is not ``async def`` (Portal.ensure_sync)
and otherwise answers as Flask does."""

from __future__ import annotations

import functools

import pytest
from flask import Flask

from portal.app import Portal


def test_a_plain_function_is_returned_as_it_is(app):
    assert isinstance(app, Portal)

    def view():
        return "ok"

    assert app.ensure_sync(view) is view


def test_async_functions_and_other_callables_get_flasks_answer(app):
    async def coroutine_view():
        return "ok"

    try:
        expected = Flask.ensure_sync(app, coroutine_view)
    except RuntimeError as error:  # Flask without its "async" extra
        with pytest.raises(RuntimeError, match=str(error)[:40]):
            app.ensure_sync(coroutine_view)
    else:
        assert app.ensure_sync(coroutine_view) is not coroutine_view
        assert callable(expected)

    partial = functools.partial(lambda x: x, 1)
    assert app.ensure_sync(partial) is partial  # not a function: Flask's own check


def test_pages_and_hooks_still_run(client):
    response = client.get("/ja/")
    assert response.status_code == 200
    assert response.headers["X-Content-Type-Options"] == "nosniff"  # an after_request hook
