"""A post's public address, where its platform's ids allow one (alert messages and the dashboard use it)."""

from __future__ import annotations

import pytest

from schemas import post_url


@pytest.mark.parametrize(
    ("platform", "community", "post", "link"),
    [
        ("vk", "12345", "678", "https://vk.com/wall-12345_678"),
        ("vk", "-12345", "678", "https://vk.com/wall-12345_678"),  # VK's owner id form
        ("vk", "c1", "678", None),  # not a VK group id: no guessing
        ("telegram", "pulse_news", "42", "https://t.me/pulse_news/42"),
        ("telegram", "@pulse_news", "42", "https://t.me/pulse_news/42"),
        ("telegram", "-1001234567890", "42", None),  # a private channel id: no public link
        ("telegram", "pulse_news", "thread-7", None),  # a thread whose post is not known yet
        ("facebook", "111", "111_222", "https://www.facebook.com/111/posts/222"),
        ("facebook", "111", "222", None),
        ("instagram", "333", "17890000000", None),
        ("sim", "c1", "c1-p1", None),  # the simulator's publics are nowhere
    ],
)
def test_post_links_where_the_platform_allows(
    platform: str, community: str, post: str, link: str | None
) -> None:
    assert post_url(platform, community, post) == link
