"""feeds.lease_holder: which `monitor run` holds a feed's lease

Replicas renew and release only the leases they hold: a replica that stalled past its lease
must not extend the lease another replica has since taken, and the operator can see which
replica is polling a feed.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 03:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ALTER TABLE, as in 0002: batch mode would copy the table on SQLite, and dropping
    # the old copy would cascade to every row that refers to a feed.
    op.add_column("feeds", sa.Column("lease_holder", sa.String(length=200), nullable=True))


def downgrade() -> None:
    op.drop_column("feeds", "lease_holder")
