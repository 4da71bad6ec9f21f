"""indexes for pruning by age: alerts.item_id, alerts.created_at, assessments.created_at

Deleting an item sets alerts.item_id to NULL (ON DELETE SET NULL): without an index on it,
each deleted item would scan the whole outbox. The created_at indexes let the prune job
walk its batches in age order (and serve the rate limit's count of recent alerts).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 18:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_alerts_item_id", "alerts", ["item_id"])
    op.create_index("ix_alerts_created_at", "alerts", ["created_at"])
    op.create_index("ix_assessments_created_at", "assessments", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_assessments_created_at", table_name="assessments")
    op.drop_index("ix_alerts_created_at", table_name="alerts")
    op.drop_index("ix_alerts_item_id", table_name="alerts")
