"""Migration 0004 on a warehouse made before it: roll-ups gain key columns, rows are kept."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from ccg_pipeline.warehouse import migrate
from ccg_pipeline.warehouse import schema as s
from ccg_pipeline.warehouse.engine import create_warehouse_engine

pytestmark = pytest.mark.integration

OLD_ANON_CUSTOMERS = """
CREATE TABLE staging.anon_customers (
    ceased_quarter VARCHAR(7) NOT NULL,
    country VARCHAR(2) NOT NULL,
    sector TEXT NOT NULL,
    customers BIGINT DEFAULT '0' NOT NULL,
    PRIMARY KEY (ceased_quarter, country, sector)
)
"""


def test_0004_rekeys_old_roll_ups_and_keeps_their_rows(warehouse_url: str) -> None:
    engine = create_warehouse_engine(warehouse_url)
    try:
        migrate.upgrade(engine, "0003")
        with engine.begin() as conn:  # the roll-up as revision 0003 shipped it
            conn.execute(sa.text("DROP TABLE staging.anon_customers"))
            conn.execute(sa.text(OLD_ANON_CUSTOMERS))
            conn.execute(
                sa.text("INSERT INTO staging.anon_customers VALUES ('2019-Q2', 'GB', 'Retail', 12)")
            )
            conn.execute(sa.text("ALTER TABLE personal.web_access DROP COLUMN visitor_region"))
        assert migrate.upgrade(engine, "0004") == "0004"
        assert migrate.upgrade(engine) == "0010"
        assert migrate.upgrade(engine) == "0010"  # idempotent
        with engine.connect() as conn:
            rows = conn.execute(sa.select(s.anon_customers)).all()
            inspector = sa.inspect(conn)
            key = inspector.get_pk_constraint("anon_customers", "staging")["constrained_columns"]
            web_columns = {c["name"] for c in inspector.get_columns("web_access", "personal")}
            assert inspector.has_table("validation_results", schema="ops")  # 0005
            assert inspector.has_table("erasure_tombstones", schema="ops")  # 0006
            assert inspector.has_table("clause_evidence", schema="ops")  # 0007
            request_columns = {c["name"] for c in inspector.get_columns("subject_requests", "ops")}
            assert {"email_masked", "dedup_key", "first_due_on"} <= request_columns
        assert [tuple(r) for r in rows] == [("unknown", "2019-Q2", "GB", "Retail", 12)]
        assert set(key) == {"started_quarter", "ceased_quarter", "country", "sector"}
        assert "visitor_region" in web_columns
        with engine.begin() as conn:  # the new key accepts two start quarters for one cell
            conn.execute(
                sa.insert(s.anon_customers).values(
                    started_quarter="2015-Q1",
                    ceased_quarter="2019-Q2",
                    country="GB",
                    sector="Retail",
                    customers=1,
                )
            )
    finally:
        engine.dispose()


def test_0008_adds_the_link_keys_and_fills_payment_companies(warehouse_url: str) -> None:
    """A warehouse from before 0008: payments and quarantine without their link columns; the
    payments loaded then get their invoice's company."""
    engine = create_warehouse_engine(warehouse_url)
    try:
        migrate.upgrade(engine, "0007")
        with engine.begin() as conn:  # the tables as revision 0007 shipped them
            for table, column in (
                ("payments", "company_id"),
                ("quarantine", "subject_key"),
                ("quarantine", "company_id"),
            ):
                conn.execute(sa.text(f"DROP INDEX IF EXISTS personal.ix_personal_{table}_{column}"))
                conn.execute(sa.text(f"ALTER TABLE personal.{table} DROP COLUMN {column}"))
            conn.execute(
                sa.text(
                    "INSERT INTO personal.invoices VALUES (7, 42, NULL, 'INV-7', '2020-01-01', "
                    "'2020-02-01', 100, 20, 'paid', '2020-01-01 00:00:00')"
                )
            )
            conn.execute(
                sa.text(
                    "INSERT INTO personal.payments (payment_id, invoice_id, paid_at, amount_minor, "
                    "method, updated_at) VALUES (1, 7, '2020-01-05 00:00:00', 120, 'card', "
                    "'2020-01-05 00:00:00'), (2, 8, '2020-01-05 00:00:00', 5, 'card', "
                    "'2020-01-05 00:00:00')"
                )
            )
        assert migrate.upgrade(engine) == "0010"
        assert migrate.upgrade(engine) == "0010"  # idempotent
        with engine.connect() as conn:
            inspector = sa.inspect(conn)
            quarantine = {c["name"] for c in inspector.get_columns("quarantine", "personal")}
            assert {"subject_key", "company_id"} <= quarantine
            companies = dict(
                conn.execute(sa.select(s.payments.c.payment_id, s.payments.c.company_id)).all()
            )
        # The second payment's invoice is not held: its company stays unknown, not guessed.
        assert companies == {1: 42, 2: None}
    finally:
        engine.dispose()
