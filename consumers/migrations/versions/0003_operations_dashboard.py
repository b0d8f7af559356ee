"""operations dashboard: SLA events, dead letters, redrives

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 21:40:00

Tables of the operations dashboard (issue 9): views rebuilt from sla.events and deadletter, and the app's own
record of redrives (at most one per dead letter).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply."""
    op.create_table('ops_sla_events',
    sa.Column('sla_event_id', sa.String(length=36), nullable=False),
    sa.Column('output_id', sa.String(length=36), nullable=False),
    sa.Column('route', sa.String(length=30), nullable=False),
    sa.Column('recipient', sa.String(length=128), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('due', sa.DateTime(timezone=True), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('calendar_verified', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('sla_event_id')
    )
    with op.batch_alter_table('ops_sla_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ops_sla_events_output_id'), ['output_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_ops_sla_events_at'), ['at'], unique=False)

    op.create_table('ops_dead_letters',
    sa.Column('dead_letter_id', sa.String(length=36), nullable=False),
    sa.Column('source_topic', sa.String(length=249), nullable=False),
    sa.Column('source_partition', sa.Integer(), nullable=False),
    sa.Column('source_offset', sa.BigInteger(), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('stage', sa.String(length=100), nullable=False),
    sa.Column('notification_id', sa.String(length=36), nullable=True),
    sa.Column('raw_key', sa.LargeBinary(), nullable=True),
    sa.Column('raw_value', sa.LargeBinary(), nullable=True),
    sa.Column('raw_size', sa.Integer(), nullable=True),
    sa.Column('raw_truncated', sa.Boolean(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('dead_letter_id')
    )
    with op.batch_alter_table('ops_dead_letters', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ops_dead_letters_reason'), ['reason'], unique=False)
        batch_op.create_index(batch_op.f('ix_ops_dead_letters_at'), ['at'], unique=False)

    op.create_table('ops_redrives',
    sa.Column('dead_letter_id', sa.String(length=36), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('done_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('target_topic', sa.String(length=249), nullable=False),
    sa.Column('target_partition', sa.Integer(), nullable=True),
    sa.Column('target_offset', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('dead_letter_id')
    )


def downgrade() -> None:
    """Revert."""
    op.drop_table('ops_redrives')
    with op.batch_alter_table('ops_dead_letters', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ops_dead_letters_at'))
        batch_op.drop_index(batch_op.f('ix_ops_dead_letters_reason'))
    op.drop_table('ops_dead_letters')
    with op.batch_alter_table('ops_sla_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ops_sla_events_at'))
        batch_op.drop_index(batch_op.f('ix_ops_sla_events_output_id'))
    op.drop_table('ops_sla_events')
