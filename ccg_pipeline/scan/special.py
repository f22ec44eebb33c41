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
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from functools import cache

# Category -> alternatives (regex fragments; matched at a word start, case-insensitive).
SPECIAL_CATEGORY_TERMS: dict[str, tuple[str, ...]] = {
    # Terms about a person, not goods: "diagnostic reagents", "pregnancy test kits", "disability
    # aids" and "diabetic food" are tariff headings a customs note may well mention.
    "health": (
        r"diagnosed with",
        r"(?:her|his|a|the) diagnosis\b",
        r"cancer\b",
        r"diabetes\b",
        r"(?:is|am|was|she's|she is) pregnant",
        r"hiv[- ]positive",
        r"(?:suffers? from|has|with|treated for) depression",
        r"sick (?:leave|note)",
        r"medical condition",
        r"mental (?:health|illness)",
        r"(?:has|with) a disability",
        r"(?:long-term|serious|chronic) illness",
        r"chemotherap\w*",
        r"burn-?out\b",
        r"sjukskriv\w*",
        r"(?:har|fick|lider av) (?:en )?sjukdom\w*",
        r"gravid\b",
        r"cellgift\w*",
        r"diagnosen\b",
        r"psykisk ohälsa",
        r"utbränd\w*",
    ),
    "ethnicity": (
        r"ethnic (?:origin|background|group|minority)",
        r"ethnicity",
        r"racial (?:origin|background)",
        r"etnisk\w* (?:bakgrund|ursprung|tillhörighet)",
        r"etnicitet\w*",
        r"hudf[äa]rg\w*",
    ),
    "religion": (
        r"religion\b",
        r"religious (?:belief|faith|view|observance)s?",
        r"religiös\w* (?:tro|övertygelse|åskådning)",
        r"(?:is|am|a practising|a devout) (?:muslim|jew|jewish|hindu|buddhist|sikh|catholic)",
        r"är (?:muslim|jude|judisk|hindu|buddhist|sikh|katolik)",
        r"(?:attends|goes to|at) (?:the |a )?(?:mosque|synagogue|temple|church)\b",
        r"(?:går i|besöker) (?:moskén|synagogan|kyrkan)",
        r"fast(?:s|ing)? for ramadan",
        r"fastar under ramadan",
        r"atheis\w*",
        r"ateis\w*",
    ),
    "politics": (
        r"political (?:opinion|view|party|affiliation|belief)s?",
        r"politisk\w* (?:åsikt|uppfattning|tillhörighet|parti)\w*",
        r"(?:labour|conservative|tory|green|lib ?dem|snp) party member\w*",
        r"member of the (?:labour|conservative|green|liberal democrat|reform uk) party",
        r"votes? (?:for )?(?:labour|conservative|tory|lib ?dem|snp)\b",
        r"partimedlem\w*",
        r"sverigedemokrat\w*",
        r"socialdemokrat\w*",
        r"v[äa]nsterpartist\w*",
    ),
    # "European Union member states" and "customs union" are not trade unions.
    "trade_union": (
        r"trade unions?\b",
        r"union (?:member|membership|rep|representative|steward)s?\b(?! states?)",
        r"fackf[öo]rening\w*",
        r"fackförbund\w*",
        r"fackmedlem\w*",
        r"facket\b",
        r"fackligt?\b",
        r"facklig\w*",
    ),
    "sex_life": (
        r"sex life",
        r"sexual (?:orientation|preference|life)",
        r"(?:is|am) (?:gay|lesbian|bisexual|transgender)",
        r"homosexu\w*",
        r"sexuell\w* l[äa]ggning",
        r"bisexuell\w*",
        r"hbtq\w*",
        r"lgbt\w*",
    ),
    # Data about a person's body, not "certificate fingerprints" or "genetically modified soya".
    "biometrics": (
        r"(?:his|her|their|my|your|staff|employee)s?'? fingerprints?",
        r"fingerprint (?:scan|reader|data)",
        r"biometric (?:data|scan|identification|passport photo)",
        r"facial recognition",
        r"(?:iris|retina) scans?",
        r"dna (?:sample|test|profile)s?",
        r"genetic (?:data|test|information|condition)s?",
        r"fingeravtryck\w*",
        r"biometrisk\w* (?:data|uppgift)\w*",
        r"ansiktsigenk[äa]nning\w*",
        r"genetisk\w* (?:data|uppgift|test)\w*",
    ),
    # A person's record, not "a criminal offence under CEMA s.170" or "the Prison Service".
    "criminal": (
        r"criminal (?:record|conviction|history)s?",
        r"convicted (?:of|for)\b",
        r"previous convictions?",
        r"served (?:time|a sentence)",
        r"(?:in|from|out of|released from|sent to) (?:prison|jail)\b",
        r"jailed\b",
        r"imprisoned\b",
        r"d[öo]md för",
        r"brottsregist\w*",
        r"straffregist\w*",
        r"belastningsregist\w*",
        r"(?:satt i|dömd till|släppt från) f[äa]ngelse\w*",
        r"åtalad\w*",
    ),
}

