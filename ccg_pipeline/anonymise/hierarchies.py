"""Generalisation hierarchies for quasi-identifiers (N-ANON, N-AGG), vectorised over pandas.

Every hierarchy is a list of levels, level 0 being the value itself and the last level `*`
(fully suppressed). The k-anonymity search in `kanon.py` climbs these levels.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from ccg_pipeline.anonymise.labels import (
    BROWSERS,
    JOB_FAMILIES,
    OPERATING_SYSTEMS,
    OTHER,
    REGION_OF,
    REST_OF_WORLD,
    Rules,
    first_label,
    site_section,
)

SUPPRESSED = "*"

Level = Callable[[pd.Series], pd.Series]

EMPLOYEE_BANDS = [(0, "1-9"), (10, "10-49"), (50, "50-249"), (250, "250-999"), (1000, "1000+")]
REVENUE_BANDS_GBP = [
    (0, "<£1m"),
    (1_000_000, "£1m-£10m"),
    (10_000_000, "£10m-£50m"),
    (50_000_000, "£50m+"),
]
# Coarser bands, one level up: they keep some detail where the fine bands would single out.
EMPLOYEE_BANDS_COARSE = [(0, "1-49"), (50, "50-249"), (250, "250+")]
REVENUE_BANDS_GBP_COARSE = [(0, "<£10m"), (10_000_000, "£10m+")]
# Sectors grouped by what the customer does with goods, one level above the sector.
SECTOR_GROUPS = {
    "Making goods": ("Manufacturing", "Pharmaceuticals", "Automotive", "Food and drink"),
    "Selling goods": ("Retail", "Wholesale", "E-commerce"),
    "Moving goods": ("Freight forwarding",),
}
OTHER_SECTORS = "Other sectors"
SECTOR_GROUP_OF = {sector: group for group, sectors in SECTOR_GROUPS.items() for sector in sectors}


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


def five_years(series: pd.Series) -> pd.Series:
    """Dates cut to five-year spans that start on a year ending in 0 or 5: `2015-2019`."""
    years = _parse_dates(series).dt.year
    start = (years // 5 * 5).astype("Int64")
    labels = start.astype(str) + "-" + (start + 4).astype(str)
    return labels.astype(object).where(years.notna(), SUPPRESSED)


def date_levels() -> list[Level]:
    """day -> month -> quarter -> year -> five years -> *"""
    return [
        _date_level("D"),
        _date_level("M"),
        _date_level("Q"),
        _date_level("Y"),
        five_years,
        suppress_all,
    ]


def country_to_region(series: pd.Series) -> pd.Series:
    codes = series.astype(str).str.upper()
    return codes.map(REGION_OF).fillna(REST_OF_WORLD).where(series.notna(), SUPPRESSED)


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
    """exact headcount -> band -> coarse band -> *"""
    return [
        as_text,
        lambda s: _band(s, EMPLOYEE_BANDS),
        lambda s: _band(s, EMPLOYEE_BANDS_COARSE),
        suppress_all,
    ]


def revenue_levels() -> list[Level]:
    """exact revenue -> band -> coarse band -> *"""
    return [
        as_text,
        lambda s: _band(s, REVENUE_BANDS_GBP),
        lambda s: _band(s, REVENUE_BANDS_GBP_COARSE),
        suppress_all,
    ]


def sector_group(series: pd.Series) -> pd.Series:
    return series.map(SECTOR_GROUP_OF).fillna(OTHER_SECTORS).where(series.notna(), SUPPRESSED)


def sector_levels() -> list[Level]:
    """sector -> sector group -> *"""
    return [as_text, sector_group, suppress_all]


def _first_match(series: pd.Series, rules: Rules, default: str) -> pd.Series:
    """The label of the first rule whose pattern occurs in the value. Each distinct value is
    matched once (titles and user agents repeat a lot), then the labels are broadcast."""
    codes, distinct = pd.factorize(series.fillna("").astype(str), sort=False)
    labels = np.array([first_label(v, rules, default) for v in distinct], dtype=object)
    out = labels[codes] if len(distinct) else np.full(len(series), default, dtype=object)
    return pd.Series(out, index=series.index, dtype=object)


def job_family(series: pd.Series) -> pd.Series:
    return _first_match(series, JOB_FAMILIES, OTHER)


def job_levels() -> list[Level]:
    """job title -> job family -> *"""
    return [as_text, job_family, suppress_all]


def browser_family(series: pd.Series) -> pd.Series:
    return _first_match(series, BROWSERS, OTHER)


def os_family(series: pd.Series) -> pd.Series:
    return _first_match(series, OPERATING_SYSTEMS, OTHER)


def url_section(series: pd.Series) -> pd.Series:
    """URL -> first path segment, query string and fragment removed (identifiers live there)."""
    return series.map(site_section, na_action=None).astype(object)


def ip_address(series: pd.Series) -> pd.Series:
    """IP -> nothing: no level of an address is safe to publish."""
    return suppress_all(series)
