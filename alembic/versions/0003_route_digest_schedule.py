"""route_state.digest_schedule: the digest schedule next_digest_at was computed for

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 00:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # In place, as 0002: no table copy on SQLite.
    op.add_column("route_state", sa.Column("digest_schedule", sa.String(length=200), nullable=True))


def downgrade() -> None:
    op.drop_column("route_state", "digest_schedule")
