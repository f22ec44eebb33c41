"""Special-category and criminal-offence content, and signs of a child, in free text (N-NOSPECIAL,
N-CHILD), in English and Swedish.

The notice says CCG collects none of this (s.2) and does not knowingly collect children's data.
It can still arrive in CRM notes and website enquiries, so free text is screened at ingest and
again by the evidence step. Terms are chosen for a customs consultancy's text: words that are
ordinary trade vocabulary there are left out or need context ("health certificate", "customs
union", "in good faith", "halal", "offence" alone, "European Union"), and so are words that are
also first names ("Christian", "Kristen").

Matching is by whole word start (`\\b`), case-insensitive; a Swedish stem also matches its
inflections (`sjukskriv` finds "sjukskriven", "sjukskrivning"). Only category names leave this
module, never the matched text.
"""

from __future__ import annotations

import re
from functools import cache

# Category -> alternatives (regex fragments; matched at a word start, case-insensitive).
SPECIAL_CATEGORY_TERMS: dict[str, tuple[str, ...]] = {
    "health": (
        r"diagnos\w*",
        r"cancer\w*",
        r"diabet\w*",
        r"pregnan\w*",
        r"hiv\b",
        r"chemotherap\w*",
        r"depression\b",
        r"sick (?:leave|note)",
        r"medical condition",
        r"mental (?:health|illness)",
        r"disabilit\w*",
        r"illness\w*",
        r"burn-?out\b",
        r"sjukskriv\w*",
        r"sjukdom\w*",
        r"gravid\w*",
        r"cellgift\w*",
        r"funktionsneds[äa]tt\w*",
        r"psykisk ohälsa",
        r"utbränd\w*",
    ),
    "ethnicity": (
        r"ethnic\w*",
        r"racial\w*",
        r"etnisk\w*",
        r"etnicitet\w*",
        r"hudf[äa]rg\w*",
    ),
    "religion": (
        r"religio\w*",
        r"muslim\w*",
        r"jewish\b",
        r"judisk\w*",
        r"hindu\w*",
        r"buddhis\w*",
        r"sikh\w*",
        r"atheis\w*",
        r"ateis\w*",
        r"mosque\w*",
        r"synagog\w*",
        r"mosk[ée]\w*",
        r"ramadan\b",
    ),
    "politics": (
        r"political (?:opinion|view|party|affiliation|belief)s?",
        r"politisk\w* (?:åsikt|uppfattning|tillhörighet|parti)\w*",
        r"(?:labour|conservative|tory|green|lib ?dem|reform|snp) party member\w*",
        r"member of the (?:labour|conservative|green|liberal democrat|reform) party",
        r"votes? (?:for )?(?:labour|conservative|tory|lib ?dem|reform|snp)\b",
        r"partimedlem\w*",
        r"sverigedemokrat\w*",
        r"socialdemokrat\w*",
        r"v[äa]nsterpartist\w*",
    ),
    "trade_union": (
        r"trade unions?\b",
        r"union (?:member|membership|rep|representative|steward)s?\b",
        r"fackf[öo]rening\w*",
        r"fackmedlem\w*",
        r"fackligt?\b",
        r"facklig\w*",
    ),
    "sex_life": (
        r"sex life",
        r"sexual (?:orientation|preference|life)",
        r"gay\b",
        r"lesbian\w*",
        r"bisexual\w*",
        r"transgender\w*",
        r"homosexu\w*",
        r"sexuell\w* l[äa]ggning",
        r"bisexuell\w*",
        r"hbtq\w*",
        r"lgbt\w*",
    ),
    "biometrics": (
        r"fingerprints?\b",
        r"biometric\w*",
        r"facial recognition",
        r"(?:iris|retina) scans?",
        r"dna\b",
        r"genetic\w*",
        r"fingeravtryck\w*",
        r"biometrisk\w*",
        r"ansiktsigenk[äa]nning\w*",
        r"genetisk\w*",
    ),
    "criminal": (
        r"criminal (?:record|conviction|offence|history)s?",
        r"convicted\b",
        r"previous convictions?",
        r"served (?:time|a sentence)",
        r"prison\w*",
        r"jail\w*",
        r"imprison\w*",
        r"d[öo]md för",
        r"brottsregist\w*",
        r"straffregist\w*",
        r"belastningsregist\w*",
        r"f[äa]ngelse\w*",
        r"åtalad\w*",
    ),
}

# Signs that a record is about a child (the notice: the site is not meant for children).
_AGE = r"(?:[5-9]|1[0-7])"
CHILD_TERMS: dict[str, tuple[str, ...]] = {
    "stated_age": (
        # First person only: "a 10-year-old vehicle" or "whisky aged 12" is customs business.
        rf"i(?: am|'m) {_AGE} (?:years? old|yrs?\b|y/?o\b)",
        rf"i(?: am|'m) (?:only )?{_AGE}\b(?! ?(?:%|percent|minutes|hours|days|weeks|months))",
        rf"jag är {_AGE} år",
    ),
    "school": (
        r"school (?:pupil|project|homework)s?",
        r"my (?:teacher|homework|school)\b",
        r"pupil at\b",
        r"gymnasieelev\w*",
        r"högstadie\w*",
        r"mellanstadie\w*",
        r"skolarbete\w*",
        r"min lärare\b",
        r"läxa\b",
        r"läxor\b",
    ),
    "guardian": (
        r"parental consent",
        r"parent or guardian",
        r"my (?:mum|mom|dad) (?:said|says|will)",
        r"vårdnadshavare\w*",
        r"målsman\w*",
    ),
}

# Email domains that belong to schools (pupils and staff alike: an indication, not proof).
CHILD_EMAIL_DOMAIN = re.compile(r"@(?:[\w-]+\.)*sch\.uk$", re.IGNORECASE)


@cache
def _compiled(terms: tuple[tuple[str, tuple[str, ...]], ...]) -> tuple[re.Pattern[str], list[str]]:
    """One alternation with a named group per category: a single pass over the text."""
    names = [name for name, _ in terms]
    pattern = "|".join(
        rf"(?P<g{i}>\b(?:{'|'.join(alternatives)}))" for i, (_, alternatives) in enumerate(terms)
    )
    return re.compile(pattern, re.IGNORECASE), names


def _categories(text: str | None, terms: dict[str, tuple[str, ...]]) -> set[str]:
    if not text:
        return set()
    regex, names = _compiled(tuple(terms.items()))
    return {names[int(m.lastgroup[1:])] for m in regex.finditer(text) if m.lastgroup}


def special_categories(text: str | None) -> set[str]:
    """The special categories (and `criminal`) the text mentions; empty for clean text."""
    return _categories(text, SPECIAL_CATEGORY_TERMS)


def child_indicators(text: str | None) -> set[str]:
    """Kinds of sign (stated_age, school, guardian) that the text is about a child."""
    return _categories(text, CHILD_TERMS)
