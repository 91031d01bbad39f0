"""The experiment store: every read and write of the database, one module per route group.

=======================  ======================================================================
:mod:`.experiments`      create, list, read, pause / resume / stop
:mod:`.arms`             arms added to or retired from a running experiment
:mod:`.decisions`        choose an arm and log the decision (the hot path)
:mod:`.rewards`          record clicks and conversions (idempotent, one locked transaction)
:mod:`.decision_groups`  group commit of concurrent decisions (one read, one INSERT)
:mod:`.reward_groups`    group commit of concurrent single rewards (one locked batch)
:mod:`.grouping`         the writer threads both group commits share
:mod:`.learning`         the locked policy update shared by rewards and settling
:mod:`.slots`            a fused decision's observations (per slot; fractional credit)
:mod:`.position`         optional position correction of those observations
:mod:`.audit`            rebuild a policy from the log and compare it with the live one
:mod:`.series`           per-update per-arm cumulative aggregates (the dashboard's time series)
:mod:`.dashboard`        the dashboard pages' reads: experiments list, down-sampled time series
:mod:`.insights`         allocation, per-arm statistics, health (sample-ratio test, counts)
:mod:`.item_stats`       items shown and credited per arm, click rate per position
:mod:`.keys`             scoped API keys (only their SHA-256 is stored)
:mod:`.rows`             typed rows that travel between these modules, and their bulk writes
:mod:`.common`           look-ups and conversions shared by the modules above
=======================  ======================================================================

Learning under concurrency
--------------------------
The policy of an experiment is one row of ``policy_states``. Every change to it (a batch of
rewards, the zero rewards of decisions whose window closed) runs in one transaction that

1. locks that row (``SELECT ... FOR UPDATE`` on PostgreSQL; on SQLite the transaction
   starts with ``BEGIN IMMEDIATE``, so writers are already serialised by the database lock),
2. restores the policy from the row (or from the per-process cache when the cached
   version is the row's version), applies ``update_batch`` to the learned rewards in
   request order,
3. writes the new state and allocation with ``version + 1``, appends ``policy_updates``
   row ``seq = version + 1`` and stamps each learned reward with ``(update_seq, update_pos)``;
   bumps ``arm_stats`` and copies its learned aggregates to ``arm_series`` at that ``seq``.

We chose a row lock over atomic per-arm increments because the policies' states are not all
sums (discounting, sliding windows, change-point detection depend on the order of
observations): serialising the updates of one experiment gives one total order, which is
recorded in the log, and :func:`service.store.audit.rebuild` replays exactly that order to an
identical state. Replicas and worker processes on one PostgreSQL server cannot lose an update:
the second learner waits on the lock and then reads the first one's committed state.
Decisions do not take this lock; they read the current allocation and insert a row, so they
never wait for learning on PostgreSQL (on SQLite all writers share one lock, by design of
SQLite).

Idempotency: a reward's key (``Idempotency-Key`` header, ``reward_id``, or a generated
uuid) is unique per experiment. Since keys are checked under the same lock, a retry always
sees the first request's row and is answered from it; the same key with another body is a
422 and stores nothing.
"""
