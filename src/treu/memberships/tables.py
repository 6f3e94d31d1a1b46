"""Paid memberships: tables."""

from __future__ import annotations

from treu.storage.metadata import metadata

__all__ = ["metadata"]
