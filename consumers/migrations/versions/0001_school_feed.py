"""school feed: notices, acks, accounts, sessions, audit, alerts

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-23 21:01:18.073509
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply."""

    op.create_table('accounts',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('scope', sa.String(length=16), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('username')
    )
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_accounts_scope'), ['scope'], unique=False)

    op.create_table('encompass_acks',
    sa.Column('notice_id', sa.String(length=36), nullable=False),
    sa.Column('school_urn', sa.String(length=7), nullable=False),
    sa.Column('acknowledged_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('by_role', sa.String(length=50), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('notice_id')
    )
    with op.batch_alter_table('encompass_acks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_encompass_acks_school_urn'), ['school_urn'], unique=False)

    op.create_table('encompass_notices',
    sa.Column('notice_id', sa.String(length=36), nullable=False),
    sa.Column('school_urn', sa.String(length=7), nullable=False),
    sa.Column('authority', sa.String(length=9), nullable=True),
    sa.Column('notification_id', sa.String(length=36), nullable=True),
    sa.Column('given_name', sa.String(length=100), nullable=True),
    sa.Column('family_name', sa.String(length=100), nullable=True),
    sa.Column('date_of_birth', sa.Date(), nullable=True),
    sa.Column('incident_occurred', sa.DateTime(timezone=True), nullable=True),
    sa.Column('child_present', sa.Boolean(), nullable=True),
    sa.Column('police_reference', sa.String(length=64), nullable=True),
    sa.Column('welfare_check_made', sa.Boolean(), nullable=True),
    sa.Column('safety_caveats', sa.Text(), nullable=True),
    sa.Column('due', sa.DateTime(timezone=True), nullable=True),
    sa.Column('calendar_verified', sa.Boolean(), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('withdrawn', sa.Boolean(), nullable=False),
    sa.Column('withdrawn_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('withdrawn_reason', sa.String(length=20), nullable=True),
    sa.PrimaryKeyConstraint('notice_id')
    )
    with op.batch_alter_table('encompass_notices', schema=None) as batch_op:
        batch_op.create_index('ix_encompass_notices_school_received', ['school_urn', 'received_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_encompass_notices_school_urn'), ['school_urn'], unique=False)

    op.create_table('morning_alerts',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('school_urn', sa.String(length=7), nullable=False),
    sa.Column('alert_date', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('notice_count', sa.Integer(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.String(length=200), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('school_urn', 'alert_date', name='uq_morning_alerts_school_date')
    )
    with op.batch_alter_table('morning_alerts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_morning_alerts_status'), ['status'], unique=False)

    op.create_table('notice_reads',
    sa.Column('notice_id', sa.String(length=36), nullable=False),
    sa.Column('school_urn', sa.String(length=7), nullable=False),
    sa.Column('first_read_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('notice_id')
    )
    op.create_table('signin_attempts',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('client', sa.String(length=64), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('succeeded', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('signin_attempts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_signin_attempts_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_signin_attempts_client'), ['client'], unique=False)
        batch_op.create_index(batch_op.f('ix_signin_attempts_username'), ['username'], unique=False)

    op.create_table('view_audit',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('scope', sa.String(length=16), nullable=False),
    sa.Column('action', sa.String(length=20), nullable=False),
    sa.Column('subject_kind', sa.String(length=40), nullable=False),
    sa.Column('subject_id', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('view_audit', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_view_audit_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_view_audit_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_view_audit_subject_id'), ['subject_id'], unique=False)

    op.create_table('view_skips',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('topic', sa.String(length=249), nullable=False),
    sa.Column('partition', sa.Integer(), nullable=False),
    sa.Column('offset', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('topic', 'partition', 'offset', name='uq_view_skips_coordinates')
    )
    op.create_table('alert_notices',
    sa.Column('notice_id', sa.String(length=36), nullable=False),
    sa.Column('alert_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['alert_id'], ['morning_alerts.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('notice_id')
    )
    with op.batch_alter_table('alert_notices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_alert_notices_alert_id'), ['alert_id'], unique=False)

    op.create_table('web_sessions',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('csrf_token', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('token_hash')
    )
    with op.batch_alter_table('web_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_web_sessions_account_id'), ['account_id'], unique=False)




def downgrade() -> None:
    """Revert."""

    with op.batch_alter_table('web_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_web_sessions_account_id'))

    op.drop_table('web_sessions')
    with op.batch_alter_table('alert_notices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_alert_notices_alert_id'))

    op.drop_table('alert_notices')
    op.drop_table('view_skips')
    with op.batch_alter_table('view_audit', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_view_audit_subject_id'))
        batch_op.drop_index(batch_op.f('ix_view_audit_at'))
        batch_op.drop_index(batch_op.f('ix_view_audit_account_id'))

    op.drop_table('view_audit')
    with op.batch_alter_table('signin_attempts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_signin_attempts_username'))
        batch_op.drop_index(batch_op.f('ix_signin_attempts_client'))
        batch_op.drop_index(batch_op.f('ix_signin_attempts_at'))

    op.drop_table('signin_attempts')
    op.drop_table('notice_reads')
    with op.batch_alter_table('morning_alerts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_morning_alerts_status'))

    op.drop_table('morning_alerts')
    with op.batch_alter_table('encompass_notices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_encompass_notices_school_urn'))
        batch_op.drop_index('ix_encompass_notices_school_received')

    op.drop_table('encompass_notices')
    with op.batch_alter_table('encompass_acks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_encompass_acks_school_urn'))

    op.drop_table('encompass_acks')
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_accounts_scope'))

    op.drop_table('accounts')

