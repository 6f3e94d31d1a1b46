"""referrals and donations

Revision ID: c4e5f6a7b804
Revises: c3d4e5f6a703
Create Date: 2026-12-01 09:00:00.000000
"""

from __future__ import annotations

revision = "c4e5f6a7b804"
down_revision = "c3d4e5f6a703"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
