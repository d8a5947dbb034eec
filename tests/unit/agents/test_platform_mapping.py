"""Each platform's payloads become exactly the canonical events they describe."""

from __future__ import annotations

import pytest

from agents.platforms import PayloadError, TelegramThreads, map_meta, map_telegram, map_vk
from schemas import EventType
from tests import webhook_payloads as p

NOW_MS = 1_795_446_999_000


def test_vk_subscriber_comment_and_community_reply() -> None:
    (comment,) = map_vk(p.VK_COMMENT, [], NOW_MS).events  # type: ignore[union-attr]
    assert (comment.type, comment.community_id, comment.post_id, comment.comment_id) == (
        EventType.COMMENT,
        "215000111",
        "4410",
        "9051",
    )
    assert (comment.user_id, comment.ts_ms, comment.by_community, comment.parent_id) == (
        "734001",
        1_795_446_245_000,
        False,
        None,
    )
    assert comment.event_id == "vk:a1b2c3d4e5f6" and comment.text == "When is the next meetup?"
    (reply,) = map_vk(p.VK_COMMUNITY_REPLY, [], NOW_MS).events  # type: ignore[union-attr]
    assert reply.by_community is True and reply.parent_id == "9051"


def test_vk_admin_from_personal_account_answers_for_the_community() -> None:
    admin_reply = p.vk("wall_reply_new", {**p.VK_COMMUNITY_REPLY["object"], "from_id": 9999})
    assert map_vk(admin_reply, ["9999"], NOW_MS).events[0].by_community is True  # type: ignore[union-attr]
    assert map_vk(admin_reply, [], NOW_MS).events[0].by_community is False  # type: ignore[union-attr]


def test_vk_likes_reposts_deletes() -> None:
    like = map_vk(p.VK_LIKE, [], NOW_MS)
    assert like is not None and like.delivery_id == "vk:215000111:like1"
    assert (like.events[0].type, like.events[0].post_id, like.events[0].user_id, like.events[0].ts_ms) == (
        EventType.LIKE,
        "4410",
        "55501",
        NOW_MS,
    )
    unlike = map_vk(p.vk("like_remove", p.VK_LIKE["object"], event_id="ul"), [], NOW_MS)
    assert unlike is not None and unlike.events[0].type is EventType.UNLIKE
    (repost,) = map_vk(p.VK_REPOST, [], NOW_MS).events  # type: ignore[union-attr]
    assert (repost.type, repost.post_id, repost.user_id) == (EventType.REPOST, "4410", "88002")
    (delete,) = map_vk(p.VK_DELETE, [], NOW_MS).events  # type: ignore[union-attr]
    assert (delete.type, delete.comment_id) == (EventType.COMMENT_DELETE, "9051")


def test_vk_unknown_type_is_ignored_and_broken_payload_named() -> None:
    assert map_vk(p.vk("group_join", {"user_id": 1}), [], NOW_MS) is None
    broken = p.vk("wall_reply_new", {"id": 1, "from_id": 2, "date": 3})
    with pytest.raises(PayloadError, match=r"'object\.post_id' is missing"):
        map_vk(broken, [], NOW_MS)


def test_telegram_comment_thread_and_channel_answer() -> None:
    threads = TelegramThreads()
    groups = {str(p.TG_GROUP): str(p.TG_CHANNEL)}
    (comment,) = map_telegram(p.TG_COMMENT, groups, threads).events  # type: ignore[union-attr]
    assert (comment.community_id, comment.post_id, comment.comment_id, comment.user_id) == (
        str(p.TG_CHANNEL),
        "1201",
        "311",
        "4242",
    )
    assert comment.by_community is False and comment.parent_id is None
    answer = map_telegram(p.TG_ANSWER, groups, threads)
    assert answer is not None and answer.delivery_id == "tg:880002"
    assert (answer.events[0].post_id, answer.events[0].parent_id, answer.events[0].by_community) == (
        "1201",
        "311",
        True,
    )


def test_telegram_anonymous_admin_and_unknown_group() -> None:
    groups = {str(p.TG_GROUP): str(p.TG_CHANNEL)}
    anonymous = {"update_id": 5, "message": {**p.TG_ANSWER["message"], "sender_chat": {"id": p.TG_GROUP}}}
    assert map_telegram(anonymous, groups, TelegramThreads()).events[0].by_community is True  # type: ignore[union-attr]
    assert map_telegram(p.TG_COMMENT, {}, TelegramThreads()) is None


def test_telegram_reaction_is_a_like() -> None:
    groups = {str(p.TG_GROUP): str(p.TG_CHANNEL)}
    (like,) = map_telegram(p.TG_REACTION, groups, TelegramThreads()).events  # type: ignore[union-attr]
    assert (like.type, like.user_id, like.community_id) == (EventType.LIKE, "5151", str(p.TG_CHANNEL))


def test_facebook_batch_expands_every_change() -> None:
    deliveries = map_meta(p.FB_BATCH, "facebook")
    events = [d.events[0] for d in deliveries]
    assert [e.type for e in events] == [
        EventType.COMMENT,
        EventType.LIKE,
        EventType.COMMENT,
        EventType.REPOST,
    ]
    first, _, page_reply, _ = events
    assert (first.parent_id, first.by_community, first.user_id, first.ts_ms) == (
        None,
        False,
        "6001",
        1_795_446_245_000,
    )
    assert (page_reply.parent_id, page_reply.by_community) == ("900_1", True)
    assert len({d.delivery_id for d in deliveries}) == 4


def test_instagram_comment() -> None:
    (delivery,) = map_meta(p.IG_COMMENT, "instagram")
    comment = delivery.events[0]
    assert (comment.platform, comment.post_id, comment.user_id, comment.text) == (
        "instagram",
        "18000000000000001",
        "778899",
        "Wow",
    )


def test_meta_entry_must_be_a_list() -> None:
    with pytest.raises(PayloadError, match=r"'entry' must be a list"):
        map_meta({"object": "page", "entry": {}}, "facebook")
