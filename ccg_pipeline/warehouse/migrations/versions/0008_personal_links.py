"""Keys that reach a row's company and subject without its parent row: the company of each
payment (from its invoice), and the subject key and company of each quarantined record.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

ADDED = {
    "payments": (("company_id", sa.Integer()),),
    "quarantine": (("subject_key", sa.String(64)), ("company_id", sa.Integer())),
}


def _index_name(table: str, column: str) -> str:
    return f"ix_personal_{table}_{column}"


def upgrade() -> None:
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    for table, columns in ADDED.items():
        present = {c["name"] for c in inspector.get_columns(table, schema="personal")}
        indexed = {i["name"] for i in inspector.get_indexes(table, schema="personal")}
        for name, type_ in columns:
            if name not in present:  # a fresh warehouse has them from 0001's current definition
                op.add_column(table, sa.Column(name, type_), schema="personal")
            index = _index_name(table, name)
            if index not in indexed:
                op.create_index(index, table, [name], schema="personal")
    # Payments loaded before this revision: their company is their invoice's, where it is held.
    op.execute(
        "UPDATE personal.payments SET company_id = (SELECT i.company_id FROM personal.invoices i "
        "WHERE i.invoice_id = personal.payments.invoice_id) WHERE company_id IS NULL"
    )


def downgrade() -> None:
    for table, columns in ADDED.items():
        for name, _ in columns:
            op.drop_index(_index_name(table, name), table_name=table, schema="personal")
            op.drop_column(table, name, schema="personal")
