import pytest

from pachs3gw.s3 import errors
from pachs3gw.s3.ranges import parse_copy_source_range, parse_range


@pytest.mark.parametrize(
    "header, size, expected",
    [
        ("bytes=0-9", 100, (0, 9)),
        ("bytes=10-", 100, (10, 99)),
        ("bytes=-10", 100, (90, 99)),
        ("bytes=-1000", 100, (0, 99)),
        ("bytes=50-1000", 100, (50, 99)),
        ("bytes=99-99", 100, (99, 99)),
        ("BYTES=1-2", 100, (1, 2)),
        ("bytes = 1 - 2", 100, (1, 2)),
    ],
)
def test_satisfiable_range_selects_bytes(header: str, size: int, expected: tuple[int, int]) -> None:
    assert parse_range(header, size) == expected


@pytest.mark.parametrize(
    "header",
    [None, "", "bytes=", "bytes=-", "items=0-1", "bytes=0-1,3-4", "bytes=5-2", "bytes=a-b", "0-1",
     "bytes=0x1-2", "bytes=１-2"],
)
def test_invalid_or_multi_range_is_ignored_and_whole_object_served(header: str | None) -> None:
    assert parse_range(header, 100) is None


@pytest.mark.parametrize(
    "header, size",
    [("bytes=100-", 100), ("bytes=100-200", 100), ("bytes=0-", 0), ("bytes=-5", 0), ("bytes=-0", 10)],
)
def test_unsatisfiable_range_is_invalid_range_416(header: str, size: int) -> None:
    with pytest.raises(errors.InvalidRange) as e:
        parse_range(header, size)
    assert e.value.status == 416
    assert e.value.headers["Content-Range"] == f"bytes */{size}"
    assert e.value.extra["ActualObjectSize"] == str(size)


def test_copy_source_range_is_inclusive() -> None:
    assert parse_copy_source_range("bytes=0-4", 10) == (0, 4)
    assert parse_copy_source_range("bytes=9-9", 10) == (9, 9)


@pytest.mark.parametrize("header", ["bytes=0-", "bytes=-5", "bytes=5-2", "0-4", "bytes=0-1,2-3", ""])
def test_copy_source_range_must_be_first_last(header: str) -> None:
    with pytest.raises(errors.InvalidArgument):
        parse_copy_source_range(header, 10)


def test_copy_source_range_past_end_is_invalid_range() -> None:
    with pytest.raises(errors.InvalidRange):
        parse_copy_source_range("bytes=5-10", 10)
