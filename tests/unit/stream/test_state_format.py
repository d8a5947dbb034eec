"""The saved state's format, pinned by byte samples written by the code of each version still read.

The samples were encoded by the deployed code (version 2; the version 1 clock by the code before
`ClockComment`) and are fixed here as hex: if a change to `state_format` makes one unreadable or read
differently, an existing deployment could no longer restore its state, and this fails.
"""

from __future__ import annotations

import msgspec
import pytest

from pipeline.stream.partition import PartitionProcessor, ProcessingRules
from pipeline.stream.sla import SlaPolicy
from pipeline.stream.state_format import (
    STATE_FORMAT_VERSION,
    AgeCurveState,
    ClockComment,
    ClockState,
    PartitionCounters,
    SpikeState,
    WindowState,
    belongs_to,
    decode_clock,
    decode_counters,
    decode_curve,
    decode_key,
    decode_reply_ts,
    decode_spike,
    decode_window,
    encode_clock,
    encode_counters,
    encode_curve,
    encode_reply_ts,
    encode_spike,
    encode_window,
    encode_window_of,
    key_partition,
    state_key,
)

KEY_WINDOW = "9603a177a2766ba26331a27039cf0000018bcfe60440"
KEY_COUNTERS = "9203a170"
KEY_CLOCK = "9503a163a2766ba26331a26d35"
KEY_REPLY = "9503a172a2766ba26331a26d36"
COUNTERS = (
    "980a01020382a56c696b6573cf0000018bcfe62b50a8636f6d6d656e7473cf0000018bcfe62768cf0000018bcfe62768"
    "cf0000018bcfe6eea0cf0000018bcfe56800"
)
WINDOW_OPEN = "980501020391a2753191a265310081a56c696b657329"
WINDOW_CLOSED = "9805010203c0c00782a56c696b657329a77265706f73747302"
CLOCK_V2 = (
    "9997a2766ba26331a27039a26d35a27537cf0000018bcfe56800a86869207468657265cf0000018bd000df40cf0000018b"
    "cffb6100c0c3c2c292a8636f6d6d656e74731181a761745f7269736b93a8636f6d6d656e747311cf0000018bcffb6100"
)
CLOCK_V1 = (
    "9989a86576656e745f6964a26531a474797065a7636f6d6d656e74a8706c6174666f726da2766bac636f6d6d756e697479"
    "5f6964a26331a7706f73745f6964a27039a7757365725f6964a27537a27473cf0000018bcfe56800aa636f6d6d656e745f"
    "6964a26d35a474657874a86869207468657265cf0000018bd000df40c0cf0000018bcfee8fc0c2c2c292a8636f6d6d656e"
    "74731580"
)
REPLY = "cf0000018bcfe5dd30"
COUNTERS_V3 = (
    "990a01020382a56c696b6573cf0000018bcfe62b50a8636f6d6d656e7473cf0000018bcfe62768cf0000018bcfe62768"
    "cf0000018bcfe6eea0cf0000018bcfe56800cf0000018bcfee8fc0"
)
KEY_CURVE = "9403a176a2766ba26331"
KEY_SPIKE = "9503a16ba2766ba26331a27039"
CURVE = "9292cb3ff8000000000000cb000000000000000092cb4000000000000000cb0000000000000000"
SPIKE_SAMPLE = "94c4037b7d0aa56c696b657307c3"

T0 = 1_700_000_000_000


def test_the_version_written_is_the_one_these_samples_pin() -> None:
    # A new version adds its samples here, keeps the old ones, and bumps this.
    assert STATE_FORMAT_VERSION == 3


def test_keys_decode_to_partition_namespace_and_parts() -> None:
    assert decode_key(bytes.fromhex(KEY_WINDOW)) == (3, "w", "vk", "c1", "p9", T0 + 40_000)
    assert decode_key(bytes.fromhex(KEY_COUNTERS)) == (3, "p")
    assert decode_key(bytes.fromhex(KEY_CLOCK)) == (3, "c", "vk", "c1", "m5")
    assert decode_key(bytes.fromhex(KEY_REPLY)) == (3, "r", "vk", "c1", "m6")
    assert key_partition(bytes.fromhex(KEY_CLOCK)) == 3


def test_a_key_tells_its_partition_without_being_decoded_below_128() -> None:
    key = bytes.fromhex(KEY_WINDOW)  # partition 3
    assert belongs_to(key, 3) and not belongs_to(key, 4) and not belongs_to(key, 131)
    far = state_key(300, "w", "vk", "c1", "p9", T0)  # a partition number msgpack writes in more bytes
    assert belongs_to(far, 300) and not belongs_to(far, 3) and not belongs_to(far, 44)
    assert belongs_to(state_key(127, "p"), 127) and not belongs_to(state_key(128, "p"), 127)


def test_keys_encode_to_the_same_bytes() -> None:
    assert state_key(3, "w", "vk", "c1", "p9", T0 + 40_000).hex() == KEY_WINDOW
    assert state_key(3, "p").hex() == KEY_COUNTERS
    assert state_key(3, "c", "vk", "c1", "m5").hex() == KEY_CLOCK


