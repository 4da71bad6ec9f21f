"""events.targets and events.stage_changed_at: the target in an event's identity

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # In place, as 0002: no table copy on SQLite. Events stored before have no target; they
    # keep matching on their text, as they did.
    op.add_column(
        "events", sa.Column("targets", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
    )
    op.add_column("events", sa.Column("stage_changed_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    op.drop_column("events", "stage_changed_at")
    op.drop_column("events", "targets")
