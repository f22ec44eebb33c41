"""Generalisation hierarchies for quasi-identifiers (N-ANON, N-AGG), vectorised over pandas.

Every hierarchy is a list of levels, level 0 being the value itself and the last level `*`
(fully suppressed). The k-anonymity search in `kanon.py` climbs these levels.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

import numpy as np
import pandas as pd

SUPPRESSED = "*"

Level = Callable[[pd.Series], pd.Series]

REGIONS = {
    "UK & Ireland": ("GB", "IE", "IM", "JE", "GG"),
    "Nordics": ("SE", "NO", "DK", "FI", "IS"),
    "Western Europe": ("DE", "FR", "NL", "BE", "LU", "AT", "CH", "LI"),
    "Southern Europe": ("ES", "PT", "IT", "GR", "MT", "CY"),
    "Central & Eastern Europe": (
        *("PL", "CZ", "SK", "HU", "SI", "HR", "RO", "BG", "EE", "LV", "LT", "RU", "UA", "BY"),
        *("MD", "RS", "BA", "ME", "MK", "AL", "XK"),
    ),
    "North America": ("US", "CA"),
    "Latin America": (
        *("MX", "BR", "AR", "CL", "CO", "PE", "VE", "EC", "UY", "PY", "BO", "CR", "PA", "GT"),
        *("DO", "CU", "HN", "SV", "NI", "JM", "TT", "PR"),
    ),
    "Asia-Pacific": (
        *("CN", "JP", "KR", "IN", "SG", "HK", "TW", "AU", "NZ", "ID", "MY", "TH", "VN", "PH"),
        *("PK", "BD", "LK", "KZ", "MN"),
    ),
    "Middle East & Africa": (
        *("TR", "IL", "AE", "SA", "QA", "KW", "BH", "OM", "JO", "LB", "IR", "IQ", "EG", "MA"),
        *("DZ", "TN", "ZA", "NG", "KE", "GH", "ET"),
    ),
}
UNKNOWN_REGION = "Unknown"
_REGION_OF = {country: region for region, countries in REGIONS.items() for country in countries}

EMPLOYEE_BANDS = [(0, "1-9"), (10, "10-49"), (50, "50-249"), (250, "250-999"), (1000, "1000+")]
REVENUE_BANDS_GBP = [
    (0, "<£1m"),
    (1_000_000, "£1m-£10m"),
    (10_000_000, "£10m-£50m"),
    (50_000_000, "£50m+"),
]

# Ordered: the first matching family wins.
JOB_FAMILIES = [
    ("Customs & compliance", re.compile(r"customs|compliance|tariff|trade|aeo", re.I)),
    ("Finance", re.compile(r"financ|account|payable|treasur|controller|cfo", re.I)),
    ("Management", re.compile(r"chief|director|head of|ceo|owner|managing|president", re.I)),
    (
        "Logistics & operations",
        re.compile(r"logistic|supply|import|export|operation|shipping|warehouse", re.I),
    ),
    ("Administration", re.compile(r"admin|assistant|coordinator|clerk|office", re.I)),
]

BROWSERS = [  # order matters: Edge and bots announce Chrome or Safari too
    ("Bot", re.compile(r"bot|crawl|spider|slurp|curl|wget|python-requests", re.I)),
    ("Edge", re.compile(r"Edg/|Edge/")),
    ("Firefox", re.compile(r"Firefox/")),
    ("Chrome", re.compile(r"Chrome/|CriOS/")),
    ("Safari", re.compile(r"Safari/")),
]
OPERATING_SYSTEMS = [
    ("Android", re.compile(r"Android")),
    ("iOS", re.compile(r"iPhone|iPad|iOS")),
    ("Windows", re.compile(r"Windows")),
    ("macOS", re.compile(r"Mac OS X|Macintosh")),
    ("Linux", re.compile(r"Linux|X11")),
]


def suppress_all(series: pd.Series) -> pd.Series:
    return pd.Series(SUPPRESSED, index=series.index, dtype=object)


def as_text(series: pd.Series) -> pd.Series:
    return series.astype(object).where(series.notna(), SUPPRESSED).astype(str)


def _parse_dates(series: pd.Series) -> pd.Series:
    """Timestamps from datetimes or ISO-8601 text (unparseable values become NaT)."""
    if pd.api.types.is_datetime64_any_dtype(series):
        return series
    return pd.to_datetime(series, errors="coerce", format="ISO8601")


def _date_level(unit: str) -> Level:
    """Dates cut to `unit` (D, M, Q or Y), as ISO-like labels; vectorised through numpy."""

    def level(series: pd.Series) -> pd.Series:
        dates = _parse_dates(series)
        missing = dates.isna().to_numpy()
        if unit == "D":
            labels = dates.dt.strftime("%Y-%m-%d").to_numpy(dtype=object)
        else:
            # Months since 1970 as integers (NaT lands far below any real month; masked below).
            months = dates.to_numpy(dtype="datetime64[ns]").astype("datetime64[M]").astype(np.int64)
            years = months // 12 + 1970
            if unit == "M":
                codes, label = months, lambda m: f"{m // 12 + 1970}-{m % 12 + 1:02d}"
            elif unit == "Q":
                codes, label = months - months % 3, lambda m: f"{m // 12 + 1970}-Q{m % 12 // 3 + 1}"
            else:
                codes, label = years, str
            uniques, inverse = np.unique(codes, return_inverse=True)
            labels = np.array([label(int(u)) for u in uniques], dtype=object)[inverse]
        labels[missing] = SUPPRESSED
        return pd.Series(labels, index=series.index, dtype=object)

    return level


def date_levels() -> list[Level]:
    """day -> month -> quarter -> year -> *"""
    return [_date_level("D"), _date_level("M"), _date_level("Q"), _date_level("Y"), suppress_all]


def country_to_region(series: pd.Series) -> pd.Series:
    codes = series.astype(str).str.upper()
    return codes.map(_REGION_OF).fillna("Rest of world").where(series.notna(), SUPPRESSED)


def country_levels() -> list[Level]:
    """country -> region -> *"""
    return [as_text, country_to_region, suppress_all]


def _band(series: pd.Series, bands: list[tuple[int, str]]) -> pd.Series:
    values = pd.to_numeric(series, errors="coerce")
    edges = np.array([low for low, _ in bands], dtype=float)
    labels = np.array([label for _, label in bands], dtype=object)
    index = np.searchsorted(edges, values.fillna(-1).to_numpy(), side="right") - 1
    out = np.where(index >= 0, labels[np.clip(index, 0, None)], SUPPRESSED)
    return pd.Series(out, index=series.index, dtype=object).where(values.notna(), SUPPRESSED)


def employee_levels() -> list[Level]:
    """exact headcount -> band -> *"""
    return [as_text, lambda s: _band(s, EMPLOYEE_BANDS), suppress_all]


def revenue_levels() -> list[Level]:
    """exact revenue -> band -> *"""
    return [as_text, lambda s: _band(s, REVENUE_BANDS_GBP), suppress_all]


def _label(value: str, rules: list[tuple[str, re.Pattern[str]]], default: str) -> str:
    return next((label for label, pattern in rules if pattern.search(value)), default)


def _first_match(
    series: pd.Series, rules: list[tuple[str, re.Pattern[str]]], default: str
) -> pd.Series:
    """The label of the first rule whose pattern occurs in the value. Each distinct value is
    matched once (titles and user agents repeat a lot), then the labels are broadcast."""
    codes, distinct = pd.factorize(series.fillna("").astype(str), sort=False)
    labels = np.array([_label(v, rules, default) for v in distinct], dtype=object)
    out = labels[codes] if len(distinct) else np.full(len(series), default, dtype=object)
    return pd.Series(out, index=series.index, dtype=object)


def job_family(series: pd.Series) -> pd.Series:
    return _first_match(series, JOB_FAMILIES, "Other")


def job_levels() -> list[Level]:
    """job title -> job family -> *"""
    return [as_text, job_family, suppress_all]


def browser_family(series: pd.Series) -> pd.Series:
    return _first_match(series, BROWSERS, "Other")


@functools.lru_cache(maxsize=16_384)
def browser_of(agent: str | None) -> str:
    """One user agent's browser family (ingest calls this per log line; agents repeat)."""
    return _label(agent or "", BROWSERS, "Other")


@functools.lru_cache(maxsize=65_536)
def region_of_network(prefix: str) -> str:
    """The region of a minimised address (`81.2.69.0/24`, `2a02:c7f::/48`), from the country the
    Regional Internet Registries assigned the block to. The lookup data ships inside the `iptocc`
    wheel, so it works offline. Unknown for private, reserved or unassigned blocks."""
    from iptocc import country_code

    country = country_code(prefix.split("/", 1)[0])
    return _REGION_OF.get(country, "Rest of world") if country else UNKNOWN_REGION


def os_family(series: pd.Series) -> pd.Series:
    return _first_match(series, OPERATING_SYSTEMS, "Other")


def url_section(series: pd.Series) -> pd.Series:
    """URL -> first path segment, query string and fragment removed (identifiers live there)."""
    from ccg_pipeline.ingest.logs import site_section

    return series.map(site_section, na_action=None).astype(object)


def ip_address(series: pd.Series) -> pd.Series:
    """IP -> nothing: no level of an address is safe to publish."""
    return suppress_all(series)
