"""The known-identifier scan: does any published cell equal or contain a name, email, username,
phone number or company name that the personal zone holds?

Both sides are normalised the same way (accents folded, case folded, every run of punctuation
and spaces made one space), so `Anna.Svensson@Example.se`, `anna svensson example se` and
`ANNA SVENSSON (at) example.se` meet. Containment is set-based: each cell yields its contiguous
word n-grams (up to the longest identifier's word count) and one hash-set membership test per
n-gram decides; there is never a loop over (cell, identifier) pairs. Phone numbers are compared
on their last nine digits, which ignores country prefixes, trunk zeros and separators.

Memory is bounded by the published side, not by the personal zone: `load` first takes every
n-gram and phone key of the cells about to be published (`Candidates`, aggregates, so small),
then streams the personal zone's identifiers past that set and keeps only the ones that occur
in it. The resulting index answers every membership test the full index would (a cell's n-gram
is a known identifier exactly when it is one of the kept matches), whether the personal zone
holds a thousand people or a hundred million.

The index holds personal data, so it lives in memory for one validation only and is never
logged, stored or put in an expectation's configuration: expectations name it, `active()`
hands it over (see `validation.expectations`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ccg_pipeline.identity import normalise, phone_keys
from ccg_pipeline.personal_model import TABLES, personal_tables

# Shorter normalised identifiers ("li", "ab ltd") would match ordinary words and labels; a
# two-letter name is also not, on its own, identifying in a published aggregate.
MIN_IDENTIFIER_CHARS = 5
# Longest identifier, in words, that containment looks for (long company names are cut to it).
MAX_NGRAM_WORDS = 8


def ngrams(normalised: str, longest: int) -> Iterator[str]:
    words = normalised.split()
    for size in range(1, min(longest, len(words)) + 1):
        for start in range(len(words) - size + 1):
            yield " ".join(words[start : start + size])


def identifier_key(text: str | None) -> str | None:
    """The normalised form an identifier is indexed under; None when it is too short to count."""
    if not text:
        return None
    key = " ".join(normalise(text).split()[:MAX_NGRAM_WORDS])
    return key if len(key.replace(" ", "")) >= MIN_IDENTIFIER_CHARS else None


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and value != value)


@dataclass(frozen=True)
class KnownIdentifiers:
    """Normalised identifiers (as word sequences) and phone keys, for membership tests only."""

    words: frozenset[str]
    phones: frozenset[str]
    longest: int

    @classmethod
    def from_values(
        cls, texts: Iterable[str | None], phones: Iterable[str | None]
    ) -> KnownIdentifiers:
        return cls.matching(texts, phones, None)

    @classmethod
    def matching(
        cls,
        texts: Iterable[str | None],
        phones: Iterable[str | None],
        candidates: Candidates | None,
    ) -> KnownIdentifiers:
        """The identifiers among `texts` and `phones`; with `candidates`, only those that occur
        in it (one pass over the values, nothing else kept)."""
        words = set()
        for text in texts:
            key = identifier_key(text)
            if key is not None and (candidates is None or key in candidates.words):
                words.add(key)
        phone_set: set[str] = set()
        for phone in phones:
            if phone:
                keys = phone_keys(phone)
                phone_set |= keys if candidates is None else keys & candidates.phones
        longest = max((w.count(" ") + 1 for w in words), default=1)
        return cls(frozenset(words), frozenset(phone_set), longest)

    def __len__(self) -> int:
        return len(self.words) + len(self.phones)

    def holds_any(self, value: object) -> bool:
        """Whether `value` equals or contains a known identifier."""
        if _is_missing(value):
            return False
        text = str(value)
        if self.phones and not self.phones.isdisjoint(phone_keys(text)):
            return True
        return not self.words.isdisjoint(ngrams(normalise(text), self.longest))

    def unexpected(self, column: pd.Series) -> pd.Series:
        """True where the cell holds a known identifier. Distinct values are tested once."""
        distinct = column.dropna().unique()
        hits = {value for value in distinct if self.holds_any(value)}
        return column.isin(hits) if hits else pd.Series(False, index=column.index)


@dataclass(frozen=True)
class Candidates:
    """Every word n-gram (up to `MAX_NGRAM_WORDS`) and phone key of the cells to be published:
    the only identifiers a validation needs to know about."""

    words: frozenset[str]
    phones: frozenset[str]

    @classmethod
    def of_cells(cls, cells: Iterable[object]) -> Candidates:
        words: set[str] = set()
        phones: set[str] = set()
        for value in cells:
            if _is_missing(value):
                continue
            text = str(value)
            phones |= phone_keys(text)
            words.update(ngrams(normalise(text), MAX_NGRAM_WORDS))
        return cls(frozenset(words), frozenset(phones))

    @classmethod
    def of_frames(cls, frames: Iterable[pd.DataFrame]) -> Candidates:
        """The candidates of every distinct cell of `frames`."""
        return cls.of_cells(
            value
            for frame in frames
            for column in frame.columns
            for value in frame[column].dropna().unique()
        )


def _identifier(table: sa.Table, spec: str | tuple[str, ...]) -> sa.ColumnElement[str]:
    """A column, or several joined by a space (a full name from its parts)."""
    if isinstance(spec, str):
        return table.c[spec]
    parts = [sa.func.coalesce(table.c[name], "") for name in spec]
    joined: sa.ColumnElement[str] = parts[0]
    for part in parts[1:]:
        joined = joined + " " + part
    return joined


def identifier_queries() -> list[sa.Select]:
    """Every name, email, username and company name the personal zone holds, as one column: the
    identifier columns the personal-data model declares."""
    tables = personal_tables()
    return [
        sa.select(_identifier(tables[name], spec)).distinct()
        for name, declared in TABLES.items()
        for spec in declared.identifiers
    ]


def phone_queries() -> list[sa.Select]:
    tables = personal_tables()
    return [
        sa.select(tables[name].c[column])
        for name, declared in TABLES.items()
        for column in declared.phones
    ]


STREAM_ROWS = 10_000


def load(conn: Connection, candidates: Candidates) -> KnownIdentifiers:
    """The personal zone's identifiers that occur among `candidates`: the personal zone is
    streamed in batches of `STREAM_ROWS` (values never logged), so memory holds one batch and the
    matches, whatever the zone's size."""

    streaming = conn.execution_options(stream_results=True, max_row_buffer=STREAM_ROWS)

    def values(queries: list[sa.Select]) -> Iterator[str | None]:
        for query in queries:
            yield from streaming.execute(query).scalars()

    return KnownIdentifiers.matching(
        values(identifier_queries()), values(phone_queries()), candidates
    )


_ACTIVE: dict[str, KnownIdentifiers] = {}
PERSONAL_ZONE = "personal_zone"


@contextmanager
def activated(index: KnownIdentifiers, name: str = PERSONAL_ZONE) -> Iterator[KnownIdentifiers]:
    """Make `index` available to expectations under `name` for the duration of a validation."""
    _ACTIVE[name] = index
    try:
        yield index
    finally:
        _ACTIVE.pop(name, None)


def active(name: str) -> KnownIdentifiers:
    """The index a validation activated; fails closed when none is (the expectation then errors
    and the validation fails, rather than passing without looking)."""
    try:
        return _ACTIVE[name]
    except KeyError:
        raise LookupError(f"no known-identifier index named {name!r} is active") from None
