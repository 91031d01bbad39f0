"""arm_series: per policy update and arm, the cumulative learned aggregates (backfilled);
indexes that let the dashboard and /health count without reading the whole log.

Revision ID: 0004_arm_series
Revises: 0003_items
Create Date: 2026-12-02 11:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from service.store.series import build


revision: str = '0004_arm_series'
down_revision: str | None = '0003_items'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REPORTED = "kind NOT IN ('none', 'decision')"  # the partial indexes' predicates
RETRIED = "duplicates > 0"
BigInt = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')

experiments = sa.table(
    'experiments', sa.column('id', BigInt), sa.column('arms', sa.JSON),
    sa.column('reward_definition', sa.JSON),
)
rewards = sa.table(
    'rewards', sa.column('experiment_id', BigInt), sa.column('decision_id', sa.String),
    sa.column('arm', sa.Integer), sa.column('kind', sa.String), sa.column('value', sa.Float),
    sa.column('learned', sa.Boolean), sa.column('update_seq', BigInt),
    sa.column('update_pos', sa.Integer),
)
decisions = sa.table('decisions', sa.column('id', sa.String), sa.column('arm', sa.Integer))


def upgrade() -> None:
    op.create_table('arm_series',
    sa.Column('experiment_id', BigInt, nullable=False),
    sa.Column('seq', BigInt, nullable=False),
    sa.Column('arm', sa.Integer(), nullable=False),
    sa.Column('n_learned', BigInt, nullable=False),
    sa.Column('reward_sum', sa.Float(), nullable=False),
    sa.Column('reward_sq_sum', sa.Float(), nullable=False),
    sa.Column('prob_best', sa.Float(), nullable=True),
    sa.ForeignKeyConstraint(['experiment_id'], ['experiments.id'], name=op.f('fk_arm_series_experiment_id_experiments'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('experiment_id', 'seq', 'arm', name=op.f('pk_arm_series'))
    )
    _backfill(op.get_bind())
    with op.batch_alter_table('decisions', schema=None) as batch_op:
        batch_op.drop_index('ix_decisions_experiment_version_arm')
        batch_op.create_index('ix_decisions_experiment_version_arm', ['experiment_id', 'policy_version', 'arm', 'fallback'], unique=False)
    with op.batch_alter_table('rewards', schema=None) as batch_op:
        batch_op.create_index('ix_rewards_reported', ['experiment_id', 'status'], unique=False, sqlite_where=sa.text(REPORTED), postgresql_where=sa.text(REPORTED))
        batch_op.create_index('ix_rewards_retried', ['experiment_id'], unique=False, sqlite_where=sa.text(RETRIED), postgresql_where=sa.text(RETRIED))


def _backfill(conn: sa.Connection) -> None:
    """The rows the live learners would have written, from the log (as the rebuild does)."""
    table = sa.table(
        'arm_series', sa.column('experiment_id'), sa.column('seq'), sa.column('arm'),
        sa.column('n_learned'), sa.column('reward_sum'), sa.column('reward_sq_sum'),
        sa.column('prob_best'),
    )
    for exp_id, arms, definition in conn.execute(
        sa.select(experiments.c.id, experiments.c.arms, experiments.c.reward_definition)
    ).all():
        scale = max(definition.values())
        log = conn.execute(
            sa.select(
                rewards.c.update_seq, rewards.c.kind, rewards.c.value,
                sa.func.coalesce(rewards.c.arm, decisions.c.arm),
            )
            .join(decisions, decisions.c.id == rewards.c.decision_id)
            .where(rewards.c.experiment_id == exp_id, rewards.c.learned)
            .order_by(rewards.c.update_seq, rewards.c.update_pos)
        )
        rows = build(
            ((seq, arm, 0.0 if kind == 'none' else value / scale) for seq, kind, value, arm in log),
            len(arms),
        )
        for j in range(0, len(rows), 10_000):
            conn.execute(table.insert(), [
                {'experiment_id': exp_id, 'seq': r.seq, 'arm': r.arm, 'n_learned': r.n_learned,
                 'reward_sum': r.reward_sum, 'reward_sq_sum': r.reward_sq_sum,
                 'prob_best': r.prob_best}
                for r in rows[j:j + 10_000]
            ])


def downgrade() -> None:
    with op.batch_alter_table('rewards', schema=None) as batch_op:
        batch_op.drop_index('ix_rewards_retried')
        batch_op.drop_index('ix_rewards_reported')
    with op.batch_alter_table('decisions', schema=None) as batch_op:
        batch_op.drop_index('ix_decisions_experiment_version_arm')
        batch_op.create_index('ix_decisions_experiment_version_arm', ['experiment_id', 'policy_version', 'arm'], unique=False)
    op.drop_table('arm_series')
