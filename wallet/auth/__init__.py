"""Tokens, roles, keyed hashes and secrets."""
