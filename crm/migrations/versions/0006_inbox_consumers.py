"""inbox consumer names: one live process per name

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07

A configured, stable consumer name lets a restarted app take its own inbox claims back at once; the
registration keeps two live processes from ever sharing one.
"""
from alembic import op
import sqlalchemy as sa
import crm.db


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('inbox_consumers',
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('instance', sa.String(length=64), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('pid_namespace', sa.String(length=64), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.Column('seen_at', crm.db.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_inbox_consumers'))
    )


def downgrade() -> None:
    op.drop_table('inbox_consumers')
