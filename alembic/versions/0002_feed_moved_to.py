"""feeds.moved_to: where a feed's URL permanently redirects, for `feeds status`

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 00:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ALTER TABLE on both databases (SQLite 3.35+ drops a column in place too): batch
    # mode would copy the table on SQLite, and with foreign keys on, dropping the old copy
    # cascades to every row that refers to a feed.
    op.add_column("feeds", sa.Column("moved_to", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("feeds", "moved_to")
