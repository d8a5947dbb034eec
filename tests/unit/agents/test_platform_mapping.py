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
    assert map_vk(p.vk("photo_new", {"id": 1, "owner_id": -p.VK_GROUP}), [], NOW_MS) is None
    broken = p.vk("wall_reply_new", {"id": 1, "from_id": 2, "date": 3})
    with pytest.raises(PayloadError, match=r"'object\.post_id' is missing"):
        map_vk(broken, [], NOW_MS)


def test_vk_members_joining_and_leaving_are_follows_and_unfollows() -> None:
    join = map_vk(p.VK_JOIN, [], NOW_MS)
    assert join is not None and join.delivery_id == "vk:215000111:join1"
    (follow,) = join.events
    assert (follow.event_id, follow.type, follow.community_id, follow.post_id, follow.user_id, follow.ts_ms) == (
        "vk:join1", EventType.FOLLOW, "215000111", "-", "734001", NOW_MS,
    )  # fmt: skip
    assert follow.post_key == "vk:215000111:-"
    (unfollow,) = map_vk(p.VK_LEAVE, [], NOW_MS).events  # type: ignore[union-attr]
    assert (unfollow.event_id, unfollow.type, unfollow.user_id, unfollow.ts_ms) == (
        "vk:leave1", EventType.UNFOLLOW, "734001", NOW_MS,
    )  # fmt: skip
    removed = p.vk("group_leave", {"user_id": 734001, "self": 0}, event_id="kick1")
    assert map_vk(removed, [], NOW_MS).events[0].type is EventType.UNFOLLOW  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("join_type", "follows"),
    [("join", True), ("accepted", True), ("approved", True), ("unsure", True), ("request", False),
     ("something_new", False)],
)  # fmt: skip
def test_vk_a_join_is_a_follow_once_the_user_is_a_member(join_type: str, follows: bool) -> None:
    delivery = map_vk(p.vk("group_join", {"user_id": 5, "join_type": join_type}), [], NOW_MS)
    assert (delivery is not None and delivery.events[0].type is EventType.FOLLOW) is follows


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (p.vk("group_join", {"join_type": "join"}), r"'object\.user_id' is missing"),
        (p.vk("group_join", {"user_id": 5}), r"'object\.join_type' is missing"),
        (p.vk("group_join", {"user_id": 5, "join_type": 1}), r"'object\.join_type' must be a string"),
        (p.vk("group_leave", {"user_id": [5], "self": 1}), r"'object\.user_id' must be an id"),
        (p.vk("group_leave", {"user_id": True}), r"'object\.user_id' must be an id"),
    ],
)
def test_vk_broken_joins_and_leaves_name_the_field(body: dict[str, object], reason: str) -> None:
    with pytest.raises(PayloadError, match=reason):
        map_vk(body, [], NOW_MS)


def test_telegram_channel_subscribers_joining_and_leaving() -> None:
    subscribed = map_telegram(p.TG_SUBSCRIBED, {}, TelegramThreads())
    assert subscribed is not None and subscribed.delivery_id == "tg:880004"
    (follow,) = subscribed.events
    assert (follow.type, follow.platform, follow.community_id, follow.post_id, follow.user_id, follow.ts_ms) == (
        EventType.FOLLOW, "telegram", str(p.TG_CHANNEL), "-", "6161", 1_795_446_500_000,
    )  # fmt: skip
    assert follow.event_id == f"tg:{p.TG_CHANNEL}:member:6161:1795446500000:follow"
    (unfollow,) = map_telegram(p.TG_UNSUBSCRIBED, {}, TelegramThreads()).events  # type: ignore[union-attr]
    assert (unfollow.type, unfollow.user_id, unfollow.ts_ms) == (
        EventType.UNFOLLOW,
        "6161",
        1_795_447_100_000,
    )


def member(status: str, **extra: object) -> dict[str, object]:
    return {"status": status, "user": p.TG_EVE, **extra}


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (member("left"), member("member"), EventType.FOLLOW),
        (member("kicked", until_date=0), member("member"), EventType.FOLLOW),  # unbanned and added back
        (member("left"), member("restricted", is_member=True), EventType.FOLLOW),
        (member("member"), member("kicked", until_date=0), EventType.UNFOLLOW),  # banned: no longer follows
        (member("restricted", is_member=True), member("restricted", is_member=False), EventType.UNFOLLOW),
        (member("administrator"), member("left"), EventType.UNFOLLOW),
        (member("member"), member("administrator"), None),  # promoted: a follower still
        (member("left"), member("kicked", until_date=0), None),  # banned after leaving: no follower less
        (member("restricted", is_member=False), member("left"), None),
    ],
)
def test_telegram_membership_changes(
    old: dict[str, object], new: dict[str, object], expected: EventType | None
) -> None:
    update = {
        "update_id": 7,
        "chat_member": {**p.TG_SUBSCRIBED["chat_member"], "old_chat_member": old, "new_chat_member": new},
    }  # type: ignore[dict-item]
    delivery = map_telegram(update, {}, TelegramThreads())
    assert (delivery.events[0].type if delivery is not None else None) is expected


def test_telegram_group_members_and_the_bot_itself_follow_nothing() -> None:
    in_group = {
        "update_id": 8,
        "chat_member": {**p.TG_SUBSCRIBED["chat_member"], "chat": {"id": p.TG_GROUP, "type": "supergroup"}},
    }  # type: ignore[dict-item]
    assert map_telegram(in_group, {str(p.TG_GROUP): str(p.TG_CHANNEL)}, TelegramThreads()) is None
    the_bot = {"update_id": 9, "my_chat_member": p.TG_SUBSCRIBED["chat_member"]}
    assert map_telegram(the_bot, {}, TelegramThreads()) is None


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"chat": {"id": 1}}, r"'chat_member\.chat\.type' is missing"),
        ({"new_chat_member": {"user": p.TG_EVE}}, r"'chat_member\.new_chat_member\.status' is missing"),
        ({"new_chat_member": {"status": "member"}}, r"'chat_member\.new_chat_member\.user' is missing"),
        ({"old_chat_member": None}, r"'chat_member\.old_chat_member' is missing"),
        ({"date": "yesterday"}, r"'chat_member\.date' must be a unix time"),
    ],
)
def test_telegram_broken_membership_changes_name_the_field(change: dict[str, object], reason: str) -> None:
    update = {"update_id": 10, "chat_member": {**p.TG_SUBSCRIBED["chat_member"], **change}}  # type: ignore[dict-item]
    with pytest.raises(PayloadError, match=reason):
        map_telegram(update, {}, TelegramThreads())


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
