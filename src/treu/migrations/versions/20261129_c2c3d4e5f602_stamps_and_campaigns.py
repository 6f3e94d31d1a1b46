"""stamps and campaigns

Revision ID: c2c3d4e5f602
Revises: c1b2d3e4f501
Create Date: 2026-11-29 09:00:00.000000
"""

from __future__ import annotations

revision = "c2c3d4e5f602"
down_revision = "c1b2d3e4f501"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
