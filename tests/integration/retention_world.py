"""A hand-built warehouse for retention tests: customers ceased on chosen days, prospects, logs."""

from __future__ import annotations

import datetime as dt
import itertools

import sqlalchemy as sa

from ccg_pipeline.config import DEV_PSEUDONYM_KEY
from ccg_pipeline.ingest.common import pseudonym
from ccg_pipeline.retention import holds
from ccg_pipeline.warehouse import migrate
from ccg_pipeline.warehouse import schema as s
from ccg_pipeline.warehouse.engine import create_warehouse_engine
from ccg_pipeline.warehouse.rollups import roll_up_web_file

T0 = dt.datetime(2010, 1, 1)


def midday(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(12))


class World:
    def __init__(self, url: str) -> None:
        self.engine = create_warehouse_engine(url)
        migrate.upgrade(self.engine)
        self._ids = itertools.count(1)

    def _subject(self, conn: sa.Connection, email: str) -> int:
        return conn.execute(
            sa.insert(s.subjects).values(
                email_norm=email,
                subject_key=pseudonym(DEV_PSEUDONYM_KEY, email),
                first_seen_at=T0,
                updated_at=T0,
            )
        ).inserted_primary_key[0]

    def customer(
        self, ceased: dt.date | None, *, last_payment: dt.date | None = None
    ) -> tuple[int, str]:
        """A company with one user, a contract ending on `ceased` (open when None), one invoice
        and its payment (on `last_payment`, default ten days before ceasing)."""
        n = next(self._ids)
        email = f"user{n}@company{n}.example"
        end = ceased or dt.date(2030, 1, 1)
        with self.engine.begin() as conn:
            subject = self._subject(conn, email)
            conn.execute(
                sa.insert(s.companies).values(
                    company_id=n,
                    name=f"Company {n}",
                    country="GB",
                    sector="Retail",
                    created_at=T0,
                    closed_at=midday(ceased) if ceased else None,
                    updated_at=T0,
                )
            )
            conn.execute(
                sa.insert(s.contracts).values(
                    contract_id=n,
                    company_id=n,
                    licence_type="full",
                    service="training",
                    starts_on=dt.date(2009, 1, 1),
                    ends_on=ceased,
                    annual_fee_minor=100_000,
                    updated_at=T0,
                )
            )
            issued = end - dt.timedelta(days=40)
            conn.execute(
                sa.insert(s.invoices).values(
                    invoice_id=n,
                    company_id=n,
                    invoice_number=f"INV-{n}",
                    issued_on=issued,
                    due_on=issued,
                    amount_minor=25_000,
                    vat_minor=5_000,
                    status="paid",
                    updated_at=T0,
                )
            )
            paid = last_payment or end - dt.timedelta(days=10)
            conn.execute(
                sa.insert(s.payments).values(
                    payment_id=n,
                    invoice_id=n,
                    paid_at=midday(paid),
                    amount_minor=30_000,
                    method="card",
                    updated_at=T0,
                )
            )
            conn.execute(
                sa.insert(s.portal_users).values(
                    user_id=n,
                    company_id=n,
                    subject_id=subject,
                    email=email,
                    username=f"u{n}",
                    password_hash="x",
                    created_at=T0,
                    closed_at=midday(ceased) if ceased else None,
                    updated_at=T0,
                )
            )
            conn.execute(
                sa.insert(s.crm_contacts).values(
                    crm_contact_id=n,
                    subject_id=subject,
                    email=email,
                    country="GB",
                    lifecycle_stage="customer",
                    marketing_status="Marketing contact",
                    created_at=T0,
                    export_date=T0.date(),
                )
            )
        return n, email

    def web_hits(self, days: list[dt.date], *, rolled_up: bool = True) -> None:
        """Log lines, one file per day; rolled up per file as the ingest does, unless told not."""
        with self.engine.begin() as conn:
            conn.execute(
                sa.insert(s.web_access),
                [
                    {
                        "source_file": f"access.log-{d:%Y%m%d}",
                        "line_no": next(self._ids),
                        "requested_at": midday(d),
                        "ip_prefix": "10.0.0.0/24",
                        "url": "/portal/login",
                        "site_section": "portal",
                        "status": 200,
                    }
                    for d in days
                ],
            )
            if rolled_up:
                for day in set(days):
                    roll_up_web_file(conn, f"access.log-{day:%Y%m%d}")

    def hold(self, email: str, at: dt.datetime = T0) -> int:
        return holds.add_hold(self.engine, DEV_PSEUDONYM_KEY, email, "test hold", at=at)

    def release(self, hold_id: int, at: dt.datetime) -> None:
        holds.release_hold(self.engine, hold_id, at=at)

    def ids(self, table: sa.Table) -> set:
        key = next(iter(table.primary_key.columns))
        with self.engine.connect() as conn:
            return {r[0] for r in conn.execute(sa.select(key))}

    def scalar(self, sql: str) -> object:
        with self.engine.connect() as conn:
            return conn.execute(sa.text(sql)).scalar()
