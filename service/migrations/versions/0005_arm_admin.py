"""Arms added or retired over HTTP (experiments' retired arms, policy updates' arm change);
fuser parameters and position correction of fuse experiments.

Revision ID: 0005_arm_admin
Revises: 0004_arm_series
Create Date: 2026-12-02 11:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0005_arm_admin'
down_revision: str | None = '0004_arm_series'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('experiments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('retired', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('fuser_params', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('position_correction', sa.JSON(), nullable=True))
    with op.batch_alter_table('policy_states', schema=None) as batch_op:
        batch_op.add_column(sa.Column('examination', sa.JSON(), nullable=True))
    with op.batch_alter_table('policy_updates', schema=None) as batch_op:
        batch_op.add_column(sa.Column('change', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('policy_states', schema=None) as batch_op:
        batch_op.drop_column('examination')
    with op.batch_alter_table('policy_updates', schema=None) as batch_op:
        batch_op.drop_column('change')
    with op.batch_alter_table('experiments', schema=None) as batch_op:
        batch_op.drop_column('position_correction')
        batch_op.drop_column('fuser_params')
        batch_op.drop_column('retired')
