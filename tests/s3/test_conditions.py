from datetime import datetime, timedelta, timezone

import pytest

from pachs3gw.s3 import errors
from pachs3gw.s3.conditions import (
    NotModified,
    check_copy_source_preconditions,
    check_preconditions,
    format_etag,
    normalize_etag,
    parse_http_date,
)

ETAG = "d41d8cd98f00b204e9800998ecf8427e"
MODIFIED = datetime(2024, 5, 1, 12, 0, 0, 500000, tzinfo=timezone.utc)
BEFORE = "Wed, 01 May 2024 11:00:00 GMT"
SAME = "Wed, 01 May 2024 12:00:00 GMT"
AFTER = "Wed, 01 May 2024 13:00:00 GMT"


def check(headers: dict[str, str], **kw: bool) -> None:
    check_preconditions(headers, ETAG, MODIFIED, **kw)


def test_etag_forms() -> None:
    assert normalize_etag(f'"{ETAG}"') == ETAG
    assert normalize_etag(f'W/"{ETAG}"') == ETAG
    assert normalize_etag(ETAG) == ETAG
    assert format_etag(ETAG) == f'"{ETAG}"'
    assert format_etag(f'"{ETAG}"') == f'"{ETAG}"'


@pytest.mark.parametrize("value", [f'"{ETAG}"', ETAG, "*", f'"x", "{ETAG}"', f"W/\"{ETAG}\""])
def test_if_match_that_holds_proceeds(value: str) -> None:
    check({"if-match": value})


def test_if_match_mismatch_is_412() -> None:
    with pytest.raises(errors.PreconditionFailed):
        check({"if-match": '"other"'})


def test_if_unmodified_since() -> None:
    check({"if-unmodified-since": AFTER})
    check({"if-unmodified-since": SAME})  # second resolution
    with pytest.raises(errors.PreconditionFailed):
        check({"if-unmodified-since": BEFORE})


def test_if_match_true_overrides_failing_if_unmodified_since() -> None:
    check({"if-match": ETAG, "if-unmodified-since": BEFORE})


def test_if_none_match_is_304_for_get_and_412_otherwise() -> None:
    with pytest.raises(NotModified) as e:
        check({"if-none-match": f'"{ETAG}"'})
    assert e.value.etag == f'"{ETAG}"'
    with pytest.raises(errors.PreconditionFailed):
        check({"if-none-match": "*"}, is_get_or_head=False)
    check({"if-none-match": '"other"'})


def test_if_modified_since() -> None:
    with pytest.raises(NotModified):
        check({"if-modified-since": SAME})
    with pytest.raises(NotModified):
        check({"if-modified-since": AFTER})
    check({"if-modified-since": BEFORE})
    check({"if-modified-since": "not a date"})
    check({"if-modified-since": AFTER}, is_get_or_head=False)


def test_if_none_match_present_makes_if_modified_since_irrelevant() -> None:
    check({"if-none-match": '"other"', "if-modified-since": AFTER})


def test_if_match_failure_wins_over_not_modified() -> None:
    with pytest.raises(errors.PreconditionFailed):
        check({"if-match": '"other"', "if-none-match": ETAG})


def test_invalid_dates_are_ignored() -> None:
    check({"if-unmodified-since": "yesterday"})
    assert parse_http_date("") is None
    assert parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT") == datetime(
        1994, 11, 6, 8, 49, 37, tzinfo=timezone.utc
    )
    assert parse_http_date("2024-05-01T12:00:00Z") == datetime(2024, 5, 1, 12, tzinfo=timezone.utc)


def test_naive_last_modified_is_utc() -> None:
    check_preconditions({"if-unmodified-since": SAME}, ETAG, datetime(2024, 5, 1, 12, 0, 0))


P = "x-amz-copy-source-"


def copy_check(headers: dict[str, str]) -> None:
    check_copy_source_preconditions(headers, ETAG, MODIFIED)


def test_copy_source_if_match() -> None:
    copy_check({P + "if-match": f'"{ETAG}"'})
    with pytest.raises(errors.PreconditionFailed):
        copy_check({P + "if-match": "nope"})


def test_copy_source_if_match_true_and_unmodified_since_false_copies() -> None:
    copy_check({P + "if-match": ETAG, P + "if-unmodified-since": BEFORE})


def test_copy_source_if_none_match_false_and_modified_since_true_is_412() -> None:
    with pytest.raises(errors.PreconditionFailed):
        copy_check({P + "if-none-match": ETAG, P + "if-modified-since": BEFORE})


def test_copy_source_if_modified_since_not_modified_is_412_not_304() -> None:
    with pytest.raises(errors.PreconditionFailed):
        copy_check({P + "if-modified-since": AFTER})
    copy_check({P + "if-modified-since": (MODIFIED - timedelta(days=1)).strftime("%a, %d %b %Y %H:%M:%S GMT")})
    with pytest.raises(errors.PreconditionFailed):
        copy_check({P + "if-unmodified-since": BEFORE})
