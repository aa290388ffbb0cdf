"""Speakers: one shared record per speaker (a Person) across both series."""

from portal.speakers import search

# The search keys follow the data: listen to every ORM session once the area is imported.
search.install()
