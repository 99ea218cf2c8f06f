"""conversation language memory

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24

language_reason: why the conversation speaks its language (NULL = not decided yet, so the first
message with a signal decides). translation: NULL for a natively served language, "machine" when
replies are machine-translated, "unavailable" when the shopper's language cannot be served (agents
see the flag).
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('language_reason', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('translation', sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.drop_column('translation')
        batch_op.drop_column('language_reason')
