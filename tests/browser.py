"""A real browser for the tests: Debian's Chromium, headless, and the DOM it rendered, parsed.

Chromium is a test dependency like the Kafka broker: `make browser` installs it (as root, from Debian's
packages), and a test that needs it fails, never skips, when it is missing.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest

HEADLESS = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--virtual-time-budget=5000"]
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


def chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        pytest.fail("chromium is missing: `make browser` installs it (apt-get install -y chromium, as root)")
    return found


def rendered_dom(url: str) -> Node:
    """The page after its scripts ran for 5 s of virtual time (its refreshes included)."""
    result = subprocess.run(
        [chromium(), *HEADLESS, "--dump-dom", url], capture_output=True, text=True, timeout=120, check=True
    )
    return parse(result.stdout)


def screenshot(url: str, path: Path, width: int, height: int) -> Path:
    subprocess.run(
        [chromium(), *HEADLESS, f"--screenshot={path}", f"--window-size={width},{height}", url],
        capture_output=True, timeout=120, check=True,
    )  # fmt: skip
    return path


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")


@dataclass
class Node:
    tag: str
    attrs: dict[str, str] = field(default_factory=dict)
    children: list[Node | str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text for c in self.children)

    def all(self, tag: str | None = None, **attrs: str) -> list[Node]:
        """Every element below this one with `tag` (any if None) whose attributes contain `attrs`
        (underscores in names stand for dashes, `class_` for `class` and matches one class)."""
        found = []
        for child in self.children:
            if isinstance(child, Node):
                if (tag is None or child.tag == tag) and child._matches(attrs):
                    found.append(child)
                found.extend(child.all(tag, **attrs))
        return found

    def one(self, tag: str | None = None, **attrs: str) -> Node:
        found = self.all(tag, **attrs)
        assert len(found) == 1, f"{len(found)} <{tag} {attrs}> elements"
        return found[0]

    def by_id(self, id_: str) -> Node:
        return self.one(id=id_)

    def _matches(self, attrs: dict[str, str]) -> bool:
        for name, value in attrs.items():
            if name == "class_":
                if value not in self.attrs.get("class", "").split():
                    return False
            elif self.attrs.get(name.replace("_", "-")) != value:
                return False
        return True


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document")
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse(html: str) -> Node:
    builder = _Builder()
    builder.feed(html)
    builder.close()
    return builder.root
