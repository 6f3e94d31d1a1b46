"""tiers

Revision ID: c1b2d3e4f501
Revises: c0a1e5f3d201
Create Date: 2026-11-28 09:00:00.000000
"""

from __future__ import annotations

revision = "c1b2d3e4f501"
down_revision = "c0a1e5f3d201"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
