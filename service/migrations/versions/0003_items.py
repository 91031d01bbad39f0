"""Decisions with items: experiments' recommenders and fuser, decisions' items, rewards' position.

Revision ID: 0003_items
Revises: 0002_key_experiments
Create Date: 2026-12-02 07:15:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0003_items'
down_revision: str | None = '0002_key_experiments'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('experiments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('recommenders', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('fuser', sa.String(length=32), nullable=True))
    with op.batch_alter_table('decisions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('items', sa.JSON(), nullable=True))
    with op.batch_alter_table('rewards', schema=None) as batch_op:
        batch_op.add_column(sa.Column('position', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('rewards', schema=None) as batch_op:
        batch_op.drop_column('position')
    with op.batch_alter_table('decisions', schema=None) as batch_op:
        batch_op.drop_column('items')
    with op.batch_alter_table('experiments', schema=None) as batch_op:
        batch_op.drop_column('fuser')
        batch_op.drop_column('recommenders')
