"""authority pages: front door, DV triage, MARAC, emergency duty

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 21:19:50.129218

Tables of the local authority's pages (issue 11). Views rebuilt from route.frontdoor, route.cumulative-concern,
route.dvtriage, route.marac, route.emergency-duty and feedback.acknowledgements; the app's own decision reasons
and emergency duty acknowledgements (database only until a Kafka record exists for them).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply."""
    op.create_table('cumulative_alerts',
    sa.Column('alert_id', sa.String(length=36), nullable=False),
    sa.Column('authority', sa.String(length=9), nullable=False),
    sa.Column('child_key', sa.String(length=128), nullable=True),
    sa.Column('trigger', sa.String(length=20), nullable=True),
    sa.Column('notification_ids', sa.Text(), nullable=True),
    sa.Column('agency_types', sa.Text(), nullable=True),
    sa.Column('window_start', sa.DateTime(timezone=True), nullable=True),
    sa.Column('window_end', sa.DateTime(timezone=True), nullable=True),
    sa.Column('raised', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decision_due', sa.DateTime(timezone=True), nullable=True),
    sa.Column('first_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('withdrawn', sa.Boolean(), nullable=False),
    sa.Column('withdrawn_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('withdrawn_reason', sa.String(length=20), nullable=True),
    sa.PrimaryKeyConstraint('alert_id')
    )
    with op.batch_alter_table('cumulative_alerts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cumulative_alerts_authority'), ['authority'], unique=False)

    op.create_table('dv_triage_discussions',
    sa.Column('item_id', sa.String(length=36), nullable=False),
    sa.Column('authority', sa.String(length=9), nullable=False),
    sa.Column('marac_referred', sa.Boolean(), nullable=False),
    sa.Column('discussed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('item_id')
    )
    with op.batch_alter_table('dv_triage_discussions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dv_triage_discussions_authority'), ['authority'], unique=False)

    op.create_table('dv_triage_items',
    sa.Column('item_id', sa.String(length=36), nullable=False),
    sa.Column('authority', sa.String(length=9), nullable=False),
    sa.Column('notification_id', sa.String(length=36), nullable=True),
    sa.Column('agency_type', sa.String(length=20), nullable=True),
    sa.Column('source_reference', sa.String(length=64), nullable=True),
    sa.Column('victim_key', sa.String(length=128), nullable=True),
    sa.Column('perpetrator_key', sa.String(length=128), nullable=True),
    sa.Column('child_keys', sa.Text(), nullable=True),
    sa.Column('risk_level', sa.String(length=20), nullable=True),
    sa.Column('ticks', sa.Integer(), nullable=True),
    sa.Column('meeting_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('marac', sa.Boolean(), nullable=False),
    sa.Column('marac_criteria', sa.Text(), nullable=True),
    sa.Column('occurred', sa.DateTime(timezone=True), nullable=True),
    sa.Column('first_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('withdrawn', sa.Boolean(), nullable=False),
    sa.Column('withdrawn_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('withdrawn_reason', sa.String(length=20), nullable=True),
    sa.PrimaryKeyConstraint('item_id')
    )
    with op.batch_alter_table('dv_triage_items', schema=None) as batch_op:
        batch_op.create_index('ix_dv_triage_items_authority_meeting', ['authority', 'meeting_at'], unique=False)

    op.create_table('emergency_duty_acks',
    sa.Column('alert_id', sa.String(length=36), nullable=False),
    sa.Column('authority', sa.String(length=9), nullable=False),
    sa.Column('acknowledged_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('by_role', sa.String(length=50), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('alert_id')
    )
    with op.batch_alter_table('emergency_duty_acks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_emergency_duty_acks_authority'), ['authority'], unique=False)

    op.create_table('emergency_duty_alerts',
    sa.Column('alert_id', sa.String(length=36), nullable=False),
    sa.Column('authority', sa.String(length=9), nullable=False),
    sa.Column('notification_id', sa.String(length=36), nullable=True),
    sa.Column('agency_type', sa.String(length=20), nullable=True),
    sa.Column('source_reference', sa.String(length=64), nullable=True),
    sa.Column('reason', sa.String(length=64), nullable=True),
    sa.Column('child_keys', sa.Text(), nullable=True),
    sa.Column('received', sa.DateTime(timezone=True), nullable=True),
    sa.Column('safety_caveats', sa.Text(), nullable=True),
    sa.Column('first_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('withdrawn', sa.Boolean(), nullable=False),
    sa.Column('withdrawn_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('withdrawn_reason', sa.String(length=20), nullable=True),
    sa.PrimaryKeyConstraint('alert_id')
    )
    with op.batch_alter_table('emergency_duty_alerts', schema=None) as batch_op:
        batch_op.create_index('ix_emergency_duty_alerts_authority_received', ['authority', 'received'], unique=False)

    op.create_table('frontdoor_decisions',
    sa.Column('subject_id', sa.String(length=36), nullable=False),
    sa.Column('authority', sa.String(length=9), nullable=False),
    sa.Column('response', sa.String(length=40), nullable=False),
    sa.Column('rag', sa.String(length=10), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('previous_rag', sa.String(length=10), nullable=True),
    sa.Column('rag_reason', sa.Text(), nullable=True),
    sa.Column('account_id', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('subject_id')
    )
    with op.batch_alter_table('frontdoor_decisions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_frontdoor_decisions_authority'), ['authority'], unique=False)

    op.create_table('frontdoor_referrals',
    sa.Column('referral_id', sa.String(length=36), nullable=False),
    sa.Column('authority', sa.String(length=9), nullable=False),
    sa.Column('notification_id', sa.String(length=36), nullable=True),
    sa.Column('supersedes_referral', sa.String(length=36), nullable=True),
    sa.Column('agency_type', sa.String(length=20), nullable=True),
    sa.Column('organisation_code', sa.String(length=64), nullable=True),
    sa.Column('source_reference', sa.String(length=64), nullable=True),
    sa.Column('kind', sa.String(length=64), nullable=True),
    sa.Column('occurred', sa.DateTime(timezone=True), nullable=True),
    sa.Column('received', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decision_due', sa.DateTime(timezone=True), nullable=True),
    sa.Column('adult_risk_only', sa.Boolean(), nullable=True),
    sa.Column('risk_level', sa.String(length=20), nullable=True),
    sa.Column('priority', sa.String(length=20), nullable=True),
    sa.Column('security_marking', sa.String(length=30), nullable=True),
    sa.Column('lawful_basis', sa.String(length=40), nullable=True),
    sa.Column('consent', sa.String(length=50), nullable=True),
    sa.Column('safety_caveats', sa.Text(), nullable=True),
    sa.Column('summary', sa.Text(), nullable=True),
    sa.Column('rag', sa.String(length=10), nullable=True),
    sa.Column('rag_reason', sa.String(length=500), nullable=True),
    sa.Column('first_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('withdrawn', sa.Boolean(), nullable=False),
    sa.Column('withdrawn_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('withdrawn_reason', sa.String(length=20), nullable=True),
    sa.Column('superseded_by', sa.String(length=36), nullable=True),
    sa.PrimaryKeyConstraint('referral_id')
    )
    with op.batch_alter_table('frontdoor_referrals', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_frontdoor_referrals_authority'), ['authority'], unique=False)
        batch_op.create_index(batch_op.f('ix_frontdoor_referrals_decision_due'), ['decision_due'], unique=False)
        batch_op.create_index(batch_op.f('ix_frontdoor_referrals_notification_id'), ['notification_id'], unique=False)

    op.create_table('marac_referrals',
    sa.Column('referral_id', sa.String(length=36), nullable=False),
    sa.Column('authority', sa.String(length=9), nullable=False),
    sa.Column('triage_item_id', sa.String(length=36), nullable=True),
    sa.Column('notification_id', sa.String(length=36), nullable=True),
    sa.Column('criteria', sa.Text(), nullable=True),
    sa.Column('occurred', sa.DateTime(timezone=True), nullable=True),
    sa.Column('first_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('withdrawn', sa.Boolean(), nullable=False),
    sa.Column('withdrawn_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('referral_id')
    )
    with op.batch_alter_table('marac_referrals', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_marac_referrals_triage_item_id'), ['triage_item_id'], unique=False)

    op.create_table('frontdoor_referral_children',
    sa.Column('referral_id', sa.String(length=36), nullable=False),
    sa.Column('position', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('authority', sa.String(length=9), nullable=False),
    sa.Column('child_key', sa.String(length=128), nullable=False),
    sa.Column('given_name', sa.String(length=100), nullable=True),
    sa.Column('family_name', sa.String(length=100), nullable=True),
    sa.Column('date_of_birth', sa.Date(), nullable=True),
    sa.Column('unborn', sa.Boolean(), nullable=False),
    sa.Column('education_status', sa.String(length=20), nullable=False),
    sa.Column('school_urn', sa.String(length=7), nullable=True),
    sa.Column('education_contact_needed', sa.Boolean(), nullable=False),
    sa.Column('present', sa.Boolean(), nullable=True),
    sa.ForeignKeyConstraint(['referral_id'], ['frontdoor_referrals.referral_id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('referral_id', 'position')
    )
    with op.batch_alter_table('frontdoor_referral_children', schema=None) as batch_op:
        batch_op.create_index('ix_frontdoor_children_authority_key', ['authority', 'child_key'], unique=False)



def downgrade() -> None:
    """Revert."""
    with op.batch_alter_table('frontdoor_referral_children', schema=None) as batch_op:
        batch_op.drop_index('ix_frontdoor_children_authority_key')

    op.drop_table('frontdoor_referral_children')
    with op.batch_alter_table('marac_referrals', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_marac_referrals_triage_item_id'))

    op.drop_table('marac_referrals')
    with op.batch_alter_table('frontdoor_referrals', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_frontdoor_referrals_notification_id'))
        batch_op.drop_index(batch_op.f('ix_frontdoor_referrals_decision_due'))
        batch_op.drop_index(batch_op.f('ix_frontdoor_referrals_authority'))

    op.drop_table('frontdoor_referrals')
    with op.batch_alter_table('frontdoor_decisions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_frontdoor_decisions_authority'))

    op.drop_table('frontdoor_decisions')
    with op.batch_alter_table('emergency_duty_alerts', schema=None) as batch_op:
        batch_op.drop_index('ix_emergency_duty_alerts_authority_received')

    op.drop_table('emergency_duty_alerts')
    with op.batch_alter_table('emergency_duty_acks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_emergency_duty_acks_authority'))

    op.drop_table('emergency_duty_acks')
    with op.batch_alter_table('dv_triage_items', schema=None) as batch_op:
        batch_op.drop_index('ix_dv_triage_items_authority_meeting')

    op.drop_table('dv_triage_items')
    with op.batch_alter_table('dv_triage_discussions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dv_triage_discussions_authority'))

    op.drop_table('dv_triage_discussions')
    with op.batch_alter_table('cumulative_alerts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cumulative_alerts_authority'))

    op.drop_table('cumulative_alerts')