def test_version_2_counters_read_with_no_curves_folded_yet() -> None:
    counters = decode_counters(bytes.fromhex(COUNTERS))
    assert counters == PartitionCounters(
        events=10, late_events=1, duplicate_events=2, rejected_lines=3,
        max_event_ms_by_topic={"likes": T0 + 50_000, "comments": T0 + 49_000},
        sla_event_ms=T0 + 49_000, sla_anchor_wall_ms=T0 + 100_000, evicted_at_ms=T0, curves_folded_to_ms=0,
    )  # fmt: skip


def test_version_3_counters_round_trip_the_sample() -> None:
    counters = decode_counters(bytes.fromhex(COUNTERS_V3))
    assert counters.curves_folded_to_ms == T0 + 600_000 and counters.evicted_at_ms == T0
    assert encode_counters(counters).hex() == COUNTERS_V3


def test_age_curves_and_spike_episodes_round_trip_their_samples() -> None:
    assert decode_key(bytes.fromhex(KEY_CURVE)) == (3, "v", "vk", "c1")
    assert decode_key(bytes.fromhex(KEY_SPIKE)) == (3, "k", "vk", "c1", "p9")
    curve = decode_curve(bytes.fromhex(CURVE))
    assert curve == AgeCurveState([1.5, 0.0], [2.0, 0.0]) and encode_curve(curve).hex() == CURVE
    spike = decode_spike(bytes.fromhex(SPIKE_SAMPLE))
    assert spike == SpikeState(b"{}\n", "likes", 7, calm=True) and encode_spike(spike).hex() == SPIKE_SAMPLE


def test_windows_open_and_closed_round_trip_their_samples() -> None:
    open_window = decode_window(bytes.fromhex(WINDOW_OPEN))
    assert open_window == WindowState(5, 1, 2, 3, {"u1"}, {"e1"}, 0, {"likes": 41})
    assert encode_window(open_window).hex() == WINDOW_OPEN
    closed = decode_window(bytes.fromhex(WINDOW_CLOSED))
    assert closed == WindowState(5, 1, 2, 3, None, None, 7, {"likes": 41, "reposts": 2})
    assert encode_window(closed).hex() == WINDOW_CLOSED


def test_windows_encoded_from_their_parts_have_the_samples_bytes() -> None:
    """The engagement book encodes windows from its own fields (members as dict keys), not a WindowState."""
    opened = encode_window_of((5, 1, 2, 3), {"u1": None}, {"e1": None}, 0, {"likes": 41})
    assert opened.hex() == WINDOW_OPEN
    closed = encode_window_of((5, 1, 2, 3), None, None, 7, {"likes": 41, "reposts": 2})
    assert closed.hex() == WINDOW_CLOSED


def test_a_version_2_clock_round_trips_its_sample() -> None:
    clock = decode_clock(bytes.fromhex(CLOCK_V2))
    assert clock == ClockState(
        ClockComment("vk", "c1", "p9", "m5", "u7", T0, "hi there"),
        deadline_ms=T0 + 1_800_000, at_risk_ms=T0 + 1_440_000, answered_at_ms=None,
        warned=True, breached=False, cancelled=False, changed_by=("comments", 17),
        fired_by={"at_risk": ("comments", 17, T0 + 1_440_000)},
    )  # fmt: skip
    assert encode_clock(clock).hex() == CLOCK_V2


def test_a_version_1_clock_is_still_read() -> None:
    clock = decode_clock(bytes.fromhex(CLOCK_V1))
    assert clock.comment == ClockComment("vk", "c1", "p9", "m5", "u7", T0, "hi there")
    assert (clock.deadline_ms, clock.at_risk_ms, clock.answered_at_ms) == (T0 + 1_800_000, None, T0 + 600_000)
    assert clock.changed_by == ("comments", 21)


def test_an_early_reply_round_trips_its_sample() -> None:
    assert decode_reply_ts(bytes.fromhex(REPLY)) == T0 + 30_000
    assert encode_reply_ts(T0 + 30_000).hex() == REPLY


def test_a_processor_restores_from_the_samples() -> None:
    """The whole path a restarted worker takes: the samples as changelog entries, restored by the
    partition's processor, count as the state they describe."""
    rules = ProcessingRules(allowed_lateness_ms=120_000, sla=SlaPolicy(default_s=1800))
    processor = PartitionProcessor(3, rules)
    entries = [
        (bytes.fromhex(KEY_WINDOW), bytes.fromhex(WINDOW_OPEN)),
        (bytes.fromhex(KEY_CLOCK), bytes.fromhex(CLOCK_V1)),
        (state_key(3, "c", "vk", "c1", "m7"), bytes.fromhex(CLOCK_V2)),
        (bytes.fromhex(KEY_REPLY), bytes.fromhex(REPLY)),
        (bytes.fromhex(KEY_COUNTERS), bytes.fromhex(COUNTERS)),
        (state_key(4, "p"), bytes.fromhex(COUNTERS)),  # another partition's: skipped
    ]
    assert processor.restore(entries, ("likes", "comments", "reposts")) == 5
    assert processor.engagement.window_count == 1
    assert processor.sla.waiting == 1  # the version 2 clock runs; the version 1 clock was answered
    assert processor.sla_clock.max_event_ms == T0 + 49_000


@pytest.mark.parametrize("sample", [WINDOW_OPEN, COUNTERS, REPLY])
def test_a_sample_of_another_kind_is_not_taken_for_a_clock(sample: str) -> None:
    with pytest.raises(msgspec.DecodeError):  # ValidationError is one
        decode_clock(bytes.fromhex(sample))
