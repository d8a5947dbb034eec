"""VK Callback API: community comments, likes, reposts, and members joining and leaving.

Envelope `{type, object, group_id, event_id, v, secret}`; VK repeats `event_id` on redelivery, so it is
both the delivery id and (prefixed) the canonical event id. Comment events carry their time (`date`);
likes, comment deletions, joins and leaves carry none, so they take the receiver's processing time,
injected as `now_ms`. `group_join` is a follow once the user is a member: `join_type` `join`, `accepted`
(an invitation), `approved` (a request) or `unsure` (an event's "maybe"), not `request` (only asked to
join a closed group). `group_leave` is an unfollow, whether the user left (`self`) or was removed.
The community's own replies are `from_id == -group_id`, or an admin writing from a personal account
(`admin_ids`). Secret and `confirmation` are the receiver's business, not this mapper's.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from agents.platforms.common import Delivery, PayloadError, an_object, event, field, ident, unix_ms, word
from schemas import COMMUNITY_POST_ID, EventType

_COMMENT_TYPES = {"wall_reply_new": EventType.COMMENT, "wall_reply_edit": EventType.COMMENT_EDIT,
                  "wall_reply_restore": EventType.COMMENT}  # fmt: skip
MAPPED_TYPES = frozenset({*_COMMENT_TYPES, "wall_reply_delete", "like_add", "like_remove", "wall_repost",
                          "group_join", "group_leave"})  # fmt: skip
MEMBER_JOIN_TYPES = frozenset({"join", "accepted", "approved", "unsure"})  # `request` is not membership yet


def map_vk(body: dict[str, Any], admin_ids: Collection[str], now_ms: int) -> Delivery | None:
    """The events of one callback; None for a type this pipeline does not use (answered `ok` all the same)."""
    kind = word(field(body, "type"), "type")
    if kind not in MAPPED_TYPES:
        return None
    group_id = ident(field(body, "group_id"), "group_id")
    delivery = ident(field(body, "event_id"), "event_id")
    obj = an_object(field(body, "object"), "object")
    common = {"event_id": f"vk:{delivery}", "platform": "vk", "community_id": group_id}
    if kind in _COMMENT_TYPES:
        author = ident(field(obj, "from_id", "object"), "object.from_id")
        parent = obj.get("reply_to_comment")
        mapped = event(
            **common, type=_COMMENT_TYPES[kind].value, post_id=ident(field(obj, "post_id", "object"), "object.post_id"),
            user_id=author, ts=unix_ms(field(obj, "date", "object"), "object.date"), comment_id=ident(field(obj, "id", "object"), "object.id"),
            parent_id=ident(parent, "object.reply_to_comment") if parent else None,
            by_community=author == f"-{group_id}" or author in admin_ids, text=obj.get("text") or None,
        )  # fmt: skip
    elif kind == "wall_reply_delete":
        mapped = event(
            **common, type="comment_delete", post_id=ident(field(obj, "post_id", "object"), "object.post_id"),
            user_id=ident(field(obj, "deleter_id", "object"), "object.deleter_id"), ts=now_ms,
            comment_id=ident(field(obj, "id", "object"), "object.id"),
        )  # fmt: skip
    elif kind in ("group_join", "group_leave"):
        if kind == "group_join":
            join_type = word(field(obj, "join_type", "object"), "object.join_type")
            if join_type not in MEMBER_JOIN_TYPES:
                return None
        mapped = event(
            **common, type="follow" if kind == "group_join" else "unfollow", post_id=COMMUNITY_POST_ID,
            user_id=ident(field(obj, "user_id", "object"), "object.user_id"), ts=now_ms,
        )  # fmt: skip
    elif kind in ("like_add", "like_remove"):
        mapped = event(
            **common, type="like" if kind == "like_add" else "unlike", post_id=_liked_post(obj),
            user_id=ident(field(obj, "liker_id", "object"), "object.liker_id"), ts=now_ms,
        )  # fmt: skip
    else:  # wall_repost: a new wall post whose copy_history names the source post
        history = field(obj, "copy_history", "object")
        if not isinstance(history, list) or not history:
            raise PayloadError("'object.copy_history' must name the reposted post")
        reposter = obj.get("from_id", obj.get("owner_id"))
        mapped = event(
            **common, type="repost", post_id=ident(field(history[0], "id", "object.copy_history[0]"), "object.copy_history[0].id"),
            user_id=ident(reposter, "object.from_id"), ts=unix_ms(field(obj, "date", "object"), "object.date"),
        )  # fmt: skip
    return Delivery(f"vk:{group_id}:{delivery}", (mapped,))


def _liked_post(obj: dict[str, Any]) -> str:
    object_type = word(field(obj, "object_type", "object"), "object.object_type")
    if object_type == "post":
        return ident(field(obj, "object_id", "object"), "object.object_id")
    if object_type == "comment":
        return ident(field(obj, "post_id", "object"), "object.post_id")
    # Photos, videos and the like are not wall posts; they get a post id of their own kind.
    return f"{object_type}{ident(field(obj, 'object_id', 'object'), 'object.object_id')}"