# Signs that a record is about a child (the notice: the site is not meant for children).
_AGE = r"(?:[5-9]|1[0-7])"
CHILD_TERMS: dict[str, tuple[str, ...]] = {
    "stated_age": (
        # First person, with the unit: "a 10-year-old vehicle", "whisky aged 12", "I am 15
        # years in the trade" and "I'm 10 mins late" are customs business.
        rf"i(?: am|'m) {_AGE} (?:years? old|yrs? old|y/?o)\b",
        rf"jag är {_AGE} år(?! i)\b",
    ),
    "school": (
        r"school (?:pupil|project|homework)s?",
        r"my (?:teacher|homework)\b",
        r"pupil at\b",
        r"gymnasieelev\w*",
        r"går i (?:högstadiet|mellanstadiet|lågstadiet|\d\s?:an)",
        r"skolarbete\w*",
        r"min lärare\b",
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
    """One alternation with a named group per category: a single pass over the text. The word
    boundary is tested once per position, not once per category: about 40% less time per CRM
    note, the hottest part of CRM activity ingest."""
    names = [name for name, _ in terms]
    groups = "|".join(
        rf"(?P<g{i}>{'|'.join(alternatives)})" for i, (_, alternatives) in enumerate(terms)
    )
    return re.compile(rf"\b(?:{groups})", re.IGNORECASE), names


def _categories(text: str | None, terms: dict[str, tuple[str, ...]]) -> set[str]:
    if not text:
        return set()
    regex, names = _compiled(tuple(terms.items()))
    return {names[int(m.lastgroup[1:])] for m in regex.finditer(text) if m.lastgroup}


def special_categories(
    text: str | None, *, screened_clean: AbstractSet[str] = frozenset()
) -> set[str]:
    """The special categories (and `criminal`) the text mentions; empty for clean text (and for
    a text in `screened_clean`, which `screen_clean` found to mention none)."""
    if text in screened_clean:
        return set()
    return _categories(text, SPECIAL_CATEGORY_TERMS)


@cache
def _screen_pattern() -> str:
    """Every special-category alternative in one RE2 pattern, for ASCII text only. On ASCII text
    RE2 and Python agree on case, `\\b` and `\\w`; the lookaheads RE2 lacks are dropped (the screen
    only gets broader), and `\\s` gets the ASCII characters Python counts as space and RE2 does
    not (\\x0b, \\x1c-\\x1f). A text the screen passes is confirmed by the Python pattern."""
    alternatives = [
        _LOOKAHEAD.sub("", alternative).replace(r"\s", r"[\s\x0b\x1c-\x1f]")
        for terms in SPECIAL_CATEGORY_TERMS.values()
        for alternative in terms
    ]
    return rf"\b(?:{'|'.join(alternatives)})"


_LOOKAHEAD = re.compile(r"\(\?![^()]*\)")


def screen_clean(texts: Iterable[str | None]) -> set[str]:
    """Of `texts`, those that certainly mention no special category: ASCII texts in which one
    RE2 pass over all of them (through Arrow) finds no candidate. Non-ASCII texts are never in
    it (Python's Unicode case folding and word boundaries decide those)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    candidates = sorted({t for t in texts if t and t.isascii()})
    if not candidates:
        return set()
    maybe = pc.match_substring_regex(
        pa.array(candidates, pa.string()), _screen_pattern(), ignore_case=True
    )
    return {text for text, hit in zip(candidates, maybe.to_pylist(), strict=True) if not hit}


def child_indicators(text: str | None) -> set[str]:
    """Kinds of sign (stated_age, school, guardian) that the text is about a child."""
    return _categories(text, CHILD_TERMS)
