"""Fake upstream servers for tests: stand-ins for provider APIs that run in our own containers."""
