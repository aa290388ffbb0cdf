"""Speakers: one shared record per speaker (a Person) across both series."""

from portal.speakers import institutions, search

# The search keys follow the data: listen to every ORM session once the area is imported.
search.install()
# Typed affiliations point to their institution; plugins hear when one changes.
institutions.install()
