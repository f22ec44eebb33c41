"""The migrations: each revision defines the tables it creates (frozen), so upgrading a warehouse
stopped at an old revision is the real upgrade path; the head equals `warehouse/schema.py`."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from ccg_pipeline.warehouse import migrate
from ccg_pipeline.warehouse import schema as s
from ccg_pipeline.warehouse.engine import create_warehouse_engine

pytestmark = pytest.mark.integration

HEAD = ScriptDirectory(str(migrate.MIGRATIONS_DIR)).get_current_head()


def _include_zone(name: str | None, type_: str, _parent: Any) -> bool:
    if type_ == "schema":
        return name in s.ZONES
    return not (type_ == "table" and name == "alembic_version")


def _default_differs(
    _context: Any,
    _inspected: Any,
    _metadata: Any,
    inspected_default: str | None,
    _metadata_default: Any,
    rendered_metadata_default: str | None,
) -> bool | None:
    """SQLite reflects `DEFAULT ''` as `('')`, which Alembic takes for another value than the
    metadata's empty string: the same literal without parentheses and quotes is no change;
    anything else is Alembic's to judge."""
    if inspected_default is None or rendered_metadata_default is None:
        return None

    def literal(text: str) -> str:
        return text.strip("()").strip("'\"")

    return False if literal(inspected_default) == literal(rendered_metadata_default) else None


def schema_drift(engine: sa.Engine) -> list[Any]:
    """What `alembic check` would report: the migrated warehouse against the metadata."""
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "include_schemas": True,
                "include_name": _include_zone,
                "compare_type": True,
                "compare_server_default": _default_differs,
            },
        )
        return list(compare_metadata(context, s.metadata))


def test_the_migrated_head_is_the_schema(warehouse_url: str) -> None:
    """Tables, columns, types, defaults, indexes and comments of a warehouse built by the
    migrations equal warehouse/schema.py: a schema change without a revision fails here."""
    engine = create_warehouse_engine(warehouse_url)
    try:
        assert migrate.upgrade(engine) == HEAD
        drift = schema_drift(engine)
        assert drift == []
        assert len(s.metadata.tables) > 40  # the comparison had the whole warehouse to judge
    finally:
        engine.dispose()


def test_a_schema_change_without_a_revision_is_drift(warehouse_url: str) -> None:
    """The negative control: a column added to the metadata only is reported."""
    engine = create_warehouse_engine(warehouse_url)
    extra = sa.Column("drift_probe", sa.Integer)
    try:
        migrate.upgrade(engine)
        s.companies.append_column(extra)
        drift = schema_drift(engine)
    finally:
        s.companies._columns.remove(extra)
        engine.dispose()
    assert [(d[0], d[3].name) for d in drift] == [("add_column", "drift_probe")]


def test_0004_rekeys_old_roll_ups_and_keeps_their_rows(warehouse_url: str) -> None:
    engine = create_warehouse_engine(warehouse_url)
    try:
        migrate.upgrade(engine, "0003")
        with engine.begin() as conn:  # the roll-up as revision 0003 made it
            conn.execute(
                sa.text("INSERT INTO staging.anon_customers VALUES ('2019-Q2', 'GB', 'Retail', 12)")
            )
            web_before = {c["name"] for c in sa.inspect(conn).get_columns("web_access", "personal")}
        assert "visitor_region" not in web_before
        assert migrate.upgrade(engine, "0004") == "0004"
        assert migrate.upgrade(engine) == HEAD
        assert migrate.upgrade(engine) == HEAD  # idempotent
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
        with engine.begin() as conn:  # the tables as revision 0007 left them
            payments = {c["name"] for c in sa.inspect(conn).get_columns("payments", "personal")}
            assert "company_id" not in payments
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
        assert migrate.upgrade(engine) == HEAD
        assert migrate.upgrade(engine) == HEAD  # idempotent
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
