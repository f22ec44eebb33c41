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
        assert migrate.upgrade(engine) == "0007"
        assert migrate.upgrade(engine) == "0007"  # idempotent
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
