"""Recorded-shape sample payloads of each platform (field names as the platforms document them)."""

from __future__ import annotations

from typing import Any

VK_GROUP = 215000111
VK_SECRET = "vk-s3cret-callback-key"


def vk(
    type_: str, obj: dict[str, Any], event_id: str = "a1b2c3d4e5f6", secret: str = VK_SECRET
) -> dict[str, Any]:
    return {
        "type": type_,
        "object": obj,
        "group_id": VK_GROUP,
        "event_id": event_id,
        "v": "5.199",
        "secret": secret,
    }


VK_COMMENT = vk("wall_reply_new", {"id": 9051, "from_id": 734001, "date": 1795446245, "text": "When is the next meetup?",
                                   "post_id": 4410, "owner_id": -VK_GROUP, "parents_stack": [], "thread": {"count": 0}})  # fmt: skip
VK_COMMUNITY_REPLY = vk("wall_reply_new", {"id": 9052, "from_id": -VK_GROUP, "date": 1795446545, "text": "Friday at 7!",
                                           "post_id": 4410, "owner_id": -VK_GROUP, "reply_to_user": 734001,
                                           "reply_to_comment": 9051, "parents_stack": [9051]}, event_id="f00d")  # fmt: skip
VK_LIKE = vk("like_add", {"liker_id": 55501, "object_type": "post", "object_owner_id": -VK_GROUP, "object_id": 4410,
                          "thread_reply_id": 0, "post_id": 0}, event_id="like1")  # fmt: skip
VK_REPOST = vk("wall_repost", {"id": 77, "owner_id": 88002, "from_id": 88002, "date": 1795446600, "post_type": "post",
                               "copy_history": [{"id": 4410, "owner_id": -VK_GROUP, "date": 1795440000}]}, event_id="rp1")  # fmt: skip
VK_DELETE = vk(
    "wall_reply_delete",
    {"owner_id": -VK_GROUP, "id": 9051, "deleter_id": 734001, "post_id": 4410},
    event_id="del1",
)
VK_JOIN = vk("group_join", {"user_id": 734001, "join_type": "join"}, event_id="join1")
VK_LEAVE = vk("group_leave", {"user_id": 734001, "self": 1}, event_id="leave1")

TG_CHANNEL = -1001234567890
TG_GROUP = -1009876543210
TG_SECRET = "tg_secret-token-of-the-bot"
TG_FORWARD = {"message_id": 310, "chat": {"id": TG_GROUP, "type": "supergroup"}, "date": 1795446000,
              "is_automatic_forward": True, "sender_chat": {"id": TG_CHANNEL, "type": "channel"},
              "forward_origin": {"type": "channel", "chat": {"id": TG_CHANNEL}, "message_id": 1201, "date": 1795446000}}  # fmt: skip
TG_COMMENT = {"update_id": 880001, "message": {
    "message_id": 311, "chat": {"id": TG_GROUP, "type": "supergroup"}, "date": 1795446245, "text": "Love this!",
    "from": {"id": 4242, "is_bot": False, "first_name": "Ann"}, "message_thread_id": 310,
    "reply_to_message": TG_FORWARD}}  # fmt: skip
TG_ANSWER = {"update_id": 880002, "message": {
    "message_id": 312, "chat": {"id": TG_GROUP, "type": "supergroup"}, "date": 1795446300, "text": "Thank you!",
    "from": {"id": 136817688, "is_bot": True, "first_name": "Channel"}, "sender_chat": {"id": TG_CHANNEL, "type": "channel"},
    "message_thread_id": 310, "reply_to_message": {"message_id": 311, "chat": {"id": TG_GROUP}, "date": 1795446245,
                                                   "from": {"id": 4242}, "message_thread_id": 310}}}  # fmt: skip
TG_REACTION = {"update_id": 880003, "message_reaction": {
    "chat": {"id": TG_GROUP, "type": "supergroup"}, "message_id": 311, "user": {"id": 5151}, "date": 1795446400,
    "old_reaction": [], "new_reaction": [{"type": "emoji", "emoji": "👍"}]}}  # fmt: skip
TG_EVE = {"id": 6161, "is_bot": False, "first_name": "Eve"}
TG_SUBSCRIBED = {"update_id": 880004, "chat_member": {
    "chat": {"id": TG_CHANNEL, "title": "The Channel", "type": "channel"}, "from": TG_EVE, "date": 1795446500,
    "old_chat_member": {"status": "left", "user": TG_EVE}, "new_chat_member": {"status": "member", "user": TG_EVE}}}  # fmt: skip
TG_UNSUBSCRIBED = {"update_id": 880005, "chat_member": {
    "chat": {"id": TG_CHANNEL, "title": "The Channel", "type": "channel"}, "from": TG_EVE, "date": 1795447100,
    "old_chat_member": {"status": "member", "user": TG_EVE}, "new_chat_member": {"status": "left", "user": TG_EVE}}}  # fmt: skip

FB_PAGE = "104222333444555"
FB_SECRET = "fb-app-secret-0123456789abcdef"
FB_VERIFY = "fb-verify-token-0123"
FB_BATCH = {"object": "page", "entry": [
    {"id": FB_PAGE, "time": 1795446300, "changes": [
        {"field": "feed", "value": {"item": "comment", "verb": "add", "post_id": f"{FB_PAGE}_900", "comment_id": "900_1",
                                    "parent_id": f"{FB_PAGE}_900", "from": {"id": "6001", "name": "Bob"},
                                    "message": "Where can I buy it?", "created_time": 1795446245}},
        {"field": "feed", "value": {"item": "reaction", "verb": "add", "reaction_type": "love", "post_id": f"{FB_PAGE}_900",
                                    "from": {"id": "6002", "name": "Cid"}, "created_time": 1795446250}},
    ]},
    {"id": FB_PAGE, "time": 1795446310, "changes": [
        {"field": "feed", "value": {"item": "comment", "verb": "add", "post_id": f"{FB_PAGE}_900", "comment_id": "900_2",
                                    "parent_id": "900_1", "from": {"id": FB_PAGE, "name": "The Page"},
                                    "message": "In our shop", "created_time": 1795446290}},
        {"field": "feed", "value": {"item": "share", "verb": "add", "post_id": f"{FB_PAGE}_900",
                                    "from": {"id": "6003"}, "created_time": 1795446295}},
    ]},
]}  # fmt: skip
IG_ACCOUNT = "17841400000000001"
IG_COMMENT = {"object": "instagram", "entry": [{"id": IG_ACCOUNT, "time": 1795446245, "changes": [
    {"field": "comments", "value": {"id": "17900000000000001", "text": "Wow", "from": {"id": "778899", "username": "dee"},
                                    "media": {"id": "18000000000000001", "media_product_type": "FEED"}}}]}]}  # fmt: skip
