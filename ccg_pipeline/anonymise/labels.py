"""Per-value labels that generalise one value at a time: regions, job families, browser and OS
families, site sections. Pure Python (no pandas), because ingest calls some of them per log line;
`hierarchies.py` applies the same rules to whole columns.
"""

from __future__ import annotations

import functools
import re

Rules = list[tuple[str, re.Pattern[str]]]

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
REST_OF_WORLD = "Rest of world"
REGION_OF = {country: region for region, countries in REGIONS.items() for country in countries}
# Every region label a published table can show.
REGION_LABELS = [*REGIONS, REST_OF_WORLD, UNKNOWN_REGION]
# What a value matching no rule of a label list becomes.
OTHER = "Other"

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


def first_label(value: str, rules: Rules, default: str) -> str:
    """The label of the first rule whose pattern occurs in `value`."""
    return next((label for label, pattern in rules if pattern.search(value)), default)


@functools.lru_cache(maxsize=16_384)
def browser_of(agent: str | None) -> str:
    """One user agent's browser family (ingest calls this per log line; agents repeat)."""
    return first_label(agent or "", BROWSERS, OTHER)


@functools.lru_cache(maxsize=65_536)
def region_of_network(prefix: str) -> str:
    """The region of a minimised address (`81.2.69.0/24`, `2a02:c7f::/48`), from the country the
    Regional Internet Registries assigned the block to. The lookup data ships inside the `iptocc`
    wheel, so it works offline. Unknown for private, reserved or unassigned blocks."""
    return regions_of_networks([prefix])[0]


def regions_of_networks(prefixes: list[str]) -> list[str]:
    """`region_of_network` of many prefixes in one call into the lookup (its per-call cost is
    Python's, not the lookup's: the web-log batch path labels a chunk's distinct prefixes)."""
    from iptocc import country_code

    countries = country_code([prefix.split("/", 1)[0] for prefix in prefixes])
    return [
        REGION_OF.get(country, REST_OF_WORLD) if country else UNKNOWN_REGION
        for country in countries
    ]


def site_section(url: str | None) -> str:
    """First path segment, without query string or fragment: `/portal/login?x=1` -> `portal`."""
    if not isinstance(url, str) or not url.startswith("/"):
        return "other"
    path = url[1:].split("?", 1)[0].split("#", 1)[0]
    section = path.split("/", 1)[0].lower()
    if not section:
        return "home"
    plain = section.replace("-", "").replace("_", "")
    return section if plain.isalnum() and len(section) <= 40 else "other"
