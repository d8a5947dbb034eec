"""The agent's cursor in each input partition: holes held and read again, commits never past the cursor."""

from __future__ import annotations

from pipeline.stream.faust_fixes.input_cursors import Admission, InputCursors, Passage

TP = ("comments", 1)


def test_messages_in_order_are_processed_and_read_again_ones_skipped() -> None:
    cursors = InputCursors()
    cursors.start(TP, 5)
    assert [cursors.admit(TP, offset) for offset in (5, 6, 7)] == [Admission.PROCESS] * 3
    assert cursors.admit(TP, 6) is Admission.SKIP
    assert cursors.next_offset(TP) == 8


def test_a_partition_not_sought_yet_processes_nothing_and_commits_nothing() -> None:
    cursors = InputCursors()
    assert cursors.admit(TP, 0) is Admission.HOLD
    assert cursors.committable(TP, 3) is None
    cursors.start(TP, 0)
    cursors.forget(TP)
    assert cursors.admit(TP, 0) is Admission.HOLD


def test_a_hole_is_held_and_rewound_once_then_read_again_from_the_cursor() -> None:
    cursors = InputCursors()
    cursors.start(TP, 3)
    assert cursors.admit(TP, 3) is Admission.PROCESS
    assert cursors.admit(TP, 11) is Admission.REWIND, "4 to 10 never arrived"
    assert cursors.admit(TP, 12) is Admission.HOLD, "its rewind is under way: no second seek"
    # Fetched before the seek took effect: dropped, they come again after the re-read 4.
    assert [cursors.passage(TP, offset) for offset in (13, 14)] == [Passage.DROP, Passage.DROP]
    assert cursors.passage(TP, 4) is Passage.REREAD
    assert cursors.passage(TP, 5) is Passage.ON
    assert [cursors.admit(TP, offset) for offset in range(4, 13)] == [Admission.PROCESS] * 9


def test_a_hole_found_again_at_the_same_place_after_its_rewind_rewinds_again() -> None:
    cursors = InputCursors()
    cursors.start(TP, 0)
    assert cursors.admit(TP, 2) is Admission.REWIND
    assert cursors.passage(TP, 0) is Passage.REREAD
    assert cursors.admit(TP, 2) is Admission.REWIND, "0 and 1 were lost once more"


def test_a_seek_ends_a_rewind_and_moves_the_cursor() -> None:
    cursors = InputCursors()
    cursors.start(TP, 0)
    assert cursors.admit(TP, 4) is Admission.REWIND
    cursors.start(TP, 2)  # a rebalance sought the partition to its committed offset
    assert cursors.passage(TP, 7) is Passage.ON
    assert cursors.admit(TP, 2) is Admission.PROCESS


def test_a_commit_never_passes_the_cursor() -> None:
    cursors = InputCursors()
    cursors.start(TP, 10)
    assert cursors.committable(TP, 14) == 10, "faust would pass a hole it counted as a gap"
    for offset in (10, 11):
        cursors.admit(TP, offset)
    assert cursors.committable(TP, 14) == 12
    assert cursors.committable(TP, 11) == 11, "acked (settled) less far than processed"
    assert cursors.committable(TP, None) is None


def test_a_lost_tail_is_rewound_once_seen_twice_with_the_cursor_unmoved() -> None:
    cursors = InputCursors()
    cursors.start(TP, 4)
    assert cursors.stalled(TP, fetched_to=20, in_flight=False) is None, "fetched a moment ago, perhaps"
    assert cursors.stalled(TP, fetched_to=20, in_flight=False) == 4
    assert cursors.passage(TP, 9) is Passage.DROP, "a rewind like any other"
    assert cursors.passage(TP, 4) is Passage.REREAD


def test_no_rewind_while_messages_are_on_their_way_or_the_cursor_moves() -> None:
    cursors = InputCursors()
    cursors.start(TP, 4)
    assert cursors.stalled(TP, fetched_to=20, in_flight=False) is None
    assert cursors.stalled(TP, fetched_to=20, in_flight=True) is None
    assert cursors.stalled(TP, fetched_to=20, in_flight=False) is None, "the in-flight call reset it"
    cursors.admit(TP, 4)
    assert cursors.stalled(TP, fetched_to=20, in_flight=False) is None, "the cursor moved"
    assert cursors.stalled(TP, fetched_to=5, in_flight=False) is None, "all fetched is processed"
    assert cursors.stalled(TP, fetched_to=5, in_flight=False) is None
    assert cursors.stalled(TP, fetched_to=None, in_flight=False) is None, "no position yet"


def test_messages_deleted_before_the_cursor_reached_them_are_skipped_and_counted() -> None:
    cursors = InputCursors()
    cursors.start(TP, 5)
    assert cursors.admit(TP, 20) is Admission.REWIND, "5 to 19 missing: a rewind to 5 is asked for"
    assert cursors.skip_deleted(TP, 20) == 15, "the log starts at 20: 5 to 19 are gone"
    assert cursors.next_offset(TP) == 20
    assert cursors.committable(TP, 30) == 20
    # Records fetched before the seek to 20 are dropped; 20 comes again and is processed.
    assert [cursors.passage(TP, offset) for offset in (21, 20)] == [Passage.DROP, Passage.REREAD]
    assert [cursors.admit(TP, offset) for offset in (20, 21)] == [Admission.PROCESS] * 2
    assert cursors.skip_deleted(TP, 20) == 0, "a log starting behind the cursor skips nothing"
    assert cursors.next_offset(TP) == 22
    assert cursors.skip_deleted(("likes", 0), 7) == 0, "a partition not sought yet has nothing to skip"
