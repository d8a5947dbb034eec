"""Facebook Page and Instagram webhooks: batched `entry[].changes[]`, each change its own delivery.

Deliveries may be batched, retried and out of order; the delivery id of a change is the object it is
about plus its verb (and its author and time for reactions, which have no id of their own). The page
answering is `from.id == entry.id`. Signature checks happen in the receiver on the raw bytes.
"""

from __future__ import annotations

from typing import Any

from agents.platforms.common import Delivery, PayloadError, an_object, event, field, ident, unix_ms

_FEED_TYPES: dict[tuple[Any, Any], str] = {
    ("comment", "add"): "comment", ("comment", "edited"): "comment_edit", ("comment", "remove"): "comment_delete",
    ("reaction", "add"): "like", ("reaction", "remove"): "unlike", ("like", "add"): "like", ("like", "remove"): "unlike",
    ("share", "add"): "repost",
}  # fmt: skip


def map_meta(envelope: dict[str, Any], platform: str) -> list[Delivery]:
    """Every mapped change of a Page (`platform` "facebook") or Instagram envelope."""
    entries = field(envelope, "entry")
    if not isinstance(entries, list):
        raise PayloadError("'entry' must be a list")
    deliveries = []
    for i, entry in enumerate(entries):
        page = ident(field(entry, "id", f"entry[{i}]"), f"entry[{i}].id")
        changes = entry.get("changes") or []
        if not isinstance(changes, list):
            raise PayloadError(f"'entry[{i}].changes' must be a list")
        for j, change in enumerate(changes):
            where = f"entry[{i}].changes[{j}]"
            value = an_object(field(change, "value", where), f"{where}.value")
            kind = change.get("field")
            if kind == "feed":
                mapped = _feed(value, page, platform, where)
            elif kind == "comments" and platform == "instagram":
                mapped = _instagram_comment(value, page, entry.get("time"), where)
            else:
                mapped = None
            if mapped is not None:
                deliveries.append(mapped)
    return deliveries


def _feed(value: dict[str, Any], page: str, platform: str, where: str) -> Delivery | None:
    item, verb = value.get("item"), value.get("verb")
    if not isinstance(item, str) or not isinstance(verb, str):
        return None  # not a change this pipeline maps (they are strings in every one it does)
    kind = _FEED_TYPES.get((item, verb))
    if kind is None:
        return None
    post = ident(field(value, "post_id", f"{where}.value"), f"{where}.value.post_id")
    author = ident(field(value, "from.id", f"{where}.value"), f"{where}.value.from.id")
    created = value.get("created_time")
    if isinstance(created, str):
        raise PayloadError(f"'{where}.value.created_time' must be a unix time")
    ts = unix_ms(created, f"{where}.value.created_time")
    extra: dict[str, Any] = {}
    if kind.startswith("comment"):
        comment = ident(field(value, "comment_id", f"{where}.value"), f"{where}.value.comment_id")
        parent = value.get("parent_id")
        extra = {"comment_id": comment, "parent_id": None if parent in (None, post) else ident(parent, f"{where}.value.parent_id"),
                 "by_community": author == page, "text": value.get("message") or None}  # fmt: skip
        delivery = f"{platform}:{comment}:{verb}:{ts}"
    else:
        target = value.get("comment_id")
        target = post if not target else ident(target, f"{where}.value.comment_id")
        delivery = f"{platform}:{target}:{author}:{item}:{verb}:{ts}"
    mapped = event(
        event_id=delivery,
        type=kind,
        platform=platform,
        community_id=page,
        post_id=post,
        user_id=author,
        ts=ts,
        **extra,
    )
    return Delivery(delivery, (mapped,))


def _instagram_comment(value: dict[str, Any], account: str, entry_time: Any, where: str) -> Delivery:
    comment = ident(field(value, "id", f"{where}.value"), f"{where}.value.id")
    author = ident(field(value, "from.id", f"{where}.value"), f"{where}.value.from.id")
    parent = value.get("parent_id")
    mapped = event(
        event_id=f"instagram:{comment}:add", type="comment", platform="instagram", community_id=account,
        post_id=ident(field(value, "media.id", f"{where}.value"), f"{where}.value.media.id"), user_id=author,
        ts=unix_ms(entry_time, "entry.time"), comment_id=comment,
        parent_id=ident(parent, f"{where}.value.parent_id") if parent else None, by_community=author == account,
        text=value.get("text") or None,
    )  # fmt: skip
    return Delivery(f"instagram:{comment}:add", (mapped,))
