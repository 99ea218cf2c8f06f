"""durable outbound retries: purpose, attempts and next retry time per outbound message

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-08

A temporary delivery failure (SMTP 4xx, connection refused, WhatsApp throttling) goes back to `queued`
with `retry_at`; the outbound layer's sweep claims due rows and sends them again.
"""
from alembic import op
import sqlalchemy as sa
import crm.db


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('messages') as batch:
        batch.add_column(sa.Column('purpose', sa.String(length=16), nullable=True))
        batch.add_column(sa.Column('delivery_attempts', sa.Integer(), nullable=False, server_default='0'))
        batch.add_column(sa.Column('retry_at', crm.db.UTCDateTime(), nullable=True))
        batch.create_index('ix_messages_delivery_status_retry_at', ['delivery_status', 'retry_at'])


def downgrade() -> None:
    with op.batch_alter_table('messages') as batch:
        batch.drop_index('ix_messages_delivery_status_retry_at')
        batch.drop_column('retry_at')
        batch.drop_column('delivery_attempts')
        batch.drop_column('purpose')
