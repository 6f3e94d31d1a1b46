"""memberships and wallet

Revision ID: c3d4e5f6a703
Revises: c2c3d4e5f602
Create Date: 2026-11-30 09:00:00.000000
"""

from __future__ import annotations

revision = "c3d4e5f6a703"
down_revision = "c2c3d4e5f602"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
