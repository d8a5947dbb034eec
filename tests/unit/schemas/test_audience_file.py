"""The audience snapshot file (`pulse audience import`): good lines become snapshots, every bad line names
its line, field and problem, and nothing in a file makes the reader raise (a CSV header aside, which
decides how every line after it is read)."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import InvalidSnapshot
from schemas.audience import AudienceSnapshot, encode_snapshot, read_snapshots

NEW_YEAR = "2026-01-01T00:00:00Z"
NEW_YEAR_MS = 1_767_225_600_000
EXAMPLES = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def followers(**fields: Any) -> dict[str, Any]:
    return {"kind": "followers", "platform": "vk", "community_id": "215000111", "as_of": NEW_YEAR,
            "followers": 12000, **fields}  # fmt: skip


def views(**fields: Any) -> dict[str, Any]:
    return {"kind": "views", "platform": "vk", "community_id": "215000111", "post_id": "4410", "as_of": NEW_YEAR,
            "views": 3400, **fields}  # fmt: skip


def ndjson(*objects: dict[str, Any]) -> list[bytes]:
    return [orjson.dumps(o) + b"\n" for o in objects]


def read(lines: list[bytes], form: str = "ndjson", latest_ms: int | None = None) -> list[Any]:
    return list(read_snapshots(lines, form, latest_ms))  # type: ignore[arg-type]


def test_followers_and_views_lines() -> None:
    first, second = read(ndjson(followers(), views()))
    assert first == AudienceSnapshot(kind="followers", platform="vk", community_id="215000111",
                                     as_of=NEW_YEAR_MS, followers=12000)  # fmt: skip
    assert (second.kind, second.post_id, second.count, second.as_of_s) == (
        "views",
        "4410",
        3400,
        NEW_YEAR_MS // 1000,
    )


@pytest.mark.parametrize(
    ("as_of", "seconds"),
    [
        (NEW_YEAR, NEW_YEAR_MS // 1000),
        ("2026-01-01T03:00:00+03:00", NEW_YEAR_MS // 1000),
        ("2026-01-01T00:00:00.999Z", NEW_YEAR_MS // 1000),  # stored to the second
        (NEW_YEAR_MS + 1500, NEW_YEAR_MS // 1000 + 1),
    ],
)
def test_as_of_is_rfc_3339_or_epoch_milliseconds_stored_to_the_second(as_of: object, seconds: int) -> None:
    (snapshot,) = read(ndjson(followers(as_of=as_of)))
    assert snapshot.as_of_s == seconds


def test_the_kind_follows_from_the_count_when_left_out() -> None:
    no_kind = {k: v for k, v in views().items() if k != "kind"}
    (snapshot,) = read(ndjson(no_kind))
    assert snapshot.kind == "views"


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (views(post_id=None), "field 'post_id': is required on views snapshots"),
        ({k: v for k, v in views().items() if k != "post_id"}, "field 'post_id': is required on views snapshots"),
        (views(post_id="-"), "field 'post_id': '-' names the community itself, not a post"),
        (followers(post_id="4410"), "field 'post_id': belongs to views snapshots only"),
        (followers(kind="likes"), "field 'kind': must be followers or views; got 'likes'"),
        (views(views=None, followers=5), "field 'followers': does not belong to a views snapshot"),
        (followers(followers=None), "field 'followers': is required on a followers snapshot"),
        ({"platform": "vk", "community_id": "1", "as_of": NEW_YEAR}, "no count: give 'followers'"),
        (followers(views=10), "give 'followers' or 'views', not both"),
        (followers(followers=-1), "field 'followers': must be a whole number from 0 to 1,000,000,000,000,000"),
        (followers(followers=10**16), "field 'followers': must be a whole number from 0"),
        (followers(followers=1.5), "field 'followers': must be a whole number from 0 to 1,000,000,000,000,000; got number"),
        (followers(followers="12000"), "got string"),
        (views(views=True), "field 'views': must be a whole number from 0 to 1,000,000,000,000,000; got boolean"),
        (followers(platform="VK"), "field 'platform': must be a lowercase name"),
        (followers(platform=None), "field 'platform': must be a string"),
        (followers(community_id=""), "field 'community_id': must be a string with length >= 1"),
        (followers(community_id=7), "field 'community_id': must be a string"),
        (followers(community_id="x" * 257), "field 'community_id': must be a string with length <= 256"),
        ({k: v for k, v in followers().items() if k != "as_of"}, "field 'as_of': is required but missing"),
        (followers(as_of="2026-01-01"), "field 'as_of': is not an RFC 3339 time with a UTC offset"),
        (followers(as_of="2026-02-30T00:00:00Z"), "field 'as_of': is not a real time"),
        (followers(as_of=1_767_225_600), "field 'as_of': epoch milliseconds 1767225600 is outside 2000..2100 (looks like seconds"),
        (followers(as_of=None), "field 'as_of': must be an integer or string"),
        (followers(extra=1), "field 'extra': is not a field of an audience snapshot"),
    ],
)  # fmt: skip
def test_a_bad_line_names_its_field_and_problem(line: dict[str, Any], reason: str) -> None:
    (error,) = read([b"\n", *ndjson(line)])
    assert isinstance(error, InvalidSnapshot)
    assert error.reason.startswith("line 2: ") and reason in error.reason, error.reason


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json", "not valid JSON"),
        (b"[1, 2]", "must be an object; got array"),
        (b'{"kind": "followers", ', "not valid JSON"),
        (b"\xff\xfe{}", "not valid JSON"),
        (b"[" * 20_000, "must be an object; got array"),  # refused at its first byte, not recursed into
        (b'{"platform": "' + b"x" * 70_000 + b'"}', "longer than a snapshot may be (more than 65,536 bytes)"),
    ],
)
def test_a_line_that_is_no_json_object_says_so(raw: bytes, reason: str) -> None:
    (error,) = read([raw])
    assert isinstance(error, InvalidSnapshot) and reason in error.reason and error.line == 1


def test_good_lines_around_bad_ones_still_count_with_their_line_numbers() -> None:
    lines = [*ndjson(followers()), b"garbage\n", b"   \n", *ndjson(followers(followers=-5), views())]
    found = read(lines)
    assert [type(f).__name__ for f in found] == ["AudienceSnapshot", "InvalidSnapshot", "InvalidSnapshot",
                                                  "AudienceSnapshot"]  # fmt: skip
    assert [f.line for f in found if isinstance(f, InvalidSnapshot)] == [2, 4]


def test_a_snapshot_from_the_future_is_refused() -> None:
    (error,) = read(ndjson(followers()), latest_ms=NEW_YEAR_MS - 1000)
    assert isinstance(error, InvalidSnapshot)
    assert error.reason == (
        "line 1: field 'as_of': 2026-01-01T00:00:00Z is ahead of the wall clock (2025-12-31T23:59:59Z at the latest)"
    )
    assert isinstance(read(ndjson(followers()), latest_ms=NEW_YEAR_MS)[0], AudienceSnapshot)


def test_csv_with_a_header_in_any_order() -> None:
    lines = [
        "\ufeffas_of, community_id ,platform,followers\r\n",  # a byte-order mark, blanks, CRLF: as exports write
        f"{NEW_YEAR},215000111,vk,12000\r\n",
        f'{NEW_YEAR_MS},"215000,112",vk,9\r\n',
        "\r\n",
        f"{NEW_YEAR},215000113,vk,12k\r\n",
        f"{NEW_YEAR},215000114,vk\r\n",
        f'{NEW_YEAR},"215000115,vk,1\r\n',
        f"{NEW_YEAR},,vk,1\r\n",
    ]
    found = read([line.encode() for line in lines], "csv")
    assert [(f.community_id, f.followers) for f in found[:2]] == [("215000111", 12000), ("215000,112", 9)]
    assert [f.reason for f in found[2:]] == [
        "line 5: field 'followers': must be a whole number from 0 to 1,000,000,000,000,000; got '12k'",
        "line 6: has 3 cells where the header names 4",
        "line 7: not a CSV record: unexpected end of data (one record a line; no line break inside quotes)",
        "line 8: field 'community_id': is required but missing",  # an empty cell is a field left out
    ]


def test_csv_with_both_kinds_and_a_kind_column() -> None:
    lines = [b"kind,platform,community_id,post_id,as_of,followers,views\n",
             f"followers,vk,1,,{NEW_YEAR},100,\n".encode(), f"views,vk,1,77,{NEW_YEAR},,40\n".encode(),
             f",vk,1,78,{NEW_YEAR},,41\n".encode(), f"views,vk,1,79,{NEW_YEAR},5,\n".encode(),
             b"followers,vk,1,,2026-01-01T00:00:00Z,\xff,\n"]  # fmt: skip
    found = read(lines, "csv")
    assert [(f.kind, f.post_id, f.count) for f in found[:3]] == [("followers", None, 100), ("views", "77", 40),
                                                                ("views", "78", 41)]  # fmt: skip
    assert [f.reason for f in found[3:]] == [
        "line 5: field 'followers': does not belong to a views snapshot (it counts 'views')",
        "line 6: not UTF-8 text: invalid start byte at byte 37",
    ]


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (
            "platform,community_id,as_of,likes",
            "line 1: the header names 'likes', which is not a snapshot field",
        ),
        ("platform,community_id,as_of", "line 1: the header has neither a 'followers' nor a 'views' column"),
        ("platform,as_of,followers", "line 1: the header has no 'community_id' column"),
        ("platform,platform,community_id,as_of,views", "line 1: the header names 'platform' twice"),
        ('"platform,community_id', "line 1: not a CSV record"),
    ],
)
def test_a_csv_header_that_cannot_describe_snapshots_is_refused_whole(header: str, reason: str) -> None:
    with pytest.raises(InvalidSnapshot) as refused:
        read([b"\n", header.encode() + b"\n", b"vk,1,2026-01-01T00:00:00Z,5\n"], "csv")
    assert str(refused.value).replace("line 2", "line 1").startswith(reason)


def test_encoded_snapshots_read_back_the_same() -> None:
    for snapshot in read(ndjson(followers(), views(as_of=NEW_YEAR_MS + 250))):
        line = encode_snapshot(snapshot)
        assert line.endswith(b"\n") and read([line]) == [snapshot]
    assert encode_snapshot(read(ndjson(followers()))[0]) == (
        b'{"kind":"followers","platform":"vk","community_id":"215000111","as_of":"2026-01-01T00:00:00Z",'
        b'"followers":12000}\n'
    )


# --- hostile files: any content gives a snapshot or a reason per line, never an exception -------------

scalars = (
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.floats(allow_nan=False)
    | st.text(max_size=20) | st.sampled_from(["-", "", NEW_YEAR, "followers", "views", "vk"])
)  # fmt: skip


@st.composite
def disturbed(draw: st.DrawFn) -> dict[str, Any]:
    """A good snapshot with one field replaced by anything, or removed, or one added."""
    line = draw(st.sampled_from([followers(), views()]))
    key = draw(st.sampled_from([*line, "extra"]))
    if draw(st.booleans()):
        line.pop(key, None)
    else:
        line[key] = draw(scalars)
    return line


def judged_once_each(lines: list[bytes], form: str) -> list[Any]:
    found = read(lines, form)
    counted = [line for line in lines if line.strip()]
    assert len(found) == len(counted) - (1 if form == "csv" else 0)
    for item in found:
        assert isinstance(item, AudienceSnapshot) or (isinstance(item, InvalidSnapshot) and item.reason)
    return found


@EXAMPLES
@given(st.lists(disturbed().map(lambda d: json.dumps(d).encode() + b"\n"), max_size=5))
def test_disturbed_snapshots_each_give_a_snapshot_or_a_reason(lines: list[bytes]) -> None:
    for item in judged_once_each(lines, "ndjson"):
        if isinstance(item, AudienceSnapshot):
            assert item.kind in ("followers", "views") and item.count >= 0
            assert (item.post_id is None) == (item.kind == "followers")


@EXAMPLES
@given(st.lists(st.binary(max_size=120).filter(lambda b: b"\n" not in b and b"\r" not in b), max_size=6))
def test_lines_of_any_bytes_each_give_a_snapshot_or_a_reason(lines: list[bytes]) -> None:
    judged_once_each([line + b"\n" for line in lines], "ndjson")


@EXAMPLES
@given(st.lists(st.text(max_size=60).filter(lambda t: "\n" not in t and "\r" not in t), max_size=6))
def test_csv_rows_of_any_text_each_give_a_snapshot_or_a_reason(rows: list[str]) -> None:
    header = b"platform,community_id,post_id,as_of,views\n"
    judged_once_each([header, *(row.encode() + b"\n" for row in rows)], "csv")
