"""event_bands: a covering index on (band_key, event_id) in place of the band_key index

Clustering's candidate query (monitor.store.event_repo) asks, per batch, for the events
filed under a few thousand keys; a crowded key holds thousands of them. With an index on
band_key alone every entry found costs a lookup in the table for its event_id; with
(band_key, event_id) the index answers by itself. It also serves every lookup by band_key,
so the old index goes.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 23:50:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_event_bands_band_key_event_id", "event_bands", ["band_key", "event_id"])
    op.drop_index("ix_event_bands_band_key", table_name="event_bands")


def downgrade() -> None:
    op.create_index("ix_event_bands_band_key", "event_bands", ["band_key"])
    op.drop_index("ix_event_bands_band_key_event_id", table_name="event_bands")
