"""The special-category and child lexicons (N-NOSPECIAL, N-CHILD), English and Swedish."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccg_pipeline.devtools.scenario import ENQUIRY_TEXTS, NOTE_TEXTS
from ccg_pipeline.scan.special import (
    CHILD_EMAIL_DOMAIN,
    SPECIAL_CATEGORY_TERMS,
    child_indicators,
    screen_clean,
    special_categories,
)

SPECIAL = [
    ("She is on sick leave after a cancer diagnosis.", {"health"}),
    ("Han är sjukskriven sedan mars.", {"health"}),
    ("Customer mentioned she is pregnant and wants calls before noon.", {"health"}),
    ("Asked about our policy on ethnic origin monitoring.", {"ethnicity"}),
    ("Uppgav sin etniska bakgrund i formuläret.", {"ethnicity"}),
    ("Cannot meet on Fridays, attends the mosque.", {"religion"}),
    ("Är muslim och fastar under ramadan.", {"religion"}),
    ("Said he is a Labour party member and canvasses at weekends.", {"politics"}),
    ("Hon är partimedlem i ett parti i kommunen.", {"politics"}),
    ("He is the trade union rep for the warehouse staff.", {"trade_union"}),
    ("Är fackligt aktiv och vill ha möten efter arbetstid.", {"trade_union"}),
    ("Mentioned his sexual orientation during the call.", {"sex_life"}),
    ("Berättade om sin sexuella läggning.", {"sex_life"}),
    ("Sent her fingerprints for the site access badge.", {"biometrics"}),
    ("Skickade fingeravtryck till säkerhetsavdelningen.", {"biometrics"}),
    ("He has a criminal record for smuggling.", {"criminal"}),
    ("Han är dömd för bedrägeri och satt i fängelse.", {"criminal"}),
    ("Has diabetes, and is a trade union member.", {"health", "trade_union"}),
    ("Gick med i facket och har religiös övertygelse.", {"trade_union", "religion"}),
]

CUSTOMS_LOOK_ALIKES = [
    "Health certificate needed for the food import.",
    "Goods moving within the customs union and the European Union.",
    "The importer acted in good faith.",
    "Halal and kosher certification for meat imports.",
    "Penalty for the offence of late declaration.",
    "Christian from the Leeds office called about tariffs.",
    "Kristen på kontoret i Malmö ringde om tullklassificering.",
    "A 10-year-old vehicle imported from Japan.",
    "Whisky aged 12 years, excise duty query.",
    "Sanitary and phytosanitary checks at the border control post.",
    # Goods, law and places that share words with the categories.
    "Goods from European Union member states and customs union member states.",
    "Diagnostic reagents under heading 3822, pregnancy test kits and HIV test kits.",
    "Disability aids: relief from import duty. Diabetic food products.",
    "Shipment delayed by a tropical depression; djuren ska vara fria från sjukdomar.",
    "Ethnic foods, religious articles, Buddhist statues and Ramadan dates.",
    "Genetically modified soya; the certificate fingerprint of the AS2 connection; a DNA sequencer.",
    "Smuggling is a criminal offence under CEMA s.170; the Prison Service tender.",
    "They lobby to vote for reform of the Union Customs Code.",
]


@pytest.mark.parametrize(("text", "expected"), SPECIAL)
def test_each_category_is_found_in_english_and_swedish(text: str, expected: set[str]) -> None:
    assert special_categories(text) == expected


@pytest.mark.parametrize("text", CUSTOMS_LOOK_ALIKES + NOTE_TEXTS + ENQUIRY_TEXTS)
def test_customs_vocabulary_and_generated_notes_are_not_flagged(text: str) -> None:
    assert special_categories(text) == set()
    assert child_indicators(text) == set()


def test_every_category_of_the_issue_has_terms() -> None:
    assert set(SPECIAL_CATEGORY_TERMS) == {
        "health",
        "ethnicity",
        "religion",
        "politics",
        "trade_union",
        "sex_life",
        "biometrics",
        "criminal",
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hi, I am 14 years old and need help with a school project.", {"stated_age", "school"}),
        ("I'm 15 years old and my teacher said to ask you.", {"stated_age", "school"}),
        ("Hej, jag är 13 år och gör ett skolarbete om tull.", {"stated_age", "school"}),
        ("Please ask my parent or guardian.", {"guardian"}),
        ("Min vårdnadshavare vet om det.", {"guardian"}),
        ("I am 45 years old and run an import business.", set()),
        ("I am 15 minutes late for the call.", set()),
        ("We have been trading for 12 years.", set()),
        ("I am 15 years in the trade.", set()),
        ("I'm 9 to 5 and I'm 10 mins late; I am 16 pallets short.", set()),
        ("In my school days; man får lära sig en läxa.", set()),
    ],
)
def test_child_indicators(text: str, expected: set[str]) -> None:
    assert child_indicators(text) == expected


def test_school_email_domains() -> None:
    assert CHILD_EMAIL_DOMAIN.search("pupil@northfield.sch.uk")
    assert CHILD_EMAIL_DOMAIN.search("a.b@mail.st-marys.sch.uk")
    assert not CHILD_EMAIL_DOMAIN.search("buyer@schenker.co.uk")
    assert not CHILD_EMAIL_DOMAIN.search("x@sch.uk.example.com")


# Words of ordinary CRM text. The look-alikes are left out: their words recombine into real
# phrases ("... from Prison ..."), which the lexicon rightly flags.
_words = st.sampled_from(" ".join(NOTE_TEXTS + ENQUIRY_TEXTS).replace(".", " ").split())


@given(
    before=st.lists(_words, max_size=12),
    after=st.lists(_words, max_size=12),
    planted=st.sampled_from(SPECIAL[:-1]),
    upper=st.booleans(),
)
def test_a_planted_phrase_is_found_anywhere_in_ordinary_text(
    before: list[str], after: list[str], planted: tuple[str, set[str]], upper: bool
) -> None:
    phrase, expected = planted
    text = " ".join([*before, phrase, *after])
    assert special_categories(text.upper() if upper else text) == expected


@given(st.lists(_words, max_size=40))
def test_ordinary_customs_text_is_never_flagged(words: list[str]) -> None:
    assert special_categories(" ".join(words)) == set()


# --- the RE2 screen: it may pass a clean text on to Python, never clear a flagged one ----------

_ALTERNATIVES = [a for terms in SPECIAL_CATEGORY_TERMS.values() for a in terms]


@st.composite
def _texts_near_the_terms(draw: st.DrawFn) -> str:
    """Ordinary words around text drawn from one of the lexicon's own patterns, in any case,
    perhaps with a character of another alphabet or an ASCII control character put in."""
    words = draw(st.lists(_words, max_size=6))
    phrase = draw(st.from_regex(draw(st.sampled_from(_ALTERNATIVES)), fullmatch=True))
    text = " ".join([*words[:3], phrase, *words[3:]])
    text = text.upper() if draw(st.booleans()) else text
    if draw(st.booleans()):
        at = draw(st.integers(0, len(text)))
        text = (
            text[:at] + draw(st.sampled_from(["\x0b", "\x1c", "_", "-", "é", "ſ", "K"])) + text[at:]
        )
    return text


@settings(max_examples=400, deadline=None)
@given(st.lists(_texts_near_the_terms() | st.lists(_words, max_size=20).map(" ".join), max_size=12))
def test_the_screen_never_clears_a_text_python_flags(texts: list[str]) -> None:
    cleared = screen_clean(texts)
    assert cleared <= set(texts)
    for text in cleared:
        assert special_categories(text) == set(), "the screen cleared a flagged text"
        assert text.isascii()


def test_the_screen_clears_ordinary_ascii_text_and_keeps_the_rest() -> None:
    ordinary = [t for t in NOTE_TEXTS + ENQUIRY_TEXTS if t.isascii() and not special_categories(t)]
    flagged = [text for text, _ in SPECIAL]
    cleared = screen_clean(ordinary + flagged + ["Kristen på kontoret", None, ""])  # type: ignore[list-item]
    assert set(ordinary) <= cleared  # the screen does its job: most notes never reach Python
    assert not cleared & set(flagged)
    assert "Kristen på kontoret" not in cleared  # not ASCII: Python decides


def test_a_screened_clean_text_is_not_scanned_again() -> None:
    text = "He has a criminal record for smuggling."
    assert special_categories(text) == {"criminal"}
    assert special_categories(text, screened_clean={text}) == set()
