"""Fakes of network peers (Stripe) for the tests."""
