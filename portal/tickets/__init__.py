"""Tickets (参加証) with QR codes, check-in on the day, and name badges (名札)."""
