"""Telegram Bot API: comments in a channel's linked discussion group, and reactions.

A comment is a `message` in the discussion group inside the thread of a channel post's automatic forward.
The thread is named by the forward's id *in the group*, while likes and the analytics speak of the
*channel* post id, so `TelegramThreads` remembers which thread belongs to which channel post (learned
from the automatic forward itself, or from a top-level comment that replies to it). A comment in a thread
not yet learned keeps the thread's id as `post_id` with a `thread-` prefix, so it is never attributed to
the wrong post.

The community speaks as the channel (`sender_chat.id == channel id`) or as an anonymous group admin
(`sender_chat.id == group id`). `update_id` is the delivery id. `message_reaction` (one user's reaction,
groups) maps to like/unlike; `message_reaction_count` (anonymous totals, channels) is not mapped: totals
are not events, and turning them into deltas would need state this receiver does not keep.

`chat_member` (a channel's subscriber joining or leaving; sent only to a bot that is the channel's
administrator and asks for it in `allowed_updates`) maps to follow/unfollow of `new_chat_member.user`
when membership changes: a member is `creator`, `administrator`, `member`, or `restricted` with
`is_member`. A change within membership (a promotion) or outside it (a ban of someone who had left) is
not a follow or an unfollow; nor is a change in a group (the discussion group's members follow nothing).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from agents.platforms.common import (
    Delivery,
    PayloadError,
    an_object,
    event,
    field,
    ident,
    optional_object,
    unix_ms,
    word,
)
from schemas import COMMUNITY_POST_ID


class TelegramThreads:
    """Discussion thread id -> channel post id, bounded (oldest forgotten first)."""

    def __init__(self, max_threads: int = 100_000) -> None:
        self.max_threads = max_threads
        self._posts: OrderedDict[tuple[str, str], str] = OrderedDict()

    def learn(self, group_id: str, thread_id: str, post_id: str) -> None:
        self._posts[(group_id, thread_id)] = post_id
        if len(self._posts) > self.max_threads:
            self._posts.popitem(last=False)

    def post_of(self, group_id: str, thread_id: str) -> str | None:
        return self._posts.get((group_id, thread_id))


def map_telegram(
    update: dict[str, Any], channels_by_group: Mapping[str, str], threads: TelegramThreads
) -> Delivery | None:
    """The events of one update; None for an update this pipeline does not use."""
    delivery = f"tg:{ident(field(update, 'update_id'), 'update_id')}"
    if "message" in update or "edited_message" in update:
        edited = "edited_message" in update
        name = "edited_message" if edited else "message"
        message = an_object(field(update, name), name)
        mapped = _comment(message, channels_by_group, threads, edited)
    elif "message_reaction" in update:
        reaction = an_object(field(update, "message_reaction"), "message_reaction")
        mapped = _reaction(reaction, channels_by_group, threads)
    elif "chat_member" in update:
        mapped = _membership(an_object(field(update, "chat_member"), "chat_member"))
    else:
        return None
    return Delivery(delivery, (mapped,)) if mapped is not None else None


def _comment(
    message: dict[str, Any], channels_by_group: Mapping[str, str], threads: TelegramThreads, edited: bool
) -> Any:
    group = ident(field(message, "chat.id", "message"), "message.chat.id")
    channel = channels_by_group.get(group)
    if channel is None:
        return None  # not a discussion group we were told about
    message_id = ident(field(message, "message_id", "message"), "message.message_id")
    if message.get("is_automatic_forward"):
        origin = optional_object(message, "forward_origin", "message.forward_origin")
        post = origin.get("message_id", message.get("forward_from_message_id"))
        if post is not None:
            threads.learn(group, message_id, ident(post, "message.forward_origin.message_id"))
        return None  # the channel's own post, mirrored into the group: not a comment
    reply = optional_object(message, "reply_to_message", "message.reply_to_message")
    thread = message.get("message_thread_id", reply.get("message_id"))
    if thread is None:
        return None  # a message in the group outside any post's thread
    thread = ident(thread, "message.message_thread_id")
    if reply.get("is_automatic_forward"):
        origin = optional_object(reply, "forward_origin", "message.reply_to_message.forward_origin")
        post = origin.get("message_id", reply.get("forward_from_message_id"))
        if post is not None:
            threads.learn(group, thread, ident(post, "message.reply_to_message.forward_origin.message_id"))
    parent = None
    if reply and not reply.get("is_automatic_forward") and "message_id" in reply:
        parent = ident(reply["message_id"], "message.reply_to_message.message_id")
    sender_chat = optional_object(message, "sender_chat", "message.sender_chat").get("id")
    if sender_chat is None:
        author = optional_object(message, "from", "message.from").get("id")
    else:
        author = sender_chat
    if author is None:
        raise PayloadError("'message.from.id' is missing")
    author = ident(author, "message.from.id")
    ts = unix_ms(
        field(message, "edit_date", "message") if edited else field(message, "date", "message"),
        "message.date",
    )
    return event(
        event_id=f"tg:{group}:{message_id}" + (f":edit:{ts}" if edited else ""),
        type="comment_edit" if edited else "comment", platform="telegram", community_id=channel,
        post_id=threads.post_of(group, thread) or f"thread-{thread}", user_id=author, ts=ts,
        comment_id=message_id, parent_id=parent, by_community=author in (channel, group),
        text=message.get("text") or message.get("caption"),
    )  # fmt: skip


def _reaction(
    reaction: dict[str, Any], channels_by_group: Mapping[str, str], threads: TelegramThreads
) -> Any:
    chat = ident(field(reaction, "chat.id", "message_reaction"), "message_reaction.chat.id")
    community = channels_by_group.get(chat, chat)
    old, new = reaction.get("old_reaction") or [], reaction.get("new_reaction") or []
    if bool(old) == bool(new):
        return None  # a change of emoji is neither a new like nor a withdrawn one
    user = optional_object(reaction, "user", "message_reaction.user") or optional_object(
        reaction, "actor_chat", "message_reaction.actor_chat"
    )
    message_id = ident(field(reaction, "message_id", "message_reaction"), "message_reaction.message_id")
    ts = unix_ms(field(reaction, "date", "message_reaction"), "message_reaction.date")
    return event(
        event_id=f"tg:{chat}:{message_id}:reaction:{ident(user.get('id'), 'message_reaction.user.id')}:{ts}",
        type="like" if new else "unlike", platform="telegram", community_id=community,
        post_id=threads.post_of(chat, message_id) or message_id, user_id=ident(user.get("id"), "message_reaction.user.id"), ts=ts,
    )  # fmt: skip


_MEMBERS = frozenset({"creator", "administrator", "member"})


def _membership(change: dict[str, Any]) -> Any:
    chat = an_object(field(change, "chat", "chat_member"), "chat_member.chat")
    if word(field(chat, "type", "chat_member.chat"), "chat_member.chat.type") != "channel":
        return None  # a group's members, the discussion group's included, are not a channel's followers
    channel = ident(field(chat, "id", "chat_member.chat"), "chat_member.chat.id")
    old = an_object(field(change, "old_chat_member", "chat_member"), "chat_member.old_chat_member")
    new = an_object(field(change, "new_chat_member", "chat_member"), "chat_member.new_chat_member")
    joined = _is_member(new, "chat_member.new_chat_member")
    if joined == _is_member(old, "chat_member.old_chat_member"):
        return None  # a promotion, new restrictions, a ban of someone who had left: no follower more or less
    user = ident(field(new, "user.id", "chat_member.new_chat_member"), "chat_member.new_chat_member.user.id")
    ts = unix_ms(field(change, "date", "chat_member"), "chat_member.date")
    kind = "follow" if joined else "unfollow"
    return event(
        event_id=f"tg:{channel}:member:{user}:{ts}:{kind}", type=kind, platform="telegram",
        community_id=channel, post_id=COMMUNITY_POST_ID, user_id=user, ts=ts,
    )  # fmt: skip


def _is_member(member: dict[str, Any], path: str) -> bool:
    status = word(field(member, "status", path), f"{path}.status")
    if status == "restricted":
        return member.get("is_member") is True
    return status in _MEMBERS
