"""A post's public address on its platform, built from the ids the platforms give us.

One rule for every place that shows a post to a person (alert messages, the dashboard), so a link means
the same everywhere. Where the ids do not allow an address, there is none: no guessing.
"""

from __future__ import annotations

import re

_TELEGRAM_USERNAME = re.compile(r"^@?([A-Za-z][A-Za-z0-9_]{3,31})$")
_DIGITS = re.compile(r"^\d+$")
_FACEBOOK_POST = re.compile(r"^(\d+)_(\d+)$")  # the Graph API's "<page id>_<post id>"


def post_url(platform: str, community_id: str, post_id: str) -> str | None:
    """VK walls, public Telegram channels, Facebook posts in the Graph API's `<page>_<post>` form.
    Instagram media ids do not map to post addresses; private Telegram channels have none."""
    if platform == "vk" and _DIGITS.match(post_id) and _DIGITS.match(community_id.lstrip("-")):
        return f"https://vk.com/wall-{community_id.lstrip('-')}_{post_id}"
    if platform == "telegram" and _DIGITS.match(post_id):
        username = _TELEGRAM_USERNAME.match(community_id)
        return f"https://t.me/{username.group(1)}/{post_id}" if username else None
    if platform == "facebook":
        parts = _FACEBOOK_POST.match(post_id)
        return f"https://www.facebook.com/{parts.group(1)}/posts/{parts.group(2)}" if parts else None
    return None
