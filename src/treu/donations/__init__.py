"""Donations: points (or wallet round-ups) turned into money for a charity."""
