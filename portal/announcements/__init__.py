"""Announcements: a series' list of registered people (登録者) and what is announced to it.

Modules named for their rules: ``models``, ``tokens`` (signed links), ``subscriptions`` (join,
confirm, leave, language, undeliverable: the list and its history), ``counts`` (登録人数 on a
day, from the history), ``markup`` (sanitised Markdown), ``compose`` (placeholders, rendering
per language), ``audience`` (who receives an announcement), ``sending`` (deliveries: queue,
claim, send, progress), ``list_import`` (an existing list from CSV or Excel). See
``docs/announcements.md``.
"""
