"""The synthetic CCG world, defined once: the vocabulary every generator draws from and the
customer cases the notice's rules turn on.

`generate.py` (the demo and the tests, one Faker call at a time), `bulk.py` (benchmarks, numpy
draws over value pools) and `world.py` (the soak's evolving world) all read this module, so a new
case or a changed share is one edit here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

LOCALES = {
    "GB": "en_GB",
    "IE": "en_IE",
    "SE": "sv_SE",
    "DE": "de_DE",
    "FR": "fr_FR",
    "NL": "nl_NL",
    "PL": "pl_PL",
    "ES": "es_ES",
}
COUNTRY_WEIGHTS = {"GB": 45, "IE": 5, "SE": 20, "DE": 10, "FR": 6, "NL": 6, "PL": 4, "ES": 4}
SECTORS = [
    "Freight forwarding",
    "Manufacturing",
    "Retail",
    "Wholesale",
    "Food and drink",
    "Pharmaceuticals",
    "Automotive",
    "E-commerce",
]
SERVICES = {
    "customs-declarations": 240_000,
    "customs-software-licence": 480_000,
    "tariff-classification": 120_000,
    "aeo-consultancy": 360_000,
    "training": 60_000,
}
JOB_TITLES = [
    "Customs Manager",
    "Head of Logistics",
    "Finance Director",
    "Import Coordinator",
    "Export Administrator",
    "Supply Chain Analyst",
    "Operations Director",
    "Trade Compliance Officer",
    "Chief Executive",
    "Accounts Payable Clerk",
]
INTERESTS = ["brexit", "aeo", "tariffs", "ncts", "cds", "excise", "safety-security", "training"]
USER_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:132.0) Gecko/20100101 Firefox/132.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "curl/8.5.0",
]
WEB_PATHS = [
    "/",
    "/services/customs-declarations",
    "/services/tariff-classification",
    "/services/aeo-consultancy",
    "/software/features",
    "/software/pricing",
    "/blog/ncts-phase-5-explained",
    "/blog/windsor-framework-guide",
    "/contact-us",
    "/portal/login",
    "/portal/dashboard",
    "/portal/declarations",
    "/assets/css/site.css",
    "/assets/js/app.js",
    "/favicon.ico",
]
NOTE_TEXTS = [
    "Called about renewal, wants a quote for the full licence.",
    "Asked about CDS migration timelines; sent the guide.",
    "Interested in AEO consultancy next quarter.",
    "Invoice query resolved, credit note issued.",
    "Prefers email contact in the mornings.",
    "Requested training for two new staff members.",
    "Ringde om tullklassificering, skickade offert.",
    "Vill ha demo av portalen nästa vecka.",
]
ENQUIRY_TEXTS = [
    "Hello, we import machinery from Germany and need help with customs declarations.",
    "Could you send pricing for the customs software licence?",
    "We need advice on the Windsor Framework for goods to Northern Ireland.",
    "Hej, vi behöver hjälp med tulldeklarationer för export till Storbritannien.",
    "Do you offer AEO certification support?",
]


def add_years(day: dt.date, years: int) -> dt.date:
    """The same calendar day `years` later (earlier when negative); 29 February becomes the 28th."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


@dataclass(frozen=True)
class Ceasing:
    """When a customer of a case ceased: `years` (a half-open range) before the as-of date, or
    before the 5 April of that year when `at_year_end`, then `sign` times a day count drawn from
    `days` (half-open)."""

    years: tuple[int, int]
    days: tuple[int, int]
    sign: int = -1
    at_year_end: bool = False

    def anchor(self, as_of: dt.date, years: int) -> dt.date:
        if self.at_year_end:
            return dt.date(as_of.year - years, 4, 5)
        return add_years(as_of, -years)


@dataclass(frozen=True)
class CustomerCase:
    name: str
    weight: int
    ceasing: Ceasing | None  # None: still a customer


# Placed around the six-year line (N-RET) and the 5 April year end; weights are shares.
CUSTOMER_CASES = (
    CustomerCase("active", 40, None),
    CustomerCase("ceased_2y", 10, Ceasing(years=(2, 3), days=(0, 120))),
    CustomerCase("ceased_5y", 10, Ceasing(years=(5, 6), days=(0, 120))),
    CustomerCase("ceased_just_under_6y", 8, Ceasing(years=(6, 7), days=(1, 40), sign=1)),
    CustomerCase("ceased_just_over_6y", 8, Ceasing(years=(6, 7), days=(1, 40))),
    CustomerCase("ceased_7y_plus", 12, Ceasing(years=(7, 11), days=(0, 365))),
    CustomerCase(
        "ceased_at_year_end", 8, Ceasing(years=(5, 8), days=(-1, 2), sign=1, at_year_end=True)
    ),
    CustomerCase("trial_only", 4, Ceasing(years=(0, 1), days=(60, 900))),
)
CASES_BY_NAME = {case.name: case for case in CUSTOMER_CASES}

PORTAL_DDL = """
CREATE TABLE companies (id INTEGER PRIMARY KEY, name TEXT, company_number TEXT, vat_number TEXT,
  country_code TEXT, sector TEXT, employee_count INTEGER, annual_revenue INTEGER, address_line TEXT,
  postcode TEXT, city TEXT, created_at TEXT, closed_at TEXT, updated_at TEXT);
CREATE TABLE users (id INTEGER PRIMARY KEY, company_id INTEGER REFERENCES companies(id), email TEXT,
  username TEXT, first_name TEXT, last_name TEXT, job_title TEXT, phone TEXT, password_hash TEXT,
  interests TEXT, timezone TEXT, created_at TEXT, closed_at TEXT, last_login_at TEXT, updated_at TEXT);
CREATE TABLE contracts (id INTEGER PRIMARY KEY, company_id INTEGER, licence_type TEXT, service TEXT,
  start_date TEXT, end_date TEXT, annual_fee NUMERIC, updated_at TEXT);
CREATE TABLE orders (id INTEGER PRIMARY KEY, company_id INTEGER, user_id INTEGER, service TEXT,
  ordered_at TEXT, amount NUMERIC, updated_at TEXT);
CREATE TABLE invoices (id INTEGER PRIMARY KEY, company_id INTEGER, order_id INTEGER,
  invoice_number TEXT, issued_on TEXT, due_on TEXT, amount NUMERIC, vat NUMERIC, status TEXT,
  updated_at TEXT);
CREATE TABLE payments (id INTEGER PRIMARY KEY, invoice_id INTEGER, paid_at TEXT, amount NUMERIC,
  method TEXT, card_number_masked TEXT, bank_account_masked TEXT, updated_at TEXT);
"""
