"""A CRM row is refused by the field that is wrong, named, never by its value."""

from __future__ import annotations

import pytest

from ccg_pipeline.ingest.common import Rejected
from ccg_pipeline.ingest.crm import MAX_FIELD_CHARS, _check_row_shape

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("row", "code", "column"),
    [
        ({"Email": "a@b.eu", "Body": "x" * (MAX_FIELD_CHARS + 1)}, "oversized_record", "Body"),
        ({"Email": "a@b.eu", "Body": "bad \udcff byte"}, "bad_encoding", "Body"),
        ({"Email": "a@b.eu\x00", "Body": "fine"}, "bad_encoding", "Email"),
        ({"Email": "a@b.eu", None: ["extra"]}, "wrong_column_count", None),
        ({"Email": "a@b.eu", "Body": None}, "wrong_column_count", None),
    ],
)
def test_bad_rows_are_rejected_by_column(row: dict, code: str, column: str | None) -> None:
    with pytest.raises(Rejected) as caught:
        _check_row_shape(row)
    assert caught.value.code == code
    if column:
        assert caught.value.detail.startswith(column)
    assert "\udcff" not in caught.value.detail and "a@b.eu" not in caught.value.detail


def test_clean_rows_pass() -> None:
    _check_row_shape({"Email": "a@b.eu", "Body": "", "Subject": "Note"})
