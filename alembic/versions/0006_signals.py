"""corroborations and silence_signals: network-measurement verdicts and country-wide silence

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "corroborations",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("service", sa.String(20), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("verdict", sa.String(20), nullable=False),
        sa.Column("before_report", sa.Boolean(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("figures", sa.JSON(), nullable=False),
        sa.Column("link", sa.Text()),
        sa.Column("attribution", sa.Text(), nullable=False),
        sa.Column("next_check_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("id", name="pk_corroborations"),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name="fk_corroborations_event_id_events",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_corroborations_event_id", "corroborations", ["event_id"])
    op.create_index("ix_corroborations_next_check_at", "corroborations", ["next_check_at"])
    op.create_table(
        "silence_signals",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("silent_since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True)),
        sa.Column("feeds_total", sa.Integer(), nullable=False),
        sa.Column("feeds_silent", sa.Integer(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("clearing_since", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("id", name="pk_silence_signals"),
    )
    op.create_index("ix_silence_signals_country", "silence_signals", ["country"])


def downgrade() -> None:
    op.drop_index("ix_silence_signals_country", "silence_signals")
    op.drop_table("silence_signals")
    op.drop_index("ix_corroborations_next_check_at", "corroborations")
    op.drop_index("ix_corroborations_event_id", "corroborations")
    op.drop_table("corroborations")
