"""The faust-streaming and aiokafka members the corrections rely on are all still there, as expected."""

from __future__ import annotations

from importlib import metadata

from pipeline.stream.faust_fixes.relied_upon import MEMBERS, Member, missing_or_changed


def test_every_member_the_corrections_rely_on_is_there_with_its_signature() -> None:
    problems = missing_or_changed()
    assert not problems, (
        f"faust-streaming {metadata.version('faust-streaming')} / aiokafka {metadata.version('aiokafka')} "
        "no longer match what pipeline/stream/faust_fixes was written against:\n  " + "\n  ".join(problems)
    )


def test_a_renamed_method_a_changed_signature_and_a_missing_attribute_are_named() -> None:
    consumer = "faust.transport.drivers.aiokafka:Consumer"
    renamed = Member(consumer, "_new_offset_renamed", ("self", "tp"), "test")
    changed = Member(consumer, "_add_gap", ("self", "tp", "offset_from"), "test")
    gone = Member(consumer, "_no_such_offsets", None, "test")
    no_class = Member("faust.app.base:NoSuchApp", "_new_consumer", ("self",), "test")
    problems = missing_or_changed((renamed, changed, gone, no_class, MEMBERS[0]))
    assert len(problems) == 4
    assert problems[0].startswith(f"{consumer}._new_offset_renamed (used by test): no such method")
    assert "parameters are now ('self', 'tp', 'offset_from', 'offset_to')" in problems[1]
    assert problems[2].endswith("_no_such_offsets (used by test): no such attribute")
    assert "NoSuchApp" in problems[3]


def test_instance_attributes_are_found_where_the_class_assigns_them() -> None:
    # _read_offset exists only once Consumer.__init__ ran: found in its code, not on the class.
    assert not missing_or_changed((Member("faust.transport.consumer:Consumer", "_read_offset", None, "t"),))
