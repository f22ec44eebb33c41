"""The known-identifier index: normalised, set-based containment of names, emails, usernames,
company names and phone numbers held in the personal zone."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccg_pipeline.validation.known_identifiers import (
    Candidates,
    KnownIdentifiers,
    normalise,
    phone_keys,
)

pytestmark = pytest.mark.unit

word = st.text(alphabet="abcdefghijklmnoprstuvwxyzåäöé", min_size=3, max_size=10)
separator = st.sampled_from([" ", "  ", ".", "-", "_", ", ", " / ", "@", "\t"])
# Context words come from a vocabulary the identifiers never use (digits and "q", which `word`
# lacks).
context_word = st.text(alphabet="q0123456789", min_size=1, max_size=6)


def _obfuscate(words: list[str], separators: list[str], upper: list[bool]) -> str:
    parts = [w.upper() if up else w.capitalize() for w, up in zip(words, upper, strict=False)]
    out = parts[0]
    for sep, part in zip(separators, parts[1:], strict=False):
        out += sep + part
    return out


@settings(max_examples=200, deadline=None)
@given(
    words=st.lists(word, min_size=2, max_size=4),
    separators=st.lists(separator, min_size=3, max_size=3),
    upper=st.lists(st.booleans(), min_size=4, max_size=4),
    before=st.lists(context_word, max_size=3),
    after=st.lists(context_word, max_size=3),
)
def test_an_identifier_is_found_however_it_is_written_and_wherever_it_sits(
    words: list[str], separators: list[str], upper: list[bool], before: list[str], after: list[str]
) -> None:
    index = KnownIdentifiers.from_values([" ".join(words)], [])
    cell = " ".join([*before, _obfuscate(words, separators, upper), *after])
    assert index.holds_any(cell)


@settings(max_examples=200, deadline=None)
@given(
    identifiers=st.lists(st.lists(word, min_size=2, max_size=3), min_size=1, max_size=20),
    cell=st.lists(context_word, min_size=1, max_size=8),
)
def test_text_sharing_no_word_sequence_with_an_identifier_is_never_flagged(
    identifiers: list[list[str]], cell: list[str]
) -> None:
    index = KnownIdentifiers.from_values([" ".join(w) for w in identifiers], [])
    assert not index.holds_any(" ".join(cell))


@settings(max_examples=200, deadline=None)
@given(
    subscriber=st.text(alphabet="0123456789", min_size=9, max_size=9),
    national=st.sampled_from(["+46 ", "0046 ", "0", "+46 (0)"]),
    grouping=st.sampled_from([(2, 3, 2, 2), (3, 3, 3), (9,), (1, 4, 4)]),
    separator=st.sampled_from([" ", "-", ".", ""]),
)
def test_a_phone_number_is_found_in_any_national_or_international_format(
    subscriber: str, national: str, grouping: tuple[int, ...], separator: str
) -> None:
    index = KnownIdentifiers.from_values([], [f"+46 {subscriber}"])
    groups, start = [], 0
    for size in grouping:
        groups.append(subscriber[start : start + size])
        start += size
    assert index.holds_any(f"ring {national}{separator.join(groups)} idag")


@settings(max_examples=100, deadline=None)
@given(
    identifiers=st.lists(st.lists(word, min_size=1, max_size=3), min_size=1, max_size=10),
    cells=st.lists(st.lists(st.one_of(word, context_word), max_size=5), max_size=30),
)
def test_the_column_test_agrees_with_the_cell_test(
    identifiers: list[list[str]], cells: list[list[str]]
) -> None:
    index = KnownIdentifiers.from_values([" ".join(w) for w in identifiers], [])
    column = pd.Series([" ".join(c) for c in cells] + [None], dtype=object)
    assert index.unexpected(column).tolist() == [index.holds_any(v) for v in column]


def test_normalisation_folds_accents_case_and_punctuation() -> None:
    assert normalise("  Åsa  Öberg-Ström, AB ") == "asa oberg strom ab"
    assert normalise("ANNA.SVENSSON@Example.SE") == "anna svensson example se"


def test_short_identifiers_are_left_out_and_words_alone_are_not_names() -> None:
    index = KnownIdentifiers.from_values(["Li", "AB", "Anna Svensson"], [])
    assert len(index) == 1  # both shorter than MIN_IDENTIFIER_CHARS
    assert not index.holds_any("Li AB")
    assert not index.holds_any("Anna")  # a first name alone is not the person
    assert index.holds_any("anna svensson")


def test_phone_keys_ignore_short_digit_runs() -> None:
    assert phone_keys("order 12345 on 2024-11-23") == set()
    assert phone_keys("+44 20 7946 0958") == {"079460958"}


phone = st.from_regex(r"\+?[0-9]{2}[ -]?[0-9]{3}[ -]?[0-9]{3} ?[0-9]{3}", fullmatch=True)


@settings(max_examples=300, deadline=None)
@given(
    identifiers=st.lists(st.lists(word, min_size=1, max_size=10), min_size=1, max_size=15),
    phones=st.lists(phone, max_size=4),
    pieces=st.lists(
        st.one_of(word, context_word, phone, st.integers(0, 10**10)), min_size=1, max_size=30
    ),
    picks=st.lists(st.tuples(st.integers(0, 14), st.integers(0, 9), st.integers(1, 9)), max_size=6),
)
def test_the_index_narrowed_to_the_published_cells_flags_exactly_what_the_full_one_flags(
    identifiers: list[list[str]],
    phones: list[str],
    pieces: list[object],
    picks: list[tuple[int, int, int]],
) -> None:
    """Bounded memory must not change a verdict: the index `load` builds keeps only identifiers
    that occur among the cells' candidates, and answers every cell as the full index would."""
    texts = [" ".join(w) for w in identifiers]
    # Cells: loose pieces, plus slices of identifiers (whole, partial, past 8 words) and phones.
    cells: list[object] = list(pieces)
    for which, start, length in picks:
        words = identifiers[which % len(identifiers)]
        cells.append("Re: " + ".".join(words[start : start + length]).upper() + " 12")
    cells += [f"call {p} today" for p in phones[:2]]
    full = KnownIdentifiers.from_values(texts, phones)
    narrowed = KnownIdentifiers.matching(texts, phones, Candidates.of_cells(cells))
    assert len(narrowed) <= len(full)
    assert [narrowed.holds_any(c) for c in cells] == [full.holds_any(c) for c in cells]
    frame = pd.DataFrame({"label": pd.Series(cells, dtype=object)})
    assert Candidates.of_frames([frame]) == Candidates.of_cells(cells)
