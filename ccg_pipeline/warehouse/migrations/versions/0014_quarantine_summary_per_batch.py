"""`ops.quarantine_summary` counts per batch (`source_ref`, the file name), not per run: two files
of one source in one run each wrote their own count under the same key, so the last file's count
replaced the others'. Per batch, every file keeps its count, a rerun of a file replaces only its
own, and files loaded side by side (one mapped task each) never write the same row.

The table is rebuilt with the new key; earlier rows keep their counts with an empty source_ref.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

COMMENT = (
    "Counts of quarantined records per run, source, batch (file) and reason code; no record "
    "content."
)


def _table(name: str, per_batch: bool) -> sa.Table:
    batch = [sa.Column("source_ref", sa.Text(), nullable=False)] if per_batch else []
    key = ["run_id", "source", *(["source_ref"] if per_batch else []), "reason_code"]
    return sa.Table(
        name,
        sa.MetaData(),
        sa.Column("run_id", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        *batch,
        sa.Column("reason_code", sa.Text(), nullable=False),
        sa.Column("row_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(*key),
        schema="ops",
        comment=COMMENT if per_batch else None,
    )


def _rebuild(per_batch: bool) -> None:
    bind = op.get_bind()
    old = _table("quarantine_summary", not per_batch)
    new = _table("quarantine_summary_rebuilt", per_batch)
    new.create(bind)
    if per_batch:
        select = sa.select(
            old.c.run_id, old.c.source, sa.literal(""), old.c.reason_code, old.c.row_count
        )
        names = ["run_id", "source", "source_ref", "reason_code", "row_count"]
    else:
        select = sa.select(
            old.c.run_id, old.c.source, old.c.reason_code, sa.func.sum(old.c.row_count)
        ).group_by(old.c.run_id, old.c.source, old.c.reason_code)
        names = ["run_id", "source", "reason_code", "row_count"]
    bind.execute(sa.insert(new).from_select(names, select))
    old.drop(bind)
    op.rename_table("quarantine_summary_rebuilt", "quarantine_summary", schema="ops")


def upgrade() -> None:
    _rebuild(per_batch=True)


def downgrade() -> None:
    _rebuild(per_batch=False)
