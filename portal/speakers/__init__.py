"""Speakers: one shared record per speaker (a Person) across both series."""
